//! From an event history to training data, point in time.
//!
//! Events are replayed in time order through the same [`Profile::apply`] the service uses.
//! At every `contact` the features are built from the profile as it was just before the
//! contact (what a decision at that moment would have seen), by the same [`FeatureSchema`]
//! code that serves: there is no second feature path to drift. The contact's label is whether
//! a positive `response` answers it: one carrying its `decision_id`, or, without one, a
//! response of the same customer to the same offer within the response window, credited to
//! the latest such contact. A contact nobody answered is a negative. Contacts too close to the
//! end of the history to have been answered are left out rather than counted as negatives.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::decision::catalog::Catalog;
use crate::model::features::{FeatureInput, FeatureSchema, FeatureSpec, OfferFacts};
use crate::model::segments::segment_features;
use crate::profile::event::parse_line;
use crate::profile::{
    AttrValue, Channel, CustomerId, Event, EventKind, Profile, ProfileLimits, PurchaseSummary,
};
use crate::time::{HOURS_PER_WEEK, SECONDS_PER_DAY, hour_of_week};

/// Attribute names never used as features: too many values to learn from.
const SKIPPED_ATTRIBUTES: [&str; 1] = ["timezone"];
/// A text attribute becomes one-hot columns when it has at most this many values.
const MAX_CATEGORY_VALUES: usize = 24;

pub struct LoadedEvents {
    pub events: Vec<Event>,
    pub lines: usize,
    pub rejected: usize,
    /// The first rejected lines: (line number, reason).
    pub first_rejects: Vec<(usize, String)>,
}

/// Reads an event file; events at or after `before` are dropped (`--as-of`). Sorted by time,
/// file order kept among equal times.
pub fn load_events(
    path: &Path,
    before: Option<i64>,
    progress: &indicatif::ProgressBar,
) -> std::io::Result<LoadedEvents> {
    let file = std::fs::File::open(path)?;
    progress.set_length(file.metadata().map(|m| m.len()).unwrap_or(0));
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut out = LoadedEvents {
        events: Vec::new(),
        lines: 0,
        rejected: 0,
        first_rejects: Vec::new(),
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        progress.inc(n as u64);
        out.lines += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match parse_line(text) {
            Ok(e) => {
                if before.is_none_or(|b| e.at.timestamp() < b) {
                    out.events.push(e);
                }
            }
            Err(invalid) => {
                out.rejected += 1;
                if out.first_rejects.len() < 20 {
                    out.first_rejects.push((out.lines, invalid.to_string()));
                }
            }
        }
    }
    out.events.sort_by_key(|e| e.at);
    Ok(out)
}

/// Which attributes exist and how to encode them.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    /// Text and boolean attributes: name and values (sorted).
    pub categorical: Vec<(String, Vec<String>)>,
    /// Numeric attributes: name, mean, standard deviation.
    pub numeric: Vec<(String, f64, f64)>,
}

pub fn learn_vocabulary(events: &[Event]) -> Vocabulary {
    #[derive(Default)]
    struct Seen {
        values: HashMap<String, usize>,
        numbers: Vec<f64>,
    }
    let mut seen: HashMap<&str, Seen> = HashMap::new();
    for e in events {
        if let EventKind::Attributes { values } = &e.kind {
            for (name, v) in values {
                if SKIPPED_ATTRIBUTES.contains(&name.as_str()) {
                    continue;
                }
                let s = seen.entry(name).or_default();
                match v {
                    Some(AttrValue::Text(t)) => *s.values.entry(t.clone()).or_default() += 1,
                    Some(AttrValue::Bool(b)) => *s.values.entry(b.to_string()).or_default() += 1,
                    Some(AttrValue::Number(x)) => s.numbers.push(*x),
                    None => {}
                }
            }
        }
    }
    let mut vocab = Vocabulary::default();
    let mut names: Vec<&&str> = seen.keys().collect();
    names.sort();
    for name in names {
        let s = &seen[*name];
        if s.numbers.len() >= s.values.values().sum::<usize>() && s.numbers.len() >= 10 {
            let n = s.numbers.len() as f64;
            let mean = s.numbers.iter().sum::<f64>() / n;
            let var = s.numbers.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            if var > 0.0 {
                vocab.numeric.push((name.to_string(), mean, var.sqrt()));
            }
        } else if !s.values.is_empty() && s.values.len() <= MAX_CATEGORY_VALUES {
            let mut values: Vec<String> = s.values.keys().cloned().collect();
            values.sort();
            if values.len() >= 2 {
                vocab.categorical.push((name.to_string(), values));
            }
        }
    }
    vocab
}

