//! Load generator for Touchpoint's load tests (see `load-tests/README.md`).
//!
//! - `events-file`: writes a JSON-lines event history for `touchpoint import`.
//! - `events`: posts event batches to `POST /v1/events` from many connections at once
//!   (closed loop: each connection sends its next batch when the last is answered) and reports
//!   events per second and latency percentiles from an HDR histogram.
//! - `decisions`: open loop at a fixed arrival rate against `POST /v1/decisions` (or the
//!   reference server); requests are sent on schedule whether or not earlier ones were
//!   answered, and latency is measured from the scheduled send time, so a stalled server
//!   cannot hide its queueing (no coordinated omission). With `--metrics-url` it also reports
//!   the server-side percentiles of the run, from the difference of two scrapes of the
//!   server's Prometheus histograms; with `--versus-url` it measures a second server in
//!   rounds alternating with the first, and reports each round and the whole.
//! - `saturate`: closed loop at maximum rate against any POST endpoint, for throughput.
//! - `plot`: latency-by-percentile SVG of the curves `decisions --curve-out` wrote.
//!
//! Requests go through [`Client`], a minimal HTTP/1.1 client: the generator runs on the
//! server's machine, and a general-purpose client cost it a third more CPU per request.

// The generator shares the machine with the server: every cycle it spends is taken from it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Publishes an events file (JSON lines) to a JetStream subject, `batch` events a
    /// message, waiting for every acknowledgement; prints the messages and events published.
    NatsPublish {
        #[arg(long)]
        url: String,
        #[arg(long)]
        subject: String,
        #[arg(long)]
        events: std::path::PathBuf,
        #[arg(long, default_value_t = 100)]
        batch: usize,
    },
    EventsFile {
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long, default_value_t = 100_000)]
        customers: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    Events {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 100)]
        batch: usize,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        #[arg(long, default_value_t = 100_000)]
        customers: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    Decisions {
        #[command(flatten)]
        target: Target,
        /// Requests per second, sent on a fixed schedule.
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Largest number of requests in flight; beyond it the schedule is late and that
        /// lateness is counted in the latency.
        #[arg(long, default_value_t = 256)]
        max_in_flight: usize,
        /// The server's Prometheus endpoint: scraped before and after, and the server-side
        /// percentiles of the run computed from the difference of its histograms.
        #[arg(long)]
        metrics_url: Option<String>,
        /// A second server to measure in the same run (the reference), in alternating
        /// rounds with the first: the machine's neighbours come and go, and alternating
        /// shares their effect out between the two.
        #[arg(long)]
        versus_url: Option<String>,
        #[arg(long, default_value = "reference")]
        versus_body: String,
        #[arg(long)]
        versus_metrics_url: Option<String>,
        /// Rounds of `seconds` each per server.
        #[arg(long, default_value_t = 1)]
        rounds: u32,
        /// Write the latency curves here (JSON: `{"target": {"client", "server"}, "versus":
        /// ...}`, client-side percentiles and, with a metrics URL, server-side ones, over all
        /// rounds), for `plot`.
        #[arg(long)]
        curve_out: Option<std::path::PathBuf>,
    },
    Saturate {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Latency-by-percentile plot (SVG) of curves written by `decisions --curve-out`.
    Plot {
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long)]
        title: String,
        /// `label=FILE:SERVER.SIDE`, repeated: SERVER is `target` or `versus`, SIDE `client`
        /// (the latency the load generator saw) or `server` (the one the server's histogram
        /// recorded).
        #[arg(long = "curve", required = true)]
        curves: Vec<String>,
        /// A limit to draw: milliseconds at --target-quantile.
        #[arg(long)]
        target_ms: Option<f64>,
        #[arg(long, default_value_t = 0.99)]
        target_quantile: f64,
    },
}

