//! The customer profile: everything decisions and models need, kept up to date by events.
//!
//! [`Profile::apply`] is the one place where an event changes a profile; both stores call it,
//! so they cannot disagree. Every list is bounded by [`ProfileLimits`], which is what bounds
//! a customer's memory (see [`ProfileLimits::byte_budget`]).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::channel::Channel;
use super::event::{AttrValue, Event, EventKind, Outcome};
use super::ids::{DecisionId, OfferId};
use crate::time::{HOURS_PER_WEEK, SECONDS_PER_DAY, day_of, hour_of_week};

/// Bounds on what a profile keeps. Each bound caps one list, so a customer's profile stays
/// within [`ProfileLimits::byte_budget`] whatever the number of events.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileLimits {
    /// Recent events kept for the agent screen.
    pub recent_events: usize,
    /// Contacts kept for contact limits. Limits of up to this many contacts per window are
    /// exact: once a customer has this many recent contacts any smaller limit is reached.
    pub contact_history: usize,
    /// Contacts and responses older than this (counted back from the newest) are dropped.
    pub history_days: u32,
    /// Responses kept (decline cool-downs, the agent screen).
    pub response_history: usize,
    /// Offers with per-customer counts (caps); the least recently touched go first.
    pub offer_stats: usize,
    /// Distinct attributes kept; further new names are ignored (and logged).
    pub attributes: usize,
    /// Distinct purchase days remembered for merging same-day purchases that arrive late.
    pub purchase_days: usize,
    /// The retry window: an applied event's id is remembered (as a hash) at least this long,
    /// however many events the customer takes meanwhile, so that a re-sent event or batch is
    /// recognised and never counted twice.
    pub dedup_window_hours: u32,
    /// The most event ids one customer's memory holds within the retry window: what bounds
    /// it. An event that would need more is refused (`429 too_many_events`, nothing of the
    /// customer's batch applied) rather than remembered with an older id forgotten. At least
    /// the largest batch (1,000).
    pub dedup_ids: usize,
}

impl Default for ProfileLimits {
    fn default() -> Self {
        Self {
            recent_events: 20,
            contact_history: 128,
            history_days: 90,
            response_history: 64,
            offer_stats: 64,
            attributes: 64,
            purchase_days: 1024,
            dedup_window_hours: 24,
            dedup_ids: 20_000,
        }
    }
}

impl ProfileLimits {
    pub fn check(&self) -> Result<(), String> {
        if self.dedup_ids < super::event::MAX_BATCH {
            return Err(format!(
                "profile.dedup_ids must be at least {} (the largest batch) so that a retried batch is recognised, not {}",
                super::event::MAX_BATCH,
                self.dedup_ids
            ));
        }
        if self.dedup_window_hours == 0 {
            return Err("profile.dedup_window_hours (the retry window) must be positive".into());
        }
        if self.recent_events == 0 || self.contact_history == 0 || self.history_days == 0 {
            return Err(
                "profile.recent_events, contact_history and history_days must be positive".into(),
            );
        }
        Ok(())
    }

    /// The most bytes one customer's encoded profile can take under these limits, with
    /// every id and text at its largest allowed length. Typical profiles are far smaller.
    pub fn byte_budget(&self) -> usize {
        // Lengths are limited in characters, up to four bytes each in UTF-8.
        const ID: usize = 4 * 128 + 5; // an id, its length and the prefix it shares
        const OFFER: usize = ID;
        const TIME: usize = 10; // zig-zag varint i64, worst case
        let attributes = self.attributes * (64 + 2 + 4 * 256 + 2 + TIME + 1);
        let recent = self.recent_events * (ID + TIME + 2 + OFFER + 9 + 4 * 64 + 2 + 4);
        let contacts = self.contact_history * (TIME + 2 + OFFER + ID + 1);
        let responses = self.response_history * (TIME + 2 + OFFER + ID + 2);
        let offers = self.offer_stats * (OFFER + 4 * 5 + 3 * TIME + 3);
        let purchases = self.purchase_days * 5 + 64;
        let seen = self.dedup_ids * (10 + 5);
        let fixed = 8 * (TIME + 2) + 8 * 7 * 5 + HOURS_PER_WEEK * 5 + 64;
        attributes + recent + contacts + responses + offers + purchases + seen + fixed
    }
}

