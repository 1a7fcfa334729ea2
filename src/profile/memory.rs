//! The embedded in-memory store, the default: `touchpoint serve` runs with no setup. It keeps
//! nothing when the process stops.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;

use super::event::Event;
use super::ids::CustomerId;
use super::planned::{KEPT_AFTER_LAPSE, MAX_PLANNED, PlannedAction, PlannedMark};
use super::state::{Profile, ProfileLimits};
use super::store::{
    ApplyOutcome, DecisionRead, DueAction, ProfileStore, StoreError, apply_events,
    group_by_customer,
};
use crate::learning::join::{self, Exposures, Outcome};

/// The outcome log keeps the newest this many (the state every replica learns is built from
/// it; an older outcome is learned by a replica that was running when it came).
const OUTCOME_LOG: usize = 1_000_000;

const SHARDS: usize = 64;

pub struct MemoryStore {
    /// Sharded so that writers to different customers rarely meet. A `std` mutex, not an
    /// async one: it is held only for in-memory work, never across an `.await`.
    shards: Vec<Mutex<HashMap<CustomerId, Arc<Profile>>>>,
    /// Planned actions by customer, sharded as the profiles.
    planned: Vec<Mutex<HashMap<CustomerId, Vec<PlannedAction>>>>,
    /// Erased customers' tombstones: when each was erased, kept for the retry window.
    erased: Vec<Mutex<HashMap<CustomerId, i64>>>,
    limits: ProfileLimits,
    learner: OnceLock<Arc<dyn Exposures>>,
    /// Joined outcomes: (sequence number of the first kept, the outcomes).
    outcomes: Mutex<(u64, std::collections::VecDeque<Outcome>)>,
    /// Customers with open exposures, by their earliest deadline.
    due: Mutex<BTreeSet<(i64, CustomerId)>>,
    /// Whether planned actions are indexed for the outbound feed.
    outbound: std::sync::atomic::AtomicBool,
    sends: Mutex<Sends>,
}

/// The outbound index: entries by send time, and those claimed with (their lease's end,
/// their send time).
#[derive(Default)]
struct Sends(BTreeSet<(i64, Vec<u8>)>, HashMap<Vec<u8>, (i64, i64)>);

impl MemoryStore {
    pub fn new(limits: ProfileLimits) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            planned: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            erased: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            limits,
            learner: OnceLock::new(),
            outcomes: Mutex::default(),
            due: Mutex::default(),
            outbound: std::sync::atomic::AtomicBool::new(false),
            sends: Mutex::default(),
        }
    }

    /// Applies one customer's events (none: only closing overdue exposures).
    fn apply_customer(
        &self,
        customer: &CustomerId,
        group: &[&Event],
        now: i64,
    ) -> Result<ApplyOutcome, StoreError> {
        let erased_at = self.erased_at(customer, now);
        let learner = self.learner.get().map(|l| &**l);
        let mut outcomes = Vec::new();
        let mut shard = lock(self.shard(customer.as_str()));
        // Copy-on-write: a reader holding the old Arc keeps a consistent snapshot, and
        // sees all of this call's events for the customer or none.
        // Taken out of the map, so that it is changed in place unless a reader holds it.
        let existing = shard.remove(customer);
        let existed = existing.is_some();
        let mut profile = existing.unwrap_or_default();
        let before = join::next_deadline(&profile);
        let counts = apply_events(
            Arc::make_mut(&mut profile),
            customer,
            group,
            erased_at,
            &self.limits,
            now,
            learner,
            &mut outcomes,
        );
        let after = join::next_deadline(&profile);
        if existed || counts.as_ref().is_ok_and(|c| c.accepted > 0) {
            shard.insert(customer.clone(), profile);
        }
        drop(shard);
        let counts = counts?;
        if before != after {
            let mut due = lock(&self.due);
            if let Some(t) = before {
                due.remove(&(t, customer.clone()));
            }
            if let Some(t) = after {
                due.insert((t, customer.clone()));
            }
        }
        if !outcomes.is_empty() {
            let mut log = lock(&self.outcomes);
            log.1.extend(outcomes);
            let excess = log.1.len().saturating_sub(OUTCOME_LOG);
            log.1.drain(..excess);
            log.0 += excess as u64;
        }
        Ok(counts)
    }

    fn shard(&self, customer: &str) -> &Mutex<HashMap<CustomerId, Arc<Profile>>> {
        &self.shards[shard_of(customer)]
    }

    fn planned_shard(&self, customer: &str) -> &Mutex<HashMap<CustomerId, Vec<PlannedAction>>> {
        &self.planned[shard_of(customer)]
    }

    /// When the customer was erased, while the tombstone lasts.
    fn erased_at(&self, customer: &CustomerId, now: i64) -> Option<i64> {
        let window = i64::from(self.limits.dedup_window_hours) * 3600;
        let shard = lock(&self.erased[shard_of(customer.as_str())]);
        shard.get(customer).copied().filter(|&t| now < t + window)
    }

    /// Number of customers held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn shard_of(customer: &str) -> usize {
    (xxhash_rust::xxh3::xxh3_64(customer.as_bytes()) % SHARDS as u64) as usize
}

