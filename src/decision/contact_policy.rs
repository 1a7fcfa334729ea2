//! Contact policy: the customer's time comes before any offer.
//!
//! Outbound channels need a granted consent, and an attribute (default `do_not_contact`) set
//! to true stops all outbound contact. Marketing contacts are limited over rolling windows:
//! per channel (e.g. 1 email in 3 days), per offer (the catalog's caps), and overall outbound
//! per week; an offer the customer declined is not offered again for a cool-down; nothing is
//! sent in the customer's quiet hours (their time zone). Service messages do not count toward
//! the limits and are not held back by them, but still need consent and respect quiet hours.
//! Contacts count once the sender reports them with a `contact` event; an outbound action a
//! decision planned counts from the decision on, until the sender reports it or
//! `planned_grace_hours` after its `send_at` ([`crate::profile::planned`]).

use serde::{Deserialize, Serialize};

use crate::profile::state::OfferStats;
use crate::profile::{AttrValue, Channel, Profile};
use crate::time::SECONDS_PER_DAY;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContactPolicy {
    /// At most `max` marketing contacts on `channel` in any `days` days.
    pub channel_limits: Vec<ChannelLimit>,
    /// At most this many outbound marketing contacts over all channels...
    pub outbound_max: u32,
    /// ...in any this many days.
    pub outbound_days: u32,
    /// An offer declined within this many days is not offered again.
    pub decline_cooldown_days: u32,
    /// No outbound contact from this local hour...
    pub quiet_hours_start: u32,
    /// ...until this local hour (start > end wraps over midnight; equal means none).
    pub quiet_hours_end: u32,
    /// Outbound actions are planned within this many hours of the decision.
    pub horizon_hours: u32,
    /// An outbound marketing action a decision planned counts toward the limits of later
    /// decisions until the sender reports it sent (a `contact` event of the offer on the
    /// channel) or until this many hours after its `send_at`; 0 records none.
    pub planned_grace_hours: u32,
    /// A profile attribute that, when true (or "true"/"yes"), stops all outbound contact.
    pub do_not_contact_attribute: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelLimit {
    pub channel: Channel,
    pub max: u32,
    pub days: u32,
}

impl Default for ContactPolicy {
    fn default() -> Self {
        let limit = |channel, max, days| ChannelLimit { channel, max, days };
        Self {
            channel_limits: vec![
                limit(Channel::Email, 1, 3),
                limit(Channel::Sms, 2, 7),
                limit(Channel::Push, 3, 7),
                limit(Channel::DirectMail, 1, 30),
            ],
            outbound_max: 4,
            outbound_days: 7,
            decline_cooldown_days: 30,
            quiet_hours_start: 21,
            quiet_hours_end: 8,
            horizon_hours: 72,
            planned_grace_hours: 24,
            do_not_contact_attribute: "do_not_contact".into(),
        }
    }
}

/// Why an outbound contact may not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Block {
    NoConsent,
    DoNotContact,
    ChannelLimit,
    OutboundLimit,
    QuietHours,
}

impl ContactPolicy {
    /// Checks the policy against the profile's limits (the profile must remember enough
    /// contacts, far enough back, for every limit to be exact).
    pub fn check(&self, contact_history: usize, history_days: u32) -> Result<(), String> {
        for l in &self.channel_limits {
            if l.days == 0 || l.days > history_days || l.max as usize > contact_history {
                return Err(format!(
                    "decision.contact_policy: the {} limit needs 1..={history_days} days (profile.history_days) and a max of at most {contact_history} (profile.contact_history)",
                    l.channel
                ));
            }
            if !l.channel.is_outbound() {
                return Err(format!(
                    "decision.contact_policy: {} is an inbound channel; limits apply to outbound ones",
                    l.channel
                ));
            }
        }
        if self.outbound_days == 0
            || self.outbound_days > history_days
            || self.outbound_max as usize > contact_history
        {
            return Err(format!(
                "decision.contact_policy: outbound_days must be 1..={history_days} and outbound_max at most {contact_history}"
            ));
        }
        if self.quiet_hours_start > 23 || self.quiet_hours_end > 23 {
            return Err("decision.contact_policy: quiet hours are local hours 0..=23".into());
        }
        if self.horizon_hours == 0 || self.horizon_hours > 24 * 14 {
            return Err("decision.contact_policy: horizon_hours must be 1..=336".into());
        }
        if self.planned_grace_hours > 24 * 14 {
            return Err("decision.contact_policy: planned_grace_hours must be 0..=336".into());
        }
        Ok(())
    }

    pub fn is_quiet(&self, local_hour: u32) -> bool {
        let (s, e) = (self.quiet_hours_start, self.quiet_hours_end);
        match s.cmp(&e) {
            std::cmp::Ordering::Equal => false,
            std::cmp::Ordering::Less => local_hour >= s && local_hour < e,
            std::cmp::Ordering::Greater => local_hour >= s || local_hour < e,
        }
    }

