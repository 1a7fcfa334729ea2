//! The Redis store.
//!
//! Layout: one string per customer, `{prefix}:{<customer_id>}:profile`, holding an 8-byte
//! version and the encoded profile. Every key of a customer carries the `{customer_id}` hash
//! tag, so all of them live in one Redis Cluster slot and one customer's update stays a single
//! atomic step on a cluster too. Profiles are compressed against the store's dictionary
//! ([`super::dictionary`]) once it has one: `{prefix}:dictionaries` holds every dictionary
//! the store has had and names the current one; a replica reads it when it connects and
//! when it meets a profile written with a dictionary it does not know, and
//! [`ProfileStore::make_dictionary`] makes the first (at the end of an import).
//!
//! Writes are optimistic: read the profiles of a batch's customers in one pipeline, apply the
//! events in Rust (the same [`Profile::apply`] the memory store uses), then write each back in
//! a second pipeline with a compare-and-set Lua script that only replaces the value if its
//! version is unchanged. A customer whose profile changed in between is re-read and re-applied.
//! De-duplication memory lives inside the profile, so "applied" and "remembered as applied"
//! can never disagree.
//!
//! One server or a Redis Cluster (`store.redis_cluster_nodes`), behind one connection type
//! ([`super::redis_conn`]): on a cluster the calls of a batch go one customer each to the
//! node of their slot, all at once, and the keys shared by all customers (the outcome log,
//! the due exposures, the outbound index) are split over 16 shards. With
//! `store.wait_replicas`, a write is answered only once that many replicas hold it.
//!
//! Planned actions are recorded with a compare-and-set on what the decision read
//! ([`PlannedMark`]), and, with the outbound feed, indexed by send time in the same round
//! trip ([`crate::outbound`]).
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
use super::dictionary::{Dictionaries, Dictionary};
use super::event::Event;
use super::ids::CustomerId;
use super::planned::{KEPT_AFTER_LAPSE, MAX_PLANNED, PlannedAction, PlannedMark};
use super::redis_conn::{Conn, Layout, join_cursor, split_cursor, xdel_where};
use super::state::{Profile, ProfileLimits};
use super::store::{
    ApplyOutcome, DecisionRead, DueAction, ProfileStore, StoreError, apply_events,
    group_by_customer,
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

/// Records planned actions if the customer's stored entries and erasure tombstone are as the
/// decision saw them ([`PlannedMark`]). KEYS[1] is the list, KEYS[2] the tombstone; ARGV:
/// entries seen, the newest seen (empty when none), the most entries kept, the key's time to
/// live (s), the tombstone seen (empty when none), then the new entries. Answers 1 (recorded)
/// or 0 (changed meanwhile, or the customer erased: nothing recorded).
static PLAN_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
local n = redis.call('LLEN', KEYS[1])
if n ~= tonumber(ARGV[1]) then return 0 end
if n > 0 and redis.call('LINDEX', KEYS[1], -1) ~= ARGV[2] then return 0 end
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[5] then return 0 end
redis.call('RPUSH', KEYS[1], unpack(ARGV, 6))
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[3]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[4], 'NX')
redis.call('EXPIRE', KEYS[1], ARGV[4], 'GT')
return 1
"#,
    )
});

/// Claims due outbound actions in one shard: KEYS[1] the index by send time, KEYS[2] the
/// claimed ones by the end of their lease; ARGV now, the most to claim, the new lease's end.
/// Lapsed leases are claimed again first. Answers the entries claimed.
const CLAIM_LUA: &str = r#"
local out = {}
local lapsed = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])
for _, m in ipairs(lapsed) do
  redis.call('ZADD', KEYS[2], ARGV[3], m)
  out[#out + 1] = m
end
local room = tonumber(ARGV[2]) - #out
if room > 0 then
  local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, room)
  for _, m in ipairs(due) do
    redis.call('ZREM', KEYS[1], m)
    redis.call('ZADD', KEYS[2], ARGV[3], m)
    out[#out + 1] = m
  end
end
return out
"#;

/// Appends a claimed action to the outbound stream, once: KEYS[1] the claimed set, KEYS[2]
/// the stream; ARGV the stream's rough length cap, the entry, the message. Only an entry
/// still claimed is appended (and unclaimed in the same step), so a second publisher whose
/// lease lapsed appends nothing.
const APPEND_LUA: &str = r#"
if redis.call('ZREM', KEYS[1], ARGV[2]) == 1 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'action', ARGV[3])
  return 1
end
return 0
"#;

/// The outbound stream keeps about this many of the newest actions.
const OUTBOUND_STREAM: usize = 1_000_000;

/// Erases a customer: KEYS[1] is their tombstone, set to ARGV[1] (now) for ARGV[2] seconds,
/// and the other keys are deleted; answers how many of those existed.
static ERASE_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return redis.call('DEL', unpack(KEYS, 2))
"#,
    )
});

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
    /// Nodes of a Redis Cluster (any of them; the rest are discovered): the store then runs
    /// on the cluster, and `url` is not used.
    pub cluster_nodes: Vec<String>,
    pub key_prefix: String,
    /// Profiles written compressed against the store's dictionary, once it has one.
    pub compress_profiles: bool,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// Limit on each answer; the redis crate's default has no limit, so a stopped server
    /// would hang callers for the OS's TCP timeout.
    pub response_timeout: Duration,
    /// For a `rediss://` URL: the certificate authorities (PEM) to trust instead of the
    /// system's.
    pub tls_ca: Option<Vec<u8>>,
    /// Events are acknowledged only once this many replicas hold them (Redis `WAIT`).
    pub wait_replicas: u32,
    /// How long a write waits for those replicas before it is answered as unavailable.
    pub wait_timeout: Duration,
}

impl RedisOptions {
    /// Options for one server at `url`, with the default settings' limits.
    pub fn new(url: impl Into<String>) -> Self {
        let d = crate::settings::StoreSettings::default();
        Self {
            url: url.into(),
            cluster_nodes: Vec::new(),
            key_prefix: d.key_prefix,
            compress_profiles: d.compress_profiles,
            connect_timeout: Duration::from_millis(d.connect_timeout_ms),
            response_timeout: Duration::from_millis(d.response_timeout_ms),
            tls_ca: None,
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(d.wait_timeout_ms),
        }
    }

