//! The learning loop over HTTP: answers posted as events join their decisions, on whichever
//! store, and the online state shows in `GET /v1/models` and `/metrics`.

use serde_json::json;

use crate::helpers::{RedisServer, TestApp, spawn_app, test_settings};

/// Decides for a consented customer, reports the contact and a click carrying the
/// `decision_id`, and waits for the learner to count the answer.
async fn an_answer_is_learned(app: &TestApp) {
    let now = chrono::Utc::now();
    let stamp =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let consent = json!({"event_id": "l-consent", "customer_id": "c-learn", "type": "consent",
        "at": stamp(now - chrono::Duration::days(10)), "consent": {"channel": "email", "granted": true}});
    assert_eq!(app.post_json("/v1/events", &consent).await.0, 202);
    let (status, before) = app.get("/v1/models").await;
    assert_eq!(status, 200);
    assert_eq!(before["online"]["enabled"], true, "{before}");
    assert_eq!(before["online"]["answers"], 0, "{before}");
    let (status, d) = app
        .post_json(
            "/v1/decisions",
            &json!({"customer_id": "c-learn", "touchpoint": "web"}),
        )
        .await;
    assert_eq!(status, 200, "{d}");
    let id = d["decision_id"].as_str().unwrap().to_owned();
    let offer = d["actions"][0]["offer_id"].as_str().unwrap().to_owned();
    let events = json!({"events": [
        {"event_id": "l-shown", "customer_id": "c-learn", "type": "interaction", "name": "impression",
         "channel": "web", "at": stamp(now), "offer_id": offer, "decision_id": id},
        {"event_id": "l-click", "customer_id": "c-learn", "type": "response", "outcome": "clicked",
         "channel": "web", "at": stamp(now), "offer_id": offer, "decision_id": id},
    ]});
    assert_eq!(app.post_json("/v1/events", &events).await.0, 202);
    // The learner reads the outcome log every learning.refresh_ms (500 ms by default).
    let mut learned = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, m) = app.get("/v1/models").await;
        if m["online"]["answers"] == 1 {
            learned = m;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let offers = learned["online"]["offers"]
        .as_array()
        .expect("learned within 10 s");
    let o = offers
        .iter()
        .find(|o| o["offer_id"] == offer.as_str())
        .unwrap();
    assert_eq!(
        (o["answers"].as_u64(), o["positives"].as_u64()),
        (Some(1), Some(1)),
        "{o}"
    );
    assert!(
        o["mean_correction"].as_f64().unwrap() > 0.0,
        "a click raises it: {o}"
    );
    let others = offers.iter().filter(|o| o["offer_id"] != offer.as_str());
    assert!(others.clone().count() > 5);
    assert!(others.into_iter().all(|o| o["answers"] == 0));
    let (_, text) = app.get("/metrics").await;
    let text = text.as_str().unwrap();
    for needle in [
        "touchpoint_learning_answers{offer=",
        "touchpoint_learning_mean_correction{offer=",
        "touchpoint_learning_outcomes{result=\"learned\"}",
    ] {
        assert!(text.contains(needle), "{needle} missing");
    }
}

#[actix_web::test]
async fn an_answer_is_learned_on_the_memory_store() {
    let app = spawn_app(test_settings(None)).await;
    an_answer_is_learned(&app).await;
    app.stop().await;
}

#[actix_web::test]
async fn an_answer_is_learned_on_redis() {
    let redis = RedisServer::start();
    let app = spawn_app(test_settings(Some(&redis))).await;
    an_answer_is_learned(&app).await;
    app.stop().await;
}
