//! The decision service: the one way to make a decision, whoever asks (the HTTP handler,
//! the benches, a simulation, a batch planner). [`Decider::decide`] reads the customer's
//! profile and plans within the read budget (past it, or on a store error, a fallback
//! ranking decides and the answer says `degraded`), decides with the model set and catalog
//! in force, records the planned outbound marketing actions so that later decisions count
//! them toward the contact limits (withdrawing them from the answer, degraded, when that
//! cannot be done), and logs the decision.
//!
//! [`Decider::erase`] erases a customer: their profile's keys and their decisions in the log.
//! The customer is marked first ([`RecentlyErased`]), so that a decision under way for them
//! records no plan or log line after the erasure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::DecisionSettings;
use super::answer::{Decision, ModelArm};
use super::engine::{DecisionEngine, DecisionInput};
use super::log::{DecisionLog, LogError};
use super::policy::Policy;
use super::request::DecisionRequest;
use crate::learning::Learner;
use crate::live::{LiveCatalog, LiveModels};
use crate::profile::planned::{PlannedAction, PlannedMark};
use crate::profile::store::DecisionRead;
use crate::profile::{CustomerId, DecisionId, Profiles, StoreError};
use crate::telemetry::metrics as m;

/// Makes decisions and erases customers; cheap to clone (shared parts behind `Arc`s).
#[derive(Clone)]
pub struct Decider {
    profiles: Profiles,
    models: Arc<LiveModels>,
    catalog: Arc<LiveCatalog>,
    settings: Arc<DecisionSettings>,
    policy: Arc<dyn Policy>,
    log: DecisionLog,
    erased: Arc<RecentlyErased>,
    learner: Option<Arc<Learner>>,
    /// Decision ids from a sequence instead of UUIDs (a reproducible simulation).
    ids: Option<Arc<(String, std::sync::atomic::AtomicU64)>>,
    /// The challenger model set and the share of customers (in millionths) it decides for.
    challenger: Option<(Arc<LiveModels>, u64)>,
    /// Decisions made by each arm (champion, challenger) since start.
    arm_decisions: Arc<[std::sync::atomic::AtomicU64; 2]>,
    /// What "now" is: a decision's time when the request gives none.
    clock: crate::time::Clock,
}

/// The arm of `customer` when the challenger decides for `share` millionths of the
/// customers: a hash of the id, so that a customer always meets the same arm.
pub fn arm_for(customer: &str, share: u64) -> ModelArm {
    if xxhash_rust::xxh3::xxh3_64(customer.as_bytes()) % 1_000_000 < share {
        ModelArm::Challenger
    } else {
        ModelArm::Champion
    }
}

/// A share in 0..=1 as the millionths [`arm_for`] takes.
pub fn share_millionths(share: f64) -> u64 {
    (share.clamp(0.0, 1.0) * 1e6).round() as u64
}

/// What an erasure found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    /// The store held something about the customer.
    pub existed: bool,
    /// Decision-log records removed.
    pub logged: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Log(#[from] LogError),
}

impl Decider {
    pub fn new(
        profiles: Profiles,
        models: Arc<LiveModels>,
        catalog: Arc<LiveCatalog>,
        settings: DecisionSettings,
        log: DecisionLog,
    ) -> Self {
        Self {
            profiles,
            models,
            catalog,
            policy: settings.exploration.policy(),
            settings: Arc::new(settings),
            log,
            erased: Arc::default(),
            learner: None,
            ids: None,
            challenger: None,
            arm_decisions: Arc::default(),
            clock: crate::time::Clock::system(),
        }
    }

