//! The decision log: every decision, with its context features, every candidate with its
//! score and the probability the policy would have chosen it, the choice, and the model
//! version, as one JSON line, so that `touchpoint evaluate` and training can read it later.
//! Events that carry the `decision_id` join to it.
//!
//! Writing never slows a decision: records go through a bounded queue to a background
//! writer. When the writer falls behind and the queue is full, records are dropped and
//! counted (`touchpoint_decision_log_dropped_total`), rather than holding up answers.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::engine::Decision;
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
    /// about 2.5 KB of Redis memory with the shipped catalog (decision load test), so the
    /// default 100,000 is about 250 MB; a consumer should move entries on well before.
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

/// One line of the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionRecord {
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
    pub candidates: Vec<CandidateRecord>,
    pub actions: Vec<ActionRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub kind: String,
    pub epsilon: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestRecord {
    pub touchpoint: Option<String>,
    pub channels: Option<Vec<String>>,
    pub placement: Option<String>,
    pub limit: usize,
    pub context: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CandidateRecord {
    pub offer_id: String,
    pub channel: String,
    pub send_at: String,
    pub propensity: f64,
    pub value: f64,
    pub priority: f64,
    pub probability: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionRecord {
    pub rank: usize,
    /// The action as a candidate: offer, channel, time and scores.
    #[serde(flatten)]
    pub candidate: CandidateRecord,
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl DecisionRecord {
    /// Writes the record of a decision as one JSON object (no newline), in the shape
    /// [`DecisionRecord`] reads. Serialized straight from the decision, borrowing its
    /// strings: the writer does this for every decision, so it allocates little.
    pub fn write(
        decision: &Decision,
        request: &DecisionRequest,
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        let d = &decision.log;
        serde_json::to_writer(
            out,
            &RecordView {
                decision_id: &decision.decision_id,
                customer_id: &decision.customer_id,
                at: &decision.at,
                model_version: &decision.model_version,
                catalog_version: &d.catalog_version,
                degraded: decision.degraded,
                policy: PolicyView {
                    kind: "epsilon_greedy",
                    epsilon: d.epsilon,
                },
                request: RequestView {
                    touchpoint: request.touchpoint,
                    channels: request.channels.as_deref(),
                    placement: request.placement.as_deref(),
                    limit: request.limit,
                    context: ContextView(&request.context),
                },
                features: FeaturesView {
                    segment: d.segment,
                    value: d.value.as_ref(),
                },
                candidates: CandidatesView(&d.candidates),
                actions: ActionsView(&decision.actions),
            },
        )
    }
}

#[derive(Serialize)]
struct RecordView<'a> {
    decision_id: &'a str,
    customer_id: &'a str,
    at: &'a str,
    model_version: &'a str,
    catalog_version: &'a str,
    degraded: bool,
    policy: PolicyView,
    request: RequestView<'a>,
    features: FeaturesView<'a>,
    candidates: CandidatesView<'a>,
    actions: ActionsView<'a>,
}

#[derive(Serialize)]
struct PolicyView {
    kind: &'static str,
    epsilon: f64,
}

#[derive(Serialize)]
struct RequestView<'a> {
    touchpoint: Option<crate::profile::Channel>,
    channels: Option<&'a [crate::profile::Channel]>,
    placement: Option<&'a str>,
    limit: usize,
    context: ContextView<'a>,
}

struct ContextView<'a>(&'a std::collections::BTreeMap<String, ContextValue>);

impl Serialize for ContextView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            match v {
                ContextValue::Text(t) => map.serialize_entry(k, t)?,
                ContextValue::Number(n) => map.serialize_entry(k, n)?,
                ContextValue::Bool(b) => map.serialize_entry(k, b)?,
            }
        }
        map.end()
    }
}

#[derive(Serialize)]
struct FeaturesView<'a> {
    segment: Option<usize>,
    value: Option<&'a crate::model::value::ValueFigures>,
}

#[derive(Serialize)]
struct CandidateView<'a> {
    offer_id: &'a str,
    channel: crate::profile::Channel,
    send_at: &'a str,
    propensity: f64,
    value: f64,
    priority: f64,
    probability: f64,
}

