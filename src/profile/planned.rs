//! Planned actions: outbound actions a decision answered with, to be sent at their
//! `send_at`, that the sender has not reported yet; the outbound feed hands each to a sender
//! when its time comes. A marketing action counts toward the customer's contact limits as a
//! contact at its `send_at` (a service message toward its offer's cap only,
//! [`PlannedAction::counts`]), so that two planners asking one after the other (two campaigns, a retry)
//! cannot together plan more than the limits allow. It stops counting when the sender
//! reports it (a `contact` event for the same offer on the same channel, at or after the
//! decision; each contact answers one plan), or when it lapses,
//! `contact_policy.planned_grace_hours` after its `send_at` (it was not sent). The stores
//! keep them beside the profile, not in it: recording one is a small append, not a rewrite
//! of the profile.
//!
//! A plan whose recording failed or timed out may still have been written: its action is
//! withdrawn from the answer and the plan taken back from the store in the background
//! ([`super::ProfileStore::withdraw`]); until then it counts (the safe side of the limits).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::state::ContactRecord;
use super::{Channel, DecisionId, OfferId};

/// The format byte of a stored entry: format 2 adds [`PlannedAction::counts`] (format 1's
/// entries, all marketing, still read).
const ENTRY_FORMAT: u8 = 2;
const ENTRY_FORMAT_V1: u8 = 1;

/// Planned actions kept per customer, the newest; older ones are dropped past it (and
/// [`KEPT_AFTER_LAPSE`] after they lapse).
pub const MAX_PLANNED: usize = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedAction {
    pub decision_id: DecisionId,
    pub offer_id: OfferId,
    pub channel: Channel,
    /// When it is to be sent (unix seconds).
    pub send_at: i64,
    /// When the decision was made: a contact of the offer on the channel from then on is
    /// this action, sent.
    pub made_at: i64,
    /// From then on it no longer counts (unix seconds): `send_at` plus the grace.
    pub until: i64,
    /// A marketing action: it counts toward the contact limits. A service message counts
    /// toward its offer's cap only.
    pub counts: bool,
}

/// An entry of format 1: a marketing action.
#[derive(Deserialize)]
struct PlannedActionV1 {
    decision_id: DecisionId,
    offer_id: OfferId,
    channel: Channel,
    send_at: i64,
    made_at: i64,
    until: i64,
}

impl PlannedAction {
    /// One stored entry: a format byte, then postcard (about 50 bytes; a decision reads
    /// every entry of the customer, and JSON took several times as long to read).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ENTRY_FORMAT];
        postcard::to_io(self, &mut out).expect("a planned action encodes");
        out
    }

    /// Every form the entry of this action may be stored in: as [`PlannedAction::encode`]
    /// writes it and, for a marketing action, as format 1 wrote it; removing an action
    /// (withdrawn, erased) removes either.
    pub fn encodings(&self) -> Vec<Vec<u8>> {
        let mut all = vec![self.encode()];
        if self.counts {
            let mut v1 = vec![ENTRY_FORMAT_V1];
            postcard::to_io(
                &(
                    &self.decision_id,
                    &self.offer_id,
                    self.channel,
                    self.send_at,
                    self.made_at,
                    self.until,
                ),
                &mut v1,
            )
            .expect("a planned action encodes");
            all.push(v1);
        }
        all
    }

    /// Stored entries read back, those that do not read left out (with a warning).
    pub fn decode_all(entries: &[Vec<u8>]) -> Vec<Self> {
        entries.iter().filter_map(|b| Self::decode(b)).collect()
    }

    /// An entry read back; `None` (and a warning) for one that does not read.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let read = match bytes.split_first() {
            Some((&ENTRY_FORMAT, rest)) => postcard::from_bytes(rest).map_err(|e| e.to_string()),
            Some((&ENTRY_FORMAT_V1, rest)) => postcard::from_bytes::<PlannedActionV1>(rest)
                .map(|p| Self {
                    decision_id: p.decision_id,
                    offer_id: p.offer_id,
                    channel: p.channel,
                    send_at: p.send_at,
                    made_at: p.made_at,
                    until: p.until,
                    counts: true,
                })
                .map_err(|e| e.to_string()),
            _ => Err("unknown format".to_owned()),
        };
        read.inspect_err(
            |e| tracing::warn!(error = %e, "a stored planned action does not read; ignored"),
        )
        .ok()
    }
}

