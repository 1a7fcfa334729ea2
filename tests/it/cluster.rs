//! The store on a real Redis Cluster (three masters, a replica each, started here): the
//! conformance suite and the planner's API test unchanged, replicas that agree on contact
//! limits, and a master killed under event load.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use touchpoint::profile::redis_store::RedisStore;
use touchpoint::profile::{CustomerId, ProfileStore};
use touchpoint::settings::{Settings, StoreSettings};

use crate::decisions_api::{
    known_customer, planned_actions_count_toward_the_limits_until_sent, planner_settings,
};
use crate::helpers::{TestApp, spawn_app, test_settings};
use crate::redis_server::RedisCluster;

async fn cluster_store(cluster: &RedisCluster) -> RedisStore {
    crate::store_conformance::store_with(StoreSettings {
        redis_cluster_nodes: cluster.urls(),
        ..StoreSettings::default()
    })
    .await
}

fn on_cluster(mut settings: Settings, cluster: &RedisCluster) -> Settings {
    settings.store.redis_url.clear();
    settings.store.redis_cluster_nodes = cluster.urls();
    settings
}

/// Starts a cluster off the async runtime's thread (it waits for the nodes).
async fn start_cluster() -> RedisCluster {
    tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_store_passes_the_conformance_suite() {
    let cluster = start_cluster().await;
    crate::store_conformance::conformance(Arc::new(cluster_store(&cluster).await)).await;
    // Every customer key carries its hash tag, and each shard of a shared key its own; the
    // keys are spread over the masters.
    let keys = cluster.keys();
    assert!(!keys.is_empty());
    for key in &keys {
        let shared = key.starts_with("tp:outbound:") && key.contains(":{s");
        assert!(key.starts_with("tp:{") || shared, "{key}");
    }
    let masters: std::collections::HashSet<usize> =
        keys.iter().map(|k| cluster.master_of(k)).collect();
    assert!(masters.len() >= 2, "{keys:?}");
}

/// The planner test of the API suite, unchanged, on the cluster; and the decision log's
/// stream split over the cluster by customer, erasure taking a customer's records out.
#[actix_web::test]
async fn the_service_decides_and_logs_on_a_cluster() {
    let cluster = start_cluster().await;
    let app = spawn_app(on_cluster(planner_settings(None), &cluster)).await;
    planned_actions_count_toward_the_limits_until_sent(&app).await;
    app.stop().await;

    let mut settings = on_cluster(test_settings(None), &cluster);
    settings.decision.log.sink = touchpoint::decision::log::LogSink::Redis;
    let app = spawn_app(settings).await;
    for i in 0..24 {
        let id = format!("c-log-{i}");
        known_customer(&app, &id).await;
        let (status, d) = app
            .post_json(
                "/v1/decisions",
                &json!({"customer_id": id, "touchpoint": "web"}),
            )
            .await;
        assert_eq!(status, 200, "{d}");
        assert_eq!(d["degraded"], false, "{d}");
    }
    let records = |cluster: &RedisCluster| -> HashMap<String, usize> {
        let mut by_customer = HashMap::new();
        for key in cluster
            .keys()
            .iter()
            .filter(|k| k.starts_with("tp:decisions"))
        {
            let master = &cluster.nodes[cluster.master_of(key)];
            let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                .arg(key)
                .arg("-")
                .arg("+")
                .query(&mut master.connection())
                .unwrap();
            for entry in reply.ids {
                let Some(redis::Value::BulkString(bytes)) = entry.map.get("decision") else {
                    panic!("a record without its field in {key}");
                };
                let record: serde_json::Value = serde_json::from_slice(bytes).unwrap();
                *by_customer
                    .entry(record["customer_id"].as_str().unwrap().to_owned())
                    .or_insert(0) += 1;
            }
        }
        by_customer
    };
    // The writer batches: wait for the 24 records.
    let mut seen = HashMap::new();
    for _ in 0..100 {
        seen = records(&cluster);
        if seen.values().sum::<usize>() == 24 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen.len(), 24, "{seen:?}");
    let streams: Vec<String> = cluster
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("tp:decisions"))
        .collect();
    assert!(streams.len() > 1, "one stream for all: {streams:?}");
    assert_eq!(app.delete("/v1/customers/c-log-3").await, 204);
    let after = records(&cluster);
    assert_eq!(after.get("c-log-3"), None);
    assert_eq!(after.len(), 23);
    app.stop().await;
}

