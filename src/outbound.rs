//! The outbound feed (`[outbound]`): when a planned outbound action's `send_at` comes, it is
//! handed to the sender, once, whichever replica does it.
//!
//! Recording a decision's planned actions also files them in the store's outbound index by
//! send time (in the same round trip). Every replica's publisher polls the index every
//! `poll_ms`: it claims the due actions for `lease_secs` (an atomic step per shard, so no two
//! replicas claim one action), checks each against the customer's recorded plans (an action
//! whose plan was refused, erased or has lapsed is dropped), and publishes the rest:
//!
//! - `feed = "nats"`: to the JetStream subject `subject` (stream `stream`, created when
//!   missing), each with `Nats-Msg-Id` set to the action's id (`decision:offer:channel`):
//!   JetStream drops a second copy within its duplicate window (two minutes by default,
//!   longer than the lease), so an action republished after a publisher died between
//!   publishing and releasing it is still delivered once.
//! - `feed = "redis"`: to the store's outbound stream (`{prefix}:outbound:stream`, on a
//!   cluster one per shard, `...:{s0}` to `...:{s15}`), appended and unclaimed in one step,
//!   so exactly once.
//!
//! The message (JSON) holds what a sender needs: `customer_id`, `decision_id`, `offer_id`,
//! `channel`, `send_at` and `expires_at` (the end of the plan's grace: do not send later).
//! The sender reports the contact as a `contact` event with the `decision_id`, which closes
//! the plan as before.

use std::time::Duration;

use async_nats::jetstream;
use serde::{Deserialize, Serialize};

use crate::profile::store::DueAction;
use crate::profile::{Profiles, StoreError};
use crate::telemetry::metrics as m;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Feed {
    Off,
    Nats,
    Redis,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundSettings {
    /// Where due actions go: `off`, `nats` or `redis` (the store's stream; Redis only).
    pub feed: Feed,
    /// For `nats`: the server, the stream (created when missing) and its subject.
    pub nats_url: String,
    pub stream: String,
    pub subject: String,
    /// How often each replica looks for due actions.
    pub poll_ms: u64,
    /// Actions taken per look.
    pub batch: usize,
    /// A claimed action not handed over within this long is claimed again.
    pub lease_secs: u64,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        Self {
            feed: Feed::Off,
            nats_url: String::new(),
            stream: "TOUCHPOINT_OUTBOUND".into(),
            subject: "touchpoint.outbound".into(),
            poll_ms: 500,
            batch: 500,
            lease_secs: 30,
        }
    }
}

impl OutboundSettings {
    pub fn check(&self, uses_redis: bool) -> Result<(), String> {
        match self.feed {
            Feed::Off => Ok(()),
            Feed::Nats if self.nats_url.trim().is_empty() => {
                Err("outbound.feed = \"nats\" needs outbound.nats_url".into())
            }
            Feed::Redis if !uses_redis => Err(
                "outbound.feed = \"redis\" needs the Redis store (store.redis_url or store.redis_cluster_nodes)"
                    .into(),
            ),
            Feed::Nats | Feed::Redis if self.batch == 0 || self.poll_ms == 0 || self.lease_secs == 0 => {
                Err("outbound.batch, poll_ms and lease_secs must be positive".into())
            }
            Feed::Nats | Feed::Redis => Ok(()),
        }
    }
}

/// Where the publisher hands actions to.
enum Sink {
    Nats(Box<jetstream::Context>),
    Redis,
}

