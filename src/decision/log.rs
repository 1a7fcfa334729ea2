//! The decision log: every decision, with its context features, every candidate with its
//! score and the probability the policy would have chosen it, the choice, and the model
//! version, as one JSON line, so that `touchpoint evaluate` and training can read it later.
//! Events that carry the `decision_id` join to it.
//!
//! Writing never waits: the record is written as JSON by the worker that made the decision
//! (its data is still in that core's cache; formatting it on the writer's thread instead cost
//! about 4 % of the saturation throughput), and its bytes go through a bounded queue to a
//! background writer, which appends each batch of records to the file in one write. When the
//! writer falls behind and the queue is full, records are dropped and counted
//! (`touchpoint_decision_log_dropped_total`), rather than holding up answers.
//!
//! The record ([`DecisionRecord`], format 2) is compact: candidates and actions are arrays,
//! not objects. Its bytes are most of what logging costs: writing them into the page cache
//! took about a tenth of the service's CPU at saturation when records were twice as long.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::engine::Decision;
use super::json::Json;
use super::request::{ContextValue, DecisionRequest};
use crate::telemetry::metrics as m;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecisionLogSettings {
    /// `file` (JSON lines), `redis` (a capped stream in the profile store's Redis) or `off`.
    pub sink: LogSink,
    /// The file, for `file`.
    pub path: PathBuf,
    /// The file is renamed to `<path>.1` (replacing it) when it grows past this.
    pub max_file_bytes: u64,
    /// The stream key and its approximate maximum length, for `redis`. An entry takes
    /// about 1.5 KB of Redis memory with the shipped catalog (`MEMORY USAGE` of the stream
    /// after 28,000 decisions of the load test's mix), so the default 100,000 is about 150 MB; a consumer should move entries on well before.
    pub redis_stream: String,
    pub redis_max_len: u64,
    /// Records waiting to be written; beyond it they are dropped and counted.
    pub queue: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSink {
    File,
    Redis,
    Off,
}

impl Default for DecisionLogSettings {
    fn default() -> Self {
        Self {
            sink: LogSink::File,
            path: PathBuf::from("decisions.jsonl"),
            max_file_bytes: 256 * 1024 * 1024,
            redis_stream: "tp:decisions".into(),
            redis_max_len: 100_000,
            queue: 65_536,
        }
    }
}

impl DecisionLogSettings {
    pub fn check(&self) -> Result<(), String> {
        if self.queue == 0 || self.max_file_bytes < 1024 || self.redis_max_len == 0 {
            return Err(
                "decision.log: queue, max_file_bytes (>= 1024) and redis_max_len must be positive"
                    .into(),
            );
        }
        Ok(())
    }
}

/// The record format this version writes, in every record's `format` field.
pub const FORMAT: u32 = 2;

/// One line of the log (format 2).
///
/// Candidates and actions are JSON arrays, `[offer_id, channel, send_after_s, propensity,
/// value, priority, probability]` ([`ScoredRecord`]), not objects: the field names were over
/// half of a record's bytes, and every byte is written, copied to the file and read back by
/// evaluation. `propensity`, `value` and `priority` are written to single precision (the
/// shortest text that reads back as the same `f32`: about seven significant digits, far
/// finer than any model's accuracy); `probability` in full, since
/// evaluation divides by it. Format 1 wrote objects with an RFC 3339 `send_at` and full
/// precision, and no `format` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub format: u32,
    pub decision_id: String,
    pub customer_id: String,
    pub at: String,
    pub model_version: String,
    pub catalog_version: String,
    pub degraded: bool,
    pub policy: PolicyRecord,
    pub request: RequestRecord,
    /// What the decision knew of the customer.
    pub features: serde_json::Value,
    /// Every candidate scored, with the probability of being chosen first.
    pub candidates: Vec<ScoredRecord>,
    /// The actions in rank order (rank 1 first), each with the probability the policy chose
    /// it at its rank.
    pub actions: Vec<ScoredRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub kind: String,
    pub epsilon: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub touchpoint: Option<String>,
    pub channels: Option<Vec<String>>,
    pub placement: Option<String>,
    pub limit: usize,
    pub context: serde_json::Map<String, serde_json::Value>,
}

/// A candidate or an action, written as the array `[offer_id, channel, send_after_s,
/// propensity, value, priority, probability]` (serde reads a struct from an array in field
/// order).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ScoredRecord {
    pub offer_id: String,
    pub channel: String,
    /// When it would be sent: seconds after the decision's `at` (0 for inbound, now).
    pub send_after_s: i64,
    pub propensity: f64,
    pub value: f64,
    pub priority: f64,
    pub probability: f64,
}

