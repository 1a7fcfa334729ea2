//! The profile store: one trait, two backends (embedded memory and Redis), and [`Profiles`],
//! the handle the rest of the service uses, which adds time limits and metrics in one place.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::event::Event;
use super::ids::CustomerId;
use super::planned::{PlannedAction, PlannedMark};
use super::state::Profile;
use crate::learning::join::{self, Exposures, Outcome};
use crate::telemetry::metrics as m;

/// What a batch of events did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub accepted: usize,
    pub duplicates: usize,
    /// Events of a customer erased within the retry window, dated before the erasure: not
    /// applied, so that a replay of old events does not bring the customer back.
    pub erased: usize,
    /// Answers joined to the decisions they answer (and exposures closed unanswered).
    pub outcomes: usize,
}

impl std::ops::AddAssign for ApplyOutcome {
    fn add_assign(&mut self, o: Self) {
        self.accepted += o.accepted;
        self.duplicates += o.duplicates;
        self.erased += o.erased;
        self.outcomes += o.outcomes;
    }
}

/// Applies one customer's events to their profile, in order: those dated before the
/// customer's erasure (`erased_at`, while its tombstone lasts) are left out. Refused whole,
/// the profile as it was, when the customer's de-duplication memory is full.
///
/// With a learner, the events also join the decisions they answer
/// ([`crate::learning::join`]): the answers closed, and the exposures overdue at `now`, are
/// added to `outcomes` (only to be kept once the profile is written).
#[allow(clippy::too_many_arguments)]
pub fn apply_events(
    profile: &mut Profile,
    customer: &CustomerId,
    events: &[&Event],
    erased_at: Option<i64>,
    limits: &super::ProfileLimits,
    now: i64,
    learner: Option<&dyn Exposures>,
    outcomes: &mut Vec<Outcome>,
) -> Result<ApplyOutcome, StoreError> {
    let too_many = |source| StoreError::TooManyEvents {
        customer: customer.to_string(),
        source,
    };
    // Room for every event first, so that none is applied when one could not be.
    profile
        .make_room(events.len(), now, limits)
        .map_err(too_many)?;
    let mut counts = ApplyOutcome::default();
    let before = outcomes.len();
    for event in events {
        if erased_at.is_some_and(|t| event.at.timestamp() < t) {
            counts.erased += 1;
            continue;
        }
        if let Some(learner) = learner
            && !profile.has_seen(event)
        {
            join::observe(profile, event, learner, outcomes);
        }
        match profile.apply(event, limits, now).map_err(too_many)? {
            super::Applied::New => counts.accepted += 1,
            super::Applied::Duplicate => counts.duplicates += 1,
        }
    }
    if let Some(learner) = learner {
        join::expire(profile, now, outcomes);
        // Which model arm decides for this customer: outcomes are counted per arm.
        let arm = learner.arm(customer.as_str());
        for o in &mut outcomes[before..] {
            o.arm = arm;
        }
    }
    counts.outcomes = outcomes.len() - before;
    Ok(counts)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or refused the operation; retrying later may work.
    #[error("profile store unavailable: {0}")]
    Unavailable(String),
    /// No answer within the operation's time limit. The operation may or may not have been
    /// applied; event de-duplication makes a retry safe.
    #[error("profile store did not answer within {0:?}")]
    Timeout(Duration),
    /// Concurrent writers kept changing one customer's profile.
    #[error("profile of {0} kept changing under concurrent updates; retry")]
    Contended(String),
    /// A stored profile cannot be read (written by an incompatible version, or damaged).
    #[error("stored profile of {customer} cannot be read: {reason}")]
    Corrupt { customer: String, reason: String },
    /// The customer took more events within the retry window than their de-duplication
    /// memory holds; none of the call's events for them was applied.
    #[error("customer {customer} took {source}")]
    TooManyEvents {
        customer: String,
        source: super::state::TooManyEvents,
    },
}

/// Tries `call` up to [`ATTEMPTS`] times, with a doubling pause from 100 ms, while the
/// store refuses it for a reason that may pass (not a damaged profile); `what` names it in
/// the warning.
pub async fn retried<T, F, Fut>(what: &str, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(t) => return Ok(t),
            Err(e @ StoreError::Corrupt { .. }) => return Err(e),
            Err(e) if attempt >= ATTEMPTS => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, attempt, "the store refused {what}; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
        }
    }
}

/// Attempts of [`retried`].
pub const ATTEMPTS: u32 = 5;

