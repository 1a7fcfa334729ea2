//! Outcomes join decisions, in the customer's profile: a `contact` (or an `impression`
//! interaction) carrying a `decision_id` and an offer opens an [`Exposure`] there; a
//! positive answer (`accepted`, `clicked`, `converted`, or a purchase carrying the decision)
//! closes it as a positive [`Outcome`], a decline or an ignored contact as a negative, and an
//! exposure still open at its deadline (the response window) closes as a negative. Because
//! the exposures live in the profile, the join is in the same atomic write as the events
//! that make it, on whichever replica ingests them, in the customer's hash slot.
//!
//! What the learner needs of the decision (the trained model's logit for the action and the
//! learning features) is computed when the exposure opens, from the profile as it was just
//! before the contact: what the decision saw, give or take the events between.

use serde::{Deserialize, Serialize};

use crate::profile::event::{Event, EventKind, Outcome as Answer};
use crate::profile::ids::OfferId;
use crate::profile::{Channel, Profile};

/// The most exposures one customer holds open; opening one more closes the oldest as a
/// negative (its answer would be counted late, or never).
pub const MAX_OPEN: usize = 32;

/// An action shown or sent, waiting for its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    /// A hash of the decision id ([`decision_hash`]).
    pub decision: u64,
    pub offer_id: OfferId,
    pub channel: Channel,
    /// When it was shown or sent (Unix seconds).
    pub at: i64,
    /// When it closes as a negative without an answer.
    pub deadline: i64,
    /// What the learner was told: the prior logit and the learning features.
    pub features: Features,
}

/// The learner's view of one action: the trained model's logit and the learning features
/// (sparse, `(index, value)`), in the layout `layout` names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Features {
    pub layout: u64,
    pub offset: f32,
    pub z: Vec<(u16, f32)>,
}

/// A joined answer: what the learner learns from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    pub offer_id: OfferId,
    pub channel: Channel,
    pub positive: bool,
    /// When the action was shown or sent.
    pub at: i64,
    pub features: Features,
    /// The model arm that decides for the customer (champion without a challenger).
    #[serde(default)]
    pub arm: crate::decision::answer::ModelArm,
}

/// What the profile store asks of the learner while it applies events.
pub trait Exposures: Send + Sync {
    /// The model arm that decides for `customer`.
    fn arm(&self, _customer: &str) -> crate::decision::answer::ModelArm {
        crate::decision::answer::ModelArm::Champion
    }

    /// The features of an action for the customer as their profile stands, or `None` when
    /// the action is not learned (learning off, the offer unknown or switched off).
    fn features(
        &self,
        profile: &Profile,
        offer: &OfferId,
        channel: Channel,
        at: i64,
    ) -> Option<Features>;

    /// The response window, seconds.
    fn window(&self) -> i64;
}

pub fn decision_hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

fn close(exposure: Exposure, positive: bool, outcomes: &mut Vec<Outcome>) {
    outcomes.push(Outcome {
        offer_id: exposure.offer_id,
        channel: exposure.channel,
        positive,
        at: exposure.at,
        features: exposure.features,
        arm: Default::default(),
    });
}

/// Closes, as negatives, the customer's exposures whose deadline is at or before `now`.
pub fn expire(profile: &mut Profile, now: i64, outcomes: &mut Vec<Outcome>) {
    if profile.exposures.iter().all(|e| e.deadline > now) {
        return;
    }
    let (due, open): (Vec<Exposure>, Vec<Exposure>) = std::mem::take(&mut profile.exposures)
        .into_iter()
        .partition(|e| e.deadline <= now);
    profile.exposures = open;
    for e in due {
        close(e, false, outcomes);
    }
}

/// What `event` (about to be applied to `profile`) does to the customer's exposures.
pub fn observe(
    profile: &mut Profile,
    event: &Event,
    learner: &dyn Exposures,
    outcomes: &mut Vec<Outcome>,
) {
    let at = event.at.timestamp();
    let decision = event
        .decision_id
        .as_ref()
        .map(|d| decision_hash(d.as_str()));
    match &event.kind {
        EventKind::Contact => open(profile, event, decision, learner, outcomes),
        EventKind::Interaction { name } if name.as_deref() == Some("impression") => {
            open(profile, event, decision, learner, outcomes)
        }
        // A click the website snippet reports answers like a `clicked` response.
        EventKind::Interaction { name }
            if name.as_deref() == Some("click") && decision.is_some() =>
        {
            answer(profile, event, decision, at, true, outcomes)
        }
        EventKind::Response { outcome } => {
            let positive = matches!(
                outcome,
                Answer::Accepted | Answer::Clicked | Answer::Converted
            );
            answer(profile, event, decision, at, positive, outcomes)
        }
        EventKind::Purchase { .. } => {
            if let Some(d) = decision
                && let Some(i) = profile
                    .exposures
                    .iter()
                    .position(|e| e.decision == d && e.at <= at)
            {
                let e = profile.exposures.remove(i);
                close(e, true, outcomes);
            }
        }
        EventKind::Interaction { .. }
        | EventKind::Consent { .. }
        | EventKind::Attributes { .. } => {}
    }
}