impl Serialize for ScoredRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(7)?;
        t.serialize_element(&self.offer_id)?;
        t.serialize_element(&self.channel)?;
        t.serialize_element(&self.send_after_s)?;
        t.serialize_element(&self.propensity)?;
        t.serialize_element(&self.value)?;
        t.serialize_element(&self.priority)?;
        t.serialize_element(&self.probability)?;
        t.end()
    }
}

impl DecisionRecord {
    /// Writes the record of a decision as one JSON object (no newline), in the shape
    /// [`DecisionRecord`] reads, straight from the decision and its request.
    ///
    /// Written by hand (see [`super::json`]) rather than through serde: this runs for every
    /// decision, and escaping was most of its work (callgrind, the `decide` bench's
    /// service path: 33,700 instructions a record through serde, 13,000 so). The unit test
    /// holds the output to what serde writes for [`DecisionRecord`].
    pub fn write(decision: &Decision, request: &DecisionRequest, out: &mut Vec<u8>) {
        let d = &decision.log;
        let mut w = Json(out);
        w.decision_head(decision);
        w.raw(b",\"format\":");
        w.usize(FORMAT as usize);
        w.raw(b",\"catalog_version\":");
        w.str(&d.catalog_version);
        w.degraded(decision.degraded);
        w.raw(b",\"policy\":{\"kind\":\"epsilon_greedy\",\"epsilon\":");
        w.f64(d.epsilon);
        w.raw(b"},\"request\":{\"touchpoint\":");
        match request.touchpoint {
            Some(c) => w.plain(c.as_str()),
            None => w.raw(b"null"),
        }
        w.raw(b",\"channels\":");
        match &request.channels {
            Some(list) => {
                w.raw(b"[");
                for (i, c) in list.iter().enumerate() {
                    w.comma(i);
                    w.plain(c.as_str());
                }
                w.raw(b"]");
            }
            None => w.raw(b"null"),
        }
        w.raw(b",\"placement\":");
        match &request.placement {
            Some(p) => w.str(p),
            None => w.raw(b"null"),
        }
        w.raw(b",\"limit\":");
        w.usize(request.limit);
        w.raw(b",\"context\":{");
        for (i, (k, v)) in request.context.iter().enumerate() {
            w.comma(i);
            w.str(k);
            w.raw(b":");
            match v {
                ContextValue::Text(t) => w.str(t),
                ContextValue::Number(n) => w.f64(*n),
                ContextValue::Bool(b) => w.raw(if *b { b"true" } else { b"false" }),
            }
        }
        w.raw(b"}},\"features\":{\"segment\":");
        match d.segment {
            Some(s) => w.usize(s),
            None => w.raw(b"null"),
        }
        w.raw(b",\"value\":");
        match &d.value {
            Some(v) => {
                w.raw(b"{\"p_alive\":");
                w.f64(v.p_alive);
                w.raw(b",\"expected_purchases_90d\":");
                w.f64(v.expected_purchases_90d);
                w.raw(b",\"expected_spend_per_purchase\":");
                w.f64(v.expected_spend_per_purchase);
                w.raw(b",\"clv_365d\":");
                w.f64(v.clv_365d);
                w.raw(b"}");
            }
            None => w.raw(b"null"),
        }
        w.raw(b"},\"candidates\":[");
        for (i, c) in d.candidates.iter().enumerate() {
            w.comma(i);
            let scores = [c.propensity, c.value, c.priority, c.probability];
            w.scored_array(c.offer_id.as_str(), c.channel, c.send_at - d.at, scores);
        }
        w.raw(b"],\"actions\":[");
        for (i, a) in decision.actions.iter().enumerate() {
            w.comma(i);
            let scores = [a.propensity, a.value, a.priority, a.probability];
            w.scored_array(&a.offer_id, a.channel, a.send_at_unix - d.at, scores);
        }
        w.raw(b"]}");
    }
}

