//! The outbound feed: planned actions handed to the sender when their send time comes,
//! exactly once with two replicas publishing, to the store's Redis stream or to NATS
//! JetStream.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::decisions_api::known_customer;
use crate::helpers::{RedisServer, TestApp, spawn_app, test_settings};
use crate::nats::NatsServer;
use touchpoint::outbound::Feed;

fn feed_settings(
    redis: &RedisServer,
    feed: Feed,
    nats: Option<&NatsServer>,
) -> touchpoint::settings::Settings {
    let mut s = test_settings(Some(redis));
    s.decision.exploration.epsilon = 0.0;
    // Send times within the hour after the decision, which is made an hour ago: due now.
    s.decision.contact_policy.horizon_hours = 1;
    s.decision.contact_policy.quiet_hours_start = 0;
    s.decision.contact_policy.quiet_hours_end = 0;
    s.outbound.feed = feed;
    s.outbound.poll_ms = 50;
    if let Some(n) = nats {
        s.outbound.nats_url = n.url();
    }
    s
}

/// Plans outbound actions for `n` customers, half on each replica: every action answered
/// (all on outbound channels) as (decision, offer, channel), marketing and service messages
/// alike (a service message does not count toward the contact limits, but it is sent all
/// the same); and how many are service messages.
async fn plan(replicas: &[TestApp; 2], n: usize) -> (Vec<(String, String, String)>, usize) {
    let at = (chrono::Utc::now() - chrono::Duration::minutes(61)).to_rfc3339();
    let mut planned = Vec::new();
    let mut service = 0;
    for c in 0..n {
        let app = &replicas[c % 2];
        let id = format!("c-out{c}");
        known_customer(app, &id).await;
        let (status, d) = app
            .post_json(
                "/v1/decisions",
                &json!({"customer_id": id, "channels": ["email", "sms"], "limit": 3, "at": at,
                        "explain": true}),
            )
            .await;
        assert_eq!(status, 200, "{d}");
        for a in d["actions"].as_array().unwrap() {
            service += usize::from(a["explanation"]["rules"]["service"] == true);
            planned.push((
                d["decision_id"].as_str().unwrap().to_owned(),
                a["offer_id"].as_str().unwrap().to_owned(),
                a["channel"].as_str().unwrap().to_owned(),
            ));
        }
    }
    planned.sort();
    (planned, service)
}

fn key_of(m: &serde_json::Value) -> (String, String, String) {
    (
        m["decision_id"].as_str().unwrap().to_owned(),
        m["offer_id"].as_str().unwrap().to_owned(),
        m["channel"].as_str().unwrap().to_owned(),
    )
}

#[actix_web::test]
async fn due_actions_reach_the_redis_stream_once_with_two_replicas() {
    let redis = RedisServer::start();
    let replicas = [
        spawn_app(feed_settings(&redis, Feed::Redis, None)).await,
        spawn_app(feed_settings(&redis, Feed::Redis, None)).await,
    ];
    let (planned, service) = plan(&replicas, 20).await;
    assert!(planned.len() >= 10, "{planned:?}");
    assert!(service > 0, "{planned:?}");
    // The stream, or on a cluster its shards (`tp:outbound:stream:{sN}`).
    let read = || {
        let mut actions = Vec::new();
        for key in redis.keys() {
            if key != "tp:outbound:stream" && !key.starts_with("tp:outbound:stream:{s") {
                continue;
            }
            let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                .arg(&key)
                .arg("-")
                .arg("+")
                .query(&mut redis.connection())
                .unwrap();
            actions.extend(reply.ids.iter().map(|e| match e.map.get("action") {
                Some(redis::Value::BulkString(b)) => {
                    serde_json::from_slice::<serde_json::Value>(b).unwrap()
                }
                other => panic!("{other:?}"),
            }));
        }
        actions
    };
    let started = Instant::now();
    let mut sent = read();
    while sent.len() < planned.len() && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        sent = read();
    }
    // A little longer: nothing comes twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = read();
    let mut got: Vec<_> = sent.iter().map(key_of).collect();
    got.sort();
    assert_eq!(got, planned);
    for m in &sent {
        assert!(
            m["customer_id"].as_str().unwrap().starts_with("c-out"),
            "{m}"
        );
        let send_at = chrono::DateTime::parse_from_rfc3339(m["send_at"].as_str().unwrap()).unwrap();
        let expires =
            chrono::DateTime::parse_from_rfc3339(m["expires_at"].as_str().unwrap()).unwrap();
        assert!(
            send_at <= chrono::Utc::now() && expires > chrono::Utc::now(),
            "{m}"
        );
    }
    // An erased customer's actions leave the stream (just after the erasure answers); the
    // others' stay.
    let gone = sent[0]["customer_id"].as_str().unwrap().to_owned();
    let theirs = sent
        .iter()
        .filter(|m| m["customer_id"] == gone.as_str())
        .count();
    assert_eq!(
        replicas[1].delete(&format!("/v1/customers/{gone}")).await,
        204
    );
    let mut left = read();
    for _ in 0..100 {
        if left.len() == sent.len() - theirs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = read();
    }
    assert_eq!(left.len(), sent.len() - theirs);
    assert!(left.iter().all(|m| m["customer_id"] != gone.as_str()));
    for app in replicas {
        app.stop().await;
    }
}

#[actix_web::test]
async fn due_actions_reach_nats_once_with_two_replicas() {
    let redis = RedisServer::start();
    let nats = NatsServer::start();
    let replicas = [
        spawn_app(feed_settings(&redis, Feed::Nats, Some(&nats))).await,
        spawn_app(feed_settings(&redis, Feed::Nats, Some(&nats))).await,
    ];
    let (planned, service) = plan(&replicas, 20).await;
    assert!(planned.len() >= 10, "{planned:?}");
    assert!(service > 0, "{planned:?}");
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let started = Instant::now();
    let count = || async {
        match js.get_stream("TOUCHPOINT_OUTBOUND").await {
            Ok(mut s) => s.info().await.unwrap().state.messages as usize,
            Err(_) => 0,
        }
    };
    while count().await < planned.len() && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut got: Vec<_> = crate::nats::stream_messages(&js, "TOUCHPOINT_OUTBOUND")
        .await
        .iter()
        .map(|m| key_of(&serde_json::from_slice(&m.payload).unwrap()))
        .collect();
    got.sort();
    assert_eq!(got, planned);
    for app in replicas {
        app.stop().await;
    }
}