/// Publishes due actions until the service stops, starting again after any failure.
pub async fn publish(settings: OutboundSettings, profiles: Profiles, clock: crate::time::Clock) {
    for result in ["published", "dropped"] {
        metrics::counter!(m::OUTBOUND, "result" => result).increment(0);
    }
    let mut pause = Duration::from_millis(100);
    loop {
        match run(&settings, &profiles, &clock).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "outbound feed stopped; starting again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

use crate::nats::Error;

async fn run(
    settings: &OutboundSettings,
    profiles: &Profiles,
    clock: &crate::time::Clock,
) -> Result<(), Error> {
    let sink = match settings.feed {
        Feed::Off => return Ok(()),
        Feed::Redis => Sink::Redis,
        Feed::Nats => {
            let js = crate::nats::connect(&settings.nats_url, "touchpoint-outbound").await?;
            // A second copy of an action (its publisher died before releasing it, and the
            // lease lapsed) is dropped by JetStream within the duplicate window: made, and
            // checked, to outlast the lease several times over.
            let window = Duration::from_secs((settings.lease_secs * 4).max(120));
            let mut stream = js
                .get_or_create_stream(jetstream::stream::Config {
                    name: settings.stream.clone(),
                    subjects: vec![settings.subject.clone()],
                    duplicate_window: window,
                    ..Default::default()
                })
                .await?;
            let kept = stream.info().await?.config.duplicate_window;
            if kept < Duration::from_secs(settings.lease_secs * 2) {
                tracing::warn!(
                    stream = %settings.stream,
                    duplicate_window = ?kept,
                    lease_secs = settings.lease_secs,
                    "the outbound stream's duplicate window is shorter than two leases: an action republished after a lapsed lease may be delivered twice"
                );
            }
            Sink::Nats(Box::new(js))
        }
    };
    let lease = settings.lease_secs as i64;
    let mut tick = tokio::time::interval(Duration::from_millis(settings.poll_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = clock.now();
        let due = profiles.claim_due(now, settings.batch, lease).await?;
        if due.is_empty() {
            continue;
        }
        let claimed_at = std::time::Instant::now();
        let (send, drop) = still_planned(profiles, due, now).await?;
        if claimed_at.elapsed() >= Duration::from_secs(settings.lease_secs) {
            // The lease lapsed while checking: another replica may have them by now.
            tracing::warn!(
                "outbound: checking the due actions outlasted their lease; left to the next claim"
            );
            continue;
        }
        let published = match &sink {
            Sink::Redis => profiles.append_outbound(&send).await?,
            Sink::Nats(js) => {
                let mut acks = Vec::with_capacity(send.len());
                for a in &send {
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert(async_nats::header::NATS_MESSAGE_ID, a.id().as_str());
                    acks.push(
                        js.publish_with_headers(
                            settings.subject.clone(),
                            headers,
                            a.message().into(),
                        )
                        .await?,
                    );
                }
                let mut published = 0;
                for ack in acks {
                    if !ack.await?.duplicate {
                        published += 1;
                    }
                }
                profiles.release(&send).await?;
                published
            }
        };
        profiles.release(&drop).await?;
        metrics::counter!(m::OUTBOUND, "result" => "published").increment(published as u64);
        metrics::counter!(m::OUTBOUND, "result" => "dropped").increment(drop.len() as u64);
    }
}

/// How long after its decision an action not (yet) found among its customer's plans is
/// given before it is dropped: on a cluster the index entry and the plan are written to two
/// shards at once, and the entry may be seen first.
const SETTLING: i64 = 10;

/// The claimed actions still planned for their customers (and not lapsed), and those to
/// drop; an action too fresh to judge is in neither and comes back when its lease lapses.
async fn still_planned(
    profiles: &Profiles,
    due: Vec<DueAction>,
    now: i64,
) -> Result<(Vec<DueAction>, Vec<DueAction>), StoreError> {
    let mut send = Vec::with_capacity(due.len());
    let mut drop = Vec::new();
    for a in due {
        let planned = profiles.planned(&a.customer_id).await?;
        let recorded = planned.iter().any(|p| {
            p.decision_id == a.action.decision_id
                && p.offer_id == a.action.offer_id
                && p.channel == a.action.channel
        });
        if recorded && a.action.until > now {
            send.push(a);
        } else if recorded || now - a.action.made_at >= SETTLING {
            drop.push(a);
        }
    }
    Ok((send, drop))
}
