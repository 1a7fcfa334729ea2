//! The learning loop between batch trainings: every joined answer corrects the offer's
//! propensity, for the kind of customer who gave it.
//!
//! - [`join`]: outcomes join the decisions that caused them, in the customer's profile (an
//!   exposure opened by the contact or impression, closed by the answer or its deadline).
//! - [`posterior`]: per offer, an online Bayesian logistic regression (diagonal Laplace)
//!   learning a correction to the trained model's logit on the learning features: the
//!   customer's attributes as the trained model encodes them, and the channel.
//! - [`Learner`]: the online state every decision reads (a local copy, no store round trip)
//!   and the task that keeps it current: it reads the store's outcome log at least every
//!   `learning.refresh_ms`, and closes overdue exposures of customers who went quiet.
//!
//! By default an outcome is learned as soon as it is joined, in the order of the log (every
//! replica reads the same log in the same order, so they agree). An answer arrives early
//! and the silence that makes a negative only at the deadline, so this counts the last
//! window's positives and not its negatives (the bias of delayed feedback: Chapelle,
//! *Modeling delayed feedback in display advertising*, KDD 2014): on the closed loop an
//! offer whose traffic grew was predicted at 64% where it earned 48%. With
//! `learning.wait_for_window` an outcome is learned only when its response window has
//! passed (`at` + the window), in the order of the window's end and then of the log, once
//! the overdue exposures up to then are closed: without that bias, but every answer is
//! learned a window later (on the closed loop, a lower response rate and less value per
//! contact; README). Replicas learn the same outcomes in the same order as long as every
//! outcome reaches the log before the windows of those learned after it end (an event
//! dated well in the past, joined late, is learned out of that order). The waiting
//! outcomes are held in memory: a window's joined outcomes.
//!
//! The correction's uncertainty feeds exploration ([`crate::decision::policy::Thompson`]):
//! an offer the learner knows little about (a new one, or one whose data is thin) is
//! explored within a bounded share, and earns what its answers justify.

pub mod join;
pub mod posterior;

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::live::{LiveCatalog, LiveModels};
use crate::model::features::{FeatureInput, FeatureSchema, FeatureSpec, OfferFacts};
use crate::model::response::{ModelScope, logit};
use crate::profile::ids::OfferId;
use crate::profile::{Channel, Profile};
use join::{Features, Outcome};
use posterior::Posterior;

/// `[learning]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearningSettings {
    /// Learn from answers at all; off, decisions use the trained models alone.
    pub enabled: bool,
    /// Offers not learned (their propensity stays the trained model's).
    pub disabled_offers: Vec<String>,
    /// How long after a contact or impression an answer still counts; without one by
    /// then, the action counts as not answered (a negative).
    pub response_window_hours: u32,
    /// Learn an outcome only once its response window has passed (at + the window),
    /// instead of as soon as it is joined: an answer comes early and the silence that makes
    /// a negative only at the deadline, so learning as outcomes join counts the last
    /// window's positives and not its negatives (see the module's documentation).
    pub wait_for_window: bool,
    /// Prior standard deviation of the correction to the logit (shared out over the
    /// learning features) for an offer with a trained model of its own: how far its answers
    /// may move it before much evidence.
    pub prior_sd: f64,
    /// The same for an offer scored by its category's or the pooled model (a new offer).
    pub new_offer_prior_sd: f64,
    /// An offer without a trained model of its own and with fewer answers than this counts
    /// as uncertain: its share of exploration is bounded by
    /// `decision.exploration.max_uncertain_share`, weighed by how far it is from this
    /// count (the bound loosens as the answers come).
    pub thin_answers: u64,
    /// How often the local copy of the online state is brought up to date.
    pub refresh_ms: u64,
}

impl Default for LearningSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            disabled_offers: Vec::new(),
            response_window_hours: 72,
            wait_for_window: false,
            prior_sd: 0.5,
            new_offer_prior_sd: 1.0,
            thin_answers: 200,
            refresh_ms: 500,
        }
    }
}

