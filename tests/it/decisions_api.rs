//! `POST /v1/decisions` over HTTP: a website, a call-centre screen and an outbound planner;
//! explanations; degraded mode when Redis hangs; the decision log.

use std::time::Duration;

use chrono::DateTime;

use serde_json::json;

use crate::helpers::{RedisServer, TestApp, purchase, spawn_app, test_settings};

/// A customer with consent for email and SMS, some purchases and a time zone.
pub(crate) async fn known_customer(app: &TestApp, id: &str) {
    let events = json!({"events": [
        {"event_id": format!("{id}-a"), "customer_id": id, "type": "attributes", "at": "2026-09-01T08:00:00Z",
         "attributes": {"age_band": "35-44", "income_band": "high", "homeowner": true, "has_app": true,
                        "region": "north", "timezone": "Europe/London"}},
        {"event_id": format!("{id}-c1"), "customer_id": id, "type": "consent", "at": "2026-09-01T08:00:00Z",
         "consent": {"channel": "email", "granted": true}},
        {"event_id": format!("{id}-c2"), "customer_id": id, "type": "consent", "at": "2026-09-01T08:00:00Z",
         "consent": {"channel": "sms", "granted": true}},
        purchase(&format!("{id}-p1"), id, "2026-09-02T19:00:00Z", 40.0),
        purchase(&format!("{id}-p2"), id, "2026-10-02T19:30:00Z", 55.0),
        purchase(&format!("{id}-p3"), id, "2026-11-02T20:00:00Z", 35.0),
        {"event_id": format!("{id}-v"), "customer_id": id, "type": "interaction", "at": "2026-11-10T19:00:00Z",
         "channel": "web", "name": "visit"},
    ]});
    let (status, body) = app.post_json("/v1/events", &events).await;
    assert_eq!(status, 202, "{body}");
}

fn at() -> &'static str {
    "2026-11-22T10:15:00Z"
}

#[actix_web::test]
async fn a_website_gets_offers_for_its_placement_now() {
    // No exploration, so the ranking is the arbitration's alone.
    let mut settings = test_settings(None);
    // Without exploration: the best, always.
    settings.decision.exploration.epsilon = 0.0;
    settings.decision.exploration.policy = touchpoint::decision::PolicyKind::EpsilonGreedy;
    let app = spawn_app(settings).await;
    known_customer(&app, "c-web").await;
    let (status, d) = app
        .post_json(
            "/v1/decisions",
            &json!({"customer_id": "c-web", "touchpoint": "web", "placement": "homepage_hero",
                    "limit": 3, "at": at(), "context": {"device": "mobile"}}),
        )
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["degraded"], false);
    assert!(d["decision_id"].as_str().unwrap().len() >= 32);
    let actions = d["actions"].as_array().unwrap();
    assert!(!actions.is_empty() && actions.len() <= 3, "{d}");
    for (i, a) in actions.iter().enumerate() {
        assert_eq!(a["rank"], i + 1);
        assert_eq!(a["channel"], "web");
        assert_eq!(a["send_at"], at());
        assert!(a["propensity"].as_f64().unwrap() > 0.0 && a["propensity"].as_f64().unwrap() < 1.0);
        assert_eq!(a["probability"].as_f64().unwrap(), 1.0, "greedy: {d}");
        assert!(a.get("explanation").is_none());
    }
    // Ranked by priority.
    let p: Vec<f64> = actions
        .iter()
        .map(|a| a["priority"].as_f64().unwrap())
        .collect();
    assert!(p.windows(2).all(|w| w[0] >= w[1]), "{p:?}");
    // Every action may fill the placement: its offer lists it or is not restricted.
    let (_, catalog) = app.get("/v1/offers").await;
    for a in actions {
        let offer = catalog["offers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == a["offer_id"])
            .unwrap();
        let places = offer["placements"].as_array().unwrap();
        assert!(
            places.is_empty() || places.contains(&json!("homepage_hero")),
            "{offer}"
        );
        assert!(
            offer["channels"]
                .as_array()
                .unwrap()
                .contains(&json!("web"))
        );
    }
    assert!(d.get("suppressed").is_none());
    app.stop().await;
}