/// What a decision saw of a customer's planned actions: how many entries were stored and
/// the newest of them, encoded. A decision records its own plans only if the entries are
/// still as it saw them (a compare-and-set), so that two decisions made at once, on two
/// replicas, cannot both take the customer's last contact slot: the one that finds the
/// entries changed decides again, now counting the other's plan. Every entry carries its
/// own decision id, so a changed list always changes the newest entry or the count (the
/// list keeps its newest [`MAX_PLANNED`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlannedMark {
    pub len: usize,
    /// Empty when there is no entry.
    pub newest: Vec<u8>,
    /// The customer's erasure tombstone as read: the erasure's time in decimal, empty when
    /// there is none. A customer erased after the decision read them gets no plan recorded,
    /// whichever replica erased them.
    pub erased: Vec<u8>,
}

impl PlannedMark {
    /// The mark of entries as stored, and the tombstone as stored.
    pub fn of_entries(entries: &[Vec<u8>], erased: Option<Vec<u8>>) -> Self {
        Self {
            len: entries.len(),
            newest: entries.last().cloned().unwrap_or_default(),
            erased: erased.unwrap_or_default(),
        }
    }

    /// The mark of planned actions kept as values, and of the erasure's time (the memory
    /// store).
    pub fn of(planned: &[PlannedAction], erased_at: Option<i64>) -> Self {
        Self {
            len: planned.len(),
            newest: planned
                .last()
                .map(PlannedAction::encode)
                .unwrap_or_default(),
            erased: erased_at
                .map(|t| t.to_string().into_bytes())
                .unwrap_or_default(),
        }
    }
}

/// How much earlier than a plan's decision a contact may be reported and still be that plan
/// sent: the sender's clock or its report time may lag (the first slot is the decision's
/// own second).
pub const CLOCK_SKEW: i64 = 300;

/// The planned actions that still count at `t`, for a customer with these contacts: those
/// made by `t`, not sent and not lapsed (a service message toward its offer's cap only,
/// [`PlannedAction::counts`]). A contact of the offer on the channel, at or after a
/// plan's decision (less [`CLOCK_SKEW`]), is that plan sent; each contact answers one plan,
/// the oldest plans first (lapsed ones too: a plan sent late must not pass for a newer one),
/// each taking the earliest contact that fits it. That answers as many plans as any matching
/// could, and the ones left are the latest made.
pub fn still_counting<'a>(
    planned: &'a [PlannedAction],
    t: i64,
    contacts: &VecDeque<ContactRecord>,
) -> Vec<&'a PlannedAction> {
    if planned.is_empty() {
        // Most decisions: nothing to match, nothing to allocate.
        return Vec::new();
    }
    let mut left: Vec<&PlannedAction> = planned.iter().collect();
    left.sort_by_key(|p| p.made_at);
    let mut used = vec![false; contacts.len()];
    left.retain(|p| {
        let sent = contacts
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                !used[*i]
                    && c.channel == p.channel
                    && c.at >= p.made_at - CLOCK_SKEW
                    && c.offer_id.as_ref() == Some(&p.offer_id)
            })
            .min_by_key(|(_, c)| c.at)
            .map(|(i, _)| i);
        match sent {
            Some(i) => {
                used[i] = true;
                false
            }
            None => true,
        }
    });
    left.retain(|p| p.made_at <= t && t < p.until);
    left
}

/// How long a store keeps a plan after it lapses: so that a contact reported late is still
/// matched to it rather than to a newer plan. Short, since a decision reads every entry kept.
pub const KEPT_AFTER_LAPSE: i64 = 2 * 86_400;

#[cfg(test)]
mod tests {
    use super::*;

    fn planned() -> PlannedAction {
        PlannedAction {
            decision_id: DecisionId::parse("d-1").unwrap(),
            offer_id: OfferId::parse("gold-card").unwrap(),
            channel: Channel::Email,
            send_at: 1_000,
            made_at: 500,
            until: 2_000,
            counts: true,
        }
    }