fn attribute_specs(vocab: &Vocabulary) -> Vec<FeatureSpec> {
    let mut specs: Vec<FeatureSpec> = vocab
        .categorical
        .iter()
        .map(|(name, values)| FeatureSpec::AttributeCategory {
            name: name.clone(),
            values: values.clone(),
        })
        .collect();
    specs.extend(
        vocab
            .numeric
            .iter()
            .map(|(name, mean, sd)| FeatureSpec::AttributeNumber {
                name: name.clone(),
                mean: *mean,
                scale: *sd,
            }),
    );
    specs
}

/// Inputs of the propensity models.
pub fn response_schema(vocab: &Vocabulary, categories: &[String]) -> FeatureSchema {
    let mut specs = attribute_specs(vocab);
    specs.extend([
        FeatureSpec::PurchaseHistory,
        FeatureSpec::Engagement,
        FeatureSpec::ResponseHistory,
        FeatureSpec::OfferHistory,
    ]);
    if !categories.is_empty() {
        specs.push(FeatureSpec::OfferCategory {
            values: categories.to_vec(),
        });
    }
    FeatureSchema::new(specs)
}

/// Inputs of the channel models.
pub fn channel_schema(vocab: &Vocabulary) -> FeatureSchema {
    let mut specs = attribute_specs(vocab);
    specs.extend([
        FeatureSpec::PurchaseHistory,
        FeatureSpec::Engagement,
        FeatureSpec::ResponseHistory,
        FeatureSpec::ChannelHistory,
    ]);
    FeatureSchema::new(specs)
}

/// One contact as a training example.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    pub customer: u32,
    pub at: i64,
    pub offer: u32,
    pub channel: Channel,
    pub positive: bool,
    /// In the held-out period.
    pub holdout: bool,
    /// Local hour of week of the contact.
    pub hour_of_week: u8,
    /// The customer's engagement at that hour and its two neighbours (h-1, h, h+1), and in
    /// all, just before the contact: what the send-time model needs.
    pub engagement_near: [u32; 3],
    /// The same summed over the seven days of the week at those hours of day.
    pub engagement_daily: [u32; 3],
    pub engagement_total: u32,
}

/// A customer's state at a point in time (the split or the end).
#[derive(Debug, Clone)]
pub struct CustomerSnapshot {
    pub summary: Option<PurchaseSummary>,
    pub engagement: Vec<u32>,
    pub segment_features: [f64; 6],
}

pub struct Replay {
    pub customers: Vec<CustomerId>,
    pub profiles: Vec<Profile>,
    /// Offer ids seen in contacts, indexed by `Example::offer`, and their categories from the
    /// catalog (`unknown` when it does not list them).
    pub offers: Vec<String>,
    pub offer_categories: Vec<String>,
    pub examples: Vec<Example>,
    /// Row-major, `examples.len()` rows of the response schema's width.
    pub response_x: Vec<f32>,
    /// Row-major, `examples.len()` rows of the channel schema's width.
    pub channel_x: Vec<f32>,
    /// State at the start of the held-out period, per customer (`None`: not yet seen).
    pub at_split: Vec<Option<CustomerSnapshot>>,
    /// State at the end.
    pub at_end: Vec<CustomerSnapshot>,
    /// Customer-started touches in the held-out period: (customer, local hour of week).
    pub holdout_touches: Vec<(u32, u8)>,
}

pub struct ReplayOptions {
    pub split: i64,
    pub end: i64,
    pub response_window: i64,
    pub limits: ProfileLimits,
}

fn is_touch(kind: &EventKind) -> bool {
    match kind {
        EventKind::Purchase { .. } | EventKind::Interaction { .. } => true,
        EventKind::Response { outcome } => outcome.is_positive(),
        EventKind::Contact | EventKind::Consent { .. } | EventKind::Attributes { .. } => false,
    }
}