/// Two replicas against one cluster, many outbound decisions for one customer at once,
/// half to each: the email limit (2 in 3 days here) holds, because each decision's plans
/// are recorded only on the plans it read, and the losers decide again.
#[actix_web::test]
async fn two_replicas_keep_every_contact_limit() {
    let cluster = start_cluster().await;
    let replicas = [
        spawn_app(on_cluster(planner_settings(None), &cluster)).await,
        spawn_app(on_cluster(planner_settings(None), &cluster)).await,
    ];
    known_customer(&replicas[0], "c-race").await;
    let ask = json!({"customer_id": "c-race", "channels": ["email"], "limit": 1, "explain": true});
    let asks = (0..16).map(|i| {
        let app: &TestApp = &replicas[i % 2];
        let ask = ask.clone();
        async move { app.post_json("/v1/decisions", &ask).await }
    });
    let answers = futures_util::future::join_all(asks).await;
    let (mut marketing, mut service) = (0, 0);
    for (status, d) in &answers {
        assert_eq!(*status, 200, "{d}");
        for a in d["actions"].as_array().unwrap() {
            match a["explanation"]["rules"]["service"].as_bool() {
                Some(false) => marketing += 1,
                _ => service += 1,
            }
        }
    }
    assert_eq!(marketing, 2, "{answers:?}");
    // Every action answered is planned (for the outbound feed); only the marketing ones
    // count toward the contact limits, and the service messages keep their offers' caps
    // (at most 2 each in 14 or 30 days, the shipped catalog's).
    let store = cluster_store(&cluster).await;
    let planned = store
        .planned(&CustomerId::parse("c-race").unwrap())
        .await
        .unwrap();
    assert_eq!(planned.len(), marketing + service, "{planned:?}");
    assert_eq!(
        planned.iter().filter(|p| p.counts).count(),
        2,
        "{planned:?}"
    );
    for app in replicas {
        app.stop().await;
    }
}

/// Events posted without pause while the master of some customers is killed: with
/// `store.wait_replicas = 1` every event answered 202 is in the store after the failover,
/// and decisions answer throughout (degraded at worst). The promoted replica has no
/// replica of its own until the killed node comes back (as its replica), so its shard's
/// writes are refused until then: that is what `wait_replicas` asks for.
#[actix_web::test]
async fn a_master_killed_under_event_load_loses_no_acknowledged_event() {
    let mut cluster = start_cluster().await;
    let mut settings = on_cluster(test_settings(None), &cluster);
    settings.store.wait_replicas = 1;
    settings.store.operation_timeout_ms = 2000;
    let app = spawn_app(settings).await;

    let victim = cluster.master_of("tp:{c-0-0}:profile");
    let mut acknowledged: Vec<(String, usize)> = Vec::new();
    let (mut refused, mut decisions, mut degraded) = (0, 0, 0);
    let started = std::time::Instant::now();
    let mut killed = false;
    let mut round = 0;
    let mut after_kill = 0;
    let mut back = false;
    while started.elapsed() < Duration::from_secs(9) {
        if !killed && started.elapsed() > Duration::from_secs(1) {
            cluster.nodes[victim].kill();
            killed = true;
        }
        if killed && !back && started.elapsed() > Duration::from_secs(4) {
            cluster.nodes[victim].restart();
            back = true;
        }
        // Eight customers a round, two events each.
        let mut events = Vec::new();
        for c in 0..8 {
            let customer = format!("c-{round}-{c}");
            for e in 0..2 {
                events.push(crate::helpers::purchase(
                    &format!("e-{round}-{c}-{e}"),
                    &customer,
                    "2026-11-20T10:00:00Z",
                    10.0,
                ));
            }
        }
        let (status, body) = app
            .post_json("/v1/events", &json!({"events": events}))
            .await;
        match status {
            202 => {
                acknowledged.extend((0..8).map(|c| (format!("c-{round}-{c}"), 2)));
                if killed {
                    after_kill += 1;
                }
            }
            503 => refused += 1,
            other => panic!("{other}: {body}"),
        }
        let (status, d) = app
            .post_json(
                "/v1/decisions",
                &json!({"customer_id": format!("c-{}-1", round / 2), "touchpoint": "web"}),
            )
            .await;
        assert_eq!(status, 200, "{d}");
        decisions += 1;
        if d["degraded"] == true {
            degraded += 1;
        }
        round += 1;
    }
    assert!(killed && back);
    assert!(after_kill > 0, "no event acknowledged after the failover");
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    })
    .await
    .unwrap();
    let store = cluster_store(&cluster).await;
    assert!(
        acknowledged.len() > 100,
        "{} acknowledged",
        acknowledged.len()
    );
    for (customer, events) in &acknowledged {
        let profile = store
            .load(&CustomerId::parse(customer).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{customer}: {e}"));
        let got = profile.map_or(0, |p| p.events as usize);
        assert_eq!(got, *events, "{customer} lost acknowledged events");
    }
    eprintln!(
        "{} batches acknowledged ({after_kill} after the kill), {refused} refused during the failover; {decisions} decisions, {degraded} degraded",
        acknowledged.len() / 8
    );
    app.stop().await;
}

