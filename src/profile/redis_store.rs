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
//!
//! Connections: one multiplexed, self-reconnecting connection per runtime. The service gives
//! each HTTP worker its own ([`ProfileStore::for_this_thread`]), so a request's call never
//! waits for another thread to relay it; a decision reads the profile without the lists it
//! does not use ([`codec::decode_for_decision`]).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, ServerErrorKind, Value};

use super::codec;
use super::event::Event;
use super::ids::CustomerId;
use super::planned::{KEPT_AFTER_LAPSE, MAX_PLANNED, PlannedAction};
use super::state::{Profile, ProfileLimits};
use super::store::{
    ApplyOutcome, DecisionRead, ProfileStore, StoreError, apply_events, group_by_customer,
};
use crate::learning::join::{self, Exposures, Outcome};

/// The outcome log (a stream) keeps about this many of the newest outcomes.
const OUTCOME_LOG: usize = 1_000_000;

/// Replaces each profile only if its version prefix is what the writer read and its
/// customer's tombstone is as the writer read it (an erasure in between must not be undone).
/// KEYS are n profile keys, then their n tombstone keys; for customer i, ARGV[3i-2] = version
/// read (8 bytes, or empty when absent), ARGV[3i-1] = tombstone read (empty when absent),
/// ARGV[3i] = new value (next version + profile). Answers 1 (written) or 0 (changed
/// meanwhile) per customer.
///
/// One call takes several customers because a script call costs Redis about 3 µs however
/// little it does (measured with redis-benchmark on Redis 7.0: an empty script 2.9 µs, the
/// script with one key 5.2 µs), which would otherwise be most of the cost of an event.
const COMPARE_AND_SET: &str = r#"
local written = {}
local n = #KEYS / 2
for i = 1, n do
  local tombstone = redis.call('GET', KEYS[n + i]) or ''
  if redis.call('GETRANGE', KEYS[i], 0, 7) == ARGV[3 * i - 2] and tombstone == ARGV[3 * i - 1] then
    redis.call('SET', KEYS[i], ARGV[3 * i])
    written[i] = 1
  else
    written[i] = 0
  end
end
return written
"#;

/// Keys per `MGET` or script call: large enough to spread the per-call cost, small enough
/// that one script call holds Redis for well under a tenth of a millisecond.
const KEYS_PER_CALL: usize = 32;

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
    /// For a `rediss://` URL: the certificate authorities (PEM) to trust instead of the
    /// system's.
    pub tls_ca: Option<Vec<u8>>,
}

pub struct RedisStore {
    /// Multiplexed and self-reconnecting; cloning it is cheap and shares the connection, so
    /// there is no pool and no lock. Its I/O runs on the runtime that made it; each HTTP
    /// worker makes its own ([`ProfileStore::for_this_thread`]).
    conn: ConnectionManager,
    client: redis::Client,
    config: ConnectionManagerConfig,
    connect_timeout: Duration,
    limits: ProfileLimits,
    prefix: String,
    script_sha: String,
    /// Shared by every worker's copy of the store.
    learner: Arc<OnceLock<Arc<dyn Exposures>>>,
}

/// A client for `url` with `TCP_NODELAY` set. The redis crate leaves Nagle's algorithm on,
/// so on a multiplexed connection a command written while an earlier one is unanswered
/// waits for that answer before it is even sent: a request-and-answer client wants every
/// command on the wire at once. (A Unix-socket URL has no such setting and takes none.) A
/// `rediss://` URL speaks TLS, trusting `tls_ca` (PEM) when given, else the system's
/// certificate authorities.
pub fn client(url: &str, tls_ca: Option<&[u8]>) -> redis::RedisResult<redis::Client> {
    use redis::IntoConnectionInfo;
    let info = url
        .into_connection_info()?
        .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    match tls_ca {
        Some(ca) if url.starts_with("rediss://") => redis::Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.to_vec()),
            },
        ),
        _ => redis::Client::open(info),
    }
}

/// A Redis URL fit for a log or an error: its password, if any, replaced by `***`.
pub fn redacted(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end + 3], &rest[at..])
        }
        None => url.to_owned(),
    }
}

