//! `touchpoint simulate --closed-loop`: the engine against simulated customers whose truth is
//! known, day after day, learning from their answers.
//!
//! A history is simulated ([`super::simulate`]) and a model set trained on it, as a company
//! would before going live. Then offers are added to the catalog that the models never saw
//! (`closed_loop_offers.toml`: one that suits young renters and not older homeowners, a
//! slightly better savings account, a costly one that suits nobody), and for `days` days
//! every customer has about `contacts_per_week` outbound contact opportunities. At each one
//! the engine decides through the decision service, in-process with the memory store (the
//! simulated clock is the request's `at`) or, with `--url`, the service there, started on a
//! simulated clock ([`crate::time::Clock`]) with the models and catalog [`prepare`] wrote
//! ([`super::remote`]: the clock set hour by hour, events and decisions over HTTP); the
//! simulation sends the planned action at its `send_at`, draws the answer from the truth
//! (with one uniform number per opportunity for every arm, [`Truth::luck`]), and feeds the
//! `contact` and the answer back as events when they happen. The `preference-shift`
//! scenario also changes what customers like halfway (cards fall out of favour, insurance
//! gains, the renters' offer fades).
//!
//! Five arms meet the same customers at the same opportunities:
//! - `engine`: the catalog with the new offers, learning on (the settings in force);
//! - `learning_off`: the same with `learning.enabled = false`;
//! - `before`: the engine on the catalog without the new offers (what it did before);
//! - `mass_marketing`: the single best offer and channel and the single best local hour for
//!   everyone, by the value per contact observed in the history;
//! - `oracle`: the truth's best (offer, channel, hour) for the customer, by the engine's own
//!   objective (true probability x margin - contact cost), among the engine's candidates
//!   (the same consent, eligibility and horizon) and outside quiet hours.
//!
//! Each arm keeps its own contact history (answers tire with contacts). Every contact the
//! engine arms make is checked against the consent, the contact limits and the quiet hours
//! of the contact policy in force, from the simulation's own record: violations are counted
//! and reported. `closed_loop.json` holds a row per day per arm (response rate, value per
//! contact, the share of contacts with a new offer) and `closed_loop.svg` plots the
//! response rates; the learning engine's decision log (`decisions.jsonl`, in-process only:
//! the service at `--url` keeps its own) and the events
//! (`events.jsonl`: the history, then the contacts and answers fed back to that engine) are
//! kept for `touchpoint evaluate`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Normal};
use serde::Serialize;

use super::simulate::{self, Offer, SimCustomer, SimulationOptions, World};
use crate::decision::catalog::Catalog;
use crate::decision::contact_policy::ContactPolicy;
use crate::decision::log::{DecisionLog, LogSink};
use crate::decision::request::DecisionRequest;
use crate::decision::service::Decider;
use crate::learning::Learner;
use crate::live::Live;
use crate::model::set::ModelSet;
use crate::profile::memory::MemoryStore;
use crate::profile::{Channel, CustomerId, Event, Profiles};
use crate::settings::Settings;
use crate::time::rfc3339;

/// The offers the scenario adds to the catalog after training.
pub const NEW_OFFERS: &str = include_str!("closed_loop_offers.toml");
/// Their true appeal (logit) on top of their category, by offer id.
const NEW_APPEAL: [(&str, f64); 3] = [
    ("renters-starter", 0.0),
    ("green-saver", 0.4),
    ("concierge-plus", 0.0),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Offers added to the catalog after training.
    NewOffers,
    /// The same, and customers' preferences shift halfway.
    PreferenceShift,
}

#[derive(Debug, Clone)]
pub struct ClosedLoopOptions {
    pub customers: usize,
    /// Days of closed loop.
    pub days: u32,
    /// Days of history before it (the models are trained on it).
    pub history_days: u32,
    pub seed: u64,
    pub scenario: Scenario,
    /// Outbound contact opportunities per customer and week.
    pub contacts_per_week: f64,
    /// The `engine` arm is the service at this URL (started on a simulated clock with the
    /// models and catalog [`prepare`] wrote), not an in-process decision service.
    pub url: Option<String>,
    /// The API key for `url` (scopes `decisions`, `events`, `admin`).
    pub api_key: Option<String>,
}

