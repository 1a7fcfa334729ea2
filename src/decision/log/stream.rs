//! The Redis stream writer: records appended with `XADD` (a capped stream), one round trip
//! a batch, and erasure passes that `XDEL` a customer's entries. On a Redis Cluster the
//! stream is split into 16 (`<redis_stream>:{s0}` to `:{s15}`, each customer's records in the
//! one its id hashes to, the cap shared among them), so an erasure reads one shard only.

use tokio::sync::mpsc;

use super::erasure::{Erasures, answer};
use super::{DecisionLogSettings, Item, next_batch};
use crate::profile::redis_conn::{Conn, Layout, xdel_where};
use crate::profile::redis_store::{RedisOptions, connect_conn};
use crate::telemetry::metrics as m;

/// Erases the customers' records from the shards that hold them (each customer's records
/// are in one shard).
async fn erase(
    conn: &mut Conn,
    layout: Layout,
    stream: &str,
    erasures: Vec<super::Erasure>,
) -> Vec<(Vec<super::Erasure>, Result<u64, String>)> {
    let mut by_shard: Vec<Vec<super::Erasure>> = (0..layout.shards).map(|_| Vec::new()).collect();
    for e in erasures {
        by_shard[layout.shard_of(&e.customer)].push(e);
    }
    let mut answers = Vec::new();
    for (shard, erasures) in by_shard.into_iter().enumerate() {
        if erasures.is_empty() {
            continue;
        }
        let doomed = Erasures::new(&erasures);
        let result = xdel_where(conn, &layout.key(stream, shard), "decision", |record| {
            doomed.covers(record)
        })
        .await
        .map_err(|e| e.to_string());
        answers.push((erasures, result));
    }
    answers
}

pub(super) async fn write(
    mut rx: mpsc::Receiver<Item>,
    redis: RedisOptions,
    layout: Layout,
    settings: DecisionLogSettings,
) {
    let mut conn: Option<Conn> = None;
    let mut batch = Vec::with_capacity(256);
    let mut records = Vec::with_capacity(256);
    let mut erasures = Vec::new();
    while next_batch(&mut rx, &mut batch).await {
        for item in batch.drain(..) {
            match item {
                Item::Record(json, shard) => records.push((json, shard)),
                Item::Erase(e) => erasures.push(e),
            }
        }
        if conn.is_none() {
            conn = connect_conn(&redis).await.ok();
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
            && let Err(e) = add_to_stream(c, layout, &settings, &mut records).await
        {
            tracing::warn!(error = %e, "cannot write the decision log stream");
        }
        if !erasures.is_empty() {
            let stream = &settings.redis_stream;
            for (erasures, result) in erase(c, layout, stream, std::mem::take(&mut erasures)).await
            {
                answer(erasures, result);
            }
        }
    }
}

/// Appends the records to the stream (each to its customer's shard) in one round trip;
/// they are dropped (and counted) when it fails.
async fn add_to_stream(
    c: &mut Conn,
    layout: Layout,
    settings: &DecisionLogSettings,
    records: &mut Vec<(Vec<u8>, usize)>,
) -> redis::RedisResult<()> {
    let count = records.len() as u64;
    let keys = layout.keys(&settings.redis_stream);
    let max_len = settings.redis_max_len / layout.shards as u64;
    let mut shards: Vec<Vec<redis::Cmd>> = vec![Vec::new(); layout.shards];
    for (json, shard) in records.drain(..) {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&keys[shard])
            .arg("MAXLEN")
            .arg("~")
            .arg(max_len)
            .arg("*")
            .arg("decision")
            .arg(json);
        shards[shard].push(cmd);
    }
    match c.run(shards).await {
        Ok(answers) => {
            // A record the server refused (out of memory, a key of another type) is lost.
            let refused: Vec<&redis::Value> = answers
                .iter()
                .flatten()
                .filter(|v| matches!(v, redis::Value::ServerError(_)))
                .collect();
            if let Some(first) = refused.first() {
                tracing::warn!(refused = refused.len(), error = ?first, "redis refused decision log records");
                metrics::counter!(m::DECISION_LOG_DROPPED).increment(refused.len() as u64);
            }
            Ok(())
        }
        Err(e) => {
            metrics::counter!(m::DECISION_LOG_DROPPED).increment(count);
            Err(e)
        }
    }
}
