//! The `touchpoint` binary: import into Redis, and serve with graceful shutdown.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use touchpoint::profile::ProfileStore;

use crate::helpers::{RedisServer, free_port, repo_path};

pub(crate) fn touchpoint() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_touchpoint"));
    cmd.current_dir(repo_path(""));
    cmd.env("TOUCHPOINT__DECISION__LOG__SINK", "off");
    // The developer's own settings must not leak into tests.
    for (k, _) in std::env::vars() {
        if k.starts_with("TOUCHPOINT__") {
            cmd.env_remove(k);
        }
    }
    cmd
}

#[test]
fn import_loads_a_file_into_redis_and_reports_rejected_lines_by_number() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let mut text = String::new();
    let mut bad_lines = Vec::new();
    for i in 0..5000 {
        if i == 16 || i == 2500 {
            bad_lines.push(text.lines().count() + 1);
            text.push_str("{\"event_id\":\"bad\",\"customer_id\":\"c-1\",\"type\":\"purchase\",\"at\":\"2026-01-01T00:00:00Z\",\"amount\":-5}\n");
        }
        if i == 100 {
            text.push('\n'); // blank lines are skipped, not rejected
        }
        text.push_str(&format!(
            "{{\"event_id\":\"e{i}\",\"customer_id\":\"c-{}\",\"type\":\"purchase\",\"at\":\"2026-01-{:02}T10:00:00Z\",\"amount\":{}.5}}\n",
            i % 250, 1 + i % 28, 1 + i % 90
        ));
    }
    bad_lines.push(text.lines().count() + 1);
    text.push_str("not json at all\n");
    std::fs::write(&file, text).unwrap();

    let run = || {
        let out = touchpoint()
            .args(["import", "--events"])
            .arg(&file)
            .env(redis.store_env().0, redis.store_env().1)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run();
    assert!(first.contains("accepted:   5000"), "{first}");
    assert!(first.contains("duplicates: 0"), "{first}");
    assert!(first.contains("rejected:   3"), "{first}");
    for line in &bad_lines {
        assert!(
            first.contains(&format!("line {line}: ")),
            "line {line} not reported in\n{first}"
        );
    }
    assert!(first.contains("amount must be from 0"), "{first}");
    // The store had no compression dictionary: the import made one of the profiles it wrote
    // and wrote them again with it.
    assert!(first.contains("compressed: 250 profiles"), "{first}");

    // A second run recognises every event (in the compressed profiles), and has nothing
    // more to compress.
    let second = run();
    assert!(second.contains("accepted:   0"), "{second}");
    assert!(second.contains("duplicates: 5000"), "{second}");
    assert!(!second.contains("compressed:"), "{second}");

    let mut c = redis.connection();
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("tp:*").query(&mut c).unwrap();
    keys.sort();
    assert_eq!(keys.len(), 251);
    assert_eq!(keys[0], "tp:dictionaries");

    // Gathering a customer's events within a window changes nothing: each stored profile is
    // what replaying the file line by line gives.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(crate::store_conformance::redis_store(&redis));
    let limits = touchpoint::profile::ProfileLimits::default();
    let mut reference: std::collections::HashMap<String, touchpoint::profile::Profile> =
        Default::default();
    for line in std::fs::read_to_string(&file).unwrap().lines() {
        if let Ok(e) = touchpoint::profile::event::parse_line(line.as_bytes()) {
            reference
                .entry(e.customer_id.to_string())
                .or_default()
                .apply(&e, &limits, 0)
                .unwrap();
        }
    }
    for customer in ["c-0", "c-17", "c-249"] {
        let id = touchpoint::profile::CustomerId::parse(customer).unwrap();
        let mut stored = (*rt.block_on(store.load(&id)).unwrap().unwrap()).clone();
        let mut expected = reference[customer].clone();
        stored.seen.clear(); // ingest times differ
        expected.seen.clear();
        assert_eq!(stored, expected, "{customer}");
    }
}

#[test]
fn serve_finishes_an_in_flight_request_after_sigterm_and_exits_cleanly() {
    let port = free_port();
    let mut child = touchpoint()
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("TOUCHPOINT__SERVER__SHUTDOWN_TIMEOUT_SECS", "10")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("service did not start: {e}"),
        }
    };
    let body = r#"{"event_id":"e1","customer_id":"c-1","type":"purchase","at":"2026-01-01T00:00:00Z","amount":9.5}"#;
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // Half a request is on the wire when the signal arrives.
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body.as_bytes()[..20]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    std::thread::sleep(Duration::from_millis(200));
    stream.write_all(&body.as_bytes()[20..]).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");

    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    let log: Vec<String> = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect();
    assert!(
        log.iter().any(|l| l.contains("touchpoint stopped")),
        "{log:?}"
    );
}

