//! Load generator for Touchpoint's load tests (see `load-tests/README.md`).
//!
//! - `events-file`: writes a JSON-lines event history for `touchpoint import`.
//! - `events`: posts event batches to `POST /v1/events` from many connections at once
//!   (closed loop: each connection sends its next batch when the last is answered) and reports
//!   events per second and latency percentiles from an HDR histogram.
//! - `decisions`: open loop at a fixed arrival rate against `POST /v1/decisions`; requests are
//!   sent on schedule whether or not earlier ones were answered, and latency is measured from
//!   the scheduled send time, so a stalled server cannot hide its queueing (no coordinated
//!   omission).
//! - `saturate`: closed loop at maximum rate against any POST endpoint, for throughput.

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
        #[arg(long)]
        url: String,
        /// Requests per second, sent on a fixed schedule.
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 100_000)]
        customers: usize,
        /// Largest number of requests in flight; beyond it the schedule is late and that
        /// lateness is counted in the latency.
        #[arg(long, default_value_t = 256)]
        max_in_flight: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    Saturate {
        #[arg(long)]
        url: String,
        /// `decision` or `reference`: the body to send.
        #[arg(long, default_value = "decision")]
        body: String,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 100_000)]
        customers: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
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
    let at = 1_767_225_600 + rng.random_range(0..365 * 86_400i64);
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

fn decision_body(rng: &mut StdRng, customers: usize) -> String {
    let c = rng.random_range(0..customers);
    match rng.random_range(0..3) {
        0 => format!(
            r#"{{"customer_id":"c-{c}","touchpoint":"web","placement":"homepage_hero","context":{{"device":"mobile"}}}}"#
        ),
        1 => format!(r#"{{"customer_id":"c-{c}","touchpoint":"call_centre","limit":3}}"#),
        _ => format!(r#"{{"customer_id":"c-{c}","channels":["email","sms","push"],"limit":2}}"#),
    }
}

fn reference_body(rng: &mut StdRng, customers: usize) -> String {
    format!(
        r#"{{"customer_id":"c-{}"}}"#,
        rng.random_range(0..customers)
    )
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

    fn print(&self, what: &str) {
        let h = &self.histogram;
        let secs = self.elapsed.as_secs_f64();
        println!(
            "{}",
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
        );
    }
}

fn client(connections: usize) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().limit(connections.max(1)))
        .timeout(Duration::from_secs(10))
        .finish()
}

async fn post(client: &awc::Client, url: &str, body: String) -> Result<u16, ()> {
    let mut res = client
        .post(url)
        .insert_header(("content-type", "application/json"))
        .send_body(body)
        .await
        .map_err(|_| ())?;
    let status = res.status().as_u16();
    // Read the whole answer: a request is done when its body has arrived.
    res.body().limit(1 << 20).await.map_err(|_| ())?;
    Ok(status)
}

/// Closed loop: `connections` workers each send their next request when the last is answered.
async fn closed_loop(
    url: String,
    connections: usize,
    seconds: u64,
    make: impl FnMut() -> (String, u64) + 'static,
) -> Report {
    let client = client(connections);
    let report = Rc::new(RefCell::new(Report::new()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let bodies: Rc<RefCell<dyn FnMut() -> (String, u64)>> = Rc::new(RefCell::new(make));
    let mut workers = Vec::new();
    for _ in 0..connections {
        let client = client.clone();
        let url = url.clone();
        let report = report.clone();
        let bodies = bodies.clone();
        workers.push(actix_web::rt::spawn(async move {
            while Instant::now() < deadline {
                let (body, units) = (bodies.borrow_mut())();
                let sent = Instant::now();
                let result = post(&client, &url, body).await;
                let us = sent.elapsed().as_micros() as u64;
                let mut r = report.borrow_mut();
                match result {
                    Ok(status) if status < 300 => {
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

/// Open loop: request i is due at start + i/rate and its latency counts from then.
async fn open_loop(
    url: String,
    rate: u64,
    seconds: u64,
    max_in_flight: usize,
    mut make: impl FnMut() -> String,
) -> Report {
    let client = client(max_in_flight);
    let report = Rc::new(RefCell::new(Report::new()));
    let in_flight = Rc::new(std::cell::Cell::new(0usize));
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = started + interval.mul_f64(i as f64);
        let now = Instant::now();
        if due > now {
            actix_web::rt::time::sleep(due - now).await;
        }
        while in_flight.get() >= max_in_flight {
            actix_web::rt::time::sleep(Duration::from_micros(50)).await;
        }
        in_flight.set(in_flight.get() + 1);
        let body = make();
        let client = client.clone();
        let url = url.clone();
        let report = report.clone();
        let in_flight = in_flight.clone();
        tasks.push(actix_web::rt::spawn(async move {
            let result = post(&client, &url, body).await;
            let us = due.elapsed().as_micros() as u64;
            in_flight.set(in_flight.get() - 1);
            let mut r = report.borrow_mut();
            match result {
                Ok(status) if status < 300 => {
                    r.ok += 1;
                    r.units += 1;
                    r.histogram.saturating_record(us.max(1));
                }
                _ => r.errors += 1,
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut r = Rc::try_unwrap(report)
        .ok()
        .expect("tasks done")
        .into_inner();
    r.elapsed = started.elapsed();
    r
}

fn main() {
    let args = Args::parse();
    match args.command {
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
            url,
            rate,
            seconds,
            customers,
            max_in_flight,
            seed,
        } => actix_web::rt::System::new().block_on(async move {
            let mut rng = StdRng::seed_from_u64(seed);
            let report = open_loop(url, rate, seconds, max_in_flight, move || {
                decision_body(&mut rng, customers)
            })
            .await;
            report.print("decisions_open_loop");
        }),
        Cmd::Saturate {
            url,
            body,
            connections,
            seconds,
            customers,
            seed,
        } => actix_web::rt::System::new().block_on(async move {
            let mut rng = StdRng::seed_from_u64(seed);
            let reference = body == "reference";
            let report = closed_loop(url, connections, seconds, move || {
                let b = if reference {
                    reference_body(&mut rng, customers)
                } else {
                    decision_body(&mut rng, customers)
                };
                (b, 1)
            })
            .await;
            report.print(if reference {
                "reference_saturation"
            } else {
                "decisions_saturation"
            });
        }),
    }
}