/// A poisoned shard means a panic happened while applying an event; the map itself is still
/// consistent (each profile is replaced whole), so carry on rather than fail every request.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl ProfileStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn apply(&self, events: &[Event], now: i64) -> Result<ApplyOutcome, StoreError> {
        let mut outcome = ApplyOutcome::default();
        for (customer, group) in group_by_customer(events) {
            outcome += self.apply_customer(customer, &group, now)?;
        }
        Ok(outcome)
    }

    async fn load(&self, customer: &CustomerId) -> Result<Option<Arc<Profile>>, StoreError> {
        Ok(lock(self.shard(customer.as_str())).get(customer).cloned())
    }

    async fn load_for_decision(
        &self,
        customer: &CustomerId,
        planned: bool,
    ) -> Result<DecisionRead, StoreError> {
        // The tombstone first (an erasure sets it first): one under way shows in `plan`.
        let erased = self.erased_at(customer, chrono::Utc::now().timestamp());
        let profile = lock(self.shard(customer.as_str())).get(customer).cloned();
        let planned = if planned {
            self.planned(customer).await?
        } else {
            Vec::new()
        };
        Ok(DecisionRead {
            profile,
            planned_mark: PlannedMark::of(&planned, erased),
            planned,
        })
    }

    async fn planned(&self, customer: &CustomerId) -> Result<Vec<PlannedAction>, StoreError> {
        Ok(lock(self.planned_shard(customer.as_str()))
            .get(customer)
            .cloned()
            .unwrap_or_default())
    }

    async fn plan(
        &self,
        customer: &CustomerId,
        planned: &[PlannedAction],
        seen: &PlannedMark,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut shard = lock(self.planned_shard(customer.as_str()));
        // Under the plans' lock (an erasure sets the tombstone before it takes that lock, so
        // one under way is seen), and by the clock, as the decision read it (`now` may be a
        // planner's own time).
        let erased = self.erased_at(customer, chrono::Utc::now().timestamp());
        let list = shard.entry(customer.clone()).or_default();
        if PlannedMark::of(list, erased) != *seen {
            return Ok(false);
        }
        list.retain(|p| p.until + KEPT_AFTER_LAPSE > now);
        list.extend_from_slice(planned);
        let excess = list.len().saturating_sub(MAX_PLANNED);
        list.drain(..excess);
        drop(shard);
        if self.outbound.load(std::sync::atomic::Ordering::Relaxed) {
            let mut sends = lock(&self.sends);
            for p in planned {
                sends
                    .0
                    .insert((p.send_at, DueAction::entry_of(customer, p)));
            }
        }
        Ok(true)
    }

    async fn withdraw(
        &self,
        customer: &CustomerId,
        planned: &[PlannedAction],
    ) -> Result<(), StoreError> {
        if let Some(list) = lock(self.planned_shard(customer.as_str())).get_mut(customer) {
            list.retain(|p| !planned.contains(p));
        }
        let mut sends = lock(&self.sends);
        for p in planned {
            let entry = DueAction::entry_of(customer, p);
            sends.0.remove(&(p.send_at, entry.clone()));
            sends.1.remove(&entry);
        }
        Ok(())
    }

    async fn erase(&self, customer: &CustomerId) -> Result<bool, StoreError> {
        let now = chrono::Utc::now().timestamp();
        let window = i64::from(self.limits.dedup_window_hours) * 3600;
        {
            let mut tombstones = lock(&self.erased[shard_of(customer.as_str())]);
            tombstones.retain(|_, t| now < *t + window);
            tombstones.insert(customer.clone(), now);
        }
        let planned = lock(self.planned_shard(customer.as_str()))
            .remove(customer)
            .is_some();
        {
            let mut sends = lock(&self.sends);
            let mine = |e: &Vec<u8>| {
                DueAction::from_entry(e.clone()).is_some_and(|d| d.customer_id == *customer)
            };
            sends.0.retain(|(_, e)| !mine(e));
            sends.1.retain(|e, _| !mine(e));
        }
        let profile = lock(self.shard(customer.as_str()))
            .remove(customer)
            .is_some();
        Ok(profile || planned)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn learn_with(&self, learner: Arc<dyn Exposures>) {
        let _ = self.learner.set(learner);
    }

    fn index_outbound(&self) {
        self.outbound
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    async fn claim_due(
        &self,
        now: i64,
        max: usize,
        lease: i64,
    ) -> Result<Vec<DueAction>, StoreError> {
        let mut sends = lock(&self.sends);
        let Sends(index, claimed) = &mut *sends;
        let mut out: Vec<Vec<u8>> = claimed
            .iter()
            .filter(|(_, (until, _))| *until <= now)
            .map(|(e, _)| e.clone())
            .take(max)
            .collect();
        while out.len() < max {
            match index.first() {
                Some((at, _)) if *at <= now => {
                    let (at, entry) = index.pop_first().expect("a first entry");
                    claimed.insert(entry.clone(), (0, at));
                    out.push(entry);
                }
                _ => break,
            }
        }
        for e in &out {
            if let Some(c) = claimed.get_mut(e) {
                c.0 = now + lease;
            }
        }
        Ok(out.into_iter().filter_map(DueAction::from_entry).collect())
    }

    async fn release(&self, actions: &[DueAction]) -> Result<(), StoreError> {
        let mut sends = lock(&self.sends);
        for a in actions {
            sends.1.remove(&a.entry);
        }
        Ok(())
    }

    async fn outcomes_after(
        &self,
        cursor: &str,
        max: usize,
    ) -> Result<(Vec<Outcome>, String), StoreError> {
        let log = lock(&self.outcomes);
        let next: u64 = cursor.parse().unwrap_or(0).max(log.0);
        let from = (next - log.0) as usize;
        let read: Vec<Outcome> = log.1.iter().skip(from).take(max).cloned().collect();
        let cursor = (next + read.len() as u64).to_string();
        Ok((read, cursor))
    }

    async fn close_overdue(&self, now: i64, max: usize) -> Result<usize, StoreError> {
        let customers: Vec<CustomerId> = {
            let mut due = lock(&self.due);
            let taken: Vec<(i64, CustomerId)> = due
                .iter()
                .take_while(|(t, _)| *t <= now)
                .take(max)
                .cloned()
                .collect();
            for entry in &taken {
                due.remove(entry);
            }
            taken.into_iter().map(|(_, c)| c).collect()
        };
        // Each is written again with its next deadline, if it still has one.
        for c in &customers {
            self.apply_customer(c, &[], now)?;
        }
        Ok(customers.len())
    }
}
