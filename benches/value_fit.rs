//! The customer-value model's two costs: fitting the BG/NBD on the full CDNOW sample (2,357
//! customers) and the serving figures for one customer.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
#[path = "../tests/it/cdnow.rs"]
#[allow(dead_code)]
mod cdnow;
mod common;
use touchpoint::model::value::{ClvSettings, RfmSummary, TimeUnit, ValueModel};
use touchpoint::training::value_fit::{FitOptions, fit_bg_nbd, fit_gamma_gamma};

fn benches(c: &mut Criterion) {
    let data = cdnow::load(cdnow::sample_path()).expect("CDNOW sample readable");
    let opts = FitOptions::default();
    c.bench_function("fit_bg_nbd/cdnow_2357", |b| {
        b.iter(|| fit_bg_nbd(black_box(&data), &opts).unwrap())
    });
    c.bench_function("fit_gamma_gamma/cdnow_946", |b| {
        b.iter(|| fit_gamma_gamma(black_box(&data), &opts).unwrap())
    });

    let model = ValueModel {
        time_unit: TimeUnit::Week,
        bg_nbd: fit_bg_nbd(&data, &opts).unwrap().params,
        gamma_gamma: Some(fit_gamma_gamma(&data, &opts).unwrap().params),
        clv: ClvSettings::default(),
    };
    // A typical repeat customer at the end of calibration (customer 1 of the sample).
    let regular = RfmSummary {
        frequency: 2.0,
        recency: 30.43,
        age: 38.86,
        mean_repeat_spend: 22.35,
    };
    // The slowest realistic case: a first-week customer, whose one-year horizon is the
    // largest multiple of alpha + T (w = 0.92), so the 2F1 series runs longest.
    let new_buyer = RfmSummary {
        frequency: 1.0,
        recency: 0.5,
        age: 1.0,
        mean_repeat_spend: 40.0,
    };
    c.bench_function("figures/regular_customer", |b| {
        b.iter(|| model.figures(black_box(&regular)))
    });
    c.bench_function("figures/first_week_customer", |b| {
        b.iter(|| model.figures(black_box(&new_buyer)))
    });
}

criterion_group! {
    name = value_fit;
    config = common::criterion();
    targets = benches
}
criterion_main!(value_fit);
