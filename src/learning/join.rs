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
}

/// What the profile store asks of the learner while it applies events.
pub trait Exposures: Send + Sync {
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
        EventKind::Response { outcome } => {
            let positive = matches!(
                outcome,
                Answer::Accepted | Answer::Clicked | Answer::Converted
            );
            let found = profile.exposures.iter().position(|e| {
                e.at <= at
                    && match decision {
                        Some(d) => {
                            e.decision == d
                                && event.offer_id.as_ref().is_none_or(|o| *o == e.offer_id)
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