    /// Decides by `clock` (a simulated one: [`crate::time::Clock`]).
    pub fn with_clock(mut self, clock: crate::time::Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Lets `challenger` decide for `share` (0..=1) of the customers, chosen by a hash of
    /// the customer id, so that a customer always meets the same arm.
    pub fn with_challenger(mut self, challenger: Arc<LiveModels>, share: f64) -> Self {
        self.challenger = Some((challenger, share_millionths(share)));
        self
    }

    /// The challenger model set in service and its share, if there is one.
    pub fn challenger(&self) -> Option<(&Arc<LiveModels>, f64)> {
        self.challenger
            .as_ref()
            .map(|(m, share)| (m, *share as f64 / 1e6))
    }

    /// Decisions made by the champion and by the challenger since start.
    pub fn arm_decisions(&self) -> [u64; 2] {
        [0, 1].map(|i| self.arm_decisions[i].load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The arm that decides for `customer`.
    pub fn arm_of(&self, customer: &CustomerId) -> ModelArm {
        match &self.challenger {
            Some((_, share)) => arm_for(customer.as_str(), *share),
            None => ModelArm::Champion,
        }
    }

    /// Names decisions `{prefix}-1`, `{prefix}-2`, ... instead of by fresh UUIDs: the
    /// arbitration's draws are seeded by the decision id, so a simulation run twice decides
    /// the same way.
    pub fn with_decision_ids(mut self, prefix: &str) -> Self {
        self.ids = Some(Arc::new((prefix.to_owned(), 0.into())));
        self
    }

    fn next_id(&self) -> DecisionId {
        match &self.ids {
            Some(ids) => {
                let n = ids.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                DecisionId::parse(format!("{}-{n}", ids.0))
                    .unwrap_or_else(|_| DecisionId::generate())
            }
            None => DecisionId::generate(),
        }
    }

    /// Decides with what the online learner knows (its local copy: no store round trip).
    pub fn with_learner(mut self, learner: Arc<Learner>) -> Self {
        self.learner = Some(learner);
        self
    }

    pub fn learner(&self) -> Option<&Arc<Learner>> {
        self.learner.as_ref()
    }

    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    /// The same service over the calling thread's own store connection
    /// ([`Profiles::for_this_thread`]), for a thread that serves many decisions.
    pub async fn for_this_thread(&self) -> Self {
        Self {
            profiles: self.profiles.for_this_thread().await,
            ..self.clone()
        }
    }

    /// The version of the model set in force.
    pub fn model_version(&self) -> String {
        self.models.current().value.version().to_owned()
    }

    /// The policy that chooses among the candidates.
    pub fn policy(&self) -> &Arc<dyn Policy> {
        &self.policy
    }

    pub fn settings(&self) -> &DecisionSettings {
        &self.settings
    }

    pub fn log(&self) -> &DecisionLog {
        &self.log
    }

    /// Decides for the request: never an error (a store that cannot be read gives a
    /// degraded decision).
    pub async fn decide(&self, request: &DecisionRequest) -> Decision {
        self.decide_since(request, Instant::now()).await
    }

    /// [`Decider::decide`] for a request that arrived at `started` (the decision latency
    /// histogram counts from then).
    pub async fn decide_since(&self, request: &DecisionRequest, started: Instant) -> Decision {
        let budget = Duration::from_millis(self.settings.profile_read_budget_ms);
        // Earlier plans only matter to a decision that may plan outbound contacts, and only
        // while plans are recorded.
        let grace = i64::from(self.settings.contact_policy.planned_grace_hours) * 3600;
        let outbound = grace > 0 && (request.channels.is_some() || request.touchpoint.is_none());
        let mut attempt = 0;
        // Deciding again must not make a decision wait longer than one try may: the tries
        // share one read-and-record budget (two store calls' worth).
        let deadline = Instant::now() + 2 * budget;
        let left = || {
            deadline
                .saturating_duration_since(Instant::now())
                .min(budget)
                .max(Duration::from_millis(1))
        };
        let (decision, erased) = loop {
            let (read, degraded) = match self
                .profiles
                .load_for_decision(&request.customer_id, outbound, left())
                .await
            {
                Ok(read) => (read, false),
                Err(e) => {
                    tracing::warn!(error = %e, "profile unavailable: deciding from the fallback ranking");
                    (DecisionRead::default(), true)
                }
            };
            let mut decision = self.decide_on(request, &read, degraded);
            // A customer erased while this decision was made gets nothing recorded.
            let erased = self.erased.contains(request.customer_id.as_str());
            if grace == 0 || erased {
                break (decision, erased);
            }
            // A degraded read saw no plans: its own are recorded only where none are.
            let last_try = degraded || attempt + 1 >= MAX_ATTEMPTS || Instant::now() >= deadline;
            match record_planned(
                &self.profiles,
                &request.customer_id,
                &mut decision,
                &read.planned_mark,
                self.clock.now(),
                grace,
                left(),
                last_try,
            )
            .await
            {
                Planned::Recorded => break (decision, erased),
                Planned::Changed => {
                    // Another decision planned for the customer meanwhile (another
                    // replica, a concurrent request): decide again, counting its plans.
                    attempt += 1;
                    metrics::counter!(m::DECISION_REDECIDED).increment(1);
                }
            }
        };
        if self.challenger.is_some() {
            let arm = decision.arm;
            let i = usize::from(arm == ModelArm::Challenger);
            self.arm_decisions[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            metrics::counter!(m::ARM_DECISIONS, "arm" => arm.as_str()).increment(1);
        }
        if !erased {
            self.log.record(&decision, request);
        }
        let outcome = Outcome::of(&decision);
        DECISION_METRICS.with(|(duration, outcomes)| {
            duration.record(started.elapsed().as_secs_f64());
            outcomes[outcome as usize].increment(1);
        });
        decision
    }

    /// One decision on what was read of the customer.
    fn decide_on(
        &self,
        request: &DecisionRequest,
        read: &DecisionRead,
        degraded: bool,
    ) -> Decision {
        let arm = self.arm_of(&request.customer_id);
        let models = match (&self.challenger, arm) {
            (Some((challenger, _)), ModelArm::Challenger) => challenger.current(),
            _ => self.models.current(),
        };
        let catalog = self.catalog.current();
        // The online state corrects the champion's models: the challenger decides alone.
        let online = match arm {
            ModelArm::Champion => self.learner.as_ref().and_then(|l| l.snapshot()),
            ModelArm::Challenger => None,
        };
        let engine = DecisionEngine {
            catalog: &catalog.value,
            models: &models.value,
            settings: &self.settings,
            policy: &*self.policy,
            online: online.as_deref(),
        };
        let mut decision = engine.decide(&DecisionInput {
            request,
            profile: read.profile.as_deref(),
            planned: &read.planned,
            degraded,
            now: self.clock.now_utc(),
            decision_id: self.next_id(),
        });
        decision.arm = arm;
        decision
    }

    /// Erases everything held about the customer: the profile's keys and the records of the
    /// decisions made for them. Idempotent: after an error, asking again finishes the work.
    pub async fn erase(&self, customer: &CustomerId) -> Result<Erased, EraseError> {
        // First, so that a decision under way for them records nothing from now on.
        self.erased.mark(customer.as_str());
        let existed = self.profiles.erase(customer).await?;
        // Then the decisions logged about them. Asked again after a failure, the profile
        // part finds nothing and this part runs again.
        let logged = self.log.erase(customer.as_str()).await?;
        // A plan a decision was writing as the mark was set has landed by now (the log's
        // pass took longer than its round trip): erase the keys once more.
        self.profiles.erase(customer).await?;
        tracing::info!(customer = %customer, existed, logged, "customer erased");
        Ok(Erased { existed, logged })
    }
}

/// Tries to record a decision's plans before deciding again ([`Decider::decide`]).
const MAX_ATTEMPTS: usize = 3;

/// What became of a decision's planned actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planned {
    /// Recorded, or none to record, or taken out of the answer.
    Recorded,
    /// Another decision recorded plans for the customer since this one read them: decide
    /// again.
    Changed,
}

/// Records the decision's planned outbound actions, for the outbound feed and so that later
/// decisions count them toward the contact limits (a service message toward its offer's cap
/// only), if the customer's plans are still as the decision read them (`seen`). When that
/// cannot be done within `budget`, or they changed and this is the `last_try`, the planned
/// actions are taken out of the answer (a limit could otherwise be broken; so an answered
/// outbound action is on the feed whenever plans are recorded at all, which they are not
/// with `planned_grace_hours = 0` or for a customer this replica just erased) and the
/// decision says `degraded`. With the store down, service messages leave the answer too.
/// `now` is the service's clock, against which earlier plans have lapsed.
#[allow(clippy::too_many_arguments)]
async fn record_planned(
    profiles: &Profiles,
    customer: &CustomerId,
    decision: &mut Decision,
    seen: &PlannedMark,
    now: i64,
    grace: i64,
    budget: Duration,
    last_try: bool,
) -> Planned {
    let planned: Vec<PlannedAction> = decision
        .actions
        .iter()
        .filter(|a| a.planned)
        .map(|a| PlannedAction {
            decision_id: decision.decision_id.clone(),
            offer_id: a.offer_id.clone(),
            channel: a.channel,
            send_at: a.send_at_unix,
            made_at: decision.log.at,
            until: a.send_at_unix.saturating_add(grace),
            counts: a.counts_as_contact,
        })
        .collect();
    if planned.is_empty() {
        return Planned::Recorded;
    }
    match profiles.plan(customer, &planned, seen, now, budget).await {
        Ok(true) => return Planned::Recorded,
        Ok(false) if !last_try => return Planned::Changed,
        Ok(false) => {
            tracing::warn!("the customer's plans kept changing: answering without planned actions");
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot record the planned actions: answering without them");
            // The write may have landed all the same (a time limit passed): take the plans
            // back, off the answer's path, so that they are neither counted nor sent.
            let (profiles, customer) = (profiles.clone(), customer.clone());
            tokio::spawn(async move {
                if let Err(e) = profiles.withdraw(&customer, &planned).await {
                    tracing::warn!(error = %e, "cannot withdraw planned actions that may have been recorded");
                }
            });
        }
    }
    decision.actions.retain(|a| !a.planned);
    for (i, a) in decision.actions.iter_mut().enumerate() {
        a.rank = i + 1;
    }
    decision.degraded = true;
    Planned::Recorded
}

/// Customers erased a short while ago. A decision under way when its customer is erased
/// could otherwise record a plan or a log line for them after the erasure; it asks here
/// first and records nothing. ([`Decider::erase`] marks the customer before it erases
/// anything.)
#[derive(Default)]
pub struct RecentlyErased {
    /// Entries in `list`: a decision looks no further while there are none.
    count: std::sync::atomic::AtomicUsize,
    list: std::sync::Mutex<Vec<(String, Instant)>>,
}

impl RecentlyErased {
    /// Far longer than a decision takes.
    const KEPT: Duration = Duration::from_secs(60);

    pub fn mark(&self, customer: &str) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|(_, at)| at.elapsed() < Self::KEPT);
        list.push((customer.to_owned(), Instant::now()));
        self.count
            .store(list.len(), std::sync::atomic::Ordering::SeqCst);
    }

    pub fn contains(&self, customer: &str) -> bool {
        if self.count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            return false;
        }
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|(_, at)| at.elapsed() < Self::KEPT);
        self.count
            .store(list.len(), std::sync::atomic::Ordering::SeqCst);
        list.iter().any(|(c, _)| c == customer)
    }
}

