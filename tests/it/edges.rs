//! Input the service must not take, and the promises that input used to break: each test is
//! one finding of an attacker's or a new user's probe, run against the real service.

use chrono::{Duration, Utc};
use serde_json::json;

use crate::helpers::{RedisServer, purchase, spawn_app, test_settings};

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One `contact` dated 9999-12-31 used to stand as the customer's newest and push the real
/// contacts out of the history, so the next decision emailed them through a 1-in-3-days
/// limit. Such an event is refused now, as is one merely hours ahead of the clock, and the
/// limit holds.
#[actix_web::test]
async fn a_contact_dated_in_the_future_is_refused_and_the_contact_limit_holds() {
    let app = spawn_app(test_settings(None)).await;
    let now = Utc::now();
    // Whole seconds, as the event carries it.
    let last = chrono::DateTime::parse_from_rfc3339(&rfc3339(now - Duration::hours(10)))
        .unwrap()
        .with_timezone(&Utc);
    let history = json!({"events": [
        {"event_id": "c1", "customer_id": "c-f", "type": "consent", "at": rfc3339(now - Duration::days(30)),
         "consent": {"channel": "email", "granted": true}},
        {"event_id": "k1", "customer_id": "c-f", "type": "contact", "at": rfc3339(last),
         "channel": "email", "offer_id": "gold-card"},
    ]});
    assert_eq!(app.post_json("/v1/events", &history).await.0, 202);
    for (at, code) in [
        ("9999-12-31T00:00:00Z".to_owned(), "time_out_of_range"),
        (rfc3339(now + Duration::hours(2)), "time_in_future"),
    ] {
        let far = json!({"event_id": format!("k-{code}"), "customer_id": "c-f", "type": "contact",
                         "at": at, "channel": "email", "offer_id": "savings-boost"});
        let (status, body) = app.post_json("/v1/events", &far).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], code);
        assert_eq!(body["error"]["field"], "at");
    }
    let (_, view) = app.get("/v1/customers/c-f").await;
    assert_eq!(
        view["recent_contacts"].as_array().unwrap().len(),
        1,
        "{view}"
    );
    let (status, d) = app
        .post_json(
            "/v1/decisions",
            &json!({"customer_id": "c-f", "channels": ["email"], "limit": 3, "explain": true}),
        )
        .await;
    assert_eq!(status, 200, "{d}");
    for a in d["actions"].as_array().unwrap() {
        let service = a["explanation"]["rules"]["service"] == true;
        let send_at = chrono::DateTime::parse_from_rfc3339(a["send_at"].as_str().unwrap()).unwrap();
        assert!(
            service || send_at >= last + Duration::days(3),
            "a marketing email within 3 days of the last: {a}"
        );
    }
    app.stop().await;
}

/// A body sent as a form or plain text (what any web page can make a visitor's browser
/// post) is refused with 415; JSON lines or trailing garbage are refused whole, not taken in
/// part.
#[actix_web::test]
async fn only_one_json_value_sent_as_json_is_taken() {
    let app = spawn_app(test_settings(None)).await;
    let event = purchase("e1", "c-j", "2026-11-01T10:00:00Z", 5.0).to_string();
    for path in ["/v1/events", "/v1/decisions"] {
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            None,
        ] {
            let mut req = app.client.post(app.url(path));
            if let Some(ct) = ct {
                req = req.insert_header(("content-type", ct));
            }
            let mut res = req.send_body(event.clone()).await.unwrap();
            let body: serde_json::Value =
                serde_json::from_slice(&res.body().await.unwrap()).unwrap();
            assert_eq!(res.status().as_u16(), 415, "{path} {ct:?}: {body}");
            assert_eq!(body["error"]["code"], "unsupported_media_type");
        }
    }
    let second = purchase("e2", "c-j", "2026-11-01T11:00:00Z", 5.0).to_string();
    for body in [format!("{event}\n{second}"), format!("{event}garbage")] {
        let (status, answer) = app.post_raw("/v1/events", body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], "trailing_data");
    }
    assert_eq!(app.get("/v1/customers/c-j").await.0, 404, "nothing taken");
    app.stop().await;
}

