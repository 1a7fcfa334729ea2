//! One Redis server or a Redis Cluster, behind one connection type.
//!
//! Every key of a customer carries their `{customer_id}` hash tag, so everything the store
//! does for one customer lands in one hash slot. What it does for many at once (a batch of
//! events) is a list of [`Group`]s, each a few commands on keys of one slot: one server
//! takes them all as one pipeline (one round trip); a cluster takes each group as a
//! pipeline to the node that owns its slot, all groups at once. A cluster connection
//! follows `MOVED`/`ASK` redirections and failovers itself (the `redis` crate's
//! cluster-async client), within the same time limits as one server's.
//!
//! Keys shared by all customers (the outcome log, the index of due exposures, the
//! decision log's stream) would put all their traffic on one shard of a cluster: on a
//! cluster they are split into [`SHARDS`] keys, each customer's entries in the one their id
//! hashes to ([`Layout::shard_of`]).

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// How many keys a shared key is split into on a cluster: enough that their slots (fixed by
/// the tags `{s0}`..`{s15}`) usually spread over the masters of a cluster of a few shards,
/// few enough that reading all of them (the learner's once-a-second poll) stays one small
/// call per shard. A cluster of more masters than this gives some of them none.
pub const SHARDS: usize = 16;

/// A connection to one server or to a cluster. Cloning is cheap and shares the connection.
#[derive(Clone)]
pub enum Conn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

/// Commands on keys of one hash slot, answered in order.
pub type Group = Vec<Cmd>;

impl Conn {
    pub fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }

    /// Runs the groups (see the module's documentation) and answers each group's commands
    /// in order; a command the server refused answers [`Value::ServerError`], and only a
    /// connection's failure fails the call.
    pub async fn run(&self, groups: Vec<Group>) -> RedisResult<Vec<Vec<Value>>> {
        self.run_each(groups).await.into_iter().collect()
    }

    /// [`Conn::run`], each group's answers or error apart: on a cluster one shard that
    /// fails leaves the others' answers (on one server the groups share one pipeline, so
    /// all answer or all fail).
    pub async fn run_each(&self, groups: Vec<Group>) -> Vec<RedisResult<Vec<Value>>> {
        match self {
            Conn::Node(c) => {
                let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for cmd in groups.into_iter().flatten() {
                    pipe.add_command(cmd);
                }
                let mut all: Vec<Value> = if sizes.iter().sum::<usize>() == 0 {
                    Vec::new()
                } else {
                    match pipe.query_async(&mut c.clone()).await {
                        Ok(all) => all,
                        Err(e) => {
                            let mut failed: Vec<RedisResult<Vec<Value>>> =
                                sizes.iter().skip(1).map(|_| Err(e.clone())).collect();
                            failed.insert(0, Err(e));
                            return failed;
                        }
                    }
                };
                let mut answers = Vec::with_capacity(sizes.len());
                let mut rest = all.drain(..);
                for n in sizes {
                    answers.push(Ok(rest.by_ref().take(n).collect()));
                }
                answers
            }
            Conn::Cluster(c) => {
                let calls = groups.into_iter().map(|group| {
                    let mut conn = c.clone();
                    async move {
                        if group.is_empty() {
                            return Ok(Vec::new());
                        }
                        let mut pipe = redis::pipe();
                        pipe.ignore_errors();
                        for cmd in group {
                            pipe.add_command(cmd);
                        }
                        pipe.query_async::<Vec<Value>>(&mut conn).await
                    }
                });
                futures_util::future::join_all(calls).await
            }
        }
    }

    /// Waits until `replicas` replicas hold every write made so far on the connection to
    /// the master of each key's slot (Redis `WAIT`), at most `timeout`; false when some
    /// master could not say so in time. `keys` name the slots written (one key per slot
    /// is enough).
    pub async fn wait_for_replicas(
        &self,
        keys: &[String],
        replicas: u32,
        timeout: Duration,
    ) -> RedisResult<bool> {
        let wait = || {
            let mut cmd = redis::cmd("WAIT");
            cmd.arg(replicas).arg(timeout.as_millis().max(1) as u64);
            cmd
        };
        let enough = |v: RedisResult<Value>| -> RedisResult<bool> {
            let n: i64 = redis::from_redis_value(v?)?;
            Ok(n >= i64::from(replicas))
        };
        match self {
            Conn::Node(c) => enough(wait().query_async(&mut c.clone()).await),
            Conn::Cluster(c) => {
                // One `WAIT` per slot written (a `WAIT` holds its connection while it waits).
                let routes: std::collections::HashSet<Route> = keys
                    .iter()
                    .map(|key| Route::with_key(key.as_bytes(), SlotAddr::Master))
                    .collect();
                let calls = routes.into_iter().map(|route| {
                    let mut conn = c.clone();
                    async move {
                        conn.route_command(
                            wait(),
                            RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                        )
                        .await
                    }
                });
                let mut all = true;
                for answer in futures_util::future::join_all(calls).await {
                    all &= enough(answer)?;
                }
                Ok(all)
            }
        }
    }

    /// `INFO server` of one node (any node of a cluster: they run one version).
    pub async fn info_server(&self) -> RedisResult<String> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg("server");
        match self {
            Conn::Node(c) => cmd.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => {
                let v = c
                    .clone()
                    .route_command(cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random))
                    .await?;
                Ok(redis::from_redis_value(v)?)
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Where shared keys go: one key on one server, [`SHARDS`] keys on a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub shards: usize,
}