/// A decision's outcome, the label of `touchpoint_decisions_total` ([`Outcome::LABELS`], in
/// this order).
#[derive(Clone, Copy)]
enum Outcome {
    Actions,
    NoAction,
    Degraded,
}

impl Outcome {
    const LABELS: [&'static str; 3] = ["actions", "no_action", "degraded"];

    fn of(decision: &Decision) -> Self {
        if decision.degraded {
            Outcome::Degraded
        } else if decision.actions.is_empty() {
            Outcome::NoAction
        } else {
            Outcome::Actions
        }
    }
}

thread_local! {
    /// Each worker's handles on the decision duration and the count by outcome: looking
    /// them up in the recorder's registry hashed the name and label on every decision.
    /// Made on a thread's first decision, so the recorder must be installed before (the
    /// service installs it before it starts the HTTP workers).
    static DECISION_METRICS: (metrics::Histogram, [metrics::Counter; 3]) = (
        metrics::histogram!(m::DECISION_DURATION),
        Outcome::LABELS.map(|label| metrics::counter!(m::DECISIONS, "outcome" => label)),
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::decision::answer::{Action, LogDetails};
    use crate::profile::memory::MemoryStore;
    use crate::profile::store::{ApplyOutcome, ProfileStore};
    use crate::profile::{Channel, Event, OfferId, Profile, ProfileLimits};

    /// The memory store, except that plans cannot be recorded (`fail`) or are recorded.
    struct Plans {
        store: MemoryStore,
        fail: bool,
    }

    #[async_trait::async_trait]
    impl ProfileStore for Plans {
        fn name(&self) -> &'static str {
            "plans"
        }
        async fn apply(&self, events: &[Event], now: i64) -> Result<ApplyOutcome, StoreError> {
            self.store.apply(events, now).await
        }
        async fn load(&self, c: &CustomerId) -> Result<Option<Arc<Profile>>, StoreError> {
            self.store.load(c).await
        }
        async fn load_for_decision(
            &self,
            c: &CustomerId,
            planned: bool,
        ) -> Result<DecisionRead, StoreError> {
            self.store.load_for_decision(c, planned).await
        }
        async fn planned(&self, c: &CustomerId) -> Result<Vec<PlannedAction>, StoreError> {
            self.store.planned(c).await
        }
        async fn plan(
            &self,
            c: &CustomerId,
            planned: &[PlannedAction],
            seen: &PlannedMark,
            now: i64,
        ) -> Result<bool, StoreError> {
            if self.fail {
                Err(StoreError::Unavailable("test".into()))
            } else {
                self.store.plan(c, planned, seen, now).await
            }
        }
        async fn erase(&self, c: &CustomerId) -> Result<bool, StoreError> {
            self.store.erase(c).await
        }
        async fn ping(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }

    /// An action: `planned` outbound (to be sent later), a marketing one if it `counts`.
    fn action(rank: usize, offer: &str, channel: Channel, planned: bool, counts: bool) -> Action {
        Action {
            rank,
            offer_id: OfferId::parse(offer).unwrap(),
            channel,
            send_at: "2026-12-01T18:00:00Z".into(),
            send_at_unix: 1_796_148_000,
            planned,
            counts_as_contact: counts,
            propensity: 0.1,
            value: 10.0,
            priority: 1.0,
            probability: 1.0,
            explanation: None,
        }
    }

    fn decision() -> Decision {
        Decision {
            decision_id: DecisionId::parse("d-1").unwrap(),
            customer_id: CustomerId::parse("c-1").unwrap(),
            at: "2026-12-01T10:00:00Z".into(),
            model_version: "m".into(),
            arm: ModelArm::Champion,
            degraded: false,
            actions: vec![
                action(1, "gold-card", Channel::Email, true, true),
                action(2, "payment-due-reminder", Channel::Sms, true, false),
                action(3, "personal-loan", Channel::Sms, true, true),
                action(4, "security-tips", Channel::Web, false, false),
            ],
            suppressed: None,
            log: LogDetails {
                at: 1_796_119_200,
                candidates: Vec::new(),
                segment: None,
                value: None,
                catalog_version: "c".into(),
                policy: Arc::from(""),
            },
        }
    }

    /// Recorded, the planned outbound actions are the customer's plans (the service message
    /// among them, not counting); not recorded, they leave the answer (all but the web
    /// content shown now), which says it is degraded.
    /// [`record_planned`] now, with an hour's grace.
    async fn record_now(
        profiles: &Profiles,
        customer: &CustomerId,
        decision: &mut Decision,
        seen: &PlannedMark,
        budget: Duration,
        last_try: bool,
    ) -> Planned {
        let now = chrono::Utc::now().timestamp();
        record_planned(
            profiles, customer, decision, seen, now, 3600, budget, last_try,
        )
        .await
    }

    #[actix_web::test]
    async fn planned_actions_are_recorded_or_withdrawn() {
        let customer = CustomerId::parse("c-1").unwrap();
        let budget = Duration::from_secs(1);
        for fail in [false, true] {
            let store = Plans {
                store: MemoryStore::new(ProfileLimits::default()),
                fail,
            };
            let profiles = Profiles::new(Arc::new(store), budget);
            let mut d = decision();
            let seen = PlannedMark::default();
            let done = record_now(&profiles, &customer, &mut d, &seen, budget, false);
            assert_eq!(done.await, Planned::Recorded);
            let plans = profiles.planned(&customer).await.unwrap();
            let offers: Vec<(&str, usize)> = d
                .actions
                .iter()
                .map(|a| (a.offer_id.as_str(), a.rank))
                .collect();
            if fail {
                assert!(plans.is_empty());
                assert_eq!(offers, [("security-tips", 1)]);
                assert!(d.degraded);
            } else {
                let planned: Vec<(&str, Channel, i64, i64, bool)> = plans
                    .iter()
                    .map(|p| (p.offer_id.as_str(), p.channel, p.made_at, p.until, p.counts))
                    .collect();
                let until = 1_796_148_000 + 3600;
                assert_eq!(
                    planned,
                    [
                        ("gold-card", Channel::Email, 1_796_119_200, until, true),
                        (
                            "payment-due-reminder",
                            Channel::Sms,
                            1_796_119_200,
                            until,
                            false
                        ),
                        ("personal-loan", Channel::Sms, 1_796_119_200, until, true)
                    ]
                );
                assert!(plans.iter().all(|p| p.decision_id.as_str() == "d-1"));
                assert_eq!(offers.len(), 4);
                assert!(!d.degraded);
                // A second decision that read the plans before the first recorded them is
                // told to decide again; on its last try it answers without them.
                let mut late = decision();
                let again = record_now(&profiles, &customer, &mut late, &seen, budget, false);
                assert_eq!(again.await, Planned::Changed);
                assert_eq!(late.actions.len(), 4);
                let last = record_now(&profiles, &customer, &mut late, &seen, budget, true);
                assert_eq!(last.await, Planned::Recorded);
                assert_eq!(late.actions.len(), 1);
                assert!(late.degraded);
                assert_eq!(profiles.planned(&customer).await.unwrap().len(), 3);
            }
        }
    }

    #[test]
    fn recently_erased_customers_are_known_by_id() {
        let erased = RecentlyErased::default();
        assert!(!erased.contains("c-1"));
        erased.mark("c-1");
        assert!(erased.contains("c-1"));
        assert!(!erased.contains("c-2"));
    }
}
