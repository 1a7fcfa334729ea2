//! `decide()` on the in-memory store: the shipped catalog (20 offers) and model set, a
//! customer with a realistic history, 5 channels (one inbound touchpoint and four outbound).
//! Target: at most 20 µs. `.../learning` is the same decision with online learning (Thompson
//! sampling over a learned state). Measured next to a reference in the same run: loading the same
//! profile and writing it as JSON, the least any service does per request.
//!
//! `service_path/load_test_mix` is everything a decision costs the service in-process, on the
//! decision load test's requests and profiles: a third each website, call-centre and
//! outbound-planner requests (as `load-tests/loadgen.rs` sends them) for customers of a
//! `touchpoint simulate` history, each one parsed and decided by the decision service
//! ([`Decider`]) as the HTTP handler does: its stored profile decoded as read from Redis,
//! the decision, its planned actions recorded, its log line written and queued to the log
//! writer (a file in a temporary directory), and the answer's JSON. Only HTTP and the
//! store's I/O are left out; count its instructions with callgrind to compare changes.

mod common;

// As in the `touchpoint` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use touchpoint::decision::catalog::Catalog;
use touchpoint::decision::engine::{DecisionEngine, DecisionInput};
use touchpoint::decision::log::{DecisionLog, LogSink};
use touchpoint::decision::request::parse_request;
use touchpoint::decision::{Decider, DecisionSettings};
use touchpoint::live::Live;
use touchpoint::model::set::ModelSet;
use touchpoint::profile::memory::MemoryStore;
use touchpoint::profile::planned::{PlannedAction, PlannedMark};
use touchpoint::profile::store::{ApplyOutcome, DecisionRead, StoreError};
use touchpoint::profile::{
    CustomerId, DecisionId, Event, Profile, ProfileLimits, ProfileStore, Profiles, codec,
};

/// The simulator's kind of history for one customer: attributes, consents, purchases,
/// visits, contacts and answers over a year.
fn history() -> Vec<Event> {
    let mut events = vec![
        serde_json::json!({"event_id": "a", "customer_id": "c-1", "type": "attributes",
        "at": "2026-01-05T09:00:00Z", "attributes": {"age_band": "35-44", "income_band": "high",
        "homeowner": true, "has_app": true, "region": "north", "timezone": "Europe/London"}}),
    ];
    for (i, c) in ["email", "sms", "push", "direct_mail"].iter().enumerate() {
        events.push(serde_json::json!({"event_id": format!("consent-{i}"), "customer_id": "c-1",
            "type": "consent", "at": "2026-01-05T09:01:00Z", "consent": {"channel": c, "granted": true}}));
    }
    let offers = [
        "gold-card",
        "savings-boost",
        "home-insurance",
        "personal-loan",
        "travel-insurance",
    ];
    for d in 0..300 {
        let day = chrono::DateTime::parse_from_rfc3339("2026-01-06T00:00:00Z").unwrap()
            + chrono::Duration::days(d);
        let at = |h: i64| (day + chrono::Duration::hours(h)).to_rfc3339();
        if d % 3 == 0 {
            events.push(
                serde_json::json!({"event_id": format!("v{d}"), "customer_id": "c-1",
                "type": "interaction", "at": at(19), "channel": "web", "name": "visit"}),
            );
        }
        if d % 20 == 0 {
            events.push(
                serde_json::json!({"event_id": format!("p{d}"), "customer_id": "c-1",
                "type": "purchase", "at": at(20), "channel": "web", "amount": 42.0}),
            );
        }
        if d % 7 == 0 {
            let offer = offers[(d / 7) as usize % offers.len()];
            events.push(
                serde_json::json!({"event_id": format!("k{d}"), "customer_id": "c-1",
                "type": "contact", "at": at(10), "channel": "email", "offer_id": offer}),
            );
            if d % 21 == 0 {
                events.push(
                    serde_json::json!({"event_id": format!("r{d}"), "customer_id": "c-1",
                    "type": "response", "at": at(18), "offer_id": offer, "outcome": "clicked"}),
                );
            }
        }
    }
    touchpoint::profile::event::parse_body(
        serde_json::json!({"events": events}).to_string().as_bytes(),
    )
    .unwrap()
}