impl Default for ClosedLoopOptions {
    fn default() -> Self {
        Self {
            customers: 5_000,
            days: 14,
            history_days: 365,
            seed: 42,
            scenario: Scenario::NewOffers,
            contacts_per_week: 2.0,
            url: None,
            api_key: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClosedLoopError {
    #[error(transparent)]
    Simulate(#[from] simulate::SimulateError),
    #[error("training on the simulated history: {0}")]
    Train(#[from] super::TrainError),
    #[error("the scenario catalog: {0}")]
    Catalog(#[from] crate::decision::catalog::CatalogError),
    #[error("the trained model set: {0}")]
    Models(#[from] crate::model::set::ModelError),
    #[error("the decision log: {0}")]
    Log(#[from] crate::decision::log::LogError),
    #[error("the profile store: {0}")]
    Store(#[from] crate::profile::StoreError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plotting: {0}")]
    Plot(#[from] super::plots::PlotError),
    #[error(transparent)]
    Remote(#[from] super::remote::RemoteError),
    #[error("{0}")]
    NotPrepared(String),
}

/// One arm's figures over one day (or a whole run).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ArmDay {
    pub opportunities: u64,
    pub contacts: u64,
    pub positives: u64,
    /// Positive answers per contact.
    pub response_rate: f64,
    /// The truth's probability of a positive answer, averaged over the contacts: the rate
    /// the arm's choices earn, without the luck of the draws (an arm's drawn rate over a
    /// day or two moves by several percent from run to run).
    pub expected_response_rate: f64,
    /// (Margin of the positive answers - contact costs) per contact.
    pub value_per_contact: f64,
    /// Share of the contacts that carried one of the new offers.
    pub new_offer_share: f64,
    /// Contacts that broke the consent, a contact limit or the quiet hours.
    pub violations: Violations,
    #[serde(skip)]
    value: f64,
    #[serde(skip)]
    new_offer_contacts: u64,
    #[serde(skip)]
    expected_positives: f64,
}

impl ArmDay {
    fn finish(&mut self) {
        let n = self.contacts.max(1) as f64;
        self.response_rate = self.positives as f64 / n;
        self.expected_response_rate = self.expected_positives / n;
        self.value_per_contact = self.value / n;
        self.new_offer_share = self.new_offer_contacts as f64 / n;
    }

    fn add(&mut self, other: &ArmDay) {
        self.opportunities += other.opportunities;
        self.contacts += other.contacts;
        self.positives += other.positives;
        self.expected_positives += other.expected_positives;
        self.value += other.value;
        self.new_offer_contacts += other.new_offer_contacts;
        self.violations.consent += other.violations.consent;
        self.violations.contact_limit += other.violations.contact_limit;
        self.violations.quiet_hours += other.violations.quiet_hours;
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Violations {
    pub consent: u64,
    pub contact_limit: u64,
    pub quiet_hours: u64,
}

impl Violations {
    pub fn total(&self) -> u64 {
        self.consent + self.contact_limit + self.quiet_hours
    }
}

/// `closed_loop.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ClosedLoopReport {
    pub scenario: Scenario,
    pub seed: u64,
    pub customers: usize,
    pub days: u32,
    pub contacts_per_week: f64,
    pub model_version: String,
    pub policy: serde_json::Value,
    pub new_offers: Vec<String>,
    /// The mass-marketing choice: offer, channel, local hour.
    pub mass_marketing: (String, Channel, usize),
    /// Arm name -> one entry per day.
    pub arms: BTreeMap<String, Vec<ArmDay>>,
    /// Arm name -> the whole run.
    pub totals: BTreeMap<String, ArmDay>,
}

impl ClosedLoopReport {
    /// The arm's response rate over days `from..to` (0-based, end excluded).
    pub fn rate(&self, arm: &str, from: usize, to: usize) -> f64 {
        self.over(arm, from, to).response_rate
    }

    /// The arm's expected response rate over days `from..to` (0-based, end excluded): the
    /// truth's probabilities of its contacts ([`ArmDay::expected_response_rate`]).
    pub fn expected_rate(&self, arm: &str, from: usize, to: usize) -> f64 {
        self.over(arm, from, to).expected_response_rate
    }

    /// The arm's days `from..to` together.
    fn over(&self, arm: &str, from: usize, to: usize) -> ArmDay {
        let mut sum = ArmDay::default();
        if let Some(days) = self.arms.get(arm) {
            for d in days.iter().take(to).skip(from) {
                sum.add(d);
            }
        }
        sum.finish();
        sum
    }
}

/// What one arm knows of one customer.
#[derive(Default, Clone)]
struct Contacts {
    /// (send time, channel, offer index): the history's contacts, then the arm's.
    sent: Vec<(i64, Channel, usize)>,
}

impl Contacts {
    /// Contacts in the week before `at` (answers tire with them).
    fn recent(&self, at: i64) -> usize {
        self.sent
            .iter()
            .filter(|&&(t, _, _)| t <= at && at - t < 7 * 86_400)
            .count()
    }
}

/// Who decides for an engine arm.
enum Engine {
    /// The decision service in-process, on the memory store, its clock the requests' `at`.
    Local {
        decider: Decider,
        learner: Option<Arc<Learner>>,
        /// The decision service's "now" (what lapsed planned actions are measured by),
        /// moved hour by hour.
        clock: crate::time::Clock,
    },
    /// The service at `--url`, on its simulated clock.
    Remote {
        remote: super::remote::Remote,
        model_version: String,
    },
}

/// An arm the decision service decides for.
struct EngineArm {
    name: &'static str,
    engine: Engine,
    /// Events not yet due: (at, JSON line).
    pending: Vec<(i64, String)>,
    /// History events dated after its end, for the service at `--url` (in-process, the
    /// history is applied whole): (at, JSON line), latest first.
    replay: Vec<(i64, String)>,
    contacts: Vec<Contacts>,
    rng: StdRng,
    days: Vec<ArmDay>,
    next_event: u64,
    /// The decision log's writer, for the arm that logs.
    writer: Option<tokio::task::JoinHandle<()>>,
    /// The events fed back, for the arm that logs (they go to `events.jsonl`).
    fed: Option<Vec<(i64, String)>>,
}

/// An arm the simulation decides for itself (mass marketing, the oracle).
struct ReferenceArm {
    contacts: Vec<Contacts>,
    days: Vec<ArmDay>,
}

/// The world the arms share.
struct Truth {
    customers: Vec<SimCustomer>,
    /// Each customer's contacts in the history.
    history: Vec<Contacts>,
    offers: Vec<Offer>,
    /// Offer index by id.
    index: HashMap<String, usize>,
    /// Margin, contact cost by channel, service flag, new: by offer index.
    facts: Vec<OfferFacts>,
    /// Seeds each opportunity's luck ([`Truth::luck`]).
    seed: u64,
}

struct OfferFacts {
    value: f64,
    cost: [f64; Channel::COUNT],
    service: bool,
    new: bool,
}

impl Truth {
    /// The uniform draw that decides whether customer `c` answers the contact made at the
    /// opportunity of time `t`, the same for every arm: an arm answered where another was
    /// not is so because its choice was likelier to be, not because its dice fell better
    /// (common random numbers, the usual variance reduction for comparing systems on one
    /// simulation: Law, *Simulation Modeling and Analysis*, 5th ed., section 11.2).
    fn luck(&self, c: usize, t: i64) -> f64 {
        let mut key = [0u8; 24];
        key[..8].copy_from_slice(&self.seed.to_le_bytes());
        key[8..16].copy_from_slice(&(c as u64).to_le_bytes());
        key[16..].copy_from_slice(&t.to_le_bytes());
        (xxhash_rust::xxh3::xxh3_64(&key) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn probability(
        &self,
        customer: usize,
        offer: usize,
        channel: Channel,
        at: i64,
        recent: usize,
    ) -> f64 {
        let x = self.customers[customer]
            .customer
            .logit(&self.offers[offer], channel, at, recent);
        1.0 / (1.0 + (-x).exp())
    }
}

/// What [`prepare`] writes into the output directory (`prepared.json`): a service run for
/// `--url` is started on its models and catalog, and a later run with the same options
/// simulates the same customers.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
struct PreparedFile {
    customers: usize,
    history_days: u32,
    seed: u64,
    model_version: String,
}

const PREPARED: &str = "prepared.json";

/// The world, and where [`prepare`] put the models and the catalog.
struct Prepared {
    world: World,
    models_dir: PathBuf,
    catalog_path: PathBuf,
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> ClosedLoopError {
    let path = path.to_owned();
    move |source| ClosedLoopError::Write { path, source }
}

/// Simulates the history and, with `train`, trains a model set on it and writes the catalog
/// with the new offers, as a company would before going live; without, takes the ones an
/// earlier `prepare` with the same options wrote (what the service at `--url` serves).
fn prepare_world(
    out_dir: &Path,
    settings: &Settings,
    opts: &ClosedLoopOptions,
    train: bool,
    progress: &indicatif::ProgressBar,
) -> Result<Prepared, ClosedLoopError> {
    std::fs::create_dir_all(out_dir).map_err(write_err(out_dir))?;
    let models_dir = out_dir.join("models");
    let catalog_path = out_dir.join("catalog.toml");
    let prepared_path = out_dir.join(PREPARED);
    let expected = |model_version: String| PreparedFile {
        customers: opts.customers,
        history_days: opts.history_days,
        seed: opts.seed,
        model_version,
    };
    if !train {
        let how = format!(
            "run `touchpoint simulate --closed-loop --prepare --out {dir}` with the same --seed, \
             --customers and --history-days, then start the service with `touchpoint serve \
             --simulated-clock --models {dir}/models --catalog {dir}/catalog.toml`",
            dir = out_dir.display()
        );
        let text = std::fs::read_to_string(&prepared_path).map_err(|_| {
            ClosedLoopError::NotPrepared(format!("{} is missing: {how}", prepared_path.display()))
        })?;
        let found: PreparedFile = serde_json::from_str(&text).map_err(|e| {
            ClosedLoopError::NotPrepared(format!(
                "{} cannot be read ({e}): {how}",
                prepared_path.display()
            ))
        })?;
        if found != expected(found.model_version.clone()) {
            return Err(ClosedLoopError::NotPrepared(format!(
                "{} was prepared for {} customers, {} days of history and seed {}, not {}, {} and {}: {how}",
                out_dir.display(),
                found.customers,
                found.history_days,
                found.seed,
                opts.customers,
                opts.history_days,
                opts.seed
            )));
        }
    }
    let base_catalog = Catalog::load(&settings.catalog.path)?;

    // The history, and a model set trained on it (with the catalog of then).
    progress.set_message("simulating the history");
    let sim = SimulationOptions {
        customers: opts.customers,
        days: opts.history_days,
        seed: opts.seed,
    };
    let mut world = simulate::generate(&base_catalog, &sim, &indicatif::ProgressBar::hidden())?;
    let history_dir = out_dir.join("history");
    simulate::write_history(&history_dir, &mut world, &sim)?;
    if train {
        progress.set_message("training on the history");
        let summary = super::train(
            &history_dir.join("events.jsonl"),
            &models_dir,
            None,
            settings,
            &super::Quiet,
        )?;
        // The catalog with the new offers.
        let base_text = std::fs::read_to_string(&settings.catalog.path).map_err(|source| {
            crate::decision::catalog::CatalogError::Read {
                path: settings.catalog.path.clone(),
                source,
            }
        })?;
        std::fs::write(&catalog_path, format!("{base_text}\n{NEW_OFFERS}"))
            .map_err(write_err(&catalog_path))?;
        let text = serde_json::to_string_pretty(&expected(summary.version))
            .expect("the options serialise");
        std::fs::write(&prepared_path, text).map_err(write_err(&prepared_path))?;
    }
    Ok(Prepared {
        world,
        models_dir,
        catalog_path,
    })
}

/// Writes what a service run for `simulate --closed-loop --url` needs into `out_dir`: the
/// simulated history, the model set trained on it (`models/`) and the catalog with the new
/// offers (`catalog.toml`).
pub fn prepare(
    out_dir: &Path,
    settings: &Settings,
    opts: &ClosedLoopOptions,
    progress: &indicatif::ProgressBar,
) -> Result<(), ClosedLoopError> {
    prepare_world(out_dir, settings, opts, true, progress).map(|_| ())
}

/// Runs the closed loop; writes everything under `out_dir` and returns the report.
pub async fn run(
    out_dir: &Path,
    settings: &Settings,
    opts: &ClosedLoopOptions,
    progress: &indicatif::ProgressBar,
) -> Result<ClosedLoopReport, ClosedLoopError> {
    let mut remote = match &opts.url {
        Some(url) => Some(super::remote::Remote::new(url, opts.api_key.clone())?),
        None => None,
    };
    let Prepared {
        world,
        models_dir,
        catalog_path,
    } = prepare_world(out_dir, settings, opts, remote.is_none(), progress)?;
    let history_dir = out_dir.join("history");
    let catalog = Catalog::load(&catalog_path)?;
    let World {
        out,
        end,
        customers,
        offers,
        ..
    } = world;
    // The history as the engine's store holds it (write_history sorted it by time).
    progress.set_message("loading the history into the stores");
    let history: Vec<Event> = out
        .events
        .iter()
        .filter_map(|(_, l)| crate::profile::event::parse_line(l.as_bytes()).ok())
        .collect();
    let truth = truth_of(customers, offers, &catalog, &history, opts.seed);
    let mass = mass_marketing(&out.outbound, &truth);

    let start = (end + 3599) / 3600 * 3600;
    let mut arms = Vec::new();
    for (name, learning, path) in [
        ("engine", true, &catalog_path),
        ("learning_off", false, &catalog_path),
        ("before", true, &settings.catalog.path),
    ] {
        let mut s = settings.clone();
        s.learning.enabled = learning && settings.learning.enabled;
        s.models.dir = models_dir.clone();
        s.catalog.path = path.clone();
        if name == "engine" {
            s.decision.log.sink = LogSink::File;
            s.decision.log.path = out_dir.join("decisions.jsonl");
            s.decision.log.queue = s.decision.log.queue.max(1 << 20);
        } else {
            s.decision.log.sink = LogSink::Off;
        }
        let arm = match remote.take().filter(|_| name == "engine") {
            Some(r) => {
                progress.set_message("loading the history into the service");
                remote_arm(name, r, &models_dir, &out.events, end, &truth, opts.seed).await?
            }
            None => engine_arm(name, &s, &history, end, &truth, opts.seed).await?,
        };
        arms.push(arm);
    }
    drop(history);
    // The oracle and mass marketing choose among the candidates of the first in-process
    // engine (the service at `--url` does not say its own).
    let candidates_of = arms
        .iter()
        .position(|a| matches!(a.engine, Engine::Local { .. }))
        .unwrap_or(0);
    let mut oracle = reference_arm(&truth);
    let mut mass_arm = reference_arm(&truth);

    // Contact opportunities, the same for every arm.
    let mut rng = StdRng::seed_from_u64(opts.seed ^ 0xc105ed);
    let mut opportunities: Vec<(i64, usize)> = Vec::new();
    let p_day = (opts.contacts_per_week / 7.0).clamp(0.0, 1.0);
    for day in 0..opts.days as i64 {
        for c in 0..truth.customers.len() {
            if rng.random_bool(p_day) {
                opportunities.push((start + day * 86_400 + rng.random_range(0..86_400), c));
            }
        }
    }
    opportunities.sort_unstable();

    let policy = &settings.decision.contact_policy;
    let days = opts.days as usize;
    for arm in &mut arms {
        arm.days = vec![ArmDay::default(); days];
    }
    oracle.days = vec![ArmDay::default(); days];
    mass_arm.days = vec![ArmDay::default(); days];
    let shift_hour = (opts.scenario == Scenario::PreferenceShift).then_some(days * 24 / 2);
    let mut truth = truth;
    progress.set_length(opportunities.len() as u64);
    progress.set_position(0);
    progress.set_message("closed loop");
    let mut next = 0;
    for hour in 0..days * 24 {
        let h0 = start + hour as i64 * 3600;
        if Some(hour) == shift_hour {
            shift_preferences(&mut truth, opts.seed);
        }
        for arm in &mut arms {
            arm.feed(h0).await?;
        }
        while next < opportunities.len() && opportunities[next].0 < h0 + 3600 {
            let (t, c) = opportunities[next];
            next += 1;
            progress.inc(1);
            let day = ((t - start) / 86_400) as usize;
            let customer_id =
                CustomerId::parse(truth.customers[c].customer.id.clone()).expect("a simulated id");
            let mut candidates = Vec::new();
            for (k, arm) in arms.iter_mut().enumerate() {
                let cands = arm.decide(&customer_id, c, t, day, &truth, policy).await?;
                if k == candidates_of {
                    candidates = cands;
                }
            }
            oracle.days[day].opportunities += 1;
            mass_arm.days[day].opportunities += 1;
            if let Some((o, ch, at)) = oracle_choice(&truth, &oracle, c, t, &candidates, policy) {
                oracle.send(&truth, c, o, ch, at, t, day);
            }
            if let Some((o, ch, at)) =
                mass_choice(&truth, &mass, &mass_arm, c, t, &candidates, policy)
            {
                mass_arm.send(&truth, c, o, ch, at, t, day);
            }
        }
        tokio::task::yield_now().await;
    }

    // Contact limits, checked over every window now that all sends are known.
    for arm in &mut arms {
        for (c, contacts) in arm.contacts.iter().enumerate() {
            let first_new = truth.history[c].sent.len();
            for (day, n) in limit_violations(contacts, first_new, &truth, policy, start) {
                if let Some(d) = arm.days.get_mut(day) {
                    d.violations.contact_limit += n;
                }
            }
        }
    }

    let model_version = match &arms[0].engine {
        Engine::Local { decider, .. } => decider.model_version(),
        Engine::Remote { model_version, .. } => model_version.clone(),
    };
    let policy_record = match &arms[candidates_of].engine {
        Engine::Local { decider, .. } => decider.policy().record(),
        Engine::Remote { .. } => std::sync::Arc::from(""),
    };
    let mut writers = Vec::new();
    for arm in &mut arms {
        writers.extend(arm.writer.take());
    }
    // The history and the learning engine's answers: what `evaluate` reads with its log.
    let events_path = out_dir.join("events.jsonl");
    std::fs::copy(history_dir.join("events.jsonl"), &events_path)
        .map_err(write_err(&events_path))?;
    {
        use std::io::Write;
        let mut fed = arms[0].fed.take().unwrap_or_default();
        fed.sort_by_key(|(t, _)| *t);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&events_path)
            .map_err(write_err(&events_path))?;
        let mut w = std::io::BufWriter::new(file);
        for (_, line) in &fed {
            writeln!(w, "{line}").map_err(write_err(&events_path))?;
        }
        w.flush().map_err(write_err(&events_path))?;
    }
    let mut report = ClosedLoopReport {
        scenario: opts.scenario,
        seed: opts.seed,
        customers: opts.customers,
        days: opts.days,
        contacts_per_week: opts.contacts_per_week,
        model_version,
        policy: serde_json::from_str(&policy_record).unwrap_or_default(),
        new_offers: NEW_APPEAL.iter().map(|(id, _)| (*id).to_owned()).collect(),
        mass_marketing: (
            truth.offers[mass.ranking[0].0].id.clone(),
            mass.ranking[0].1,
            mass.hour,
        ),
        arms: BTreeMap::new(),
        totals: BTreeMap::new(),
    };
    let mut all: Vec<(&str, Vec<ArmDay>)> = Vec::new();
    for arm in arms {
        all.push((arm.name, arm.days));
    }
    // Every decider is gone: the log writer drains its queue and ends.
    for w in writers {
        let _ = w.await;
    }
    all.push(("mass_marketing", mass_arm.days));
    all.push(("oracle", oracle.days));
    for (name, mut days) in all {
        let mut total = ArmDay::default();
        for d in &mut days {
            total.add(d);
            d.finish();
        }
        total.finish();
        report.arms.insert(name.to_owned(), days);
        report.totals.insert(name.to_owned(), total);
    }

    let path = out_dir.join("closed_loop.json");
    let text = serde_json::to_string_pretty(&report).expect("the report serialises");
    std::fs::write(&path, text).map_err(write_err(&path))?;
    let path = out_dir.join("closed_loop.svg");
    std::fs::write(&path, plot(&report)?).map_err(write_err(&path))?;
    Ok(report)
}

/// The truth of the world with the new offers: their appeal, and every customer's taste
/// for their categories (drawn from a stream of their own, so the history is the same with
/// or without them).
fn truth_of(
    mut customers: Vec<SimCustomer>,
    mut offers: Vec<Offer>,
    catalog: &Catalog,
    history: &[Event],
    seed: u64,
) -> Truth {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7a57e);
    let taste = Normal::new(0.0, 0.6).expect("a valid normal");
    for (id, appeal) in NEW_APPEAL {
        if let Some(o) = catalog.offer(id) {
            offers.push(Offer {
                id: id.to_owned(),
                category: o.category.clone(),
                channels: o.channels.clone(),
                appeal,
            });
        }
    }
    for c in &mut customers {
        for o in &offers {
            if !c.customer.taste.contains_key(&o.category) {
                c.customer
                    .taste
                    .insert(o.category.clone(), taste.sample(&mut rng));
            }
        }
    }
    let index: HashMap<String, usize> = offers
        .iter()
        .enumerate()
        .map(|(i, o)| (o.id.clone(), i))
        .collect();
    let facts = offers
        .iter()
        .map(|o| {
            let c = catalog.offer(&o.id);
            let mut cost = [0.0; Channel::COUNT];
            for ch in Channel::ALL {
                cost[ch.index()] = c.map_or(0.0, |c| c.cost(ch));
            }
            OfferFacts {
                value: c.map_or(0.0, |c| c.value),
                cost,
                service: c.is_some_and(|c| c.service),
                new: NEW_APPEAL.iter().any(|(id, _)| *id == o.id),
            }
        })
        .collect();
    let by_id: HashMap<&str, usize> = customers
        .iter()
        .enumerate()
        .map(|(i, c)| (c.customer.id.as_str(), i))
        .collect();
    let mut sent = vec![Contacts::default(); customers.len()];
    for e in history {
        if let (crate::profile::EventKind::Contact, Some(ch), Some(o)) =
            (&e.kind, e.channel, e.offer_id.as_ref())
            && let (Some(&c), Some(&o)) = (by_id.get(e.customer_id.as_str()), index.get(o.as_str()))
        {
            sent[c].sent.push((e.at.timestamp(), ch, o));
        }
    }
    Truth {
        customers,
        history: sent,
        offers,
        index,
        facts,
        seed,
    }
}

async fn engine_arm(
    name: &'static str,
    settings: &Settings,
    history: &[Event],
    end: i64,
    truth: &Truth,
    seed: u64,
) -> Result<EngineArm, ClosedLoopError> {
    let store = MemoryStore::new(settings.profile.clone());
    let profiles = Profiles::new(Arc::new(store), settings.store.operation_timeout());
    for chunk in history.chunks(5_000) {
        profiles.apply(chunk, end).await?;
    }
    let dir = settings.models.dir.clone();
    let models = Arc::new(Live::load("model set", "closed_loop_reloads", move || {
        ModelSet::load(&dir)
    })?);
    let path = settings.catalog.path.clone();
    let catalog = Arc::new(Live::load("catalog", "closed_loop_reloads", move || {
        Catalog::load(&path)
    })?);
    let (log, writer) = DecisionLog::start(&settings.decision.log, None)?;
    let learner = Arc::new(Learner::new(
        models.clone(),
        catalog.clone(),
        settings.learning.clone(),
    ));
    // Learning starts now: the trained models have learned the history.
    if settings.learning.enabled {
        profiles.learn_with(learner.clone());
    }
    let clock = crate::time::Clock::simulated();
    clock.set(end).expect("a simulated clock");
    let decider = Decider::new(profiles, models, catalog, settings.decision.clone(), log)
        .with_learner(learner.clone())
        .with_decision_ids(&format!("cl-{seed}-{name}"))
        .with_clock(clock.clone());
    Ok(EngineArm {
        name,
        engine: Engine::Local {
            decider,
            learner: settings.learning.enabled.then_some(learner),
            clock,
        },
        pending: Vec::new(),
        replay: Vec::new(),
        contacts: truth.history.clone(),
        rng: StdRng::seed_from_u64(seed ^ 0xa5),
        days: Vec::new(),
        next_event: 0,
        writer,
        fed: (name == "engine").then(Vec::new),
    })
}

/// The `engine` arm as the service at `--url`: it must serve the model set trained here and
/// the catalog with the new offers, on a simulated clock that has not passed the history's
/// end. The clock is set to that end and the history posted as events, without the
/// decision ids of its contacts (the trained models have learned from the history; the
/// service's online learning starts with the loop, as in-process).
async fn remote_arm(
    name: &'static str,
    remote: super::remote::Remote,
    models_dir: &Path,
    history: &[(i64, String)],
    end: i64,
    truth: &Truth,
    seed: u64,
) -> Result<EngineArm, ClosedLoopError> {
    let not_ready = |m: String| ClosedLoopError::Remote(super::remote::RemoteError::NotReady(m));
    let how = format!(
        "start it with `touchpoint serve --simulated-clock --models {dir}/models --catalog {dir}/catalog.toml`",
        dir = models_dir.parent().unwrap_or(models_dir).display()
    );
    let ours = ModelSet::load(models_dir)?.version().to_owned();
    let theirs = remote.get("reading the model set", "/v1/models").await?;
    let theirs = theirs["version"].as_str().unwrap_or_default().to_owned();
    if theirs != ours {
        return Err(not_ready(format!(
            "the service serves model set {theirs}, not the one trained on this history ({ours}): {how}"
        )));
    }
    let offers = remote.get("reading the catalog", "/v1/offers").await?;
    let text = offers.to_string();
    if let Some((missing, _)) = NEW_APPEAL
        .iter()
        .find(|(id, _)| !text.contains(&format!("\"{id}\"")))
    {
        return Err(not_ready(format!(
            "the service's catalog has no offer {missing}: {how}"
        )));
    }
    let (now, simulated) = remote.clock().await?;
    if !simulated {
        return Err(not_ready(format!(
            "the service runs on the system clock: {how}"
        )));
    }
    if now > end {
        return Err(not_ready(format!(
            "the service's clock stands at {}, past the history's end ({}): it ran a loop already; restart it",
            rfc3339(now),
            rfc3339(end)
        )));
    }
    remote.set_clock(end).await?;
    let mut lines = Vec::new();
    // Answers to the history's last contacts come after its end: they are fed when they
    // happen.
    let mut later = Vec::new();
    for (at, line) in history {
        let line = match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(mut e)) => {
                e.remove("decision_id");
                serde_json::Value::Object(e).to_string()
            }
            _ => line.clone(),
        };
        if *at <= end {
            lines.push(line);
        } else {
            later.push((*at, line));
        }
    }
    remote.post_events(&lines).await?;
    Ok(EngineArm {
        name,
        engine: Engine::Remote {
            remote,
            model_version: ours,
        },
        pending: Vec::new(),
        replay: later,
        contacts: truth.history.clone(),
        rng: StdRng::seed_from_u64(seed ^ 0xa5),
        days: Vec::new(),
        next_event: 0,
        writer: None,
        fed: Some(Vec::new()),
    })
}

fn reference_arm(truth: &Truth) -> ReferenceArm {
    ReferenceArm {
        contacts: truth.history.clone(),
        days: Vec::new(),
    }
}

/// A customer's answer to a contact made at the opportunity of time `t`: its probability,
/// and whether it is positive (by the opportunity's [`Truth::luck`]).
fn answer(
    truth: &Truth,
    (c, o, ch, at): (usize, usize, Channel, i64),
    t: i64,
    recent: usize,
) -> (f64, bool) {
    let p = truth.probability(c, o, ch, at, recent);
    (p, truth.luck(c, t) < p)
}

/// When the answer to a contact sent at `at` comes, with its outcome (none for silence), for
/// the arms whose answers are fed back.
fn reply(rng: &mut StdRng, at: i64, positive: bool) -> Option<(i64, &'static str)> {
    let delay = Exp::new(1.0 / (6.0 * 3600.0))
        .map(|e| e.sample(rng))
        .unwrap_or(3600.0) as i64
        + 60;
    let outcome = if positive {
        Some(match rng.random_range(0..10) {
            0..6 => "clicked",
            6..9 => "accepted",
            _ => "converted",
        })
    } else if rng.random_bool(0.15) {
        Some("declined")
    } else {
        None
    };
    outcome.map(|o| (at + delay, o))
}

fn tally(day: &mut ArmDay, truth: &Truth, o: usize, ch: Channel, (p, positive): (f64, bool)) {
    let f = &truth.facts[o];
    day.contacts += 1;
    day.expected_positives += p;
    day.value -= f.cost[ch.index()];
    if positive {
        day.positives += 1;
        day.value += f.value;
    }
    if f.new {
        day.new_offer_contacts += 1;
    }
}

impl EngineArm {
    /// Applies the events due before `now`, then brings the learner up to date.
    async fn feed(&mut self, now: i64) -> Result<(), ClosedLoopError> {
        self.pending
            .sort_unstable_by_key(|(t, _)| std::cmp::Reverse(*t));
        let mut due = Vec::new();
        let mut lines = Vec::new();
        while self.pending.last().is_some_and(|(t, _)| *t < now) {
            let (t, line) = self.pending.pop().expect("checked");
            if let Ok(e) = crate::profile::event::parse_line(line.as_bytes()) {
                due.push(e);
            }
            lines.push(line.clone());
            if let Some(fed) = &mut self.fed {
                fed.push((t, line));
            }
        }
        self.replay
            .sort_unstable_by_key(|(t, _)| std::cmp::Reverse(*t));
        while self.replay.last().is_some_and(|(t, _)| *t < now) {
            lines.push(self.replay.pop().expect("checked").1);
        }
        due.sort_by_key(|e| e.at);
        match &self.engine {
            Engine::Local {
                decider,
                learner,
                clock,
            } => {
                // Never back: the loop's hours only go forward.
                let _ = clock.set(now);
                if !due.is_empty() {
                    decider.profiles().apply(&due, now).await?;
                }
                if let Some(l) = learner {
                    l.refresh(decider.profiles(), now).await?;
                }
            }
            Engine::Remote { remote, .. } => {
                // The clock first (the service refuses events dated past it), then the
                // events; setting the clock again has the service learn from them.
                remote.set_clock(now).await?;
                if !lines.is_empty() {
                    remote.post_events(&lines).await?;
                    remote.set_clock(now).await?;
                }
            }
        }
        Ok(())
    }

    fn event(&mut self, at: i64, mut e: serde_json::Value) {
        self.next_event += 1;
        e["event_id"] = format!("cl-{}", self.next_event).into();
        e["at"] = rfc3339(at).into();
        self.pending.push((at, e.to_string()));
    }

    /// Decides at `t` for customer `c`, sends the first action and schedules the answer;
    /// returns the decision's candidates (offer index, channel).
    async fn decide(
        &mut self,
        id: &CustomerId,
        c: usize,
        t: i64,
        day: usize,
        truth: &Truth,
        policy: &ContactPolicy,
    ) -> Result<Vec<(usize, Channel)>, ClosedLoopError> {
        self.days[day].opportunities += 1;
        let request = DecisionRequest {
            customer_id: id.clone(),
            touchpoint: None,
            channels: None,
            placement: None,
            limit: 1,
            at: chrono::DateTime::from_timestamp(t, 0),
            context: BTreeMap::new(),
            explain: false,
        };
        let (decision_id, action, mut candidates) = match &self.engine {
            Engine::Local { decider, .. } => {
                let d = decider.decide(&request).await;
                let candidates: Vec<(usize, Channel)> = d
                    .log
                    .candidates
                    .iter()
                    .filter_map(|k| Some((*truth.index.get(k.offer_id.as_str())?, k.channel)))
                    .collect();
                let action = d.actions.first().map(|a| super::remote::RemoteAction {
                    offer_id: a.offer_id.as_str().to_owned(),
                    channel: a.channel,
                    send_at: a.send_at_unix,
                });
                (d.decision_id.as_str().to_owned(), action, candidates)
            }
            Engine::Remote { remote, .. } => {
                let d = remote.decide(id, t).await?;
                (d.decision_id, d.action, Vec::new())
            }
        };
        candidates.sort_unstable_by_key(|&(o, ch)| (o, ch.index()));
        candidates.dedup();
        let Some(a) = action else {
            return Ok(candidates);
        };
        let Some(&o) = truth.index.get(a.offer_id.as_str()) else {
            return Ok(candidates);
        };
        let (ch, at) = (a.channel, a.send_at);
        let sim = &truth.customers[c];
        let v = &mut self.days[day].violations;
        if ch.is_outbound()
            && !sim
                .consent
                .get(&ch)
                .is_some_and(|u| u.is_none_or(|u| at < u))
        {
            v.consent += 1;
        }
        if ch.is_outbound() && policy.is_quiet(local_hour(sim, at)) {
            v.quiet_hours += 1;
        }
        let recent = self.contacts[c].recent(at);
        let (p, positive) = answer(truth, (c, o, ch, at), t, recent);
        let reply = reply(&mut self.rng, at, positive);
        self.contacts[c].sent.push((at, ch, o));
        tally(&mut self.days[day], truth, o, ch, (p, positive));
        let offer = truth.offers[o].id.clone();
        self.event(
            at,
            serde_json::json!({"customer_id": id.as_str(), "type": "contact", "channel": ch,
                "offer_id": offer, "decision_id": decision_id}),
        );
        if let Some((when, outcome)) = reply {
            // Most answers carry the decision; some only the offer.
            let mut e = serde_json::json!({"customer_id": id.as_str(), "type": "response",
                "channel": ch, "offer_id": offer, "outcome": outcome});
            if self.rng.random_bool(0.7) {
                e["decision_id"] = decision_id.as_str().into();
            }
            self.event(when, e);
        }
        Ok(candidates)
    }
}

impl ReferenceArm {
    /// Sends offer `o` on `ch` at `at` for the opportunity of time `t`.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        truth: &Truth,
        c: usize,
        o: usize,
        ch: Channel,
        at: i64,
        t: i64,
        day: usize,
    ) {
        let recent = self.contacts[c].recent(at);
        let (p, positive) = answer(truth, (c, o, ch, at), t, recent);
        self.contacts[c].sent.push((at, ch, o));
        tally(&mut self.days[day], truth, o, ch, (p, positive));
    }

    /// The outbound marketing contacts so far, as the contact limits count them.
    fn ledger(&self, truth: &Truth, c: usize) -> crate::decision::contact_policy::ContactLedger {
        let mut ledger = crate::decision::contact_policy::ContactLedger::default();
        for &(t, ch, o) in &self.contacts[c].sent {
            if ch.is_outbound() && !truth.facts[o].service {
                ledger.plan(ch, t);
            }
        }
        ledger
    }
}

fn local_hour(c: &SimCustomer, at: i64) -> u32 {
    use chrono::{TimeZone, Timelike};
    c.customer
        .tz
        .timestamp_opt(at, 0)
        .single()
        .map_or(0, |t| t.hour())
}

/// The hours an outbound contact may be sent at from `t` within the horizon: `t` itself
/// (when allowed), then every full hour, outside quiet hours.
fn send_times(truth: &Truth, c: usize, t: i64, policy: &ContactPolicy) -> Vec<i64> {
    let first = (t + 3599) / 3600 * 3600;
    std::iter::once(t)
        .chain((0..policy.horizon_hours as i64).map(|k| first + k * 3600))
        .filter(|&at| !policy.is_quiet(local_hour(&truth.customers[c], at)))
        .collect()
}

/// The truth's best action among the candidates: true probability x margin - cost, over
/// every allowed send time.
fn oracle_choice(
    truth: &Truth,
    arm: &ReferenceArm,
    c: usize,
    t: i64,
    candidates: &[(usize, Channel)],
    policy: &ContactPolicy,
) -> Option<(usize, Channel, i64)> {
    if candidates.is_empty() {
        return None;
    }
    let times = send_times(truth, c, t, policy);
    let ledger = arm.ledger(truth, c);
    let recent = arm.contacts[c].recent(t);
    let mut best: Option<(f64, usize, Channel, i64)> = None;
    for &(o, ch) in candidates {
        let f = &truth.facts[o];
        for &at in &times {
            if ch.is_outbound() && !f.service && ledger.allows(policy, ch, at).is_err() {
                continue;
            }
            let v = truth.probability(c, o, ch, at, recent) * f.value - f.cost[ch.index()];
            if best.is_none_or(|b| v > b.0) {
                best = Some((v, o, ch, at));
            }
        }
    }
    best.map(|(_, o, ch, at)| (o, ch, at))
}

/// Mass marketing's choice: one ranking of (offer, channel) and one local hour for
/// everyone, learned from the history.
struct Mass {
    ranking: Vec<(usize, Channel)>,
    hour: usize,
}

fn mass_marketing(history: &[simulate::LoggedContact], truth: &Truth) -> Mass {
    let mut pairs: HashMap<(usize, Channel), (u64, u64)> = HashMap::new();
    let mut hours = [(0u64, 0u64); 24];
    for h in history {
        let Some(&o) = truth.index.get(&h.offer) else {
            continue;
        };
        let e = pairs.entry((o, h.channel)).or_default();
        e.0 += 1;
        e.1 += u64::from(h.positive);
        let e = &mut hours[h.local_hour];
        e.0 += 1;
        e.1 += u64::from(h.positive);
    }
    let value = |&(o, ch): &(usize, Channel), (n, k): (u64, u64)| {
        let f = &truth.facts[o];
        k as f64 / n.max(1) as f64 * f.value - f.cost[ch.index()]
    };
    let mut ranking: Vec<((usize, Channel), f64)> = pairs
        .iter()
        .filter(|(_, (n, _))| *n >= 30)
        .map(|(pair, &counts)| (*pair, value(pair, counts)))
        .collect();
    ranking.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.0.cmp(&b.0.0)));
    let hour = (0..24)
        .filter(|&h| hours[h].0 >= 30)
        .max_by(|&a, &b| {
            let r = |h: usize| hours[h].1 as f64 / hours[h].0 as f64;
            r(a).total_cmp(&r(b))
        })
        .unwrap_or(12);
    Mass {
        ranking: ranking.into_iter().map(|(p, _)| p).collect(),
        hour,
    }
}

fn mass_choice(
    truth: &Truth,
    mass: &Mass,
    arm: &ReferenceArm,
    c: usize,
    t: i64,
    candidates: &[(usize, Channel)],
    policy: &ContactPolicy,
) -> Option<(usize, Channel, i64)> {
    let first = (t + 3599) / 3600 * 3600;
    let at = (0..24)
        .map(|k| first + k * 3600)
        .find(|&at| local_hour(&truth.customers[c], at) as usize == mass.hour)?;
    let ledger = arm.ledger(truth, c);
    mass.ranking
        .iter()
        .find(|&&(o, ch)| {
            candidates.contains(&(o, ch))
                && (truth.facts[o].service || ledger.allows(policy, ch, at).is_ok())
        })
        .map(|&(o, ch)| (o, ch, at))
}

/// Contacts from index `first_new` on that broke a contact limit, by day of the run: a
/// window of the limit's length ending at the contact holds more than the limit.
fn limit_violations(
    contacts: &Contacts,
    first_new: usize,
    truth: &Truth,
    policy: &ContactPolicy,
    start: i64,
) -> Vec<(usize, u64)> {
    let marketing =
        |&&(_, ch, o): &&(i64, Channel, usize)| ch.is_outbound() && !truth.facts[o].service;
    let mut all: Vec<(i64, Channel, bool)> = contacts
        .sent
        .iter()
        .enumerate()
        .filter(|(_, s)| marketing(s))
        .map(|(i, &(t, ch, _))| (t, ch, i >= first_new))
        .collect();
    all.sort_unstable_by_key(|&(t, _, _)| t);
    let mut out = Vec::new();
    for (j, &(t, ch, new)) in all.iter().enumerate() {
        if !new {
            continue;
        }
        let within = |days: u32, same_channel: bool| {
            all[..=j]
                .iter()
                .filter(|&&(s, c, _)| s > t - days as i64 * 86_400 && (!same_channel || c == ch))
                .count()
        };
        let broke = policy
            .limit_of(ch)
            .is_some_and(|l| within(l.days, true) > l.max as usize)
            || within(policy.outbound_days, false) > policy.outbound_max as usize;
        if broke {
            out.push((((t - start).max(0) / 86_400) as usize, 1));
        }
    }
    out
}

/// Halfway through `preference-shift`: cards fall out of favour, insurance gains, the
/// renters' offer fades, and every taste moves a little.
fn shift_preferences(truth: &mut Truth, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5_41f7);
    let noise = Normal::new(0.0, 0.3).expect("a valid normal");
    for c in &mut truth.customers {
        for (category, taste) in c.customer.taste.iter_mut() {
            *taste += noise.sample(&mut rng)
                + match category.as_str() {
                    "card" => -1.0,
                    "insurance" => 0.8,
                    "renting" => -0.8,
                    _ => 0.0,
                };
        }
    }
}

fn plot(report: &ClosedLoopReport) -> Result<String, super::plots::PlotError> {
    let curves: Vec<(String, Vec<(f64, f64)>)> = report
        .arms
        .iter()
        .map(|(name, days)| {
            let line = days
                .iter()
                .enumerate()
                .map(|(d, r)| ((d + 1) as f64, r.response_rate))
                .collect();
            (name.replace('_', " "), line)
        })
        .collect();
    let refs: Vec<(&str, &[(f64, f64)])> = curves
        .iter()
        .map(|(n, l)| (n.as_str(), l.as_slice()))
        .collect();
    super::plots::lines_svg(
        &format!("Closed loop ({:?}), response rate by day", report.scenario),
        "day",
        "positive answers per contact",
        &refs,
    )
}
