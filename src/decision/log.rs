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
//! `DELETE /v1/customers/{id}` erases the customer's records too ([`DecisionLog::erase`]):
//! the request goes through the same queue, so every record queued before it is written
//! first, then the writer removes every record of that customer from the log file and the
//! one rotated before it (rewritten beside them and renamed over them, so a crash leaves
//! either the old file or the new), or from the Redis stream (`XDEL`). Erasures that come
//! within a few tens of milliseconds of one another share one pass over the log.
//!
//! The record ([`DecisionRecord`], format 2) is compact: candidates and actions are arrays,
//! not objects. Its bytes are most of what logging costs: writing them into the page cache
//! took about a tenth of the service's CPU at saturation when records were twice as long.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

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
    tx: Option<mpsc::Sender<Item>>,
}

/// What the writer is sent: a record, or a customer whose records are to be erased.
enum Item {
    Record(Vec<u8>),
    Erase(Erasure),
}

struct Erasure {
    customer: String,
    /// Told how many records were removed, or why they could not be.
    done: oneshot::Sender<Result<u64, String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot open the decision log {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the decision log could not erase the customer's records: {0}")]
    Erase(String),
}

/// How long an erasure may wait for the writer and its pass over the log.
const ERASE_TIMEOUT: Duration = Duration::from_secs(60);

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
            if tx.try_send(Item::Record(line)).is_err() {
                metrics::counter!(m::DECISION_LOG_DROPPED).increment(1);
            }
        }
    }

    /// Removes every record of `customer` from the log, after the records queued before
    /// this call are written, and returns how many were removed (0 when the log is off).
    /// Waits for the writer; an error means the records may still be there, and the
    /// erasure can be asked again.
    pub async fn erase(&self, customer: &str) -> Result<u64, LogError> {
        let Some(tx) = &self.tx else {
            return Ok(0);
        };
        let (done, result) = oneshot::channel();
        let item = Item::Erase(Erasure {
            customer: customer.to_owned(),
            done,
        });
        let stopped = || LogError::Erase("the log writer has stopped".into());
        let asked = async {
            tx.send(item).await.map_err(|_| stopped())?;
            result
                .await
                .map_err(|_| stopped())?
                .map_err(LogError::Erase)
        };
        tokio::time::timeout(ERASE_TIMEOUT, asked)
            .await
            .unwrap_or_else(|_| Err(LogError::Erase("timed out; ask again".into())))
    }
}

/// The customers of a batch's erasures, and how to find their records quickly.
struct Erasures {
    ids: HashSet<String>,
    /// Each id as a JSON string (`"c-42"`): a line that holds none of them is kept without
    /// being parsed.
    needles: Vec<memchr::memmem::Finder<'static>>,
}

impl Erasures {
    fn new(erasures: &[Erasure]) -> Self {
        let ids: HashSet<String> = erasures.iter().map(|e| e.customer.clone()).collect();
        let needles = ids
            .iter()
            .map(|id| {
                let quoted = serde_json::to_vec(id).expect("a string serialises");
                memchr::memmem::Finder::new(&quoted).into_owned()
            })
            .collect();
        Self { ids, needles }
    }

    /// Whether a record (one line, newline or not) is of an erased customer. A line that
    /// does not read as a record is kept.
    fn covers(&self, record: &[u8]) -> bool {
        #[derive(Deserialize)]
        struct Whose<'a> {
            #[serde(borrow)]
            customer_id: std::borrow::Cow<'a, str>,
        }
        self.needles.iter().any(|n| n.find(record).is_some())
            && serde_json::from_slice::<Whose>(record.trim_ascii_end())
                .is_ok_and(|w| self.ids.contains(w.customer_id.as_ref()))
    }
}

/// Tells each erasure its outcome.
fn answer(erasures: Vec<Erasure>, result: Result<u64, String>) {
    if let Ok(removed) = &result {
        let customers = erasures.len();
        tracing::info!(customers, removed, "decision log records erased");
    }
    for e in erasures {
        let _ = e.done.send(result.clone());
    }
}

/// Removes the erased customers' records from one log file: the kept lines are written to a
/// file beside it, synced, and renamed over it. The file is left as it was when it holds
/// none (or does not exist).
fn erase_from_file(path: &Path, erasures: &Erasures) -> std::io::Result<u64> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let kept_path = PathBuf::from(format!("{}.erasing", path.display()));
    let mut kept = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&kept_path)?);
    let mut line = Vec::with_capacity(RECORD_CAPACITY);
    let mut removed = 0;
    let copied = (|| {
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if erasures.covers(&line) {
                removed += 1;
            } else {
                kept.write_all(&line)?;
            }
        }
        kept.flush()?;
        kept.get_ref().sync_all()
    })();
    if copied.is_err() || removed == 0 {
        let _ = std::fs::remove_file(&kept_path);
        return copied.map(|()| 0);
    }
    std::fs::rename(&kept_path, path)?;
    // The rename itself is made durable by syncing the directory.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(removed)
}