/// Which contacts were answered positively: by decision id, else by customer and offer
/// within the window, credited to the latest contact before the answer.
fn label_contacts(events: &[Event], window: i64) -> Vec<bool> {
    let mut positive = vec![false; events.len()];
    let mut by_decision: HashMap<&str, usize> = HashMap::new();
    let mut by_offer: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        match &e.kind {
            EventKind::Contact => {
                if let Some(d) = &e.decision_id {
                    by_decision.insert(d.as_str(), i);
                }
                if let Some(o) = &e.offer_id {
                    by_offer
                        .entry((e.customer_id.as_str(), o.as_str()))
                        .or_default()
                        .push(i);
                }
            }
            EventKind::Response { outcome } if outcome.is_positive() => {
                let by_id = e
                    .decision_id
                    .as_ref()
                    .and_then(|d| by_decision.get(d.as_str()).copied());
                let contact = by_id.or_else(|| {
                    let o = e.offer_id.as_ref()?;
                    let list = by_offer.get(&(e.customer_id.as_str(), o.as_str()))?;
                    let &last = list.last()?;
                    (e.at.timestamp() - events[last].at.timestamp() <= window).then_some(last)
                });
                if let Some(c) = contact
                    && events[c].customer_id == e.customer_id
                {
                    positive[c] = true;
                }
            }
            EventKind::Response { .. }
            | EventKind::Purchase { .. }
            | EventKind::Interaction { .. }
            | EventKind::Consent { .. }
            | EventKind::Attributes { .. } => {}
        }
    }
    positive
}

fn snapshot(profile: &Profile, at: i64) -> CustomerSnapshot {
    let summary = profile.purchase_summary(at);
    CustomerSnapshot {
        summary,
        engagement: if profile.engagement.len() == HOURS_PER_WEEK {
            profile.engagement.clone()
        } else {
            vec![0; HOURS_PER_WEEK]
        },
        segment_features: segment_features(profile, summary),
    }
}

pub fn replay(
    events: &[Event],
    catalog: Option<&Catalog>,
    response: &FeatureSchema,
    channel: &FeatureSchema,
    opts: &ReplayOptions,
    progress: &indicatif::ProgressBar,
) -> Replay {
    progress.set_length(events.len() as u64);
    let positive = label_contacts(events, opts.response_window);
    let mut out = Replay {
        customers: Vec::new(),
        profiles: Vec::new(),
        offers: Vec::new(),
        offer_categories: Vec::new(),
        examples: Vec::new(),
        response_x: Vec::new(),
        channel_x: Vec::new(),
        at_split: Vec::new(),
        at_end: Vec::new(),
        holdout_touches: Vec::new(),
    };
    let mut index: HashMap<CustomerId, u32> = HashMap::new();
    let mut offer_index: HashMap<String, u32> = HashMap::new();
    let (rw, cw) = (response.width(), channel.width());
    let mut rbuf = vec![0.0; rw];
    let mut cbuf = vec![0.0; cw];
    let mut split_taken = false;
    let last_labelled = opts.end - opts.response_window;
    for (i, e) in events.iter().enumerate() {
        if i % 65_536 == 0 {
            progress.set_position(i as u64);
        }
        let at = e.at.timestamp();
        if !split_taken && at >= opts.split {
            out.at_split = out
                .profiles
                .iter()
                .map(|p| Some(snapshot(p, opts.split)))
                .collect();
            split_taken = true;
        }
        let c = *index.entry(e.customer_id.clone()).or_insert_with(|| {
            out.customers.push(e.customer_id.clone());
            out.profiles.push(Profile::default());
            (out.customers.len() - 1) as u32
        });
        let profile = &mut out.profiles[c as usize];
        if let (EventKind::Contact, Some(ch), Some(offer_id)) = (&e.kind, e.channel, &e.offer_id)
            && at < last_labelled
        {
            let offer = offer_id.as_str();
            let n = offer_index.len() as u32;
            let category = catalog
                .and_then(|cat| cat.offer(offer))
                .map_or("unknown", |of| of.category.as_str());
            let o = *offer_index.entry(offer.to_owned()).or_insert_with(|| {
                out.offers.push(offer.to_owned());
                out.offer_categories.push(category.to_owned());
                n
            });
            let input = FeatureInput::new(profile, at)
                .with_offer(OfferFacts {
                    id: offer,
                    category,
                    history: profile.offer(offer),
                })
                .with_channel(ch);
            response.build_into(&input, &mut rbuf);
            channel.build_into(&input, &mut cbuf);
            out.response_x.extend(rbuf.iter().map(|&x| x as f32));
            out.channel_x.extend(cbuf.iter().map(|&x| x as f32));
            let how = hour_of_week(e.at, profile.timezone());
            let eng = |h: usize| {
                profile
                    .engagement
                    .get(h % HOURS_PER_WEEK)
                    .copied()
                    .unwrap_or(0)
            };
            out.examples.push(Example {
                customer: c,
                at,
                offer: o,
                channel: ch,
                positive: positive[i],
                holdout: at >= opts.split,
                hour_of_week: how as u8,
                engagement_near: [eng(how + HOURS_PER_WEEK - 1), eng(how), eng(how + 1)],
                engagement_daily: [how + HOURS_PER_WEEK - 1, how, how + 1]
                    .map(|h| (0..7).map(|day| eng(day * 24 + h % 24)).sum()),
                engagement_total: profile.engagement.iter().sum(),
            });
        }
        if at >= opts.split && is_touch(&e.kind) {
            out.holdout_touches
                .push((c, hour_of_week(e.at, profile.timezone()) as u8));
        }
        // Replayed as received at its own time, so that de-duplication memory slides with the
        // history. A customer past that memory within a window of history (a bot, thousands
        // of events a day) has the excess left out.
        let _ = profile.apply(e, &opts.limits, e.at.timestamp());
    }
    if !split_taken {
        out.at_split = out
            .profiles
            .iter()
            .map(|p| Some(snapshot(p, opts.split)))
            .collect();
    }
    // Customers first seen after the split have no state there.
    out.at_split.resize(out.profiles.len(), None);
    out.at_end = out.profiles.iter().map(|p| snapshot(p, opts.end)).collect();
    progress.set_position(events.len() as u64);
    out
}

