//! What a decision answers (`POST /v1/decisions`, API.md section 3), and what it hands the
//! decision log beyond the answer.

use serde::Serialize;
use utoipa::ToSchema;

use super::contact_policy::Block;
use crate::profile::{Channel, CustomerId, DecisionId, OfferId};

/// Which model set decided: the champion (`models.dir`) or, for a stable share of customers,
/// the challenger (`models.challenger_dir`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ModelArm {
    #[default]
    Champion,
    Challenger,
}

impl ModelArm {
    pub const ALL: [ModelArm; 2] = [ModelArm::Champion, ModelArm::Challenger];

    pub fn as_str(self) -> &'static str {
        match self {
            ModelArm::Champion => "champion",
            ModelArm::Challenger => "challenger",
        }
    }
}

/// The answer of `POST /v1/decisions`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Decision {
    /// Unique; events that answer this decision carry it.
    #[schema(value_type = String)]
    pub decision_id: DecisionId,
    #[schema(value_type = String)]
    pub customer_id: CustomerId,
    /// The time the decision was made as of.
    pub at: String,
    pub model_version: String,
    /// Which model set decided.
    pub arm: ModelArm,
    /// True when the profile store could not be read and a fallback ranking decided, or when
    /// the planned outbound actions could not be recorded and were left out.
    pub degraded: bool,
    pub actions: Vec<Action>,
    /// Only with `explain`: every candidate left out, with its reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Vec<Suppressed>>,
    /// For the decision log, not the answer.
    #[serde(skip)]
    pub log: LogDetails,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Action {
    pub rank: usize,
    #[schema(value_type = String)]
    pub offer_id: OfferId,
    pub channel: Channel,
    pub send_at: String,
    /// `send_at` in Unix seconds, for the decision log.
    #[serde(skip)]
    pub send_at_unix: i64,
    /// An outbound action to be sent at `send_at`: recorded as planned, for the outbound
    /// feed ([`crate::profile::planned`]).
    #[serde(skip)]
    pub planned: bool,
    /// A planned marketing action (not a service message): it counts toward the contact
    /// limits of later decisions until it is sent or lapses.
    #[serde(skip)]
    pub counts_as_contact: bool,
    /// Predicted probability of a positive response.
    pub propensity: f64,
    /// Value of a positive response to the business (margin, lifetime value, contact cost).
    pub value: f64,
    /// The arbitration score that ranked it.
    pub priority: f64,
    /// Probability with which the policy chose this action at this rank.
    pub probability: f64,
    /// Only with `explain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub explanation: Option<serde_json::Value>,
}

/// A candidate left out of the answer, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Suppressed {
    #[schema(value_type = String)]
    pub offer_id: OfferId,
    /// The channel, when the reason is about one.
    pub channel: Option<Channel>,
    pub reason: Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Why a candidate was left out. The wire name of each is [`Reason::as_str`] (serde writes the
/// same, a test holds them together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// An outbound channel without the customer's consent.
    NoConsent,
    /// The customer asked not to be contacted at all.
    DoNotContact,
    /// A channel's contact limit is reached at every hour of the horizon.
    ChannelLimit,
    /// The limit over all outbound channels is reached at every hour of the horizon.
    OutboundLimit,
    /// Every hour of the horizon is in the customer's quiet hours.
    QuietHours,
    /// The offer's eligibility condition is false for the customer.
    NotEligible,
    /// Outside the offer's validity dates.
    NotValidNow,
    /// The offer is not shown in the requested placement.
    Placement,
    /// The offer's per-customer contact cap is reached.
    OfferCap,
    /// The customer has answered the offer positively as often as it allows.
    AlreadyAccepted,
    /// The customer declined the offer within the cool-down.
    DeclinedRecently,
    /// The offer does not use the channel.
    ChannelNotOffered,
    /// Its priority is below `decision.min_priority` (or not positive).
    BelowThreshold,
    /// The profile could not be read: outbound channels cannot be checked.
    ProfileUnavailable,
    /// Another action of the offer was chosen, or the slate was full.
    SlateFull,
    /// An offer of the same priority group was chosen.
    PriorityGroupTaken,
}

impl Reason {
    pub const ALL: [Reason; 16] = [
        Reason::NoConsent,
        Reason::DoNotContact,
        Reason::ChannelLimit,
        Reason::OutboundLimit,
        Reason::QuietHours,
        Reason::NotEligible,
        Reason::NotValidNow,
        Reason::Placement,
        Reason::OfferCap,
        Reason::AlreadyAccepted,
        Reason::DeclinedRecently,
        Reason::ChannelNotOffered,
        Reason::BelowThreshold,
        Reason::ProfileUnavailable,
        Reason::SlateFull,
        Reason::PriorityGroupTaken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoConsent => "no_consent",
            Reason::DoNotContact => "do_not_contact",
            Reason::ChannelLimit => "channel_limit",
            Reason::OutboundLimit => "outbound_limit",
            Reason::QuietHours => "quiet_hours",
            Reason::NotEligible => "not_eligible",
            Reason::NotValidNow => "not_valid_now",
            Reason::Placement => "placement",
            Reason::OfferCap => "offer_cap",
            Reason::AlreadyAccepted => "already_accepted",
            Reason::DeclinedRecently => "declined_recently",
            Reason::ChannelNotOffered => "channel_not_offered",
            Reason::BelowThreshold => "below_threshold",
            Reason::ProfileUnavailable => "profile_unavailable",
            Reason::SlateFull => "slate_full",
            Reason::PriorityGroupTaken => "priority_group_taken",
        }
    }
}