/// The major version in `INFO server`'s `redis_version:` line.
fn server_major_version(info: &str) -> Option<u32> {
    info.lines()
        .find_map(|l| l.strip_prefix("redis_version:"))?
        .trim()
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// A stored profile (if any) decoded by `decode`.
fn decode_stored(
    customer: &CustomerId,
    bytes: Option<Vec<u8>>,
    decode: fn(&[u8]) -> Result<Profile, codec::CodecError>,
) -> Result<Option<Arc<Profile>>, StoreError> {
    bytes
        .map(|b| {
            split_versioned(&b)
                .and_then(|(_, body)| decode(body))
                .map(Arc::new)
                .map_err(|e| StoreError::Corrupt {
                    customer: customer.to_string(),
                    reason: e.to_string(),
                })
        })
        .transpose()
}

fn unavailable(e: RedisError) -> StoreError {
    if e.is_timeout() {
        StoreError::Unavailable(format!("redis timed out: {e}"))
    } else {
        StoreError::Unavailable(format!("redis: {e}"))
    }
}

impl RedisStore {
    /// Connects, checks the server's version and loads the write script; fails fast when
    /// Redis cannot be reached or is older than 7.0 (planned actions use `EXPIRE ... NX|GT`).
    pub async fn connect(opts: &RedisOptions, limits: ProfileLimits) -> Result<Self, StoreError> {
        let client = client(&opts.url, opts.tls_ca.as_deref()).map_err(|e| {
            StoreError::Unavailable(format!(
                "store.redis_url (TOUCHPOINT__STORE__REDIS_URL) {} is not a Redis URL: {e}",
                redacted(&opts.url)
            ))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(opts.connect_timeout))
            .set_response_timeout(Some(opts.response_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(200));
        let at = |e: StoreError| {
            StoreError::Unavailable(format!(
                "cannot use redis at {} (store.redis_url, TOUCHPOINT__STORE__REDIS_URL): {}",
                redacted(&opts.url),
                e.to_string()
                    .trim_start_matches("profile store unavailable: ")
            ))
        };
        let conn = Self::open(&client, &config, opts.connect_timeout)
            .await
            .map_err(at)?;
        let store = Self {
            conn,
            client,
            config,
            connect_timeout: opts.connect_timeout,
            limits,
            prefix: opts.key_prefix.clone(),
            script_sha: redis::Script::new(COMPARE_AND_SET).get_hash().to_owned(),
            learner: Arc::default(),
        };
        store.check_version().await.map_err(at)?;
        store.load_script().await.map_err(at)?;
        Ok(store)
    }

    async fn check_version(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        match server_major_version(&info) {
            Some(major) if major < 7 => Err(StoreError::Unavailable(format!(
                "Redis 7.0 or later is needed (EXPIRE NX and GT); this server is {}",
                info.lines()
                    .find_map(|l| l.strip_prefix("redis_version:"))
                    .unwrap_or("older")
                    .trim()
            ))),
            // A server that does not say (a proxy, a compatible store) is given the benefit.
            _ => Ok(()),
        }
    }

    async fn open(
        client: &redis::Client,
        config: &ConnectionManagerConfig,
        connect_timeout: Duration,
    ) -> Result<ConnectionManager, StoreError> {
        tokio::time::timeout(
            connect_timeout * 2,
            ConnectionManager::new_with_config(client.clone(), config.clone()),
        )
        .await
        .map_err(|_| {
            let addr = client.get_connection_info().addr().to_string();
            StoreError::Unavailable(format!(
                "redis at {addr} did not answer within {connect_timeout:?} (store.connect_timeout_ms)"
            ))
        })?
        .map_err(unavailable)
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

    /// Runs a read, and once more when the first try found the connection broken (Redis
    /// restarted, or a proxy dropped it): the connection manager has made a new one by
    /// then. Writes are not retried here (their caller retries, and de-duplication makes
    /// that safe).
    async fn read_retrying<T, F, Fut>(&self, read: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        match read(self.conn.clone()).await {
            Err(e) if e.is_connection_dropped() || e.is_io_error() => {
                tracing::debug!(error = %e, "redis connection broken: reading again");
                read(self.conn.clone()).await.map_err(unavailable)
            }
            other => other.map_err(unavailable),
        }
    }

    pub fn profile_key(&self, customer: &str) -> String {
        format!("{}:{{{customer}}}:profile", self.prefix)
    }

    /// The list of the customer's planned actions (one entry each), in the profile's
    /// hash slot.
    pub fn planned_key(&self, customer: &str) -> String {
        format!("{}:{{{customer}}}:planned", self.prefix)
    }

    /// The customer's tombstone after an erasure: the erasure's time (Unix seconds), kept
    /// for the retry window.
    pub fn erased_key(&self, customer: &str) -> String {
        format!("{}:{{{customer}}}:erased", self.prefix)
    }

    /// The log of joined outcomes (a stream, [`crate::learning`]); not a customer's key.
    pub fn outcomes_key(&self) -> String {
        format!("{}:learning:outcomes", self.prefix)
    }

    /// Customers with open exposures, scored by their earliest deadline (a sorted set).
    pub fn due_key(&self) -> String {
        format!("{}:learning:due", self.prefix)
    }

    /// `LRANGE` of all the customer's planned actions.
    fn planned_range(&self, customer: &CustomerId) -> redis::Cmd {
        let mut cmd = redis::cmd("LRANGE");
        cmd.arg(self.planned_key(customer.as_str())).arg(0).arg(-1);
        cmd
    }

    /// Every key the store may hold for a customer's data; erasure deletes them all (and
    /// leaves the tombstone, [`RedisStore::erased_key`]).
    pub fn customer_keys(&self, customer: &str) -> Vec<String> {
        vec![self.profile_key(customer), self.planned_key(customer)]
    }

    /// One customer's profile, decoded by `decode`.
    async fn get(
        &self,
        customer: &CustomerId,
        decode: fn(&[u8]) -> Result<Profile, codec::CodecError>,
    ) -> Result<Option<Arc<Profile>>, StoreError> {
        let get = &redis::Cmd::get(self.profile_key(customer.as_str()));
        let bytes: Option<Vec<u8>> = self
            .read_retrying(|mut c| async move { get.query_async(&mut c).await })
            .await?;
        decode_stored(customer, bytes, decode)
    }

    /// Reads the profiles of `customers`, with the version each was read at and its
    /// tombstone, in one round trip.
    async fn read(&self, customers: &[&CustomerId]) -> Result<Vec<Read>, StoreError> {
        let mut pipe = redis::pipe();
        for chunk in customers.chunks(KEYS_PER_CALL) {
            let cmd = pipe.cmd("MGET");
            for c in chunk {
                cmd.arg(self.profile_key(c.as_str()));
            }
            let cmd = pipe.cmd("MGET");
            for c in chunk {
                cmd.arg(self.erased_key(c.as_str()));
            }
        }
        let pipe = &pipe;
        let chunks: Vec<Vec<Option<Vec<u8>>>> = self
            .read_retrying(|mut c| async move { pipe.query_async(&mut c).await })
            .await?;
        let mut profiles = Vec::with_capacity(customers.len());
        let mut tombstones = Vec::with_capacity(customers.len());
        for (i, chunk) in chunks.into_iter().enumerate() {
            if i % 2 == 0 {
                profiles.extend(chunk);
            } else {
                tombstones.extend(chunk);
            }
        }
        customers
            .iter()
            .zip(profiles)
            .zip(tombstones)
            .map(|((c, row), tombstone)| {
                let (version, profile) = match row {
                    None => (Vec::new(), Profile::default()),
                    Some(bytes) => split_versioned(&bytes)
                        .and_then(|(v, body)| Ok((v.to_vec(), codec::decode(body)?)))
                        .map_err(|e| StoreError::Corrupt {
                            customer: c.to_string(),
                            reason: e.to_string(),
                        })?,
                };
                let tombstone = tombstone.unwrap_or_default();
                let erased_at = std::str::from_utf8(&tombstone)
                    .ok()
                    .and_then(|t| t.parse().ok());
                Ok(Read {
                    version,
                    profile,
                    tombstone,
                    erased_at,
                })
            })
            .collect()
    }
}

/// A customer's profile as read for an update.
struct Read {
    version: Vec<u8>,
    profile: Profile,
    /// The tombstone's bytes as read (empty when there is none), for the compare-and-set.
    tombstone: Vec<u8>,
    erased_at: Option<i64>,
}

/// One customer's new profile, waiting for its compare-and-set.
struct Write {
    group: usize,
    counts: ApplyOutcome,
    version: Vec<u8>,
    tombstone: Vec<u8>,
    value: Vec<u8>,
    outcomes: Vec<Outcome>,
    /// The earliest deadline of the customer's open exposures, before and after.
    due: (Option<i64>, Option<i64>),
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

impl RedisStore {
    /// Applies each customer's events (none: only closing overdue exposures).
    async fn apply_groups(
        &self,
        groups: &[(&CustomerId, Vec<&Event>)],
        now: i64,
    ) -> Result<ApplyOutcome, StoreError> {
        let mut pending: Vec<usize> = (0..groups.len()).collect();
        let mut outcome = ApplyOutcome::default();
        let mut conn = self.conn.clone();
        let learner = self.learner.get().map(|l| &**l);
        let mut joined: Vec<Outcome> = Vec::new();
        let mut dues: Vec<(usize, Option<i64>)> = Vec::new();
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            let customers: Vec<&CustomerId> = pending.iter().map(|&g| groups[g].0).collect();
            let profiles = self.read(&customers).await?;

            let mut writes = Vec::with_capacity(pending.len());
            for (&g, mut read) in pending.iter().zip(profiles) {
                let (customer, events) = &groups[g];
                let before = join::next_deadline(&read.profile);
                let mut outcomes = Vec::new();
                let counts = apply_events(
                    &mut read.profile,
                    customer,
                    events,
                    read.erased_at,
                    &self.limits,
                    now,
                    learner,
                    &mut outcomes,
                )?;
                let after = join::next_deadline(&read.profile);
                let exposures_changed = !outcomes.is_empty() || before != after;
                if counts.accepted == 0 && (!exposures_changed || read.version.is_empty()) {
                    if events.is_empty() {
                        dues.push((g, after)); // a sweep: file what is left (or nothing)
                    }
                    outcome += counts; // only duplicates or erased: nothing to write
                    continue;
                }
                let value = codec::encode_with_prefix(&read.profile, &next_version(&read.version));
                writes.push(Write {
                    group: g,
                    counts,
                    version: read.version,
                    tombstone: read.tombstone,
                    value,
                    outcomes,
                    due: (before, after),
                });
            }
            if writes.is_empty() {
                return self.after_writes(groups, outcome, joined, dues).await;
            }
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for chunk in writes.chunks(KEYS_PER_CALL) {
                let cmd = pipe.cmd("EVALSHA");
                cmd.arg(&self.script_sha).arg(2 * chunk.len());
                for w in chunk {
                    cmd.arg(self.profile_key(groups[w.group].0.as_str()));
                }
                for w in chunk {
                    cmd.arg(self.erased_key(groups[w.group].0.as_str()));
                }
                for w in chunk {
                    cmd.arg(&w.version).arg(&w.tombstone).arg(&w.value);
                }
            }
            let results: Vec<Value> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
            let mut retry = Vec::new();
            let mut script_missing = false;
            for (chunk, result) in writes.chunks(KEYS_PER_CALL).zip(results) {
                #[allow(
                    clippy::wildcard_enum_match_arm,
                    reason = "any other answer of the redis crate's open-ended Value is a protocol error"
                )]
                match result {
                    Value::Array(flags) if flags.len() == chunk.len() => {
                        for (w, flag) in chunk.iter().zip(flags) {
                            if flag == Value::Int(1) {
                                outcome += w.counts;
                                joined.extend(w.outcomes.iter().cloned());
                                if w.due.0 != w.due.1 || groups[w.group].1.is_empty() {
                                    dues.push((w.group, w.due.1));
                                }
                            } else {
                                retry.push(w.group);
                            }
                        }
                    }
                    Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript) => {
                        script_missing = true;
                        retry.extend(chunk.iter().map(|w| w.group));
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
                return self.after_writes(groups, outcome, joined, dues).await;
            }
            pending = retry;
            let cap = (1u64 << attempt.min(4)).min(MAX_BACKOFF_MS);
            let pause = rand::random_range(0..=cap);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        Err(StoreError::Contended(groups[pending[0]].0.to_string()))
    }

    /// Logs the outcomes the written profiles joined and files the customers' next
    /// deadlines, in one round trip (none when there is nothing to say). A failure here
    /// loses outcomes, never events: the events are written.
    async fn after_writes(
        &self,
        groups: &[(&CustomerId, Vec<&Event>)],
        outcome: ApplyOutcome,
        joined: Vec<Outcome>,
        dues: Vec<(usize, Option<i64>)>,
    ) -> Result<ApplyOutcome, StoreError> {
        if joined.is_empty() && dues.is_empty() {
            return Ok(outcome);
        }
        let mut pipe = redis::pipe();
        for o in &joined {
            pipe.cmd("XADD")
                .arg(self.outcomes_key())
                .arg("MAXLEN")
                .arg("~")
                .arg(OUTCOME_LOG)
                .arg("*")
                .arg("o")
                .arg(serde_json::to_vec(o).expect("an outcome serialises"))
                .ignore();
        }
        for (g, due) in &dues {
            let customer = groups[*g].0.as_str();
            match due {
                Some(t) => pipe.cmd("ZADD").arg(self.due_key()).arg(*t).arg(customer),
                None => pipe.cmd("ZREM").arg(self.due_key()).arg(customer),
            }
            .ignore();
        }
        let mut conn = self.conn.clone();
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!(error = %e, outcomes = joined.len(), "joined outcomes not logged");
        }
        Ok(outcome)
    }
}

#[async_trait]
impl ProfileStore for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn apply(&self, events: &[Event], now: i64) -> Result<ApplyOutcome, StoreError> {
        self.apply_groups(&group_by_customer(events), now).await
    }

    async fn load(&self, customer: &CustomerId) -> Result<Option<Arc<Profile>>, StoreError> {
        self.get(customer, codec::decode).await
    }

    async fn load_for_decision(
        &self,
        customer: &CustomerId,
        planned: bool,
    ) -> Result<DecisionRead, StoreError> {
        if !planned {
            let profile = self.get(customer, codec::decode_for_decision).await?;
            return Ok(DecisionRead {
                profile,
                planned: Vec::new(),
            });
        }
        // One round trip: the profile and the planned actions.
        let mut pipe = redis::pipe();
        pipe.cmd("GET")
            .arg(self.profile_key(customer.as_str()))
            .add_command(self.planned_range(customer));
        let pipe = &pipe;
        let (bytes, planned): (Option<Vec<u8>>, Vec<Vec<u8>>) = self
            .read_retrying(|mut c| async move { pipe.query_async(&mut c).await })
            .await?;
        let profile = decode_stored(customer, bytes, codec::decode_for_decision)?;
        Ok(DecisionRead {
            profile,
            planned: PlannedAction::decode_all(&planned),
        })
    }

    async fn planned(&self, customer: &CustomerId) -> Result<Vec<PlannedAction>, StoreError> {
        let range = self.planned_range(customer);
        let range = &range;
        let entries: Vec<Vec<u8>> = self
            .read_retrying(|mut c| async move { range.query_async(&mut c).await })
            .await?;
        Ok(PlannedAction::decode_all(&entries))
    }

    async fn plan(
        &self,
        customer: &CustomerId,
        planned: &[PlannedAction],
        now: i64,
    ) -> Result<(), StoreError> {
        let Some(last) = planned.iter().map(|p| p.until).max() else {
            return Ok(());
        };
        // Plain commands in one round trip, no script: append, keep the newest, and let the
        // key live until the last entry lapses (and KEPT_AFTER_LAPSE more), never shortening
        // its life (EXPIRE NX sets a first expiry, GT only lengthens one; Redis 7.0+).
        let key = self.planned_key(customer.as_str());
        let live = (last + KEPT_AFTER_LAPSE - now).max(1);
        let mut pipe = redis::pipe();
        pipe.cmd("RPUSH").arg(&key);
        for p in planned {
            pipe.arg(p.encode());
        }
        pipe.ignore()
            .cmd("LTRIM")
            .arg(&key)
            .arg(-(MAX_PLANNED as i64))
            .arg(-1)
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(live)
            .arg("NX")
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(live)
            .arg("GT")
            .ignore();
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
    }

    async fn erase(&self, customer: &CustomerId) -> Result<bool, StoreError> {
        let now = chrono::Utc::now().timestamp();
        let window = u64::from(self.limits.dedup_window_hours) * 3600;
        let mut conn = self.conn.clone();
        // One transaction: the tombstone and the deletion together.
        let (removed,): (usize,) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.erased_key(customer.as_str()))
            .arg(now)
            .arg("EX")
            .arg(window)
            .ignore()
            .cmd("DEL")
            .arg(self.customer_keys(customer.as_str()))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(removed > 0)
    }

    async fn for_this_thread(&self) -> Option<Arc<dyn ProfileStore>> {
        match Self::open(&self.client, &self.config, self.connect_timeout).await {
            Ok(conn) => Some(Arc::new(Self {
                conn,
                client: self.client.clone(),
                config: self.config.clone(),
                connect_timeout: self.connect_timeout,
                limits: self.limits.clone(),
                prefix: self.prefix.clone(),
                script_sha: self.script_sha.clone(),
                learner: self.learner.clone(),
            })),
            Err(e) => {
                tracing::warn!(error = %e, "no connection of its own for this worker: sharing one");
                None
            }
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn learn_with(&self, learner: Arc<dyn Exposures>) {
        let _ = self.learner.set(learner);
    }

    async fn outcomes_after(
        &self,
        cursor: &str,
        max: usize,
    ) -> Result<(Vec<Outcome>, String), StoreError> {
        let start = if cursor.is_empty() {
            "-".to_owned()
        } else {
            format!("({cursor}")
        };
        let range = redis::cmd("XRANGE")
            .arg(self.outcomes_key())
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(max)
            .clone();
        let range = &range;
        let entries: Vec<(String, Vec<(String, Vec<u8>)>)> = self
            .read_retrying(|mut c| async move { range.query_async(&mut c).await })
            .await?;
        let mut next = cursor.to_owned();
        let mut outcomes = Vec::with_capacity(entries.len());
        for (id, fields) in entries {
            for (_, bytes) in fields {
                match serde_json::from_slice::<Outcome>(&bytes) {
                    Ok(o) => outcomes.push(o),
                    Err(e) => tracing::warn!(id, error = %e, "an outcome in the log does not read"),
                }
            }
            next = id;
        }
        Ok((outcomes, next))
    }

    async fn close_overdue(&self, now: i64, max: usize) -> Result<usize, StoreError> {
        let range = redis::cmd("ZRANGE")
            .arg(self.due_key())
            .arg("-inf")
            .arg(now)
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(max)
            .clone();
        let range = &range;
        let due: Vec<String> = self
            .read_retrying(|mut c| async move { range.query_async(&mut c).await })
            .await?;
        let customers: Vec<CustomerId> = due
            .into_iter()
            .filter_map(|c| CustomerId::parse(&c).ok())
            .collect();
        if customers.is_empty() {
            return Ok(0);
        }
        let groups: Vec<(&CustomerId, Vec<&Event>)> =
            customers.iter().map(|c| (c, Vec::new())).collect();
        self.apply_groups(&groups, now).await?;
        Ok(customers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::server_major_version;

    #[test]
    fn a_password_never_leaves_the_url() {
        use super::redacted;
        assert_eq!(
            redacted("redis://:s3cret@10.0.0.1:6379/0"),
            "redis://:***@10.0.0.1:6379/0"
        );
        assert_eq!(
            redacted("rediss://app:s3cret@cache.example:6380"),
            "rediss://app:***@cache.example:6380"
        );
        assert_eq!(
            redacted("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(redacted("not a url"), "not a url");
    }

    #[test]
    fn the_server_version_is_read_from_info() {
        let info = "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n";
        assert_eq!(server_major_version(info), Some(7));
        assert_eq!(server_major_version("redis_version:6.2.14\r\n"), Some(6));
        assert_eq!(server_major_version("# Server\r\n"), None);
    }
}