impl LearningSettings {
    pub fn check(&self) -> Result<(), String> {
        if self.response_window_hours == 0 || self.response_window_hours > 24 * 90 {
            return Err("learning.response_window_hours must be in 1..=2160".into());
        }
        for (name, v) in [
            ("prior_sd", self.prior_sd),
            ("new_offer_prior_sd", self.new_offer_prior_sd),
        ] {
            if !(v > 0.0 && v <= 10.0) {
                return Err(format!("learning.{name} must be in (0, 10]"));
            }
        }
        if !(10..=60_000).contains(&self.refresh_ms) {
            return Err("learning.refresh_ms must be in 10..=60000".into());
        }
        Ok(())
    }
}

/// Where the learning features come from: the trained propensity schema's attribute
/// columns, then one column per channel; index 0 is the intercept.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Columns of the propensity feature vector that describe the customer's attributes.
    columns: Vec<usize>,
    pub width: usize,
    /// How many learning features an action has at most (the intercept, one per
    /// attribute, the channel): the prior spreads the correction's variance over them.
    pub active: usize,
    /// Names the layout (the model set it comes from and its columns): outcomes of another
    /// layout are not learned from.
    pub id: u64,
}

impl Layout {
    pub fn new(schema: &FeatureSchema, model_version: &str) -> Self {
        let mut columns = Vec::new();
        let mut start = 0;
        let mut attributes = 0;
        for spec in &schema.specs {
            let w = spec.width();
            if matches!(
                spec,
                FeatureSpec::AttributeCategory { .. } | FeatureSpec::AttributeNumber { .. }
            ) {
                columns.extend(start..start + w);
                attributes += 1;
            }
            start += w;
        }
        let width = 1 + columns.len() + Channel::COUNT;
        let mut key = model_version.as_bytes().to_vec();
        for c in &columns {
            key.extend_from_slice(&(*c as u32).to_le_bytes());
        }
        Self {
            id: xxhash_rust::xxh3::xxh3_64(&key),
            columns,
            width,
            active: attributes + 2,
        }
    }

    /// The customer's part of the learning features (intercept and attributes), from a
    /// propensity feature vector.
    pub fn customer_part(&self, x: &[f64], out: &mut Vec<(usize, f64)>) {
        out.clear();
        out.push((0, 1.0));
        for (k, &c) in self.columns.iter().enumerate() {
            if let Some(&v) = x.get(c)
                && v != 0.0
            {
                out.push((1 + k, v));
            }
        }
    }

    pub fn channel_column(&self, channel: Channel) -> usize {
        1 + self.columns.len() + channel.index()
    }
}

/// What the learner knows: a posterior per offer that has had answers.
#[derive(Debug, Clone)]
pub struct OnlineState {
    pub layout: Layout,
    pub offers: foldhash::HashMap<OfferId, Posterior>,
    settings: LearningSettings,
    /// Answers learned from, all offers.
    pub answers: u64,
    /// Outcomes read from the log but not learned (another layout, learning off for the
    /// offer).
    pub skipped: u64,
    /// Outcomes read from the log whose response window has not passed yet.
    pub pending: u64,
}

/// An offer's correction for one customer, before the channel.
#[derive(Debug, Clone, Copy)]
pub struct OfferCorrection<'a> {
    state: &'a OnlineState,
    posterior: Option<&'a Posterior>,
    /// The prior variance of a channel's weight (no posterior yet).
    channel_var: f64,
    mean: f64,
    var: f64,
    unproven: f64,
}

impl OfferCorrection<'_> {
    /// The correction on `channel`.
    pub fn on(&self, channel: Channel) -> Correction {
        let ch = [(self.state.layout.channel_column(channel), 1.0)];
        let (m, v) = self
            .posterior
            .map_or((0.0, self.channel_var), |p| p.predict(&ch));
        Correction {
            mean: self.mean + m,
            sd: (self.var + v).sqrt(),
            unproven: self.unproven,
        }
    }
}

/// An offer's correction for one action.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Correction {
    /// Added to the trained model's logit.
    pub mean: f64,
    /// Standard deviation of the correction (logit units).
    pub sd: f64,
    /// How far the offer is from known, in [0, 1]: 1 for a new offer without answers,
    /// falling linearly to 0 at `learning.thin_answers` answers, 0 for an offer with a
    /// trained model of its own. Its share of a decision, weighed by this, is bounded
    /// (`decision.exploration.max_uncertain_share`).
    pub unproven: f64,
}