impl From<Block> for Reason {
    fn from(b: Block) -> Self {
        match b {
            Block::NoConsent => Reason::NoConsent,
            Block::DoNotContact => Reason::DoNotContact,
            Block::ChannelLimit => Reason::ChannelLimit,
            Block::OutboundLimit => Reason::OutboundLimit,
            Block::QuietHours => Reason::QuietHours,
        }
    }
}

/// The suppressed candidates of a decision, kept only when it is to explain itself.
pub(super) struct Suppressions {
    pub list: Option<Vec<Suppressed>>,
}

impl Suppressions {
    pub fn new(explain: bool) -> Self {
        Self {
            list: explain.then(Vec::new),
        }
    }

    /// Records a left-out candidate; `detail` is only made when it is kept.
    pub fn add(
        &mut self,
        offer_id: &OfferId,
        channel: Option<Channel>,
        reason: Reason,
        detail: impl FnOnce() -> Option<String>,
    ) {
        if let Some(list) = &mut self.list {
            list.push(Suppressed {
                offer_id: offer_id.clone(),
                channel,
                reason,
                detail: detail(),
            });
        }
    }
}

impl Decision {
    /// The answer as JSON. Without explanations (every decision but those asked to
    /// `explain`) it is written by hand (`decision::json`), as serde would write it.
    pub fn to_json(&self) -> Vec<u8> {
        if self.suppressed.is_some() || self.actions.iter().any(|a| a.explanation.is_some()) {
            // Serialising plain data into a Vec cannot fail.
            return serde_json::to_vec(self).expect("a decision serialises");
        }
        let mut out = Vec::with_capacity(256 + 200 * self.actions.len());
        let mut w = super::json::Json(&mut out);
        w.decision_head(self);
        w.degraded(self.degraded);
        w.raw(b",\"actions\":");
        w.actions(&self.actions);
        w.raw(b"}");
        out
    }
}

/// What the decision log keeps beyond the answer: every scored candidate with its rank-1
/// choice probability, the customer features the decision saw, and the policy that chose.
#[derive(Debug, Clone, Default)]
pub struct LogDetails {
    /// The decision's time, Unix seconds.
    pub at: i64,
    pub candidates: Vec<LoggedCandidate>,
    pub segment: Option<usize>,
    pub value: Option<crate::model::value::ValueFigures>,
    pub catalog_version: String,
    /// The choosing policy as the log records it ([`super::policy::Policy::record`]): a
    /// JSON object with its kind and parameters, made once per policy.
    pub policy: std::sync::Arc<str>,
}

#[derive(Debug, Clone)]
pub struct LoggedCandidate {
    pub offer_id: OfferId,
    pub channel: Channel,
    pub send_at: i64,
    pub propensity: f64,
    pub value: f64,
    pub priority: f64,
    /// Probability that the policy would pick it first.
    pub probability: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(rank: usize, offer_id: &str, channel: Channel, x: f64) -> Action {
        Action {
            rank,
            offer_id: OfferId::parse(offer_id).unwrap(),
            channel,
            send_at: "2026-11-22T18:00:00Z".into(),
            send_at_unix: 1_795_370_400,
            planned: false,
            counts_as_contact: false,
            propensity: x,
            value: 45.0 * x,
            priority: x / 3.0,
            probability: 0.95,
            explanation: None,
        }
    }

    /// The hand-written answer is the one serde writes, byte for byte, for every shape of
    /// answer.
    #[test]
    fn the_answer_is_the_decision_as_serde_writes_it() {
        let mut decision = Decision {
            decision_id: DecisionId::parse("0193c0de-0000-7000-8000-000000000000").unwrap(),
            customer_id: CustomerId::parse("c-42").unwrap(),
            at: "2026-11-22T10:15:00Z".into(),
            model_version: "2026-11-22T09:00:00Z \"3f2a\"".into(),
            arm: ModelArm::Challenger,
            degraded: false,
            actions: vec![
                action(1, "gold-card", Channel::Email, 0.031),
                action(2, "loan-2026.b", Channel::CallCentre, f64::NAN),
            ],
            suppressed: None,
            log: LogDetails::default(),
        };
        let same = |d: &Decision| {
            assert_eq!(
                String::from_utf8(d.to_json()).unwrap(),
                serde_json::to_string(d).unwrap()
            );
        };
        same(&decision);
        decision.degraded = true;
        decision.actions.clear();
        same(&decision);
        decision
            .actions
            .push(action(1, "gold-card", Channel::Web, 0.5));
        decision.actions[0].explanation = Some(serde_json::json!({"why": "test"}));
        decision.suppressed = Some(vec![Suppressed {
            offer_id: OfferId::parse("loan").unwrap(),
            channel: Some(Channel::Sms),
            reason: Reason::NoConsent,
            detail: None,
        }]);
        same(&decision);
        let text = String::from_utf8(decision.to_json()).unwrap();
        assert!(text.contains("\"explanation\"") && text.contains("\"suppressed\""));
    }

    #[test]
    fn every_reason_is_written_by_its_wire_name() {
        let mut names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        for r in Reason::ALL {
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Reason::ALL.len());
    }
}