    pub fn do_not_contact(&self, profile: &Profile) -> bool {
        match profile.attribute(&self.do_not_contact_attribute) {
            Some(AttrValue::Bool(b)) => *b,
            Some(AttrValue::Text(t)) => {
                matches!(t.to_ascii_lowercase().as_str(), "true" | "yes" | "1")
            }
            Some(AttrValue::Number(n)) => *n != 0.0,
            None => false,
        }
    }

    pub fn limit_of(&self, channel: Channel) -> Option<&ChannelLimit> {
        self.channel_limits.iter().find(|l| l.channel == channel)
    }
}

/// The outbound marketing contacts that count toward limits: the profile's history (service
/// messages excluded) plus the actions already planned in this decision. Times sorted per
/// channel so that a window count is two binary searches.
#[derive(Debug, Clone, Default)]
pub struct ContactLedger {
    by_channel: [Vec<i64>; Channel::COUNT],
    all: Vec<i64>,
}

fn count_in(times: &[i64], from: i64, to: i64) -> usize {
    // Contacts at times in (from, to].
    times.partition_point(|&t| t <= to) - times.partition_point(|&t| t <= from)
}

impl ContactLedger {
    /// `service[i]` tells whether the profile's i-th contact was a service message (those do
    /// not count).
    pub fn new(profile: &Profile, service: &[bool]) -> Self {
        let mut ledger = Self::default();
        for (i, c) in profile.contacts.iter().enumerate() {
            if !c.channel.is_outbound() || service.get(i).copied().unwrap_or(false) {
                continue;
            }
            ledger.by_channel[c.channel.index()].push(c.at);
            ledger.all.push(c.at);
        }
        // Contact history is kept sorted by time, so these already are; sorting again is
        // cheap and keeps this correct whatever the source.
        for v in &mut ledger.by_channel {
            v.sort_unstable();
        }
        ledger.all.sort_unstable();
        ledger
    }

    /// Records a contact planned by this decision.
    pub fn plan(&mut self, channel: Channel, at: i64) {
        let v = &mut self.by_channel[channel.index()];
        let i = v.partition_point(|&t| t <= at);
        v.insert(i, at);
        let i = self.all.partition_point(|&t| t <= at);
        self.all.insert(i, at);
    }

    /// Whether one more marketing contact on `channel` at `at` keeps every limit: every
    /// window containing `at` must hold at most `max` contacts, the new one included.
    pub fn allows(&self, policy: &ContactPolicy, channel: Channel, at: i64) -> Result<(), Block> {
        if let Some(l) = policy.limit_of(channel)
            && !window_allows(
                &self.by_channel[channel.index()],
                at,
                l.days as i64 * SECONDS_PER_DAY,
                l.max,
            )
        {
            return Err(Block::ChannelLimit);
        }
        if !window_allows(
            &self.all,
            at,
            policy.outbound_days as i64 * SECONDS_PER_DAY,
            policy.outbound_max,
        ) {
            return Err(Block::OutboundLimit);
        }
        Ok(())
    }

    /// [`ContactLedger::allows`] for many times at once (`times` ascending), in one pass per
    /// limit instead of a search per time: what planning over a horizon of hours needs.
    pub fn allows_each(
        &self,
        policy: &ContactPolicy,
        channel: Channel,
        times: &[i64],
    ) -> Vec<Result<(), Block>> {
        let mut out = vec![Ok(()); times.len()];
        if let Some(l) = policy.limit_of(channel) {
            sweep(
                &self.by_channel[channel.index()],
                times,
                l.days as i64 * SECONDS_PER_DAY,
                l.max,
                Block::ChannelLimit,
                &mut out,
            );
        }
        sweep(
            &self.all,
            times,
            policy.outbound_days as i64 * SECONDS_PER_DAY,
            policy.outbound_max,
            Block::OutboundLimit,
            &mut out,
        );
        out
    }
}

/// Marks in `out` each of `slots` (ascending) where one more contact would break "at most
/// `max` in any window of `len`" given the contacts at `times` (ascending); see
/// [`window_allows`] for which windows matter. Two pointers walk both lists once.
fn sweep(
    times: &[i64],
    slots: &[i64],
    len: i64,
    max: u32,
    block: Block,
    out: &mut [Result<(), Block>],
) {
    let max = max as usize;
    let n = times.len();
    // Contacts in the window ending at each contact.
    let mut at_end = vec![0usize; n];
    let (mut lo, mut hi) = (0, 0);
    for j in 0..n {
        while times[lo] <= times[j] - len {
            lo += 1;
        }
        hi = hi.max(j);
        while hi < n && times[hi] <= times[j] {
            hi += 1;
        }
        at_end[j] = hi - lo;
    }
    let (mut lo, mut hi, mut later) = (0, 0, 0);
    for (i, &s) in slots.iter().enumerate() {
        while lo < n && times[lo] <= s - len {
            lo += 1;
        }
        while hi < n && times[hi] <= s {
            hi += 1;
        }
        later = later.max(hi);
        while later < n && times[later] < s + len {
            later += 1;
        }
        let ok = max > 0 && hi - lo < max && at_end[hi..later].iter().all(|&c| c < max);
        if !ok && out[i].is_ok() {
            out[i] = Err(block);
        }
    }
}

