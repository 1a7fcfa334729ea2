//! `POST /v1/events`: one event or a batch of up to 1,000, applied to the profile store
//! before the answer. `202` means every accepted event is in the store.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState, read_json_body};
use crate::profile::event::{self, MAX_BATCH};
use crate::profile::store::Profiles;
use crate::telemetry::metrics as m;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/events", web::post().to(post_events));
}

/// What the store did with the events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsAccepted {
    /// Events applied now.
    pub accepted: usize,
    /// Events whose `event_id` had already been applied; they changed nothing.
    pub duplicates: usize,
    /// Events of a customer erased within the retry window, dated before the erasure: not
    /// applied, so that replaying old events does not bring an erased customer back.
    pub erased: usize,
}

/// One interaction event (API.md section 2). Required for all: `event_id`, `customer_id`,
/// `type`, `at`. By type: `purchase` needs `amount` (> 0); `contact` needs `channel`;
/// `response` needs `outcome` and `offer_id` or `decision_id`; `consent` needs `consent`;
/// `attributes` needs `attributes`; `interaction` may carry `name`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"event_id": "e-0001", "customer_id": "c-42", "type": "purchase", "at": "2026-11-22T10:15:00Z", "channel": "web", "amount": 42.5}))]
pub struct EventIn {
    /// Unique per event, 1..128 characters; a repeated id is counted once.
    pub event_id: String,
    /// 1..128 characters of `[A-Za-z0-9._:@-]`.
    pub customer_id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// RFC 3339.
    pub at: String,
    /// Where it happened.
    pub channel: Option<crate::profile::Channel>,
    pub offer_id: Option<String>,
    /// The decision this event answers.
    pub decision_id: Option<String>,
    /// Purchase: money spent, > 0.
    pub amount: Option<f64>,
    /// Response: the customer's answer.
    pub outcome: Option<crate::profile::Outcome>,
    /// Interaction: which kind (visit, call, complaint, review, referral, ...), 1..64 chars.
    pub name: Option<String>,
    /// Consent: the channel and whether permission is granted or withdrawn.
    pub consent: Option<ConsentIn>,
    /// Attributes: values to set (string, number, bool) or remove (null); `timezone` must be
    /// an IANA zone. At most 32 per event, names of [A-Za-z0-9_-].
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Purchase,
    Contact,
    Response,
    Interaction,
    Consent,
    Attributes,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentIn {
    pub channel: crate::profile::Channel,
    pub granted: bool,
}

/// A batch of 1..1,000 events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventBatch {
    pub events: Vec<EventIn>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // only describes the body for the OpenAPI document
pub enum EventsBody {
    One(EventIn),
    Batch(EventBatch),
}

/// Takes events into the profile store.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "events",
    request_body(content = EventsBody, description = "One event, or {\"events\": [...]} with up to 1,000"),
    responses(
        (status = 202, description = "Every accepted event is applied to the store", body = EventsAccepted),
        (status = 400, description = "A field is missing or wrong; nothing was applied", body = super::error::ErrorBody),
        (status = 413, description = "Body over the size limit", body = super::error::ErrorBody),
        (status = 503, description = "The store cannot take the events now; retry (duplicates are recognised)", body = super::error::ErrorBody),
    )
)]
pub async fn post_events(
    req: HttpRequest,
    state: web::Data<AppState>,
    profiles: web::Data<Profiles>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_json_body(&req, payload, state.max_body_bytes).await?;
    let now = chrono::Utc::now().timestamp();
    let events = event::parse_body_received(&body, now, state.ingest.max_ahead()).inspect_err(
        |invalid| {
            metrics::counter!(m::EVENTS, "result" => "rejected").increment(rejected_count(invalid));
        },
    )?;
    debug_assert!(events.len() <= MAX_BATCH);
    let outcome = profiles.apply(&events, now).await?;
    metrics::counter!(m::EVENTS, "result" => "accepted").increment(outcome.accepted as u64);
    metrics::counter!(m::EVENTS, "result" => "duplicate").increment(outcome.duplicates as u64);
    metrics::counter!(m::EVENTS, "result" => "erased").increment(outcome.erased as u64);
    Ok(HttpResponse::Accepted().json(EventsAccepted {
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
        erased: outcome.erased,
    }))
}

/// Events refused: those named in errors (`events[i]...`), at least one.
fn rejected_count(invalid: &crate::validation::Invalid) -> u64 {
    let mut indices: Vec<&str> = invalid
        .0
        .iter()
        .filter_map(|e| e.field.as_deref())
        .filter_map(|f| f.strip_prefix("events[").and_then(|r| r.split(']').next()))
        .collect();
    indices.sort_unstable();
    indices.dedup();
    indices.len().max(1) as u64
}