impl Layout {
    pub fn for_cluster(cluster: bool) -> Self {
        Self {
            shards: if cluster { SHARDS } else { 1 },
        }
    }

    /// The shard of a customer's entries in shared keys.
    pub fn shard_of(&self, customer: &str) -> usize {
        if self.shards == 1 {
            0
        } else {
            (xxhash_rust::xxh3::xxh3_64(customer.as_bytes()) % self.shards as u64) as usize
        }
    }

    /// Shard `i` of the shared key `base`: `base` itself on one server, `base:{s<i>}` on a
    /// cluster (the hash tag puts each shard in its own slot).
    pub fn key(&self, base: &str, shard: usize) -> String {
        if self.shards == 1 {
            base.to_owned()
        } else {
            format!("{base}:{{s{shard}}}")
        }
    }

    /// Every shard of the shared key `base`.
    pub fn keys(&self, base: &str) -> Vec<String> {
        (0..self.shards).map(|i| self.key(base, i)).collect()
    }
}

/// Entries read from a stream per `XRANGE` while deleting some ([`xdel_where`]).
const XDEL_PAGE: usize = 1000;

/// Deletes the entries of `stream` whose `field` holds bytes that `doomed` picks (erasure),
/// reading the stream a page at a time; answers how many went.
pub async fn xdel_where(
    conn: &mut Conn,
    stream: &str,
    field: &str,
    doomed: impl Fn(&[u8]) -> bool,
) -> RedisResult<u64> {
    let mut start = "-".to_owned();
    let mut removed = 0;
    loop {
        let page: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(stream)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(XDEL_PAGE)
            .query_async(conn)
            .await?;
        let Some(last) = page.ids.last() else {
            return Ok(removed);
        };
        start = format!("({}", last.id);
        let ids: Vec<&str> = page
            .ids
            .iter()
            .filter(|e| match e.map.get(field) {
                Some(Value::BulkString(bytes)) => doomed(bytes),
                _ => false,
            })
            .map(|e| e.id.as_str())
            .collect();
        if !ids.is_empty() {
            let n: u64 = redis::cmd("XDEL")
                .arg(stream)
                .arg(&ids)
                .query_async(conn)
                .await?;
            removed += n;
        }
        if page.ids.len() < XDEL_PAGE {
            return Ok(removed);
        }
    }
}

/// A cursor over the shards of a stream: the last id read from each, space-separated (an
/// empty entry, `-`, for a shard not read yet). One server's cursor is the one id.
pub fn split_cursor(cursor: &str, shards: usize) -> Vec<String> {
    let mut ids: Vec<String> = cursor
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s == "-" {
                String::new()
            } else {
                s.to_owned()
            }
        })
        .collect();
    ids.resize(shards, String::new());
    ids
}

pub fn join_cursor(ids: &[String]) -> String {
    if ids.iter().all(String::is_empty) {
        return String::new();
    }
    ids.iter()
        .map(|id| if id.is_empty() { "-" } else { id.as_str() })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_over_shards_reads_back() {
        let ids = vec![String::new(), "1-0".to_owned(), "5-2".to_owned()];
        let cursor = join_cursor(&ids);
        assert_eq!(cursor, "- 1-0 5-2");
        assert_eq!(split_cursor(&cursor, 3), ids);
        assert_eq!(split_cursor("", 2), vec![String::new(), String::new()]);
        assert_eq!(join_cursor(&[String::new(), String::new()]), "");
        // One server's cursor is one stream id, as before.
        assert_eq!(split_cursor("1700-0", 1), vec!["1700-0".to_owned()]);
    }

    #[test]
    fn shared_keys_are_split_only_on_a_cluster() {
        let one = Layout::for_cluster(false);
        assert_eq!(
            one.keys("tp:learning:outcomes"),
            vec!["tp:learning:outcomes"]
        );
        assert_eq!(one.shard_of("c-1"), 0);
        let cluster = Layout::for_cluster(true);
        let keys = cluster.keys("tp:learning:due");
        assert_eq!(keys.len(), SHARDS);
        assert_eq!(keys[3], "tp:learning:due:{s3}");
        // Customers spread over every shard.
        let mut used = [false; SHARDS];
        for i in 0..1000 {
            used[cluster.shard_of(&format!("c-{i}"))] = true;
        }
        assert!(used.iter().all(|&u| u));
    }
}
