//! The values eligibility conditions and context rules read, gathered once per decision into
//! a table indexed by slot, so evaluating a condition never looks a name up.

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};

use super::condition::{Fact, Facts, FieldSlot};
use super::fields::{FIRST_NAMED_SLOT, Fixed, Named, fixed_slot};
use super::request::{ContextValue, DecisionRequest};
use crate::model::scoring::CustomerScores;
use crate::profile::{AttrValue, Channel, Profile};
use crate::time::SECONDS_PER_DAY;

const FIXED_SLOTS: usize = FIRST_NAMED_SLOT as usize;

pub struct RequestFacts<'a> {
    fixed: [Option<Fact<'a>>; FIXED_SLOTS],
    named: Vec<Option<Fact<'a>>>,
}

impl Facts for RequestFacts<'_> {
    fn get(&self, slot: FieldSlot) -> Option<Fact<'_>> {
        let i = slot.0 as usize;
        if i < FIXED_SLOTS {
            self.fixed[i]
        } else {
            self.named.get(i - FIXED_SLOTS).copied().flatten()
        }
    }
}

fn attr(v: &AttrValue) -> Fact<'_> {
    match v {
        AttrValue::Text(s) => Fact::Text(s),
        AttrValue::Number(n) => Fact::Number(*n),
        AttrValue::Bool(b) => Fact::Bool(*b),
    }
}

impl<'a> RequestFacts<'a> {
    pub fn new(
        named: &[Named],
        profile: &'a Profile,
        request: &'a DecisionRequest,
        scores: &CustomerScores,
        segment_name: Option<&'a str>,
    ) -> Self {
        let at = scores.at;
        let mut fixed: [Option<Fact<'a>>; FIXED_SLOTS] = [None; FIXED_SLOTS];
        let mut set = |f: Fixed, v: Option<Fact<'a>>| fixed[fixed_slot(f).0 as usize] = v;
        set(Fixed::Segment, segment_name.map(Fact::Text));
        if let Some(v) = scores.value {
            set(Fixed::PAlive, Some(Fact::Number(v.p_alive)));
            set(
                Fixed::ExpectedPurchases90d,
                Some(Fact::Number(v.expected_purchases_90d)),
            );
            set(
                Fixed::ExpectedSpendPerPurchase,
                Some(Fact::Number(v.expected_spend_per_purchase)),
            );
            set(Fixed::Clv365d, Some(Fact::Number(v.clv_365d)));
        }
        let p = &profile.purchases;
        set(Fixed::Purchases, Some(Fact::Number(p.count as f64)));
        set(Fixed::TotalSpend, Some(Fact::Number(p.total_spend)));
        set(
            Fixed::DaysSinceLastPurchase,
            (p.count > 0).then(|| Fact::Number((at - p.last_at) as f64 / SECONDS_PER_DAY as f64)),
        );
        set(
            Fixed::DaysSinceFirstSeen,
            profile
                .first_seen
                .map(|f| Fact::Number((at - f) as f64 / SECONDS_PER_DAY as f64)),
        );
        set(Fixed::Events, Some(Fact::Number(profile.events as f64)));
        set(
            Fixed::Touchpoint,
            request.touchpoint.map(|c| Fact::Text(c.as_str())),
        );
        set(
            Fixed::Placement,
            request.placement.as_deref().map(Fact::Text),
        );
        let utc = DateTime::<Utc>::from_timestamp(at, 0).unwrap_or_default();
        let (hour, weekday) = match profile.timezone() {
            Some(tz) => {
                let l = tz.from_utc_datetime(&utc.naive_utc());
                (l.hour(), l.weekday().num_days_from_monday())
            }
            None => (utc.hour(), utc.weekday().num_days_from_monday()),
        };
        set(Fixed::LocalHour, Some(Fact::Number(hour as f64)));
        set(Fixed::LocalWeekday, Some(Fact::Number(weekday as f64)));
        for c in Channel::ALL {
            set(
                Fixed::Consent(c),
                profile.consent(c).map(|s| Fact::Bool(s.granted)),
            );
        }
        let named = named
            .iter()
            .map(|n| match n {
                Named::Attribute(name) => profile.attribute(name).map(attr),
                Named::Context(name) => request.context.get(name).map(|v| match v {
                    ContextValue::Text(s) => Fact::Text(s),
                    ContextValue::Number(n) => Fact::Number(*n),
                    ContextValue::Bool(b) => Fact::Bool(*b),
                }),
            })
            .collect();
        Self { fixed, named }
    }
}
