//! `touchpoint import`: bulk-loads an event history (JSON lines, one API event per line) into
//! the configured profile store.
//!
//! A reader thread parses lines, gathers each customer's events within a window of
//! `import.window_events`, and hands batches to the async side, which keeps
//! `import.in_flight` batches in the store at once (each batch is two pipelined round trips on
//! Redis). A batch the store refuses is retried with backoff; events are de-duplicated by id,
//! so a retry, or re-running a whole import, never counts an event twice.
//!
//! A Redis store with no profile compression dictionary yet gets one at the end: made from a
//! sample of the imported customers' profiles, then every imported profile written again
//! compressed with it ([`crate::profile::dictionary`]); what is written after that, by any
//! replica, is compressed too. (The customers are remembered for that only up to
//! [`COMPRESSED_AFTER_IMPORT`]; the rest are compressed when next written.)

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::profile::event::parse_line_received;
use crate::profile::{ApplyOutcome, CustomerId, Event, Profiles, StoreError};
use crate::settings::ImportSettings;

/// Rejected lines listed in the summary; the rest are only counted.
const REJECTS_KEPT: usize = 1000;
const STORE_ATTEMPTS: u32 = crate::profile::store::ATTEMPTS;
/// The most customers an import remembers to compress at its end.
pub const COMPRESSED_AFTER_IMPORT: usize = 2_000_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// 1-based line number.
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct ImportSummary {
    pub lines: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected_total: u64,
    /// The first rejected lines, in file order.
    pub rejected: Vec<Rejected>,
    /// Profiles written again compressed with a dictionary made at the end of the import.
    pub compressed: usize,
    pub elapsed: Duration,
}

impl ImportSummary {
    pub fn events_per_second(&self) -> f64 {
        (self.accepted + self.duplicates) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the store refused the events of lines {first_line}..={last_line} after {STORE_ATTEMPTS} attempts: {source}. \
         Events before them may be applied; run the same import again to finish (applied events are recognised and skipped)"
    )]
    Store {
        first_line: u64,
        last_line: u64,
        source: StoreError,
    },
    #[error(
        "every event is applied, but compressing the imported profiles failed: {source}. \
         The ones not yet compressed stay as they are and are compressed when next written"
    )]
    Compress { source: StoreError },
}

struct Batch {
    events: Vec<Event>,
    first_line: u64,
    last_line: u64,
    rejected: Vec<Rejected>,
    lines: u64,
}

