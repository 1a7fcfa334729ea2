//! One conformance suite, run unchanged against both profile stores.

use std::sync::Arc;

use touchpoint::profile::event::parse_body;
use touchpoint::profile::memory::MemoryStore;
use touchpoint::profile::planned::{MAX_PLANNED, PlannedAction};
use touchpoint::profile::redis_store::RedisStore;
use touchpoint::profile::{
    Channel, CustomerId, DecisionId, Event, OfferId, Profile, ProfileLimits, ProfileStore,
};
use touchpoint::settings::StoreSettings;

use crate::helpers::{RedisServer, purchase};

fn events(json: Vec<serde_json::Value>) -> Vec<Event> {
    parse_body(serde_json::json!({ "events": json }).to_string().as_bytes()).unwrap()
}

fn cid(s: &str) -> CustomerId {
    CustomerId::parse(s).unwrap()
}

fn history(customer: &str, n: usize, prefix: &str) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            let at = format!("2026-03-{:02}T{:02}:00:00Z", 1 + (i / 24) % 28, i % 24);
            match i % 4 {
                0 => purchase(&format!("{prefix}-{i}"), customer, &at, 10.0 + i as f64),
                1 => serde_json::json!({"event_id": format!("{prefix}-{i}"), "customer_id": customer,
                        "type": "contact", "at": at, "channel": "email", "offer_id": "gold-card"}),
                2 => serde_json::json!({"event_id": format!("{prefix}-{i}"), "customer_id": customer,
                        "type": "response", "at": at, "offer_id": "gold-card", "outcome": "clicked"}),
                _ => serde_json::json!({"event_id": format!("{prefix}-{i}"), "customer_id": customer,
                        "type": "consent", "at": at, "consent": {"channel": "sms", "granted": i % 8 == 3}}),
            }
        })
        .collect()
}

