//! Shared by every bench: one Criterion configuration and a seeded RNG, as linfa does, so
//! runs are comparable.

#![allow(dead_code)]

use std::time::Duration;

use criterion::Criterion;
use rand::SeedableRng;
use rand::rngs::StdRng;

pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args()
}

pub fn rng() -> StdRng {
    StdRng::seed_from_u64(42)
}
