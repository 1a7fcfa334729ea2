//! Batch campaign planning: `touchpoint decide --customers FILE` plans a whole audience
//! through the same decision service as `POST /v1/decisions` (consent, contact policy,
//! arbitration, planned actions recorded, the decision log), many decisions at once, and
//! writes each answer as a JSON line.
//!
//! The customers file holds one customer per line: an id (`c-42`), or a whole decision
//! request as `POST /v1/decisions` takes it (`{"customer_id": "c-42", "channels": ["sms"]}`).
//! Blank lines and lines starting with `#` are skipped; a line that does not read is named
//! by number and stops the run before any decision is made.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::decision::Decider;
use crate::decision::request::{DecisionRequest, parse_request};
use crate::profile::{Channel, CustomerId};

/// What every plain-id line asks for.
#[derive(Debug, Clone)]
pub struct Ask {
    /// Outbound channels to plan for; none: every channel the customer consented to.
    pub channels: Option<Vec<Channel>>,
    pub limit: usize,
}

/// The requests of a customers file.
pub fn read_customers(path: &Path, ask: &Ask) -> anyhow::Result<Vec<DecisionRequest>> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut requests = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("{} line {}", path.display(), i + 1);
        let request = if line.starts_with('{') {
            parse_request(line.as_bytes()).map_err(|e| anyhow::anyhow!("{}: {e}", at()))?
        } else {
            let customer_id = CustomerId::parse(line)
                .map_err(|e| anyhow::anyhow!("{}: customer id {e}", at()))?;
            DecisionRequest {
                customer_id,
                touchpoint: None,
                channels: ask.channels.clone(),
                placement: None,
                limit: ask.limit,
                at: None,
                context: Default::default(),
                explain: false,
            }
        };
        requests.push(request);
    }
    Ok(requests)
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub decisions: usize,
    /// Outbound actions planned (recorded for the contact limits).
    pub planned: usize,
    /// Decisions without any action.
    pub no_action: usize,
    pub degraded: usize,
    pub elapsed: Duration,
}

impl Summary {
    pub fn per_second(&self) -> f64 {
        self.decisions as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One decision's answer line and what it did.
struct Answer {
    line: Vec<u8>,
    planned: usize,
    no_action: bool,
    degraded: bool,
}

/// Decides for every request, `workers` at a time, writing each answer as a JSON line to
/// `out` (in the order they finish) and counting them on `bar`.
pub async fn plan(
    decider: Arc<Decider>,
    requests: Vec<DecisionRequest>,
    workers: usize,
    out: &mut (dyn Write + Send),
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    bar.set_length(requests.len() as u64);
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Answer>(4096);
    let mut tasks = Vec::new();
    for _ in 0..workers.max(1) {
        let (decider, requests, next, tx) =
            (decider.clone(), requests.clone(), next.clone(), tx.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = requests.get(i) else {
                    return;
                };
                let d = decider.decide(request).await;
                let planned = d.actions.iter().filter(|a| a.planned).count();
                let mut line = d.to_json();
                line.push(b'\n');
                let answer = Answer {
                    line,
                    planned,
                    no_action: d.actions.is_empty(),
                    degraded: d.degraded,
                };
                if tx.send(answer).await.is_err() {
                    return;
                }
            }
        }));
    }
    drop(tx);
    let mut summary = Summary::default();
    while let Some(a) = rx.recv().await {
        out.write_all(&a.line).context("writing the answers")?;
        summary.decisions += 1;
        summary.planned += a.planned;
        summary.no_action += usize::from(a.no_action);
        summary.degraded += usize::from(a.degraded);
        if summary.decisions % 1024 == 0 {
            bar.set_position(summary.decisions as u64);
        }
    }
    for t in tasks {
        t.await.context("a planning task failed")?;
    }
    out.flush().context("writing the answers")?;
    bar.set_position(summary.decisions as u64);
    summary.elapsed = started.elapsed();
    Ok(summary)
}
