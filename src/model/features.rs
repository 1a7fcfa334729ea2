//! The one feature path: training and serving both turn (profile, time, offer, channel) into
//! model inputs here, so the two cannot drift apart (no training/serving skew).
//!
//! A [`FeatureSchema`] is an ordered list of [`FeatureSpec`]s, each writing a fixed number of
//! columns. Training learns the schema from data (which attributes exist, their values, their
//! scale) and writes it into the model set's manifest; serving builds exactly that schema. A
//! schema of a newer version, or with a feature kind this build does not know, fails to load,
//! so the service refuses a model set it cannot feed.

use serde::{Deserialize, Serialize};

use crate::profile::state::OfferStats;
use crate::profile::{AttrValue, Channel, Profile, PurchaseSummary};
use crate::time::SECONDS_PER_DAY;

/// Bumped whenever a feature kind changes meaning; older model sets must then be retrained.
/// Version 2 dropped the offer's catalog value as a feature: what an offer is worth to the
/// business weighs in arbitration only, so changing it never moves a propensity.
pub const FEATURE_SCHEMA_VERSION: u32 = 2;

/// Decline within this many days counts as recent (a strong negative signal).
const RECENT_DECLINE_DAYS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSchema {
    pub version: u32,
    pub specs: Vec<FeatureSpec>,
}

/// One group of columns. Attribute-by-offer interactions are not features: per-offer and
/// per-category models carry them (each has its own attribute weights).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeatureSpec {
    /// One column per value: 1 when the attribute has it (booleans read "true"/"false").
    AttributeCategory { name: String, values: Vec<String> },
    /// Standardised value (0 when missing) and a missing indicator.
    AttributeNumber { name: String, mean: f64, scale: f64 },
    /// log1p(repeat transactions), recency share t_x/T, log1p(mean repeat spend),
    /// has purchased, log1p(customer age in days).
    PurchaseHistory,
    /// log1p(engagement touches), log1p(events).
    Engagement,
    /// All outbound and inbound contacts: smoothed response rate, log1p(contacts).
    ResponseHistory,
    /// For the candidate channel: log1p(contacts), smoothed response rate,
    /// log1p(customer-started touches), log1p(days since the last contact, capped).
    ChannelHistory,
    /// For the offer: log1p(contacts), log1p(positive responses), log1p(declines),
    /// declined in the last 30 days.
    OfferHistory,
    /// One column per category.
    OfferCategory { values: Vec<String> },
}

/// What features are computed from.
#[derive(Debug, Clone, Copy)]
pub struct FeatureInput<'a> {
    pub profile: &'a Profile,
    /// Unix seconds: the decision or contact time.
    pub at: i64,
    /// The profile's purchase summary as of `at` (computed once per decision).
    pub summary: Option<PurchaseSummary>,
    pub offer: Option<OfferFacts<'a>>,
    pub channel: Option<Channel>,
}

#[derive(Debug, Clone, Copy)]
pub struct OfferFacts<'a> {
    pub id: &'a str,
    pub category: &'a str,
    /// The customer's history with the offer (`Profile::offer`), looked up by the caller:
    /// a decision finds every offer's in one pass over the profile.
    pub history: Option<&'a OfferStats>,
}

impl<'a> FeatureInput<'a> {
    pub fn new(profile: &'a Profile, at: i64) -> Self {
        Self {
            profile,
            at,
            summary: profile.purchase_summary(at),
            offer: None,
            channel: None,
        }
    }

    pub fn with_offer(mut self, offer: OfferFacts<'a>) -> Self {
        self.offer = Some(offer);
        self
    }

    pub fn with_channel(mut self, channel: Channel) -> Self {
        self.channel = Some(channel);
        self
    }
}

fn attribute_text(v: &AttrValue) -> Option<&str> {
    match v {
        AttrValue::Text(s) => Some(s),
        AttrValue::Bool(true) => Some("true"),
        AttrValue::Bool(false) => Some("false"),
        AttrValue::Number(_) => None,
    }
}

fn ln1p(x: f64) -> f64 {
    x.max(0.0).ln_1p()
}

/// (positives + 1) / (contacts + 10): a rate that starts near the typical response rate and
/// moves toward the customer's own as evidence accumulates.
fn smoothed_rate(positives: u32, contacts: u32) -> f64 {
    (positives as f64 + 1.0) / (contacts as f64 + 10.0)
}

