//! Deciding the next best action (API.md section 3).
//!
//! The path of a decision: [`request`] parses the request; [`facts`] gathers what conditions
//! read; [`engine`] applies eligibility ([`catalog`], [`condition`]), consent and the contact
//! policy ([`policy`]), scores every eligible (offer, channel) with the models, picks the
//! channel and `send_at`, arbitrates by priority = propensity x value x context weight x
//! lever, and explores; [`log`] records every decision for learning.

pub mod catalog;
pub mod condition;
pub mod engine;
pub mod facts;
pub mod fields;
mod json;
pub mod log;
pub mod policy;
pub mod request;

use serde::{Deserialize, Serialize};

pub use engine::{Decision, DecisionEngine};
pub use policy::ContactPolicy;
pub use request::DecisionRequest;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecisionSettings {
    /// Time allowed to read the profile; past it the decision uses the fallback ranking and
    /// says `degraded: true` (never a 5xx for that reason).
    pub profile_read_budget_ms: u64,
    /// Actions whose priority is below this are not taken ("no action").
    pub min_priority: f64,
    /// Propensity assumed when there is no propensity model.
    pub default_propensity: f64,
    /// How much a customer's lifetime value raises the value of a positive answer:
    /// value x (1 + clv_weight x min(clv_365d / clv_reference, clv_cap)).
    pub clv_weight: f64,
    pub clv_reference: f64,
    pub clv_cap: f64,
    pub exploration: Exploration,
    pub contact_policy: ContactPolicy,
    pub log: log::DecisionLogSettings,
}

impl Default for DecisionSettings {
    fn default() -> Self {
        Self {
            profile_read_budget_ms: 20,
            min_priority: 0.0,
            default_propensity: 0.02,
            clv_weight: 0.5,
            clv_reference: 100.0,
            clv_cap: 3.0,
            exploration: Exploration::default(),
            contact_policy: ContactPolicy::default(),
            log: log::DecisionLogSettings::default(),
        }
    }
}

/// Epsilon-greedy exploration: at each rank the best remaining action with probability
/// 1 - epsilon, otherwise one of the remaining drawn uniformly (the best included). Every
/// action records the probability with which it was chosen, for off-policy evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Exploration {
    pub epsilon: f64,
}

impl Default for Exploration {
    fn default() -> Self {
        Self { epsilon: 0.05 }
    }
}

impl DecisionSettings {
    pub fn check(&self, profile: &crate::profile::ProfileLimits) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.exploration.epsilon) {
            return Err("decision.exploration.epsilon must be in [0, 1]".into());
        }
        if !(self.default_propensity > 0.0 && self.default_propensity < 1.0) {
            return Err("decision.default_propensity must be in (0, 1)".into());
        }
        if self.clv_weight < 0.0 || self.clv_reference <= 0.0 || self.clv_cap < 0.0 {
            return Err("decision.clv_weight and clv_cap must be >= 0, clv_reference > 0".into());
        }
        if !self.min_priority.is_finite() {
            return Err("decision.min_priority must be a number".into());
        }
        self.contact_policy
            .check(profile.contact_history, profile.history_days)?;
        self.log.check()
    }
}