/// The rotated log file beside `path`.
fn rotated(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.1", path.display()))
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

/// How long erasures may wait for others to share their pass over the log, at most.
const ERASE_GATHER: std::time::Duration = std::time::Duration::from_millis(200);

/// Waits for records and takes up to [`BATCH`] of them (more while erasures gather); false
/// once the queue is closed and empty (the service is stopping).
async fn next_batch(rx: &mut mpsc::Receiver<Item>, batch: &mut Vec<Item>) -> bool {
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
    // An erasure reads the whole log: erasures that follow closely (a batch of deletions)
    // wait for one another, a slice at a time while more come, and share one pass. The
    // records that come meanwhile join the batch.
    let erasures = |batch: &[Item]| batch.iter().filter(|i| matches!(i, Item::Erase(_))).count();
    let mut seen = erasures(batch);
    if seen > 0 {
        let until = tokio::time::Instant::now() + ERASE_GATHER;
        while tokio::time::Instant::now() < until && !rx.is_closed() {
            tokio::time::sleep(ERASE_GATHER / 4).await;
            while let Ok(item) = rx.try_recv() {
                batch.push(item);
            }
            let now = erasures(batch);
            if now == seen {
                break;
            }
            seen = now;
        }
    }
    true
}

/// Splits a batch into its records, which go to `out` one per line, and its erasures;
/// returns the number of records.
fn split_batch(batch: &mut Vec<Item>, out: &mut Vec<u8>, erasures: &mut Vec<Erasure>) -> u64 {
    let mut records = 0;
    for item in batch.drain(..) {
        match item {
            Item::Record(line) => {
                out.extend_from_slice(&line);
                out.push(b'\n');
                records += 1;
            }
            Item::Erase(e) => erasures.push(e),
        }
    }
    records
}

async fn write_file(
    mut rx: mpsc::Receiver<Item>,
    mut file: std::fs::File,
    settings: DecisionLogSettings,
) {
    let mut size = std::fs::metadata(&settings.path)
        .map(|m| m.len())
        .unwrap_or(0);
    let mut batch = Vec::with_capacity(256);
    let mut erasures = Vec::new();
    // A batch goes to the file in one write, not one per 64 KB of a `BufWriter`: under load
    // a batch is a few hundred records.
    let mut out: Vec<u8> = Vec::with_capacity(1 << 20);
    while next_batch(&mut rx, &mut batch).await {
        out.clear();
        let records = split_batch(&mut batch, &mut out, &mut erasures);
        if records > 0 {
            match file.write_all(&out) {
                Ok(()) => size += out.len() as u64,
                Err(e) => {
                    metrics::counter!(m::DECISION_LOG_DROPPED).increment(records);
                    tracing::warn!(path = %settings.path.display(), error = %e, "cannot write the decision log");
                    // A part written would end in half a line that the next batch's first
                    // record runs into: cut it off.
                    let _ = file.set_len(size);
                }
            }
        }
        if size > settings.max_file_bytes {
            let _ = std::fs::rename(&settings.path, rotated(&settings.path));
            match open_append(&settings.path) {
                Ok(f) => {
                    file = f;
                    size = 0;
                }
                Err(e) => tracing::warn!(error = %e, "cannot reopen the decision log"),
            }
        }
        if !erasures.is_empty() {
            // Off the runtime's thread: a pass reads the whole log.
            let (path, found) = (settings.path.clone(), Erasures::new(&erasures));
            let result = tokio::task::spawn_blocking(move || {
                let old = erase_from_file(&rotated(&path), &found)?;
                let current = erase_from_file(&path, &found)?;
                Ok::<_, std::io::Error>(old + current)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| format!("{}: {e}", settings.path.display())));
            // The file may have been replaced: append to the one now at the path.
            match open_append(&settings.path) {
                Ok(f) => {
                    file = f;
                    size = std::fs::metadata(&settings.path).map_or(size, |m| m.len());
                }
                Err(e) => tracing::warn!(error = %e, "cannot reopen the decision log"),
            }
            answer(std::mem::take(&mut erasures), result);
        }
    }
}

/// Entries read from the stream per `XRANGE` while erasing.
const ERASE_PAGE: usize = 1000;

/// Removes the erased customers' entries from the stream, a page at a time.
async fn erase_from_stream(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    erasures: &Erasures,
) -> redis::RedisResult<u64> {
    let mut start = "-".to_owned();
    let mut removed = 0;
    loop {
        let page: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(stream)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(ERASE_PAGE)
            .query_async(conn)
            .await?;
        let Some(last) = page.ids.last() else {
            return Ok(removed);
        };
        start = format!("({}", last.id);
        let doomed: Vec<&str> = page
            .ids
            .iter()
            .filter(|e| match e.map.get("decision") {
                Some(redis::Value::BulkString(record)) => erasures.covers(record),
                _ => false,
            })
            .map(|e| e.id.as_str())
            .collect();
        if !doomed.is_empty() {
            let n: u64 = redis::cmd("XDEL")
                .arg(stream)
                .arg(&doomed)
                .query_async(conn)
                .await?;
            removed += n;
        }
        if page.ids.len() < ERASE_PAGE {
            return Ok(removed);
        }
    }
}

async fn write_redis(
    mut rx: mpsc::Receiver<Item>,
    client: redis::Client,
    settings: DecisionLogSettings,
) {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    let mut conn = None;
    let mut batch = Vec::with_capacity(256);
    let mut records = Vec::with_capacity(256);
    let mut erasures = Vec::new();
    while next_batch(&mut rx, &mut batch).await {
        for item in batch.drain(..) {
            match item {
                Item::Record(json) => records.push(json),
                Item::Erase(e) => erasures.push(e),
            }
        }
        if conn.is_none() {
            conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .ok();
        }
        let Some(c) = conn.as_mut() else {
            metrics::counter!(m::DECISION_LOG_DROPPED).increment(records.len() as u64);
            records.clear();
            answer(
                std::mem::take(&mut erasures),
                Err("cannot connect to Redis".into()),
            );
            continue;
        };
        if !records.is_empty()
            && let Err(e) = add_to_stream(c, &settings, &mut records).await
        {
            tracing::warn!(error = %e, "cannot write the decision log stream");
            conn = None;
        }
        if !erasures.is_empty() {
            let result = match conn.as_mut() {
                Some(c) => erase_from_stream(c, &settings.redis_stream, &Erasures::new(&erasures))
                    .await
                    .map_err(|e| {
                        conn = None;
                        e.to_string()
                    }),
                None => Err("cannot write to Redis".into()),
            };
            answer(std::mem::take(&mut erasures), result);
        }
    }
}

/// Appends the records to the stream in one pipeline; they are dropped (and counted) when
/// it fails.
async fn add_to_stream(
    c: &mut redis::aio::MultiplexedConnection,
    settings: &DecisionLogSettings,
    records: &mut Vec<Vec<u8>>,
) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    let count = records.len() as u64;
    for json in records.drain(..) {
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
    let result = pipe.query_async::<()>(c).await;
    if result.is_err() {
        metrics::counter!(m::DECISION_LOG_DROPPED).increment(count);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::engine::{Action, LogDetails, LoggedCandidate};
    use crate::profile::Channel;

    fn erasures(customers: &[&str]) -> Erasures {
        let list: Vec<Erasure> = customers
            .iter()
            .map(|c| Erasure {
                customer: (*c).to_owned(),
                done: oneshot::channel().0,
            })
            .collect();
        Erasures::new(&list)
    }

    fn erase(customer: &str) -> Item {
        Item::Erase(Erasure {
            customer: customer.to_owned(),
            done: oneshot::channel().0,
        })
    }

    /// An erasure waits for one that follows closely, and both share one batch (one pass).
    #[tokio::test]
    async fn erasures_that_follow_closely_share_a_batch() {
        let (tx, mut rx) = mpsc::channel(16);
        tx.send(erase("c-1")).await.unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            tx.send(erase("c-2")).await.unwrap();
            tx.send(Item::Record(b"{}".to_vec())).await.unwrap();
        });
        let mut batch = Vec::new();
        assert!(next_batch(&mut rx, &mut batch).await);
        let customers: Vec<&str> = batch
            .iter()
            .filter_map(|i| match i {
                Item::Erase(e) => Some(e.customer.as_str()),
                Item::Record(_) => None,
            })
            .collect();
        assert_eq!(customers, ["c-1", "c-2"]);
        assert_eq!(batch.len(), 3);
    }

    /// Only the erased customers' records go: not another customer's whose record mentions
    /// the id, nor a line that is not a record; a file without any is left untouched.
    #[test]
    fn erasing_rewrites_the_file_without_the_customers_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.jsonl");
        let lines = [
            r#"{"decision_id":"d1","customer_id":"c-1","context":{}}"#,
            r#"{"decision_id":"d2","customer_id":"c-2","context":{"ref":"c-1"}}"#,
            r#"{"decision_id":"d3","customer_id":"c-\"q\"","context":{}}"#,
            r#"{"decision_id":"d4","customer_id":"c-1"#,
            r#"{"decision_id":"d5","customer_id":"c-10","context":{}}"#,
            r#"{"decision_id":"d6","customer_id":"c-1","context":{}}"#,
        ];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let removed = erase_from_file(&path, &erasures(&["c-1", "c-\"q\""])).unwrap();
        assert_eq!(removed, 3);
        let left = std::fs::read_to_string(&path).unwrap();
        assert_eq!(left, [lines[1], lines[3], lines[4]].join("\n") + "\n");
        assert!(!dir.path().join("decisions.jsonl.erasing").exists());

        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(erase_from_file(&path, &erasures(&["c-3"])).unwrap(), 0);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), left);
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
        let missing = dir.path().join("none.jsonl");
        assert_eq!(erase_from_file(&missing, &erasures(&["c-1"])).unwrap(), 0);
        assert!(!missing.exists());
    }
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
            counts_as_contact: false,
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