#[actix_web::test]
async fn a_call_centre_screen_gets_explained_actions_and_the_suppressed_candidates() {
    let app = spawn_app(test_settings(None)).await;
    known_customer(&app, "c-call").await;
    let (status, d) = app
        .post_json(
            "/v1/decisions",
            &json!({"customer_id": "c-call", "touchpoint": "call_centre", "limit": 3, "at": at(), "explain": true}),
        )
        .await;
    assert_eq!(status, 200, "{d}");
    let a = &d["actions"][0];
    assert_eq!(a["channel"], "call_centre");
    let e = &a["explanation"];
    for part in [
        "propensity",
        "value",
        "priority",
        "channel",
        "timing",
        "rules",
        "exploration",
    ] {
        assert!(e[part].is_object(), "explanation lacks {part}: {e}");
    }
    assert!(e["propensity"]["top_factors"].as_array().unwrap().len() <= 5);
    // Call-centre context rule: loans, insurance and retention weigh 1.3 here.
    let weight = e["priority"]["context_weight"].as_f64().unwrap();
    let category_boosted = e["priority"]["context_rules"].as_array().unwrap().len() == 1;
    assert_eq!(weight == 1.3, category_boosted, "{e}");
    // Priority is the product the explanation states.
    let pr = &e["priority"];
    let product = pr["propensity"].as_f64().unwrap()
        * pr["value"].as_f64().unwrap()
        * pr["context_weight"].as_f64().unwrap()
        * pr["lever"].as_f64().unwrap();
    assert!((product - a["priority"].as_f64().unwrap()).abs() < 1e-9);
    let suppressed = d["suppressed"].as_array().unwrap();
    let reason = |id: &str| {
        suppressed
            .iter()
            .find(|s| s["offer_id"] == id)
            .map(|s| s["reason"].as_str().unwrap().to_owned())
    };
    // A 35-44 customer is not a student; the guide is web and app only.
    assert_eq!(reason("student-card").as_deref(), Some("not_eligible"));
    assert_eq!(
        reason("budgeting-guide").as_deref(),
        Some("channel_not_offered")
    );
    app.stop().await;
}