/// Days in seconds, for option conversions.
pub fn days(d: f64) -> i64 {
    (d * SECONDS_PER_DAY as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::event::parse_body;

    fn events(json: &str) -> Vec<Event> {
        parse_body(json.as_bytes()).unwrap()
    }

    #[test]
    fn a_contact_is_positive_when_answered_by_decision_or_by_offer_within_the_window() {
        let e = events(
            r#"{"events":[
            {"event_id":"1","customer_id":"a","type":"contact","at":"2026-01-01T00:00:00Z","channel":"email","offer_id":"x","decision_id":"d1"},
            {"event_id":"2","customer_id":"a","type":"contact","at":"2026-01-02T00:00:00Z","channel":"email","offer_id":"y"},
            {"event_id":"3","customer_id":"a","type":"contact","at":"2026-01-03T00:00:00Z","channel":"sms","offer_id":"z"},
            {"event_id":"4","customer_id":"a","type":"response","at":"2026-01-04T00:00:00Z","decision_id":"d1","outcome":"clicked"},
            {"event_id":"5","customer_id":"a","type":"response","at":"2026-01-05T00:00:00Z","offer_id":"y","outcome":"accepted"},
            {"event_id":"6","customer_id":"a","type":"response","at":"2026-02-05T00:00:00Z","offer_id":"z","outcome":"accepted"},
            {"event_id":"7","customer_id":"b","type":"response","at":"2026-01-05T00:00:00Z","offer_id":"y","outcome":"accepted"}
            ]}"#,
        );
        let labels = label_contacts(&e, days(7.0));
        assert_eq!(&labels[..3], &[true, true, false]);
    }

    #[test]
    fn features_are_built_from_the_profile_before_the_contact() {
        let e = events(
            r#"{"events":[
            {"event_id":"1","customer_id":"a","type":"contact","at":"2026-01-01T00:00:00Z","channel":"email","offer_id":"x"},
            {"event_id":"2","customer_id":"a","type":"contact","at":"2026-01-02T00:00:00Z","channel":"email","offer_id":"x"}
            ]}"#,
        );
        let vocab = Vocabulary::default();
        let r = response_schema(&vocab, &[]);
        let c = channel_schema(&vocab);
        let out = replay(
            &e,
            None,
            &r,
            &c,
            &ReplayOptions {
                split: days(20_000.0),
                end: days(30_000.0),
                response_window: days(7.0),
                limits: ProfileLimits::default(),
            },
            &indicatif::ProgressBar::hidden(),
        );
        let names = r.names();
        let k = names
            .iter()
            .position(|n| n == "log1p(contacts of offer)")
            .unwrap();
        let w = r.width();
        assert_eq!(out.response_x[k], 0.0); // first contact: no earlier contact
        assert_eq!(out.response_x[w + k], 1f32.ln_1p()); // second: one earlier
    }
}
