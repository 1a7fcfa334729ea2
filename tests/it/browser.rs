//! The website snippet in a real headless Chromium (Debian's `chromium`, driven by
//! `playwright-core`; `scripts/test` installs both): the example shop page shows an offer
//! and reports its impression and click with the decision id, and a service that does not
//! answer in time leaves the page's own fallback showing.

use std::net::TcpListener;
use std::path::PathBuf;

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::Value;
use touchpoint::auth::{KeySettings, Scope, new_key, sign_identity};

use crate::helpers::{repo_path, spawn_app, test_settings};

const SECRET: &str = "shop-identity-secret";

/// Where `scripts/test` puts playwright-core, and a clear failure when it is missing.
fn browser_deps() -> PathBuf {
    let deps = std::env::var_os("TOUCHPOINT_BROWSER_DEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path("target/browser"));
    assert!(
        deps.join("node_modules/playwright-core").is_dir()
            && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser tests need Debian's chromium and playwright-core: run scripts/test, which \
         installs them (apt-get install -y chromium chromium-driver nodejs npm; npm install \
         --prefix target/browser playwright-core)"
    );
    deps
}

/// Serves the example shop page, filled in, on `listener`.
fn serve_shop(listener: TcpListener, page: String) -> actix_web::dev::ServerHandle {
    let server = HttpServer::new(move || {
        let page = page.clone();
        App::new().default_service(web::to(move || {
            let page = page.clone();
            async move {
                HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .body(page)
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    handle
}

fn shop_page(service: &str, key: &str, identity: &str, base: &str, timeout_ms: u32) -> String {
    std::fs::read_to_string(repo_path("examples/shop/index.html"))
        .unwrap()
        .replace("TOUCHPOINT_URL", service)
        .replace("WEB_KEY", key)
        .replace("IDENTITY", identity)
        .replace("API_BASE", base)
        .replace("TIMEOUT_MS", &timeout_ms.to_string())
}

/// Opens `url` in Chromium; what the hero slot showed.
async fn visit(url: &str, name: &str) -> Value {
    browse("shop.cjs", &[url], name).await
}

/// Runs `tests/browser/SCRIPT` with `args` and a screenshot path; its JSON line. With
/// `TOUCHPOINT_SCREENSHOTS` set, the screenshot is kept there as `name` (how the README's
/// pictures are made).
async fn browse(script: &str, args: &[&str], name: &str) -> Value {
    let deps = browser_deps();
    let shot = tempfile::tempdir().unwrap();
    let png = shot.path().join("shop.png");
    let mut command = std::process::Command::new("node");
    command
        .arg(repo_path("tests/browser").join(script))
        .args(args)
        .arg(&png)
        .env("TOUCHPOINT_BROWSER_DEPS", &deps);
    // The servers keep answering on this thread's runtime while node waits.
    let out = actix_web::rt::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("node runs");
    assert!(
        out.status.success(),
        "the browser run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shot.path().join("shop.png").is_file());
    if let Some(dir) = std::env::var_os("TOUCHPOINT_SCREENSHOTS") {
        std::fs::copy(shot.path().join("shop.png"), PathBuf::from(dir).join(name)).unwrap();
    }
    serde_json::from_slice(&out.stdout).unwrap()
}

#[actix_web::test]
async fn the_shop_page_shows_an_offer_and_reports_its_impression_and_click() {
    let shop = TcpListener::bind("127.0.0.1:0").unwrap();
    let shop_url = format!("http://127.0.0.1:{}", shop.local_addr().unwrap().port());
    let mut settings = test_settings(None);
    let (web_key, web_hash) = new_key();
    let (ops_key, ops_hash) = new_key();
    settings.auth.keys = vec![
        KeySettings {
            name: "shop".into(),
            sha256: web_hash,
            scopes: vec![Scope::Web],
        },
        KeySettings {
            name: "ops".into(),
            sha256: ops_hash,
            scopes: vec![Scope::Admin, Scope::CustomersRead],
        },
    ];
    settings.web.identity_secret = SECRET.into();
    settings.web.allowed_origins = vec![shop_url.clone()];
    let app = spawn_app(settings).await;
    let identity = sign_identity(SECRET, "c-shop", chrono::Utc::now().timestamp() + 600);
    let shop_server = serve_shop(
        shop,
        shop_page(&app.address, &web_key, &identity, "", 2_000),
    );

    let seen = visit(&format!("{shop_url}/"), "shop.png").await;
    let offer = seen["offer"]
        .as_str()
        .expect("an offer is shown")
        .to_owned();
    assert_eq!(seen["text"], offer.as_str(), "{seen}");
    assert!(
        seen["decision"].as_str().is_some_and(|d| d.len() >= 32),
        "{seen}"
    );

    // The impression opened an exposure of that decision and the click answered it: the
    // learner counts one positive answer for the offer.
    let mut answered = false;
    for _ in 0..50 {
        let res = app
            .client
            .get(app.url("/v1/models"))
            .insert_header(("Authorization", format!("Bearer {ops_key}")))
            .send()
            .await;
        let m: Value = res.unwrap().json().limit(1 << 22).await.unwrap();
        let offers = m["online"]["offers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if offers
            .iter()
            .any(|o| o["offer_id"] == offer.as_str() && o["positives"] == 1)
        {
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(answered, "the click did not answer the decision");
    let mut res = app
        .client
        .get(app.url("/v1/customers/c-shop"))
        .insert_header(("Authorization", format!("Bearer {ops_key}")))
        .send()
        .await
        .unwrap();
    let view: Value = res.json().limit(1 << 22).await.unwrap();
    let names: Vec<&str> = view["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert!(
        names.contains(&"impression") && names.contains(&"click"),
        "{view}"
    );
    shop_server.stop(true).await;
    app.stop().await;
}

#[actix_web::test]
async fn a_service_that_does_not_answer_in_time_leaves_the_fallback() {
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let shop = TcpListener::bind("127.0.0.1:0").unwrap();
    let shop_url = format!("http://127.0.0.1:{}", shop.local_addr().unwrap().port());
    let app = spawn_app(test_settings(None)).await;
    let page = shop_page(&app.address, "", "c-late.9999999999.00", &silent_url, 300);
    let shop_server = serve_shop(shop, page);
    let seen = visit(&format!("{shop_url}/"), "shop-fallback.png").await;
    assert_eq!(seen["text"], "Browse our current products.", "{seen}");
    assert!(seen["offer"].is_null(), "{seen}");
    shop_server.stop(true).await;
    app.stop().await;
    drop(silent);
}

/// The agent screen: asks for the key once, shows who the customer is and their next best
/// actions with the reasons, records an answer with one click and shows the next action, and
/// says plainly when a customer is unknown.
#[actix_web::test]
async fn the_agent_screen_records_an_answer_and_shows_the_next_action() {
    let mut settings = test_settings(None);
    let (agent_key, agent_hash) = new_key();
    settings.auth.keys = vec![KeySettings {
        name: "agent".into(),
        sha256: agent_hash,
        scopes: vec![Scope::Decisions, Scope::Events, Scope::CustomersRead],
    }];
    let app = spawn_app(settings).await;
    let now = chrono::Utc::now();
    let at = |days: i64| {
        (now - chrono::Duration::days(days)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let history = serde_json::json!({"events": [
        {"event_id": "a1", "customer_id": "c-agent", "type": "attributes", "at": at(40),
         "attributes": {"age_band": "35-44", "income_band": "high", "homeowner": true, "timezone": "Europe/London"}},
        {"event_id": "a2", "customer_id": "c-agent", "type": "consent", "at": at(40),
         "consent": {"channel": "email", "granted": true}},
        {"event_id": "a3", "customer_id": "c-agent", "type": "purchase", "at": at(20), "channel": "web", "amount": 80.0},
        {"event_id": "a4", "customer_id": "c-agent", "type": "purchase", "at": at(5), "channel": "web", "amount": 45.0},
    ]});
    let res = app
        .client
        .post(app.url("/v1/events"))
        .insert_header(("Authorization", format!("Bearer {agent_key}")))
        .insert_header(("content-type", "application/json"))
        .send_body(history.to_string())
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let seen = browse(
        "agent.cjs",
        &[&app.address, "c-agent", &agent_key],
        "agent.png",
    )
    .await;
    assert!(
        seen["asked"].as_str().unwrap().contains("API key"),
        "{seen}"
    );
    let before: Vec<&str> = seen["before"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.as_str())
        .collect();
    let after: Vec<&str> = seen["after"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.as_str())
        .collect();
    assert!(!before.is_empty() && !after.is_empty(), "{seen}");
    assert!(
        !after.contains(&before[0]),
        "a declined offer is not offered again: {seen}"
    );
    assert!(
        seen["recorded"].as_str().unwrap().contains("declined"),
        "{seen}"
    );
    assert!(
        seen["who"].as_str().unwrap().contains("income_band"),
        "{seen}"
    );
    assert!(
        seen["value"].as_str().unwrap().starts_with("Worth about"),
        "{seen}"
    );
    assert!(
        seen["reasons"]
            .as_str()
            .unwrap()
            .contains("Likely to say yes"),
        "{seen}"
    );
    assert!(
        seen["unknown"]
            .as_str()
            .unwrap()
            .contains("No customer c-nobody-here"),
        "{seen}"
    );
    // The answer reached the profile with the decision it answered.
    let mut res = app
        .client
        .get(app.url("/v1/customers/c-agent"))
        .insert_header(("Authorization", format!("Bearer {agent_key}")))
        .send()
        .await
        .unwrap();
    let view: Value = res.json().limit(1 << 22).await.unwrap();
    let r = &view["recent_responses"][0];
    assert_eq!(
        (r["offer_id"].as_str(), r["outcome"].as_str()),
        (Some(before[0]), Some("declined")),
        "{view}"
    );
    assert!(
        r["decision_id"].as_str().is_some_and(|d| d.len() >= 32),
        "{view}"
    );
    app.stop().await;
}

/// With the store down, the agent screen says so plainly instead of showing nothing.
#[actix_web::test]
async fn the_agent_screen_says_when_the_service_is_degraded() {
    let mut redis = crate::helpers::RedisServer::start();
    let mut settings = test_settings(Some(&redis));
    settings.store.operation_timeout_ms = 300;
    let app = spawn_app(settings).await;
    redis.kill();
    let seen = browse(
        "degraded.cjs",
        &[&app.address, "c-any"],
        "agent-degraded.png",
    )
    .await;
    assert!(
        seen["message"].as_str().unwrap().contains("degraded"),
        "{seen}"
    );
    app.stop().await;
}
