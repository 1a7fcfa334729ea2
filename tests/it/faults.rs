//! Faults: Redis killed or hung mid-run. The service answers 503 (never hangs, never 500),
//! and no acknowledged event is lost or applied twice.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{RedisServer, purchase, spawn_app, test_settings};

#[actix_web::test]
async fn killing_redis_mid_run_gives_503s_and_loses_no_acknowledged_event() {
    let mut redis = RedisServer::start_durable();
    let app = Rc::new(spawn_app(test_settings(Some(&redis))).await);
    let acknowledged = Rc::new(Cell::new(0usize));
    let unavailable = Rc::new(Cell::new(0usize));
    const WRITERS: usize = 3;
    const BATCHES: usize = 40;
    const PER_BATCH: usize = 20;
    const CUSTOMERS: usize = 10;

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let app = app.clone();
        let acknowledged = acknowledged.clone();
        let unavailable = unavailable.clone();
        writers.push(actix_web::rt::spawn(async move {
            for b in 0..BATCHES {
                let events: Vec<_> = (0..PER_BATCH)
                    .map(|i| {
                        let n = (w * BATCHES + b) * PER_BATCH + i;
                        purchase(
                            &format!("e{n}"),
                            &format!("c-{}", n % CUSTOMERS),
                            &format!("2026-06-{:02}T12:00:00Z", 1 + n % 28),
                            1.0,
                        )
                    })
                    .collect();
                let body = json!({ "events": events });
                // A client that retries until the service acknowledges, as the contract asks
                // (within a minute: an outage that outlasts the restart is a failure).
                let first_try = Instant::now();
                loop {
                    let (status, answer) = app.post_json("/v1/events", &body).await;
                    assert!(
                        status == 202 || first_try.elapsed() < Duration::from_secs(60),
                        "still {status} a minute after the first try: {answer}"
                    );
                    match status {
                        202 => {
                            let n = answer["accepted"].as_u64().unwrap()
                                + answer["duplicates"].as_u64().unwrap();
                            assert_eq!(n as usize, PER_BATCH);
                            acknowledged.set(acknowledged.get() + 1);
                            break;
                        }
                        503 => {
                            assert_eq!(answer["error"]["code"], "store_unavailable");
                            unavailable.set(unavailable.get() + 1);
                            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
                        }
                        other => panic!("unexpected status {other}: {answer}"),
                    }
                }
            }
        }));
    }

    while acknowledged.get() < 15 {
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    redis.kill();
    // While Redis is down the writers keep trying; readiness reports the outage.
    let down_since = Instant::now();
    let (status, answer) = app.get("/readyz").await;
    assert_eq!(status, 503, "{answer}");
    eprintln!(
        "readyz answered 503 {:?} after the kill",
        down_since.elapsed()
    );
    actix_web::rt::time::sleep(Duration::from_millis(400)).await;
    redis.restart();
    for w in writers {
        w.await.unwrap();
    }
    assert!(unavailable.get() > 0, "the writers never saw the outage");
    assert_eq!(acknowledged.get(), WRITERS * BATCHES);

    // Every event sent was applied exactly once: none lost in the kill, none doubled by retries.
    let total_events = WRITERS * BATCHES * PER_BATCH;
    let mut applied = 0;
    for c in 0..CUSTOMERS {
        // A cluster restarted whole is up before every client connection has found it
        // again: a read may meet one still reconnecting (503) for a moment.
        let mut answer = app.get(&format!("/v1/customers/c-{c}")).await;
        for _ in 0..50 {
            if answer.0 != 503 {
                break;
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            answer = app.get(&format!("/v1/customers/c-{c}")).await;
        }
        let (status, view) = answer;
        assert_eq!(status, 200);
        assert_eq!(
            view["events"].as_u64().unwrap() as usize,
            total_events / CUSTOMERS
        );
        assert_eq!(
            view["purchases"]["count"].as_u64().unwrap() as usize,
            total_events / CUSTOMERS
        );
        applied += view["events"].as_u64().unwrap() as usize;
    }
    assert_eq!(applied, total_events);
    eprintln!("{} answers were 503 during the outage", unavailable.get());
}

#[actix_web::test]
async fn a_hung_redis_is_answered_with_503_within_the_time_limits() {
    let redis = RedisServer::start();
    let mut settings = test_settings(Some(&redis));
    settings.store.response_timeout_ms = 100;
    settings.store.operation_timeout_ms = 300;
    let app = spawn_app(settings).await;
    let (status, _) = app
        .post_json(
            "/v1/events",
            &purchase("before", "c-1", "2026-01-01T00:00:00Z", 1.0),
        )
        .await;
    assert_eq!(status, 202);

    redis.pause();
    let started = Instant::now();
    let (status, answer) = app
        .post_json(
            "/v1/events",
            &purchase("during", "c-1", "2026-01-01T01:00:00Z", 1.0),
        )
        .await;
    let waited = started.elapsed();
    let (ready, _) = app.get("/readyz").await;
    redis.resume();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "store_unavailable");
    assert_eq!(ready, 503);
    eprintln!("a hung Redis was answered with 503 after {waited:?}");

    // After the outage the same event goes in once.
    loop {
        let (status, answer) = app
            .post_json(
                "/v1/events",
                &purchase("during", "c-1", "2026-01-01T01:00:00Z", 1.0),
            )
            .await;
        if status == 202 {
            let (_, view) = app.get("/v1/customers/c-1").await;
            assert_eq!(view["events"], 2, "{answer}");
            break;
        }
        assert_eq!(status, 503);
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// After Redis restarts, the first request on each old connection used to answer 503: a
/// read on a broken connection is tried once more, on the connection made again.
#[actix_web::test]
async fn reads_after_a_redis_restart_are_answered() {
    let mut redis = RedisServer::start_durable();
    let app = spawn_app(test_settings(Some(&redis))).await;
    let (status, _) = app
        .post_json(
            "/v1/events",
            &purchase("e1", "c-1", "2026-06-01T12:00:00Z", 3.0),
        )
        .await;
    assert_eq!(status, 202);
    // Every worker's connection in use before the restart.
    for _ in 0..8 {
        assert_eq!(app.get("/v1/customers/c-1").await.0, 200);
        let (_, d) = app
            .post_json(
                "/v1/decisions",
                &json!({"customer_id": "c-1", "touchpoint": "web"}),
            )
            .await;
        assert_eq!(d["degraded"], false);
    }
    redis.restart();
    for i in 0..8 {
        let (status, view) = app.get("/v1/customers/c-1").await;
        assert_eq!(status, 200, "request {i} after the restart: {view}");
        let (status, d) = app
            .post_json(
                "/v1/decisions",
                &json!({"customer_id": "c-1", "touchpoint": "web"}),
            )
            .await;
        assert_eq!(
            (status, &d["degraded"]),
            (200, &json!(false)),
            "decision {i}: {d}"
        );
    }
    app.stop().await;
}

/// `rediss://` was refused; the store speaks TLS to a Redis that takes nothing else,
/// trusting a private CA from `store.tls_ca_file`.
#[actix_web::test]
async fn the_store_speaks_tls_to_redis() {
    let redis = RedisServer::start_tls();
    let mut settings = test_settings(Some(&redis));
    assert!(settings.store.redis_url.starts_with("rediss://"));
    settings.store.tls_ca_file = redis.tls_ca();
    let app = spawn_app(settings).await;
    let (status, body) = app
        .post_json(
            "/v1/events",
            &purchase("e1", "c-1", "2026-06-01T12:00:00Z", 3.0),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, view) = app.get("/v1/customers/c-1").await;
    assert_eq!((status, &view["purchases"]["count"]), (200, &json!(1)));
    app.stop().await;
    // Without the CA the server's certificate is not trusted: no store, no service.
    let untrusted = touchpoint::startup::Application::build(test_settings(Some(&redis))).await;
    assert!(untrusted.is_err());
}
