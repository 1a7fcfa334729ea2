//! The learning loop over HTTP: answers posted as events join their decisions, on whichever
//! store, and the online state shows in `GET /v1/models` and `/metrics`.

use serde_json::json;

use crate::helpers::{RedisServer, TestApp, spawn_app, test_settings};

/// Decides for a consented customer, reports the contact and a click carrying the
/// `decision_id`, and waits for the learner to count the answer: one whose response window
/// has passed is learned; a fresh one waits for its window with `learning.wait_for_window`
/// (`wait`), else it is learned at once.
async fn an_answer_is_learned(app: &TestApp, wait: bool) {
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
    // Shown and clicked a little over 72 hours (learning.response_window_hours) ago: its
    // window has passed.
    let offer = shown_and_clicked(app, "1", &stamp(now - chrono::Duration::hours(73))).await;
    let offer = offer.as_str().unwrap().to_owned();
    let learned = models_once(app, |m| m["online"]["answers"] == 1).await;
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

    // A decision shown and clicked now is joined; waiting for its window, it is pending.
    let offer = &shown_and_clicked(app, "2", &stamp(now)).await;
    let waiting = models_once(app, |m| {
        m["online"]["pending"] == 1 || m["online"]["answers"] == 2
    })
    .await;
    let (answers, pending) = if wait { (1, 1) } else { (2, 0) };
    assert_eq!(
        (&waiting["online"]["answers"], &waiting["online"]["pending"]),
        (&json!(answers), &json!(pending)),
        "read within 10 s: {waiting}"
    );
    let o = waiting["online"]["offers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["offer_id"] == *offer)
        .unwrap();
    assert_eq!(
        (o["pending"].as_u64(), o["pending_positives"].as_u64()),
        (Some(pending), Some(pending)),
        "{o}"
    );
    let (_, text) = app.get("/metrics").await;
    let text = text.as_str().unwrap();
    for needle in [
        "touchpoint_learning_answers{offer=",
        "touchpoint_learning_mean_correction{offer=",
        "touchpoint_learning_outcomes{result=\"learned\"}",
        "touchpoint_learning_outcomes{result=\"pending\"}",
    ] {
        assert!(text.contains(needle), "{needle} missing");
    }
}

#[actix_web::test]
async fn an_answer_is_learned_on_the_memory_store() {
    let app = spawn_app(test_settings(None)).await;
    an_answer_is_learned(&app, false).await;
    app.stop().await;
    let mut settings = test_settings(None);
    settings.learning.wait_for_window = true;
    let app = spawn_app(settings).await;
    an_answer_is_learned(&app, true).await;
    app.stop().await;
}

#[actix_web::test]
async fn an_answer_is_learned_on_redis() {
    for wait in [false, true] {
        let redis = RedisServer::start();
        let mut settings = test_settings(Some(&redis));
        settings.learning.wait_for_window = wait;
        let app = spawn_app(settings).await;
        an_answer_is_learned(&app, wait).await;
        app.stop().await;
    }
}

/// `POST /v1/decisions` for `customer` on the web: the answer, which must be a 200.
async fn web_decision(app: &TestApp, customer: &str) -> serde_json::Value {
    let (status, d) = app
        .post_json(
            "/v1/decisions",
            &json!({"customer_id": customer, "touchpoint": "web"}),
        )
        .await;
    assert_eq!(status, 200, "{d}");
    d
}

/// Decides for `c-learn` on the web and reports the action shown and clicked at `at`; the
/// offer shown.
async fn shown_and_clicked(app: &TestApp, n: &str, at: &str) -> serde_json::Value {
    let d = web_decision(app, "c-learn").await;
    let (id, offer) = (&d["decision_id"], &d["actions"][0]["offer_id"]);
    let events = json!({"events": [
        {"event_id": format!("l-shown-{n}"), "customer_id": "c-learn", "type": "interaction",
         "name": "impression", "channel": "web", "at": at, "offer_id": offer, "decision_id": id},
        {"event_id": format!("l-click-{n}"), "customer_id": "c-learn", "type": "response",
         "outcome": "clicked", "channel": "web", "at": at, "offer_id": offer, "decision_id": id},
    ]});
    assert_eq!(app.post_json("/v1/events", &events).await.0, 202);
    offer.clone()
}

/// `GET /v1/models` once it satisfies `done` (the learner reads the outcome log every
/// `learning.refresh_ms`, 500 ms by default), or null after 10 s.
async fn models_once(
    app: &TestApp,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..100 {
        let (_, m) = app.get("/v1/models").await;
        if done(&m) {
            return m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    serde_json::Value::Null
}

/// Sets the simulated clock to `now` (which brings learning up to date) and answers
/// `GET /v1/models`.
async fn models_at(app: &TestApp, now: &str) -> serde_json::Value {
    let (status, body) = app
        .put_json("/v1/admin/clock", &json!({ "now": now }))
        .await;
    assert_eq!(status, 200, "{body}");
    app.get("/v1/models").await.1
}

/// On a simulated clock, time is what `PUT /v1/admin/clock` says: events dated past it are
/// refused, a decision without `at` is made at it, and an unanswered impression closes as a
/// negative when the clock passes its response window (setting the clock brings learning up
/// to date before it answers), not before, however long the wall clock waits. The clock
/// never goes back, and a service on the system clock refuses to be set.
#[actix_web::test]
async fn a_simulated_clock_drives_events_decisions_and_the_response_window() {
    let mut settings = test_settings(None);
    settings.server.simulated_clock = true;
    settings.learning.wait_for_window = true;
    let app = spawn_app(settings).await;
    let (status, clock) = app.get("/v1/admin/clock").await;
    assert_eq!(status, 200);
    assert_eq!(
        clock,
        json!({"now": "1970-01-01T00:00:00Z", "simulated": true})
    );
    let consent = json!({"event_id": "s-consent", "customer_id": "c-sim", "type": "consent",
        "at": "2026-11-01T09:00:00Z", "consent": {"channel": "email", "granted": true}});
    let (status, body) = app.post_json("/v1/events", &consent).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "time_in_future", "{body}");
    let set = |now: &str| json!({ "now": now });
    let (status, clock) = app
        .put_json("/v1/admin/clock", &set("2026-11-01T10:00:00Z"))
        .await;
    assert_eq!(
        (status, clock["now"].as_str()),
        (200, Some("2026-11-01T10:00:00Z"))
    );
    assert_eq!(app.post_json("/v1/events", &consent).await.0, 202);
    let d = web_decision(&app, "c-sim").await;
    assert_eq!(d["at"], "2026-11-01T10:00:00Z", "{d}");
    let (id, offer) = (
        d["decision_id"].clone(),
        d["actions"][0]["offer_id"].clone(),
    );
    let shown = json!({"event_id": "s-shown", "customer_id": "c-sim", "type": "interaction",
        "name": "impression", "channel": "web", "at": "2026-11-01T10:00:00Z",
        "offer_id": offer, "decision_id": id});
    assert_eq!(app.post_json("/v1/events", &shown).await.0, 202);
    // A second decision, shown and clicked an hour later: joined at once, learned only when
    // its window has passed, after the first one's silence.
    let (status, _) = app
        .put_json("/v1/admin/clock", &set("2026-11-01T11:00:00Z"))
        .await;
    assert_eq!(status, 200);
    let d2 = web_decision(&app, "c-sim").await;
    let (id2, offer2) = (&d2["decision_id"], &d2["actions"][0]["offer_id"]);
    let answered = json!({"events": [
        {"event_id": "s-shown-2", "customer_id": "c-sim", "type": "interaction",
         "name": "impression", "channel": "web", "at": "2026-11-01T11:00:00Z",
         "offer_id": offer2, "decision_id": id2},
        {"event_id": "s-click-2", "customer_id": "c-sim", "type": "response",
         "outcome": "clicked", "channel": "web", "at": "2026-11-01T11:00:00Z",
         "offer_id": offer2, "decision_id": id2},
    ]});
    assert_eq!(app.post_json("/v1/events", &answered).await.0, 202);
    // The learner's own tick (every 500 ms) goes by the simulated clock too: within the
    // window, the impression stays open and the click waits.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let (_, m) = app.get("/v1/models").await;
    assert_eq!(m["online"]["answers"], 0, "{m}");
    // Setting the same time again brings learning up to date: the click is read, and waits.
    let m = models_at(&app, "2026-11-01T11:00:00Z").await;
    assert_eq!(
        (&m["online"]["answers"], &m["online"]["pending"]),
        (&json!(0), &json!(1)),
        "{m}"
    );
    let m = models_at(&app, "2026-11-04T09:59:59Z").await;
    assert_eq!(
        m["online"]["answers"], 0,
        "a second before the deadline: {m}"
    );
    // 72 hours (learning.response_window_hours) after the impression: a negative, learned
    // by the time the clock is set.
    let m = models_at(&app, "2026-11-04T10:00:00Z").await;
    assert_eq!(
        (&m["online"]["answers"], &m["online"]["pending"]),
        (&json!(1), &json!(1)),
        "{m}"
    );
    let learned = |m: &serde_json::Value, offer: &serde_json::Value| {
        let o = m["online"]["offers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["offer_id"] == *offer)
            .unwrap()
            .clone();
        (
            o["answers"].as_u64().unwrap(),
            o["positives"].as_u64().unwrap(),
        )
    };
    let first = learned(&m, &offer);
    assert_eq!(first, (1, 0), "{m}");
    // The click's window passes an hour later.
    let m = models_at(&app, "2026-11-04T11:00:00Z").await;
    assert_eq!(
        (&m["online"]["answers"], &m["online"]["pending"]),
        (&json!(2), &json!(0)),
        "{m}"
    );
    let second = learned(&m, offer2);
    if *offer2 == offer {
        assert_eq!(second, (2, 1), "{m}");
    } else {
        assert_eq!((learned(&m, &offer), second), ((1, 0), (1, 1)), "{m}");
    }
    // Never back; the same time again is a no-op (and a refresh).
    let (status, body) = app
        .put_json("/v1/admin/clock", &set("2026-11-04T10:30:00Z"))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "clock_backwards", "{body}");
    assert_eq!(body["error"]["field"], "now", "{body}");
    assert_eq!(
        app.put_json("/v1/admin/clock", &set("2026-11-04T11:00:00Z"))
            .await
            .0,
        200
    );
    for bad in [
        json!({"now": "tomorrow"}),
        json!({"now": "2026-11-05T00:00:00Z", "speed": 2}),
    ] {
        let (status, body) = app.put_json("/v1/admin/clock", &bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    app.stop().await;

    let app = spawn_app(test_settings(None)).await;
    let (status, clock) = app.get("/v1/admin/clock").await;
    assert_eq!((status, &clock["simulated"]), (200, &json!(false)));
    let (status, body) = app
        .put_json("/v1/admin/clock", &set("2030-01-01T00:00:00Z"))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "clock_not_simulated", "{body}");
    app.stop().await;
}

/// A challenger model set decides for a stable share of the customers: each answer and log
/// record names its arm, the arm's model set decided it, a customer asked again meets the
/// same arm, and `GET /v1/models`, `/metrics` and `touchpoint evaluate` report the arms.
#[actix_web::test]
async fn a_challenger_decides_for_a_stable_share_of_customers() {
    let dir = tempfile::tempdir().unwrap();
    // The challenger: the shipped set under another version, so its decisions show.
    let challenger = dir.path().join("challenger");
    std::fs::create_dir(&challenger).unwrap();
    for entry in std::fs::read_dir(crate::helpers::repo_path("models")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), challenger.join(entry.file_name())).unwrap();
    }
    let manifest = challenger.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["version"] = "challenger-set".into();
    std::fs::write(&manifest, m.to_string()).unwrap();

    let log = dir.path().join("decisions.jsonl");
    let mut settings = test_settings(None);
    settings.decision.log.sink = touchpoint::decision::log::LogSink::File;
    settings.decision.log.path = log.clone();
    settings.models.challenger_dir = challenger;
    settings.models.challenger_share = 0.3;
    let app = spawn_app(settings).await;
    let mut arms = std::collections::HashMap::new();
    let mut answered: std::collections::HashMap<String, (String, String)> = Default::default();
    for round in 0..2 {
        for i in 0..200 {
            let customer = format!("c-arm-{i}");
            let d = web_decision(&app, &customer).await;
            let arm = d["arm"].as_str().unwrap().to_owned();
            assert_eq!(
                d["model_version"] == "challenger-set",
                arm == "challenger",
                "{d}"
            );
            if round == 0 {
                if !answered.contains_key(&arm) && d["actions"][0]["offer_id"].is_string() {
                    answered.insert(
                        arm.clone(),
                        (
                            customer.clone(),
                            d["decision_id"].as_str().unwrap().to_owned(),
                        ),
                    );
                    let offer = d["actions"][0]["offer_id"].as_str().unwrap();
                    let stamp =
                        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    let id = d["decision_id"].as_str().unwrap();
                    let events = json!({"events": [
                        {"event_id": format!("{customer}-shown"), "customer_id": customer, "type": "interaction",
                         "name": "impression", "channel": "web", "at": stamp, "offer_id": offer, "decision_id": id},
                        {"event_id": format!("{customer}-click"), "customer_id": customer, "type": "response",
                         "outcome": "clicked", "channel": "web", "at": stamp, "offer_id": offer, "decision_id": id},
                    ]});
                    assert_eq!(app.post_json("/v1/events", &events).await.0, 202);
                }
                arms.insert(customer, arm);
            } else {
                assert_eq!(arms[&customer], arm, "{customer} changed arm");
            }
        }
    }
    let challengers = arms.values().filter(|a| *a == "challenger").count();
    // 200 customers at 30%: a binomial standard deviation of 6.5.
    assert!((35..=85).contains(&challengers), "{challengers} of 200");
    // One click answered a decision of each arm: each arm counts its own.
    assert_eq!(answered.len(), 2, "{answered:?}");
    let mut models = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, m) = app.get("/v1/models").await;
        let a = &m["arms"];
        if a["champion"]["outcomes"]["positives"] == 1
            && a["challenger"]["outcomes"]["positives"] == 1
        {
            models = m;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!models.is_null(), "each arm's answer counted within 10 s");
    assert!(
        models["arms"]["challenger"]["outcomes"]["value"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let a = &models["arms"];
    assert_eq!(a["challenger_share"], 0.3);
    assert_eq!(a["challenger"]["version"], "challenger-set");
    assert_eq!(a["challenger"]["decisions"], 2 * challengers);
    assert_eq!(a["champion"]["decisions"], 2 * (200 - challengers));
    let (_, text) = app.get("/metrics").await;
    assert!(
        text.as_str()
            .unwrap()
            .contains("touchpoint_arm_decisions_total{arm=\"challenger\"}")
    );
    app.stop().await;

    // The log names each decision's arm, and evaluate reports each arm's observed value.
    // The log writer drains its queue after the server stops.
    let mut records: Vec<serde_json::Value> = Vec::new();
    for _ in 0..50 {
        records = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if records.len() == 400 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(records.len(), 400);
    for r in &records {
        assert_eq!(r["arm"], arms[r["customer_id"].as_str().unwrap()].as_str());
    }
    let target = dir.path().join("target.jsonl");
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, "").unwrap();
    let lines: Vec<String> = records
        .iter()
        .map(|r| json!({"decision_id": r["decision_id"], "probabilities": []}).to_string())
        .collect();
    std::fs::write(&target, lines.join("\n")).unwrap();
    let e = touchpoint::training::evaluate::evaluate_files(
        &log,
        &events,
        touchpoint::training::evaluate::Target::Policy(&target),
        72,
        &indicatif::ProgressBar::hidden(),
    )
    .await
    .unwrap();
    let counted: usize = e.arms.values().map(|a| a.decisions).sum();
    assert_eq!(counted, e.decisions);
    assert!(e.arms["challenger"].decisions > 0 && e.arms["champion"].decisions > 0);
}