impl FeatureSpec {
    pub fn width(&self) -> usize {
        match self {
            FeatureSpec::AttributeCategory { values, .. } => values.len(),
            FeatureSpec::AttributeNumber { .. } => 2,
            FeatureSpec::PurchaseHistory => 5,
            FeatureSpec::Engagement => 2,
            FeatureSpec::ResponseHistory => 2,
            FeatureSpec::ChannelHistory => 4,
            FeatureSpec::OfferHistory => 4,
            FeatureSpec::OfferCategory { values } => values.len(),
        }
    }

    fn names(&self, out: &mut Vec<String>) {
        match self {
            FeatureSpec::AttributeCategory { name, values } => {
                out.extend(values.iter().map(|v| format!("attr.{name}={v}")))
            }
            FeatureSpec::AttributeNumber { name, .. } => {
                out.push(format!("attr.{name}"));
                out.push(format!("attr.{name} missing"));
            }
            FeatureSpec::PurchaseHistory => out.extend(
                [
                    "log1p(repeat purchases)",
                    "recency share",
                    "log1p(mean repeat spend)",
                    "has purchased",
                    "log1p(customer age days)",
                ]
                .map(String::from),
            ),
            FeatureSpec::Engagement => {
                out.extend(["log1p(engagement)", "log1p(events)"].map(String::from))
            }
            FeatureSpec::ResponseHistory => out.extend(
                [
                    "response rate (all channels)",
                    "log1p(contacts, all channels)",
                ]
                .map(String::from),
            ),
            FeatureSpec::ChannelHistory => out.extend(
                [
                    "log1p(contacts on channel)",
                    "response rate on channel",
                    "log1p(touches on channel)",
                    "log1p(days since contact on channel)",
                ]
                .map(String::from),
            ),
            FeatureSpec::OfferHistory => out.extend(
                [
                    "log1p(contacts of offer)",
                    "log1p(positive responses to offer)",
                    "log1p(declines of offer)",
                    "declined offer recently",
                ]
                .map(String::from),
            ),
            FeatureSpec::OfferCategory { values } => {
                out.extend(values.iter().map(|v| format!("offer.category={v}")))
            }
        }
    }

