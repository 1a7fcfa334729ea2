//! The fields eligibility conditions may read, and their slots.
//!
//! Fixed fields have fixed slots; every distinct `attr.<name>` and `ctx.<name>` a catalog uses
//! gets a slot of its own when the catalog compiles, so evaluation reads values by index.

use std::cell::RefCell;

use super::condition::{FieldCatalog, FieldSlot, FieldType};
use crate::profile::Channel;

/// A field with a fixed slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixed {
    Segment,
    PAlive,
    ExpectedPurchases90d,
    ExpectedSpendPerPurchase,
    Clv365d,
    Purchases,
    TotalSpend,
    DaysSinceLastPurchase,
    DaysSinceFirstSeen,
    Events,
    Touchpoint,
    Placement,
    LocalHour,
    LocalWeekday,
    Consent(Channel),
}

const FIXED: [(&str, Fixed, FieldType); 14] = [
    ("segment", Fixed::Segment, FieldType::Text),
    ("value.p_alive", Fixed::PAlive, FieldType::Number),
    (
        "value.expected_purchases_90d",
        Fixed::ExpectedPurchases90d,
        FieldType::Number,
    ),
    (
        "value.expected_spend_per_purchase",
        Fixed::ExpectedSpendPerPurchase,
        FieldType::Number,
    ),
    ("value.clv_365d", Fixed::Clv365d, FieldType::Number),
    ("profile.purchases", Fixed::Purchases, FieldType::Number),
    ("profile.total_spend", Fixed::TotalSpend, FieldType::Number),
    (
        "profile.days_since_last_purchase",
        Fixed::DaysSinceLastPurchase,
        FieldType::Number,
    ),
    (
        "profile.days_since_first_seen",
        Fixed::DaysSinceFirstSeen,
        FieldType::Number,
    ),
    ("profile.events", Fixed::Events, FieldType::Number),
    ("touchpoint", Fixed::Touchpoint, FieldType::Text),
    ("placement", Fixed::Placement, FieldType::Text),
    ("time.local_hour", Fixed::LocalHour, FieldType::Number),
    ("time.local_weekday", Fixed::LocalWeekday, FieldType::Number),
];

/// Slots below this are fixed fields; the rest are named attributes and context values.
pub const FIRST_NAMED_SLOT: u32 = 64;

/// Where a named slot reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    Attribute(String),
    Context(String),
}

/// The catalog of fields for one offer catalog's conditions. Compiling conditions may add
/// named slots, hence the `RefCell`: it is only mutated while the catalog loads, on one thread.
#[derive(Debug, Default)]
pub struct ConditionFields {
    named: RefCell<Vec<Named>>,
}

impl ConditionFields {
    pub fn new() -> Self {
        Self::default()
    }

    /// The field a slot reads.
    pub fn slot(&self, slot: FieldSlot) -> Option<SlotMeaning> {
        if slot.0 < FIRST_NAMED_SLOT {
            fixed_by_slot(slot.0).map(SlotMeaning::Fixed)
        } else {
            self.named
                .borrow()
                .get((slot.0 - FIRST_NAMED_SLOT) as usize)
                .cloned()
                .map(SlotMeaning::Named)
        }
    }

    /// Named slots in slot order, for building fact tables.
    pub fn named(&self) -> Vec<Named> {
        self.named.borrow().clone()
    }