/// A master that does not answer holds back the actions of its own shards of the outbound
/// index only: the others' are claimed at once (failing the whole claim would have left
/// them leased, and unsent, until the lease lapsed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_master_holds_back_only_its_own_outbound_actions() {
    use touchpoint::profile::planned::PlannedAction;
    use touchpoint::profile::redis_conn::Layout;
    use touchpoint::profile::{Channel, DecisionId, OfferId};

    let cluster = start_cluster().await;
    let store = crate::store_conformance::store_with(StoreSettings {
        redis_cluster_nodes: cluster.urls(),
        response_timeout_ms: 300,
        ..StoreSettings::default()
    })
    .await;
    store.index_outbound();
    let now = chrono::Utc::now().timestamp();
    let customers: Vec<String> = (0..24).map(|i| format!("c-due-{i}")).collect();
    for (i, c) in customers.iter().enumerate() {
        let id = CustomerId::parse(c.as_str()).unwrap();
        let mark = store
            .load_for_decision(&id, true)
            .await
            .unwrap()
            .planned_mark;
        let action = PlannedAction {
            decision_id: DecisionId::parse(format!("d-{i}")).unwrap(),
            offer_id: OfferId::parse("gold-card").unwrap(),
            channel: Channel::Email,
            send_at: now - 10,
            made_at: now - 60,
            until: now + 3600,
            counts: true,
        };
        assert!(store.plan(&id, &[action], &mark, now).await.unwrap());
    }
    // The master of one index shard stops answering (not long enough for a failover).
    let layout = Layout::for_cluster(true);
    let index_key = |c: &str| layout.key("tp:outbound:due", layout.shard_of(c));
    let silent = cluster.master_of(&index_key(&customers[0]));
    let (held, free): (Vec<&String>, Vec<&String>) = customers
        .iter()
        .partition(|c| cluster.master_of(&index_key(c)) == silent);
    assert!(!free.is_empty() && !held.is_empty());
    cluster.nodes[silent].pause();
    let claimed = store.claim_due(now, 100, 30).await;
    cluster.nodes[silent].resume();
    let claimed = claimed.expect("the answering shards' actions");
    let mut got: Vec<String> = claimed
        .iter()
        .map(|a| a.customer_id.as_str().to_owned())
        .collect();
    got.sort();
    let mut expected: Vec<String> = free.into_iter().cloned().collect();
    expected.sort();
    assert_eq!(got, expected);
    // Those sent, and the silent master back: its actions are claimed in their turn, at the
    // latest once the lease lapses (the claim it did not answer in time may have run).
    // On a loaded machine the pause can outlast the node timeout: the cluster then says it
    // is down until the nodes see the master again, and the release is retried meanwhile.
    let mut released = store.release(&claimed).await;
    for _ in 0..100 {
        if released.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        released = store.release(&claimed).await;
    }
    released.unwrap();
    let mut rest: Vec<String> = Vec::new();
    for _ in 0..50 {
        if let Ok(more) = store.claim_due(now + 31, 100, 30).await {
            rest.extend(more.into_iter().map(|a| a.customer_id.as_str().to_owned()));
        }
        if rest.len() >= held.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rest.sort();
    let mut held: Vec<String> = held.into_iter().cloned().collect();
    held.sort();
    assert_eq!(rest, held);
}
