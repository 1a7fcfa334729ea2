//! Events from NATS JetStream, against a real `nats-server -js` started here: published
//! (some twice, some malformed), the service killed with SIGKILL mid-stream and started
//! again, each event applied exactly once and each malformed message dead-lettered with
//! its reason.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::StreamExt;
use touchpoint::profile::{CustomerId, ProfileStore};

use crate::helpers::{RedisServer, free_port};

/// A private `nats-server` with JetStream, storing in a temporary directory. Killed when
/// dropped.
pub struct NatsServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file())
            .unwrap_or("nats-server");
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs (apt-get install -y nats-server; scripts/test does this)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nats-server did not come up"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(redis: &RedisServer, nats: &NatsServer, port: u16) -> Child {
    crate::cli::touchpoint()
        .arg("serve")
        .env("TOUCHPOINT__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("TOUCHPOINT__SERVER__WORKERS", "1")
        .env("TOUCHPOINT__STORE__REDIS_URL", redis.url())
        .env("TOUCHPOINT__INGEST__NATS__URL", nats.url())
        .env("TOUCHPOINT__INGEST__NATS__BATCH", "10")
        .env("TOUCHPOINT__INGEST__NATS__ACK_WAIT_SECS", "2")
        .env("TOUCHPOINT__MODELS__WATCH", "false")
        .env("TOUCHPOINT__CATALOG__WATCH", "false")
        .env("TOUCHPOINT__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn event(customer: usize, i: usize) -> serde_json::Value {
    serde_json::json!({
        "event_id": format!("n-{customer}-{i}"), "customer_id": format!("c-n{customer}"),
        "type": "purchase", "at": "2026-11-20T10:00:00Z", "amount": 10.0, "channel": "web"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_events_survive_a_killed_service_and_apply_exactly_once() {
    let redis = RedisServer::start();
    let nats = NatsServer::start();
    let port = free_port();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client.clone());
    // The stream as the service would make it (it uses one that exists).
    js.get_or_create_stream(jetstream::stream::Config {
        name: "TOUCHPOINT_EVENTS".into(),
        subjects: vec!["touchpoint.events".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let publish = |body: String| {
        let js = js.clone();
        async move {
            js.publish("touchpoint.events", body.into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    const CUSTOMERS: usize = 60;
    const EACH: usize = 20;
    let store = crate::store_conformance::redis_store(&redis).await;
    async fn applied(store: &touchpoint::profile::redis_store::RedisStore) -> u64 {
        let mut total = 0;
        for c in 0..CUSTOMERS {
            let id = CustomerId::parse(format!("c-n{c}")).unwrap();
            total += store.load(&id).await.unwrap().map_or(0, |p| p.events);
        }
        total
    }
    // Half the events one per message, every tenth twice; two malformed messages; the
    // other half as one batch message per customer.
    for i in 0..EACH / 2 {
        for c in 0..CUSTOMERS {
            let body = event(c, i).to_string();
            if (c + i) % 10 == 0 {
                publish(body.clone()).await;
            }
            publish(body).await;
        }
    }
    publish(r#"{"event_id": "bad-1", "customer_id": "c-n1", "type": "purchase"}"#.into()).await;
    publish("not json".into()).await;
    for c in 0..CUSTOMERS {
        let events: Vec<serde_json::Value> = (EACH / 2..EACH).map(|i| event(c, i)).collect();
        publish(serde_json::json!({ "events": events }).to_string()).await;
    }
    // The service, killed as soon as it has applied something.
    let mut service = serve(&redis, &nats, port);
    let started = Instant::now();
    loop {
        let done = applied(&store).await;
        if done > 0 {
            eprintln!("killed with {done} of {} applied", CUSTOMERS * EACH);
            assert!(
                done < (CUSTOMERS * EACH) as u64,
                "all applied before the kill"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "nothing applied"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    service.kill().unwrap();
    service.wait().unwrap();
    let mut service = serve(&redis, &nats, port);
    let started = Instant::now();
    let mut stream = js.get_stream("TOUCHPOINT_EVENTS").await.unwrap();
    loop {
        let info = stream
            .consumer_info("touchpoint")
            .await
            .map(|i| (i.num_pending, i.num_ack_pending));
        if info.as_ref().is_ok_and(|&(p, a)| p == 0 && a == 0) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the stream was not drained: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stream.info().await.unwrap();
    for c in 0..CUSTOMERS {
        let id = CustomerId::parse(format!("c-n{c}")).unwrap();
        let profile = store.load(&id).await.unwrap().expect("customer applied");
        assert_eq!(profile.events, EACH as u64, "c-n{c}");
    }
    // The malformed messages, dead-lettered with their reasons.
    let mut reasons = Vec::new();
    for m in stream_messages(&js, "TOUCHPOINT_EVENTS_DEAD").await {
        let headers = m.headers.clone().unwrap();
        reasons.push((
            String::from_utf8_lossy(&m.payload).into_owned(),
            headers.get("Touchpoint-Error").unwrap().to_string(),
        ));
    }
    // Delivered twice around the kill, a malformed message may be dead-lettered twice.
    reasons.dedup();
    assert!(
        reasons.iter().any(|(body, why)| body.contains("bad-1")
            && why.contains("at is required")
            && why.contains("amount")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|(body, _)| body == "not json"),
        "{reasons:?}"
    );
    // The lag and the counts, in /metrics.
    let metrics = tokio::task::spawn_blocking(move || http_get(port, "/metrics"))
        .await
        .unwrap();
    assert!(
        metrics.contains("touchpoint_ingest_nats_pending_messages 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("touchpoint_ingest_nats_events_total{result=\"applied\"}"),
        "{metrics}"
    );
    service.kill().unwrap();
    service.wait().unwrap();
}

/// Every message a JetStream stream holds, read by a fresh consumer of its own.
pub async fn stream_messages(js: &jetstream::Context, stream: &str) -> Vec<jetstream::Message> {
    let consumer: jetstream::consumer::PullConsumer = js
        .get_stream(stream)
        .await
        .unwrap()
        .create_consumer(jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    let mut batch = consumer
        .fetch()
        .max_messages(10_000)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(m) = batch.next().await {
        out.push(m.unwrap());
    }
    out
}

/// A plain HTTP/1.1 GET's body.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}
