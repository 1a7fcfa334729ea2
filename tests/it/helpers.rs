//! Test harness: private `redis-server` instances on free ports, and the real service started
//! on port 0 with an isolated store, so API tests are real HTTP calls.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::redis_server::{RedisServer, free_port};

use touchpoint::settings::Settings;
use touchpoint::startup::Application;

/// Settings for a test service: port 0, a store of its own: the embedded one, `redis`, or
/// with `TOUCHPOINT_TEST_STORE=cluster` keys of its own on the test process's cluster.
pub fn test_settings(redis: Option<&RedisServer>) -> Settings {
    let mut s = Settings::default();
    s.server.bind = "127.0.0.1:0".into();
    s.server.workers = 2;
    s.server.shutdown_timeout_secs = 5;
    s.models.dir = repo_path("models");
    s.models.watch = false;
    s.catalog.path = repo_path("config/catalog.toml");
    s.catalog.watch = false;
    s.decision.log.sink = touchpoint::decision::log::LogSink::Off;
    if let Some(r) = redis {
        r.configure(&mut s.store);
    } else if crate::redis_server::on_cluster() {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        s.store.redis_cluster_nodes = crate::redis_server::shared_cluster().urls();
        s.store.key_prefix = format!("t{n}");
        s.decision.log.redis_stream = format!("t{n}:decisions");
    }
    s
}

/// The store `test_settings(None)` gives: `memory`, or `redis` on a test cluster.
pub fn default_store_kind() -> &'static str {
    if crate::redis_server::on_cluster() {
        "redis"
    } else {
        "memory"
    }
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub struct TestApp {
    pub address: String,
    pub client: awc::Client,
    pub handle: actix_web::dev::ServerHandle,
}

pub async fn spawn_app(settings: Settings) -> TestApp {
    let app = Application::build(settings).await.expect("service builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish(),
        handle,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.post_raw(path, body.to_string()).await
    }

    pub async fn post_raw(&self, path: &str, body: String) -> (u16, serde_json::Value) {
        self.send_json(self.client.post(self.url(path)), body).await
    }

    pub async fn put_json(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.send_json(self.client.put(self.url(path)), body.to_string())
            .await
    }

    /// Sends `body` as JSON with `request`: the status and the answer's JSON (null if none).
    async fn send_json(
        &self,
        request: awc::ClientRequest,
        body: String,
    ) -> (u16, serde_json::Value) {
        let mut res = request
            .insert_header(("content-type", "application/json"))
            .send_body(body)
            .await
            .expect("request completes");
        let status = res.status().as_u16();
        let bytes = res.body().limit(16 << 20).await.unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let mut res = self.client.get(self.url(path)).send().await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.body().limit(16 << 20).await.unwrap();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, json)
    }

    pub async fn delete(&self, path: &str) -> u16 {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// A purchase event as JSON.
pub fn purchase(event_id: &str, customer: &str, at: &str, amount: f64) -> serde_json::Value {
    serde_json::json!({
        "event_id": event_id, "customer_id": customer, "type": "purchase",
        "at": at, "amount": amount, "channel": "web"
    })
}
