//! `touchpoint evaluate` on logs whose truth is known: over many seeds, each estimator's 95%
//! interval covers the target policy's true value at about its nominal rate.

use std::io::Write;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use touchpoint::training::evaluate::{Target, evaluate_files};

/// True response probability of action `a` for a customer of kind `x`.
const TRUTH: [[f64; 4]; 3] = [
    [0.10, 0.30, 0.05, 0.20],
    [0.40, 0.10, 0.15, 0.05],
    [0.05, 0.05, 0.50, 0.25],
];
const OFFERS: [&str; 4] = ["o-0", "o-1", "o-2", "o-3"];

/// The target: 0.7 on the kind's best action, 0.1 on each other.
fn target(x: usize) -> [f64; 4] {
    let best = (0..4)
        .max_by(|&a, &b| TRUTH[x][a].total_cmp(&TRUTH[x][b]))
        .unwrap();
    let mut p = [0.1; 4];
    p[best] = 0.7;
    p
}

/// Writes a log of `n` decisions by a random logging policy (fresh probabilities per
/// decision, each at least 0.05), the answers, and the target's probabilities.
fn write_log(dir: &std::path::Path, seed: u64, n: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut log = std::io::BufWriter::new(std::fs::File::create(dir.join("log.jsonl")).unwrap());
    let mut events =
        std::io::BufWriter::new(std::fs::File::create(dir.join("events.jsonl")).unwrap());
    let mut tgt = std::io::BufWriter::new(std::fs::File::create(dir.join("target.jsonl")).unwrap());
    for i in 0..n {
        let x = rng.random_range(0..3);
        let raw: Vec<f64> = (0..4).map(|_| rng.random_range(0.0..1.0) + 0.25).collect();
        let total: f64 = raw.iter().sum();
        let mu: Vec<f64> = raw.iter().map(|r| r / total).collect();
        let mut u: f64 = rng.random_range(0.0..1.0);
        let mut a = 3;
        for (k, &p) in mu.iter().enumerate() {
            if u < p {
                a = k;
                break;
            }
            u -= p;
        }
        let id = format!("d-{i}");
        let customer = format!("c-{x}-{i}");
        let at = 1_767_225_600 + i as i64 * 60;
        let stamp = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let cand = |k: usize| serde_json::json!([OFFERS[k], "email", 0, null, null, null, mu[k]]);
        let record = serde_json::json!({"format": 2, "decision_id": id, "customer_id": customer,
            "at": stamp(at), "model_version": "random", "catalog_version": "test", "degraded": false,
            "policy": {"kind": "random"},
            "request": {"touchpoint": null, "channels": ["email"], "placement": null, "limit": 1, "context": {}},
            "features": {"segment": null, "value": null},
            "candidates": (0..4).map(cand).collect::<Vec<_>>(), "actions": [cand(a)]});
        writeln!(log, "{record}").unwrap();
        if rng.random_bool(TRUTH[x][a]) {
            let e = serde_json::json!({"event_id": format!("e-{i}"), "customer_id": customer,
                "type": "response", "at": stamp(at + 3600), "channel": "email",
                "offer_id": OFFERS[a], "outcome": "clicked", "decision_id": id});
            writeln!(events, "{e}").unwrap();
        }
        let t = target(x);
        let probabilities: Vec<_> = (0..4)
            .map(|k| serde_json::json!([OFFERS[k], "email", t[k]]))
            .collect();
        writeln!(
            tgt,
            "{}",
            serde_json::json!({"decision_id": id, "probabilities": probabilities})
        )
        .unwrap();
    }
}

#[tokio::test]
async fn intervals_cover_the_true_value_at_their_nominal_rate() {
    // Kinds are equally likely: the target's value is the mean over them.
    let truth: f64 = (0..3)
        .map(|x| (0..4).map(|a| target(x)[a] * TRUTH[x][a]).sum::<f64>())
        .sum::<f64>()
        / 3.0;
    let seeds = 200;
    let mut covered = [0usize; 3];
    let mut mean = [0.0f64; 3];
    for seed in 0..seeds {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), seed, 2_000);
        let e = evaluate_files(
            &dir.path().join("log.jsonl"),
            &dir.path().join("events.jsonl"),
            Target::Policy(&dir.path().join("target.jsonl")),
            72,
            &indicatif::ProgressBar::hidden(),
        )
        .await
        .unwrap();
        assert_eq!(e.decisions, 2_000);
        for (k, est) in [e.estimates.ips, e.estimates.snips, e.estimates.dr]
            .iter()
            .enumerate()
        {
            covered[k] += usize::from(est.covers(truth));
            mean[k] += est.value / seeds as f64;
        }
    }
    for (k, name) in ["ips", "snips", "dr"].iter().enumerate() {
        let rate = covered[k] as f64 / seeds as f64;
        // 200 runs at 95%: a binomial standard deviation of 1.5 points.
        assert!(
            (0.9..=0.99).contains(&rate),
            "{name}: covered {rate} (mean {:.4}, truth {truth:.4})",
            mean[k]
        );
        // Unbiased: the mean of 200 estimates is within a few of their standard errors.
        assert!(
            (mean[k] - truth).abs() < 0.005,
            "{name}: mean {} vs {truth}",
            mean[k]
        );
    }
}

/// A model set as the target: the decision service decides each logged request again on the
/// events replayed to its time. On the uniform logging policy of a simulated history, the
/// importance weights then average to one (the target chooses among the logged candidates:
/// IPS and self-normalised IPS agree), and the estimate is the same run after run.
#[tokio::test]
async fn a_model_set_is_evaluated_on_the_events_replayed_to_each_decision() {
    let dir = tempfile::tempdir().unwrap();
    let settings = {
        let mut s = crate::helpers::test_settings(None);
        s.fill_default_paths();
        s
    };
    let catalog = touchpoint::decision::catalog::Catalog::load(&settings.catalog.path).unwrap();
    let opts = touchpoint::training::simulate::SimulationOptions {
        customers: 400,
        days: 120,
        seed: 7,
    };
    touchpoint::training::simulate::simulate(
        dir.path(),
        &catalog,
        &opts,
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap();
    let run = || async {
        evaluate_files(
            &dir.path().join("decisions.jsonl"),
            &dir.path().join("events.jsonl"),
            Target::Models {
                dir: &settings.models.dir,
                settings: &settings,
            },
            72,
            &indicatif::ProgressBar::hidden(),
        )
        .await
        .unwrap()
    };
    let e = run().await;
    assert!(e.decisions > 2_000, "{e:?}");
    let (ips, snips) = (e.estimates.ips, e.estimates.snips);
    // IPS / SNIPS is the mean weight.
    let mean_weight = ips.value / snips.value;
    assert!(
        (0.9..1.1).contains(&mean_weight),
        "mean weight {mean_weight}: {e:?}"
    );
    assert!(e.effective_sample_size > 50.0 && e.effective_sample_size < e.decisions as f64);
    assert!(e.agreement > 0.0 && e.agreement < 1.0);
    assert_eq!(run().await, e, "the replay decides the same way every time");
}