/// Imports the event file at `path`; an event dated more than `max_ahead` seconds after the
/// clock is rejected like any bad line.
pub async fn import_events(
    path: &Path,
    profiles: &Profiles,
    opts: &ImportSettings,
    max_ahead: i64,
    progress: &ProgressBar,
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let file = File::open(path).map_err(|source| ImportError::Read {
        path: path.to_owned(),
        source,
    })?;
    if let Ok(meta) = file.metadata() {
        progress.set_length(meta.len());
    }
    let (tx, mut rx) = mpsc::channel::<Result<Batch, std::io::Error>>(opts.in_flight * 2);
    let reader_opts = opts.clone();
    let bar = progress.clone();
    let reader =
        tokio::task::spawn_blocking(move || read_batches(file, &reader_opts, max_ahead, &bar, &tx));

    let mut summary = ImportSummary::default();
    // The customers to compress at the end, when the store has no dictionary yet.
    let mut customers: Option<HashSet<CustomerId>> = profiles.wants_dictionary().then(HashSet::new);
    let mut in_flight: JoinSet<Result<ApplyOutcome, ImportError>> = JoinSet::new();
    let mut failure = None;
    while let Some(batch) = rx.recv().await {
        let batch = match batch {
            Ok(b) => b,
            Err(source) => {
                failure = Some(ImportError::Read {
                    path: path.to_owned(),
                    source,
                });
                break;
            }
        };
        summary.lines += batch.lines;
        summary.rejected_total += batch.rejected.len() as u64;
        let room = REJECTS_KEPT.saturating_sub(summary.rejected.len());
        summary
            .rejected
            .extend(batch.rejected.into_iter().take(room));
        if batch.events.is_empty() {
            continue;
        }
        if let Some(set) = &mut customers {
            for e in &batch.events {
                if set.len() < COMPRESSED_AFTER_IMPORT && !set.contains(&e.customer_id) {
                    set.insert(e.customer_id.clone());
                }
            }
        }
        while in_flight.len() >= opts.in_flight {
            if let Some(done) = in_flight.join_next().await {
                match flatten(done) {
                    Ok(o) => add(&mut summary, o),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        if failure.is_some() {
            break;
        }
        let profiles = profiles.clone();
        in_flight.spawn(async move {
            apply_with_retry(&profiles, &batch.events)
                .await
                .map_err(|source| ImportError::Store {
                    first_line: batch.first_line,
                    last_line: batch.last_line,
                    source,
                })
        });
    }
    drop(rx); // stops the reader if we gave up early
    while let Some(done) = in_flight.join_next().await {
        match flatten(done) {
            Ok(o) => add(&mut summary, o),
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    let _ = reader.await;
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(set) = customers {
        let mut customers: Vec<CustomerId> = set.into_iter().collect();
        customers.sort_unstable();
        progress.set_message("compressing profiles");
        summary.compressed = profiles
            .compress(&customers, chrono::Utc::now().timestamp())
            .await
            .map_err(|source| ImportError::Compress { source })?;
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn add(summary: &mut ImportSummary, o: ApplyOutcome) {
    summary.accepted += o.accepted as u64;
    summary.duplicates += o.duplicates as u64;
}

fn flatten(
    r: Result<Result<ApplyOutcome, ImportError>, tokio::task::JoinError>,
) -> Result<ApplyOutcome, ImportError> {
    match r {
        Ok(inner) => inner,
        // A panic inside the store is a bug; surface it rather than pretend the batch landed.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

async fn apply_with_retry(
    profiles: &Profiles,
    events: &[Event],
) -> Result<ApplyOutcome, StoreError> {
    crate::profile::store::retried("a batch", || {
        profiles.apply(events, chrono::Utc::now().timestamp())
    })
    .await
}

/// Reads the file a window at a time. Within a window each customer's events are gathered
/// (in file order) into one batch, so a customer's profile is read and written once per
/// window instead of once per event: histories interleave customers, and this is what makes
/// an import several times cheaper than replaying the file line by line.
fn read_batches(
    file: File,
    opts: &ImportSettings,
    max_ahead: i64,
    progress: &ProgressBar,
    tx: &mpsc::Sender<Result<Batch, std::io::Error>>,
) {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::with_capacity(1024);
    let mut number = 0u64;
    let mut window = Window::new(number + 1);
    loop {
        line.clear();
        let n = match reader.read_until(b'\n', &mut line) {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        if n == 0 {
            break;
        }
        number += 1;
        progress.inc(n as u64);
        window.lines += 1;
        window.last_line = number;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match parse_line_received(text, chrono::Utc::now().timestamp(), max_ahead) {
            Ok(event) => window.events.push(event),
            Err(invalid) => window.rejected.push(Rejected {
                line: number,
                reason: invalid.to_string(),
            }),
        }
        if window.events.len() >= opts.window_events {
            let full = std::mem::replace(&mut window, Window::new(number + 1));
            if !full.send(opts.batch_events, tx) {
                return;
            }
        }
    }
    window.send(opts.batch_events, tx);
}

struct Window {
    events: Vec<Event>,
    rejected: Vec<Rejected>,
    first_line: u64,
    last_line: u64,
    lines: u64,
}

impl Window {
    fn new(first_line: u64) -> Self {
        Self {
            events: Vec::new(),
            rejected: Vec::new(),
            first_line,
            last_line: first_line,
            lines: 0,
        }
    }

    /// Splits the window into batches of about `batch_events`, never splitting a customer's
    /// events. Returns false when the receiver is gone.
    fn send(self, batch_events: usize, tx: &mpsc::Sender<Result<Batch, std::io::Error>>) -> bool {
        // Counting sort by customer, customers in order of first appearance: linear, and a
        // customer's events keep their file order.
        let mut group_of_event = Vec::with_capacity(self.events.len());
        let mut group_sizes: Vec<usize> = Vec::new();
        {
            let mut groups: HashMap<&str, usize> = HashMap::new();
            for e in &self.events {
                let g = *groups.entry(e.customer_id.as_str()).or_insert_with(|| {
                    group_sizes.push(0);
                    group_sizes.len() - 1
                });
                group_sizes[g] += 1;
                group_of_event.push(g);
            }
        }
        let mut next_slot: Vec<usize> = group_sizes
            .iter()
            .scan(0, |start, &size| {
                let s = *start;
                *start += size;
                Some(s)
            })
            .collect();
        let mut order = vec![0; self.events.len()];
        for (i, &g) in group_of_event.iter().enumerate() {
            order[next_slot[g]] = i;
            next_slot[g] += 1;
        }
        let mut slots: Vec<Option<Event>> = self.events.into_iter().map(Some).collect();
        let mut batch = Batch {
            events: Vec::with_capacity(batch_events),
            first_line: self.first_line,
            last_line: self.last_line,
            rejected: self.rejected,
            lines: self.lines,
        };
        let mut k = 0;
        while k < order.len() {
            let customer = slots[order[k]]
                .as_ref()
                .map(|e| e.customer_id.clone())
                .expect("each event is taken once");
            while k < order.len()
                && slots[order[k]]
                    .as_ref()
                    .is_some_and(|e| e.customer_id == customer)
            {
                batch.events.extend(slots[order[k]].take());
                k += 1;
            }
            if batch.events.len() >= batch_events {
                let next = Batch {
                    events: Vec::with_capacity(batch_events),
                    first_line: self.first_line,
                    last_line: self.last_line,
                    rejected: Vec::new(),
                    lines: 0,
                };
                if tx
                    .blocking_send(Ok(std::mem::replace(&mut batch, next)))
                    .is_err()
                {
                    return false;
                }
            }
        }
        tx.blocking_send(Ok(batch)).is_ok()
    }
}
