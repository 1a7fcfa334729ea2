//! `touchpoint simulate`: a seeded generator of customer histories with known truth, so that
//! models can be checked against what they should find.
//!
//! Each customer gets attributes (age band, region, income band, home ownership, app use, time
//! zone) and hidden traits drawn from them:
//! - **offer affinity**: a logit per offer from its category, the customer's attributes and a
//!   personal taste per category;
//! - **channel preference**: a logit per channel, leaning by age (younger: push, app, SMS;
//!   older: email, post, phone);
//! - **active hours**: a peak hour of day and a weekday/weekend lean; visits, purchases and
//!   answers happen mostly then, and a message sent near the peak is answered more often;
//! - **purchases**: a BG/NBD process (a personal weekly rate from Gamma(r, α), a dropout
//!   probability from Beta(a, b) after each repeat purchase) with Gamma-Gamma spend;
//! - **consent**: some channels granted at sign-up, some withdrawn later.
//!
//! The company contacts customers through a **logging policy** that picks uniformly among
//! the candidate (offer, channel) pairs and among send hours, and records the probability of
//! its choice in `decisions.jsonl` (the decision log's own record format,
//! [`crate::decision::record`]); answers are drawn from the true response model. Output:
//! `events.jsonl` (API events in time order), `decisions.jsonl` and `truth.json`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution, Exp, Gamma, Normal, Poisson};
use serde::Serialize;

use crate::decision::catalog::Catalog;
use crate::decision::record::{DecisionRecord, FORMAT, PolicyRecord, RequestRecord, ScoredRecord};
use crate::profile::Channel;
use crate::time::{hour_of_week, rfc3339};

pub const START: &str = "2026-01-01T00:00:00Z";

/// True population parameters (weekly time unit), written to `truth.json`.
pub const TRUE_BG_NBD: (f64, f64, f64, f64) = (0.9, 4.0, 0.8, 3.0);
pub const TRUE_GAMMA_GAMMA: (f64, f64, f64) = (6.0, 4.0, 20.0);
/// How much answering depends on the send time: logit += KAPPA * ln(activity / mean).
pub const TIME_EFFECT: f64 = 0.6;

const AGE_BANDS: [(&str, f64); 6] = [
    ("18-24", 0.12),
    ("25-34", 0.20),
    ("35-44", 0.20),
    ("45-54", 0.18),
    ("55-64", 0.15),
    ("65+", 0.15),
];
const REGIONS: [&str; 5] = ["north", "south", "east", "west", "capital"];
const TIMEZONES: [(&str, f64); 7] = [
    ("Europe/London", 0.35),
    ("Europe/Berlin", 0.20),
    ("Europe/Madrid", 0.10),
    ("America/New_York", 0.15),
    ("America/Chicago", 0.05),
    ("America/Los_Angeles", 0.10),
    ("Asia/Singapore", 0.05),
];
/// Channels the simulated company uses.
const SIM_CHANNELS: [Channel; 7] = [
    Channel::Web,
    Channel::App,
    Channel::Email,
    Channel::Sms,
    Channel::Push,
    Channel::CallCentre,
    Channel::DirectMail,
];

#[derive(Debug, Clone)]
pub struct SimulationOptions {
    pub customers: usize,
    pub days: u32,
    pub seed: u64,
}