impl OnlineState {
    pub fn new(layout: Layout, settings: LearningSettings) -> Self {
        Self {
            layout,
            offers: Default::default(),
            settings,
            answers: 0,
            skipped: 0,
            pending: 0,
        }
    }

    pub fn learns(&self, offer: &str) -> bool {
        self.settings.enabled && !self.settings.disabled_offers.iter().any(|o| o == offer)
    }

    /// The prior standard deviation of each weight: the configured spread of the whole
    /// correction, shared out over the features an action has.
    fn weight_sd(&self, scope: ModelScope) -> f64 {
        let sd = match scope {
            ModelScope::Offer => self.settings.prior_sd,
            ModelScope::Category | ModelScope::Pooled => self.settings.new_offer_prior_sd,
        };
        sd / (self.layout.active as f64).sqrt()
    }

    fn prior(&self, scope: ModelScope) -> Posterior {
        Posterior::prior(&vec![self.weight_sd(scope); self.layout.width])
    }

    /// The correction for `offer` on `channel` for a customer whose part of the features is
    /// `customer` ([`Layout::customer_part`]); `scope` is which trained model scores it.
    pub fn correction(
        &self,
        offer: &str,
        scope: ModelScope,
        customer: &[(usize, f64)],
        channel: Channel,
    ) -> Option<Correction> {
        Some(self.for_offer(offer, scope, customer)?.on(channel))
    }

    /// The customer's part of `offer`'s correction, once for all its channels.
    pub fn for_offer<'a>(
        &'a self,
        offer: &str,
        scope: ModelScope,
        customer: &[(usize, f64)],
    ) -> Option<OfferCorrection<'a>> {
        if !self.learns(offer) {
            return None;
        }
        let posterior = self.offers.get(offer);
        let (mean, var, answers) = match posterior {
            Some(p) => {
                let (m, v) = p.predict(customer);
                (m, v, p.answers)
            }
            None => {
                let sd = self.weight_sd(scope);
                (0.0, sd * sd * customer.len() as f64, 0)
            }
        };
        Some(OfferCorrection {
            state: self,
            posterior,
            channel_var: self.weight_sd(scope).powi(2),
            mean,
            var,
            // An offer with a trained model of its own is known from its history.
            unproven: if scope == ModelScope::Offer || answers >= self.settings.thin_answers {
                0.0
            } else {
                1.0 - answers as f64 / self.settings.thin_answers as f64
            },
        })
    }

    /// Learns one joined answer; `scope` is which trained model scores the offer.
    pub fn learn(&mut self, outcome: &Outcome, scope: ModelScope) {
        if outcome.features.layout != self.layout.id
            || !self.learns(outcome.offer_id.as_str())
            || outcome
                .features
                .z
                .iter()
                .any(|&(i, _)| usize::from(i) >= self.layout.width)
        {
            self.skipped += 1;
            return;
        }
        let prior = self.prior(scope);
        let posterior = self.offers.entry(outcome.offer_id.clone()).or_insert(prior);
        let z: Vec<(usize, f64)> = outcome
            .features
            .z
            .iter()
            .map(|&(i, v)| (usize::from(i), f64::from(v)))
            .collect();
        posterior.update(&z, f64::from(outcome.features.offset), outcome.positive);
        self.answers += 1;
    }
}

/// The online state as `GET /v1/models` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OnlineView {
    pub enabled: bool,
    /// Answers learned from since the model set went into service, all offers.
    pub answers: u64,
    /// Outcomes read but not learned (learning off for the offer, another model set).
    pub skipped: u64,
    /// Outcomes joined whose response window has not passed yet: they are learned when it
    /// has (an answer comes early, the silence that makes a negative only at the end).
    pub pending: u64,
    pub offers: Vec<OnlineOffer>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OnlineOffer {
    pub offer_id: String,
    pub answers: u64,
    pub positives: u64,
    /// Posterior mean of the correction's intercept: how far, in logit units, the answers
    /// moved the offer from the trained model for everyone.
    pub mean_correction: f64,
    /// Outcomes joined whose response window has not passed (not learned yet), and how
    /// many of them are positive.
    pub pending: u64,
    pub pending_positives: u64,
}