    /// What a log or an error may say of where the store is: the URL or the cluster's
    /// nodes, passwords left out, and the setting that named them.
    pub fn describe(&self) -> String {
        if self.cluster_nodes.is_empty() {
            format!(
                "redis at {} (store.redis_url, TOUCHPOINT__STORE__REDIS_URL)",
                redacted(&self.url)
            )
        } else {
            let nodes: Vec<String> = self.cluster_nodes.iter().map(|n| redacted(n)).collect();
            format!(
                "the redis cluster at {} (store.redis_cluster_nodes, TOUCHPOINT__STORE__REDIS_CLUSTER_NODES)",
                nodes.join(",")
            )
        }
    }
}

/// How to make connections: to one server, or to a cluster.
#[derive(Clone)]
enum Client {
    Node(redis::Client, ConnectionManagerConfig),
    Cluster(redis::cluster::ClusterClient),
}

impl Client {
    fn for_options(opts: &RedisOptions) -> Result<Self, StoreError> {
        if opts.cluster_nodes.is_empty() {
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
            Ok(Client::Node(client, config))
        } else {
            Ok(Client::Cluster(cluster_client(opts).map_err(|e| {
                StoreError::Unavailable(format!(
                    "store.redis_cluster_nodes (TOUCHPOINT__STORE__REDIS_CLUSTER_NODES) {}: {e}",
                    opts.describe()
                ))
            })?))
        }
    }
}

/// A connection for another part of the service that writes to the store's Redis (the
/// decision log's stream), with the store's time limits; it reconnects by itself.
pub async fn connect_conn(opts: &RedisOptions) -> Result<Conn, StoreError> {
    RedisStore::open(&Client::for_options(opts)?, opts.connect_timeout).await
}

pub struct RedisStore {
    /// Multiplexed and self-reconnecting; cloning it is cheap and shares the connection, so
    /// there is no pool and no lock. Its I/O runs on the runtime that made it; each HTTP
    /// worker makes its own ([`ProfileStore::for_this_thread`]).
    conn: Conn,
    /// What event batches are written on: `conn`, but with `store.wait_replicas` a second
    /// connection, since a `WAIT` holds its connection (decisions' reads would queue behind
    /// it) and must follow the writes on the same connection.
    writes: Conn,
    client: Client,
    connect_timeout: Duration,
    limits: ProfileLimits,
    prefix: String,
    layout: Layout,
    script_sha: String,
    wait_replicas: u32,
    wait_timeout: Duration,
    /// Shared by every worker's copy of the store.
    learner: Arc<OnceLock<Arc<dyn Exposures>>>,
    /// The profile compression dictionaries known (shared as the learner).
    dictionaries: Arc<Dictionaries>,
    /// `store.compress_profiles`.
    compress: bool,
    /// Profiles written while there is no dictionary, when gathering them to make one
    /// ([`ProfileStore::gather_dictionary_samples`]).
    samples: Arc<std::sync::Mutex<Option<Samples>>>,
    /// Whether it is gathering (checked first, without the lock, on every write).
    gathering: Arc<std::sync::atomic::AtomicBool>,
    /// When the dictionaries were last read ([`ProfileStore::check_dictionaries`]).
    dictionaries_checked: Arc<std::sync::atomic::AtomicI64>,
    /// Whether planned actions are indexed for the outbound feed (shared as the learner).
    outbound: Arc<std::sync::atomic::AtomicBool>,
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

/// A decoder of stored profiles: the whole one, or what a decision reads.
type Decode = fn(&[u8], &Dictionaries) -> Result<Profile, codec::CodecError>;

/// A stored profile (if any) decoded by `decode`.
fn decode_stored(
    customer: &CustomerId,
    bytes: Option<Vec<u8>>,
    decode: Decode,
    dictionaries: &Dictionaries,
) -> Result<Option<Arc<Profile>>, StoreError> {
    bytes
        .map(|b| {
            split_versioned(&b)
                .and_then(|(_, body)| decode(body, dictionaries))
                .map(Arc::new)
                .map_err(|e| StoreError::Corrupt {
                    customer: customer.to_string(),
                    reason: e.to_string(),
                })
        })
        .transpose()
}

/// Customers' profiles a replica gathers to make the store's first dictionary.
#[derive(Default)]
struct Samples {
    customers: std::collections::HashSet<CustomerId>,
    encodings: Vec<Vec<u8>>,
    /// Earlier gatherings that made no dictionary.
    attempt: u32,
}

/// A replica gathers profiles this many times at most to make a dictionary.
const GATHER_ATTEMPTS: u32 = 3;

/// A replica makes a dictionary of the first this many customers' profiles it writes.
pub const AUTO_SAMPLES: usize = 2_000;

/// The dictionaries of the store's hash (`HGETALL`) learnt, and its current one.
fn learn_stored(dictionaries: &Dictionaries, fields: Vec<(String, Vec<u8>)>) {
    let mut known = Vec::new();
    let mut current = None;
    for (field, value) in fields {
        if field == "current" {
            current = std::str::from_utf8(&value)
                .ok()
                .and_then(|v| u32::from_str_radix(v, 16).ok());
        } else if Dictionary::fits(&value)
            && u32::from_str_radix(&field, 16).ok() == Some(Dictionary::id_of(&value))
        {
            known.push(Dictionary::new(value));
        } else {
            tracing::warn!(field = %field, "a stored dictionary does not match its name: not used");
        }
    }
    dictionaries.learn(known, current);
}

/// Stores `dictionary` in the store's hash at `key`, current unless another replica named
/// one first (then that one is adopted); answers the current one's name.
async fn store_dictionary(
    mut conn: Conn,
    key: &str,
    dictionaries: &Dictionaries,
    dictionary: Dictionary,
    (replicas, timeout): (u32, Duration),
) -> Result<u32, StoreError> {
    let id = format!("{:08x}", dictionary.id());
    let mut pipe = redis::pipe();
    pipe.cmd("HSET")
        .arg(key)
        .arg(&id)
        .arg(dictionary.content())
        .ignore()
        .cmd("HSETNX")
        .arg(key)
        .arg("current")
        .arg(&id)
        .ignore()
        .cmd("HGETALL")
        .arg(key);
    let (fields,): (Vec<(String, Vec<u8>)>,) =
        pipe.query_async(&mut conn).await.map_err(unavailable)?;
    // Profiles written with it are lost if it is: it is used only once on the replicas.
    if replicas > 0
        && !conn
            .wait_for_replicas(&[key.to_owned()], replicas, timeout)
            .await
            .map_err(unavailable)?
    {
        return Err(StoreError::Unavailable(format!(
            "fewer than {replicas} replicas (store.wait_replicas) took the compression dictionary within {timeout:?}"
        )));
    }
    learn_stored(dictionaries, fields);
    dictionaries
        .current()
        .map(|d| d.id())
        .ok_or_else(|| StoreError::Unavailable("the store names no current dictionary".into()))
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
        let at = |e: StoreError| {
            StoreError::Unavailable(format!(
                "cannot use {}: {}",
                opts.describe(),
                e.to_string()
                    .trim_start_matches("profile store unavailable: ")
            ))
        };
        let client = Client::for_options(opts)?;
        let conn = Self::open(&client, opts.connect_timeout)
            .await
            .map_err(at)?;
        let writes = if opts.wait_replicas > 0 {
            Self::open(&client, opts.connect_timeout)
                .await
                .map_err(at)?
        } else {
            conn.clone()
        };
        let store = Self {
            layout: Layout::for_cluster(conn.is_cluster()),
            conn,
            writes,
            client,
            connect_timeout: opts.connect_timeout,
            limits,
            prefix: opts.key_prefix.clone(),
            script_sha: redis::Script::new(COMPARE_AND_SET).get_hash().to_owned(),
            wait_replicas: opts.wait_replicas,
            wait_timeout: opts.wait_timeout,
            learner: Arc::default(),
            outbound: Arc::default(),
            dictionaries: Arc::default(),
            compress: opts.compress_profiles,
            samples: Arc::default(),
            gathering: Arc::default(),
            dictionaries_checked: Arc::default(),
        };
        store.check_version().await.map_err(at)?;
        store.load_script().await.map_err(at)?;
        store.load_dictionaries().await.map_err(at)?;
        Ok(store)
    }

