//! Who may call what (API.md section 8), against the real service: every scope decision,
//! the web key's signed identity, and the open-mode rule.

use serde_json::{Value, json};
use touchpoint::auth::{KeySettings, Scope, new_key, sign_identity};

use crate::helpers::{TestApp, spawn_app, test_settings};

const SECRET: &str = "identity-secret-for-tests";

struct Keys {
    crm: String,
    reader: String,
    eraser: String,
    admin: String,
    web: String,
}

async fn secured() -> (TestApp, Keys) {
    let mut settings = test_settings(None);
    let mut key = |name: &str, scopes: Vec<Scope>| {
        let (key, sha256) = new_key();
        settings.auth.keys.push(KeySettings {
            name: name.into(),
            sha256,
            scopes,
        });
        key
    };
    let keys = Keys {
        crm: key("crm", vec![Scope::Decisions, Scope::Events]),
        reader: key("reader", vec![Scope::CustomersRead]),
        eraser: key("eraser", vec![Scope::CustomersErase]),
        admin: key("ops", vec![Scope::Admin]),
        web: key("shop", vec![Scope::Web]),
    };
    settings.web.identity_secret = SECRET.into();
    (spawn_app(settings).await, keys)
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    key: Option<&str>,
    identity: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, String) {
    let mut req = match method {
        "GET" => app.client.get(app.url(path)),
        "POST" => app.client.post(app.url(path)),
        "DELETE" => app.client.delete(app.url(path)),
        other => panic!("{other}"),
    };
    if let Some(k) = key {
        req = req.insert_header(("Authorization", format!("Bearer {k}")));
    }
    if let Some(i) = identity {
        req = req.insert_header(("X-Touchpoint-Identity", i));
    }
    let mut res = match body {
        Some(b) => req
            .insert_header(("content-type", "application/json"))
            .send_body(b.to_string())
            .await
            .unwrap(),
        None => req.send().await.unwrap(),
    };
    let status = res.status().as_u16();
    let www = res
        .headers()
        .get("WWW-Authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = res.body().limit(16 << 20).await.unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json, format!("{www}|{text}"))
}

fn event(id: &str, customer: &str, kind: &str) -> Value {
    let at = "2026-11-20T10:00:00Z";
    match kind {
        "interaction" => json!({"event_id": id, "customer_id": customer, "type": "interaction",
            "at": at, "channel": "web", "name": "visit"}),
        "response" => json!({"event_id": id, "customer_id": customer, "type": "response",
            "at": at, "channel": "web", "offer_id": "gold-card", "outcome": "clicked"}),
        _ => json!({"event_id": id, "customer_id": customer, "type": "purchase", "at": at,
            "channel": "web", "amount": 10.0}),
    }
}

#[actix_web::test]
async fn every_route_asks_for_its_scope() {
    let (app, k) = secured().await;
    let decision = json!({"customer_id": "c-1", "touchpoint": "web"});
    // (method, path, body, key, status)
    type Case<'a> = (&'a str, &'a str, Option<Value>, Option<&'a str>, u16);
    let cases: Vec<Case> = vec![
        ("POST", "/v1/decisions", Some(decision.clone()), None, 401),
        (
            "POST",
            "/v1/decisions",
            Some(decision.clone()),
            Some("tp_not_a_key"),
            401,
        ),
        (
            "POST",
            "/v1/decisions",
            Some(decision.clone()),
            Some(&k.crm),
            200,
        ),
        (
            "POST",
            "/v1/decisions",
            Some(decision.clone()),
            Some(&k.reader),
            403,
        ),
        (
            "POST",
            "/v1/decisions",
            Some(decision.clone()),
            Some(&k.admin),
            403,
        ),
        (
            "POST",
            "/v1/events",
            Some(event("e1", "c-1", "purchase")),
            Some(&k.crm),
            202,
        ),
        (
            "POST",
            "/v1/events",
            Some(event("e2", "c-1", "purchase")),
            Some(&k.reader),
            403,
        ),
        (
            "POST",
            "/v1/events",
            Some(event("e3", "c-1", "purchase")),
            None,
            401,
        ),
        ("GET", "/v1/customers/c-1", None, Some(&k.reader), 200),
        ("GET", "/v1/customers/c-1", None, Some(&k.crm), 403),
        ("GET", "/v1/customers/c-1", None, Some(&k.eraser), 403),
        ("GET", "/v1/customers/c-1", None, Some(&k.web), 403),
        ("GET", "/v1/customers/c-1", None, None, 401),
        ("DELETE", "/v1/customers/c-2", None, Some(&k.reader), 403),
        ("DELETE", "/v1/customers/c-2", None, Some(&k.eraser), 204),
        ("POST", "/v1/admin/models/reload", None, Some(&k.crm), 403),
        ("POST", "/v1/admin/models/reload", None, Some(&k.admin), 200),
        ("GET", "/v1/models", None, Some(&k.crm), 200),
        ("GET", "/v1/offers", None, Some(&k.reader), 200),
        ("GET", "/v1/offers", None, Some(&k.web), 403),
        ("GET", "/v1/offers", None, None, 401),
        ("GET", "/healthz", None, None, 200),
        ("GET", "/readyz", None, None, 200),
        ("GET", "/metrics", None, None, 200),
        ("GET", "/openapi.json", None, None, 200),
    ];
    for (n, (method, path, body, key, want)) in cases.into_iter().enumerate() {
        let (status, json, raw) = call(&app, method, path, key, None, body).await;
        assert_eq!(status, want, "case {n}: {method} {path}: {raw}");
        if status == 401 {
            assert_eq!(json["error"]["code"], "unauthorized", "{raw}");
            assert!(
                raw.starts_with("Bearer|"),
                "a 401 says how to authenticate: {raw}"
            );
        }
        if status == 403 {
            assert!(json["error"]["code"].is_string(), "{raw}");
        }
        // A key never comes back in an answer.
        for secret in [&k.crm, &k.reader, &k.eraser, &k.admin, &k.web] {
            assert!(
                !raw.contains(secret.as_str()),
                "{method} {path} echoed a key"
            );
        }
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_web_key_acts_only_for_the_customer_its_site_signed() {
    let (app, k) = secured().await;
    let now = chrono::Utc::now().timestamp();
    let me = sign_identity(SECRET, "c-web.1", now + 600);
    let web = Some(k.web.as_str());
    let decide = |customer: &str, touchpoint: &str| json!({"customer_id": customer, "touchpoint": touchpoint});
    let (status, d, raw) = call(
        &app,
        "POST",
        "/v1/decisions",
        web,
        Some(&me),
        Some(decide("c-web.1", "web")),
    )
    .await;
    assert_eq!(status, 200, "{raw}");
    assert!(d["decision_id"].is_string());
    let (status, _, raw) = call(
        &app,
        "POST",
        "/v1/decisions",
        web,
        Some(&me),
        Some(decide("c-web.1", "app")),
    )
    .await;
    assert_eq!(status, 200, "{raw}");
    for (identity, body, code) in [
        (None, decide("c-web.1", "web"), "identity_missing"),
        (
            Some(me.clone()),
            decide("c-other", "web"),
            "identity_mismatch",
        ),
        (
            Some(me.clone()),
            decide("c-web.1", "call_centre"),
            "web_touchpoint_only",
        ),
        (
            Some(me.clone()),
            json!({"customer_id": "c-web.1", "channels": ["email"]}),
            "web_touchpoint_only",
        ),
        (
            Some(sign_identity(SECRET, "c-web.1", now - 1)),
            decide("c-web.1", "web"),
            "identity_expired",
        ),
        (
            Some(sign_identity("not-the-secret", "c-web.1", now + 600)),
            decide("c-web.1", "web"),
            "identity_bad_signature",
        ),
        (
            Some(me.replacen("c-web.1", "c-web.2", 1)),
            decide("c-web.2", "web"),
            "identity_bad_signature",
        ),
        (
            Some("garbage".into()),
            decide("c-web.1", "web"),
            "identity_malformed",
        ),
    ] {
        let (status, json, raw) = call(
            &app,
            "POST",
            "/v1/decisions",
            web,
            identity.as_deref(),
            Some(body),
        )
        .await;
        assert_eq!(
            (status, json["error"]["code"].as_str()),
            (403, Some(code)),
            "{raw}"
        );
    }
    // Events: interactions and responses of its own customer, nothing else.
    for (kind, customer, want) in [
        ("interaction", "c-web.1", 202),
        ("response", "c-web.1", 202),
        ("purchase", "c-web.1", 403),
        ("interaction", "c-other", 403),
    ] {
        let (status, _, raw) = call(
            &app,
            "POST",
            "/v1/events",
            web,
            Some(&me),
            Some(event(&format!("w-{kind}-{customer}"), customer, kind)),
        )
        .await;
        assert_eq!(status, want, "{kind} of {customer}: {raw}");
    }
    let batch = json!({"events": [event("b1", "c-web.1", "interaction"), event("b2", "c-web.1", "purchase")]});
    let (status, json, raw) = call(&app, "POST", "/v1/events", web, Some(&me), Some(batch)).await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (403, Some("web_event_type")),
        "{raw}"
    );
    // The server's own key is not held to a browser's limits.
    let (status, _, raw) = call(
        &app,
        "POST",
        "/v1/decisions",
        Some(&k.crm),
        None,
        Some(json!({"customer_id": "c-other", "channels": ["email"]})),
    )
    .await;
    assert_eq!(status, 200, "{raw}");
    app.stop().await;
}

#[actix_web::test]
async fn without_keys_the_service_opens_only_on_loopback() {
    // Loopback and no keys: open (every other test runs so).
    let app = spawn_app(test_settings(None)).await;
    assert_eq!(app.get("/v1/customers/c-1").await.0, 404);
    app.stop().await;
    // Any other address and no keys: refused, unless allowed.
    let mut s = test_settings(None);
    s.server.bind = "0.0.0.0:0".into();
    let err = touchpoint::startup::Application::build(s.clone())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("auth.allow_anonymous"), "{err}");
    s.auth.allow_anonymous = true;
    let app = touchpoint::startup::Application::build(s.clone())
        .await
        .expect("allowed");
    drop(app);
    // With a key, any address.
    s.auth.allow_anonymous = false;
    s.auth.keys.push(KeySettings {
        name: "crm".into(),
        sha256: new_key().1,
        scopes: vec![Scope::Decisions],
    });
    touchpoint::startup::Application::build(s)
        .await
        .expect("keys");
}

