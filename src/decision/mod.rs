//! Deciding the next best action (API.md section 3).
//!
//! The path of a decision: [`service`] is the one entry every caller uses (the HTTP
//! handler, benches, simulations): it reads the profile, decides, records the planned
//! outbound actions and logs the decision. [`request`] parses the request; [`engine`] runs
//! the stages of the decision itself: `history`, `channels` and `timing`,
//! `candidates` (with `eligibility`, over [`catalog`] and its [`condition`]s read
//! through [`facts`]), `arbitration` (choosing through a [`policy::Policy`]) and
//! `explanation`; [`contact_policy`] holds consent and the contact limits; the answer's
//! types are [`answer`]; [`record`] is the decision log's record and its reader, [`log`]
//! its writers.

pub mod answer;
mod arbitration;
mod candidates;
pub mod catalog;
mod channels;
pub mod condition;
pub mod contact_policy;
mod eligibility;
pub mod engine;
mod explanation;
pub mod facts;
pub mod fields;
mod history;
mod json;
pub mod log;
pub mod policy;
pub mod record;
pub mod request;
pub mod service;
mod timing;

use serde::{Deserialize, Serialize};

pub use answer::{Action, Decision, Reason};
pub use contact_policy::ContactPolicy;
pub use engine::DecisionEngine;
pub use request::DecisionRequest;
pub use service::Decider;

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

/// Exploration. `thompson` (the default, [`policy::Thompson`]): each action with the
/// probability that it is the best when the propensities the online learner is unsure of
/// are drawn from its posteriors (Monte-Carlo, `draws` draws), every one at least
/// `epsilon / n`, and the actions of offers with thin data together at most
/// `max_uncertain_share`, each weighed by how thin (see [`policy::Thompson`]). Without online learning (or before its first answer for known
/// offers) that is the best action with probability 1 - epsilon + epsilon / n.
/// `epsilon_greedy` ([`policy::EpsilonGreedy`]): the best remaining action with probability
/// 1 - epsilon, otherwise one of the remaining drawn uniformly (the best included). Every
/// action records the probability with which it was chosen, for off-policy evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Exploration {
    pub policy: PolicyKind,
    pub epsilon: f64,
    pub draws: usize,
    pub max_uncertain_share: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    Thompson,
    EpsilonGreedy,
}

impl Default for Exploration {
    fn default() -> Self {
        Self {
            policy: PolicyKind::Thompson,
            epsilon: 0.05,
            draws: 16,
            max_uncertain_share: 0.1,
        }
    }
}

impl Exploration {
    /// The policy these settings describe.
    pub fn policy(&self) -> std::sync::Arc<dyn policy::Policy> {
        match self.policy {
            PolicyKind::Thompson => std::sync::Arc::new(policy::Thompson::new(
                self.epsilon,
                self.draws,
                self.max_uncertain_share,
            )),
            PolicyKind::EpsilonGreedy => {
                std::sync::Arc::new(policy::EpsilonGreedy::new(self.epsilon))
            }
        }
    }
}

impl DecisionSettings {
    pub fn check(&self, profile: &crate::profile::ProfileLimits) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.exploration.epsilon) {
            return Err("decision.exploration.epsilon must be in [0, 1]".into());
        }
        if !(1..=4096).contains(&self.exploration.draws) {
            return Err("decision.exploration.draws must be in 1..=4096".into());
        }
        if !(0.0..=1.0).contains(&self.exploration.max_uncertain_share) {
            return Err("decision.exploration.max_uncertain_share must be in [0, 1]".into());
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