    fn contact(at: i64, channel: Channel, offer: &str) -> ContactRecord {
        ContactRecord {
            at,
            channel,
            offer_id: Some(OfferId::parse(offer).unwrap()),
            decision_id: None,
        }
    }

    /// A planned service message reads back as one; an entry stored by an earlier version
    /// (format 1) reads as a marketing action.
    #[test]
    fn planned_service_messages_and_old_entries_read_back() {
        let service = PlannedAction {
            counts: false,
            ..planned()
        };
        assert_eq!(
            PlannedAction::decode(&service.encode()),
            Some(service.clone())
        );
        let p = planned();
        let mut v1 = vec![ENTRY_FORMAT_V1];
        postcard::to_io(
            &(
                &p.decision_id,
                &p.offer_id,
                p.channel,
                p.send_at,
                p.made_at,
                p.until,
            ),
            &mut v1,
        )
        .unwrap();
        assert_eq!(PlannedAction::decode(&v1), Some(p.clone()));
        // Both forms are named when an action is removed; a service message has one.
        assert_eq!(p.encodings(), vec![p.encode(), v1]);
        assert_eq!(service.encodings().len(), 1);
    }

    #[test]
    fn a_planned_action_counts_until_it_is_sent_or_lapses() {
        let p = planned();
        let one = std::slice::from_ref(&p);
        let counts = |t, contacts: &[ContactRecord]| {
            !still_counting(one, t, &contacts.iter().cloned().collect()).is_empty()
        };
        assert!(counts(600, &[]));
        assert!(counts(1_999, &[]));
        assert!(!counts(2_000, &[]), "lapsed");
        assert!(!counts(499, &[]), "made after the decision asked about");
        // Reported a little before the decision (the sender's clock): sent all the same.
        assert!(!counts(
            1_100,
            &[contact(500 - CLOCK_SKEW, Channel::Email, "gold-card")]
        ));
        // Sent: the same offer on the same channel, from the decision on.
        assert!(!counts(
            1_100,
            &[contact(1_010, Channel::Email, "gold-card")]
        ));
        // Not this action: another channel, another offer, or before the decision.
        for other in [
            contact(1_010, Channel::Sms, "gold-card"),
            contact(1_010, Channel::Email, "travel-card"),
            contact(500 - CLOCK_SKEW - 1, Channel::Email, "gold-card"),
        ] {
            assert!(counts(1_100, &[other]));
        }
        assert!(p.encode().len() < 64, "{}", p.encode().len());
        assert_eq!(PlannedAction::decode(&p.encode()), Some(p));
        assert_eq!(PlannedAction::decode(b"\x01\xff"), None);
        assert_eq!(PlannedAction::decode(b"{\"offer_id\":1}"), None);
    }

    /// Two plans of one offer and one contact: the contact is one of them sent, the other
    /// still counts; with a second contact, neither does.
    #[test]
    fn each_contact_answers_one_plan() {
        let (a, b) = (
            planned(),
            PlannedAction {
                decision_id: DecisionId::parse("d-2").unwrap(),
                made_at: 700,
                ..planned()
            },
        );
        let both = [b.clone(), a.clone()];
        let first = contact(1_000, Channel::Email, "gold-card");
        let left = still_counting(&both, 1_100, &VecDeque::from([first.clone()]));
        assert_eq!(left, vec![&b], "the older plan is the one sent");
        let second = contact(1_050, Channel::Email, "gold-card");
        assert!(still_counting(&both, 1_100, &VecDeque::from([first, second])).is_empty());
        // A contact before the newer plan's decision can only answer the older one.
        let early = contact(700 - CLOCK_SKEW - 1, Channel::Email, "gold-card");
        let late = contact(1_000, Channel::Email, "gold-card");
        assert!(still_counting(&both, 1_100, &VecDeque::from([late, early])).is_empty());
        // The older plan lapsed: its late contact still answers it, not the newer one.
        let lapsed = PlannedAction {
            until: 900,
            ..a.clone()
        };
        let sent_late = contact(1_000, Channel::Email, "gold-card");
        let plans = [lapsed, b.clone()];
        let left = still_counting(&plans, 1_100, &VecDeque::from([sent_late]));
        assert_eq!(left, vec![&b]);
    }
}