/// An online state that has learned 300 answers per offer and channel for `profile`, one
/// in ten positive.
fn learned_state(root: &Path, profile: &Profile) -> touchpoint::learning::OnlineState {
    use touchpoint::learning::join::Exposures;
    let models_dir = root.join("models");
    let catalog_path = root.join("config/catalog.toml");
    let models = Arc::new(
        Live::load("model set", "bench_reloads", move || {
            ModelSet::load(&models_dir)
        })
        .unwrap(),
    );
    let catalog = Arc::new(
        Live::load("catalog", "bench_reloads", move || {
            Catalog::load(&catalog_path)
        })
        .unwrap(),
    );
    let learner = touchpoint::learning::Learner::new(
        models,
        catalog.clone(),
        touchpoint::learning::LearningSettings::default(),
    );
    let mut outcomes = Vec::new();
    for offer in &catalog.current().value.offers {
        for &channel in &offer.channels {
            let features = learner.features(profile, &offer.id, channel, 0).unwrap();
            for k in 0..300 {
                outcomes.push(touchpoint::learning::join::Outcome {
                    offer_id: offer.id.clone(),
                    channel,
                    positive: k % 10 == 0,
                    at: 0,
                    features: features.clone(),
                    arm: Default::default(),
                });
            }
        }
    }
    learner.learn(&outcomes, "0-1".into(), i64::MAX);
    (*learner.snapshot().unwrap()).clone()
}

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let catalog = Catalog::load(&root.join("config/catalog.toml")).unwrap();
    let models = ModelSet::load(&root.join("models")).unwrap();
    let settings = DecisionSettings::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = MemoryStore::new(ProfileLimits::default());
    let events = history();
    rt.block_on(store.apply(&events, 0)).unwrap();
    let customer = CustomerId::parse("c-1").unwrap();
    let request = parse_request(
        br#"{"customer_id":"c-1","touchpoint":"web","channels":["email","sms","push","direct_mail"],
             "limit":3,"at":"2026-11-22T10:15:00Z"}"#,
    )
    .unwrap();
    let policy = settings.exploration.policy();
    let engine = DecisionEngine {
        catalog: &catalog,
        models: &models,
        settings: &settings,
        policy: &*policy,
        online: None,
    };
    assert_eq!(catalog.offers.len(), 20);
    // One decision for the bench customer: the profile loaded, then decided.
    let decide = |engine: &DecisionEngine<'_>, request| {
        let profile = rt.block_on(store.load(black_box(&customer))).unwrap();
        engine.decide(&DecisionInput {
            request,
            profile: profile.as_deref(),
            planned: &[],
            degraded: false,
            now: chrono::Utc::now(),
            decision_id: DecisionId::parse("0193c0de-0000-7000-8000-000000000000").unwrap(),
        })
    };
    let mut g = c.benchmark_group("decide");
    g.bench_function("memory_store/20_offers_x_5_channels", |b| {
        b.iter(|| decide(&engine, black_box(&request)))
    });
    g.bench_function("reference/load_profile_and_write_json", |b| {
        b.iter(|| {
            let profile = rt.block_on(store.load(black_box(&customer))).unwrap();
            serde_json::to_vec(profile.as_deref().unwrap()).unwrap()
        })
    });
    // The same decision with online learning: Thompson sampling over a learned state in which
    // every offer has had 300 answers on every channel (so every candidate has a spread and
    // draws are made), the path a decision takes between trainings.
    let online = learned_state(root, &rt.block_on(store.load(&customer)).unwrap().unwrap());
    let learning = DecisionEngine {
        online: Some(&online),
        ..engine
    };
    g.bench_function("memory_store/20_offers_x_5_channels/learning", |b| {
        b.iter(|| decide(&learning, black_box(&request)))
    });
    let mut explained = request.clone();
    explained.explain = true;
    g.bench_function("memory_store/20_offers_x_5_channels/explain", |b| {
        b.iter(|| decide(&engine, &explained))
    });
    // The reference for the send-time model's pooling over the days of the week: the same
    // models with it off (the shipped model learned it from held-out touches).
    let mut unpooled_models = ModelSet::load(&root.join("models")).unwrap();
    if let Some(m) = unpooled_models.send_time.as_mut() {
        m.daily_pooling = 0.0;
    }
    let unpooled = DecisionEngine {
        models: &unpooled_models,
        ..engine
    };
    g.bench_function(
        "memory_store/20_offers_x_5_channels/send_time_not_pooled",
        |b| b.iter(|| decide(&unpooled, black_box(&request))),
    );
    g.finish();

    // A customer's send-time lifts, the part of scoring a customer that pooling touches: a
    // few touches on different days and hours (pooled, every day at those hours has its
    // own power to compute), against the same model not pooled.
    let mut sparse = vec![0u32; 168];
    for (how, n) in [
        (19, 2),
        (24 + 12, 1),
        (2 * 24 + 20, 3),
        (4 * 24 + 8, 1),
        (5 * 24 + 21, 2),
    ] {
        sparse[how] = n;
    }
    let mut g = c.benchmark_group("send_time_lifts");
    for (name, set) in [("pooled", &models), ("not_pooled", &unpooled_models)] {
        let m = set.send_time.as_ref().unwrap();
        let powers = set.send_time_priors.as_ref().unwrap();
        g.bench_function(format!("five_touches/{name}"), |b| {
            b.iter(|| {
                let q = m.distribution(black_box(&sparse), Some(1));
                m.lifts(&q, &sparse, Some(1), powers)
            })
        });
    }
    g.finish();

    let (bodies, stored) = load_test_mix(&catalog, &rt);
    // The service's own runtime shape: the log writer on another thread.
    let service_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let log_dir = tempfile::tempdir().unwrap();
    let decider = service_rt.block_on(decider(root, stored, log_dir.path()));
    let mut g = c.benchmark_group("decide");
    let mut next = 0usize;
    g.bench_function("service_path/load_test_mix", |b| {
        b.iter(|| {
            next = (next + 1) % bodies.len();
            let request = parse_request(black_box(bodies[next].as_bytes())).unwrap();
            let decision = service_rt.block_on(decider.decide(&request));
            decision.to_json()
        })
    });
    g.finish();
}

