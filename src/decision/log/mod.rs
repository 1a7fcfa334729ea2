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

mod erasure;
mod file;
mod stream;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::answer::Decision;
use super::record::{DecisionRecord, RECORD_CAPACITY};
use super::request::DecisionRequest;
use crate::profile::redis_conn::Layout;
use crate::telemetry::metrics as m;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecisionLogSettings {
    /// `file` (JSON lines), `redis` (a capped stream in the profile store's Redis) or `off`.
    pub sink: LogSink,
    /// The file, for `file`; empty means `decisions.jsonl` in the state directory
    /// (`$XDG_STATE_HOME/touchpoint`, else `~/.local/state/touchpoint`).
    pub path: PathBuf,
    /// The file is renamed to `<path>.1` (replacing it) when it grows past this: the log
    /// takes at most twice this on disk.
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
            path: PathBuf::new(),
            max_file_bytes: 64 * 1024 * 1024,
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

/// The handle decisions log through: each record, as JSON without a newline, goes to the
/// background writer.
#[derive(Clone)]
pub struct DecisionLog {
    tx: Option<mpsc::Sender<Item>>,
    /// The Redis stream's shards ([`crate::profile::redis_conn::Layout`]): one, but on a
    /// Redis Cluster.
    layout: Layout,
}

/// What the writer is sent: a record (and the shard of its customer, for the Redis
/// stream), or a customer whose records are to be erased.
pub(super) enum Item {
    Record(Vec<u8>, usize),
    Erase(Erasure),
}

pub(super) struct Erasure {
    pub customer: String,
    /// Told how many records were removed, or why they could not be.
    pub done: oneshot::Sender<Result<u64, String>>,
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
        Self {
            tx: None,
            layout: Layout::for_cluster(false),
        }
    }

    /// Starts the writer. `redis` is the profile store's Redis URL, for the `redis` sink.
    pub fn start(
        settings: &DecisionLogSettings,
        redis: Option<&crate::profile::redis_store::RedisOptions>,
    ) -> Result<(Self, Option<tokio::task::JoinHandle<()>>), LogError> {
        match settings.sink {
            LogSink::Off => Ok((Self::off(), None)),
            LogSink::File => {
                let file = file::open_append(&settings.path)?;
                let (tx, rx) = mpsc::channel(settings.queue);
                let task = tokio::spawn(file::write(rx, file, settings.clone()));
                let layout = Layout::for_cluster(false);
                Ok((
                    Self {
                        tx: Some(tx),
                        layout,
                    },
                    Some(task),
                ))
            }
            LogSink::Redis => {
                let (tx, rx) = mpsc::channel(settings.queue);
                let redis = redis.cloned().ok_or_else(|| LogError::Open {
                    path: PathBuf::from(&settings.redis_stream),
                    source: std::io::Error::other(
                        "the redis decision log needs store.redis_url or store.redis_cluster_nodes",
                    ),
                })?;
                let layout = Layout::for_cluster(!redis.cluster_nodes.is_empty());
                let task = tokio::spawn(stream::write(rx, redis, layout, settings.clone()));
                Ok((
                    Self {
                        tx: Some(tx),
                        layout,
                    },
                    Some(task),
                ))
            }
        }
    }

    /// Writes the decision's record and queues it for the log; never waits. Nothing is
    /// written when the log is off.
    pub fn record(&self, decision: &Decision, request: &DecisionRequest) {
        if let Some(tx) = &self.tx {
            let mut line = Vec::with_capacity(RECORD_CAPACITY);
            DecisionRecord::write(decision, request, &mut line);
            let shard = self.layout.shard_of(decision.customer_id.as_str());
            if tx.try_send(Item::Record(line, shard)).is_err() {
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
pub(super) async fn next_batch(rx: &mut mpsc::Receiver<Item>, batch: &mut Vec<Item>) -> bool {
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
pub(super) fn split_batch(
    batch: &mut Vec<Item>,
    out: &mut Vec<u8>,
    erasures: &mut Vec<Erasure>,
) -> u64 {
    let mut records = 0;
    for item in batch.drain(..) {
        match item {
            Item::Record(line, _) => {
                out.extend_from_slice(&line);
                out.push(b'\n');
                records += 1;
            }
            Item::Erase(e) => erasures.push(e),
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

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
            tx.send(Item::Record(b"{}".to_vec(), 0)).await.unwrap();
        });
        let mut batch = Vec::new();
        assert!(next_batch(&mut rx, &mut batch).await);
        let customers: Vec<&str> = batch
            .iter()
            .filter_map(|i| match i {
                Item::Erase(e) => Some(e.customer.as_str()),
                Item::Record(..) => None,
            })
            .collect();
        assert_eq!(customers, ["c-1", "c-2"]);
        assert_eq!(batch.len(), 3);
    }
}