/// What to send and where.
#[derive(clap::Args)]
struct Target {
    #[arg(long)]
    url: String,
    /// `decision` (a mix of website, call-centre and outbound-planner requests) or
    /// `reference` (the reference server's `{"customer_id"}` body).
    #[arg(long, default_value = "decision")]
    body: String,
    /// Customers are `c-0` .. `c-{customers - 1}`.
    #[arg(long, default_value_t = 100_000)]
    customers: usize,
    /// Zero-pad customer numbers to this many digits (`touchpoint simulate` writes `c-000042`).
    #[arg(long, default_value_t = 0)]
    id_digits: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

impl Target {
    /// Request bodies, drawn from a seeded RNG.
    fn bodies(&self) -> impl FnMut() -> String + 'static {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let (customers, digits) = (self.customers, self.id_digits);
        let reference = self.body == "reference";
        move || {
            let c = rng.random_range(0..customers);
            let id = format!("c-{c:0digits$}");
            if reference {
                format!(r#"{{"customer_id":"{id}"}}"#)
            } else {
                decision_body(&mut rng, &id)
            }
        }
    }
}

const CHANNELS: [&str; 4] = ["email", "sms", "push", "web"];
const OFFERS: [&str; 6] = [
    "gold-card",
    "cashback-card",
    "personal-loan",
    "home-insurance",
    "savings-boost",
    "app-onboarding",
];

/// A realistic mix: mostly visits and contacts, some purchases and responses, now and then a
/// consent or attribute change.
fn event(rng: &mut StdRng, n: u64, customers: usize) -> String {
    let c = rng.random_range(0..customers);
    // During 2025: a year of history wholly in the past (events ahead of the clock are refused).
    let at = 1_735_689_600 + rng.random_range(0..365 * 86_400i64);
    let at = chrono::DateTime::from_timestamp(at, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let id = format!("lt-{n}");
    let offer = OFFERS[rng.random_range(0..OFFERS.len())];
    let channel = CHANNELS[rng.random_range(0..CHANNELS.len())];
    match rng.random_range(0..100) {
        0..35 => format!(
            r#"{{"event_id":"{id}","customer_id":"c-{c}","type":"interaction","at":"{at}","channel":"web","name":"visit"}}"#
        ),
        35..60 => format!(
            r#"{{"event_id":"{id}","customer_id":"c-{c}","type":"contact","at":"{at}","channel":"{channel}","offer_id":"{offer}"}}"#
        ),
        60..80 => format!(
            r#"{{"event_id":"{id}","customer_id":"c-{c}","type":"purchase","at":"{at}","channel":"web","amount":{:.2}}}"#,
            rng.random_range(5.0..200.0)
        ),
        80..95 => format!(
            r#"{{"event_id":"{id}","customer_id":"c-{c}","type":"response","at":"{at}","offer_id":"{offer}","outcome":"{}"}}"#,
            ["clicked", "ignored", "declined", "accepted"][rng.random_range(0..4)]
        ),
        95..98 => format!(
            r#"{{"event_id":"{id}","customer_id":"c-{c}","type":"consent","at":"{at}","consent":{{"channel":"{channel}","granted":{}}}}}"#,
            rng.random_bool(0.8)
        ),
        _ => format!(
            r#"{{"event_id":"{id}","customer_id":"c-{c}","type":"attributes","at":"{at}","attributes":{{"age_band":"35-44","region":"north","timezone":"Europe/London"}}}}"#
        ),
    }
}

/// The three kinds of caller in equal shares: a website's next-best-offer, a call-centre
/// screen, an outbound campaign planner.
fn decision_body(rng: &mut StdRng, id: &str) -> String {
    match rng.random_range(0..3) {
        0 => format!(
            r#"{{"customer_id":"{id}","touchpoint":"web","placement":"homepage_hero","context":{{"device":"mobile"}}}}"#
        ),
        1 => format!(r#"{{"customer_id":"{id}","touchpoint":"call_centre","limit":3}}"#),
        _ => format!(r#"{{"customer_id":"{id}","channels":["email","sms","push"],"limit":2}}"#),
    }
}

struct Report {
    ok: u64,
    errors: u64,
    histogram: Histogram<u64>,
    elapsed: Duration,
    units: u64,
}

impl Report {
    fn new() -> Self {
        Self {
            ok: 0,
            errors: 0,
            histogram: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
            elapsed: Duration::ZERO,
            units: 0,
        }
    }

    fn json(&self, what: &str) -> serde_json::Value {
        let h = &self.histogram;
        let secs = self.elapsed.as_secs_f64();
        serde_json::json!({
                "what": what,
                "requests_ok": self.ok,
                "requests_failed": self.errors,
                "seconds": secs,
                "requests_per_second": self.ok as f64 / secs,
                "units_per_second": self.units as f64 / secs,
                "latency_us": {
                    "p50": h.value_at_quantile(0.50), "p90": h.value_at_quantile(0.90),
                    "p99": h.value_at_quantile(0.99), "p999": h.value_at_quantile(0.999),
                    "max": h.max(),
                }
        })
    }

    fn print(&self, what: &str) {
        println!("{}", self.json(what));
    }

    /// (quantile, milliseconds) at percentiles spread towards the tail, as HDR plots do.
    fn curve(&self) -> Vec<(f64, f64)> {
        // Up to 99.99 %: a run of 100,000-200,000 requests says little beyond.
        (0..=16)
            .map(|i| {
                let q = 1.0 - 10f64.powf(-(i as f64) / 4.0);
                (q, self.histogram.value_at_quantile(q) as f64 / 1000.0)
            })
            .collect()
    }
}

/// `(upper bound, cumulative count)` per bucket, or `(quantile, milliseconds)` per point.
type Pairs = Vec<(f64, f64)>;

/// One Prometheus histogram's cumulative bucket counts, summed over the series whose labels
/// contain `filter`.
fn scrape_buckets(url: &str, metric: &str, filter: &str) -> Result<Vec<(f64, f64)>, String> {
    let text = std::process::Command::new("curl")
        .args(["-sf", url])
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    if !text.status.success() {
        return Err(format!("scraping {url} failed"));
    }
    let text = String::from_utf8_lossy(&text.stdout);
    let prefix = format!("{metric}_bucket{{");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in text.lines().filter(|l| l.starts_with(&prefix)) {
        let (labels, count) = line[prefix.len()..]
            .rsplit_once("} ")
            .ok_or_else(|| format!("unreadable line {line:?}"))?;
        if !labels.contains(filter) {
            continue;
        }
        let le = labels
            .split(',')
            .find_map(|l| l.strip_prefix("le=\""))
            .map(|l| l.trim_end_matches('"'))
            .ok_or_else(|| format!("no le label in {line:?}"))?;
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().map_err(|e| format!("le {le:?}: {e}"))?
        };
        let count: f64 = count
            .trim()
            .parse()
            .map_err(|e| format!("{count:?}: {e}"))?;
        match buckets.iter_mut().find(|b| b.0 == le) {
            Some(b) => b.1 += count,
            None => buckets.push((le, count)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(buckets)
}

/// The quantile of a cumulative histogram, interpolated linearly inside its bucket as
/// Prometheus' `histogram_quantile` does; in the histogram's unit.
fn bucket_quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut below = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(below.0);
            }
            let share = (rank - below.1) / (count - below.1).max(f64::MIN_POSITIVE);
            return Some(below.0 + (le - below.0) * share);
        }
        below = (le, count);
    }
    None
}

/// Server-side latency of one run: the difference of two scrapes.
struct ServerSide {
    metric: &'static str,
    filter: &'static str,
    before: Vec<(f64, f64)>,
}

impl ServerSide {
    /// The service's decision histogram (request body read to answer built, the store read
    /// included) and its HTTP one for the route (to the response); the reference server's
    /// histogram over the same span as the decision one. The first series the
    /// server has is its server-side curve.
    const SERIES: [(&str, &str); 3] = [
        ("touchpoint_decision_duration_seconds", ""),
        (
            "touchpoint_http_request_duration_seconds",
            "route=\"/v1/decisions\"",
        ),
        ("reference_request_duration_seconds", ""),
    ];

    /// The series the server at `url` has recorded into (a histogram appears with its first
    /// observation: warm the server up first).
    fn start(url: &str) -> Vec<ServerSide> {
        let series: Vec<ServerSide> = Self::SERIES
            .iter()
            .filter_map(|&(metric, filter)| {
                let before = scrape_buckets(url, metric, filter).unwrap_or_else(|e| panic!("{e}"));
                (!before.is_empty()).then_some(ServerSide {
                    metric,
                    filter,
                    before,
                })
            })
            .collect();
        assert!(
            !series.is_empty(),
            "{url} has none of the latency histograms {:?}: warm the server up first",
            Self::SERIES.map(|s| s.0)
        );
        series
    }
    /// Milliseconds at each quantile, and the bucket counts of the run.
    fn finish(&self, url: &str, quantiles: &[f64]) -> (Pairs, Pairs) {
        let after = scrape_buckets(url, self.metric, self.filter).unwrap_or_else(|e| panic!("{e}"));
        let run: Vec<(f64, f64)> = after
            .iter()
            .map(|&(le, count)| {
                let earlier = self.before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
                (le, count - earlier)
            })
            .collect();
        let points = quantiles
            .iter()
            .filter_map(|&q| bucket_quantile(&run, q).map(|s| (q, s * 1000.0)))
            .collect();
        (points, run)
    }

    /// Percentiles of each series since it was started, with its bucket counts, and the
    /// first series' curve at `quantiles` (milliseconds).
    fn summary(series: &[ServerSide], url: &str, quantiles: &[f64]) -> (serde_json::Value, Pairs) {
        let mut out = serde_json::json!({});
        let mut curve = Vec::new();
        for (i, s) in series.iter().enumerate() {
            let (points, buckets) = s.finish(url, quantiles);
            let at = |q: f64| bucket_quantile(&buckets, q).map(|s| (s * 1e6).round() as u64);
            out[s.metric] = serde_json::json!({
                "count": buckets.last().map_or(0.0, |b| b.1),
                "latency_us": {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "p999": at(0.999)},
                "buckets": buckets.iter().filter(|b| b.0.is_finite())
                    .map(|b| serde_json::json!([b.0, b.1])).collect::<Vec<_>>(),
            });
            if i == 0 {
                curve = points;
            }
        }
        (out, curve)
    }
}

/// A minimal HTTP/1.1 client: keep-alive connections, one request at a time on each, reused
/// from an idle pool. A general client (awc) cost the generator about a third more CPU per
/// request, all of it taken from the server it shares the machine with; this one writes a
/// request in one call and parses the answer's head with httparse.
#[derive(Clone)]
struct Client {
    addr: String,
    /// The request line and headers up to the body's length.
    head: Rc<str>,
    limit: usize,
    idle: Rc<RefCell<Vec<Conn>>>,
    open: Rc<std::cell::Cell<usize>>,
}

struct Conn {
    stream: actix_web::rt::net::TcpStream,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// When its last answer came: a server closes a keep-alive connection idle past its
    /// timeout (actix-web: 5 s), as one is between the rounds of an alternating run.
    idle_since: Instant,
}

/// Idle connections older than this are closed rather than reused, so that a request is
/// never sent on one the server is closing (it would count as failed).
const MAX_IDLE: Duration = Duration::from_secs(2);

impl Client {
    /// A client that POSTs JSON to `url` (`http://host:port/path`) over at most `connections`.
    fn new(url: &str, connections: usize) -> Self {
        let rest = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("{url}: only http:// URLs"));
        let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        Self {
            addr: addr.to_owned(),
            head: format!(
                "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: "
            )
            .into(),
            limit: connections.max(1),
            idle: Rc::default(),
            open: Rc::default(),
        }
    }

    /// Sends the body and reads the whole answer; its status, or `None` when the exchange
    /// failed (the connection is then dropped).
    async fn post(&self, body: &str) -> Option<u16> {
        let mut conn = loop {
            let reused = self.idle.borrow_mut().pop();
            if let Some(c) = reused {
                if c.idle_since.elapsed() < MAX_IDLE {
                    break c;
                }
                self.open.set(self.open.get() - 1);
                continue;
            }
            if self.open.get() < self.limit {
                self.open.set(self.open.get() + 1);
                match actix_web::rt::net::TcpStream::connect(&self.addr).await {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        break Conn {
                            stream,
                            buf: Vec::with_capacity(8192),
                            out: Vec::with_capacity(1024),
                            idle_since: Instant::now(),
                        };
                    }
                    Err(_) => {
                        self.open.set(self.open.get() - 1);
                        return None;
                    }
                }
            }
            actix_web::rt::time::sleep(Duration::from_micros(50)).await;
        };
        let exchange =
            actix_web::rt::time::timeout(Duration::from_secs(10), conn.exchange(&self.head, body));
        match exchange.await {
            Ok(Ok(status)) => {
                conn.idle_since = Instant::now();
                self.idle.borrow_mut().push(conn);
                Some(status)
            }
            _ => {
                self.open.set(self.open.get() - 1);
                None
            }
        }
    }
}