/// `"amount": 1.7e308` overflowed the spend sums and the profile showed null value figures
/// for good; `outcome` on a purchase was taken silently. Both are refused now, naming the
/// field, and the largest amount taken keeps every figure a number.
#[actix_web::test]
async fn numbers_are_bounded_and_fields_fit_their_event_type() {
    let app = spawn_app(test_settings(None)).await;
    let mut huge = purchase("e1", "c-n", "2026-11-01T10:00:00Z", 1.0);
    huge["amount"] = json!(1.7e308);
    let mut with_outcome = purchase("e2", "c-n", "2026-11-01T10:00:00Z", 1.0);
    with_outcome["outcome"] = json!("accepted");
    for (body, field, code) in [
        (
            json!({"events": [huge]}),
            "events[0].amount",
            "invalid_amount",
        ),
        (with_outcome, "outcome", "field_not_allowed"),
    ] {
        let (status, answer) = app.post_json("/v1/events", &body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["field"], field);
        assert_eq!(answer["error"]["code"], code);
    }
    // The largest amounts taken, many of them: every figure stays a number.
    let events: Vec<_> = (0..50)
        .map(|i| {
            purchase(
                &format!("big-{i}"),
                "c-n",
                &format!("2026-{:02}-01T10:00:00Z", 1 + i % 10),
                1e9,
            )
        })
        .collect();
    assert_eq!(
        app.post_json("/v1/events", &json!({"events": events}))
            .await
            .0,
        202
    );
    let (_, view) = app.get("/v1/customers/c-n").await;
    for figure in [
        "p_alive",
        "expected_purchases_90d",
        "expected_spend_per_purchase",
        "clv_365d",
    ] {
        assert!(view["value"][figure].is_number(), "{figure}: {view}");
    }
    let (status, d) = app
        .post_json(
            "/v1/decisions",
            &json!({"customer_id": "c-n", "touchpoint": "web"}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(d["actions"][0]["value"].is_number(), "{d}");
    app.stop().await;
}

/// A misspelt decision field (`touchpont`) was ignored: the request became an outbound plan
/// and spent the customer's contact limits. It is refused now, naming the field, and nothing
/// is planned.
#[actix_web::test]
async fn a_misspelt_decision_field_is_refused_and_plans_nothing() {
    let app = spawn_app(test_settings(None)).await;
    let consent = json!({"event_id": "c1", "customer_id": "c-t", "type": "consent",
                         "at": "2026-11-01T10:00:00Z", "consent": {"channel": "email", "granted": true}});
    assert_eq!(app.post_json("/v1/events", &consent).await.0, 202);
    let (status, body) = app
        .post_json(
            "/v1/decisions",
            &json!({"customer_id": "c-t", "touchpont": "web"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "unknown_field");
    assert_eq!(body["error"]["field"], "touchpont");
    let (_, view) = app.get("/v1/customers/c-t").await;
    assert_eq!(view["planned"], json!([]), "{view}");
    // Times far out are refused in decisions too; the latest taken plans in RFC 3339.
    let (status, _) = app
        .post_json(
            "/v1/decisions",
            &json!({"customer_id": "c-t", "at": "9999-12-31T23:00:00Z"}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, d) = app
        .post_json(
            "/v1/decisions",
            &json!({"customer_id": "c-t", "channels": ["email"], "at": "2199-12-31T23:00:00Z"}),
        )
        .await;
    assert_eq!(status, 200, "{d}");
    for a in d["actions"].as_array().unwrap() {
        let send_at = a["send_at"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(send_at).is_ok() && !send_at.starts_with('+'));
    }
    app.stop().await;
}

/// A free order (amount 0: 70 of the 23,570 customers of the real CDNOW file have only such
/// rows) was refused, so those customers never existed.
#[actix_web::test]
async fn a_free_order_is_a_purchase() {
    let app = spawn_app(test_settings(None)).await;
    let free = purchase("e1", "c-free", "2026-11-01T10:00:00Z", 0.0);
    let (status, body) = app.post_json("/v1/events", &free).await;
    assert_eq!(status, 202, "{body}");
    let (status, view) = app.get("/v1/customers/c-free").await;
    assert_eq!(status, 200);
    assert_eq!(view["purchases"]["count"], 1);
    assert_eq!(view["purchases"]["total_spend"], 0.0);
    app.stop().await;
}

/// A batch answered 503 may have been applied (the connection broke after the write); sent
/// again after the customer took over 1,024 newer events, it used to count again. Re-sent
/// within the retry window, it is recognised however many events came in between, on both
/// stores.
#[actix_web::test]
async fn a_resent_batch_is_recognised_after_many_newer_events() {
    let redis = RedisServer::start();
    for settings in [test_settings(None), test_settings(Some(&redis))] {
        let app = spawn_app(settings).await;
        let batch = json!({"events": [purchase("first", "c-r", "2026-10-01T10:00:00Z", 5.0)]});
        assert_eq!(app.post_json("/v1/events", &batch).await.1["accepted"], 1);
        for b in 0..3 {
            let events: Vec<_> = (0..600)
                .map(|i| {
                    let at = format!("2026-10-{:02}T{:02}:{:02}:00Z", 2 + b, i / 60, i % 60);
                    json!({"event_id": format!("v-{b}-{i}"), "customer_id": "c-r",
                           "type": "interaction", "at": at, "channel": "web", "name": "visit"})
                })
                .collect();
            let (status, body) = app
                .post_json("/v1/events", &json!({"events": events}))
                .await;
            assert_eq!(status, 202, "{body}");
        }
        let (status, again) = app.post_json("/v1/events", &batch).await;
        assert_eq!(status, 202);
        assert_eq!(again, json!({"accepted": 0, "duplicates": 1, "erased": 0}));
        let (_, view) = app.get("/v1/customers/c-r").await;
        assert_eq!(view["purchases"]["count"], 1);
        assert_eq!(view["events"], 1801);
        app.stop().await;
    }
}

/// After `DELETE /v1/customers/{id}`, replaying the customer's old events recreated them. The
/// erasure's tombstone keeps them out for the retry window; a new event after the erasure is
/// a new beginning. On both stores.
#[actix_web::test]
async fn replaying_an_erased_customers_old_events_does_not_bring_them_back() {
    let redis = RedisServer::start();
    for settings in [test_settings(None), test_settings(Some(&redis))] {
        let app = spawn_app(settings).await;
        let old = json!({"events": [
            purchase("p1", "c-e", "2026-10-01T10:00:00Z", 5.0),
            purchase("p2", "c-e", "2026-10-02T10:00:00Z", 7.0),
        ]});
        assert_eq!(app.post_json("/v1/events", &old).await.0, 202);
        assert_eq!(app.delete("/v1/customers/c-e").await, 204);
        let (status, replay) = app.post_json("/v1/events", &old).await;
        assert_eq!(status, 202);
        assert_eq!(replay, json!({"accepted": 0, "duplicates": 0, "erased": 2}));
        assert_eq!(app.get("/v1/customers/c-e").await.0, 404);
        let fresh = purchase("p3", "c-e", &rfc3339(Utc::now()), 9.0);
        assert_eq!(app.post_json("/v1/events", &fresh).await.1["accepted"], 1);
        let (_, view) = app.get("/v1/customers/c-e").await;
        assert_eq!(view["purchases"]["count"], 1, "{view}");
        app.stop().await;
    }
}

/// Any method name a client sent became a metric label value (5,000 invented methods: 5,132
/// series and a 12 MB scrape). Unknown methods share one label now.
#[actix_web::test]
async fn invented_http_methods_do_not_become_metric_labels() {
    let app = spawn_app(test_settings(None)).await;
    for i in 0..50 {
        let method = actix_web::http::Method::from_bytes(format!("FOO{i}").as_bytes()).unwrap();
        let _ = app
            .client
            .request(method, app.url("/v1/offers"))
            .send()
            .await
            .unwrap();
    }
    let scrape = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .body()
        .limit(16 << 20)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&scrape);
    assert!(!text.contains("FOO"), "an invented method is a label");
    assert!(text.contains("method=\"other\""));
    app.stop().await;
}
