//! Trained models as the service uses them: scoring only, never training code.

pub mod features;
pub mod response;
pub mod scoring;
pub mod segments;
pub mod send_time;
pub mod set;
pub mod value;
