//! A private `redis-server` on a free port, for tests and benches (shared by both through
//! `#[path]`, so there is one harness).
//!
//! With `TOUCHPOINT_TEST_STORE=cluster` (`scripts/test` runs the store, API and fault tests a
//! second time so) every [`RedisServer`] but a TLS one is a private six-node Redis Cluster
//! behind the same methods, and [`shared_cluster`] backs the tests that would use the
//! embedded store: the tests themselves run unchanged.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the tests' stores run on a Redis Cluster (`TOUCHPOINT_TEST_STORE=cluster`).
pub fn on_cluster() -> bool {
    std::env::var("TOUCHPOINT_TEST_STORE").is_ok_and(|v| v == "cluster")
}

/// One cluster for the whole test process, for the tests that would use the embedded store,
/// each with a key prefix of its own ([`on_cluster`] only). Its nodes outlive no test run:
/// each is watched by a shell that stops it once this process is gone.
pub fn shared_cluster() -> &'static RedisCluster {
    static SHARED: std::sync::OnceLock<RedisCluster> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| RedisCluster::launch(false, true))
}

/// A private Redis server, or with [`on_cluster`] a private cluster. Killed when dropped.
pub struct RedisServer {
    cluster: Option<RedisCluster>,
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    durable: bool,
    /// TLS only (no plain port), with a certificate of a private CA ([`RedisServer::tls_ca`]).
    tls: bool,
}

fn redis_server_binary() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("redis-server"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "redis-server is not installed, and the Redis tests need a real one. \
             Install it with `apt-get install -y redis-server` (scripts/test does this when it can)."
        )
    })
}

impl RedisServer {
    /// A throw-away server that keeps nothing on disk.
    pub fn start() -> Self {
        Self::launch(free_port(), tempfile::tempdir().unwrap(), false)
    }

    /// A server that writes every acknowledged write to its append-only file before answering
    /// (`appendfsync always`), so it can be killed and restarted without losing any.
    pub fn start_durable() -> Self {
        Self::launch(free_port(), tempfile::tempdir().unwrap(), true)
    }

    /// A throw-away server that speaks only TLS, with a certificate for 127.0.0.1 signed by
    /// a private CA made for it (with `openssl`).
    pub fn start_tls() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl runs (apt-get install -y openssl)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::write(
            dir.path().join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=Touchpoint test CA",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
        let mut server = Self {
            cluster: None,
            child: None,
            port: free_port(),
            dir,
            durable: false,
            tls: true,
        };
        server.spawn();
        server
    }

    /// The private CA's certificate of a [`RedisServer::start_tls`] server.
    pub fn tls_ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    fn launch(port: u16, dir: tempfile::TempDir, durable: bool) -> Self {
        let mut server = Self {
            cluster: on_cluster().then(|| RedisCluster::launch(durable, false)),
            child: None,
            port,
            dir,
            durable,
            tls: false,
        };
        if server.cluster.is_none() {
            server.spawn();
        }
        server
    }

    /// Points a store's settings at this server (or cluster).
    pub fn configure(&self, store: &mut touchpoint::settings::StoreSettings) {
        match &self.cluster {
            Some(c) => {
                store.redis_url.clear();
                store.redis_cluster_nodes = c.urls();
            }
            None => store.redis_url = self.url(),
        }
    }