/// The online state as decisions read it, and what the store asks of the learner.
pub struct Learner {
    models: Arc<LiveModels>,
    catalog: Arc<LiveCatalog>,
    settings: LearningSettings,
    state: ArcSwap<OnlineState>,
    /// Where in the store's outcome log the state has read to.
    cursor: std::sync::Mutex<String>,
    /// Waiting for the window: the outcomes read whose window has not passed, the first
    /// to pass on top, and how many have been read (the place of the next in the log).
    pending: std::sync::Mutex<(std::collections::BinaryHeap<Pending>, u64)>,
    /// Held by [`Learner::learn`] and [`Learner::refresh`]: one of each at a time.
    learning: std::sync::Mutex<()>,
    refreshing: tokio::sync::Mutex<()>,
    /// The challenger's share of customers (millionths), when there is one.
    challenger: Option<u64>,
    /// Joined outcomes per arm (champion, challenger): negatives, positives, and the margin
    /// of the positives.
    arms: std::sync::Mutex<[ArmOutcomes; 2]>,
}

/// An outcome read, waiting for its response window to pass: ordered so that a max-heap
/// has on top the one whose window ends first (then the first in the log).
#[derive(Debug)]
struct Pending {
    end: i64,
    place: u64,
    outcome: Outcome,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.end, self.place) == (other.end, other.place)
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.end, other.place).cmp(&(self.end, self.place))
    }
}

/// Joined outcomes of one model arm, since the service started.
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct ArmOutcomes {
    pub negatives: u64,
    pub positives: u64,
    /// The catalog margin of the positive answers.
    pub value: f64,
}

impl Learner {
    pub fn new(
        models: Arc<LiveModels>,
        catalog: Arc<LiveCatalog>,
        settings: LearningSettings,
    ) -> Self {
        let layout = Self::layout_of(&models);
        Self {
            state: ArcSwap::from_pointee(OnlineState::new(layout, settings.clone())),
            models,
            catalog,
            settings,
            cursor: std::sync::Mutex::new(String::new()),
            pending: Default::default(),
            learning: Default::default(),
            refreshing: Default::default(),
            challenger: None,
            arms: Default::default(),
        }
    }

    /// Counts outcomes per arm for a challenger deciding for `share` of the customers.
    pub fn with_challenger(mut self, share: f64) -> Self {
        self.challenger = Some(crate::decision::service::share_millionths(share));
        self
    }