/// The handle decisions log through: each record, as JSON without a newline, goes to the
/// background writer.
#[derive(Clone)]
pub struct DecisionLog {
    tx: Option<mpsc::Sender<Vec<u8>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot open the decision log {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DecisionLog {
    pub fn off() -> Self {
        Self { tx: None }
    }

    /// Starts the writer. `redis` is the profile store's Redis URL, for the `redis` sink.
    pub fn start(
        settings: &DecisionLogSettings,
        redis: Option<&crate::profile::redis_store::RedisOptions>,
    ) -> Result<(Self, Option<tokio::task::JoinHandle<()>>), LogError> {
        match settings.sink {
            LogSink::Off => Ok((Self::off(), None)),
            LogSink::File => {
                let file = open_append(&settings.path)?;
                let (tx, rx) = mpsc::channel(settings.queue);
                let task = tokio::spawn(write_file(rx, file, settings.clone()));
                Ok((Self { tx: Some(tx) }, Some(task)))
            }
            LogSink::Redis => {
                let (tx, rx) = mpsc::channel(settings.queue);
                let client = redis
                    .and_then(|r| crate::profile::redis_store::client(&r.url).ok())
                    .ok_or_else(|| LogError::Open {
                        path: PathBuf::from(&settings.redis_stream),
                        source: std::io::Error::other(
                            "the redis decision log needs store.redis_url",
                        ),
                    })?;
                let task = tokio::spawn(write_redis(rx, client, settings.clone()));
                Ok((Self { tx: Some(tx) }, Some(task)))
            }
        }
    }

    /// Writes the decision's record and queues it for the log; never waits. Nothing is
    /// written when the log is off.
    pub fn record(&self, decision: &Decision, request: &DecisionRequest) {
        if let Some(tx) = &self.tx {
            let mut line = Vec::with_capacity(RECORD_CAPACITY);
            DecisionRecord::write(decision, request, &mut line);
            if tx.try_send(line).is_err() {
                metrics::counter!(m::DECISION_LOG_DROPPED).increment(1);
            }
        }
    }
}

fn open_append(path: &PathBuf) -> Result<std::fs::File, LogError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| LogError::Open {
            path: path.clone(),
            source,
        })?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| LogError::Open {
            path: path.clone(),
            source,
        })
}

/// Room for a record: they are about 1.3 KB with the shipped catalog (decision load test).
const RECORD_CAPACITY: usize = 2048;

/// Records written per batch, at most.
const BATCH: usize = 1024;
/// Pause after each batch. A writer waiting on an empty queue is woken by every record, a
/// thread wake-up per decision; pausing lets records gather, so under load the writer
/// wakes once per pause (the decision load test) and a record waits at most this long.
const GATHER: std::time::Duration = std::time::Duration::from_millis(5);

/// Waits for records and takes up to [`BATCH`] of them; false once the queue is closed and
/// empty (the service is stopping).
async fn next_batch(rx: &mut mpsc::Receiver<Vec<u8>>, batch: &mut Vec<Vec<u8>>) -> bool {
    let Some(first) = rx.recv().await else {
        return false;
    };
    batch.push(first);
    if rx.len() < BATCH && !rx.is_closed() {
        tokio::time::sleep(GATHER).await;
    }
    while batch.len() < BATCH {
        match rx.try_recv() {
            Ok(record) => batch.push(record),
            Err(_) => break,
        }
    }
    true
}