    /// The same as the environment of a `touchpoint` process.
    pub fn store_env(&self) -> (&'static str, String) {
        match &self.cluster {
            Some(c) => ("TOUCHPOINT__STORE__REDIS_CLUSTER_NODES", c.urls().join(",")),
            None => ("TOUCHPOINT__STORE__REDIS_URL", self.url()),
        }
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(redis_server_binary());
        if self.tls {
            let file = |name: &str| self.dir.path().join(name);
            cmd.arg("--port")
                .arg("0")
                .arg("--tls-port")
                .arg(self.port.to_string())
                .arg("--tls-cert-file")
                .arg(file("server.crt"))
                .arg("--tls-key-file")
                .arg(file("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(file("ca.crt"))
                .args(["--tls-auth-clients", "no"]);
        } else {
            cmd.arg("--port").arg(self.port.to_string());
        }
        cmd.arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--save")
            .arg("")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.durable {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        self.child = Some(cmd.spawn().expect("redis-server starts"));
        let started = Instant::now();
        loop {
            if self.tls {
                // Up once it accepts connections (the tests speak TLS through the service).
                if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    return;
                }
            } else if let Ok(mut c) = self.client().get_connection()
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server on port {} did not come up",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The one server's address (not of a cluster: [`RedisServer::configure`]).
    pub fn url(&self) -> String {
        assert!(self.cluster.is_none(), "a cluster has no one address");
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap()
    }

    pub fn connection(&self) -> TestConnection {
        match &self.cluster {
            Some(c) => TestConnection::Cluster(Box::new(
                redis::cluster::ClusterClient::new(c.urls())
                    .unwrap()
                    .get_connection()
                    .unwrap(),
            )),
            None => TestConnection::Node(self.client().get_connection().unwrap()),
        }
    }

    /// SIGKILL: the server dies without a chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(c) = &mut self.cluster {
            c.nodes.iter_mut().for_each(ClusterNode::kill);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (a durable server reloads its data).
    pub fn restart(&mut self) {
        self.kill();
        if let Some(c) = &mut self.cluster {
            c.nodes.iter_mut().for_each(ClusterNode::restart);
            c.wait_healthy(Duration::from_secs(90));
            return;
        }
        self.spawn();
    }

    /// SIGSTOP: the server hangs, holding its connections open (a stuck host).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`RedisServer::pause`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pids: Vec<u32> = match &self.cluster {
            Some(c) => c
                .nodes
                .iter()
                .filter_map(|n| n.child.as_ref())
                .map(Child::id)
                .collect(),
            None => vec![self.child.as_ref().expect("server running").id()],
        };
        for pid in pids {
            signal(pid, sig);
        }
    }

    /// Every key in the server.
    pub fn keys(&self) -> Vec<String> {
        if let Some(c) = &self.cluster {
            return c.keys();
        }
        let mut c = self.connection();
        let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
        keys.sort();
        keys
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// A connection to a test server, or to a test cluster (commands routed by key).
pub enum TestConnection {
    Node(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl redis::ConnectionLike for TestConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<redis::Value> {
        match self {
            Self::Node(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<redis::Value>> {
        match self {
            Self::Node(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        match self {
            Self::Node(c) => c.req_command(cmd),
            Self::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }

    fn supports_pipelining(&self) -> bool {
        match self {
            Self::Node(c) => c.supports_pipelining(),
            Self::Cluster(c) => c.supports_pipelining(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Self::Node(c) => c.check_connection(),
            Self::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Self::Node(c) => c.is_open(),
            Self::Cluster(c) => c.is_open(),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private Redis Cluster: three masters and a replica of each, every one a
/// `redis-server --cluster-enabled yes` on a free port, joined by `redis-cli --cluster
/// create`. Killed when dropped.
pub struct RedisCluster {
    pub nodes: Vec<ClusterNode>,
    _dir: tempfile::TempDir,
}

pub struct ClusterNode {
    child: Option<Child>,
    pub port: u16,
    bus: u16,
    dir: PathBuf,
    /// Every acknowledged write in the append-only file first (`appendfsync always`).
    durable: bool,
    /// Started by a shell that stops it once the test process is gone: the child is then the
    /// shell, so a watched node (the shared cluster's) is never killed, paused or restarted.
    watched: bool,
}

impl ClusterNode {
    fn spawn(&self) -> Child {
        let mut cmd = if self.watched {
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(
                    "\"$0\" \"$@\" & node=$!; \
                     while kill -0 $PPID 2>/dev/null && kill -0 $node 2>/dev/null; do sleep 1; done; \
                     kill $node",
                )
                .arg(redis_server_binary());
            sh
        } else {
            Command::new(redis_server_binary())
        };
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            // The cluster bus on a free port of its own: the default, the port + 10000, may
            // be taken or past 65535.
            .args(["--cluster-port", &self.bus.to_string()])
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
            .args(["--cluster-config-file", "nodes.conf"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", ""])
            // A replica's first sync at once, not after the default 5 s delay.
            .args(["--repl-diskless-sync-delay", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.durable {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        cmd.spawn().expect("redis-server starts")
    }

    /// Starts a killed node again: it rejoins the cluster (its `nodes.conf` kept), as a
    /// replica when another node took over its slots.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Some(self.spawn());
        self.wait_up();
    }

    /// Waits until the node answers. A port found free may be taken by another test's
    /// server before this one binds it (or, on a restart, while the node was down): such
    /// a node exits at once, and starts again on other ports. A node restarted so finds
    /// the others where its `nodes.conf` says, and they learn its new address from it.
    fn wait_up(&mut self) {
        let started = Instant::now();
        while self.info("server").is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "node {} did not come up",
                self.port
            );
            if self
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
            {
                self.port = free_port();
                self.bus = free_port();
                self.child = Some(self.spawn());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the node hangs, its connections open.
    pub fn pause(&self) {
        signal(self.child.as_ref().expect("node running").id(), "-STOP");
    }

    /// SIGCONT after [`ClusterNode::pause`].
    pub fn resume(&self) {
        signal(self.child.as_ref().expect("node running").id(), "-CONT");
    }

    fn info(&self, section: &str) -> Option<String> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut c = client
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()?;
        redis::cmd("INFO").arg(section).query(&mut c).ok()
    }

    /// `master` or `slave`, as the node itself says.
    pub fn role(&self) -> Option<String> {
        let info = self.info("replication")?;
        info.lines()
            .find_map(|l| l.strip_prefix("role:"))
            .map(|r| r.trim().to_owned())
    }
}

impl RedisCluster {
    /// Starts the six nodes and waits until the cluster is up and every replica in sync.
    pub fn start() -> Self {
        Self::launch(false, false)
    }

    fn launch(durable: bool, watched: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for i in 0..6 {
            let node_dir = dir.path().join(format!("n{i}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            let mut node = ClusterNode {
                child: None,
                port: free_port(),
                bus: free_port(),
                dir: node_dir,
                durable,
                watched,
            };
            node.child = Some(node.spawn());
            nodes.push(node);
        }
        for n in &mut nodes {
            n.wait_up();
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli runs (apt-get install -y redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self { nodes, _dir: dir };
        cluster.wait_healthy(Duration::from_secs(90));
        cluster
    }

    /// Waits until every live node says the cluster is ok, three of them are masters and
    /// every other one is a replica in sync with its master.
    pub fn wait_healthy(&self, limit: Duration) {
        let started = Instant::now();
        loop {
            let live: Vec<&ClusterNode> = self.nodes.iter().filter(|n| n.child.is_some()).collect();
            let masters = live
                .iter()
                .filter(|n| n.role().as_deref() == Some("master"))
                .count();
            let ok = masters == 3
                && live.iter().all(|n| {
                    let cluster = n.info("cluster").unwrap_or_default();
                    let state = redis::Client::open(n.url())
                        .ok()
                        .and_then(|c| {
                            c.get_connection_with_timeout(Duration::from_millis(500))
                                .ok()
                        })
                        .and_then(|mut c| {
                            redis::cmd("CLUSTER")
                                .arg("INFO")
                                .query::<String>(&mut c)
                                .ok()
                        })
                        .unwrap_or_default();
                    let replication = n.info("replication").unwrap_or_default();
                    let synced = !replication.contains("role:slave")
                        || replication.contains("master_link_status:up");
                    cluster.contains("cluster_enabled:1")
                        && state.contains("cluster_state:ok")
                        && synced
                });
            if ok {
                return;
            }
            if started.elapsed() >= limit {
                let states: Vec<String> = live
                    .iter()
                    .map(|n| {
                        let info = n.info("replication").unwrap_or_default();
                        let link = info
                            .lines()
                            .find(|l| l.starts_with("master_link_status:"))
                            .unwrap_or("");
                        format!("{}: {:?} {link}", n.port, n.role())
                    })
                    .collect();
                panic!("the cluster did not become healthy: {states:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every node's address, for `store.redis_cluster_nodes`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(ClusterNode::url).collect()
    }

    /// The node that is master of `key`'s slot.
    pub fn master_of(&self, key: &str) -> usize {
        let mut c = self
            .nodes
            .iter()
            .find(|n| n.child.is_some())
            .unwrap()
            .connection();
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut c)
            .unwrap();
        let shards: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut c).unwrap();
        for shard in shards {
            let redis::Value::Array(parts) = shard else {
                continue;
            };
            let (Ok(from), Ok(to)) = (
                redis::from_redis_value::<i64>(parts[0].clone()),
                redis::from_redis_value::<i64>(parts[1].clone()),
            ) else {
                continue;
            };
            if (from..=to).contains(&slot) {
                let redis::Value::Array(master) = &parts[2] else {
                    break;
                };
                let port: i64 = redis::from_redis_value(master[1].clone()).unwrap();
                return self
                    .nodes
                    .iter()
                    .position(|n| i64::from(n.port) == port)
                    .unwrap();
            }
        }
        panic!("no master for slot {slot}");
    }

    /// Every key in the cluster (of the masters).
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for n in &self.nodes {
            if n.child.is_some() && n.role().as_deref() == Some("master") {
                let mut c = n.connection();
                let mut k: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
                keys.append(&mut k);
            }
        }
        keys.sort();
        keys
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
    }
}
