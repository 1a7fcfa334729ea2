//! `POST /v1/events` and `GET/DELETE /v1/customers/{id}` over real HTTP.

use serde_json::json;

use crate::helpers::{RedisServer, purchase, spawn_app, test_settings};

#[actix_web::test]
async fn each_invalid_field_gets_a_400_naming_it() {
    let app = spawn_app(test_settings(None)).await;
    let ok = purchase("e1", "c-1", "2026-11-22T10:15:00Z", 42.5);
    let mut cases = Vec::new();
    for (field, bad, code) in [
        ("event_id", json!(null), "missing_field"),
        ("event_id", json!("x".repeat(129)), "too_long"),
        ("customer_id", json!("c{1}"), "bad_character"),
        ("type", json!("purchased"), "unknown_type"),
        ("at", json!("22/11/2026"), "invalid_time"),
        ("amount", json!(-1), "invalid_amount"),
        ("amount", json!("12"), "wrong_type"),
        ("channel", json!("pigeon"), "unknown_channel"),
    ] {
        let mut e = ok.clone();
        if bad.is_null() {
            e.as_object_mut().unwrap().remove(field);
        } else {
            e[field] = bad;
        }
        cases.push((e, field.to_owned(), code));
    }
    let batch_error = json!({"events": [ok.clone(), {"event_id": "e2", "customer_id": "c-1",
        "type": "consent", "at": "2026-11-22T10:15:00Z", "consent": {"channel": "sms", "granted": "yes"}}]});
    cases.push((
        batch_error,
        "events[1].consent.granted".into(),
        "wrong_type",
    ));
    for (body, field, code) in cases {
        let (status, answer) = app.post_json("/v1/events", &body).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"], json!(field), "{answer}");
        assert_eq!(answer["error"]["code"], json!(code), "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().len() > 5);
    }
    // Nothing of a refused batch was applied.
    let (status, _) = app.get("/v1/customers/c-1").await;
    assert_eq!(status, 404);

    let (status, answer) = app.post_raw("/v1/events", "{not json".into()).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("malformed_json"))
    );
    assert_eq!(answer["error"]["field"], json!(null));
    app.stop().await;
}

#[actix_web::test]
async fn a_body_over_the_limit_gets_a_413_in_the_error_format() {
    let mut settings = test_settings(None);
    settings.server.max_body_bytes = 4096;
    let app = spawn_app(settings).await;
    let events: Vec<_> = (0..100)
        .map(|i| purchase(&format!("e{i}"), "c", "2026-01-01T00:00:00Z", 1.0))
        .collect();
    let (status, answer) = app
        .post_json("/v1/events", &json!({"events": events}))
        .await;
    assert_eq!(status, 413);
    assert_eq!(answer["error"]["code"], "payload_too_large");
    app.stop().await;
}

