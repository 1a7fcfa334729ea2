//! Metric names, labels and the Prometheus recorder, in one place so that names stay
//! consistent and every label comes from a closed set (route patterns, channels, fixed words):
//! no label can take a customer id or free text, so cardinality cannot explode.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_DURATION: &str = "touchpoint_http_request_duration_seconds";
pub const DECISION_DURATION: &str = "touchpoint_decision_duration_seconds";
pub const DECISIONS: &str = "touchpoint_decisions_total";
pub const EVENTS: &str = "touchpoint_events_total";
pub const STORE_DURATION: &str = "touchpoint_store_operation_duration_seconds";
pub const STORE_ERRORS: &str = "touchpoint_store_errors_total";
pub const MODEL_RELOADS: &str = "touchpoint_model_reloads_total";
pub const CATALOG_RELOADS: &str = "touchpoint_catalog_reloads_total";
pub const DECISION_LOG_DROPPED: &str = "touchpoint_decision_log_dropped_total";
/// Online learning, per catalog offer (labels: the catalog's offer ids, a fixed set).
pub const LEARNING_ANSWERS: &str = "touchpoint_learning_answers";
pub const LEARNING_CORRECTION: &str = "touchpoint_learning_mean_correction";
pub const LEARNING_OUTCOMES: &str = "touchpoint_learning_outcomes";
/// Decisions by model arm (champion, challenger).
pub const ARM_DECISIONS: &str = "touchpoint_arm_decisions_total";
/// Joined outcomes by model arm and result (positive, negative), and the margin of the
/// positive ones (whole currency units), as the outcome log has them: every replica reads the
/// whole log, so take one replica's figure (or the max), not the sum.
pub const ARM_OUTCOMES: &str = "touchpoint_arm_outcomes_total";
pub const ARM_VALUE: &str = "touchpoint_arm_value_total";
/// Decisions made again because another decision recorded plans for the customer between
/// this one's read and its write (replicas deciding for one customer at once).
pub const DECISION_REDECIDED: &str = "touchpoint_decisions_redecided_total";
/// NATS JetStream ingest: events by result (applied, duplicate, erased), messages sent to
/// the dead-letter stream, the consumer's pending messages, and batches applied.
pub const NATS_EVENTS: &str = "touchpoint_ingest_nats_events_total";
pub const NATS_DEAD_LETTERS: &str = "touchpoint_ingest_nats_dead_letters_total";
pub const NATS_PENDING: &str = "touchpoint_ingest_nats_pending_messages";
pub const NATS_BATCHES: &str = "touchpoint_ingest_nats_batches_total";
/// The result labels of [`NATS_EVENTS`].
pub const NATS_RESULTS: [&str; 3] = ["applied", "duplicate", "erased"];
/// Due outbound actions by result: published to the feed, or dropped (plan refused,
/// erased or lapsed).
pub const OUTBOUND: &str = "touchpoint_outbound_actions_total";
/// 1, labelled with the build's version and the model set in service.
pub const BUILD_INFO: &str = "touchpoint_build_info";

/// Every counter with its fixed label sets, at zero, so that a scrape (and an alert) reads 0
/// from the start rather than "no data". `store` is the store backend's name.
pub fn zero(store: &'static str) {
    for outcome in ["actions", "no_action", "degraded"] {
        metrics::counter!(DECISIONS, "outcome" => outcome).increment(0);
    }
    for result in ["accepted", "duplicate", "rejected", "erased"] {
        metrics::counter!(EVENTS, "result" => result).increment(0);
    }
    for op in crate::profile::store::OPERATIONS {
        for kind in crate::profile::store::ERROR_KINDS {
            metrics::counter!(STORE_ERRORS, "store" => store, "op" => op, "kind" => kind)
                .increment(0);
        }
    }
    for metric in [MODEL_RELOADS, CATALOG_RELOADS] {
        for result in ["ok", "error"] {
            metrics::counter!(metric, "result" => result).increment(0);
        }
    }
    metrics::counter!(DECISION_LOG_DROPPED).increment(0);
    metrics::counter!(DECISION_REDECIDED).increment(0);
    for arm in crate::decision::answer::ModelArm::ALL {
        metrics::counter!(ARM_DECISIONS, "arm" => arm.as_str()).increment(0);
        metrics::counter!(ARM_VALUE, "arm" => arm.as_str()).increment(0);
        for result in ["positive", "negative"] {
            metrics::counter!(ARM_OUTCOMES, "arm" => arm.as_str(), "result" => result).increment(0);
        }
    }
}

