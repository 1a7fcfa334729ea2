//! Ingest: parsing a batch of 100 events, applying events to profiles, the profile codec, and
//! a batch of 100 events into each store. The Redis case is measured next to a reference
//! taken in the same run: 100 pipelined `SET`s of values as large as the profiles written,
//! the least any Redis-backed store must do for such a batch.

#[path = "../tests/it/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::Rng;
use touchpoint::profile::dictionary::{Dictionaries, Dictionary};
use touchpoint::profile::event::parse_body;
use touchpoint::profile::memory::MemoryStore;
use touchpoint::profile::redis_store::{RedisOptions, RedisStore};
use touchpoint::profile::{Event, Profile, ProfileLimits, ProfileStore, codec};

fn batch_json(rng: &mut impl Rng, start: u64, customers: u64) -> String {
    let events: Vec<String> = (0..100)
        .map(|i| {
            let c = rng.random_range(0..customers);
            let n = start + i;
            match i % 4 {
                0 => format!(r#"{{"event_id":"b-{n}","customer_id":"c-{c}","type":"purchase","at":"2026-05-0{}T10:00:00Z","amount":25.5,"channel":"web"}}"#, 1 + i % 9),
                1 => format!(r#"{{"event_id":"b-{n}","customer_id":"c-{c}","type":"contact","at":"2026-05-02T10:00:00Z","channel":"email","offer_id":"gold-card"}}"#),
                2 => format!(r#"{{"event_id":"b-{n}","customer_id":"c-{c}","type":"response","at":"2026-05-02T12:00:00Z","offer_id":"gold-card","outcome":"clicked"}}"#),
                _ => format!(r#"{{"event_id":"b-{n}","customer_id":"c-{c}","type":"interaction","at":"2026-05-03T19:00:00Z","channel":"web","name":"visit"}}"#),
            }
        })
        .collect();
    format!(r#"{{"events":[{}]}}"#, events.join(","))
}

/// A profile with a realistic history: 200 events of every kind.
fn typical_profile(rng: &mut impl Rng) -> Profile {
    typical_profile_from(rng, 0)
}

/// The same with event ids from `start` on.
fn typical_profile_from(rng: &mut impl Rng, start: u64) -> Profile {
    let mut p = Profile::default();
    let limits = ProfileLimits::default();
    for b in 0..2 {
        for e in parse_body(batch_json(rng, start + b * 100, 1).as_bytes()).unwrap() {
            p.apply(&e, &limits, 0).unwrap();
        }
    }
    p
}

fn bench(c: &mut Criterion) {
    let mut rng = common::rng();
    let body = batch_json(&mut rng, 0, 10_000);
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(100));
    g.bench_function("parse_batch/100", |b| {
        b.iter(|| parse_body(black_box(body.as_bytes())).unwrap())
    });
    let events: Vec<Event> = parse_body(body.as_bytes()).unwrap();
    let limits = ProfileLimits::default();
    let base = typical_profile(&mut rng);
    g.bench_function("profile_apply/100", |b| {
        b.iter_batched(
            || base.clone(),
            |mut p| {
                for e in &events {
                    p.apply(e, &limits, 0).unwrap();
                }
                p
            },
            criterion::BatchSize::SmallInput,
        )
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let memory = MemoryStore::new(limits.clone());
    let mut n = 0u64;
    g.bench_function(BenchmarkId::new("store_apply", "memory/100"), |b| {
        b.iter_batched(
            || {
                n += 100;
                parse_body(batch_json(&mut rng, n, 10_000).as_bytes()).unwrap()
            },
            |batch| rt.block_on(memory.apply(&batch, 0)).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("codec");
    let encoded = codec::encode(&base);
    g.throughput(Throughput::Bytes(encoded.len() as u64));
    g.bench_function("encode/typical", |b| {
        b.iter(|| codec::encode(black_box(&base)))
    });
    g.bench_function("decode/typical", |b| {
        b.iter(|| codec::decode(black_box(&encoded)).unwrap())
    });
    g.bench_function("decode_for_decision/typical", |b| {
        b.iter(|| codec::decode_for_decision(black_box(&encoded)).unwrap())
    });
    // The same profile compressed (format 5) against a dictionary made from 300 others
    // like it (their own event ids), next to format 4 above.
    let samples: Vec<Vec<u8>> = (0..300)
        .map(|k| codec::encode(&typical_profile_from(&mut rng, 7_919 * (k + 1))).split_off(1))
        .collect();
    let dictionary = Dictionary::train(&samples).expect("300 alike profiles make a dictionary");
    let compressed = codec::encode_with_prefix(&base, &[], Some(&dictionary));
    let known = Dictionaries::new();
    let id = dictionary.id();
    known.learn(vec![dictionary], Some(id));
    let dictionary = known.current();
    eprintln!(
        "typical profile: {} bytes, compressed {}",
        encoded.len(),
        compressed.len()
    );
    g.bench_function("encode/typical_compressed", |b| {
        b.iter(|| codec::encode_with_prefix(black_box(&base), &[], dictionary.as_deref()))
    });
    g.bench_function("decode_for_decision/typical_compressed", |b| {
        b.iter(|| codec::decode_for_decision_with(black_box(&compressed), &known).unwrap())
    });
    g.finish();

    // Redis: the store next to the reference, on a private server.
    let redis = redis_server::RedisServer::start();
    let store = rt
        .block_on(RedisStore::connect(
            &RedisOptions {
                connect_timeout: std::time::Duration::from_millis(500),
                response_timeout: std::time::Duration::from_millis(500),
                ..RedisOptions::new(redis.url())
            },
            limits.clone(),
        ))
        .unwrap();
    // Warm the store with customers that have history, as in production.
    for b in 0..100 {
        let batch =
            parse_body(batch_json(&mut rng, 1_000_000 + b * 100, 10_000).as_bytes()).unwrap();
        rt.block_on(store.apply(&batch, 0)).unwrap();
    }
    let mut g = c.benchmark_group("redis");
    g.throughput(Throughput::Elements(100));
    let mut n = 10_000_000u64;
    g.bench_function("store_apply/100", |b| {
        b.iter_batched(
            || {
                n += 100;
                parse_body(batch_json(&mut rng, n, 10_000).as_bytes()).unwrap()
            },
            |batch| rt.block_on(store.apply(&batch, 0)).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
    let value = vec![7u8; encoded.len()];
    let client = redis.client();
    let mut conn = rt
        .block_on(client.get_multiplexed_async_connection())
        .unwrap();
    g.bench_function("reference_pipelined_set/100", |b| {
        b.iter(|| {
            let mut pipe = redis::pipe();
            for i in 0..100 {
                pipe.cmd("SET")
                    .arg(format!("ref:{{c-{i}}}"))
                    .arg(&value)
                    .ignore();
            }
            rt.block_on(pipe.query_async::<()>(&mut conn)).unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
