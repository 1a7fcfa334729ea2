//! The Redis store.
//!
//! Layout: one string per customer, `{prefix}:{<customer_id>}:profile`, holding an 8-byte
//! version and the encoded profile. Every key of a customer carries the `{customer_id}` hash
//! tag, so all of them live in one Redis Cluster slot and one customer's update stays a single
//! atomic step on a cluster too.
//!
//! Writes are optimistic: read the profiles of a batch's customers in one pipeline, apply the
//! events in Rust (the same [`Profile::apply`] the memory store uses), then write each back in
//! a second pipeline with a compare-and-set Lua script that only replaces the value if its
//! version is unchanged. A customer whose profile changed in between is re-read and re-applied.
//! De-duplication memory lives inside the profile, so "applied" and "remembered as applied"
//! can never disagree.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, ServerErrorKind, Value};

use super::codec;
use super::event::Event;
use super::ids::CustomerId;
use super::state::{Applied, Profile, ProfileLimits};
use super::store::{ApplyOutcome, ProfileStore, StoreError, group_by_customer};

/// Replaces a profile only if its version prefix is what the writer read.
/// KEYS[1] = profile key, ARGV[1] = version read (8 bytes, or empty when absent),
/// ARGV[2] = new value (next version + profile).
const COMPARE_AND_SET: &str = r#"
local current = redis.call('GETRANGE', KEYS[1], 0, 7)
if current ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"#;

/// Writers that lost a compare-and-set race back off for a random 0..2^k ms (capped), so
/// that even many writers hammering one customer get through; the operation's time limit
/// bounds the whole loop, and beyond these attempts the caller gets a 503 and retries.
const MAX_WRITE_ATTEMPTS: u32 = 64;
const MAX_BACKOFF_MS: u64 = 16;

/// Connection settings for the Redis store.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    pub url: String,
    pub key_prefix: String,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// Limit on each answer; the redis crate's default has no limit, so a stopped server
    /// would hang callers for the OS's TCP timeout.
    pub response_timeout: Duration,
}

pub struct RedisStore {
    /// Multiplexed and self-reconnecting; cloning it is cheap and shares the connection, so
    /// there is no pool and no lock.
    conn: ConnectionManager,
    limits: ProfileLimits,
    prefix: String,
    script_sha: String,
}

fn unavailable(e: RedisError) -> StoreError {
    if e.is_timeout() {
        StoreError::Unavailable(format!("redis timed out: {e}"))
    } else {
        StoreError::Unavailable(format!("redis: {e}"))
    }
}

impl RedisStore {
    /// Connects and loads the write script; fails fast when Redis cannot be reached.
    pub async fn connect(opts: &RedisOptions, limits: ProfileLimits) -> Result<Self, StoreError> {
        let client = redis::Client::open(opts.url.as_str())
            .map_err(|e| StoreError::Unavailable(format!("bad redis url {:?}: {e}", opts.url)))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(opts.connect_timeout))
            .set_response_timeout(Some(opts.response_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(200));
        let conn = tokio::time::timeout(
            opts.connect_timeout * 2,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| {
            StoreError::Unavailable(format!("redis at {} did not answer in time", opts.url))
        })?
        .map_err(unavailable)?;
        let store = Self {
            conn,
            limits,
            prefix: opts.key_prefix.clone(),
            script_sha: redis::Script::new(COMPARE_AND_SET).get_hash().to_owned(),
        };
        store.load_script().await?;
        Ok(store)
    }

    async fn load_script(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(COMPARE_AND_SET)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        debug_assert_eq!(sha, self.script_sha);
        Ok(())
    }

    pub fn profile_key(&self, customer: &str) -> String {
        format!("{}:{{{customer}}}:profile", self.prefix)
    }

    /// Every key the store may hold for a customer; erasure deletes them all.
    pub fn customer_keys(&self, customer: &str) -> Vec<String> {
        vec![self.profile_key(customer)]
    }