#[actix_web::test]
async fn browsers_are_let_in_only_from_the_allowed_origins() {
    let mut settings = test_settings(None);
    settings.web.allowed_origins = vec!["https://shop.example".into()];
    let app = spawn_app(settings).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(actix_web::http::Method::OPTIONS, app.url("/v1/decisions"))
            .insert_header(("Origin", origin))
            .insert_header(("Access-Control-Request-Method", "POST"))
            .insert_header((
                "Access-Control-Request-Headers",
                "authorization, content-type, x-touchpoint-identity",
            ))
            .send()
    };
    let res = preflight("https://shop.example").await.unwrap();
    assert!(res.status().is_success(), "{:?}", res.status());
    let h = res.headers();
    assert_eq!(
        h.get("access-control-allow-origin").unwrap(),
        "https://shop.example"
    );
    let allowed = h
        .get("access-control-allow-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("x-touchpoint-identity") && allowed.contains("authorization"),
        "{allowed}"
    );
    assert!(h.get("access-control-allow-credentials").is_none());
    let res = preflight("https://evil.example").await.unwrap();
    assert!(res.status().is_client_error(), "{:?}", res.status());
    assert!(res.headers().get("access-control-allow-origin").is_none());
    // The request itself carries the header for the allowed origin only.
    let post = |origin: &'static str| {
        app.client
            .post(app.url("/v1/decisions"))
            .insert_header(("Origin", origin))
            .insert_header(("content-type", "application/json"))
            .send_body(json!({"customer_id": "c-1", "touchpoint": "web"}).to_string())
    };
    let res = post("https://shop.example").await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers().get("access-control-allow-origin").unwrap(),
        "https://shop.example"
    );
    let res = post("https://evil.example").await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    // A server's call (no Origin) is not a browser's.
    assert_eq!(
        app.post_json(
            "/v1/decisions",
            &json!({"customer_id": "c-1", "touchpoint": "web"})
        )
        .await
        .0,
        200
    );
    app.stop().await;
}

/// The README's example of making the identity in a site's backend, in Python, makes one
/// the service takes.
#[actix_web::test]
async fn the_python_example_makes_an_identity_the_service_accepts() {
    let (app, k) = secured().await;
    let out = std::process::Command::new("python3")
        .arg(crate::helpers::repo_path("examples/identity.py"))
        .args([SECRET, "c-py-7", "600"])
        .output()
        .expect("python3 runs (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let identity = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (status, _, raw) = call(
        &app,
        "POST",
        "/v1/decisions",
        Some(&k.web),
        Some(&identity),
        Some(json!({"customer_id": "c-py-7", "touchpoint": "web"})),
    )
    .await;
    assert_eq!(status, 200, "{identity}: {raw}");
    app.stop().await;
}