/// A customer took more events within the retry window than their de-duplication memory
/// holds ([`ProfileLimits::dedup_ids`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("more than {limit} events within the {window_hours} h retry window (profile.dedup_ids)")]
pub struct TooManyEvents {
    pub limit: usize,
    pub window_hours: u32,
}

/// Whether an event changed the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    New,
    Duplicate,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Unix seconds of the earliest and latest event applied.
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    /// Events applied (duplicates excluded).
    pub events: u64,
    /// Sorted by name, so lookups are binary searches.
    pub attributes: Vec<Attribute>,
    pub consents: [Option<ConsentState>; Channel::COUNT],
    pub purchases: PurchaseHistory,
    pub channels: [ChannelStats; Channel::COUNT],
    /// Customer-initiated touches (visits, purchases, positive responses) by local hour of
    /// week, 0 = Monday 00:00-00:59 in the customer's time zone. Empty until the first one.
    /// Stored sparse while fewer than half the hours have any ([`super::codec`]).
    #[serde(with = "super::codec::engagement")]
    pub engagement: Vec<u32>,
    /// Oldest first.
    pub contacts: VecDeque<ContactRecord>,
    /// Oldest first.
    pub responses: VecDeque<ResponseRecord>,
    pub offers: Vec<OfferStats>,
    /// Oldest first.
    pub recent: VecDeque<RecentEvent>,
    /// De-duplication memory, oldest first.
    pub seen: VecDeque<SeenEvent>,
    /// Actions shown or sent that wait for their answer ([`crate::learning::join`]). Encoded
    /// after the rest, only when there are any (the codec's format 2).
    #[serde(skip)]
    pub exposures: Vec<crate::learning::join::Exposure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    pub value: AttrValue,
    /// When it was set: a late event does not overwrite a newer value.
    pub at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentState {
    pub granted: bool,
    /// When it was given or withdrawn.
    pub at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PurchaseHistory {
    /// Purchase events (not merged).
    pub count: u32,
    pub total_spend: f64,
    /// UTC day numbers (days since 1970-01-01).
    pub first_day: Option<i32>,
    pub first_day_spend: f64,
    pub last_day: i32,
    /// Unix seconds of the latest purchase.
    pub last_at: i64,
    /// Transactions after the first day, same-day purchases merged (BG/NBD's `x`).
    pub repeat_transactions: u32,
    /// Spend of those transactions (Gamma-Gamma's input; the first day is excluded).
    pub repeat_spend: f64,
    /// Distinct purchase days after the first, ascending, the most recent
    /// `ProfileLimits::purchase_days` of them.
    pub days: Vec<i32>,
    /// True once old days were dropped from `days`: a late purchase before the oldest kept
    /// day then counts as a new transaction, since it cannot be known to be a repeat.
    pub days_truncated: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {
    pub contacts: u32,
    pub positive_responses: u32,
    pub negative_responses: u32,
    /// Touches the customer started on this channel (visits, calls, purchases).
    pub interactions: u32,
    pub last_contact_at: Option<i64>,
    pub last_response_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactRecord {
    pub at: i64,
    pub channel: Channel,
    pub offer_id: Option<OfferId>,
    pub decision_id: Option<DecisionId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseRecord {
    pub at: i64,
    pub channel: Option<Channel>,
    pub offer_id: Option<OfferId>,
    pub decision_id: Option<DecisionId>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferStats {
    pub offer_id: OfferId,
    pub contacts: u32,
    pub positive_responses: u32,
    pub declines: u32,
    pub last_contact_at: Option<i64>,
    pub last_positive_at: Option<i64>,
    pub last_declined_at: Option<i64>,
    /// Latest event time touching this offer, for evicting the least recent.
    pub touched_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentEvent {
    pub event_id: String,
    pub at: i64,
    pub kind: RecentKind,
    pub channel: Option<Channel>,
    pub offer_id: Option<OfferId>,
    pub amount: Option<f64>,
    /// Outcome, interaction name, consent change or attribute names, in words.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecentKind {
    Purchase,
    Contact,
    Response,
    Interaction,
    Consent,
    Attributes,
}

impl RecentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecentKind::Purchase => "purchase",
            RecentKind::Contact => "contact",
            RecentKind::Response => "response",
            RecentKind::Interaction => "interaction",
            RecentKind::Consent => "consent",
            RecentKind::Attributes => "attributes",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenEvent {
    /// The event id's fingerprint ([`event_id_hash`]).
    pub id_hash: u64,
    /// Unix minutes when it was applied (ingest time, not event time).
    pub applied_minute: u32,
}

/// The customer-value inputs of BG/NBD and Gamma-Gamma, in days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PurchaseSummary {
    /// Repeat transactions (`x`).
    pub frequency: f64,
    /// Days from the first to the last purchase day (`t_x`).
    pub recency_days: f64,
    /// Days from the first purchase day to the last day before the as-of time (`T`).
    pub age_days: f64,
    /// Mean spend per repeat transaction, 0 without repeats.
    pub mean_repeat_spend: f64,
}

/// The bits of an event id's fingerprint ([`event_id_hash`]).
pub const EVENT_HASH_BITS: u32 = 48;

/// An event id's fingerprint for the de-duplication memory: the top 48 bits of its xxh3,
/// stored in 6 bytes instead of the id's up to 128. A new event is taken for a duplicate
/// only if its fingerprint equals one of the customer's `n` remembered ones, a chance of
/// `n / 2^48`: with the 47 ids of a customer's imported history, one event in about six
/// trillion; with the most a memory holds (`dedup_ids`, 20,000), one in 14 billion.
pub fn event_id_hash(event_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(event_id.as_bytes()) >> (64 - EVENT_HASH_BITS)
}

impl Profile {
    pub fn attribute(&self, name: &str) -> Option<&AttrValue> {
        // A profile holds a handful of attributes: comparing lengths first, most names are
        // passed over without a byte compare, which costs less than a binary search's
        // ordered compares (a decision looks up about a hundred).
        const SCAN: usize = 16;
        let found = if self.attributes.len() <= SCAN {
            self.attributes.iter().find(|a| a.name == name)
        } else {
            self.attributes
                .binary_search_by(|a| a.name.as_str().cmp(name))
                .ok()
                .map(|i| &self.attributes[i])
        };
        found.map(|a| &a.value)
    }

    /// The customer's IANA time zone, when the `timezone` attribute names one.
    pub fn timezone(&self) -> Option<chrono_tz::Tz> {
        match self.attribute("timezone") {
            Some(AttrValue::Text(s)) => s.parse().ok(),
            _ => None,
        }
    }

    pub fn consent(&self, channel: Channel) -> Option<ConsentState> {
        self.consents[channel.index()]
    }

    pub fn channel(&self, channel: Channel) -> &ChannelStats {
        &self.channels[channel.index()]
    }

    pub fn offer(&self, offer_id: &str) -> Option<&OfferStats> {
        self.offers.iter().find(|o| o.offer_id.as_str() == offer_id)
    }

    pub fn is_known(&self) -> bool {
        self.events > 0
    }

    /// BG/NBD and Gamma-Gamma inputs as of `as_of` (unix seconds): ages count whole days up to
    /// the last day before `as_of`, as the customer-value literature does. `None` before the
    /// first purchase.
    pub fn purchase_summary(&self, as_of: i64) -> Option<PurchaseSummary> {
        let p = &self.purchases;
        let first = p.first_day?;
        let end_day = day_of(as_of - 1).max(p.last_day);
        let x = p.repeat_transactions as f64;
        Some(PurchaseSummary {
            frequency: x,
            recency_days: (p.last_day - first) as f64,
            age_days: (end_day - first) as f64,
            mean_repeat_spend: if p.repeat_transactions > 0 {
                p.repeat_spend / x
            } else {
                0.0
            },
        })
    }

    /// Applies one event. `now` is the ingest time (for the de-duplication window), never
    /// the event's own time, so replaying history does not expire its own ids.
    /// Applies one event received at `now`, unless its id was applied within the retry
    /// window. Refused, with the profile unchanged, when remembering it would take more ids
    /// than [`ProfileLimits::dedup_ids`] within the window.
    /// Whether the event's id is in the de-duplication memory (applying it would change
    /// nothing).
    pub fn has_seen(&self, event: &Event) -> bool {
        let hash = event_id_hash(event.event_id.as_str());
        self.seen.iter().any(|s| s.id_hash == hash)
    }

    pub fn apply(
        &mut self,
        event: &Event,
        limits: &ProfileLimits,
        now: i64,
    ) -> Result<Applied, TooManyEvents> {
        let hash = event_id_hash(event.event_id.as_str());
        if self.seen.iter().any(|s| s.id_hash == hash) {
            return Ok(Applied::Duplicate);
        }
        self.remember(hash, now, limits)?;

        let at = event.at.timestamp();
        self.events += 1;
        self.first_seen = Some(self.first_seen.map_or(at, |f| f.min(at)));
        self.last_seen = Some(self.last_seen.map_or(at, |l| l.max(at)));

        let mut detail = None;
        let recent_kind = match &event.kind {
            EventKind::Purchase { amount } => {
                self.purchases.add(day_of(at), at, *amount, limits);
                if let Some(c) = event.channel {
                    self.channels[c.index()].interactions += 1;
                }
                self.engage(event);
                RecentKind::Purchase
            }
            EventKind::Contact => {
                // Parsing guarantees a contact names its channel.
                if let Some(channel) = event.channel {
                    self.add_contact(event, channel, at, limits);
                }
                RecentKind::Contact
            }
            EventKind::Response { outcome } => {
                self.add_response(event, *outcome, at, limits);
                detail = Some(outcome.as_str().to_owned());
                RecentKind::Response
            }
            EventKind::Interaction { name } => {
                if let Some(c) = event.channel {
                    self.channels[c.index()].interactions += 1;
                }
                self.engage(event);
                detail = name.clone();
                RecentKind::Interaction
            }
            EventKind::Consent { channel, granted } => {
                let slot = &mut self.consents[channel.index()];
                if slot.is_none_or(|s| s.at <= at) {
                    *slot = Some(ConsentState {
                        granted: *granted,
                        at,
                    });
                }
                detail = Some(format!(
                    "{} {}",
                    channel,
                    if *granted { "granted" } else { "withdrawn" }
                ));
                RecentKind::Consent
            }
            EventKind::Attributes { values } => {
                for (name, value) in values {
                    self.set_attribute(name, value.as_ref(), at, limits);
                }
                let names: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
                detail = Some(names.join(", "));
                RecentKind::Attributes
            }
        };

        let recent = RecentEvent {
            event_id: event.event_id.as_str().to_owned(),
            at,
            kind: recent_kind,
            channel: event.channel,
            offer_id: event.offer_id.clone(),
            amount: match event.kind {
                EventKind::Purchase { amount } => Some(amount),
                EventKind::Contact
                | EventKind::Response { .. }
                | EventKind::Interaction { .. }
                | EventKind::Consent { .. }
                | EventKind::Attributes { .. } => None,
            },
            detail,
        };
        insert_by_time(&mut self.recent, recent, |r| r.at);
        while self.recent.len() > limits.recent_events {
            self.recent.pop_front();
        }
        Ok(Applied::New)
    }

    /// Forgets the event ids past the retry window at `now` (an id is kept until a whole
    /// window has passed after the minute it was applied in), and checks that `events` more
    /// fit in the de-duplication memory.
    pub fn make_room(
        &mut self,
        events: usize,
        now: i64,
        limits: &ProfileLimits,
    ) -> Result<(), TooManyEvents> {
        let minute = (now.max(0) / 60) as u32;
        let horizon = minute.saturating_sub(limits.dedup_window_hours * 60);
        while self
            .seen
            .front()
            .is_some_and(|s| s.applied_minute < horizon)
        {
            self.seen.pop_front();
        }
        if self.seen.len() + events > limits.dedup_ids {
            return Err(TooManyEvents {
                limit: limits.dedup_ids,
                window_hours: limits.dedup_window_hours,
            });
        }
        Ok(())
    }

    /// Remembers an applied event's id.
    fn remember(
        &mut self,
        hash: u64,
        now: i64,
        limits: &ProfileLimits,
    ) -> Result<(), TooManyEvents> {
        self.make_room(1, now, limits)?;
        let minute = (now.max(0) / 60) as u32;
        self.seen.push_back(SeenEvent {
            id_hash: hash,
            applied_minute: minute,
        });
        Ok(())
    }

    fn engage(&mut self, event: &Event) {
        if self.engagement.len() != HOURS_PER_WEEK {
            self.engagement = vec![0; HOURS_PER_WEEK];
        }
        let how = hour_of_week(event.at, self.timezone());
        self.engagement[how] = self.engagement[how].saturating_add(1);
    }

    fn add_contact(&mut self, event: &Event, channel: Channel, at: i64, limits: &ProfileLimits) {
        let stats = &mut self.channels[channel.index()];
        stats.contacts += 1;
        stats.last_contact_at = Some(stats.last_contact_at.map_or(at, |l| l.max(at)));
        if let Some(offer_id) = &event.offer_id {
            let o = self.offer_mut(offer_id, at, limits);
            o.contacts += 1;
            o.last_contact_at = Some(o.last_contact_at.map_or(at, |l| l.max(at)));
        }
        let record = ContactRecord {
            at,
            channel,
            offer_id: event.offer_id.clone(),
            decision_id: event.decision_id.clone(),
        };
        insert_by_time(&mut self.contacts, record, |c| c.at);
        trim_history(
            &mut self.contacts,
            limits.contact_history,
            limits.history_days,
            |c| c.at,
        );
    }

    fn add_response(&mut self, event: &Event, outcome: Outcome, at: i64, limits: &ProfileLimits) {
        // The channel is where the answer came from; without one, the contact it answers.
        let answered = self
            .contacts
            .iter()
            .rev()
            .find(|c| match &event.decision_id {
                Some(d) => c.decision_id.as_ref() == Some(d),
                None => event.offer_id.is_some() && c.offer_id == event.offer_id && c.at <= at,
            });
        let channel = event.channel.or(answered.map(|c| c.channel));
        let offer_id = event
            .offer_id
            .clone()
            .or_else(|| answered.and_then(|c| c.offer_id.clone()));
        if let Some(c) = channel {
            let stats = &mut self.channels[c.index()];
            if outcome.is_positive() {
                stats.positive_responses += 1;
            } else {
                stats.negative_responses += 1;
            }
            stats.last_response_at = Some(stats.last_response_at.map_or(at, |l| l.max(at)));
        }
        if let Some(offer_id) = &offer_id {
            let o = self.offer_mut(offer_id, at, limits);
            if outcome.is_positive() {
                o.positive_responses += 1;
                o.last_positive_at = Some(o.last_positive_at.map_or(at, |l| l.max(at)));
            } else if outcome == Outcome::Declined {
                o.declines += 1;
                o.last_declined_at = Some(o.last_declined_at.map_or(at, |l| l.max(at)));
            }
        }
        if outcome.is_positive() {
            self.engage(event);
        }
        let record = ResponseRecord {
            at,
            channel,
            offer_id,
            decision_id: event.decision_id.clone(),
            outcome,
        };
        insert_by_time(&mut self.responses, record, |r| r.at);
        trim_history(
            &mut self.responses,
            limits.response_history,
            limits.history_days,
            |r| r.at,
        );
    }

    fn offer_mut(
        &mut self,
        offer_id: &OfferId,
        at: i64,
        limits: &ProfileLimits,
    ) -> &mut OfferStats {
        let i = match self.offers.iter().position(|o| &o.offer_id == offer_id) {
            Some(i) => i,
            None => {
                if self.offers.len() >= limits.offer_stats {
                    let oldest = self
                        .offers
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, o)| o.touched_at)
                        .map(|(i, _)| i)
                        .unwrap_or(0);
                    self.offers.swap_remove(oldest);
                }
                self.offers.push(OfferStats {
                    offer_id: offer_id.clone(),
                    contacts: 0,
                    positive_responses: 0,
                    declines: 0,
                    last_contact_at: None,
                    last_positive_at: None,
                    last_declined_at: None,
                    touched_at: at,
                });
                self.offers.len() - 1
            }
        };
        let o = &mut self.offers[i];
        o.touched_at = o.touched_at.max(at);
        o
    }

    fn set_attribute(
        &mut self,
        name: &str,
        value: Option<&AttrValue>,
        at: i64,
        limits: &ProfileLimits,
    ) {
        match self
            .attributes
            .binary_search_by(|a| a.name.as_str().cmp(name))
        {
            Ok(i) => {
                if self.attributes[i].at > at {
                    return; // a newer value is already there
                }
                match value {
                    Some(v) => {
                        self.attributes[i].value = v.clone();
                        self.attributes[i].at = at;
                    }
                    None => {
                        self.attributes.remove(i);
                    }
                }
            }
            Err(i) => {
                let Some(v) = value else { return };
                if self.attributes.len() >= limits.attributes {
                    tracing::warn!(
                        attribute = name,
                        limit = limits.attributes,
                        "attribute ignored: the profile holds the most attributes allowed"
                    );
                    return;
                }
                self.attributes.insert(
                    i,
                    Attribute {
                        name: name.to_owned(),
                        value: v.clone(),
                        at,
                    },
                );
            }
        }
    }
}

impl PurchaseHistory {
    fn add(&mut self, day: i32, at: i64, amount: f64, limits: &ProfileLimits) {
        self.count += 1;
        self.total_spend += amount;
        self.last_at = self.last_at.max(at);
        let Some(first) = self.first_day else {
            self.first_day = Some(day);
            self.first_day_spend = amount;
            self.last_day = day;
            return;
        };
        if day == first {
            self.first_day_spend += amount;
        } else if day < first {
            // A late event moves the first purchase back: the old first day becomes a repeat.
            self.insert_day(first, limits);
            self.repeat_transactions += 1;
            self.repeat_spend += self.first_day_spend;
            self.first_day = Some(day);
            self.first_day_spend = amount;
        } else {
            let known = self.days.binary_search(&day).is_ok();
            let before_memory = self.days_truncated && self.days.first().is_some_and(|&d| day < d);
            if !known || before_memory {
                self.repeat_transactions += 1;
                self.insert_day(day, limits);
            }
            self.repeat_spend += amount;
        }
        self.last_day = self.last_day.max(day);
    }

    fn insert_day(&mut self, day: i32, limits: &ProfileLimits) {
        if let Err(i) = self.days.binary_search(&day) {
            self.days.insert(i, day);
        }
        if self.days.len() > limits.purchase_days {
            let excess = self.days.len() - limits.purchase_days;
            self.days.drain(..excess);
            self.days_truncated = true;
        }
    }
}

/// Keeps a list ordered by time when late events arrive; in-order events (the common case)
/// go to the back in O(1).
fn insert_by_time<T>(list: &mut VecDeque<T>, item: T, at: impl Fn(&T) -> i64) {
    let t = at(&item);
    if list.back().is_none_or(|last| at(last) <= t) {
        list.push_back(item);
    } else {
        let i = list.partition_point(|x| at(x) <= t);
        list.insert(i, item);
    }
}

fn trim_history<T>(list: &mut VecDeque<T>, max: usize, days: u32, at: impl Fn(&T) -> i64) {
    while list.len() > max {
        list.pop_front();
    }
    if let Some(newest) = list.back().map(&at) {
        let horizon = newest - days as i64 * SECONDS_PER_DAY;
        while list.front().is_some_and(|x| at(x) < horizon) {
            list.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::profile::ids::{CustomerId, EventId};

    fn ev(id: &str, at: &str, kind: EventKind) -> Event {
        Event {
            event_id: EventId::parse(id).unwrap(),
            customer_id: CustomerId::parse("c-1").unwrap(),
            at: DateTime::parse_from_rfc3339(at)
                .unwrap()
                .with_timezone(&Utc),
            channel: None,
            offer_id: None,
            decision_id: None,
            kind,
        }
    }

    fn buy(id: &str, at: &str, amount: f64) -> Event {
        ev(id, at, EventKind::Purchase { amount })
    }

    #[test]
    fn same_day_purchases_merge_into_one_transaction() {
        let limits = ProfileLimits::default();
        let mut p = Profile::default();
        for (i, (at, amount)) in [
            ("2026-01-01T09:00:00Z", 10.0),
            ("2026-01-01T18:00:00Z", 5.0),
            ("2026-01-08T10:00:00Z", 20.0),
            ("2026-01-08T11:00:00Z", 2.0),
            ("2026-01-15T10:00:00Z", 30.0),
        ]
        .into_iter()
        .enumerate()
        {
            p.apply(&buy(&format!("e{i}"), at, amount), &limits, 0)
                .unwrap();
        }
        let as_of = DateTime::parse_from_rfc3339("2026-02-01T00:00:00Z")
            .unwrap()
            .timestamp();
        let s = p.purchase_summary(as_of).unwrap();
        assert_eq!(s.frequency, 2.0);
        assert_eq!(s.recency_days, 14.0);
        assert_eq!(s.age_days, 30.0); // Jan 1 .. Jan 31, the last day before the as-of time
        assert_eq!(s.mean_repeat_spend, (22.0 + 30.0) / 2.0);
        assert_eq!(p.purchases.first_day_spend, 15.0);
    }

    #[test]
    fn a_late_earlier_purchase_turns_the_old_first_day_into_a_repeat() {
        let limits = ProfileLimits::default();
        let mut in_order = Profile::default();
        let mut reversed = Profile::default();
        let events = [
            buy("a", "2026-01-01T09:00:00Z", 10.0),
            buy("b", "2026-01-05T09:00:00Z", 7.0),
            buy("c", "2026-01-05T19:00:00Z", 1.0),
            buy("d", "2026-01-09T09:00:00Z", 4.0),
        ];
        for e in &events {
            in_order.apply(e, &limits, 0).unwrap();
        }
        for e in events.iter().rev() {
            reversed.apply(e, &limits, 0).unwrap();
        }
        assert_eq!(in_order.purchases, reversed.purchases);
        assert_eq!(in_order.purchases.repeat_transactions, 2);
        assert_eq!(in_order.purchases.repeat_spend, 12.0);
    }

    #[test]
    fn a_repeated_event_id_is_applied_once() {
        let limits = ProfileLimits::default();
        let mut p = Profile::default();
        let e = buy("same", "2026-01-01T09:00:00Z", 10.0);
        assert_eq!(p.apply(&e, &limits, 100), Ok(Applied::New));
        assert_eq!(p.apply(&e, &limits, 200), Ok(Applied::Duplicate));
        assert_eq!(p.purchases.count, 1);
        assert_eq!(p.events, 1);
    }

    #[test]
    fn an_older_consent_event_does_not_override_a_newer_one() {
        let limits = ProfileLimits::default();
        let mut p = Profile::default();
        let grant = ev(
            "g",
            "2026-01-02T00:00:00Z",
            EventKind::Consent {
                channel: Channel::Sms,
                granted: true,
            },
        );
        let old_withdraw = ev(
            "w",
            "2026-01-01T00:00:00Z",
            EventKind::Consent {
                channel: Channel::Sms,
                granted: false,
            },
        );
        p.apply(&grant, &limits, 0).unwrap();
        p.apply(&old_withdraw, &limits, 0).unwrap();
        assert!(p.consent(Channel::Sms).unwrap().granted);
    }

    #[test]
    fn engagement_is_counted_in_the_customers_local_hour_of_week() {
        let limits = ProfileLimits::default();
        let mut p = Profile::default();
        p.apply(
            &ev(
                "tz",
                "2026-01-01T00:00:00Z",
                EventKind::Attributes {
                    values: vec![(
                        "timezone".into(),
                        Some(AttrValue::Text("America/New_York".into())),
                    )],
                },
            ),
            &limits,
            0,
        )
        .unwrap();
        // Monday 2026-01-05 15:30 UTC is 10:30 in New York (UTC-5 in January).
        p.apply(
            &ev(
                "v",
                "2026-01-05T15:30:00Z",
                EventKind::Interaction { name: None },
            ),
            &limits,
            0,
        )
        .unwrap();
        assert_eq!(p.engagement[10], 1);
    }

    #[test]
    fn history_lists_stay_within_their_limits() {
        let limits = ProfileLimits::default();
        let mut p = Profile::default();
        for i in 0..5_000 {
            let mut e = ev(&format!("c{i}"), "2026-01-01T00:00:00Z", EventKind::Contact);
            e.at += chrono::Duration::minutes(i);
            e.channel = Some(Channel::Email);
            e.offer_id = Some(OfferId::parse(format!("offer-{}", i % 100)).unwrap());
            p.apply(&e, &limits, i).unwrap();
        }
        assert_eq!(p.contacts.len(), limits.contact_history);
        assert_eq!(p.offers.len(), limits.offer_stats);
        assert_eq!(p.recent.len(), limits.recent_events);
        assert_eq!(p.channel(Channel::Email).contacts, 5_000);
        assert!(p.seen.len() <= limits.dedup_ids);
    }
}