pub async fn conformance(store: Arc<dyn ProfileStore>) {
    let limits = ProfileLimits::default();
    let now = 1_800_000_000;

    // An unknown customer is simply absent.
    assert!(store.load(&cid("nobody")).await.unwrap().is_none());

    // The stored profile is exactly what applying the events in order gives.
    let batch = events(history("c-1", 40, "h"));
    let outcome = store.apply(&batch, now).await.unwrap();
    assert_eq!((outcome.accepted, outcome.duplicates), (40, 0));
    let mut reference = Profile::default();
    for e in &batch {
        reference.apply(e, &limits, now).unwrap();
    }
    let stored = store.load(&cid("c-1")).await.unwrap().unwrap();
    assert_eq!(*stored, reference);

    // A decision reads the same profile, less at most the agent-screen and dedup lists.
    let read = store.load_for_decision(&cid("c-1"), true).await.unwrap();
    assert!(read.planned.is_empty());
    let for_decision = read.profile.unwrap();
    let mut expected = reference.clone();
    if for_decision.recent.is_empty() {
        expected.recent.clear();
        expected.seen.clear();
    }
    assert_eq!(*for_decision, expected);
    let nobody = store.load_for_decision(&cid("nobody"), true).await.unwrap();
    assert!(nobody.profile.is_none() && nobody.planned.is_empty());

    // Planned actions are read back with the profile, in the order recorded, the newest
    // MAX_PLANNED of them.
    let planned = move |i: i64| PlannedAction {
        decision_id: DecisionId::parse(format!("d-{i}")).unwrap(),
        offer_id: OfferId::parse("gold-card").unwrap(),
        channel: Channel::Email,
        send_at: now + 60 * i,
        made_at: now,
        until: now + 3600 + 60 * i,
        counts: true,
    };
    let seen = |store: &Arc<dyn ProfileStore>, c: &str| {
        let (store, c) = (store.clone(), cid(c));
        async move {
            store
                .load_for_decision(&c, true)
                .await
                .unwrap()
                .planned_mark
        }
    };
    let before = seen(&store, "c-1").await;
    assert!(
        store
            .plan(&cid("c-1"), &[planned(0), planned(1)], &before, now)
            .await
            .unwrap()
    );
    let read = store.load_for_decision(&cid("c-1"), true).await.unwrap();
    assert_eq!(read.planned, vec![planned(0), planned(1)]);
    // A decision that read the plans before those were recorded records nothing.
    assert!(
        !store
            .plan(&cid("c-1"), &[planned(9)], &before, now)
            .await
            .unwrap()
    );
    assert_eq!(store.planned(&cid("c-1")).await.unwrap().len(), 2);
    assert_eq!(*read.profile.unwrap(), *for_decision);
    // An inbound decision does not ask for them.
    let inbound = store.load_for_decision(&cid("c-1"), false).await.unwrap();
    assert!(inbound.planned.is_empty());
    assert_eq!(*inbound.profile.unwrap(), *for_decision);
    let many: Vec<PlannedAction> = (2..2 + MAX_PLANNED as i64).map(planned).collect();
    let mark = seen(&store, "c-1").await;
    assert!(store.plan(&cid("c-1"), &many, &mark, now).await.unwrap());
    assert_eq!(
        store
            .load_for_decision(&cid("c-1"), true)
            .await
            .unwrap()
            .planned,
        many
    );
    assert_eq!(store.planned(&cid("c-1")).await.unwrap(), many);
    // A customer with plans and no profile yet; erasure removes both.
    let mark = seen(&store, "c-new").await;
    assert!(
        store
            .plan(&cid("c-new"), &[planned(0)], &mark, now)
            .await
            .unwrap()
    );
    let read = store.load_for_decision(&cid("c-new"), true).await.unwrap();
    assert!(read.profile.is_none());
    assert_eq!(read.planned, vec![planned(0)]);
    assert!(store.erase(&cid("c-new")).await.unwrap());
    assert!(
        store
            .load_for_decision(&cid("c-new"), true)
            .await
            .unwrap()
            .planned
            .is_empty()
    );
    // A decision that read a customer before they were erased (on another replica, say)
    // records nothing; one that reads them after (a customer coming back) does.
    let mark = seen(&store, "c-gone").await;
    store.erase(&cid("c-gone")).await.unwrap();
    assert!(
        !store
            .plan(&cid("c-gone"), &[planned(0)], &mark, now)
            .await
            .unwrap()
    );
    assert!(store.planned(&cid("c-gone")).await.unwrap().is_empty());
    let mark = seen(&store, "c-gone").await;
    assert!(
        store
            .plan(&cid("c-gone"), &[planned(0)], &mark, now)
            .await
            .unwrap()
    );

    // The same batch again changes nothing and is counted as duplicates.
    let again = store.apply(&batch, now + 60).await.unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 40));
    assert_eq!(*store.load(&cid("c-1")).await.unwrap().unwrap(), reference);

    // A batch mixing customers keeps each customer's events in order.
    let mut mixed = history("c-2", 10, "m2");
    mixed.extend(history("c-3", 10, "m3"));
    mixed.swap(0, 15);
    let outcome = store.apply(&events(mixed), now).await.unwrap();
    assert_eq!(outcome.accepted, 20);
    assert_eq!(store.load(&cid("c-2")).await.unwrap().unwrap().events, 10);
    assert_eq!(store.load(&cid("c-3")).await.unwrap().unwrap().events, 10);

    // Erasure removes the customer and only that customer.
    assert!(store.erase(&cid("c-2")).await.unwrap());
    assert!(store.load(&cid("c-2")).await.unwrap().is_none());
    assert!(!store.erase(&cid("c-2")).await.unwrap());
    assert!(store.load(&cid("c-3")).await.unwrap().is_some());

    // Concurrent writers to one customer lose no update.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..25 {
                let batch = events(history("hot", 4, &format!("w{w}-b{b}")));
                let o = store.apply(&batch, now).await.unwrap();
                assert_eq!(o.accepted, 4);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let hot = store.load(&cid("hot")).await.unwrap().unwrap();
    assert_eq!(hot.events, 8 * 25 * 4);
    assert_eq!(hot.purchases.count, 8 * 25);

    // Concurrent planners for one customer: each plan is recorded on a read that saw every
    // plan before it (a compare-and-set), so none is lost and none recorded twice.
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut changed = 0;
            for i in 0..5 {
                let mine = PlannedAction {
                    decision_id: DecisionId::parse(format!("w{w}-{i}")).unwrap(),
                    ..planned(i)
                };
                loop {
                    let mark = store
                        .load_for_decision(&cid("busy"), true)
                        .await
                        .unwrap()
                        .planned_mark;
                    if store
                        .plan(&cid("busy"), std::slice::from_ref(&mine), &mark, now)
                        .await
                        .unwrap()
                    {
                        break;
                    }
                    changed += 1;
                }
            }
            changed
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut ids: Vec<String> = store
        .planned(&cid("busy"))
        .await
        .unwrap()
        .iter()
        .map(|p| p.decision_id.to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);

    // The outbound index: a due action is claimed by one caller, comes back once its lease
    // lapses unreleased, and is gone once released; one not due yet waits.
    store.index_outbound();
    let mark = seen(&store, "c-due").await;
    // A service message: planned for the feed, not counted, claimed all the same.
    let due = PlannedAction {
        decision_id: DecisionId::parse("d-due").unwrap(),
        counts: false,
        ..planned(0)
    };
    let later = PlannedAction {
        decision_id: DecisionId::parse("d-later").unwrap(),
        send_at: now + 3600,
        ..planned(0)
    };
    assert!(
        store
            .plan(&cid("c-due"), &[due.clone(), later], &mark, now)
            .await
            .unwrap()
    );
    let claimed = store.claim_due(now, 10, 30).await.unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(
        (claimed[0].customer_id.as_str(), &claimed[0].action),
        ("c-due", &due)
    );
    assert!(store.claim_due(now + 1, 10, 30).await.unwrap().is_empty());
    let again = store.claim_due(now + 30, 10, 30).await.unwrap();
    assert_eq!(again, claimed, "a lapsed lease hands the action out again");
    store.release(&again).await.unwrap();
    assert!(store.claim_due(now + 100, 10, 30).await.unwrap().is_empty());
    assert_eq!(store.claim_due(now + 3600, 10, 30).await.unwrap().len(), 1);

    store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_conformance_suite() {
    conformance(Arc::new(MemoryStore::new(ProfileLimits::default()))).await;
}