/// The `op` labels of the store's metrics: every operation [`Profiles`] times.
pub const OPERATIONS: [&str; 14] = [
    "apply",
    "load",
    "planned",
    "plan",
    "erase",
    "ping",
    "outcomes",
    "close_overdue",
    "claim_due",
    "release",
    "append_outbound",
    "withdraw",
    "make_dictionary",
    "rewrite",
];
/// The `kind` labels of `touchpoint_store_errors_total` ([`StoreError::kind`]).
pub const ERROR_KINDS: [&str; 5] = [
    "unavailable",
    "timeout",
    "contended",
    "corrupt",
    "too_many_events",
];

impl StoreError {
    fn kind(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Timeout(_) => "timeout",
            StoreError::Contended(_) => "contended",
            StoreError::Corrupt { .. } => "corrupt",
            StoreError::TooManyEvents { .. } => "too_many_events",
        }
    }
}

/// Groups a batch by customer, keeping each customer's events in arrival order and the
/// customers in order of first appearance.
pub fn group_by_customer(events: &[Event]) -> Vec<(&CustomerId, Vec<&Event>)> {
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut groups: Vec<(&CustomerId, Vec<&Event>)> = Vec::new();
    for e in events {
        let i = *index.entry(e.customer_id.as_str()).or_insert_with(|| {
            groups.push((&e.customer_id, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(e);
    }
    groups
}

/// A profile backend. Implementations apply each customer's events in one atomic step:
/// a customer's profile either shows all of that customer's events from a call or none.
#[async_trait]
pub trait ProfileStore: Send + Sync + 'static {
    /// `memory` or `redis`, for metrics and logs.
    fn name(&self) -> &'static str;

    /// Applies events (in order per customer), skipping ids already applied. `now` is the
    /// ingest time in unix seconds.
    async fn apply(&self, events: &[Event], now: i64) -> Result<ApplyOutcome, StoreError>;

    /// The customer's profile, or `None` for a customer never seen.
    async fn load(&self, customer: &CustomerId) -> Result<Option<Arc<Profile>>, StoreError>;

    /// What a decision reads: the profile, all of it but `recent` and `seen`, which may be
    /// left empty when that saves work (a store that decodes on every read), and, with
    /// `planned`, the actions planned for the customer (a decision that can plan outbound
    /// contacts needs them; an inbound one does not).
    async fn load_for_decision(
        &self,
        customer: &CustomerId,
        planned: bool,
    ) -> Result<DecisionRead, StoreError>;

    /// The actions planned for the customer, as recorded (lapsed ones too).
    async fn planned(&self, customer: &CustomerId) -> Result<Vec<PlannedAction>, StoreError>;

    /// Records actions planned for the customer (see [`super::planned`]) if their stored
    /// entries are still as `seen` (what the decision read, [`DecisionRead::planned_mark`]):
    /// false, and nothing recorded, when another decision recorded plans meanwhile.
    /// Entries lapsed [`super::planned::KEPT_AFTER_LAPSE`] before `now` may be dropped, and
    /// only the newest [`super::planned::MAX_PLANNED`] are kept.
    async fn plan(
        &self,
        customer: &CustomerId,
        planned: &[PlannedAction],
        seen: &PlannedMark,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Takes back planned actions a decision may have recorded (its `plan` call failed or
    /// timed out, and the answer went out without them): from the customer's plans and from
    /// the outbound index. Idempotent.
    async fn withdraw(
        &self,
        _customer: &CustomerId,
        _planned: &[PlannedAction],
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Erases everything held about the customer; true when there was something. Leaves a
    /// tombstone for the retry window (`profile.dedup_window_hours`): events dated
    /// before the erasure are not applied while it lasts ([`ApplyOutcome::erased`]).
    async fn erase(&self, customer: &CustomerId) -> Result<bool, StoreError>;

    /// Checks the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Joins events to decisions from now on ([`crate::learning::join`]): the store opens
    /// and closes exposures in the profiles it writes and keeps the outcomes in its log.
    fn learn_with(&self, _learner: Arc<dyn Exposures>) {}

    /// Up to `max` outcomes after `cursor` (empty: from the start of the log), in the order
    /// they were logged, and the cursor after them.
    async fn outcomes_after(
        &self,
        cursor: &str,
        _max: usize,
    ) -> Result<(Vec<Outcome>, String), StoreError> {
        Ok((Vec::new(), cursor.to_owned()))
    }

    /// Closes the exposures overdue at `now` of up to `max` customers, as negatives (a
    /// customer who goes quiet still answers "no"); how many customers were seen to.
    async fn close_overdue(&self, _now: i64, _max: usize) -> Result<usize, StoreError> {
        Ok(0)
    }

    /// Indexes every planned action recorded from now on by its send time, for the outbound
    /// feed ([`crate::outbound`]).
    fn index_outbound(&self) {}

    /// Planned actions whose send time has come (at `now`), at most `max`, each claimed for
    /// `lease` seconds: no other caller (replica) gets it meanwhile, and one not released
    /// within the lease is handed out again (the claimer died).
    async fn claim_due(
        &self,
        _now: i64,
        _max: usize,
        _lease: i64,
    ) -> Result<Vec<DueAction>, StoreError> {
        Ok(Vec::new())
    }

    /// Releases claimed actions: handed to the sender, or dropped.
    async fn release(&self, _actions: &[DueAction]) -> Result<(), StoreError> {
        Ok(())
    }

    /// Appends claimed actions to the store's outbound stream and releases them, in one
    /// step per shard, so each is appended exactly once; how many this call appended (an
    /// action another publisher appended meanwhile is not).
    async fn append_outbound(&self, _actions: &[DueAction]) -> Result<usize, StoreError> {
        Err(StoreError::Unavailable(
            "this store has no outbound stream (outbound.feed = \"redis\" needs Redis)".into(),
        ))
    }

    /// Whether the store compresses profiles but has no dictionary to do it with yet
    /// ([`super::dictionary`]): then [`ProfileStore::make_dictionary`] would make one.
    fn wants_dictionary(&self) -> bool {
        false
    }

    /// From now on, while the store has no compression dictionary, gathers the profiles
    /// it writes and makes one of them when it has enough (in the background); the service
    /// asks for it, so that a store fed by events alone is compressed too.
    fn gather_dictionary_samples(&self) {}

    /// Reads the store's compression dictionaries again unless it did within the last 30
    /// seconds: a replica then learns one another made, and writes back one the store lost.
    /// The service calls it once a minute.
    async fn check_dictionaries(&self, _now: i64) -> Result<(), StoreError> {
        Ok(())
    }

    /// Makes the store's profile compression dictionary from the stored profiles of
    /// `sample`, when it has none; the one it writes with now, if any (`None`: this store
    /// does not compress, or the sample was too small).
    async fn make_dictionary(&self, _sample: &[CustomerId]) -> Result<Option<u32>, StoreError> {
        Ok(None)
    }

    /// Writes the customers' stored profiles again, unchanged but for the encoding (with
    /// the store's current dictionary).
    async fn rewrite(&self, _customers: &[CustomerId], _now: i64) -> Result<(), StoreError> {
        Ok(())
    }

    /// The same store with its own connection, driven by the calling thread's runtime, for
    /// a thread that serves many requests (an HTTP worker): a request then never waits for
    /// another thread to relay its call. `None` where there is nothing to gain (the memory
    /// store) or the connection cannot be made; the caller keeps the shared store.
    async fn for_this_thread(&self) -> Option<Arc<dyn ProfileStore>> {
        None
    }
}

/// A planned action due to be sent, as claimed from the store's index.
#[derive(Debug, Clone, PartialEq)]
pub struct DueAction {
    pub customer_id: CustomerId,
    pub action: PlannedAction,
    /// Its entry in the index, as stored.
    pub entry: Vec<u8>,
}

impl DueAction {
    /// An index entry: the customer id, a newline, then the encoded action.
    pub fn entry_of(customer: &CustomerId, action: &PlannedAction) -> Vec<u8> {
        let mut entry = customer.as_str().as_bytes().to_vec();
        entry.push(b'\n');
        entry.extend(action.encode());
        entry
    }

    /// Every form the index entry of `action` may be stored in ([`PlannedAction::encodings`]).
    pub fn entries_of(customer: &CustomerId, action: &PlannedAction) -> Vec<Vec<u8>> {
        action
            .encodings()
            .into_iter()
            .map(|encoded| {
                let mut entry = customer.as_str().as_bytes().to_vec();
                entry.push(b'\n');
                entry.extend(encoded);
                entry
            })
            .collect()
    }

    pub fn from_entry(entry: Vec<u8>) -> Option<Self> {
        let split = entry.iter().position(|&b| b == b'\n')?;
        let customer_id = CustomerId::parse(std::str::from_utf8(&entry[..split]).ok()?).ok()?;
        let action = PlannedAction::decode(&entry[split + 1..])?;
        Some(Self {
            customer_id,
            action,
            entry,
        })
    }

    /// What the sender gets (JSON): everything it needs to send and report it.
    pub fn message(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "customer_id": self.customer_id.as_str(),
            "decision_id": self.action.decision_id.as_str(),
            "offer_id": self.action.offer_id.as_str(),
            "channel": self.action.channel.as_str(),
            "send_at": crate::time::rfc3339(self.action.send_at),
            "expires_at": crate::time::rfc3339(self.action.until),
        }))
        .expect("a message serialises")
    }

    /// The same action whoever publishes it: the feed's de-duplication id.
    pub fn id(&self) -> String {
        format!(
            "{}:{}:{}",
            self.action.decision_id.as_str(),
            self.action.offer_id.as_str(),
            self.action.channel.as_str()
        )
    }
}

/// What a decision reads of a customer.
#[derive(Debug, Default, Clone)]
pub struct DecisionRead {
    /// `None` for a customer never seen.
    pub profile: Option<Arc<Profile>>,
    /// Outbound actions planned by earlier decisions, as stored (empty when not asked for).
    pub planned: Vec<PlannedAction>,
    /// What the stored entries were when read, for [`ProfileStore::plan`]'s compare-and-set.
    pub planned_mark: PlannedMark,
}

/// The store as the service uses it: every call has a time limit and is measured.
#[derive(Clone)]
pub struct Profiles {
    store: Arc<dyn ProfileStore>,
    /// Limit on writes and administrative calls.
    timeout: Duration,
}

impl Profiles {
    pub fn new(store: Arc<dyn ProfileStore>, timeout: Duration) -> Self {
        Self { store, timeout }
    }

    /// See [`ProfileStore::for_this_thread`]; this store itself where that gives nothing.
    pub async fn for_this_thread(&self) -> Profiles {
        match self.store.for_this_thread().await {
            Some(store) => Self {
                store,
                timeout: self.timeout,
            },
            None => self.clone(),
        }
    }

    pub fn backend(&self) -> &'static str {
        self.store.name()
    }

    pub async fn apply(&self, events: &[Event], now: i64) -> Result<ApplyOutcome, StoreError> {
        self.timed("apply", self.timeout, self.store.apply(events, now))
            .await
    }

    /// What a decision reads ([`ProfileStore::load_for_decision`]), within `budget`
    /// (decisions pass a small one and fall back).
    pub async fn load_for_decision(
        &self,
        customer: &CustomerId,
        planned: bool,
        budget: Duration,
    ) -> Result<DecisionRead, StoreError> {
        self.timed(
            "load",
            budget,
            self.store.load_for_decision(customer, planned),
        )
        .await
    }

    pub async fn planned(&self, customer: &CustomerId) -> Result<Vec<PlannedAction>, StoreError> {
        self.timed("planned", self.timeout, self.store.planned(customer))
            .await
    }

    /// Records planned actions ([`ProfileStore::plan`]) within `budget`.
    pub async fn plan(
        &self,
        customer: &CustomerId,
        planned: &[PlannedAction],
        seen: &PlannedMark,
        now: i64,
        budget: Duration,
    ) -> Result<bool, StoreError> {
        self.timed(
            "plan",
            budget,
            self.store.plan(customer, planned, seen, now),
        )
        .await
    }

    pub async fn load(&self, customer: &CustomerId) -> Result<Option<Arc<Profile>>, StoreError> {
        self.timed("load", self.timeout, self.store.load(customer))
            .await
    }

    pub async fn erase(&self, customer: &CustomerId) -> Result<bool, StoreError> {
        self.timed("erase", self.timeout, self.store.erase(customer))
            .await
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.timed("ping", self.timeout, self.store.ping()).await
    }

    /// See [`ProfileStore::learn_with`].
    pub fn learn_with(&self, learner: Arc<dyn Exposures>) {
        self.store.learn_with(learner);
    }

    /// See [`ProfileStore::outcomes_after`].
    pub async fn outcomes_after(
        &self,
        cursor: &str,
        max: usize,
    ) -> Result<(Vec<Outcome>, String), StoreError> {
        self.timed(
            "outcomes",
            self.timeout,
            self.store.outcomes_after(cursor, max),
        )
        .await
    }

    /// See [`ProfileStore::withdraw`].
    pub async fn withdraw(
        &self,
        customer: &CustomerId,
        planned: &[PlannedAction],
    ) -> Result<(), StoreError> {
        self.timed(
            "withdraw",
            self.timeout,
            self.store.withdraw(customer, planned),
        )
        .await
    }

    /// See [`ProfileStore::index_outbound`].
    pub fn index_outbound(&self) {
        self.store.index_outbound();
    }

    /// See [`ProfileStore::claim_due`].
    pub async fn claim_due(
        &self,
        now: i64,
        max: usize,
        lease: i64,
    ) -> Result<Vec<DueAction>, StoreError> {
        self.timed(
            "claim_due",
            self.timeout,
            self.store.claim_due(now, max, lease),
        )
        .await
    }

    /// See [`ProfileStore::release`].
    pub async fn release(&self, actions: &[DueAction]) -> Result<(), StoreError> {
        self.timed("release", self.timeout, self.store.release(actions))
            .await
    }

    /// See [`ProfileStore::append_outbound`].
    pub async fn append_outbound(&self, actions: &[DueAction]) -> Result<usize, StoreError> {
        self.timed(
            "append_outbound",
            self.timeout,
            self.store.append_outbound(actions),
        )
        .await
    }

    /// See [`ProfileStore::gather_dictionary_samples`].
    pub fn gather_dictionary_samples(&self) {
        self.store.gather_dictionary_samples();
    }

    /// See [`ProfileStore::check_dictionaries`].
    pub async fn check_dictionaries(&self, now: i64) -> Result<(), StoreError> {
        self.timed(
            "make_dictionary",
            self.timeout,
            self.store.check_dictionaries(now),
        )
        .await
    }

    /// See [`ProfileStore::wants_dictionary`].
    pub fn wants_dictionary(&self) -> bool {
        self.store.wants_dictionary()
    }

    /// Compresses the stored profiles of `customers` against a store-wide dictionary,
    /// made from a sample of them when the store has none ([`super::dictionary`]): how many
    /// were rewritten (none when the store does not compress or they are too few to make a
    /// dictionary of).
    pub async fn compress(&self, customers: &[CustomerId], now: i64) -> Result<usize, StoreError> {
        const SAMPLE: usize = 2_000;
        const CHUNK: usize = 500;
        let step = customers.len().div_ceil(SAMPLE).max(1);
        let sample: Vec<CustomerId> = customers.iter().step_by(step).cloned().collect();
        let made = self.timed(
            "make_dictionary",
            self.timeout * 10,
            self.store.make_dictionary(&sample),
        );
        if made.await?.is_none() {
            return Ok(0);
        }
        for chunk in customers.chunks(CHUNK) {
            // Retried as an import retries a batch: a moment's contention or a failover
            // does not end it.
            retried("a chunk of profiles to compress", || {
                self.timed("rewrite", self.timeout, self.store.rewrite(chunk, now))
            })
            .await?;
        }
        Ok(customers.len())
    }

    /// See [`ProfileStore::close_overdue`].
    pub async fn close_overdue(&self, now: i64, max: usize) -> Result<usize, StoreError> {
        self.timed(
            "close_overdue",
            self.timeout,
            self.store.close_overdue(now, max),
        )
        .await
    }

    async fn timed<T>(
        &self,
        op: &'static str,
        limit: Duration,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Timeout(limit)),
        };
        let backend = self.store.name();
        record_duration(backend, op, started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            metrics::counter!(m::STORE_ERRORS, "store" => backend, "op" => op, "kind" => e.kind())
                .increment(1);
        }
        result
    }
}

thread_local! {
    /// Each thread's store-duration histograms by store and operation: a handful, and
    /// finding one in the recorder's registry hashed its labels on every call. Made on a
    /// thread's first call, so a thread that uses the store before the recorder is
    /// installed records nothing (the service installs it first).
    static STORE_DURATIONS: std::cell::RefCell<Vec<((&'static str, &'static str), metrics::Histogram)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

fn record_duration(store: &'static str, op: &'static str, seconds: f64) {
    STORE_DURATIONS.with_borrow_mut(|handles| {
        match handles.iter().find(|(key, _)| *key == (store, op)) {
            Some((_, h)) => h.record(seconds),
            None => {
                let h = metrics::histogram!(m::STORE_DURATION, "store" => store, "op" => op);
                h.record(seconds);
                handles.push(((store, op), h));
            }
        }
    });
}