fn open(
    profile: &mut Profile,
    event: &Event,
    decision: Option<u64>,
    learner: &dyn Exposures,
    outcomes: &mut Vec<Outcome>,
) {
    let (Some(decision), Some(offer), Some(channel)) = (decision, &event.offer_id, event.channel)
    else {
        return;
    };
    // An impression and then a contact for the same action open it once.
    if profile
        .exposures
        .iter()
        .any(|e| e.decision == decision && e.offer_id == *offer)
    {
        return;
    }
    let at = event.at.timestamp();
    let Some(features) = learner.features(profile, offer, channel, at) else {
        return;
    };
    if profile.exposures.len() >= MAX_OPEN {
        let oldest = profile.exposures.remove(0);
        close(oldest, false, outcomes);
    }
    profile.exposures.push(Exposure {
        decision,
        offer_id: offer.clone(),
        channel,
        at,
        deadline: at + learner.window(),
        features,
    });
}

/// The earliest deadline among the customer's open exposures.
pub fn next_deadline(profile: &Profile) -> Option<i64> {
    profile.exposures.iter().map(|e| e.deadline).min()
}

/// An answer to one of the customer's exposures: the one of its decision (and offer), or
/// without a decision id the latest exposure of the offer; it closes as `positive` or not.
fn answer(
    profile: &mut Profile,
    event: &Event,
    decision: Option<u64>,
    at: i64,
    positive: bool,
    outcomes: &mut Vec<Outcome>,
) {
    let found = profile.exposures.iter().position(|e| {
        e.at <= at
            && match decision {
                Some(d) => {
                    e.decision == d && event.offer_id.as_ref().is_none_or(|o| *o == e.offer_id)
                }
                None => event.offer_id.as_ref() == Some(&e.offer_id),
            }
    });
    // Without a decision id, the latest exposure of the offer.
    let found = match (decision, found) {
        (None, Some(_)) => profile
            .exposures
            .iter()
            .rposition(|e| e.at <= at && event.offer_id.as_ref() == Some(&e.offer_id)),
        (_, f) => f,
    };
    if let Some(i) = found {
        let e = profile.exposures.remove(i);
        close(e, positive, outcomes);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::profile::ids::{CustomerId, DecisionId, EventId};
    use crate::profile::store::apply_events;

    /// Features that name the offer's position, so a test can tell outcomes apart.
    struct Fixed;
    impl Exposures for Fixed {
        fn features(&self, _: &Profile, _: &OfferId, _: Channel, at: i64) -> Option<Features> {
            Some(Features {
                layout: 7,
                offset: -2.0,
                z: vec![(0, 1.0), (1, (at % 10) as f32)],
            })
        }
        fn window(&self) -> i64 {
            3600
        }
    }

    fn event(id: &str, at: i64, decision: Option<&str>, kind: EventKind) -> Event {
        Event {
            event_id: EventId::parse(id).unwrap(),
            customer_id: CustomerId::parse("c-1").unwrap(),
            at: Utc.timestamp_opt(at, 0).unwrap(),
            channel: Some(Channel::Email),
            offer_id: Some(OfferId::parse("card").unwrap()),
            decision_id: decision.map(|d| DecisionId::parse(d).unwrap()),
            kind,
        }
    }

    /// A contact opens an exposure; its decision's positive answer closes it as a positive
    /// (once, even when re-sent); a contact left unanswered closes as a negative at its
    /// deadline; an answer to another decision joins nothing.
    #[test]
    fn answers_join_their_decisions_and_silence_is_a_negative() {
        let limits = crate::profile::ProfileLimits::default();
        let customer = CustomerId::parse("c-1").unwrap();
        let mut profile = Profile::default();
        let mut outcomes = Vec::new();
        let t0 = 1_700_000_000;
        let answer = |id: &str, at, d| {
            event(
                id,
                at,
                d,
                EventKind::Response {
                    outcome: Answer::Clicked,
                },
            )
        };
        let batch = [
            event("e1", t0, Some("d-1"), EventKind::Contact),
            event("e2", t0 + 1, Some("d-2"), EventKind::Contact),
            answer("e3", t0 + 60, Some("d-1")),
            answer("e3", t0 + 60, Some("d-1")), // re-sent
            answer("e4", t0 + 70, Some("d-9")), // no such decision
        ];
        let refs: Vec<&Event> = batch.iter().collect();
        let now = t0 + 100;
        apply_events(
            &mut profile,
            &customer,
            &refs,
            None,
            &limits,
            now,
            Some(&Fixed),
            &mut outcomes,
        )
        .unwrap();
        assert_eq!(outcomes.len(), 1);
        assert!(outcomes[0].positive);
        assert_eq!(outcomes[0].at, t0);
        assert_eq!(profile.exposures.len(), 1);
        assert_eq!(next_deadline(&profile), Some(t0 + 1 + 3600));
        // The encoding keeps the open exposure; a decision's decode reads past it.
        let bytes = crate::profile::codec::encode(&profile);
        assert_eq!(crate::profile::codec::decode(&bytes).unwrap(), profile);
        let for_decision = crate::profile::codec::decode_for_decision(&bytes).unwrap();
        assert!(for_decision.exposures.is_empty());
        // Past the deadline, with no answer: a negative.
        apply_events(
            &mut profile,
            &customer,
            &[],
            None,
            &limits,
            t0 + 3602,
            Some(&Fixed),
            &mut outcomes,
        )
        .unwrap();
        assert_eq!(outcomes.len(), 2);
        assert!(!outcomes[1].positive);
        assert_eq!(outcomes[1].features.z[1], (1, ((t0 + 1) % 10) as f32));
        assert!(profile.exposures.is_empty());
    }
}