impl Default for SimulationOptions {
    fn default() -> Self {
        Self {
            customers: 5_000,
            days: 365,
            seed: 42,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the catalog has no offer with an outbound channel to simulate contacts with")]
    NoOffers,
}

/// What a simulation wrote.
#[derive(Debug, Clone, Serialize)]
pub struct SimulationSummary {
    pub customers: usize,
    pub events: usize,
    pub decisions: usize,
    pub purchases: usize,
    pub contacts: usize,
    pub positive_responses: usize,
}

/// Ground truth of one customer.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerTruth {
    pub customer_id: String,
    pub age_band: String,
    pub timezone: String,
    /// Local hour of day of peak activity.
    pub peak_hour: u32,
    /// Local hour of week (0 = Monday 00h) when a message is most likely answered (the
    /// first of equals: activity is often the same on every weekday).
    pub best_hour_of_week: usize,
    /// Activity by local hour of week relative to the customer's most active hour (1 = as
    /// active as ever): answers are likelier where it is high.
    pub activity: Vec<f64>,
    /// Channels the customer can be reached on at the end (consented outbound, inbound).
    pub reachable_channels: Vec<Channel>,
    /// The reachable channel with the highest preference.
    pub best_channel: Option<Channel>,
    pub channel_effects: BTreeMap<Channel, f64>,
    /// Response logit per offer at the customer's best channel and hour, before fatigue.
    pub offer_logit: BTreeMap<String, f64>,
    pub best_offer: String,
    /// Weekly purchase rate and dropout probability (BG/NBD's λ and p).
    pub purchase_rate: f64,
    pub dropout: f64,
    /// When the customer silently lapsed, if they did within the period.
    pub lapsed_at: Option<String>,
    pub purchases: usize,
}

#[derive(Serialize)]
struct Truth<'a> {
    seed: u64,
    days: u32,
    start: &'a str,
    end: String,
    time_unit: &'static str,
    bg_nbd: BTreeMap<&'static str, f64>,
    gamma_gamma: BTreeMap<&'static str, f64>,
    time_effect: f64,
    customers: &'a [CustomerTruth],
}

pub(super) struct Offer {
    pub(super) id: String,
    pub(super) category: String,
    pub(super) channels: Vec<Channel>,
    /// Fixed per-offer appeal on top of its category.
    pub(super) appeal: f64,
}

pub(super) struct Customer {
    pub(super) id: String,
    age: usize,
    income: &'static str,
    pub(super) homeowner: bool,
    has_app: bool,
    pub(super) tz: chrono_tz::Tz,
    /// Activity weight by local hour of week.
    activity: [f64; 168],
    mean_activity: f64,
    channel_effect: [f64; Channel::COUNT],
    /// Personal taste per offer category.
    pub(super) taste: BTreeMap<String, f64>,
}

impl Customer {
    /// The true response logit of `offer` sent on `channel` at unix time `at`, after
    /// `recent` contacts in the week before.
    pub(super) fn logit(&self, offer: &Offer, channel: Channel, at: i64, recent: usize) -> f64 {
        let fatigue = -0.3 * recent as f64;
        let how = local_how(self.tz, at);
        category_base(&offer.category)
            + offer.appeal
            + attribute_effect(self, &offer.category)
            + self.taste.get(&offer.category).copied().unwrap_or(0.0)
            + self.channel_effect[channel.index()]
            + TIME_EFFECT * (self.activity[how] / self.mean_activity).ln()
            + fatigue
    }
}

fn category_base(category: &str) -> f64 {
    match category {
        "card" => -2.6,
        "loan" => -3.0,
        "insurance" => -2.8,
        "savings" => -2.5,
        "retention" => -2.4,
        "service" => -1.6,
        "content" => -2.0,
        // Offers the closed-loop scenario adds after training (`closed_loop`).
        "renting" => -2.2,
        "lifestyle" => -4.2,
        _ => -2.7,
    }
}

/// How attributes move the response logit of a category.
fn attribute_effect(c: &Customer, category: &str) -> f64 {
    let age = AGE_BANDS[c.age].0;
    let mut e = 0.0;
    match category {
        "card" => {
            e += match age {
                "18-24" => 0.4,
                "25-34" | "35-44" => 0.5,
                _ => -0.2,
            };
            e += match c.income {
                "high" => 0.9,
                "low" => -0.7,
                _ => 0.1,
            };
        }
        "loan" => {
            e += match age {
                "25-34" => 0.8,
                "35-44" => 0.5,
                "65+" => -0.8,
                _ => 0.0,
            };
            e += if c.income == "low" { 0.6 } else { 0.0 };
            e += if c.homeowner { 0.4 } else { 0.0 };
        }
        "insurance" => {
            e += if c.homeowner { 0.9 } else { -0.3 };
            e += match age {
                "45-54" | "55-64" => 0.5,
                "18-24" => -0.7,
                _ => 0.0,
            };
        }
        "savings" => {
            e += match age {
                "55-64" | "65+" => 0.9,
                "18-24" => -0.4,
                _ => 0.0,
            };
            e += if c.income == "high" { 0.5 } else { 0.0 };
        }
        "retention" => e += if c.income == "low" { 0.4 } else { 0.0 },
        "content" => {
            e += if c.has_app { -0.3 } else { 0.4 };
            e += if age == "18-24" { 0.4 } else { 0.0 };
        }
        // For young renters, not for older homeowners.
        "renting" => {
            e += if c.homeowner { -1.2 } else { 1.3 };
            e += match age {
                "18-24" | "25-34" => 0.7,
                "55-64" | "65+" => -0.6,
                _ => 0.0,
            };
        }
        _ => {}
    }
    e
}