/// A new contact at `at` keeps "at most `max` in any window of `len` seconds" if every window
/// that contains it does: those start in (at - len, at], and the count only changes at
/// contact times, so checking windows ending at `at` and just before each later contact
/// within `len` is enough.
fn window_allows(times: &[i64], at: i64, len: i64, max: u32) -> bool {
    if max == 0 {
        return false;
    }
    let max = max as usize;
    // The common case: every contact is in the past, so only the window ending at `at`
    // matters.
    if times.last().is_none_or(|&last| last <= at) {
        return times.len() - times.partition_point(|&t| t <= at - len) < max;
    }
    // Windows (end - len, end] containing `at`: end in [at, at + len).
    if count_in(times, at - len, at) >= max {
        return false;
    }
    let later =
        &times[times.partition_point(|&t| t <= at)..times.partition_point(|&t| t < at + len)];
    later
        .iter()
        .all(|&end| count_in(times, end - len, end) < max)
}

/// Whether the customer declined the offer within the cool-down, from their history with
/// it (`Profile::offer`).
pub fn declined_recently(history: Option<&OfferStats>, at: i64, policy: &ContactPolicy) -> bool {
    history
        .and_then(|o| o.last_declined_at)
        .is_some_and(|t| at - t < policy.decline_cooldown_days as i64 * SECONDS_PER_DAY && t <= at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_wrap_over_midnight() {
        let p = ContactPolicy::default();
        assert!(p.is_quiet(21) && p.is_quiet(23) && p.is_quiet(0) && p.is_quiet(7));
        assert!(!p.is_quiet(8) && !p.is_quiet(20));
        let day = ContactPolicy {
            quiet_hours_start: 12,
            quiet_hours_end: 14,
            ..ContactPolicy::default()
        };
        assert!(day.is_quiet(12) && day.is_quiet(13) && !day.is_quiet(14) && !day.is_quiet(11));
    }

    #[test]
    fn a_window_limit_counts_contacts_on_both_sides_of_the_new_one() {
        let day = SECONDS_PER_DAY;
        // 1 in 3 days: a contact 2 days before or 2 days after blocks; 3 days apart is fine.
        assert!(!window_allows(&[0], 2 * day, 3 * day, 1));
        assert!(!window_allows(&[4 * day], 2 * day, 3 * day, 1));
        assert!(window_allows(&[0], 3 * day, 3 * day, 1));
        // 2 in 7 days.
        assert!(window_allows(&[0], day, 7 * day, 2));
        assert!(!window_allows(&[0, day], 2 * day, 7 * day, 2));
        assert!(!window_allows(&[0], 0, day, 0));
    }

    #[test]
    fn checking_many_times_at_once_agrees_with_checking_each() {
        let policy = ContactPolicy::default();
        let mut ledger = ContactLedger::default();
        let day = SECONDS_PER_DAY;
        for t in [
            -5 * day,
            -2 * day,
            -day / 2,
            day,
            2 * day + 3600,
            2 * day + 7200,
        ] {
            ledger.plan(Channel::Email, t);
        }
        ledger.plan(Channel::Sms, day / 3);
        let times: Vec<i64> = (0..80).map(|k| k * 3600).collect();
        for channel in [Channel::Email, Channel::Sms, Channel::Push] {
            let each = ledger.allows_each(&policy, channel, &times);
            for (t, got) in times.iter().zip(each) {
                assert_eq!(got, ledger.allows(&policy, channel, *t), "{channel} at {t}");
            }
        }
    }

    #[test]
    fn planned_contacts_count_like_past_ones() {
        let policy = ContactPolicy::default();
        let mut ledger = ContactLedger::default();
        assert!(ledger.allows(&policy, Channel::Email, 1000).is_ok());
        ledger.plan(Channel::Email, 1000);
        assert_eq!(
            ledger.allows(&policy, Channel::Email, 2000),
            Err(Block::ChannelLimit)
        );
        for i in 0..3 {
            ledger.plan(Channel::Push, 3000 + i);
        }
        assert_eq!(
            ledger.allows(&policy, Channel::Sms, 5000),
            Err(Block::OutboundLimit)
        );
    }
}