pub async fn redis_store(redis: &RedisServer) -> RedisStore {
    let mut settings = StoreSettings::default();
    redis.configure(&mut settings);
    store_with(settings).await
}

/// The Redis store these settings name, with the default profile limits.
pub async fn store_with(settings: StoreSettings) -> RedisStore {
    RedisStore::connect(&settings.redis_options().unwrap(), ProfileLimits::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_passes_the_conformance_suite() {
    let redis = RedisServer::start();
    conformance(Arc::new(redis_store(&redis).await)).await;
    // Every key carries the customer's hash tag, but the shared outbound index; planned
    // actions go when the last lapses.
    for key in redis
        .keys()
        .iter()
        .filter(|k| !k.starts_with("tp:outbound:"))
    {
        assert!(
            key.starts_with("tp:{")
                && (key.ends_with("}:profile")
                    || key.ends_with("}:planned")
                    || key.ends_with("}:erased")),
            "{key}"
        );
    }
    let ttl: i64 = redis::cmd("TTL")
        .arg("tp:{c-1}:planned")
        .query(&mut redis.connection())
        .unwrap();
    assert!(ttl > 0, "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_with_100000_events_stays_within_the_byte_budget() {
    let redis = RedisServer::start();
    let store = redis_store(&redis).await;
    let memory = MemoryStore::new(ProfileLimits::default());
    let limits = ProfileLimits::default();
    let budget = limits.byte_budget();
    // Event kinds that fill every bounded list: purchases on many days, contacts and
    // responses across many offers, attributes, interactions.
    let mut all = Vec::new();
    for i in 0..100_000u64 {
        let day = i / 40;
        let at = chrono::DateTime::from_timestamp(
            1_600_000_000 + (day * 86_400 + (i % 40) * 600) as i64,
            0,
        )
        .unwrap()
        .to_rfc3339();
        let id = format!("evt-{i:08}-{}", "x".repeat(40));
        let offer = format!("offer-{:03}-{}", i % 150, "y".repeat(30));
        let e = match i % 6 {
            0 => purchase(&id, "heavy", &at, 12.5),
            1 => serde_json::json!({"event_id": id, "customer_id": "heavy", "type": "contact",
                    "at": at, "channel": "email", "offer_id": offer, "decision_id": format!("d-{i}")}),
            2 => serde_json::json!({"event_id": id, "customer_id": "heavy", "type": "response",
                    "at": at, "offer_id": offer, "outcome": "declined"}),
            3 => serde_json::json!({"event_id": id, "customer_id": "heavy", "type": "attributes",
                    "at": at, "attributes": {format!("attr_{}", i % 200): "v".repeat(100)}}),
            4 => serde_json::json!({"event_id": id, "customer_id": "heavy", "type": "interaction",
                    "at": at, "channel": "web", "name": "visit"}),
            _ => serde_json::json!({"event_id": id, "customer_id": "heavy", "type": "consent",
                    "at": at, "consent": {"channel": "sms", "granted": i % 12 == 5}}),
        };
        all.push(e);
    }
    for (k, chunk) in all.chunks(1000).enumerate() {
        let batch = events(chunk.to_vec());
        // Received over 300 hours: the de-duplication memory slides with the retry window.
        let now = 1_800_000_000 + k as i64 * 3 * 3600;
        store.apply(&batch, now).await.unwrap();
        memory.apply(&batch, now).await.unwrap();
    }
    let profile = store.load(&cid("heavy")).await.unwrap().unwrap();
    assert_eq!(profile.events, 100_000);
    assert_eq!(
        *memory.load(&cid("heavy")).await.unwrap().unwrap(),
        *profile
    );
    let encoded = touchpoint::profile::codec::encode(&profile).len();
    assert!(
        encoded <= budget,
        "encoded profile {encoded} B over the budget {budget} B"
    );
    // What Redis itself spends on the key, allocator overhead included.
    let mut c = redis.connection();
    let used: usize = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("tp:{heavy}:profile")
        .query(&mut c)
        .unwrap();
    assert!(
        used <= budget + 1024,
        "Redis uses {used} B for the profile, budget {budget} B"
    );
    eprintln!("100,000 events: profile {encoded} B encoded, {used} B in Redis, budget {budget} B");
}

/// The stored profile of `customer`, as Redis holds it (the version stamp, then the format).
fn stored_bytes(redis: &RedisServer, customer: &str) -> Vec<u8> {
    redis::cmd("GET")
        .arg(format!("tp:{{{customer}}}:profile"))
        .query(&mut redis.connection())
        .unwrap()
}

/// Profiles compressed against a store-wide dictionary made from a sample of them: every
/// one written again in format 5, markedly smaller, read back exactly by a replica that
/// started before the dictionary existed (it learns it on first sight) and by one started
/// after; from then on every replica's writes are compressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_compress_against_a_dictionary_every_replica_learns() {
    use std::time::Duration;
    use touchpoint::profile::Profiles;

    let redis = RedisServer::start();
    let early = redis_store(&redis).await;
    let memory = MemoryStore::new(ProfileLimits::default());
    let now = 1_800_000_000;
    let names: Vec<String> = (0..300).map(|c| format!("cust-{c:04}")).collect();
    let mut all = Vec::new();
    for (c, name) in names.iter().enumerate() {
        all.extend(history(name, 24 + c % 7, &format!("e{c}")));
    }
    for chunk in all.chunks(1000) {
        let batch = events(chunk.to_vec());
        early.apply(&batch, now).await.unwrap();
        memory.apply(&batch, now).await.unwrap();
    }
    let size =
        |redis: &RedisServer| -> usize { names.iter().map(|n| stored_bytes(redis, n).len()).sum() };
    let before = size(&redis);
    assert!(names.iter().all(|n| stored_bytes(&redis, n)[8] == 4));

    let importer = Profiles::new(Arc::new(redis_store(&redis).await), Duration::from_secs(5));
    assert!(importer.wants_dictionary());
    let customers: Vec<CustomerId> = names.iter().map(|n| cid(n)).collect();
    // Too few profiles to make a dictionary of: nothing changes.
    assert_eq!(importer.compress(&customers[..150], now).await.unwrap(), 0);
    assert!(importer.wants_dictionary());
    assert_eq!(importer.compress(&customers, now).await.unwrap(), 300);
    assert!(!importer.wants_dictionary());
    assert!(names.iter().all(|n| stored_bytes(&redis, n)[8] == 5));
    let after = size(&redis);
    assert!(
        after * 10 < before * 8,
        "{after} bytes compressed, {before} before"
    );

    // The replica that started with no dictionary reads every profile as applied, for a
    // decision too, and writes compressed from now on.
    assert!(early.wants_dictionary());
    for c in &customers {
        let stored = early.load(c).await.unwrap().unwrap();
        assert_eq!(*stored, *memory.load(c).await.unwrap().unwrap());
    }
    assert!(!early.wants_dictionary());
    let read = early.load_for_decision(&customers[9], true).await.unwrap();
    assert_eq!(read.profile.unwrap().events, (24 + 9 % 7) as u64);
    early
        .apply(&events(history("newcomer", 24, "n")), now)
        .await
        .unwrap();
    assert_eq!(stored_bytes(&redis, "newcomer")[8], 5);
    // One started now knows the dictionary from the start.
    let late = redis_store(&redis).await;
    assert!(!late.wants_dictionary());
    assert_eq!(
        *late.load(&cid("newcomer")).await.unwrap().unwrap(),
        *early.load(&cid("newcomer")).await.unwrap().unwrap()
    );

    // The store loses the dictionaries (a key deleted, a failover before replication): a
    // replica started then cannot read the profiles, and says why; the next periodic check
    // of one that knows them writes them back, and every profile reads again.
    let _: () = redis::cmd("DEL")
        .arg("tp:dictionaries")
        .query(&mut redis.connection())
        .unwrap();
    let lost = redis_store(&redis).await;
    let err = lost.load(&customers[3]).await.unwrap_err().to_string();
    assert!(err.contains("dictionary"), "{err}");
    late.check_dictionaries(now).await.unwrap();
    let restored: i64 = redis::cmd("HLEN")
        .arg("tp:dictionaries")
        .query(&mut redis.connection())
        .unwrap();
    assert_eq!(restored, 2, "the dictionary and `current`");
    let fresh = redis_store(&redis).await;
    assert_eq!(
        *fresh.load(&customers[3]).await.unwrap().unwrap(),
        *memory.load(&customers[3]).await.unwrap().unwrap()
    );
}

/// A store fed by events alone (the service's) makes its dictionary of the first
/// [`AUTO_SAMPLES`] customers' profiles it writes, in the background; from then on every
/// profile written is compressed, and reads back as applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_fed_by_events_makes_its_dictionary_of_the_first_profiles_it_writes() {
    use touchpoint::profile::redis_store::AUTO_SAMPLES;

    let redis = RedisServer::start();
    let store = redis_store(&redis).await;
    let memory = MemoryStore::new(ProfileLimits::default());
    store.gather_dictionary_samples();
    let now = 1_800_000_000;
    let names: Vec<String> = (0..AUTO_SAMPLES + 100)
        .map(|c| format!("live-{c:05}"))
        .collect();
    let mut all = Vec::new();
    for (c, name) in names.iter().enumerate() {
        all.extend(history(name, 10 + c % 5, &format!("l{c}")));
    }
    for chunk in all.chunks(1000) {
        let batch = events(chunk.to_vec());
        store.apply(&batch, now).await.unwrap();
        memory.apply(&batch, now).await.unwrap();
    }
    let started = std::time::Instant::now();
    while store.wants_dictionary() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no dictionary made"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Written before: as it was, until written again.
    assert_eq!(stored_bytes(&redis, &names[0])[8], 4);
    let more = events(history(&names[0], 3, "more"));
    store.apply(&more, now).await.unwrap();
    memory.apply(&more, now).await.unwrap();
    assert_eq!(stored_bytes(&redis, &names[0])[8], 5);
    for name in [&names[0], &names[1], &names[AUTO_SAMPLES + 99]] {
        assert_eq!(
            *store.load(&cid(name)).await.unwrap().unwrap(),
            *memory.load(&cid(name)).await.unwrap().unwrap()
        );
    }
    // Another replica started now reads them and writes compressed.
    let other = redis_store(&redis).await;
    assert!(!other.wants_dictionary());
}

/// Planned actions an earlier version stored (entry format 1) go like today's: a withdrawn
/// or erased action leaves neither its entry in the customer's list nor its entry in the
/// outbound index behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_actions_stored_in_format_1_are_withdrawn_and_erased_too() {
    let redis = RedisServer::start();
    let store = redis_store(&redis).await;
    store.index_outbound();
    let now = chrono::Utc::now().timestamp();
    let customer = cid("old-plans");
    let action = |i: i64| PlannedAction {
        decision_id: DecisionId::parse(format!("d-old-{i}")).unwrap(),
        offer_id: OfferId::parse("gold-card").unwrap(),
        channel: Channel::Email,
        send_at: now + 3600 + i,
        made_at: now,
        until: now + 7200 + i,
        counts: true,
    };
    let mark = store
        .load_for_decision(&customer, true)
        .await
        .unwrap()
        .planned_mark;
    assert!(
        store
            .plan(&customer, &[action(0)], &mark, now)
            .await
            .unwrap()
    );
    let due: Vec<String> = redis
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("tp:outbound:due"))
        .collect();
    assert_eq!(due.len(), 1, "{due:?}");
    let list = "tp:{old-plans}:planned";
    let mut c = redis.connection();
    // As format 1 stored them: in the customer's list and in the index.
    let store_v1 = |c: &mut crate::redis_server::TestConnection, i: i64| {
        let v1 = action(i).encodings().pop().unwrap();
        assert_eq!(v1[0], 1);
        let mut entry = b"old-plans\n".to_vec();
        entry.extend(&v1);
        let _: () = redis::cmd("RPUSH").arg(list).arg(&v1).query(c).unwrap();
        let _: () = redis::cmd("ZADD")
            .arg(&due[0])
            .arg(now + 3600 + i)
            .arg(entry)
            .query(c)
            .unwrap();
    };
    store_v1(&mut c, 1);
    assert_eq!(
        store.planned(&customer).await.unwrap(),
        vec![action(0), action(1)]
    );
    let zcard = |c: &mut crate::redis_server::TestConnection| -> usize {
        redis::cmd("ZCARD").arg(&due[0]).query(c).unwrap()
    };
    assert_eq!(zcard(&mut c), 2);

    store.withdraw(&customer, &[action(1)]).await.unwrap();
    assert_eq!(store.planned(&customer).await.unwrap(), vec![action(0)]);
    assert_eq!(zcard(&mut c), 1);

    store_v1(&mut c, 2);
    assert!(store.erase(&customer).await.unwrap());
    assert_eq!(zcard(&mut c), 0);
    let left: usize = redis::cmd("LLEN").arg(list).query(&mut c).unwrap();
    assert_eq!(left, 0);
}