#[actix_web::test]
async fn an_outbound_planner_gets_channels_and_send_times_within_consent_and_quiet_hours() {
    let app = spawn_app(test_settings(None)).await;
    known_customer(&app, "c-out").await;
    let (status, d) = app
        .post_json(
            "/v1/decisions",
            &json!({"customer_id": "c-out", "channels": ["email", "sms", "push"], "limit": 3, "at": at(), "explain": true}),
        )
        .await;
    assert_eq!(status, 200, "{d}");
    let actions = d["actions"].as_array().unwrap();
    assert!(!actions.is_empty(), "{d}");
    let start = chrono::DateTime::parse_from_rfc3339(at()).unwrap();
    for a in actions {
        let ch = a["channel"].as_str().unwrap();
        assert!(ch == "email" || ch == "sms", "no consent for {ch}");
        let send = chrono::DateTime::parse_from_rfc3339(a["send_at"].as_str().unwrap()).unwrap();
        assert!(send >= start && send <= start + chrono::Duration::hours(72));
        // London in November is UTC: quiet hours are 21:00-08:00.
        let hour = a["explanation"]["timing"]["local_hour"].as_u64().unwrap();
        assert!((8..21).contains(&hour), "sent at local {hour}:00");
    }
    let no_push = d["suppressed"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["channel"] == "push" && s["reason"] == "no_consent");
    assert!(no_push, "{d}");
    // Without channels or touchpoint, every consented channel is planned for.
    let (_, d) = app
        .post_json(
            "/v1/decisions",
            &json!({"customer_id": "c-out", "limit": 5, "at": at()}),
        )
        .await;
    for a in d["actions"].as_array().unwrap() {
        assert!(
            ["email", "sms"].contains(&a["channel"].as_str().unwrap()),
            "{a}"
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn an_unknown_customer_gets_a_decision_and_bad_requests_a_400_naming_the_field() {
    let app = spawn_app(test_settings(None)).await;
    let (status, d) = app
        .post_json(
            "/v1/decisions",
            &json!({"customer_id": "never-seen", "touchpoint": "web"}),
        )
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["actions"].as_array().unwrap().len(), 1);
    // No consent known: nothing outbound.
    let (_, d) = app
        .post_json(
            "/v1/decisions",
            &json!({"customer_id": "never-seen", "channels": ["email"]}),
        )
        .await;
    assert_eq!(d["actions"], json!([]));
    for (body, field) in [
        (json!({"touchpoint": "web"}), "customer_id"),
        (json!({"customer_id": "c", "limit": 50}), "limit"),
        (
            json!({"customer_id": "c", "channels": ["web"]}),
            "channels[0]",
        ),
        (
            json!({"customer_id": "c", "context": {"x": {"y": 1}}}),
            "context.x",
        ),
    ] {
        let (status, e) = app.post_json("/v1/decisions", &body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(e["error"]["field"], field, "{e}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_hung_redis_gives_a_degraded_decision_not_an_error() {
    let redis = RedisServer::start();
    let mut settings = test_settings(Some(&redis));
    settings.store.response_timeout_ms = 100;
    settings.decision.profile_read_budget_ms = 30;
    let app = spawn_app(settings).await;
    known_customer(&app, "c-deg").await;
    redis.pause();
    let (web_status, web) = app
        .post_json(
            "/v1/decisions",
            &json!({"customer_id": "c-deg", "touchpoint": "web", "limit": 2}),
        )
        .await;
    let (out_status, out) = app
        .post_json(
            "/v1/decisions",
            &json!({"customer_id": "c-deg", "channels": ["email"], "explain": true}),
        )
        .await;
    redis.resume();
    assert_eq!((web_status, out_status), (200, 200), "{web} {out}");
    assert_eq!(web["degraded"], true);
    assert!(
        !web["actions"].as_array().unwrap().is_empty(),
        "a fallback ranking still answers inbound"
    );
    // Consent cannot be checked without the profile: no outbound action.
    assert_eq!(out["degraded"], true);
    assert_eq!(out["actions"], json!([]));
    assert!(
        out["suppressed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["reason"] == "profile_unavailable")
    );
    let (_, healthy) = app
        .post_json(
            "/v1/decisions",
            &json!({"customer_id": "c-deg", "touchpoint": "web"}),
        )
        .await;
    assert_eq!(healthy["degraded"], false);
    app.stop().await;
}

/// Settings logging decisions to `decisions.jsonl` in `dir`, and that file's path.
fn file_log_settings(
    dir: &tempfile::TempDir,
) -> (touchpoint::settings::Settings, std::path::PathBuf) {
    let log = dir.path().join("decisions.jsonl");
    let mut settings = test_settings(None);
    settings.decision.log.sink = touchpoint::decision::log::LogSink::File;
    settings.decision.log.path = log.clone();
    (settings, log)
}

#[actix_web::test]
async fn every_decision_is_logged_with_its_candidates_and_answers_join_by_decision_id() {
    let dir = tempfile::tempdir().unwrap();
    let (settings, log) = file_log_settings(&dir);
    let app = spawn_app(settings).await;
    known_customer(&app, "c-log").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (_, d) = app
            .post_json(
                "/v1/decisions",
                &json!({"customer_id": "c-log", "touchpoint": "app", "limit": 2, "at": at()}),
            )
            .await;
        ids.push(d["decision_id"].as_str().unwrap().to_owned());
    }
    // An answer to the first decision carries its id.
    let first = ids[0].clone();
    let (status, _) = app
        .post_json(
            "/v1/events",
            &json!({"event_id": "answer-1", "customer_id": "c-log", "type": "response", "at": at(),
                    "decision_id": first, "outcome": "clicked", "channel": "app"}),
        )
        .await;
    assert_eq!(status, 202);
    let handle = app.handle.clone();
    handle.stop(true).await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 5);
    let r = records
        .iter()
        .find(|r| r["decision_id"] == ids[0])
        .expect("logged");
    assert_eq!(r["customer_id"], "c-log");
    assert!(r["model_version"].as_str().unwrap().len() > 5);
    assert_eq!(r["policy"]["kind"], "thompson");
    let candidates = r["candidates"].as_array().unwrap();
    assert!(candidates.len() >= 2);
    let total: f64 = candidates.iter().map(|c| c[6].as_f64().unwrap()).sum();
    assert!(
        (total - 1.0).abs() < 1e-9,
        "rank-1 probabilities sum to {total}"
    );
    assert_eq!(r["actions"].as_array().unwrap().len(), 2);
    assert!(r["features"]["value"]["clv_365d"].is_number());
    // Every line reads back as the typed record that evaluation reads; the first action is
    // one of the candidates, chosen with the probability logged for it.
    for line in text.lines() {
        let typed: touchpoint::decision::record::DecisionRecord =
            serde_json::from_str(line).unwrap();
        assert_eq!(typed.format, touchpoint::decision::record::FORMAT);
        let first = &typed.actions[0];
        let c = typed
            .candidates
            .iter()
            .find(|c| c.offer_id == first.offer_id && c.channel == first.channel)
            .expect("the first action is a candidate");
        assert_eq!(c, first, "{line}");
    }
}

/// Decides a few times for each customer; returns the decision ids by customer.
async fn decide_for(app: &TestApp, customers: &[&str], times: usize) -> Vec<Vec<String>> {
    let mut ids = Vec::new();
    for c in customers {
        let mut of_customer = Vec::new();
        for _ in 0..times {
            let (status, d) = app
                .post_json(
                    "/v1/decisions",
                    // The erased customer's id in another customer's context too: such a
                    // record is not theirs and stays.
                    &json!({"customer_id": c, "touchpoint": "web", "at": at(),
                            "context": {"referrer": customers[0]}}),
                )
                .await;
            assert_eq!(status, 200, "{d}");
            of_customer.push(d["decision_id"].as_str().unwrap().to_owned());
        }
        ids.push(of_customer);
    }
    ids
}

fn logged_customers(records: &[touchpoint::decision::record::DecisionRecord]) -> Vec<(&str, &str)> {
    records
        .iter()
        .map(|r| (r.customer_id.as_str(), r.decision_id.as_str()))
        .collect()
}

#[actix_web::test]
async fn erasing_a_customer_removes_their_decisions_from_the_log_file_and_its_rotated_one() {
    let dir = tempfile::tempdir().unwrap();
    let (settings, log) = file_log_settings(&dir);
    let rotated = dir.path().join("decisions.jsonl.1");
    let read = |path: &std::path::Path| -> Vec<touchpoint::decision::record::DecisionRecord> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // A first service's log, rotated as the writer rotates it (renamed to `.1`).
    let first = spawn_app(settings.clone()).await;
    for c in ["c-gone", "c-kept"] {
        known_customer(&first, c).await;
    }
    let mut ids = decide_for(&first, &["c-gone", "c-kept"], 2).await;
    first.handle.stop(true).await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(read(&log).len(), 4);
    std::fs::rename(&log, &rotated).unwrap();

    // A second service on the same store and log path: its own records, then the erasure.
    let app = spawn_app(settings).await;
    for c in ["c-gone", "c-kept"] {
        known_customer(&app, c).await;
    }
    let more = decide_for(&app, &["c-gone", "c-kept", "c-gone"], 2).await;
    ids[1].extend(more[1].iter().cloned());
    assert_eq!(app.delete("/v1/customers/c-gone").await, 204);
    let (current, old) = (read(&log), read(&rotated));
    let all: Vec<_> = old.iter().chain(&current).cloned().collect();
    let left = logged_customers(&all);
    assert!(left.iter().all(|(c, _)| *c == "c-kept"), "{left:?}");
    assert_eq!(
        logged_customers(&old).len(),
        2,
        "the rotated file was erased too"
    );
    let mut kept: Vec<&str> = left.iter().map(|(_, d)| *d).collect();
    kept.sort_unstable();
    let mut expected: Vec<&str> = ids[1].iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(
        kept, expected,
        "the other customer's records are all still there"
    );
    assert!(!dir.path().join("decisions.jsonl.erasing").exists());

    // The writer appends to the file now at the path, not to the one it replaced; for a
    // while nothing more is recorded of the erased customer.
    decide_for(&app, &["c-gone"], 1).await;
    let after = decide_for(&app, &["c-kept"], 1).await;
    app.handle.stop(true).await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let current = read(&log);
    assert!(
        logged_customers(&current)
            .iter()
            .all(|(c, _)| *c == "c-kept")
    );
    assert_eq!(
        logged_customers(&current).last().map(|(_, d)| *d),
        Some(after[0][0].as_str()),
        "a decision after the erasure is logged"
    );
}

#[actix_web::test]
async fn the_redis_stream_log_holds_every_decision_and_erasing_a_customer_removes_theirs() {
    let redis = RedisServer::start();
    let mut settings = test_settings(Some(&redis));
    settings.decision.log.sink = touchpoint::decision::log::LogSink::Redis;
    let stream = settings.decision.log.redis_stream.clone();
    let app = spawn_app(settings).await;
    for c in ["c-gone", "c-kept"] {
        known_customer(&app, c).await;
    }
    let ids = decide_for(&app, &["c-gone", "c-kept"], 3).await;
    let mut conn = redis.connection();
    // The stream, or on a cluster its shards (`<stream>:{sN}`).
    let shard = format!("{stream}:{{s");
    let entries = |conn: &mut crate::redis_server::TestConnection| {
        let mut records: Vec<touchpoint::decision::record::DecisionRecord> = Vec::new();
        for key in redis.keys() {
            if key != stream && !key.starts_with(&shard) {
                continue;
            }
            let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                .arg(&key)
                .arg("-")
                .arg("+")
                .query(conn)
                .unwrap();
            records.extend(reply.ids.iter().map(|e| {
                let json: Vec<u8> = e.get("decision").expect("a decision field");
                serde_json::from_slice::<touchpoint::decision::record::DecisionRecord>(&json)
                    .unwrap()
            }));
        }
        records
    };
    // The writer gathers records for a few milliseconds before it writes them.
    let mut logged = Vec::new();
    for _ in 0..100 {
        logged = entries(&mut conn);
        if logged.len() == 6 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let mut all: Vec<&str> = logged.iter().map(|r| r.decision_id.as_str()).collect();
    all.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().flatten().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(all, expected, "every decision is in the stream");
    assert!(
        logged
            .iter()
            .all(|r| r.format == touchpoint::decision::record::FORMAT)
    );

    assert_eq!(app.delete("/v1/customers/c-gone").await, 204);
    let left = entries(&mut conn);
    let left = logged_customers(&left);
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.iter().all(|(c, _)| *c == "c-kept"), "{left:?}");
    app.stop().await;
}

/// A planner asking twice before the sender reports anything must not plan past a limit;
/// a reported contact replaces its plan (counted once), and a plan never sent lapses. Email
/// is limited to 2 in 3 days here, and exploration is off so that each answer's first action
/// is the best one.
pub(crate) async fn planned_actions_count_toward_the_limits_until_sent(app: &TestApp) {
    known_customer(app, "c-plan").await;
    // As of now (plans lapse by the clock), or of a later time.
    let ask = |at: Option<&str>| {
        let mut body =
            json!({"customer_id": "c-plan", "channels": ["email"], "limit": 1, "explain": true});
        if let Some(at) = at {
            body["at"] = json!(at);
        }
        body
    };
    let decide = |body: serde_json::Value| async move {
        let (status, d) = app.post_json("/v1/decisions", &body).await;
        assert_eq!(status, 200, "{d}");
        assert_eq!(d["degraded"], false, "{d}");
        assert_eq!(d["actions"].as_array().unwrap().len(), 1, "{d}");
        d
    };
    // Service messages skip the limits: only marketing actions show whether one was kept.
    let marketing =
        |d: &serde_json::Value| d["actions"][0]["explanation"]["rules"]["service"] == false;

    let first = decide(ask(None)).await;
    assert!(marketing(&first), "{first}");
    // The sender reports it sent: the contact counts, the plan no longer (1 of 2).
    let sent = &first["actions"][0];
    let (status, body) = app
        .post_json(
            "/v1/events",
            &json!({"event_id": "sent-1", "customer_id": "c-plan", "type": "contact",
                    "at": sent["send_at"], "channel": "email", "offer_id": sent["offer_id"],
                    "decision_id": first["decision_id"]}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let second = decide(ask(None)).await;
    assert!(marketing(&second), "one contact, no plan: {second}");
    // Not sent yet, the second plan takes the last place (2 of 2).
    let third = decide(ask(None)).await;
    assert!(!marketing(&third), "one contact and one plan: {third}");
    // The customer view shows the plans pending, not the one sent: the second, and the
    // third's service message (planned for the sender, counting toward its offer's cap only).
    let (status, view) = app.get("/v1/customers/c-plan").await;
    assert_eq!(status, 200, "{view}");
    let planned = view["planned"].as_array().unwrap();
    assert_eq!(planned.len(), 2, "{view}");
    let of = |d: &serde_json::Value| {
        planned
            .iter()
            .find(|p| p["decision_id"] == d["decision_id"])
            .cloned()
    };
    let kept = of(&second).expect("the second plan");
    assert_eq!(kept["send_at"], second["actions"][0]["send_at"]);
    assert_eq!(
        of(&third).expect("the service message")["offer_id"],
        third["actions"][0]["offer_id"]
    );
    // Never sent, the plan lapses a day (planned_grace_hours) after its send time.
    let send_at = DateTime::parse_from_rfc3339(second["actions"][0]["send_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    let later = DateTime::from_timestamp(send_at + 25 * 3600, 0)
        .unwrap()
        .to_rfc3339();
    let lapsed = decide(ask(Some(&later))).await;
    assert!(marketing(&lapsed), "one contact, the plan lapsed: {lapsed}");
}

pub(crate) fn planner_settings(redis: Option<&RedisServer>) -> touchpoint::settings::Settings {
    let mut settings = test_settings(redis);
    settings.decision.exploration.epsilon = 0.0;
    // The test's sender reports a plan sent at its send time, up to the horizon ahead
    // of the test's clock.
    settings.ingest.max_clock_skew_secs = 4 * 86_400;
    let policy = &mut settings.decision.contact_policy;
    // Send times within two days, so that every slot is in one 3-day window with the test's
    // contacts: with the default 72 h a slot exactly 3 days after the first email (a good
    // hour at some times of day) is outside that email's window, and rightly allowed.
    policy.horizon_hours = 48;
    policy
        .channel_limits
        .retain(|l| l.channel != touchpoint::profile::Channel::Email);
    policy
        .channel_limits
        .push(touchpoint::decision::contact_policy::ChannelLimit {
            channel: touchpoint::profile::Channel::Email,
            max: 2,
            days: 3,
        });
    settings
}

#[actix_web::test]
async fn planned_actions_count_toward_the_limits_in_the_memory_store() {
    let app = spawn_app(planner_settings(None)).await;
    planned_actions_count_toward_the_limits_until_sent(&app).await;
    app.stop().await;
}

#[actix_web::test]
async fn planned_actions_count_toward_the_limits_in_redis() {
    let redis = RedisServer::start();
    let app = spawn_app(planner_settings(Some(&redis))).await;
    planned_actions_count_toward_the_limits_until_sent(&app).await;
    app.stop().await;
}

/// When the log cannot be erased, `DELETE` says so with a 503 naming the log, and asking
/// again once the fault is gone erases it.
#[actix_web::test]
async fn an_erasure_the_log_cannot_do_is_a_503_and_can_be_asked_again() {
    let dir = tempfile::tempdir().unwrap();
    let (settings, log) = file_log_settings(&dir);
    let app = spawn_app(settings).await;
    known_customer(&app, "c-gone").await;
    decide_for(&app, &["c-gone"], 2).await;
    // The file the kept records are written to cannot be made.
    let blocker = dir.path().join("decisions.jsonl.erasing");
    std::fs::create_dir(&blocker).unwrap();
    let mut response = app
        .client
        .delete(app.url("/v1/customers/c-gone"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "decision_log_unavailable", "{body}");
    let records = std::fs::read_to_string(&log).unwrap();
    assert_eq!(records.lines().count(), 2, "nothing was lost either");

    std::fs::remove_dir(&blocker).unwrap();
    assert_eq!(app.delete("/v1/customers/c-gone").await, 204);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "");
    app.stop().await;
}