struct CandidatesView<'a>(&'a [super::engine::LoggedCandidate]);

impl Serialize for CandidatesView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        // Candidates share a few send times (inbound ones all have the decision's): each
        // distinct run is formatted once.
        let mut last: Option<(i64, String)> = None;
        for c in self.0 {
            let send_at = match &last {
                Some((t, text)) if *t == c.send_at => text,
                _ => &last.insert((c.send_at, rfc3339(c.send_at))).1,
            };
            seq.serialize_element(&CandidateView {
                offer_id: &c.offer_id,
                channel: c.channel,
                send_at,
                propensity: c.propensity,
                value: c.value,
                priority: c.priority,
                probability: c.probability,
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct ActionView<'a> {
    rank: usize,
    #[serde(flatten)]
    scored: CandidateView<'a>,
}

struct ActionsView<'a>(&'a [super::engine::Action]);

impl Serialize for ActionsView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|a| ActionView {
            rank: a.rank,
            scored: CandidateView {
                offer_id: &a.offer_id,
                channel: a.channel,
                send_at: &a.send_at,
                propensity: a.propensity,
                value: a.value,
                priority: a.priority,
                probability: a.probability,
            },
        }))
    }
}

/// The handle decisions log through. The decision and its request are handed over whole
/// (moved, not copied) and turned into a record by the writer, off the request path.
#[derive(Clone)]
pub struct DecisionLog {
    tx: Option<mpsc::Sender<(Decision, DecisionRequest)>>,
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
                    .and_then(|r| redis::Client::open(r.url.as_str()).ok())
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

    /// Queues a decision for the log; never waits.
    pub fn record(&self, decision: Decision, request: DecisionRequest) {
        if let Some(tx) = &self.tx
            && tx.try_send((decision, request)).is_err()
        {
            metrics::counter!(m::DECISION_LOG_DROPPED).increment(1);
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

/// Records written per batch, at most.
const BATCH: usize = 1024;
/// Pause after each batch. A writer waiting on an empty queue is woken by every record, a
/// thread wake-up per decision; pausing lets records gather, so under load the writer
/// wakes once per pause (the decision load test) and a record waits at most this long.
const GATHER: std::time::Duration = std::time::Duration::from_millis(5);

/// Waits for records and takes up to [`BATCH`] of them; false once the queue is closed and
/// empty (the service is stopping).
async fn next_batch(
    rx: &mut mpsc::Receiver<(Decision, DecisionRequest)>,
    batch: &mut Vec<(Decision, DecisionRequest)>,
) -> bool {
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
    mut rx: mpsc::Receiver<(Decision, DecisionRequest)>,
    file: std::fs::File,
    settings: DecisionLogSettings,
) {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    let mut size = std::fs::metadata(&settings.path)
        .map(|m| m.len())
        .unwrap_or(0);
    let mut batch = Vec::with_capacity(256);
    let mut line = Vec::with_capacity(4096);
    while next_batch(&mut rx, &mut batch).await {
        for (decision, request) in batch.drain(..) {
            line.clear();
            if DecisionRecord::write(&decision, &request, &mut line).is_err() {
                continue;
            }
            line.push(b'\n');
            size += line.len() as u64;
            if out.write_all(&line).is_err() {
                metrics::counter!(m::DECISION_LOG_DROPPED).increment(1);
            }
        }
        if out.flush().is_err() {
            tracing::warn!(path = %settings.path.display(), "cannot write the decision log");
        }
        if size > settings.max_file_bytes {
            let rotated = PathBuf::from(format!("{}.1", settings.path.display()));
            let _ = std::fs::rename(&settings.path, rotated);
            match open_append(&settings.path) {
                Ok(f) => {
                    out = std::io::BufWriter::with_capacity(1 << 16, f);
                    size = 0;
                }
                Err(e) => tracing::warn!(error = %e, "cannot reopen the decision log"),
            }
        }
    }
    let _ = out.flush();
}

async fn write_redis(
    mut rx: mpsc::Receiver<(Decision, DecisionRequest)>,
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
        for (decision, request) in batch.drain(..) {
            let mut json = Vec::with_capacity(4096);
            if DecisionRecord::write(&decision, &request, &mut json).is_err() {
                continue;
            }
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