#[actix_web::test]
async fn events_update_the_profile_that_the_customer_view_shows() {
    let app = spawn_app(test_settings(None)).await;
    let batch = json!({"events": [
        {"event_id": "a1", "customer_id": "c-42", "type": "attributes", "at": "2026-11-01T08:00:00Z",
         "attributes": {"age_band": "35-44", "timezone": "Europe/London", "vip": true}},
        {"event_id": "a2", "customer_id": "c-42", "type": "consent", "at": "2026-11-01T08:00:00Z",
         "consent": {"channel": "email", "granted": true}},
        purchase("p1", "c-42", "2026-11-02T10:00:00Z", 30.0),
        purchase("p2", "c-42", "2026-11-02T18:00:00Z", 10.0),
        purchase("p3", "c-42", "2026-11-09T10:00:00Z", 50.0),
        {"event_id": "k1", "customer_id": "c-42", "type": "contact", "at": "2026-11-10T09:00:00Z",
         "channel": "email", "offer_id": "gold-card", "decision_id": "d-1"},
        {"event_id": "r1", "customer_id": "c-42", "type": "response", "at": "2026-11-10T12:00:00Z",
         "decision_id": "d-1", "outcome": "clicked"},
        {"event_id": "v1", "customer_id": "c-42", "type": "interaction", "at": "2026-11-11T19:30:00Z",
         "channel": "web", "name": "visit"},
    ]});
    let (status, answer) = app.post_json("/v1/events", &batch).await;
    assert_eq!(
        (status, answer),
        (202, json!({"accepted": 8, "duplicates": 0, "erased": 0}))
    );

    let (status, view) = app.get("/v1/customers/c-42?at=2026-11-20T00:00:00Z").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["attributes"]["age_band"], "35-44");
    assert_eq!(view["attributes"]["vip"], true);
    assert_eq!(view["timezone"], "Europe/London");
    assert_eq!(view["consents"]["email"]["granted"], true);
    assert_eq!(view["purchases"]["count"], 3);
    assert_eq!(view["purchases"]["repeat_transactions"], 1);
    assert_eq!(view["purchases"]["repeat_spend"], 50.0);
    assert_eq!(view["purchases"]["age_days"], 17.0);
    // The response found its channel through the decision it answers.
    assert_eq!(view["channels"]["email"]["contacts"], 1);
    assert_eq!(view["channels"]["email"]["positive_responses"], 1);
    assert_eq!(view["recent_responses"][0]["channel"], "email");
    assert_eq!(view["recent_events"][0]["event_id"], "v1");
    assert_eq!(view["recent_events"].as_array().unwrap().len(), 8);
    // Purchases on Mondays 2 and 9 November at 10:00 UTC, which is 10:00 in London (GMT):
    // local hour of week 10. The click (Tuesday 12:00) and the visit (Wednesday 19:30) count too.
    assert_eq!(
        view["engagement"]["top_hours"][0],
        json!({"hour_of_week": 10, "day": "monday", "hour": 10, "count": 2})
    );
    let by_hour = view["engagement"]["by_hour_of_week"].as_array().unwrap();
    assert_eq!(
        (
            by_hour[18].as_u64(),
            by_hour[36].as_u64(),
            by_hour[67].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(view["engagement"]["total"], 5);

    // As of a time before events the profile holds: refused, since counts and totals would
    // still show them (they are not kept event by event).
    let (status, early) = app.get("/v1/customers/c-42?at=2026-11-05T00:00:00Z").await;
    assert_eq!(status, 409, "{early}");
    assert_eq!(early["error"]["code"], "at_before_latest_event");
    assert_eq!(early["error"]["field"], "at");

    let (status, bad) = app.get("/v1/customers/c-42?at=soon").await;
    assert_eq!((status, bad["error"]["field"].as_str()), (400, Some("at")));
    let (status, _) = app.get("/v1/customers/c%7B1%7D").await;
    assert_eq!(status, 400);
    app.stop().await;
}

#[actix_web::test]
async fn duplicates_are_counted_once_across_batches_and_service_restarts() {
    let redis = RedisServer::start();
    let app = spawn_app(test_settings(Some(&redis))).await;
    let batch = |ids: std::ops::Range<usize>| {
        json!({"events": ids.map(|i| purchase(&format!("e{i}"), &format!("c-{}", i % 7),
            &format!("2026-10-{:02}T10:00:00Z", 1 + i % 28), 5.0)).collect::<Vec<_>>()})
    };
    let (_, a) = app.post_json("/v1/events", &batch(0..50)).await;
    assert_eq!(a, json!({"accepted": 50, "duplicates": 0, "erased": 0}));
    let (_, b) = app.post_json("/v1/events", &batch(25..75)).await;
    assert_eq!(b, json!({"accepted": 25, "duplicates": 25, "erased": 0}));
    app.stop().await;

    // A new service process on the same Redis remembers what was applied.
    let app = spawn_app(test_settings(Some(&redis))).await;
    let (_, c) = app.post_json("/v1/events", &batch(0..75)).await;
    assert_eq!(c, json!({"accepted": 0, "duplicates": 75, "erased": 0}));
    let mut total = 0;
    for c in 0..7 {
        let (_, view) = app.get(&format!("/v1/customers/c-{c}")).await;
        total += view["events"].as_u64().unwrap();
    }
    assert_eq!(total, 75);
    app.stop().await;
}

#[actix_web::test]
async fn erasing_a_customer_leaves_no_key_behind() {
    let redis = RedisServer::start();
    let app = spawn_app(test_settings(Some(&redis))).await;
    for (i, c) in ["c-1", "c-2"].iter().enumerate() {
        let (status, _) = app
            .post_json(
                "/v1/events",
                &purchase(&format!("e{i}"), c, "2026-01-01T00:00:00Z", 3.0),
            )
            .await;
        assert_eq!(status, 202);
    }
    assert!(redis.keys().iter().any(|k| k.contains("{c-1}")));
    assert_eq!(app.delete("/v1/customers/c-1").await, 204);
    // Nothing of c-1 but the tombstone: the erasure's time, for the retry window, so that a
    // replay of their old events does not bring them back.
    let keys = redis.keys();
    let left: Vec<&String> = keys.iter().filter(|k| k.contains("c-1")).collect();
    assert_eq!(left, ["tp:{c-1}:erased"], "{keys:?}");
    let mut c = redis.connection();
    let erased_at: i64 = redis::cmd("GET")
        .arg("tp:{c-1}:erased")
        .query(&mut c)
        .unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg("tp:{c-1}:erased")
        .query(&mut c)
        .unwrap();
    assert!((erased_at - chrono::Utc::now().timestamp()).abs() < 60);
    assert!(ttl > 0 && ttl <= 24 * 3600, "{ttl}");
    assert!(keys.iter().any(|k| k.contains("{c-2}")), "{keys:?}");
    assert_eq!(app.get("/v1/customers/c-1").await.0, 404);
    // Erasing again is fine.
    assert_eq!(app.delete("/v1/customers/c-1").await, 204);
    app.stop().await;
}