async fn write_file(
    mut rx: mpsc::Receiver<Vec<u8>>,
    mut file: std::fs::File,
    settings: DecisionLogSettings,
) {
    let mut size = std::fs::metadata(&settings.path)
        .map(|m| m.len())
        .unwrap_or(0);
    let mut batch = Vec::with_capacity(256);
    // A batch goes to the file in one write, not one per 64 KB of a `BufWriter`: under load
    // a batch is a few hundred records.
    let mut out: Vec<u8> = Vec::with_capacity(1 << 20);
    while next_batch(&mut rx, &mut batch).await {
        let records = batch.len() as u64;
        out.clear();
        for line in batch.drain(..) {
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
        if let Err(e) = file.write_all(&out) {
            metrics::counter!(m::DECISION_LOG_DROPPED).increment(records);
            tracing::warn!(path = %settings.path.display(), error = %e, "cannot write the decision log");
            // A part written would end in half a line that the next batch's first record
            // runs into: cut it off.
            let _ = file.set_len(size);
        } else {
            size += out.len() as u64;
        }
        if size > settings.max_file_bytes {
            let rotated = PathBuf::from(format!("{}.1", settings.path.display()));
            let _ = std::fs::rename(&settings.path, rotated);
            match open_append(&settings.path) {
                Ok(f) => {
                    file = f;
                    size = 0;
                }
                Err(e) => tracing::warn!(error = %e, "cannot reopen the decision log"),
            }
        }
    }
}

async fn write_redis(
    mut rx: mpsc::Receiver<Vec<u8>>,
    client: redis::Client,
    settings: DecisionLogSettings,
) {
    let mut conn = None;
    let mut batch = Vec::with_capacity(256);
    while next_batch(&mut rx, &mut batch).await {
        if conn.is_none() {
            conn = client.get_multiplexed_async_connection().await.ok();
        }
        let Some(c) = conn.as_mut() else {
            metrics::counter!(m::DECISION_LOG_DROPPED).increment(batch.len() as u64);
            batch.clear();
            continue;
        };
        let mut pipe = redis::pipe();
        let records = batch.len() as u64;
        for json in batch.drain(..) {
            pipe.cmd("XADD")
                .arg(&settings.redis_stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(settings.redis_max_len)
                .arg("*")
                .arg("decision")
                .arg(json)
                .ignore();
        }
        if pipe.query_async::<()>(c).await.is_err() {
            metrics::counter!(m::DECISION_LOG_DROPPED).increment(records);
            conn = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::engine::{Action, LogDetails, LoggedCandidate};
    use crate::profile::Channel;

    fn candidate(offer: &str, channel: Channel, send_at: i64, x: f64) -> LoggedCandidate {
        LoggedCandidate {
            offer_id: crate::profile::OfferId::parse(offer).unwrap(),
            channel,
            send_at,
            propensity: x,
            value: 10.0 * x,
            priority: x * x,
            probability: 1.0 / 3.0,
        }
    }

    /// The hand-written lists read back exactly as the typed record serde would write: keys,
    /// order of ranks, numbers, and strings that do need escaping.
    #[test]
    fn a_record_is_the_typed_record_as_json() {
        let request = super::super::request::parse_request(
            br#"{"customer_id":"c-1","touchpoint":"web","channels":["email","sms"],
                 "placement":"hero \"1\"","limit":2,
                 "context":{"device":"mobile","n":3.5,"ok":true,"k":"v\u0001"}}"#,
        )
        .unwrap();
        let candidates = vec![
            candidate("gold-card", Channel::Web, 1_790_000_000, 0.25),
            candidate("gold-card", Channel::Email, 1_790_003_600, 0.125),
            candidate("loan-2026.b", Channel::Email, 1_790_003_600, 1e-7),
            candidate(
                "mortgage-switch",
                Channel::Sms,
                1_790_007_200,
                0.034666553699773825,
            ),
        ];
        let rfc3339 = |t: i64| {
            chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let action = |rank, c: &LoggedCandidate| Action {
            rank,
            offer_id: c.offer_id.to_string(),
            channel: c.channel,
            send_at: rfc3339(c.send_at),
            send_at_unix: c.send_at,
            propensity: c.propensity,
            value: c.value,
            priority: c.priority,
            probability: c.probability,
            explanation: None,
        };
        let value = crate::model::value::ValueFigures {
            p_alive: 0.71,
            expected_purchases_90d: 0.84,
            expected_spend_per_purchase: 38.2,
            clv_365d: f64::NAN,
        };
        let decision = Decision {
            decision_id: "d-1".into(),
            customer_id: "c-1".into(),
            at: rfc3339(1_790_000_000),
            model_version: "m-1".into(),
            degraded: false,
            actions: vec![action(1, &candidates[0]), action(2, &candidates[2])],
            suppressed: None,
            log: LogDetails {
                at: 1_790_000_000,
                candidates: candidates.clone(),
                segment: Some(2),
                value: Some(value),
                catalog_version: "cat-1".into(),
                epsilon: 0.05,
            },
        };
        let mut out = Vec::new();
        DecisionRecord::write(&decision, &request, &mut out);
        let written: serde_json::Value = serde_json::from_slice(&out).unwrap();

        // Scores to single precision, as the shortest text that reads back as the same f32
        // (Rust's `Display` for f32 is that text too); the probability in full.
        let single = |x: f64| (x as f32).to_string().parse::<f64>().unwrap();
        let record = |c: &LoggedCandidate| ScoredRecord {
            offer_id: c.offer_id.to_string(),
            channel: c.channel.as_str().into(),
            send_after_s: c.send_at - 1_790_000_000,
            propensity: single(c.propensity),
            value: single(c.value),
            priority: single(c.priority),
            probability: c.probability,
        };
        let expected = DecisionRecord {
            format: 2,
            decision_id: "d-1".into(),
            customer_id: "c-1".into(),
            at: rfc3339(1_790_000_000),
            model_version: "m-1".into(),
            catalog_version: "cat-1".into(),
            degraded: false,
            policy: PolicyRecord {
                kind: "epsilon_greedy".into(),
                epsilon: 0.05,
            },
            request: RequestRecord {
                touchpoint: Some("web".into()),
                channels: Some(vec!["email".into(), "sms".into()]),
                placement: Some("hero \"1\"".into()),
                limit: 2,
                context:
                    serde_json::json!({"device": "mobile", "n": 3.5, "ok": true, "k": "v\u{1}"})
                        .as_object()
                        .unwrap()
                        .clone(),
            },
            // Built from the type, so a new value figure the writer leaves out fails here.
            features: serde_json::json!({"segment": 2, "value": value}),
            candidates: candidates.iter().map(record).collect(),
            actions: vec![record(&candidates[0]), record(&candidates[2])],
        };
        assert_eq!(written, serde_json::to_value(&expected).unwrap());
        let typed: DecisionRecord = serde_json::from_slice(&out).unwrap();
        assert_eq!(typed, expected);
        assert_eq!(typed.request.placement.as_deref(), Some("hero \"1\""));
    }
}
