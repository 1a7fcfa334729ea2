//! Trained models as the service uses them: scoring only, never training code.

pub mod value;