/// Says which build serves and with which model set (the previous model set's series goes
/// to 0 when another takes over).
pub fn build_info(previous_model: Option<&str>, model: &str) {
    let version = env!("CARGO_PKG_VERSION");
    if let Some(old) = previous_model.filter(|o| *o != model) {
        metrics::gauge!(BUILD_INFO, "version" => version, "model_version" => old.to_owned())
            .set(0.0);
    }
    metrics::gauge!(BUILD_INFO, "version" => version, "model_version" => model.to_owned()).set(1.0);
}

/// Latency buckets in seconds: fine below a millisecond, where decisions live, and coarse up
/// to the slowest store timeouts.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.000_75, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder; the first call installs it. Tests start many services in one
/// process, and they share it.
pub fn recorder() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("latency buckets are not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a host application); then our
            // metrics are not collected but rendering still works.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by route and status"
    );
    describe_histogram!(
        DECISION_DURATION,
        Unit::Seconds,
        "Decision latency, from request parsed to answer built"
    );
    describe_counter!(DECISIONS, "Decisions made, by outcome");
    describe_counter!(
        EVENTS,
        "Events received, by result: accepted, duplicate or rejected"
    );
    describe_histogram!(
        STORE_DURATION,
        Unit::Seconds,
        "Profile store operation latency"
    );
    describe_counter!(STORE_ERRORS, "Profile store operation errors, by kind");
    describe_counter!(
        ARM_OUTCOMES,
        "Joined outcomes by model arm and result (the whole outcome log: one replica's figure)"
    );
    describe_counter!(
        ARM_VALUE,
        "Margin of the positive joined outcomes by model arm, whole currency units"
    );
    metrics::describe_gauge!(
        BUILD_INFO,
        "1 for the build version and the model set in service"
    );
    describe_counter!(MODEL_RELOADS, "Model set reloads, by result");
    describe_counter!(CATALOG_RELOADS, "Catalog reloads, by result");
    metrics::describe_gauge!(
        LEARNING_ANSWERS,
        "Joined answers the online learner has learned from since the model set went into service, by offer"
    );
    metrics::describe_gauge!(
        LEARNING_CORRECTION,
        "Posterior mean of the online correction's intercept (logit units), by offer"
    );
    metrics::describe_gauge!(
        LEARNING_OUTCOMES,
        "Outcomes read from the store's outcome log, by result: learned, skipped, or pending (their response window not passed yet)"
    );
    describe_counter!(
        ARM_DECISIONS,
        "Decisions by model arm: champion or challenger"
    );
    describe_counter!(
        DECISION_REDECIDED,
        "Decisions made again because another decision planned for the customer at the same time"
    );
    describe_counter!(
        NATS_EVENTS,
        "Events consumed from NATS JetStream, by result: applied, duplicate or erased"
    );
    describe_counter!(
        NATS_DEAD_LETTERS,
        "NATS messages sent to the dead-letter stream (they did not validate, or their customer cannot take them)"
    );
    metrics::describe_gauge!(
        NATS_PENDING,
        "Messages of the JetStream stream not yet delivered to the durable consumer"
    );
    describe_counter!(
        NATS_BATCHES,
        "Batches of JetStream messages applied to the store"
    );
    describe_counter!(
        DECISION_LOG_DROPPED,
        "Decision log records dropped because the writer fell behind"
    );
}

/// Histograms keep a rolling window that must be drained now and then; without it memory
/// grows with every observation.
pub fn spawn_upkeep(handle: PrometheusHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    })
}