/// A Redis URL with a password was printed whole in a start-up error. The password never
/// appears, whether Redis is unreachable, refuses it or the URL is broken; the error names
/// the setting to change.
#[test]
fn a_redis_password_never_appears_in_an_error() {
    let mut redis = RedisServer::start();
    let mut c = redis.connection();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("the-right-one")
        .query::<()>(&mut c)
        .unwrap();
    let closed = free_port();
    for url in [
        format!("redis://:s3cret-pw@127.0.0.1:{closed}/0"),
        format!("redis://app:s3cret-pw@127.0.0.1:{}/0", redis.port),
        "redis://:s3cret-pw@127.0.0.1:notaport/0".to_owned(),
    ] {
        let out = touchpoint()
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("TOUCHPOINT__STORE__REDIS_URL", &url)
            .env("TOUCHPOINT__STORE__CONNECT_TIMEOUT_MS", "200")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url}");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains("s3cret-pw"), "{url}: {text}");
        assert!(text.contains("redis"), "{text}");
    }
    redis.kill();
}

/// `touchpoint decide` plans an audience through the decision service: an answer per
/// customer, outbound actions only on consented channels, the contact limit kept across
/// two asks for one customer; a bad line is named by number before anything is decided.
#[test]
fn decide_plans_an_audience_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let mut text = String::new();
    for c in 0..50 {
        let id = format!("c-a{c}");
        let consent = |ch: &str, i: usize| {
            serde_json::json!({"event_id": format!("{id}-c{i}"), "customer_id": id, "type": "consent",
                "at": "2026-09-01T08:00:00Z", "consent": {"channel": ch, "granted": true}})
        };
        text.push_str(&format!("{}\n", consent("email", 0)));
        if c % 2 == 0 {
            text.push_str(&format!("{}\n", consent("sms", 1)));
        }
        text.push_str(&format!(
            "{}\n",
            crate::helpers::purchase(&format!("{id}-p"), &id, "2026-10-02T19:00:00Z", 40.0)
        ));
    }
    std::fs::write(&events, text).unwrap();
    let customers = dir.path().join("customers.txt");
    let mut list: Vec<String> = (0..50).map(|c| format!("c-a{c}")).collect();
    list.insert(0, "# the autumn campaign".into());
    // One customer asked twice, for email only: email allows one contact in three days.
    list.push(r#"{"customer_id": "c-a1", "channels": ["email"]}"#.into());
    list.push(r#"{"customer_id": "c-a1", "channels": ["email"]}"#.into());
    std::fs::write(&customers, list.join("\n")).unwrap();
    let out = dir.path().join("answers.jsonl");
    let run = |customers: &std::path::Path| {
        touchpoint()
            .arg("decide")
            .arg("--customers")
            .arg(customers)
            .arg("--events")
            .arg(&events)
            .arg("--out")
            .arg(&out)
            .arg("--concurrency")
            .arg("1")
            .output()
            .unwrap()
    };
    let done = run(&customers);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(stderr.contains("52 decisions"), "{stderr}");
    let answers: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 52);
    for a in &answers {
        let c: usize = a["customer_id"].as_str().unwrap()[3..].parse().unwrap();
        for action in a["actions"].as_array().unwrap() {
            let ch = action["channel"].as_str().unwrap();
            assert!(ch == "email" || (ch == "sms" && c.is_multiple_of(2)), "{a}");
        }
    }
    // c-a1 (email only consented) asked three times: the marketing emails planned keep the
    // limit of one in any 3 days (a later one may go 3 days on, within the 72-hour
    // horizon); the service messages (a service offer of the shipped catalog) skip it.
    let of_a1: Vec<&serde_json::Value> = answers
        .iter()
        .filter(|a| a["customer_id"] == "c-a1")
        .collect();
    let service = [
        "payment-due-reminder",
        "card-expiry-reminder",
        "security-tips",
    ];
    let mut emails: Vec<i64> = of_a1
        .iter()
        .flat_map(|a| a["actions"].as_array().unwrap())
        .filter(|x| x["channel"] == "email" && !service.contains(&x["offer_id"].as_str().unwrap()))
        .map(|x| {
            chrono::DateTime::parse_from_rfc3339(x["send_at"].as_str().unwrap())
                .unwrap()
                .timestamp()
        })
        .collect();
    emails.sort_unstable();
    assert!(
        emails.windows(2).all(|w| w[1] - w[0] >= 3 * 86_400),
        "{of_a1:?}"
    );

    std::fs::write(&customers, "c-a1\nnot an id!\n").unwrap();
    let refused = run(&customers);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
}
