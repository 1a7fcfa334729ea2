//! The decision itself, for a website's next-best-offer, a call-centre screen and an outbound
//! campaign planner alike, as a sequence of stages, each in its own module:
//!
//! 1. `history`: the customer's contacts, answers and earlier plans as the contact
//!    policy counts them;
//! 2. `channels`: each channel of the request, prepared once: an inbound touchpoint
//!    answers now; an outbound channel needs a granted consent and no "do not contact", and
//!    is planned at the best hour within the horizon that is outside the customer's quiet
//!    hours and keeps every contact limit (`timing`);
//! 3. `candidates`: every offer that passes `eligibility` (valid now, fits
//!    the placement, meets its condition, under its caps, not declined recently), on every
//!    channel it may use, scored: propensity = the offer's propensity with the channel's and
//!    the hour's lift; value = margin x lifetime-value factor - contact cost / propensity;
//!    priority = propensity x value x context weight x lever; below `min_priority`, none;
//! 4. `arbitration`: the slate, rank by rank (one action per offer, one per priority
//!    group), contact limits re-checked against the actions already planned, each action
//!    chosen by the [`Policy`] with the probability it was chosen;
//! 5. `explanation`, when asked: the reasons, in words and numbers.

use std::cell::OnceCell;

use chrono::{DateTime, Utc};

use super::DecisionSettings;
use super::answer::{Decision, LogDetails, Suppressions};
use super::catalog::Catalog;
use super::facts::RequestFacts;
use super::history::History;
use super::policy::Policy;
use super::request::DecisionRequest;
use super::timing::SlotTable;
use super::{arbitration, candidates, channels};
use crate::learning::OnlineState;
use crate::model::scoring::CustomerScores;
use crate::model::set::ModelSet;
use crate::profile::planned::PlannedAction;
use crate::profile::{DecisionId, Profile};
use crate::time::{LocalClock, rfc3339};

/// What a decision is made with: the catalog, the models and settings in force, and the
/// policy that chooses among the scored candidates.
pub struct DecisionEngine<'a> {
    pub catalog: &'a Catalog,
    pub models: &'a ModelSet,
    pub settings: &'a DecisionSettings,
    pub policy: &'a dyn Policy,
    /// What the online learner knows ([`crate::learning`]); `None`: the trained models
    /// alone.
    pub online: Option<&'a OnlineState>,
}

pub struct DecisionInput<'a> {
    pub request: &'a DecisionRequest,
    /// The profile; `None` for a customer never seen, or when it could not be read.
    pub profile: Option<&'a Profile>,
    /// Outbound actions planned for the customer by earlier decisions (read with the
    /// profile): those not yet sent nor lapsed count toward the contact limits.
    pub planned: &'a [PlannedAction],
    /// The profile store could not be read in time: decide from the fallback ranking.
    pub degraded: bool,
    pub now: DateTime<Utc>,
    pub decision_id: DecisionId,
}

/// What every stage of one decision reads: the engine's parts, the request, and what is
/// known of the customer at the decision's time.
pub(super) struct Scene<'a> {
    pub catalog: &'a Catalog,
    pub models: &'a ModelSet,
    pub settings: &'a DecisionSettings,
    pub policy: &'a dyn Policy,
    pub online: Option<&'a OnlineState>,
    pub request: &'a DecisionRequest,
    pub decision_id: &'a DecisionId,
    pub profile: &'a Profile,
    pub degraded: bool,
    pub at: DateTime<Utc>,
    /// `at` in Unix seconds.
    pub t: i64,
    pub scores: CustomerScores,
    /// The customer's local clock over the planning horizon.
    pub clock: LocalClock,
    /// The horizon's hours; only outbound plans need them (inbound ones answer now).
    slots: OnceCell<SlotTable>,
}

impl Scene<'_> {
    pub fn explain(&self) -> bool {
        self.request.explain
    }

    pub fn slots(&self) -> &SlotTable {
        self.slots.get_or_init(|| {
            SlotTable::new(
                &self.clock,
                &self.settings.contact_policy,
                self.t,
                self.scores.time_lifts.as_ref(),
            )
        })
    }
}

impl DecisionEngine<'_> {
    pub fn decide(&self, input: &DecisionInput<'_>) -> Decision {
        let empty;
        let profile = match input.profile {
            Some(p) => p,
            None => {
                empty = Profile::default();
                &empty
            }
        };
        let scene = self.scene(input, profile);
        let segment_name = scene
            .scores
            .segment
            .and_then(|i| self.models.segments.as_ref()?.segments.get(i))
            .map(|s| s.name.as_str());
        let facts = RequestFacts::new(
            &self.catalog.named_fields,
            profile,
            input.request,
            &scene.scores,
            segment_name,
        );
        let mut history = History::new(self.catalog, profile, input.planned, scene.t);
        let mut suppressed = Suppressions::new(scene.explain());
        let plans = channels::plan(&scene, &history.ledger);
        let candidates = candidates::gather(&scene, &facts, &history, &plans, &mut suppressed);
        let slate = arbitration::choose(
            &scene,
            candidates,
            &plans,
            &mut history.ledger,
            &mut suppressed,
        );
        Decision {
            decision_id: input.decision_id.clone(),
            customer_id: input.request.customer_id.clone(),
            at: rfc3339(scene.t),
            model_version: self.models.version().to_owned(),
            arm: super::answer::ModelArm::Champion,
            degraded: input.degraded,
            actions: slate.actions,
            suppressed: suppressed.list,
            log: LogDetails {
                at: scene.t,
                candidates: slate.logged,
                segment: scene.scores.segment,
                value: scene.scores.value,
                catalog_version: self.catalog.version.clone(),
                policy: self.policy.record(),
            },
        }
    }

    fn scene<'a>(&'a self, input: &'a DecisionInput<'a>, profile: &'a Profile) -> Scene<'a> {
        let at = input.request.at.unwrap_or(input.now);
        let t = at.timestamp();
        let scores = if input.degraded {
            CustomerScores::unknown(t)
        } else {
            self.models.score_customer(profile, t)
        };
        let horizon = self.settings.contact_policy.horizon_hours as i64 * 3600;
        Scene {
            catalog: self.catalog,
            models: self.models,
            settings: self.settings,
            policy: self.policy,
            online: self.online,
            request: input.request,
            decision_id: &input.decision_id,
            profile,
            degraded: input.degraded,
            at,
            t,
            scores,
            clock: LocalClock::new(profile.timezone(), t, t + horizon),
            slots: OnceCell::new(),
        }
    }
}

impl CustomerScores {
    /// Scores for a customer whose profile could not be read: nothing known.
    pub fn unknown(at: i64) -> Self {
        Self {
            at,
            summary: None,
            value: None,
            segment: None,
            week: None,
            time_lifts: None,
        }
    }
}