    /// The named slots, once every condition is compiled (what the catalog keeps).
    pub fn into_named(self) -> Vec<Named> {
        self.named.into_inner()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotMeaning {
    Fixed(Fixed),
    Named(Named),
}

fn fixed_by_slot(i: u32) -> Option<Fixed> {
    let i = i as usize;
    if i < FIXED.len() {
        Some(FIXED[i].1)
    } else {
        Channel::ALL
            .get(i - FIXED.len())
            .map(|&c| Fixed::Consent(c))
    }
}

/// The slot of a fixed field.
pub fn fixed_slot(f: Fixed) -> FieldSlot {
    match f {
        Fixed::Consent(c) => FieldSlot((FIXED.len() + c.index()) as u32),
        other @ (Fixed::Segment
        | Fixed::PAlive
        | Fixed::ExpectedPurchases90d
        | Fixed::ExpectedSpendPerPurchase
        | Fixed::Clv365d
        | Fixed::Purchases
        | Fixed::TotalSpend
        | Fixed::DaysSinceLastPurchase
        | Fixed::DaysSinceFirstSeen
        | Fixed::Events
        | Fixed::Touchpoint
        | Fixed::Placement
        | Fixed::LocalHour
        | Fixed::LocalWeekday) => FieldSlot(
            FIXED
                .iter()
                .position(|(_, g, _)| *g == other)
                .expect("every fixed field is listed") as u32,
        ),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl FieldCatalog for ConditionFields {
    fn resolve(&self, path: &str) -> Option<(FieldSlot, FieldType)> {
        if let Some(i) = FIXED.iter().position(|(name, _, _)| *name == path) {
            return Some((FieldSlot(i as u32), FIXED[i].2));
        }
        if let Some(channel) = path.strip_prefix("consent.") {
            let c: Channel = channel.parse().ok()?;
            return Some((fixed_slot(Fixed::Consent(c)), FieldType::Bool));
        }
        let named = if let Some(name) = path.strip_prefix("attr.") {
            Named::Attribute(name.to_owned())
        } else if let Some(name) = path.strip_prefix("ctx.") {
            Named::Context(name.to_owned())
        } else {
            return None;
        };
        let (Named::Attribute(n) | Named::Context(n)) = &named;
        if !valid_name(n) {
            return None;
        }
        let mut table = self.named.borrow_mut();
        let i = match table.iter().position(|x| *x == named) {
            Some(i) => i,
            None => {
                table.push(named);
                table.len() - 1
            }
        };
        Some((FieldSlot(FIRST_NAMED_SLOT + i as u32), FieldType::Any))
    }

    fn known_fields(&self) -> Vec<String> {
        let mut v = vec!["attr.<name>".to_owned(), "ctx.<name>".to_owned()];
        v.extend(FIXED.iter().map(|(n, _, _)| (*n).to_owned()));
        v.push("consent.<channel>".to_owned());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::condition::compile;

    #[test]
    fn fixed_fields_and_named_fields_get_stable_distinct_slots() {
        let fields = ConditionFields::new();
        let a = compile(
            r#"attr.age_band == "35-44" and ctx.device == "mobile" and value.p_alive > 0.2 and consent.sms == true"#,
            &fields,
        )
        .unwrap();
        let slots: Vec<_> = a.fields().collect();
        assert_eq!(slots.len(), 4);
        assert_eq!(
            fields.slot(slots[0]),
            Some(SlotMeaning::Named(Named::Attribute("age_band".into())))
        );
        assert_eq!(
            fields.slot(slots[1]),
            Some(SlotMeaning::Named(Named::Context("device".into())))
        );
        assert_eq!(
            fields.slot(slots[2]),
            Some(SlotMeaning::Fixed(Fixed::PAlive))
        );
        assert_eq!(
            fields.slot(slots[3]),
            Some(SlotMeaning::Fixed(Fixed::Consent(Channel::Sms)))
        );
        // The same attribute in another condition reuses its slot.
        let b = compile(r#"attr.age_band != "18-24""#, &fields).unwrap();
        assert_eq!(b.fields().next(), Some(slots[0]));
        for f in FIXED.iter().map(|x| x.1) {
            assert_eq!(fields.slot(fixed_slot(f)), Some(SlotMeaning::Fixed(f)));
        }
    }

    #[test]
    fn unknown_fields_are_refused_with_the_list_of_known_ones() {
        let e = compile("value.margin > 3", &ConditionFields::new()).unwrap_err();
        assert!(e.to_string().contains("value.p_alive"), "{e}");
        assert!(compile("consent.fax == true", &ConditionFields::new()).is_err());
        assert!(compile("segment > 3", &ConditionFields::new()).is_err());
    }
}
