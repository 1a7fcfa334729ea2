//! Learning models from event histories; used by the `train` and `simulate` commands only.

pub mod value_fit;