/// Channel leaning by age band index (0 = 18-24 .. 5 = 65+).
fn channel_mean(channel: Channel, age: usize) -> f64 {
    let young = 1.0 - age as f64 / 5.0; // 1 for 18-24, 0 for 65+
    match channel {
        Channel::Push | Channel::App => -0.6 + 1.4 * young,
        Channel::Sms => -0.3 + 0.8 * young,
        Channel::Email => 0.2,
        Channel::Web => 0.0,
        Channel::CallCentre | Channel::DirectMail | Channel::Branch => 0.6 - 1.4 * young,
    }
}

fn pick_weighted<'a, T>(rng: &mut StdRng, items: &'a [(T, f64)]) -> &'a T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0.0..total);
    for (item, w) in items {
        if x < *w {
            return item;
        }
        x -= w;
    }
    &items[items.len() - 1].0
}

fn circular_distance(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(24.0);
    d.min(24.0 - d)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Local hour of week of a unix time.
fn local_how(tz: chrono_tz::Tz, t: i64) -> usize {
    hour_of_week(
        DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default(),
        Some(tz),
    )
}

/// A unix time on the local day containing `t`, at a local hour drawn from the customer's
/// activity on that weekday.
fn active_time_on_day(rng: &mut StdRng, c: &Customer, t: i64) -> i64 {
    let local = c.tz.from_utc_datetime(
        &DateTime::<Utc>::from_timestamp(t, 0)
            .unwrap_or_default()
            .naive_utc(),
    );
    let day = local.weekday().num_days_from_monday() as usize;
    let weights: Vec<(u32, f64)> = (0..24)
        .map(|h| (h as u32, c.activity[day * 24 + h]))
        .collect();
    let hour = *pick_weighted(rng, &weights);
    let minute = rng.random_range(0..60);
    let date = local.date_naive();
    let naive = date
        .and_hms_opt(hour, minute, rng.random_range(0..60))
        .unwrap_or_default();
    match c.tz.from_local_datetime(&naive).earliest() {
        Some(dt) => dt.with_timezone(&Utc).timestamp(),
        None => t, // a local time skipped by a DST change: keep the original
    }
}

/// Builds events as JSON lines tagged with their time, for sorting.
pub(super) struct Out {
    pub(super) events: Vec<(i64, String)>,
    decisions: Vec<(i64, String)>,
    /// Every outbound contact and whether it was answered positively.
    pub(super) outbound: Vec<LoggedContact>,
    next_event: u64,
    /// The catalog the logging policy chose from, as its records name it.
    catalog_version: String,
}

/// An outbound contact of the history, as a company sees it afterwards.
pub(super) struct LoggedContact {
    pub(super) offer: String,
    pub(super) channel: Channel,
    /// Local hour of day it was sent.
    pub(super) local_hour: usize,
    pub(super) positive: bool,
}

/// A simulated customer as the history leaves them.
pub(super) struct SimCustomer {
    pub(super) customer: Customer,
    /// Outbound channels they consented to, with when the consent ends (if it does).
    pub(super) consent: BTreeMap<Channel, Option<i64>>,
}

/// What [`generate`] made: the history, and the world it came from.
pub(super) struct World {
    pub(super) out: Out,
    pub(super) truths: Vec<CustomerTruth>,
    pub(super) customers: Vec<SimCustomer>,
    pub(super) offers: Vec<Offer>,
    pub(super) summary: SimulationSummary,
    /// The end of the history (unix time).
    pub(super) end: i64,
}

/// The model version of the logging policy's records.
pub const LOGGING_POLICY: &str = "simulate-logging-policy";

impl Out {
    fn event(&mut self, at: i64, mut value: serde_json::Value) {
        self.next_event += 1;
        value["event_id"] = format!("sim-{}", self.next_event).into();
        value["at"] = rfc3339(at).into();
        self.events.push((at, value.to_string()));
    }
}

pub fn simulate(
    out_dir: &Path,
    catalog: &Catalog,
    opts: &SimulationOptions,
    progress: &indicatif::ProgressBar,
) -> Result<SimulationSummary, SimulateError> {
    let mut world = generate(catalog, opts, progress)?;
    write_history(out_dir, &mut world, opts)?;
    Ok(world.summary)
}

/// Writes `events.jsonl`, `decisions.jsonl` and `truth.json` of a generated history.
pub(super) fn write_history(
    out_dir: &Path,
    world: &mut World,
    opts: &SimulationOptions,
) -> Result<(), SimulateError> {
    let out = &mut world.out;
    out.events.sort_by_key(|(t, _)| *t);
    out.decisions.sort_by_key(|(t, _)| *t);
    std::fs::create_dir_all(out_dir).map_err(|source| SimulateError::Write {
        path: out_dir.to_owned(),
        source,
    })?;
    write_lines(&out_dir.join("events.jsonl"), &out.events)?;
    write_lines(&out_dir.join("decisions.jsonl"), &out.decisions)?;
    let (r, alpha, a, b) = TRUE_BG_NBD;
    let (gg_p, gg_q, gg_gamma) = TRUE_GAMMA_GAMMA;
    let truth = Truth {
        seed: opts.seed,
        days: opts.days,
        start: START,
        end: rfc3339(world.end),
        time_unit: "week",
        bg_nbd: BTreeMap::from([("r", r), ("alpha", alpha), ("a", a), ("b", b)]),
        gamma_gamma: BTreeMap::from([("p", gg_p), ("q", gg_q), ("gamma", gg_gamma)]),
        time_effect: TIME_EFFECT,
        customers: &world.truths,
    };
    let path = out_dir.join("truth.json");
    let text = serde_json::to_string(&truth).expect("truth serialises");
    std::fs::write(&path, text).map_err(|source| SimulateError::Write { path, source })
}

/// Draws the world (offers' appeal, customers' traits) and its history.
pub(super) fn generate(
    catalog: &Catalog,
    opts: &SimulationOptions,
    progress: &indicatif::ProgressBar,
) -> Result<World, SimulateError> {
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let start = DateTime::parse_from_rfc3339(START)
        .map(|t| t.timestamp())
        .unwrap_or_default();
    let end = start + opts.days as i64 * 86_400;
    let offers: Vec<Offer> = catalog
        .offers
        .iter()
        .map(|o| Offer {
            id: o.id.to_string(),
            category: o.category.clone(),
            channels: o.channels.clone(),
            appeal: Normal::new(0.0, 0.3)
                .map(|n| n.sample(&mut rng))
                .unwrap_or(0.0),
        })
        .collect();
    if !offers
        .iter()
        .any(|o| o.channels.iter().any(|c| c.is_outbound()))
    {
        return Err(SimulateError::NoOffers);
    }
    let (r, alpha, a, b) = TRUE_BG_NBD;
    let (gg_p, gg_q, gg_gamma) = TRUE_GAMMA_GAMMA;
    let rate_dist = Gamma::new(r, 1.0 / alpha).expect("valid gamma");
    let dropout_dist = Beta::new(a, b).expect("valid beta");
    let spend_scale_dist = Gamma::new(gg_q, 1.0 / gg_gamma).expect("valid gamma");
    let taste_dist = Normal::new(0.0, 0.6).expect("valid normal");
    let channel_noise = Normal::new(0.0, 0.8).expect("valid normal");

    let mut out = Out {
        events: Vec::new(),
        decisions: Vec::new(),
        outbound: Vec::new(),
        next_event: 0,
        catalog_version: catalog.version.clone(),
    };
    let mut truths = Vec::with_capacity(opts.customers);
    let mut customers = Vec::with_capacity(opts.customers);
    let mut summary = SimulationSummary {
        customers: opts.customers,
        events: 0,
        decisions: 0,
        purchases: 0,
        contacts: 0,
        positive_responses: 0,
    };
    progress.set_length(opts.customers as u64);
    let categories = catalog.categories();

    for i in 0..opts.customers {
        progress.inc(1);
        let id = format!("c-{i:06}");
        let age = (0..AGE_BANDS.len())
            .map(|k| (k, AGE_BANDS[k].1))
            .collect::<Vec<_>>();
        let age = *pick_weighted(&mut rng, &age);
        let young = 1.0 - age as f64 / 5.0;
        let income = *pick_weighted(
            &mut rng,
            &[
                ("low", 0.2 + 0.2 * young),
                ("middle", 0.5),
                ("high", 0.3 - 0.2 * young),
            ],
        );
        let homeowner = rng.random_bool((0.05 + 0.75 * (1.0 - young)).clamp(0.0, 1.0));
        let has_app = rng.random_bool((0.3 + 0.5 * young).clamp(0.0, 1.0));
        let tz_name = *pick_weighted(&mut rng, &TIMEZONES);
        let tz: chrono_tz::Tz = tz_name.parse().unwrap_or(chrono_tz::UTC);
        let region = REGIONS[rng.random_range(0..REGIONS.len())];

        // Active hours: a peak hour of day, and more or less activity at weekends.
        let peak = *pick_weighted(
            &mut rng,
            &[(8.0, 0.25), (12.5, 0.2), (19.5, 0.4), (22.5, 0.15)],
        ) + rng.random_range(-1.0..1.0);
        let weekend = *pick_weighted(&mut rng, &[(0.6, 0.3), (1.0, 0.4), (1.8, 0.3)]);
        let mut activity = [0.0; 168];
        for (how, w) in activity.iter_mut().enumerate() {
            let (day, hour) = (how / 24, (how % 24) as f64 + 0.5);
            let d = circular_distance(hour, peak);
            *w = (if day >= 5 { weekend } else { 1.0 })
                * (0.03 + (-(d * d) / (2.0 * 1.5 * 1.5)).exp());
        }
        let mean_activity = activity.iter().sum::<f64>() / 168.0;
        let best_how = (0..168)
            .max_by(|&x, &y| activity[x].total_cmp(&activity[y]))
            .unwrap_or(0);

        let mut channel_effect = [0.0; Channel::COUNT];
        for c in SIM_CHANNELS {
            channel_effect[c.index()] = channel_mean(c, age) + channel_noise.sample(&mut rng);
        }
        let taste: BTreeMap<String, f64> = categories
            .iter()
            .map(|k| (k.clone(), taste_dist.sample(&mut rng)))
            .collect();
        let customer = Customer {
            id: id.clone(),
            age,
            income,
            homeowner,
            has_app,
            tz,
            activity,
            mean_activity,
            channel_effect,
            taste,
        };

        // Sign-up: attributes and consents.
        let signup = start + rng.random_range(0..(opts.days as i64 * 86_400 / 2).max(1));
        out.event(
            signup,
            serde_json::json!({"customer_id": id, "type": "attributes", "channel": "web",
                "attributes": {"age_band": AGE_BANDS[age].0, "region": region, "income_band": income,
                    "homeowner": homeowner, "has_app": has_app, "timezone": tz_name}}),
        );
        let mut consent: BTreeMap<Channel, Option<i64>> = BTreeMap::new(); // granted until
        for (c, p) in [
            (Channel::Email, 0.85),
            (Channel::Sms, 0.55),
            (Channel::Push, if has_app { 0.6 } else { 0.0 }),
            (Channel::DirectMail, 0.35),
        ] {
            if rng.random_bool(p) {
                out.event(
                    signup + 1,
                    serde_json::json!({"customer_id": id, "type": "consent",
                        "consent": {"channel": c, "granted": true}}),
                );
                // Some withdraw later (about 1 in 4 over a year).
                let withdraw = signup
                    + (Exp::new(1.0 / (4.0 * 365.0 * 86_400.0))
                        .map(|e| e.sample(&mut rng))
                        .unwrap_or(f64::MAX)
                        .min(1e12) as i64);
                let until = (withdraw < end).then_some(withdraw);
                if let Some(w) = until {
                    out.event(
                        w,
                        serde_json::json!({"customer_id": id, "type": "consent",
                            "consent": {"channel": c, "granted": false}}),
                    );
                }
                consent.insert(c, until);
            }
        }

        // Purchases: BG/NBD with Gamma-Gamma spend; about 30% never buy.
        let lambda = rate_dist.sample(&mut rng);
        let dropout = dropout_dist.sample(&mut rng);
        let spend_rate = spend_scale_dist.sample(&mut rng);
        let spend_dist = Gamma::new(gg_p, 1.0 / spend_rate.max(1e-9)).expect("valid gamma");
        let mut purchases = 0;
        let mut lapsed_at = None;
        if rng.random_bool(0.7) {
            let mut t = signup + rng.random_range(0..86_400 * 14);
            let weekly = Exp::new(lambda.max(1e-6)).expect("valid rate");
            let mut first = true;
            while t < end {
                let at = active_time_on_day(&mut rng, &customer, t);
                let channel = if has_app && rng.random_bool(0.5) {
                    "app"
                } else {
                    "web"
                };
                out.event(
                    at,
                    serde_json::json!({"customer_id": id, "type": "purchase", "channel": channel,
                        "amount": (spend_dist.sample(&mut rng) * 100.0).round() / 100.0 + 0.01}),
                );
                purchases += 1;
                if !first && rng.random_bool(dropout) {
                    lapsed_at = Some(at);
                    break;
                }
                first = false;
                t += (weekly.sample(&mut rng) * 7.0 * 86_400.0) as i64 + 86_400;
            }
        }
        summary.purchases += purchases;
        let active_until = lapsed_at.unwrap_or(end);

        // Visits: a personal weekly rate while active, a tenth of it after lapsing; half
        // of them show an offer on the page (an inbound contact).
        let visit_rate = Gamma::new(2.0, 1.0)
            .map(|g| g.sample(&mut rng))
            .unwrap_or(1.0);
        let mut recent_contacts: Vec<i64> = Vec::new();
        let mut day = signup;
        while day < end {
            let rate: f64 = if day < active_until {
                visit_rate
            } else {
                visit_rate / 10.0
            } / 7.0;
            let visits = Poisson::new(rate.max(1e-9))
                .map(|p| p.sample(&mut rng) as u32)
                .unwrap_or(0);
            for _ in 0..visits {
                let at = active_time_on_day(&mut rng, &customer, day);
                let channel = if has_app && rng.random_bool(0.6) {
                    Channel::App
                } else {
                    Channel::Web
                };
                let name = if rng.random_bool(0.97) {
                    "visit"
                } else {
                    "complaint"
                };
                out.event(
                    at,
                    serde_json::json!({"customer_id": id, "type": "interaction",
                        "channel": channel, "name": name}),
                );
                if rng.random_bool(0.5) {
                    let candidates: Vec<&Offer> = offers
                        .iter()
                        .filter(|o| o.channels.contains(&channel))
                        .collect();
                    if !candidates.is_empty() {
                        let offer = candidates[rng.random_range(0..candidates.len())];
                        let logged: Vec<(&str, Channel)> = candidates
                            .iter()
                            .map(|o| (o.id.as_str(), channel))
                            .collect();
                        contact(
                            &mut rng,
                            &mut out,
                            &mut summary,
                            &customer,
                            (offer, channel),
                            at + 1,
                            &logged,
                            &mut recent_contacts,
                            false,
                        );
                    }
                }
            }
            // Outbound campaigns: about one decision every two weeks.
            if rng.random_bool(1.0 / 14.0) {
                let reachable: Vec<Channel> = consent
                    .iter()
                    .filter(|(_, until)| until.is_none_or(|u| day < u))
                    .map(|(c, _)| *c)
                    .collect();
                let candidates: Vec<(&Offer, Channel)> = offers
                    .iter()
                    .flat_map(|o| {
                        reachable
                            .iter()
                            .filter(|c| o.channels.contains(c))
                            .map(move |&c| (o, c))
                    })
                    .collect();
                if !candidates.is_empty() {
                    let (offer, channel) = candidates[rng.random_range(0..candidates.len())];
                    // Send at a uniformly drawn local hour between 08:00 and 21:59.
                    let local = customer.tz.from_utc_datetime(
                        &DateTime::<Utc>::from_timestamp(day, 0)
                            .unwrap_or_default()
                            .naive_utc(),
                    );
                    let hour = rng.random_range(8..22);
                    let naive = local
                        .date_naive()
                        .and_hms_opt(hour, rng.random_range(0..60), 0)
                        .unwrap_or_default();
                    if let Some(at) = customer.tz.from_local_datetime(&naive).earliest() {
                        let at = at.with_timezone(&Utc).timestamp().max(day);
                        let logged: Vec<(&str, Channel)> = candidates
                            .iter()
                            .map(|(o, c)| (o.id.as_str(), *c))
                            .collect();
                        contact(
                            &mut rng,
                            &mut out,
                            &mut summary,
                            &customer,
                            (offer, channel),
                            at,
                            &logged,
                            &mut recent_contacts,
                            true,
                        );
                    }
                }
            }
            day += 86_400;
        }

        let mut reachable: Vec<Channel> = consent
            .iter()
            .filter(|(_, until)| until.is_none())
            .map(|(c, _)| *c)
            .collect();
        reachable.push(Channel::Web);
        if has_app {
            reachable.push(Channel::App);
        }
        reachable.sort_by_key(|c| c.index());
        let best_channel = reachable
            .iter()
            .copied()
            .max_by(|x, y| channel_effect[x.index()].total_cmp(&channel_effect[y.index()]));
        let offer_logit: BTreeMap<String, f64> = offers
            .iter()
            .map(|o| {
                let l = category_base(&o.category)
                    + o.appeal
                    + attribute_effect(&customer, &o.category)
                    + customer.taste.get(&o.category).copied().unwrap_or(0.0);
                (o.id.clone(), l)
            })
            .collect();
        let best_offer = offer_logit
            .iter()
            .max_by(|x, y| x.1.total_cmp(y.1))
            .map(|(k, _)| k.clone())
            .unwrap_or_default();
        truths.push(CustomerTruth {
            customer_id: id,
            age_band: AGE_BANDS[age].0.to_owned(),
            timezone: tz_name.to_owned(),
            peak_hour: peak.rem_euclid(24.0) as u32,
            best_hour_of_week: best_how,
            activity: {
                let max = customer.activity.iter().copied().fold(0.0, f64::max);
                customer
                    .activity
                    .iter()
                    .map(|a| (a / max * 1000.0).round() / 1000.0)
                    .collect()
            },
            reachable_channels: reachable,
            best_channel,
            channel_effects: SIM_CHANNELS
                .iter()
                .map(|&c| (c, channel_effect[c.index()]))
                .collect(),
            offer_logit,
            best_offer,
            purchase_rate: lambda,
            dropout,
            lapsed_at: lapsed_at.map(rfc3339),
            purchases,
        });
        customers.push(SimCustomer { customer, consent });
    }

    summary.events = out.events.len();
    summary.decisions = out.decisions.len();
    Ok(World {
        out,
        truths,
        customers,
        offers,
        summary,
        end,
    })
}

/// One contact by the logging policy, and the customer's answer drawn from the truth. The
/// decision is logged as the service logs its own ([`DecisionRecord`]): every candidate with
/// the probability of being chosen (uniform), and no scores (the logging policy has none).
#[allow(clippy::too_many_arguments)]
fn contact(
    rng: &mut StdRng,
    out: &mut Out,
    summary: &mut SimulationSummary,
    c: &Customer,
    (offer, channel): (&Offer, Channel),
    at: i64,
    candidates: &[(&str, Channel)],
    recent: &mut Vec<i64>,
    outbound: bool,
) {
    summary.contacts += 1;
    let decision_id = format!("sim-d-{}", out.decisions.len() + 1);
    out.event(
        at,
        serde_json::json!({"customer_id": c.id, "type": "contact", "channel": channel,
            "offer_id": offer.id, "decision_id": decision_id}),
    );
    let probability = 1.0 / candidates.len() as f64;
    let scored = |offer_id: &str, channel: Channel| ScoredRecord {
        offer_id: offer_id.to_owned(),
        channel: channel.as_str().to_owned(),
        send_after_s: 0,
        propensity: None,
        value: None,
        priority: None,
        probability,
    };
    let record = DecisionRecord {
        format: FORMAT,
        decision_id: decision_id.clone(),
        customer_id: c.id.clone(),
        at: rfc3339(at),
        model_version: LOGGING_POLICY.into(),
        arm: crate::decision::answer::ModelArm::Champion,
        catalog_version: out.catalog_version.clone(),
        degraded: false,
        policy: PolicyRecord {
            kind: "uniform".into(),
            parameters: serde_json::Map::new(),
        },
        request: RequestRecord {
            touchpoint: (!outbound).then(|| channel.as_str().to_owned()),
            // The channels it planned over: those of its candidates.
            channels: outbound.then(|| {
                let mut list: Vec<Channel> = candidates.iter().map(|&(_, c)| c).collect();
                list.sort_by_key(|c| c.index());
                list.dedup();
                list.iter().map(|c| c.as_str().to_owned()).collect()
            }),
            placement: None,
            limit: 1,
            context: serde_json::Map::new(),
        },
        features: serde_json::json!({"segment": null, "value": null}),
        candidates: candidates.iter().map(|&(o, ch)| scored(o, ch)).collect(),
        actions: vec![scored(&offer.id, channel)],
    };
    out.decisions.push((
        at,
        serde_json::to_string(&record).expect("a record serialises"),
    ));
    recent.retain(|&t| at - t < 7 * 86_400);
    let logit = c.logit(offer, channel, at, recent.len());
    recent.push(at);
    let positive = rng.random_bool(sigmoid(logit).clamp(0.0, 1.0));
    if outbound {
        out.outbound.push(LoggedContact {
            offer: offer.id.clone(),
            channel,
            local_hour: local_how(c.tz, at) % 24,
            positive,
        });
    }
    let answered_at = if outbound {
        at + (Exp::new(1.0 / (6.0 * 3600.0))
            .map(|e| e.sample(rng))
            .unwrap_or(3600.0)) as i64
            + 60
    } else {
        at + rng.random_range(30..600)
    };
    let outcome = if positive {
        summary.positive_responses += 1;
        Some(*pick_weighted(
            rng,
            &[("clicked", 0.6), ("accepted", 0.3), ("converted", 0.1)],
        ))
    } else if rng.random_bool(0.15) {
        Some("declined")
    } else {
        None // ignored: no answer at all
    };
    if let Some(outcome) = outcome {
        // Most answers carry the decision; some only the offer (e.g. a call-centre note).
        let mut e = serde_json::json!({"customer_id": c.id, "type": "response",
            "offer_id": offer.id, "outcome": outcome, "channel": channel});
        if rng.random_bool(0.7) {
            e["decision_id"] = decision_id.into();
        }
        out.event(answered_at, e);
    }
}

fn write_lines(path: &Path, lines: &[(i64, String)]) -> Result<(), SimulateError> {
    let err = |source| SimulateError::Write {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::create(path).map_err(err)?;
    let mut w = std::io::BufWriter::new(file);
    for (_, line) in lines {
        w.write_all(line.as_bytes()).map_err(err)?;
        w.write_all(b"\n").map_err(err)?;
    }
    w.flush().map_err(err)
}
