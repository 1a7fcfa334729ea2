//! When an outbound action goes out: the hours of the planning horizon outside the
//! customer's quiet hours, best answer lift first, and the first of them that keeps every
//! contact limit. An inbound action answers now.

use super::contact_policy::{Block, ContactLedger, ContactPolicy};
use crate::model::send_time::WeekProfile;
use crate::profile::Channel;
use crate::time::LocalClock;

/// When an action would go out, and how good that hour is.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub at: i64,
    pub time_lift: f64,
}

/// The hours of the planning horizon outside the customer's quiet hours, best answer lift
/// first (the earliest of equals): built once per decision, shared by every channel.
pub(super) struct SlotTable {
    /// Times of the hours outside quiet hours, ascending.
    times: Vec<i64>,
    /// The same hours best answer lift first (earliest of equals), with their index in
    /// `times`.
    by_lift: Vec<(usize, Slot)>,
}

impl SlotTable {
    pub fn new(
        clock: &LocalClock,
        policy: &ContactPolicy,
        from: i64,
        lifts: Option<&WeekProfile>,
    ) -> Self {
        let slots: Vec<Slot> = (0..=policy.horizon_hours as i64)
            .filter_map(|k| {
                let at = from + k * 3600;
                let (hour, how) = clock.hour(at);
                (!policy.is_quiet(hour)).then(|| Slot {
                    at,
                    time_lift: lifts.map_or(1.0, |l| l[how]),
                })
            })
            .collect();
        let times = slots.iter().map(|s| s.at).collect();
        let mut by_lift: Vec<(usize, Slot)> = slots.into_iter().enumerate().collect();
        by_lift.sort_unstable_by(|a, b| {
            b.1.time_lift
                .total_cmp(&a.1.time_lift)
                .then(a.1.at.cmp(&b.1.at))
        });
        Self { times, by_lift }
    }

    /// The best hour for an outbound action on `channel`, for a marketing message (the
    /// first hour of the table within contact limits) and for a service message (the first
    /// hour).
    pub fn best(
        &self,
        policy: &ContactPolicy,
        ledger: &ContactLedger,
        channel: Channel,
    ) -> (Result<Slot, Block>, Result<Slot, Block>) {
        let service = self.by_lift.first().map(|s| s.1).ok_or(Block::QuietHours);
        let allowed = ledger.allows_each(policy, channel, &self.times);
        let mut reason = Block::QuietHours;
        for &(i, slot) in &self.by_lift {
            match allowed[i] {
                Ok(()) => return (Ok(slot), service),
                Err(b) => reason = b,
            }
        }
        (Err(reason), service)
    }
}
