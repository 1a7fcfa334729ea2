//! Events from NATS JetStream (`[ingest.nats]`): `serve` consumes a stream through a
//! durable pull consumer and applies its messages with the same validation and the same
//! store call as `POST /v1/events`.
//!
//! - The stream (subject `subject`) and the consumer (`durable`) are created when missing;
//!   an existing one is used as it is.
//! - A message holds what a `POST /v1/events` body holds: one event, or `{"events": [...]}`.
//! - Messages are taken up to `batch` at a time; their events are applied in store batches of
//!   at most 1,000 (the HTTP limit). A message is acknowledged only once the store has
//!   applied its events: a service killed in between leaves it unacknowledged, JetStream
//!   delivers it again after `ack_wait_secs`, and the events are recognised by their
//!   `event_id` (the store's de-duplication), so each is applied exactly once.
//! - A message that does not validate is not retried forever: it is published, unchanged,
//!   to the dead-letter stream (`dead_letter_subject`, created when missing) with the reason
//!   in its `Touchpoint-Error` header and its place in the `Touchpoint-Stream-Sequence`
//!   header, and only then acknowledged. The stream goes on behind it.
//! - While the store cannot apply a batch, the batch is retried (backing off up to a second,
//!   telling JetStream the messages are in progress so that they are not delivered to
//!   another replica meanwhile); a customer whose stored profile cannot be read, or whose
//!   de-duplication memory is full, cannot be applied later either: their messages go to the
//!   dead-letter stream. While NATS cannot be reached, the consumer reconnects.
//!
//! `/metrics`: `touchpoint_ingest_nats_events_total{result}` (applied, duplicate, erased),
//! `touchpoint_ingest_nats_dead_letters_total`, `touchpoint_ingest_nats_batches_total` and
//! `touchpoint_ingest_nats_pending_messages` (the consumer's lag: messages not yet delivered).

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::profile::event::{self, Event, MAX_BATCH};
use crate::profile::{Profiles, StoreError};
use crate::telemetry::metrics as m;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NatsIngestSettings {
    /// The NATS server (`nats://host:4222`); empty: no JetStream ingest.
    pub url: String,
    /// The stream to consume.
    pub stream: String,
    /// The subject the stream captures (created with it when missing).
    pub subject: String,
    /// The durable consumer's name: replicas sharing it share the work.
    pub durable: String,
    /// Where messages that do not validate go, with the reason.
    pub dead_letter_subject: String,
    /// Messages taken per fetch.
    pub batch: usize,
    /// A message delivered and not acknowledged within this long is delivered again.
    pub ack_wait_secs: u64,
}

impl Default for NatsIngestSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            stream: "TOUCHPOINT_EVENTS".into(),
            subject: "touchpoint.events".into(),
            durable: "touchpoint".into(),
            dead_letter_subject: "touchpoint.events.dead".into(),
            batch: 500,
            ack_wait_secs: 30,
        }
    }
}

impl NatsIngestSettings {
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }

    pub fn check(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        let names = [
            ("ingest.nats.stream", &self.stream),
            ("ingest.nats.subject", &self.subject),
            ("ingest.nats.durable", &self.durable),
            ("ingest.nats.dead_letter_subject", &self.dead_letter_subject),
        ];
        for (name, value) in names {
            if value.trim().is_empty() || value.contains(char::is_whitespace) {
                return Err(format!(
                    "{name} must be a name without spaces, not {value:?}"
                ));
            }
        }
        if self.dead_letter_subject == self.subject {
            return Err(
                "ingest.nats.dead_letter_subject must differ from ingest.nats.subject".into(),
            );
        }
        if self.batch == 0 || self.ack_wait_secs == 0 {
            return Err("ingest.nats.batch and ack_wait_secs must be positive".into());
        }
        Ok(())
    }

    /// The dead-letter stream's name.
    fn dead_letter_stream(&self) -> String {
        format!("{}_DEAD", self.stream)
    }
}