impl Conn {
    async fn exchange(&mut self, head: &str, body: &str) -> std::io::Result<u16> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.out.clear();
        self.out.extend_from_slice(head.as_bytes());
        self.out
            .extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        self.out.extend_from_slice(b"\r\n\r\n");
        self.out.extend_from_slice(body.as_bytes());
        self.stream.write_all(&self.out).await?;
        self.buf.clear();
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        loop {
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(bad("connection closed"));
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut answer = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(head_len) =
                answer.parse(&self.buf).map_err(|e| bad(&e.to_string()))?
            else {
                continue;
            };
            let status = answer.code.unwrap_or(0);
            let length = match answer
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            {
                Some(h) => std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or_else(|| bad("bad content-length"))?,
                // Answers without a body; anything else this client cannot delimit.
                None if status == 204 || status == 304 || status < 200 => 0,
                None => return Err(bad("no content-length")),
            };
            // A request is done when its whole answer has arrived.
            while self.buf.len() < head_len + length {
                if self.stream.read_buf(&mut self.buf).await? == 0 {
                    return Err(bad("connection closed"));
                }
            }
            return Ok(status);
        }
    }
}

/// Closed loop: `connections` workers each send their next request when the last is answered.
async fn closed_loop(
    url: String,
    connections: usize,
    seconds: u64,
    make: impl FnMut() -> (String, u64) + 'static,
) -> Report {
    let client = Client::new(&url, connections);
    let report = Rc::new(RefCell::new(Report::new()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let bodies: Rc<RefCell<dyn FnMut() -> (String, u64)>> = Rc::new(RefCell::new(make));
    let mut workers = Vec::new();
    for _ in 0..connections {
        let client = client.clone();
        let report = report.clone();
        let bodies = bodies.clone();
        workers.push(actix_web::rt::spawn(async move {
            while Instant::now() < deadline {
                let (body, units) = (bodies.borrow_mut())();
                let sent = Instant::now();
                let result = client.post(&body).await;
                let us = sent.elapsed().as_micros() as u64;
                let mut r = report.borrow_mut();
                match result {
                    Some(status) if status < 300 => {
                        r.ok += 1;
                        r.units += units;
                        r.histogram.saturating_record(us.max(1));
                    }
                    _ => r.errors += 1,
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let mut r = Rc::try_unwrap(report)
        .ok()
        .expect("workers done")
        .into_inner();
    r.elapsed = started.elapsed();
    r
}

/// Waits until `due`, to well under a millisecond. The runtime's timers tick in whole
/// milliseconds, so sleeping on them alone would send 10,000 requests a second as bursts of
/// ten every millisecond rather than one every 100 µs; a short wait is one thread sleep, after
/// the answers that arrived meanwhile have been handled. One sleep per request and no more:
/// the generator shares the machine with the server, and every wake-up it costs is taken
/// from the server.
async fn pace(due: Instant) {
    const TIMER_TICK: Duration = Duration::from_millis(1);
    let wait = due.saturating_duration_since(Instant::now());
    if wait > 2 * TIMER_TICK {
        actix_web::rt::time::sleep(wait - TIMER_TICK).await;
    }
    actix_web::rt::task::yield_now().await;
    let wait = due.saturating_duration_since(Instant::now());
    if !wait.is_zero() {
        std::thread::sleep(wait);
    }
}

/// Open loop: request i is due at start + i/rate and its latency counts from then.
async fn open_loop(
    url: String,
    rate: u64,
    seconds: u64,
    max_in_flight: usize,
    mut make: impl FnMut() -> String,
) -> Report {
    let client = Client::new(&url, max_in_flight);
    let report = Rc::new(RefCell::new(Report::new()));
    let in_flight = Rc::new(std::cell::Cell::new(0usize));
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    for i in 0..total {
        let due = started + interval.mul_f64(i as f64);
        pace(due).await;
        while in_flight.get() >= max_in_flight {
            actix_web::rt::time::sleep(Duration::from_micros(50)).await;
        }
        in_flight.set(in_flight.get() + 1);
        let body = make();
        let client = client.clone();
        let report = report.clone();
        let in_flight = in_flight.clone();
        actix_web::rt::spawn(async move {
            let result = client.post(&body).await;
            let us = due.elapsed().as_micros() as u64;
            in_flight.set(in_flight.get() - 1);
            let mut r = report.borrow_mut();
            match result {
                Some(status) if status < 300 => {
                    r.ok += 1;
                    r.units += 1;
                    r.histogram.saturating_record(us.max(1));
                }
                _ => r.errors += 1,
            }
        });
    }
    // Every request ends, answered or timed out.
    while in_flight.get() > 0 {
        actix_web::rt::time::sleep(Duration::from_millis(1)).await;
    }
    let mut r = Rc::try_unwrap(report)
        .ok()
        .expect("tasks done")
        .into_inner();
    r.elapsed = started.elapsed();
    r
}

/// One server of an open-loop run: its requests, and what its rounds measured.
struct OpenLoopServer {
    name: &'static str,
    url: String,
    body: String,
    bodies: Box<dyn FnMut() -> String>,
    metrics_url: Option<String>,
    /// Over all rounds: the load generator's histogram, and the server's series as scraped
    /// before the first round.
    client: Report,
    server: Option<Vec<ServerSide>>,
    rounds: Vec<serde_json::Value>,
}

impl OpenLoopServer {
    fn new(name: &'static str, target: &Target, metrics_url: Option<String>) -> Self {
        Self {
            name,
            url: target.url.clone(),
            body: target.body.clone(),
            bodies: Box::new(target.bodies()),
            server: metrics_url.as_deref().map(ServerSide::start),
            metrics_url,
            client: Report::new(),
            rounds: Vec::new(),
        }
    }

    async fn round(&mut self, rate: u64, seconds: u64, max_in_flight: usize) {
        let server = self.metrics_url.as_deref().map(ServerSide::start);
        let report = open_loop(
            self.url.clone(),
            rate,
            seconds,
            max_in_flight,
            &mut self.bodies,
        )
        .await;
        let mut json = report.json(&format!("{}_open_loop", self.body));
        if let (Some(server), Some(url)) = (server, self.metrics_url.as_deref()) {
            json["server_side"] = ServerSide::summary(&server, url, &[]).0;
        }
        eprintln!("{} round {}: {json}", self.name, self.rounds.len() + 1);
        self.rounds.push(json);
        let total = &mut self.client;
        total.ok += report.ok;
        total.errors += report.errors;
        total.units += report.units;
        total.elapsed += report.elapsed;
        total.histogram.add(&report.histogram).unwrap();
    }

    /// The summary over all rounds (with each round's), and the curves to plot.
    fn finish(&self) -> (serde_json::Value, serde_json::Value) {
        let client = self.client.curve();
        let mut summary = self.client.json(&format!("{}_open_loop", self.body));
        let mut curves = serde_json::json!({"client": client});
        if let (Some(server), Some(url)) = (&self.server, self.metrics_url.as_deref()) {
            let quantiles: Vec<f64> = client.iter().map(|p| p.0).collect();
            let (side, points) = ServerSide::summary(server, url, &quantiles);
            summary["server_side"] = side;
            curves["server"] = serde_json::json!(points);
        }
        summary["per_round"] = self.rounds.clone().into();
        (summary, curves)
    }
}

fn main() {
    let args = Args::parse();
    match args.command {
        Cmd::NatsPublish {
            url,
            subject,
            events,
            batch,
        } => {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let client = async_nats::connect(url).await.unwrap();
                let js = async_nats::jetstream::new(client);
                let text = std::fs::read_to_string(&events).unwrap();
                let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
                let mut acks = std::collections::VecDeque::new();
                let mut messages = 0;
                for chunk in lines.chunks(batch) {
                    let body = format!("{{\"events\":[{}]}}", chunk.join(","));
                    acks.push_back(js.publish(subject.clone(), body.into()).await.unwrap());
                    messages += 1;
                    if acks.len() >= 256 {
                        acks.pop_front().unwrap().await.unwrap();
                    }
                }
                for ack in acks {
                    ack.await.unwrap();
                }
                println!("{{\"messages\": {messages}, \"events\": {}}}", lines.len());
            });
        }
        Cmd::EventsFile {
            out,
            events,
            customers,
            seed,
        } => {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut w = std::io::BufWriter::new(std::fs::File::create(&out).unwrap());
            for n in 0..events as u64 {
                writeln!(w, "{}", event(&mut rng, n, customers)).unwrap();
            }
            w.flush().unwrap();
        }
        Cmd::Events {
            url,
            batch,
            connections,
            seconds,
            customers,
            seed,
        } => actix_web::rt::System::new().block_on(async move {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut n = 0u64;
            let report = closed_loop(url, connections, seconds, move || {
                let events: Vec<String> = (0..batch)
                    .map(|_| {
                        n += 1;
                        event(&mut rng, n, customers)
                    })
                    .collect();
                (
                    format!(r#"{{"events":[{}]}}"#, events.join(",")),
                    batch as u64,
                )
            })
            .await;
            report.print("events");
        }),
        Cmd::Decisions {
            target,
            rate,
            seconds,
            max_in_flight,
            metrics_url,
            versus_url,
            versus_body,
            versus_metrics_url,
            rounds,
            curve_out,
        } => actix_web::rt::System::new().block_on(async move {
            let mut servers = vec![OpenLoopServer::new("target", &target, metrics_url)];
            if let Some(url) = versus_url {
                let versus = Target {
                    url,
                    body: versus_body,
                    ..target
                };
                servers.push(OpenLoopServer::new("versus", &versus, versus_metrics_url));
            }
            for _ in 0..rounds {
                for server in &mut servers {
                    server.round(rate, seconds, max_in_flight).await;
                }
            }
            let mut out = serde_json::json!({"rate": rate, "seconds": seconds, "rounds": rounds});
            let mut curves = serde_json::json!({});
            for server in servers {
                let (summary, curve) = server.finish();
                out[server.name] = summary;
                curves[server.name] = curve;
            }
            if let Some(path) = curve_out {
                std::fs::write(&path, curves.to_string()).unwrap();
            }
            println!("{out}");
        }),
        Cmd::Saturate {
            target,
            connections,
            seconds,
        } => actix_web::rt::System::new().block_on(async move {
            let mut bodies = target.bodies();
            let report = closed_loop(target.url.clone(), connections, seconds, move || {
                (bodies(), 1)
            })
            .await;
            report.print(&format!("{}_saturation", target.body));
        }),
        Cmd::Plot {
            out,
            title,
            curves,
            target_ms,
            target_quantile,
        } => {
            let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
            for spec in &curves {
                let (label, file) = spec
                    .split_once('=')
                    .unwrap_or_else(|| panic!("--curve {spec:?}: expected label=FILE[:side]"));
                let (file, which) = file
                    .rsplit_once(':')
                    .unwrap_or_else(|| panic!("--curve {spec:?}: expected FILE:SERVER.SIDE"));
                let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{file}: {e}"));
                let json: serde_json::Value = serde_json::from_str(&text).unwrap();
                let curve = which.split('.').fold(&json, |v, key| &v[key]);
                let points: Vec<(f64, f64)> = serde_json::from_value(curve.clone())
                    .unwrap_or_else(|e| panic!("{file}: no {which} curve: {e}"));
                series.push((label.to_owned(), points));
            }
            let borrowed: Vec<(&str, &[(f64, f64)])> = series
                .iter()
                .map(|(l, p)| (l.as_str(), p.as_slice()))
                .collect();
            let svg = touchpoint::training::plots::latency_svg(
                &title,
                &borrowed,
                target_ms.map(|ms| (target_quantile, ms)),
            )
            .unwrap();
            std::fs::write(&out, svg).unwrap();
        }
    }
}