/// The decision service over the stored profiles, with the shipped models and catalog and
/// the default settings, logging to a file in `log_dir`.
async fn decider(root: &Path, stored: HashMap<CustomerId, Vec<u8>>, log_dir: &Path) -> Decider {
    let models_dir = root.join("models");
    let catalog_path = root.join("config/catalog.toml");
    let models = Live::load("model set", "bench_reloads", move || {
        ModelSet::load(&models_dir)
    })
    .unwrap();
    let catalog = Live::load("catalog", "bench_reloads", move || {
        Catalog::load(&catalog_path)
    })
    .unwrap();
    let mut settings = DecisionSettings::default();
    settings.log.sink = LogSink::File;
    settings.log.path = log_dir.join("decisions.jsonl");
    let (log, _writer) = DecisionLog::start(&settings.log, None).unwrap();
    let store = Encoded {
        stored,
        plans: MemoryStore::new(ProfileLimits::default()),
    };
    let profiles = Profiles::new(Arc::new(store), Duration::from_secs(1));
    Decider::new(profiles, Arc::new(models), Arc::new(catalog), settings, log)
}

/// Profiles held as the Redis store holds them (encoded), decoded on every decision's read;
/// plans in memory. Only what decisions use.
struct Encoded {
    stored: HashMap<CustomerId, Vec<u8>>,
    plans: MemoryStore,
}

#[async_trait::async_trait]
impl ProfileStore for Encoded {
    fn name(&self) -> &'static str {
        "encoded"
    }
    async fn apply(&self, events: &[Event], now: i64) -> Result<ApplyOutcome, StoreError> {
        self.plans.apply(events, now).await
    }
    async fn load(&self, c: &CustomerId) -> Result<Option<Arc<Profile>>, StoreError> {
        Ok(self.load_for_decision(c, false).await?.profile)
    }
    async fn load_for_decision(
        &self,
        c: &CustomerId,
        planned: bool,
    ) -> Result<DecisionRead, StoreError> {
        let profile = self
            .stored
            .get(c)
            .map(|bytes| Arc::new(codec::decode_for_decision(bytes).unwrap()));
        let planned = if planned {
            self.plans.planned(c).await?
        } else {
            Vec::new()
        };
        Ok(DecisionRead {
            profile,
            planned_mark: PlannedMark::of(&planned, None),
            planned,
        })
    }
    async fn planned(&self, c: &CustomerId) -> Result<Vec<PlannedAction>, StoreError> {
        self.plans.planned(c).await
    }
    async fn plan(
        &self,
        c: &CustomerId,
        p: &[PlannedAction],
        seen: &PlannedMark,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.plans.plan(c, p, seen, now).await
    }
    async fn erase(&self, c: &CustomerId) -> Result<bool, StoreError> {
        self.plans.erase(c).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The decision load test's requests, 1,000 of them, for customers of a simulated history
/// (400 customers, a year), and their customers' profiles as the Redis store holds them.
fn load_test_mix(
    catalog: &Catalog,
    rt: &tokio::runtime::Runtime,
) -> (Vec<String>, HashMap<CustomerId, Vec<u8>>) {
    use rand::Rng;
    let dir = tempfile::tempdir().unwrap();
    let opts = touchpoint::training::simulate::SimulationOptions {
        customers: 400,
        days: 365,
        seed: 42,
    };
    let bar = indicatif::ProgressBar::hidden();
    touchpoint::training::simulate::simulate(dir.path(), catalog, &opts, &bar).unwrap();
    let text = std::fs::read(dir.path().join("events.jsonl")).unwrap();
    let events: Vec<Event> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| touchpoint::profile::event::parse_line(l).unwrap())
        .collect();
    let store = MemoryStore::new(ProfileLimits::default());
    rt.block_on(store.apply(&events, 0)).unwrap();
    let mut rng = common::rng();
    let mut stored = HashMap::new();
    let bodies = (0..1000)
        .map(|_| {
            let id = format!("c-{:06}", rng.random_range(0..opts.customers));
            let body = match rng.random_range(0..3) {
                0 => format!(
                    r#"{{"customer_id":"{id}","touchpoint":"web","placement":"homepage_hero","context":{{"device":"mobile"}}}}"#
                ),
                1 => format!(r#"{{"customer_id":"{id}","touchpoint":"call_centre","limit":3}}"#),
                _ => format!(r#"{{"customer_id":"{id}","channels":["email","sms","push"],"limit":2}}"#),
            };
            let customer = CustomerId::parse(&id).unwrap();
            if let Some(p) = rt.block_on(store.load(&customer)).unwrap() {
                stored.insert(customer, codec::encode(&p));
            }
            body
        })
        .collect();
    (bodies, stored)
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
