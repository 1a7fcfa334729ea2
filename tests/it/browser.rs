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

/// Opens `url` in Chromium; what the hero slot showed. With `TOUCHPOINT_SCREENSHOTS` set,
/// the screenshot is kept there as `name` (how the README's pictures are made).
async fn visit(url: &str, name: &str) -> Value {
    let deps = browser_deps();
    let shot = tempfile::tempdir().unwrap();
    let (url, png) = (url.to_owned(), shot.path().join("shop.png"));
    // The servers keep answering on this thread's runtime while node waits.
    let out = actix_web::rt::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(repo_path("tests/browser/shop.cjs"))
            .arg(url)
            .arg(png)
            .env("TOUCHPOINT_BROWSER_DEPS", &deps)
            .output()
    })
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