    async fn check_version(&self) -> Result<(), StoreError> {
        let info = self.conn.info_server().await.map_err(unavailable)?;
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

    async fn open(client: &Client, connect_timeout: Duration) -> Result<Conn, StoreError> {
        let late = |what: String| {
            StoreError::Unavailable(format!(
                "{what} did not answer within {connect_timeout:?} (store.connect_timeout_ms)"
            ))
        };
        match client {
            Client::Node(client, config) => tokio::time::timeout(
                connect_timeout * 2,
                ConnectionManager::new_with_config(client.clone(), config.clone()),
            )
            .await
            .map_err(|_| late(format!("redis at {}", client.get_connection_info().addr())))?
            .map(Conn::Node)
            .map_err(unavailable),
            // Connecting to a cluster asks a node for the slot map, then connects to every
            // master it names.
            Client::Cluster(client) => {
                tokio::time::timeout(connect_timeout * 4, client.get_async_connection())
                    .await
                    .map_err(|_| late("the redis cluster".to_owned()))?
                    .map(Conn::Cluster)
                    .map_err(unavailable)
            }
        }
    }

    async fn load_script(&self) -> Result<(), StoreError> {
        // On a cluster, `SCRIPT LOAD` goes to every node.
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(COMPARE_AND_SET)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        debug_assert_eq!(sha, self.script_sha);
        PLAN_SCRIPT
            .load_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The hash of every profile compression dictionary the store has had (field: its name
    /// in hex) and the one written with (field `current`). One key for the whole store, on
    /// one shard of a cluster: it is read when a replica starts and when it first meets a
    /// profile written with a dictionary it does not know (at most every ten seconds for a
    /// dictionary the store lost), not otherwise on the way of a decision. Losing it would
    /// leave the profiles written with it unreadable: every replica writes back what it
    /// knows when it reads the hash, a new dictionary waits for `store.wait_replicas`
    /// before it is used, and the Redis deployment must not evict keys
    /// (`maxmemory-policy noeviction` or `volatile-*`).
    pub fn dictionaries_key(&self) -> String {
        format!("{}:dictionaries", self.prefix)
    }

    /// Learns every dictionary the store has, and the one it writes with; writes back any
    /// this replica knows that the store lost.
    async fn load_dictionaries(&self) -> Result<(), StoreError> {
        let key = &self.dictionaries_key();
        let fields: Vec<(String, Vec<u8>)> = self
            .read_retrying(|mut c| async move {
                redis::cmd("HGETALL").arg(key).query_async(&mut c).await
            })
            .await?;
        let stored: std::collections::HashSet<String> =
            fields.iter().map(|(f, _)| f.clone()).collect();
        learn_stored(&self.dictionaries, fields);
        let mut pipe = redis::pipe();
        let mut lost = 0;
        for d in self.dictionaries.all() {
            let id = format!("{:08x}", d.id());
            if !stored.contains(&id) {
                pipe.cmd("HSETNX")
                    .arg(key)
                    .arg(&id)
                    .arg(d.content())
                    .ignore();
                lost += 1;
            }
        }
        if let Some(current) = self
            .dictionaries
            .current()
            .filter(|_| !stored.contains("current"))
        {
            pipe.cmd("HSETNX")
                .arg(key)
                .arg("current")
                .arg(format!("{:08x}", current.id()))
                .ignore();
            lost += 1;
        }
        if lost > 0 {
            tracing::warn!(
                lost,
                "the store lost profile compression dictionaries: writing back the ones this replica knows"
            );
            let () = pipe
                .query_async(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// Gathers the profiles this store writes while it has no dictionary, and makes one of
    /// the first [`AUTO_SAMPLES`] customers' (for `serve`: a service fed by events alone
    /// compresses too). The profiles written before are compressed when next written.
    fn start_gathering(&self) {
        if self.compress && self.dictionaries.current().is_none() {
            *self.samples.lock().unwrap_or_else(|e| e.into_inner()) = Some(Samples::default());
            self.gathering
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Takes `raw` (a customer's profile in format 4, after the format byte) as a sample
    /// when gathering; with enough, makes the dictionary in the background.
    fn sample(&self, customer: &CustomerId, raw: &[u8]) {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.gathering.load(Relaxed) || raw.len() > super::dictionary::MAX_SAMPLE_BYTES {
            return;
        }
        let mut gathering = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        // Another replica's dictionary adopted meanwhile: nothing more to gather.
        if self.dictionaries.current().is_some() {
            *gathering = None;
            self.gathering.store(false, Relaxed);
            return;
        }
        let Some(samples) = gathering.as_mut() else {
            return;
        };
        if samples.customers.insert(customer.clone()) {
            samples.encodings.push(raw.to_vec());
        }
        if samples.encodings.len() < AUTO_SAMPLES {
            return;
        }
        let encodings = std::mem::take(&mut samples.encodings);
        let attempt = samples.attempt + 1;
        *gathering = None;
        self.gathering.store(false, Relaxed);
        drop(gathering);
        let (conn, key) = (self.conn.clone(), self.dictionaries_key());
        let (dictionaries, samples) = (self.dictionaries.clone(), self.samples.clone());
        let gathering = self.gathering.clone();
        let wait = (self.wait_replicas, self.wait_timeout);
        tokio::spawn(async move {
            let trained = tokio::task::spawn_blocking(move || Dictionary::train(&encodings)).await;
            let stored = match trained {
                Ok(Some(dictionary)) => {
                    store_dictionary(conn, &key, &dictionaries, dictionary, wait).await
                }
                Ok(None) => Err(StoreError::Unavailable(
                    "the profiles written so far have too little in common".into(),
                )),
                Err(e) => Err(StoreError::Unavailable(format!("making it failed: {e}"))),
            };
            match stored {
                Ok(id) => {
                    tracing::info!(dictionary = %format!("{id:08x}"), "profiles are compressed from now on")
                }
                Err(e) if attempt < GATHER_ATTEMPTS => {
                    tracing::warn!(error = %e, "no profile compression dictionary yet; gathering profiles again");
                    *samples.lock().unwrap_or_else(|e| e.into_inner()) = Some(Samples {
                        attempt,
                        ..Samples::default()
                    });
                    gathering.store(true, Relaxed);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no profile compression dictionary; profiles stay uncompressed until one is made (an import makes one)");
                }
            }
        });
    }

    /// Learns the store's dictionaries again when one of `values` (stored profiles) is
    /// compressed with a dictionary this replica does not know yet (another one made it
    /// since this one started): one round trip, once per new dictionary.
    async fn learn_dictionaries<'v>(
        &self,
        mut values: impl Iterator<Item = &'v Vec<u8>>,
    ) -> Result<(), StoreError> {
        let unknown = values.find_map(|v| {
            v.get(8..)
                .and_then(codec::dictionary_of)
                .filter(|&id| self.dictionaries.worth_asking_for(id))
        });
        if let Some(id) = unknown {
            self.load_dictionaries().await?;
            if !self.dictionaries.knows(id) {
                tracing::error!(dictionary = %format!("{id:08x}"), "a stored profile names a compression dictionary the store does not have");
                self.dictionaries.not_found(id);
            }
        }
        Ok(())
    }

    /// Runs a read, and once more when the first try found the connection broken (Redis
    /// restarted, or a proxy dropped it): the connection manager has made a new one by
    /// then. Writes are not retried here (their caller retries, and de-duplication makes
    /// that safe).
    async fn read_retrying<T, F, Fut>(&self, read: F) -> Result<T, StoreError>
    where
        F: Fn(Conn) -> Fut,
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

    /// The log of joined outcomes (a stream, [`crate::learning`]), shard by shard
    /// ([`Layout`]): not a customer's key.
    pub fn outcomes_keys(&self) -> Vec<String> {
        self.layout
            .keys(&format!("{}:learning:outcomes", self.prefix))
    }

    /// Customers with open exposures, scored by their earliest deadline (sorted sets,
    /// shard by shard).
    pub fn due_keys(&self) -> Vec<String> {
        self.layout.keys(&format!("{}:learning:due", self.prefix))
    }

    /// The outbound index (sorted sets of due actions by send time), the actions claimed
    /// by a publisher (by the end of their lease) and the outbound stream, shard by shard;
    /// shard `i` of the three shares a slot.
    fn outbound_keys(&self, what: &str) -> Vec<String> {
        self.layout
            .keys(&format!("{}:outbound:{what}", self.prefix))
    }

    /// Removes planned actions' entries from the outbound index (waiting or claimed): one
    /// group, in the customer's shard.
    fn unindex(&self, customer: &CustomerId, planned: &[PlannedAction]) -> Vec<Vec<redis::Cmd>> {
        let shard = self.layout.shard_of(customer.as_str());
        let group = ["due", "claimed"]
            .iter()
            .map(|what| {
                let mut zrem = redis::cmd("ZREM");
                zrem.arg(&self.outbound_keys(what)[shard]);
                for p in planned {
                    zrem.arg(DueAction::entries_of(customer, p));
                }
                zrem
            })
            .collect();
        vec![group]
    }

    /// Takes an erased customer's actions out of the outbound stream (`outbound.feed =
    /// "redis"`): a sender that has not read them yet never sees them. Their shard of the
    /// stream is read a page at a time (the erasure runs it in the background, after the
    /// profile and plans are gone); an action names its customer in its message
    /// ([`DueAction::message`], compact JSON), and a customer id holds no character JSON
    /// escapes, so the text `"customer_id":"<id>"` finds exactly theirs.
    fn erase_from_outbound_stream(
        &self,
        customer: &CustomerId,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send + 'static {
        let stream = self.outbound_stream_keys()[self.layout.shard_of(customer.as_str())].clone();
        let needle = format!("\"customer_id\":\"{}\"", customer.as_str());
        let mut conn = self.conn.clone();
        async move {
            let finder = memchr::memmem::Finder::new(needle.as_bytes());
            xdel_where(&mut conn, &stream, "action", |m| finder.find(m).is_some())
                .await
                .map_err(unavailable)
        }
    }

    /// The outbound feed's streams (`outbound.feed = "redis"`), shard by shard.
    pub fn outbound_stream_keys(&self) -> Vec<String> {
        self.outbound_keys("stream")
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

    /// The customers of a batch in groups that one call may take together: on one server
    /// [`KEYS_PER_CALL`] at a time, on a cluster one customer each (their keys share a slot;
    /// two customers rarely do).
    fn call_groups<T: Copy>(&self, items: &[T]) -> Vec<Vec<T>> {
        let size = if self.conn.is_cluster() {
            1
        } else {
            KEYS_PER_CALL
        };
        items.chunks(size).map(<[T]>::to_vec).collect()
    }

    /// One customer's profile, decoded by `decode`.
    async fn get(
        &self,
        customer: &CustomerId,
        decode: Decode,
    ) -> Result<Option<Arc<Profile>>, StoreError> {
        let get = &redis::Cmd::get(self.profile_key(customer.as_str()));
        let bytes: Option<Vec<u8>> = self
            .read_retrying(|mut c| async move { get.query_async(&mut c).await })
            .await?;
        self.learn_dictionaries(bytes.iter()).await?;
        decode_stored(customer, bytes, decode, &self.dictionaries)
    }

    /// Reads the profiles of `customers`, with the version each was read at and its
    /// tombstone, in one round trip.
    async fn read(&self, customers: &[&CustomerId]) -> Result<Vec<Read>, StoreError> {
        let groups: Vec<Vec<redis::Cmd>> = self
            .call_groups(customers)
            .into_iter()
            .map(|chunk| {
                let mut cmd = redis::cmd("MGET");
                for c in &chunk {
                    cmd.arg(self.profile_key(c.as_str()));
                }
                for c in &chunk {
                    cmd.arg(self.erased_key(c.as_str()));
                }
                vec![cmd]
            })
            .collect();
        let groups = &groups;
        let answers = self
            .read_retrying(|c| async move { c.run(groups.clone()).await })
            .await?;
        let mut reads = Vec::with_capacity(customers.len());
        let mut next = customers.iter();
        for answer in answers {
            let rows: Vec<Option<Vec<u8>>> = match answer.into_iter().next() {
                Some(v) => redis::from_redis_value(v).map_err(|e| unavailable(e.into()))?,
                None => Vec::new(),
            };
            let (profiles, tombstones) = rows.split_at(rows.len() / 2);
            self.learn_dictionaries(profiles.iter().flatten()).await?;
            for (row, tombstone) in profiles.iter().zip(tombstones) {
                let c = next.next().expect("one row per customer");
                reads.push(read_row(
                    c,
                    row.as_deref(),
                    tombstone.as_deref(),
                    &self.dictionaries,
                )?);
            }
        }
        Ok(reads)
    }
}

/// A customer's stored profile and tombstone, as read for an update.
fn read_row(
    c: &CustomerId,
    row: Option<&[u8]>,
    tombstone: Option<&[u8]>,
    dictionaries: &Dictionaries,
) -> Result<Read, StoreError> {
    let (version, profile) = match row {
        None => (Vec::new(), Profile::default()),
        Some(bytes) => split_versioned(bytes)
            .and_then(|(v, body)| Ok((v.to_vec(), codec::decode_with(body, dictionaries)?)))
            .map_err(|e| StoreError::Corrupt {
                customer: c.to_string(),
                reason: e.to_string(),
            })?,
    };
    let tombstone = tombstone.unwrap_or_default().to_vec();
    let erased_at = std::str::from_utf8(&tombstone)
        .ok()
        .and_then(|t| t.parse().ok());
    Ok(Read {
        version,
        profile,
        tombstone,
        erased_at,
    })
}

/// A cluster client for the options' nodes, with the same time limits as one server's:
/// each answer within the response timeout, a whole call (redirections and retries after
/// a failover included) within a few of them.
fn cluster_client(opts: &RedisOptions) -> redis::RedisResult<redis::cluster::ClusterClient> {
    let mut builder = redis::cluster::ClusterClientBuilder::new(opts.cluster_nodes.clone())
        .connection_timeout(opts.connect_timeout)
        .response_timeout(opts.response_timeout)
        .overall_response_timeout(Some(opts.response_timeout * 4))
        .retries(6)
        .min_retry_wait(10)
        .max_retry_wait(200)
        .tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    if let Some(ca) = &opts.tls_ca {
        builder = builder.certs(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca.clone()),
        });
    }
    builder.build()
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
        rewrite: bool,
    ) -> Result<ApplyOutcome, StoreError> {
        let mut pending: Vec<usize> = (0..groups.len()).collect();
        let mut outcome = ApplyOutcome::default();
        let learner = self.learner.get().map(|l| &**l);
        let dictionary = self.dictionaries.current().filter(|_| self.compress);
        // The outcomes each written customer joined, and a key of each (for `WAIT`).
        let mut joined: Vec<(usize, Vec<Outcome>)> = Vec::new();
        let mut written: Vec<String> = Vec::new();
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
                let rewritten = rewrite && !read.version.is_empty();
                if counts.accepted == 0
                    && !rewritten
                    && (!exposures_changed || read.version.is_empty())
                {
                    if events.is_empty() {
                        dues.push((g, after)); // a sweep: file what is left (or nothing)
                    }
                    outcome += counts; // only duplicates or erased: nothing to write
                    continue;
                }
                let value = codec::encode_with_prefix(
                    &read.profile,
                    &next_version(&read.version),
                    dictionary.as_deref(),
                );
                if dictionary.is_none() {
                    self.sample(customer, &value[9..]);
                }
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
                self.replicated(groups, &written).await?;
                return self.after_writes(groups, outcome, joined, dues).await;
            }
            let chunks = self.call_groups(&(0..writes.len()).collect::<Vec<usize>>());
            let calls: Vec<Vec<redis::Cmd>> = chunks
                .iter()
                .map(|chunk| {
                    let mut cmd = redis::cmd("EVALSHA");
                    cmd.arg(&self.script_sha).arg(2 * chunk.len());
                    for &w in chunk {
                        cmd.arg(self.profile_key(groups[writes[w].group].0.as_str()));
                    }
                    for &w in chunk {
                        cmd.arg(self.erased_key(groups[writes[w].group].0.as_str()));
                    }
                    for &w in chunk {
                        let w = &writes[w];
                        cmd.arg(&w.version).arg(&w.tombstone).arg(&w.value);
                    }
                    vec![cmd]
                })
                .collect();
            let results = self.writes.run(calls).await.map_err(unavailable)?;
            let mut retry = Vec::new();
            let mut script_missing = false;
            for (chunk, result) in chunks.iter().zip(results) {
                let chunk: Vec<&Write> = chunk.iter().map(|&w| &writes[w]).collect();
                #[allow(
                    clippy::wildcard_enum_match_arm,
                    reason = "any other answer of the redis crate's open-ended Value is a protocol error"
                )]
                match result.into_iter().next().unwrap_or(Value::Nil) {
                    Value::Array(flags) if flags.len() == chunk.len() => {
                        for (w, flag) in chunk.iter().zip(flags) {
                            if flag == Value::Int(1) {
                                outcome += w.counts;
                                joined.push((w.group, w.outcomes.clone()));
                                written.push(self.profile_key(groups[w.group].0.as_str()));
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
                self.replicated(groups, &written).await?;
                return self.after_writes(groups, outcome, joined, dues).await;
            }
            pending = retry;
            let cap = (1u64 << attempt.min(4)).min(MAX_BACKOFF_MS);
            let pause = rand::random_range(0..=cap);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        Err(StoreError::Contended(groups[pending[0]].0.to_string()))
    }

    /// With `store.wait_replicas`, waits until that many replicas hold the writes (Redis
    /// `WAIT` on each written slot's master); an error when they do not in time, so that
    /// the events are not acknowledged (a retry is safe: they are de-duplicated).
    ///
    /// A customer whose events were all duplicates (a retry of a batch answered `503` after
    /// its `WAIT` timed out, perhaps on another replica) wrote nothing here, and a `WAIT`
    /// on a connection that wrote nothing proves nothing: a small write in their slot (a
    /// marker that expires in 10 s) goes first, so the `WAIT` covers the earlier writes too.
    async fn replicated(
        &self,
        groups: &[(&CustomerId, Vec<&Event>)],
        written: &[String],
    ) -> Result<(), StoreError> {
        if self.wait_replicas == 0 {
            return Ok(());
        }
        let done: std::collections::HashSet<&str> = written.iter().map(String::as_str).collect();
        let mut keys = written.to_vec();
        let mut markers = Vec::new();
        for (customer, events) in groups {
            if events.is_empty() || done.contains(self.profile_key(customer.as_str()).as_str()) {
                continue;
            }
            let key = format!("{}:{{{}}}:sync", self.prefix, customer.as_str());
            let mut set = redis::cmd("SET");
            set.arg(&key).arg(1).arg("PX").arg(10_000);
            markers.push(vec![set]);
            keys.push(key);
        }
        if keys.is_empty() {
            return Ok(());
        }
        if !markers.is_empty() {
            self.writes.run(markers).await.map_err(unavailable)?;
        }
        let enough = self
            .writes
            .wait_for_replicas(&keys, self.wait_replicas, self.wait_timeout)
            .await
            .map_err(unavailable)?;
        if enough {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!(
                "fewer than {} replicas (store.wait_replicas) took the write within {:?}",
                self.wait_replicas, self.wait_timeout
            )))
        }
    }

    /// Logs the outcomes the written profiles joined and files the customers' next
    /// deadlines, in one round trip (none when there is nothing to say), each in its
    /// customer's shard of those keys. A failure here loses outcomes, never events: the
    /// events are written.
    async fn after_writes(
        &self,
        groups: &[(&CustomerId, Vec<&Event>)],
        outcome: ApplyOutcome,
        joined: Vec<(usize, Vec<Outcome>)>,
        dues: Vec<(usize, Option<i64>)>,
    ) -> Result<ApplyOutcome, StoreError> {
        let count: usize = joined.iter().map(|(_, o)| o.len()).sum();
        if count == 0 && dues.is_empty() {
            return Ok(outcome);
        }
        let (outcomes, due) = (self.outcomes_keys(), self.due_keys());
        let mut shards: Vec<Vec<redis::Cmd>> = vec![Vec::new(); self.layout.shards];
        for (g, list) in &joined {
            let shard = self.layout.shard_of(groups[*g].0.as_str());
            for o in list {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(&outcomes[shard])
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(OUTCOME_LOG / self.layout.shards)
                    .arg("*")
                    .arg("o")
                    .arg(serde_json::to_vec(o).expect("an outcome serialises"));
                shards[shard].push(cmd);
            }
        }
        for (g, next) in &dues {
            let customer = groups[*g].0.as_str();
            let shard = self.layout.shard_of(customer);
            let mut cmd = match next {
                Some(t) => {
                    let mut cmd = redis::cmd("ZADD");
                    cmd.arg(&due[shard]).arg(*t);
                    cmd
                }
                None => {
                    let mut cmd = redis::cmd("ZREM");
                    cmd.arg(&due[shard]);
                    cmd
                }
            };
            cmd.arg(customer);
            shards[shard].push(cmd);
        }
        match self.writes.run(shards).await {
            Err(e) => tracing::warn!(error = %e, outcomes = count, "joined outcomes not logged"),
            Ok(answers) => {
                if let Some(e) = answers
                    .iter()
                    .flatten()
                    .find(|v| matches!(v, Value::ServerError(_)))
                {
                    tracing::warn!(error = ?e, outcomes = count, "redis refused joined outcomes or due times");
                }
            }
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
        self.apply_groups(&group_by_customer(events), now, false)
            .await
    }

    async fn load(&self, customer: &CustomerId) -> Result<Option<Arc<Profile>>, StoreError> {
        self.get(customer, codec::decode_with).await
    }

    async fn load_for_decision(
        &self,
        customer: &CustomerId,
        planned: bool,
    ) -> Result<DecisionRead, StoreError> {
        if !planned {
            let profile = self.get(customer, codec::decode_for_decision_with).await?;
            return Ok(DecisionRead {
                profile,
                ..DecisionRead::default()
            });
        }
        // One round trip: the erasure tombstone, the profile and the planned actions. The
        // tombstone first: an erasure between the reads then shows in the plans' compare-
        // and-set, whatever the later reads found.
        let mut pipe = redis::pipe();
        pipe.cmd("GET")
            .arg(self.erased_key(customer.as_str()))
            .cmd("GET")
            .arg(self.profile_key(customer.as_str()))
            .add_command(self.planned_range(customer));
        let pipe = &pipe;
        let (erased, bytes, planned): (Option<Vec<u8>>, Option<Vec<u8>>, Vec<Vec<u8>>) = self
            .read_retrying(|mut c| async move { pipe.query_async(&mut c).await })
            .await?;
        self.learn_dictionaries(bytes.iter()).await?;
        let profile = decode_stored(
            customer,
            bytes,
            codec::decode_for_decision_with,
            &self.dictionaries,
        )?;
        Ok(DecisionRead {
            profile,
            planned_mark: PlannedMark::of_entries(&planned, erased),
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
        seen: &PlannedMark,
        now: i64,
    ) -> Result<bool, StoreError> {
        let Some(last) = planned.iter().map(|p| p.until).max() else {
            return Ok(true);
        };
        // One script, so the check and the append are one step: append, keep the newest,
        // and let the key live until the last entry lapses (and KEPT_AFTER_LAPSE more),
        // never shortening its life (EXPIRE NX sets a first expiry, GT only lengthens one;
        // Redis 7.0+).
        let live = (last + KEPT_AFTER_LAPSE - now).max(1);
        let mut script = redis::cmd("EVALSHA");
        script
            .arg(PLAN_SCRIPT.get_hash())
            .arg(2)
            .arg(self.planned_key(customer.as_str()))
            .arg(self.erased_key(customer.as_str()))
            .arg(seen.len)
            .arg(&seen.newest)
            .arg(MAX_PLANNED)
            .arg(live)
            .arg(&seen.erased);
        for p in planned {
            script.arg(p.encode());
        }
        // With the outbound feed, the actions are indexed by send time in the same round
        // trip (in their shard of the index, another slot); the publisher checks each
        // against the customer's plans, so an index entry of a plan refused here is dropped.
        let index = self
            .outbound
            .load(std::sync::atomic::Ordering::Relaxed)
            .then(|| {
                let key = &self.outbound_keys("due")[self.layout.shard_of(customer.as_str())];
                let mut zadd = redis::cmd("ZADD");
                zadd.arg(key);
                for p in planned {
                    zadd.arg(p.send_at).arg(DueAction::entry_of(customer, p));
                }
                zadd
            });
        for attempt in 0..2 {
            let mut groups = vec![vec![script.clone()]];
            // Indexed once: filed again after a publisher took the first entry, the action
            // would be published twice.
            if attempt == 0 {
                groups.extend(index.clone().map(|z| vec![z]));
            }
            let answers = self.conn.run(groups).await.map_err(unavailable)?;
            let mut answers = answers.into_iter();
            let recorded = answers.next().and_then(|a| a.into_iter().next());
            // A refused index entry would leave a plan that counts but is never sent: the
            // call fails, and the caller withdraws the plan.
            if let Some(Value::ServerError(e)) = answers.next().and_then(|a| a.into_iter().next()) {
                return Err(unavailable(RedisError::from(e)));
            }
            #[allow(
                clippy::wildcard_enum_match_arm,
                reason = "any other answer of the redis crate's open-ended Value is a protocol error"
            )]
            match recorded {
                Some(Value::Int(1)) => return Ok(true),
                Some(Value::Int(0)) => {
                    if index.is_some() {
                        // Not recorded: its index entries go too (best effort).
                        let _ = self.conn.run(self.unindex(customer, planned)).await;
                    }
                    return Ok(false);
                }
                Some(Value::ServerError(e))
                    if e.kind() == Some(ServerErrorKind::NoScript) && attempt == 0 =>
                {
                    PLAN_SCRIPT
                        .load_async(&mut self.conn.clone())
                        .await
                        .map_err(unavailable)?;
                }
                other => {
                    return Err(unavailable(RedisError::from((
                        ErrorKind::UnexpectedReturnType,
                        "unexpected answer from the planning script",
                        format!("{other:?}"),
                    ))));
                }
            }
        }
        Err(StoreError::Unavailable(
            "the planning script could not be loaded".into(),
        ))
    }

    async fn withdraw(
        &self,
        customer: &CustomerId,
        planned: &[PlannedAction],
    ) -> Result<(), StoreError> {
        let key = self.planned_key(customer.as_str());
        let mut groups = vec![
            planned
                .iter()
                .flat_map(PlannedAction::encodings)
                .map(|entry| {
                    let mut cmd = redis::cmd("LREM");
                    cmd.arg(&key).arg(0).arg(entry);
                    cmd
                })
                .collect(),
        ];
        groups.extend(self.unindex(customer, planned));
        self.conn.run(groups).await.map_err(unavailable)?;
        Ok(())
    }

    async fn erase(&self, customer: &CustomerId) -> Result<bool, StoreError> {
        // The customer's actions waiting in the outbound index go too (the publisher would
        // drop them, finding no plan, but they name the customer until then).
        let planned = self.planned(customer).await?;
        if !planned.is_empty() {
            self.conn
                .run(self.unindex(customer, &planned))
                .await
                .map_err(unavailable)?;
        }
        let now = chrono::Utc::now().timestamp();
        let window = u64::from(self.limits.dedup_window_hours) * 3600;
        // One script: the tombstone and the deletion together (the keys share a slot).
        let mut call = ERASE_SCRIPT.key(self.erased_key(customer.as_str()));
        call.key(self.customer_keys(customer.as_str()))
            .arg(now)
            .arg(window);
        let removed: usize = call
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        // Then, with the outbound feed, their actions in its stream: a pass over their shard
        // of it, which may take longer than a call's time limit, so apart from the answer.
        if self.outbound.load(std::sync::atomic::Ordering::Relaxed) {
            let purge = self.erase_from_outbound_stream(customer);
            tokio::spawn(async move {
                match purge.await {
                    Ok(n) => tracing::debug!(
                        removed = n,
                        "erased actions taken out of the outbound stream"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot take an erased customer's actions out of the outbound stream")
                    }
                }
            });
        }
        Ok(removed > 0)
    }

    fn wants_dictionary(&self) -> bool {
        self.compress && self.dictionaries.current().is_none()
    }

    fn gather_dictionary_samples(&self) {
        self.start_gathering();
    }

    async fn check_dictionaries(&self, now: i64) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::Relaxed;
        let last = self.dictionaries_checked.load(Relaxed);
        if now - last < 30
            || self
                .dictionaries_checked
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_err()
        {
            return Ok(());
        }
        self.load_dictionaries().await
    }

    async fn make_dictionary(&self, sample: &[CustomerId]) -> Result<Option<u32>, StoreError> {
        if !self.compress {
            return Ok(None);
        }
        if let Some(d) = self.dictionaries.current() {
            return Ok(Some(d.id()));
        }
        let mut samples = Vec::with_capacity(sample.len());
        for chunk in sample.chunks(KEYS_PER_CALL) {
            let chunk: Vec<&CustomerId> = chunk.iter().collect();
            for read in self.read(&chunk).await? {
                if !read.version.is_empty() {
                    // Format 4's bytes, after the format byte: what is compressed.
                    samples.push(codec::encode(&read.profile).split_off(1));
                }
            }
        }
        let trained = tokio::task::spawn_blocking(move || Dictionary::train(&samples)).await;
        let Ok(Some(dictionary)) = trained else {
            return Ok(None);
        };
        store_dictionary(
            self.conn.clone(),
            &self.dictionaries_key(),
            &self.dictionaries,
            dictionary,
            (self.wait_replicas, self.wait_timeout),
        )
        .await
        .map(Some)
    }

    async fn rewrite(&self, customers: &[CustomerId], now: i64) -> Result<(), StoreError> {
        let groups: Vec<(&CustomerId, Vec<&Event>)> =
            customers.iter().map(|c| (c, Vec::new())).collect();
        self.apply_groups(&groups, now, true).await?;
        Ok(())
    }

    async fn for_this_thread(&self) -> Option<Arc<dyn ProfileStore>> {
        let opened = async {
            let conn = Self::open(&self.client, self.connect_timeout).await?;
            let writes = if self.wait_replicas > 0 {
                Self::open(&self.client, self.connect_timeout).await?
            } else {
                conn.clone()
            };
            Ok::<_, StoreError>((conn, writes))
        };
        match opened.await {
            Ok((conn, writes)) => Some(Arc::new(Self {
                conn,
                writes,
                client: self.client.clone(),
                connect_timeout: self.connect_timeout,
                limits: self.limits.clone(),
                prefix: self.prefix.clone(),
                layout: self.layout,
                script_sha: self.script_sha.clone(),
                wait_replicas: self.wait_replicas,
                wait_timeout: self.wait_timeout,
                learner: self.learner.clone(),
                outbound: self.outbound.clone(),
                dictionaries: self.dictionaries.clone(),
                compress: self.compress,
                samples: self.samples.clone(),
                gathering: self.gathering.clone(),
                dictionaries_checked: self.dictionaries_checked.clone(),
            })),
            Err(e) => {
                tracing::warn!(error = %e, "no connection of its own for this worker: sharing one");
                None
            }
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // On a cluster, every master answers.
        let _: String = redis::cmd("PING")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn learn_with(&self, learner: Arc<dyn Exposures>) {
        let _ = self.learner.set(learner);
    }

    fn index_outbound(&self) {
        self.outbound
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    async fn claim_due(
        &self,
        now: i64,
        max: usize,
        lease: i64,
    ) -> Result<Vec<DueAction>, StoreError> {
        let (due, claimed) = (self.outbound_keys("due"), self.outbound_keys("claimed"));
        let per_shard = max.div_ceil(self.layout.shards).max(1);
        let groups: Vec<Vec<redis::Cmd>> = due
            .iter()
            .zip(&claimed)
            .map(|(d, c)| {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(CLAIM_LUA)
                    .arg(2)
                    .arg(d)
                    .arg(c)
                    .arg(now)
                    .arg(per_shard)
                    .arg(now + lease);
                vec![cmd]
            })
            .collect();
        // Shard by shard: a shard that cannot answer (its master lost, say) holds back its own
        // actions, not the others' (those claimed are leased: failing the whole call would
        // leave them until their lease lapses).
        let mut out = Vec::new();
        let mut failed = None;
        for answer in self.conn.run_each(groups).await {
            let entries = answer.and_then(|a| match a.into_iter().next() {
                Some(v) => redis::from_redis_value::<Vec<Vec<u8>>>(v).map_err(RedisError::from),
                None => Ok(Vec::new()),
            });
            match entries {
                Ok(entries) => out.extend(entries.into_iter().filter_map(DueAction::from_entry)),
                Err(e) => failed = Some(e),
            }
        }
        match failed {
            Some(e) if out.is_empty() => Err(unavailable(e)),
            Some(e) => {
                tracing::warn!(error = %e, "a shard of the outbound index did not answer; its actions wait");
                Ok(out)
            }
            None => Ok(out),
        }
    }

    async fn release(&self, actions: &[DueAction]) -> Result<(), StoreError> {
        let claimed = self.outbound_keys("claimed");
        let mut groups: Vec<Vec<redis::Cmd>> = vec![Vec::new(); self.layout.shards];
        for a in actions {
            let shard = self.layout.shard_of(a.customer_id.as_str());
            let mut cmd = redis::cmd("ZREM");
            cmd.arg(&claimed[shard]).arg(&a.entry);
            groups[shard].push(cmd);
        }
        self.conn.run(groups).await.map_err(unavailable)?;
        Ok(())
    }

    async fn append_outbound(&self, actions: &[DueAction]) -> Result<usize, StoreError> {
        let (claimed, streams) = (self.outbound_keys("claimed"), self.outbound_stream_keys());
        let mut groups: Vec<Vec<redis::Cmd>> = vec![Vec::new(); self.layout.shards];
        for a in actions {
            let shard = self.layout.shard_of(a.customer_id.as_str());
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(APPEND_LUA)
                .arg(2)
                .arg(&claimed[shard])
                .arg(&streams[shard])
                .arg(OUTBOUND_STREAM / self.layout.shards)
                .arg(&a.entry)
                .arg(a.message());
            groups[shard].push(cmd);
        }
        let answers = self.conn.run(groups).await.map_err(unavailable)?;
        let mut appended = 0;
        for v in answers.into_iter().flatten() {
            if let Value::ServerError(e) = v {
                return Err(unavailable(RedisError::from(e)));
            }
            // 0: another publisher appended it.
            appended += usize::from(v == Value::Int(1));
        }
        Ok(appended)
    }

    async fn outcomes_after(
        &self,
        cursor: &str,
        max: usize,
    ) -> Result<(Vec<Outcome>, String), StoreError> {
        let keys = self.outcomes_keys();
        let mut ids = split_cursor(cursor, keys.len());
        let ranges: Vec<Vec<redis::Cmd>> = keys
            .iter()
            .zip(&ids)
            .map(|(key, id)| {
                let start = if id.is_empty() {
                    "-".to_owned()
                } else {
                    format!("({id}")
                };
                let mut cmd = redis::cmd("XRANGE");
                cmd.arg(key).arg(&start).arg("+").arg("COUNT").arg(max);
                vec![cmd]
            })
            .collect();
        let ranges = &ranges;
        let answers = self
            .read_retrying(|c| async move { c.run(ranges.clone()).await })
            .await?;
        let mut outcomes = Vec::new();
        for (answer, last) in answers.into_iter().zip(ids.iter_mut()) {
            let entries: Vec<(String, Vec<(String, Vec<u8>)>)> = match answer.into_iter().next() {
                Some(v) => redis::from_redis_value(v).map_err(|e| unavailable(e.into()))?,
                None => Vec::new(),
            };
            for (id, fields) in entries {
                for (_, bytes) in fields {
                    match serde_json::from_slice::<Outcome>(&bytes) {
                        Ok(o) => outcomes.push(o),
                        Err(e) => {
                            tracing::warn!(id, error = %e, "an outcome in the log does not read");
                        }
                    }
                }
                *last = id;
            }
        }
        Ok((outcomes, join_cursor(&ids)))
    }

    async fn close_overdue(&self, now: i64, max: usize) -> Result<usize, StoreError> {
        let ranges: Vec<Vec<redis::Cmd>> = self
            .due_keys()
            .iter()
            .map(|key| {
                let mut cmd = redis::cmd("ZRANGE");
                cmd.arg(key)
                    .arg("-inf")
                    .arg(now)
                    .arg("BYSCORE")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(max);
                vec![cmd]
            })
            .collect();
        let ranges = &ranges;
        let answers = self
            .read_retrying(|c| async move { c.run(ranges.clone()).await })
            .await?;
        let mut customers: Vec<CustomerId> = Vec::new();
        for answer in answers {
            let due: Vec<String> = match answer.into_iter().next() {
                Some(v) => redis::from_redis_value(v).map_err(|e| unavailable(e.into()))?,
                None => Vec::new(),
            };
            customers.extend(due.iter().filter_map(|c| CustomerId::parse(c).ok()));
        }
        customers.truncate(max);
        if customers.is_empty() {
            return Ok(0);
        }
        let groups: Vec<(&CustomerId, Vec<&Event>)> =
            customers.iter().map(|c| (c, Vec::new())).collect();
        self.apply_groups(&groups, now, false).await?;
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
