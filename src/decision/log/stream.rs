//! The Redis stream writer: records appended with `XADD` (a capped stream), one pipeline
//! a batch, and erasure passes that `XDEL` a customer's entries.

use std::time::Duration;

use tokio::sync::mpsc;

use super::erasure::{Erasures, answer};
use super::{DecisionLogSettings, Item, next_batch};
use crate::telemetry::metrics as m;

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

pub(super) async fn write(
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