    /// Joined outcomes per arm since start: champion, challenger.
    pub fn arm_outcomes(&self) -> [ArmOutcomes; 2] {
        *self.arms.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn layout_of(models: &LiveModels) -> Layout {
        let m = models.current();
        match &m.value.propensity {
            Some((schema, _)) => Layout::new(schema, m.value.version()),
            None => Layout::new(&FeatureSchema::new(Vec::new()), m.value.version()),
        }
    }

    pub fn settings(&self) -> &LearningSettings {
        &self.settings
    }

    /// The state decisions use now; `None` with learning off.
    pub fn snapshot(&self) -> Option<Arc<OnlineState>> {
        self.settings.enabled.then(|| self.state.load_full())
    }

    /// Takes the outcomes read from the log after the cursor, moves the cursor, and learns
    /// every outcome read whose response window has passed by `now` (Unix seconds), in the
    /// order of the window's end, then of the log. A model set of another layout (a
    /// retrained one) starts the state afresh: the trained model has learned the history.
    pub fn learn(&self, outcomes: &[Outcome], cursor: String, now: i64) {
        // One at a time: each takes its due outcomes off the heap and stores a state made
        // from the last one.
        let _one = self.learning.lock().unwrap_or_else(|p| p.into_inner());
        // Waiting for the window, the outcomes read go on the heap and those whose window
        // has passed come off it; without, every outcome read is due, in the order of the log.
        let (waited, pending) = if self.settings.wait_for_window {
            let window = i64::from(self.settings.response_window_hours) * 3600;
            let mut guard = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let (pending, read) = &mut *guard;
            let first = *read;
            *read += outcomes.len() as u64;
            pending.extend(outcomes.iter().enumerate().map(|(k, o)| Pending {
                end: o.at.saturating_add(window),
                place: first + k as u64,
                outcome: o.clone(),
            }));
            let mut due = Vec::new();
            while pending.peek().is_some_and(|p| p.end <= now) {
                due.extend(pending.pop().map(|p| p.outcome));
            }
            (Some(due), pending.len() as u64)
        } else {
            (None, 0)
        };
        let due = waited.as_deref().unwrap_or(outcomes);
        if due.is_empty() && outcomes.is_empty() && cursor == self.cursor() {
            return;
        }
        let layout = Self::layout_of(&self.models);
        let current = self.state.load_full();
        let mut state = if current.layout == layout {
            (*current).clone()
        } else {
            OnlineState::new(layout, self.settings.clone())
        };
        let models = self.models.current();
        let catalog = self.catalog.current();
        {
            use crate::decision::answer::ModelArm;
            use crate::telemetry::metrics as m;
            let mut arms = self.arms.lock().unwrap_or_else(|p| p.into_inner());
            for o in outcomes {
                let a = &mut arms[usize::from(o.arm == ModelArm::Challenger)];
                let result = if o.positive {
                    a.positives += 1;
                    let value = catalog
                        .value
                        .offer(o.offer_id.as_str())
                        .map_or(0.0, |c| c.value);
                    a.value += value;
                    metrics::counter!(m::ARM_VALUE, "arm" => o.arm.as_str())
                        .increment(value.round() as u64);
                    "positive"
                } else {
                    a.negatives += 1;
                    "negative"
                };
                metrics::counter!(m::ARM_OUTCOMES, "arm" => o.arm.as_str(), "result" => result)
                    .increment(1);
            }
        }
        for o in due {
            let scope = scope_of(&models.value, &catalog.value, o.offer_id.as_str());
            state.learn(o, scope);
        }
        state.pending = pending;
        self.publish(&state, &catalog.value);
        self.state.store(Arc::new(state));
        *self.cursor.lock().unwrap_or_else(|p| p.into_inner()) = cursor;
    }

    /// Sets the learning gauges from `state`: per offer of `catalog` (labels from a fixed
    /// set), and the outcomes by result.
    fn publish(&self, state: &OnlineState, catalog: &crate::decision::catalog::Catalog) {
        use crate::telemetry::metrics as m;
        for offer in &catalog.offers {
            let (answers, mean) = state.offers.get(offer.id.as_str()).map_or((0, 0.0), |p| {
                (p.answers, p.mean.first().copied().unwrap_or(0.0))
            });
            let label = offer.id.as_str().to_owned();
            metrics::gauge!(m::LEARNING_ANSWERS, "offer" => label.clone()).set(answers as f64);
            metrics::gauge!(m::LEARNING_CORRECTION, "offer" => label).set(mean);
        }
        metrics::gauge!(m::LEARNING_OUTCOMES, "result" => "learned").set(state.answers as f64);
        metrics::gauge!(m::LEARNING_OUTCOMES, "result" => "skipped").set(state.skipped as f64);
        metrics::gauge!(m::LEARNING_OUTCOMES, "result" => "pending").set(state.pending as f64);
    }

    /// Brings the state up to date with the store's outcome log, after closing (as
    /// negatives) the exposures overdue at `now`; how many outcomes it read (it learns those whose
    /// window has passed by `now`, [`Learner::learn`]).
    pub async fn refresh(
        &self,
        profiles: &crate::profile::Profiles,
        now: i64,
    ) -> Result<usize, crate::profile::StoreError> {
        const BATCH: usize = 10_000;
        // One at a time (the task's tick and `PUT /v1/admin/clock`): two reading from the
        // same cursor would take the same outcomes twice.
        let _one = self.refreshing.lock().await;
        while profiles.close_overdue(now, 1_000).await? == 1_000 {}
        let mut learned = 0;
        loop {
            let (outcomes, cursor) = profiles.outcomes_after(&self.cursor(), BATCH).await?;
            if outcomes.is_empty() {
                self.learn(&[], cursor, now);
                return Ok(learned);
            }
            learned += outcomes.len();
            self.learn(&outcomes, cursor, now);
        }
    }

    /// Refreshes every `learning.refresh_ms`, by `clock`, until the task is dropped.
    pub async fn keep_current(
        self: Arc<Self>,
        profiles: crate::profile::Profiles,
        clock: crate::time::Clock,
    ) {
        let mut tick =
            tokio::time::interval(std::time::Duration::from_millis(self.settings.refresh_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The gauges exist from the start, at zero.
        self.publish(&self.state.load_full(), &self.catalog.current().value);
        loop {
            tick.tick().await;
            if let Err(e) = self.refresh(&profiles, clock.now()).await {
                tracing::warn!(error = %e, "online learning state not refreshed");
            }
        }
    }

    /// What the learner knows now, for `GET /v1/models`: per offer of the catalog that it
    /// learns, the answers and the posterior mean of the correction's intercept.
    /// Learning is on (`learning.enabled`).
    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    pub fn view(&self) -> OnlineView {
        let state = self.state.load_full();
        let catalog = self.catalog.current();
        let mut waiting: foldhash::HashMap<&str, (u64, u64)> = Default::default();
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for Pending { outcome: o, .. } in pending.0.iter() {
            let w = waiting.entry(o.offer_id.as_str()).or_default();
            w.0 += 1;
            w.1 += u64::from(o.positive);
        }
        OnlineView {
            enabled: self.settings.enabled,
            answers: state.answers,
            skipped: state.skipped,
            pending: state.pending,
            offers: catalog
                .value
                .offers
                .iter()
                .filter(|o| state.learns(o.id.as_str()))
                .map(|o| {
                    let p = state.offers.get(o.id.as_str());
                    let (pending, pending_positives) =
                        waiting.get(o.id.as_str()).copied().unwrap_or_default();
                    OnlineOffer {
                        pending,
                        pending_positives,
                        offer_id: o.id.as_str().to_owned(),
                        answers: p.map_or(0, |p| p.answers),
                        positives: p.map_or(0, |p| p.positives),
                        mean_correction: p.and_then(|p| p.mean.first().copied()).unwrap_or(0.0),
                    }
                })
                .collect(),
        }
    }

    pub fn cursor(&self) -> String {
        self.cursor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn scope_of(
    models: &crate::model::set::ModelSet,
    catalog: &crate::decision::catalog::Catalog,
    offer: &str,
) -> ModelScope {
    match (&models.propensity, catalog.offer(offer)) {
        (Some((_, m)), Some(o)) => m.for_offer(offer, &o.category).1,
        _ => ModelScope::Pooled,
    }
}

impl join::Exposures for Learner {
    fn features(
        &self,
        profile: &Profile,
        offer: &OfferId,
        channel: Channel,
        at: i64,
    ) -> Option<Features> {
        if !self.settings.enabled
            || self
                .settings
                .disabled_offers
                .iter()
                .any(|o| o == offer.as_str())
        {
            return None;
        }
        let models = self.models.current();
        let models = &models.value;
        let catalog = self.catalog.current();
        let o = catalog.value.offer(offer.as_str())?;
        let (schema, propensity) = models.propensity.as_ref()?;
        let layout = Layout::new(schema, models.version());
        let scores = models.score_customer(profile, at);
        let input = FeatureInput {
            profile,
            at,
            summary: scores.summary,
            offer: Some(OfferFacts {
                id: offer.as_str(),
                category: &o.category,
                history: profile.offer(offer.as_str()),
            }),
            channel: None,
        };
        let x = schema.build(&input);
        let (m, _) = propensity.for_offer(offer.as_str(), &o.category);
        let mut scratch = Vec::new();
        let lift = models
            .channel_lift(profile, &scores, channel, &mut scratch)
            .unwrap_or(1.0);
        let how = crate::time::LocalClock::new(profile.timezone(), at, at)
            .hour(at)
            .1;
        let time_lift = scores.time_lifts.as_ref().map_or(1.0, |l| l[how]);
        let p = models.action_propensity(m.probability(&x), lift, time_lift);
        let mut z = Vec::new();
        layout.customer_part(&x, &mut z);
        z.push((layout.channel_column(channel), 1.0));
        Some(Features {
            layout: layout.id,
            offset: logit(p) as f32,
            z: z.into_iter().map(|(i, v)| (i as u16, v as f32)).collect(),
        })
    }

    fn arm(&self, customer: &str) -> crate::decision::answer::ModelArm {
        match self.challenger {
            Some(share) => crate::decision::service::arm_for(customer, share),
            None => crate::decision::answer::ModelArm::Champion,
        }
    }

    fn window(&self) -> i64 {
        i64::from(self.settings.response_window_hours) * 3600
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::join::{Exposures, Outcome};
    use super::*;
    use crate::decision::catalog::Catalog;
    use crate::live::Live;
    use crate::model::set::ModelSet;

    fn learner(wait_for_window: bool) -> (Learner, Profile) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let (m, c) = (root.join("models"), root.join("config/catalog.toml"));
        let models =
            Arc::new(Live::load("model set", "test_reloads", move || ModelSet::load(&m)).unwrap());
        let catalog =
            Arc::new(Live::load("catalog", "test_reloads", move || Catalog::load(&c)).unwrap());
        let profile = Profile::default();
        let settings = LearningSettings {
            wait_for_window,
            ..Default::default()
        };
        (Learner::new(models, catalog, settings), profile)
    }

    fn outcome(learner: &Learner, profile: &Profile, positive: bool, at: i64) -> Outcome {
        let offer = OfferId::parse("gold-card").unwrap();
        Outcome {
            features: learner
                .features(profile, &offer, Channel::Email, at)
                .unwrap(),
            offer_id: offer,
            channel: Channel::Email,
            positive,
            at,
            arm: Default::default(),
        }
    }

    /// Waiting for the window, an outcome is learned when its window has passed, not when
    /// it is read; those whose windows end together are learned in the order of the log,
    /// whenever they were read, so that replicas refreshing at different moments learn the
    /// same posterior. Without, every outcome read is learned at once.
    #[test]
    fn outcomes_wait_for_their_window_and_are_learned_in_its_order() {
        let window = 72 * 3600;
        let (a, profile) = learner(true);
        let early = outcome(&a, &profile, true, 0);
        let late = outcome(&a, &profile, false, 3600);
        let also_early = outcome(&a, &profile, false, 0);
        // Read as answers come: the late exposure's answer first.
        a.learn(&[late.clone(), early.clone()], "1".into(), window - 1);
        let s = a.snapshot().unwrap();
        assert_eq!((s.answers, s.pending), (0, 2));
        let v = a.view();
        let gold = v.offers.iter().find(|o| o.offer_id == "gold-card").unwrap();
        assert_eq!(
            (gold.answers, gold.pending, gold.pending_positives),
            (0, 2, 1)
        );
        a.learn(std::slice::from_ref(&also_early), "2".into(), window);
        let s = a.snapshot().unwrap();
        assert_eq!((s.answers, s.pending), (2, 1));
        a.learn(&[], "2".into(), window + 3600);
        let stepwise = a.snapshot().unwrap();
        assert_eq!((stepwise.answers, stepwise.pending), (3, 0));

        // Another replica reading everything at once, after every window: the same.
        let (b, _) = learner(true);
        b.learn(
            &[late.clone(), early.clone(), also_early.clone()],
            "2".into(),
            window + 7200,
        );
        let at_once = b.snapshot().unwrap();
        let (p, q) = (&stepwise.offers["gold-card"], &at_once.offers["gold-card"]);
        assert_eq!((p.answers, p.positives), (3, 1));
        assert_eq!(p.mean, q.mean);
        assert_eq!(p.precision, q.precision);

        let (c, _) = learner(false);
        c.learn(&[late, early, also_early], "2".into(), 0);
        let s = c.snapshot().unwrap();
        assert_eq!((s.answers, s.pending), (3, 0));
    }
}
