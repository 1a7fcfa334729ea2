//! Deciding the next best action: the offer catalog and its eligibility conditions.

pub mod catalog;
pub mod condition;
pub mod fields;