    /// Writes this spec's columns into `out` (exactly `width()` of them, all set).
    fn write(&self, input: &FeatureInput<'_>, out: &mut [f64]) {
        out.fill(0.0);
        let p = input.profile;
        match self {
            FeatureSpec::AttributeCategory { name, values } => {
                if let Some(v) = p.attribute(name).and_then(attribute_text)
                    && let Some(i) = values.iter().position(|x| x == v)
                {
                    out[i] = 1.0;
                }
            }
            FeatureSpec::AttributeNumber { name, mean, scale } => match p.attribute(name) {
                Some(AttrValue::Number(x)) => out[0] = (x - mean) / scale,
                Some(AttrValue::Text(_) | AttrValue::Bool(_)) | None => out[1] = 1.0,
            },
            FeatureSpec::PurchaseHistory => {
                if let Some(s) = input.summary {
                    out[0] = ln1p(s.frequency);
                    out[1] = if s.age_days > 0.0 {
                        s.recency_days / s.age_days
                    } else {
                        1.0
                    };
                    out[2] = ln1p(s.mean_repeat_spend);
                    out[3] = 1.0;
                    out[4] = ln1p(s.age_days);
                }
            }
            FeatureSpec::Engagement => {
                let total: u64 = p.engagement.iter().map(|&c| c as u64).sum();
                out[0] = ln1p(total as f64);
                out[1] = ln1p(p.events as f64);
            }
            FeatureSpec::ResponseHistory => {
                let (pos, contacts) = p.channels.iter().fold((0, 0), |(a, b), c| {
                    (a + c.positive_responses, b + c.contacts)
                });
                out[0] = smoothed_rate(pos, contacts);
                out[1] = ln1p(contacts as f64);
            }
            FeatureSpec::ChannelHistory => {
                if let Some(c) = input.channel {
                    let s = p.channel(c);
                    out[0] = ln1p(s.contacts as f64);
                    out[1] = smoothed_rate(s.positive_responses, s.contacts);
                    out[2] = ln1p(s.interactions as f64);
                    out[3] = match s.last_contact_at {
                        Some(t) => {
                            ln1p(((input.at - t) as f64 / SECONDS_PER_DAY as f64).min(365.0))
                        }
                        None => ln1p(365.0),
                    };
                }
            }
            FeatureSpec::OfferHistory => {
                if let Some(o) = input.offer.and_then(|o| o.history) {
                    out[0] = ln1p(o.contacts as f64);
                    out[1] = ln1p(o.positive_responses as f64);
                    out[2] = ln1p(o.declines as f64);
                    out[3] = match o.last_declined_at {
                        Some(t) if input.at - t <= RECENT_DECLINE_DAYS * SECONDS_PER_DAY => 1.0,
                        Some(_) | None => 0.0,
                    };
                }
            }
            FeatureSpec::OfferCategory { values } => {
                if let Some(o) = input.offer
                    && let Some(i) = values.iter().position(|v| v == o.category)
                {
                    out[i] = 1.0;
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SchemaError {
    #[error(
        "the model set's feature schema has version {found}; this build reads version {FEATURE_SCHEMA_VERSION}: retrain the models with this build"
    )]
    Version { found: u32 },
    #[error("feature {index} ({kind}) is malformed: {reason}")]
    Malformed {
        index: usize,
        kind: &'static str,
        reason: String,
    },
}

impl FeatureSchema {
    pub fn new(specs: Vec<FeatureSpec>) -> Self {
        Self {
            version: FEATURE_SCHEMA_VERSION,
            specs,
        }
    }

    /// Checks that this build can build the schema.
    pub fn check(&self) -> Result<(), SchemaError> {
        if self.version != FEATURE_SCHEMA_VERSION {
            return Err(SchemaError::Version {
                found: self.version,
            });
        }
        for (index, spec) in self.specs.iter().enumerate() {
            let malformed = |kind, reason: &str| SchemaError::Malformed {
                index,
                kind,
                reason: reason.to_owned(),
            };
            match spec {
                FeatureSpec::AttributeCategory { values, .. }
                | FeatureSpec::OfferCategory { values }
                    if values.is_empty() =>
                {
                    return Err(malformed("category", "no values"));
                }
                FeatureSpec::AttributeNumber { mean, scale, .. }
                    if !mean.is_finite() || !scale.is_finite() || *scale <= 0.0 =>
                {
                    return Err(malformed(
                        "attribute_number",
                        "mean and scale must be finite, scale positive",
                    ));
                }
                FeatureSpec::AttributeCategory { .. }
                | FeatureSpec::AttributeNumber { .. }
                | FeatureSpec::PurchaseHistory
                | FeatureSpec::Engagement
                | FeatureSpec::ResponseHistory
                | FeatureSpec::ChannelHistory
                | FeatureSpec::OfferHistory
                | FeatureSpec::OfferCategory { .. } => {}
            }
        }
        Ok(())
    }

    pub fn width(&self) -> usize {
        self.specs.iter().map(FeatureSpec::width).sum()
    }

    /// Columns that do not describe the offer itself (its category): within one
    /// offer's or one category's data those are (nearly) constant and add nothing.
    pub fn offer_independent_columns(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut start = 0;
        for spec in &self.specs {
            let w = spec.width();
            let about_offer = matches!(spec, FeatureSpec::OfferCategory { .. });
            if !about_offer {
                out.extend(start..start + w);
            }
            start += w;
        }
        out
    }

    /// Column names, for explanations and reports.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.width());
        for s in &self.specs {
            s.names(&mut out);
        }
        out
    }

    /// Writes the feature vector into `out`, which must be `width()` long.
    pub fn build_into(&self, input: &FeatureInput<'_>, out: &mut [f64]) {
        debug_assert_eq!(out.len(), self.width());
        let mut start = 0;
        for spec in &self.specs {
            let w = spec.width();
            spec.write(input, &mut out[start..start + w]);
            start += w;
        }
    }

    /// Rewrites only the columns that depend on the offer (its history with the customer,
    /// category) in a vector `build_into` filled for another offer of the same
    /// customer: scoring every offer of a catalog then builds the customer's columns once.
    pub fn rebuild_offer_part(&self, input: &FeatureInput<'_>, out: &mut [f64]) {
        self.rebuild_where(input, out, |spec| {
            matches!(
                spec,
                FeatureSpec::OfferHistory | FeatureSpec::OfferCategory { .. }
            )
        });
    }

    /// The same for the columns that depend on the channel.
    pub fn rebuild_channel_part(&self, input: &FeatureInput<'_>, out: &mut [f64]) {
        self.rebuild_where(input, out, |spec| {
            matches!(spec, FeatureSpec::ChannelHistory)
        });
    }

    fn rebuild_where(
        &self,
        input: &FeatureInput<'_>,
        out: &mut [f64],
        part: impl Fn(&FeatureSpec) -> bool,
    ) {
        let mut start = 0;
        for spec in &self.specs {
            let w = spec.width();
            if part(spec) {
                spec.write(input, &mut out[start..start + w]);
            }
            start += w;
        }
    }

    pub fn build(&self, input: &FeatureInput<'_>) -> Vec<f64> {
        let mut v = vec![0.0; self.width()];
        self.build_into(input, &mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::event::parse_body;
    use crate::profile::state::ProfileLimits;

    fn profile(json: &str) -> Profile {
        let mut p = Profile::default();
        for e in parse_body(json.as_bytes()).unwrap() {
            p.apply(&e, &ProfileLimits::default(), 0).unwrap();
        }
        p
    }

    #[test]
    fn features_read_attributes_history_and_offer_into_named_columns() {
        let p = profile(
            r#"{"events":[
            {"event_id":"a","customer_id":"c","type":"attributes","at":"2026-01-01T00:00:00Z","attributes":{"age_band":"35-44","income":52000,"homeowner":true}},
            {"event_id":"p1","customer_id":"c","type":"purchase","at":"2026-01-02T00:00:00Z","amount":10},
            {"event_id":"p2","customer_id":"c","type":"purchase","at":"2026-01-12T00:00:00Z","amount":30},
            {"event_id":"k","customer_id":"c","type":"contact","at":"2026-01-13T00:00:00Z","channel":"email","offer_id":"gold-card"},
            {"event_id":"r","customer_id":"c","type":"response","at":"2026-01-14T00:00:00Z","offer_id":"gold-card","outcome":"declined"}
            ]}"#,
        );
        let schema = FeatureSchema::new(vec![
            FeatureSpec::AttributeCategory {
                name: "age_band".into(),
                values: vec!["25-34".into(), "35-44".into()],
            },
            FeatureSpec::AttributeNumber {
                name: "income".into(),
                mean: 50000.0,
                scale: 1000.0,
            },
            FeatureSpec::PurchaseHistory,
            FeatureSpec::ChannelHistory,
            FeatureSpec::OfferHistory,
            FeatureSpec::OfferCategory {
                values: vec!["card".into(), "loan".into()],
            },
        ]);
        schema.check().unwrap();
        let at = "2026-01-21T12:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
            .timestamp();
        let input = FeatureInput::new(&p, at)
            .with_offer(OfferFacts {
                id: "gold-card",
                category: "card",
                history: p.offer("gold-card"),
            })
            .with_channel(Channel::Email);
        let x = schema.build(&input);
        let names = schema.names();
        assert_eq!(x.len(), names.len());
        let get = |n: &str| x[names.iter().position(|m| m == n).unwrap()];
        assert_eq!(get("attr.age_band=35-44"), 1.0);
        assert_eq!(get("attr.age_band=25-34"), 0.0);
        assert_eq!(get("attr.income"), 2.0);
        assert_eq!(get("attr.income missing"), 0.0);
        assert_eq!(get("log1p(repeat purchases)"), 1f64.ln_1p());
        assert_eq!(get("recency share"), 10.0 / 19.0);
        assert_eq!(get("log1p(contacts on channel)"), 1f64.ln_1p());
        assert_eq!(get("declined offer recently"), 1.0);
        assert_eq!(get("offer.category=card"), 1.0);
        assert_eq!(get("offer.category=loan"), 0.0);
    }

    #[test]
    fn a_schema_from_a_newer_build_or_of_an_unknown_kind_is_refused() {
        let newer = FeatureSchema {
            version: FEATURE_SCHEMA_VERSION + 1,
            specs: vec![],
        };
        assert_eq!(
            newer.check(),
            Err(SchemaError::Version {
                found: FEATURE_SCHEMA_VERSION + 1
            })
        );
        let unknown = r#"{"version":1,"specs":[{"kind":"zodiac_sign"}]}"#;
        assert!(serde_json::from_str::<FeatureSchema>(unknown).is_err());
        let bad =
            r#"{"version":1,"specs":[{"kind":"attribute_number","name":"x","mean":0,"scale":0}]}"#;
        let s: FeatureSchema = serde_json::from_str(bad).unwrap();
        assert!(s.check().is_err());
    }
}