    /// Reads the profiles of `customers`, with the version each was read at.
    async fn read(&self, customers: &[&CustomerId]) -> Result<Vec<(Vec<u8>, Profile)>, StoreError> {
        let mut pipe = redis::pipe();
        for c in customers {
            pipe.cmd("GET").arg(self.profile_key(c.as_str()));
        }
        let mut conn = self.conn.clone();
        let rows: Vec<Option<Vec<u8>>> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
        customers
            .iter()
            .zip(rows)
            .map(|(c, row)| match row {
                None => Ok((Vec::new(), Profile::default())),
                Some(bytes) => split_versioned(&bytes)
                    .and_then(|(v, body)| Ok((v.to_vec(), codec::decode(body)?)))
                    .map_err(|e| StoreError::Corrupt {
                        customer: c.to_string(),
                        reason: e.to_string(),
                    }),
            })
            .collect()
    }
}

fn split_versioned(bytes: &[u8]) -> Result<(&[u8], &[u8]), codec::CodecError> {
    if bytes.len() < 9 {
        return Err(codec::CodecError::Empty);
    }
    Ok(bytes.split_at(8))
}

fn next_version(read: &[u8]) -> [u8; 8] {
    let v = <[u8; 8]>::try_from(read).map_or(0, u64::from_be_bytes);
    v.wrapping_add(1).to_be_bytes()
}

#[async_trait]
impl ProfileStore for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn apply(&self, events: &[Event], now: i64) -> Result<ApplyOutcome, StoreError> {
        let groups = group_by_customer(events);
        let mut pending: Vec<usize> = (0..groups.len()).collect();
        let mut outcome = ApplyOutcome::default();
        let mut conn = self.conn.clone();
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            let customers: Vec<&CustomerId> = pending.iter().map(|&g| groups[g].0).collect();
            let profiles = self.read(&customers).await?;

            let mut writes = Vec::with_capacity(pending.len());
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for (&g, (version, mut profile)) in pending.iter().zip(profiles) {
                let mut counts = ApplyOutcome::default();
                for event in &groups[g].1 {
                    match profile.apply(event, &self.limits, now) {
                        Applied::New => counts.accepted += 1,
                        Applied::Duplicate => counts.duplicates += 1,
                    }
                }
                if counts.accepted == 0 {
                    outcome += counts; // only duplicates: nothing to write
                    continue;
                }
                let mut value = Vec::with_capacity(512);
                value.extend_from_slice(&next_version(&version));
                value.extend_from_slice(&codec::encode(&profile));
                pipe.cmd("EVALSHA")
                    .arg(&self.script_sha)
                    .arg(1)
                    .arg(self.profile_key(groups[g].0.as_str()))
                    .arg(version)
                    .arg(value);
                writes.push((g, counts));
            }
            if writes.is_empty() {
                return Ok(outcome);
            }
            let results: Vec<Value> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
            let mut retry = Vec::new();
            let mut script_missing = false;
            for ((g, counts), result) in writes.into_iter().zip(results) {
                #[allow(
                    clippy::wildcard_enum_match_arm,
                    reason = "any other answer of the redis crate's open-ended Value is a protocol error"
                )]
                match result {
                    Value::Int(1) => outcome += counts,
                    Value::Int(0) => retry.push(g),
                    Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript) => {
                        script_missing = true;
                        retry.push(g);
                    }
                    Value::ServerError(e) => {
                        return Err(unavailable(RedisError::from(e)));
                    }
                    other => {
                        return Err(unavailable(RedisError::from((
                            ErrorKind::UnexpectedReturnType,
                            "unexpected answer from the compare-and-set script",
                            format!("{other:?}"),
                        ))));
                    }
                }
            }
            if script_missing {
                // Redis restarted or its script cache was flushed.
                self.load_script().await?;
            }
            if retry.is_empty() {
                return Ok(outcome);
            }
            pending = retry;
            let cap = (1u64 << attempt.min(4)).min(MAX_BACKOFF_MS);
            let pause = rand::random_range(0..=cap);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        Err(StoreError::Contended(groups[pending[0]].0.to_string()))
    }

    async fn load(&self, customer: &CustomerId) -> Result<Option<Arc<Profile>>, StoreError> {
        let mut conn = self.conn.clone();
        let bytes: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.profile_key(customer.as_str()))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        bytes
            .map(|b| {
                split_versioned(&b)
                    .and_then(|(_, body)| codec::decode(body))
                    .map(Arc::new)
                    .map_err(|e| StoreError::Corrupt {
                        customer: customer.to_string(),
                        reason: e.to_string(),
                    })
            })
            .transpose()
    }

    async fn erase(&self, customer: &CustomerId) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let removed: usize = redis::cmd("DEL")
            .arg(self.customer_keys(customer.as_str()))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(removed > 0)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