/// Consumes the stream until the service stops, reconnecting after any failure.
pub async fn consume(
    settings: NatsIngestSettings,
    profiles: Profiles,
    max_ahead: i64,
    clock: crate::time::Clock,
) {
    for result in m::NATS_RESULTS {
        metrics::counter!(m::NATS_EVENTS, "result" => result).increment(0);
    }
    metrics::counter!(m::NATS_DEAD_LETTERS).increment(0);
    metrics::counter!(m::NATS_BATCHES).increment(0);
    let mut pause = Duration::from_millis(100);
    loop {
        match run(&settings, &profiles, max_ahead, &clock).await {
            Ok(()) => pause = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(error = %e, stream = %settings.stream, "NATS ingest stopped; starting again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// A JetStream context on the server at `url`, the connection named `name` (as the server
/// lists its clients), within 2 s.
pub(crate) async fn connect(url: &str, name: &str) -> Result<jetstream::Context, Error> {
    let client = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(2))
        .connect(url.trim())
        .await?;
    Ok(jetstream::new(client))
}

async fn run(
    settings: &NatsIngestSettings,
    profiles: &Profiles,
    max_ahead: i64,
    clock: &crate::time::Clock,
) -> Result<(), Error> {
    let js = connect(&settings.url, "touchpoint").await?;
    let stream = js
        .get_or_create_stream(stream::Config {
            name: settings.stream.clone(),
            subjects: vec![settings.subject.clone()],
            ..Default::default()
        })
        .await?;
    js.get_or_create_stream(stream::Config {
        name: settings.dead_letter_stream(),
        subjects: vec![settings.dead_letter_subject.clone()],
        ..Default::default()
    })
    .await?;
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            &settings.durable,
            pull::Config {
                durable_name: Some(settings.durable.clone()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(settings.ack_wait_secs),
                max_ack_pending: (settings.batch * 4) as i64,
                filter_subject: settings.subject.clone(),
                ..Default::default()
            },
        )
        .await?;
    tracing::info!(stream = %settings.stream, durable = %settings.durable, "consuming events from NATS JetStream");
    let mut last_lag = std::time::Instant::now() - Duration::from_secs(10);
    loop {
        let mut fetched = consumer
            .fetch()
            .max_messages(settings.batch)
            .expires(Duration::from_secs(1))
            .messages()
            .await?;
        let mut messages = Vec::new();
        while let Some(message) = fetched.next().await {
            messages.push(message?);
        }
        if let Some(last) = messages.last() {
            apply(&js, settings, profiles, max_ahead, clock.now(), &messages).await?;
            metrics::counter!(m::NATS_BATCHES).increment(1);
            // The lag as of the last message delivered (what JetStream says in its reply).
            if let Ok(info) = last.info() {
                metrics::gauge!(m::NATS_PENDING).set(info.pending as f64);
            }
        }
        if messages.is_empty() && last_lag.elapsed() > Duration::from_secs(1) {
            let info = consumer.info().await?;
            metrics::gauge!(m::NATS_PENDING).set(info.num_pending as f64);
            last_lag = std::time::Instant::now();
        }
    }
}

/// Applies the messages' events and acknowledges the messages; those that do not validate
/// go to the dead-letter stream first.
async fn apply(
    js: &jetstream::Context,
    settings: &NatsIngestSettings,
    profiles: &Profiles,
    max_ahead: i64,
    now: i64,
    messages: &[jetstream::Message],
) -> Result<(), Error> {
    // Each event with the message it came in.
    let mut events: Vec<(Event, usize)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        match event::parse_body_received(&message.payload, now, max_ahead) {
            Ok(parsed) => events.extend(parsed.into_iter().map(|e| (e, i))),
            Err(invalid) => {
                let reason: Vec<String> = invalid.0.iter().map(ToString::to_string).collect();
                dead_letter(js, settings, message, &reason.join("; ")).await?;
            }
        }
    }
    for chunk in events.chunks(MAX_BATCH) {
        apply_chunk(js, settings, profiles, messages, chunk.to_vec(), now).await?;
    }
    for message in messages {
        message.ack().await?;
    }
    Ok(())
}

/// Applies one store batch, retrying while the store is unavailable. A customer whose
/// de-duplication memory is full (HTTP's `429`) cannot be applied later either: the
/// messages with their events go to the dead-letter stream, the other events are applied.
async fn apply_chunk(
    js: &jetstream::Context,
    settings: &NatsIngestSettings,
    profiles: &Profiles,
    messages: &[jetstream::Message],
    mut chunk: Vec<(Event, usize)>,
    now: i64,
) -> Result<(), Error> {
    let mut pause = Duration::from_millis(20);
    loop {
        let events: Vec<Event> = chunk.iter().map(|(e, _)| e.clone()).collect();
        match profiles.apply(&events, now).await {
            Ok(outcome) => {
                let count = |result: &'static str, n: usize| {
                    metrics::counter!(m::NATS_EVENTS, "result" => result).increment(n as u64);
                    metrics::counter!(m::EVENTS, "result" => result_of_events(result))
                        .increment(n as u64);
                };
                count("applied", outcome.accepted);
                count("duplicate", outcome.duplicates);
                count("erased", outcome.erased);
                return Ok(());
            }
            Err(e @ (StoreError::TooManyEvents { .. } | StoreError::Corrupt { .. })) => {
                let customer = match &e {
                    StoreError::TooManyEvents { customer, .. }
                    | StoreError::Corrupt { customer, .. } => customer.clone(),
                    StoreError::Unavailable(_)
                    | StoreError::Timeout(_)
                    | StoreError::Contended(_) => unreachable!("matched above"),
                };
                let reason = e.to_string();
                let mut refused: Vec<usize> = chunk
                    .iter()
                    .filter(|(e, _)| e.customer_id.as_str() == customer)
                    .map(|(_, i)| *i)
                    .collect();
                refused.dedup();
                for i in refused {
                    dead_letter(js, settings, &messages[i], &reason).await?;
                }
                chunk.retain(|(e, _)| e.customer_id.as_str() != customer);
            }
            Err(e) => {
                tracing::warn!(error = %e, events = chunk.len(), "store unavailable: NATS batch retried");
                // Still at it: JetStream restarts their ack wait instead of handing them to
                // another replica.
                let mut held: Vec<usize> = chunk.iter().map(|(_, i)| *i).collect();
                held.dedup();
                for i in held {
                    messages[i].ack_with(jetstream::AckKind::Progress).await?;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// `touchpoint_events_total`'s result for a NATS result.
fn result_of_events(result: &'static str) -> &'static str {
    match result {
        "applied" => "accepted",
        other => other,
    }
}

async fn dead_letter(
    js: &jetstream::Context,
    settings: &NatsIngestSettings,
    message: &jetstream::Message,
    reason: &str,
) -> Result<(), Error> {
    let sequence = message.info().map(|i| i.stream_sequence).ok();
    tracing::warn!(
        reason,
        sequence,
        "a NATS message does not validate: sent to the dead-letter stream"
    );
    publish_dead(js, settings, message.payload.clone(), reason, sequence).await?;
    metrics::counter!(m::EVENTS, "result" => "rejected").increment(1);
    Ok(())
}

/// Publishes to the dead-letter stream and waits for the stream's acknowledgement.
async fn publish_dead(
    js: &jetstream::Context,
    settings: &NatsIngestSettings,
    payload: bytes::Bytes,
    reason: &str,
    sequence: Option<u64>,
) -> Result<(), Error> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Touchpoint-Error", reason);
    if let Some(seq) = sequence {
        headers.insert("Touchpoint-Stream-Sequence", seq.to_string().as_str());
        // A message dead-lettered again after a redelivery is one message there.
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("{}:{seq}", settings.stream).as_str(),
        );
    }
    let ack = js
        .publish_with_headers(settings.dead_letter_subject.clone(), headers, payload)
        .await?
        .await?;
    if !ack.duplicate {
        metrics::counter!(m::NATS_DEAD_LETTERS).increment(1);
    }
    Ok(())
}
