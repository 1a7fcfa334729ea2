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
    cfg.service(web::resource("/v1/events").post(post_events));
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

/// The fields every event has, then its own: one struct per event type, so the document
/// says exactly which fields each type takes (any other is refused).
macro_rules! event_doc {
    ($(#[$doc:meta])* $name:ident, $kind:ident, $kind_name:literal, { $($fields:tt)* }) => {
        $(#[$doc])*
        #[derive(Debug, Serialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)] // only describes the body for the OpenAPI document
        pub struct $name {
            /// Unique per event, 1..128 characters; an id applied within the retry window is
            /// counted once.
            #[schema(min_length = 1, max_length = 128)]
            pub event_id: String,
            #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._:@-]+$")]
            pub customer_id: String,
            #[serde(rename = "type")]
            pub kind: $kind,
            /// RFC 3339, from 1900 to before 2200, and not more than
            /// `ingest.max_clock_skew_secs` (300) ahead of the server's clock.
            #[schema(value_type = String, format = DateTime)]
            pub at: String,
            $($fields)*
        }

        #[derive(Debug, Serialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        #[allow(dead_code)]
        pub enum $kind {
            #[serde(rename = $kind_name)]
            $kind,
        }
    };
}

event_doc!(
    /// A transaction; a free order is a purchase of 0.
    PurchaseEvent, Purchase, "purchase", {
        #[schema(nullable = false)]
        pub channel: Option<crate::profile::Channel>,
        #[schema(nullable = false, min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._:@-]+$")]
        pub offer_id: Option<String>,
        #[schema(nullable = false, min_length = 1, max_length = 128)]
        pub decision_id: Option<String>,
        /// Money spent, 0..=1e9, in the catalog's currency.
        #[schema(minimum = 0.0, maximum = 1e9)]
        pub amount: f64,
    }
);
event_doc!(
    /// The company reached the customer on `channel`.
    ContactEvent, Contact, "contact", {
        pub channel: crate::profile::Channel,
        #[schema(nullable = false, min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._:@-]+$")]
        pub offer_id: Option<String>,
        #[schema(nullable = false, min_length = 1, max_length = 128)]
        pub decision_id: Option<String>,
    }
);
event_doc!(
    /// The customer's answer to a contact or an offer: it names the `offer_id` or the
    /// `decision_id` it answers (or both).
    ResponseEvent, Response, "response", {
        #[schema(nullable = false)]
        pub channel: Option<crate::profile::Channel>,
        #[schema(nullable = false, min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._:@-]+$")]
        pub offer_id: Option<String>,
        #[schema(nullable = false, min_length = 1, max_length = 128)]
        pub decision_id: Option<String>,
        pub outcome: crate::profile::Outcome,
    }
);
event_doc!(
    /// Any other touch: a visit, a call, a complaint, an `impression` or `click` of a
    /// decision's offer.
    InteractionEvent, Interaction, "interaction", {
        #[schema(nullable = false)]
        pub channel: Option<crate::profile::Channel>,
        #[schema(nullable = false, min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._:@-]+$")]
        pub offer_id: Option<String>,
        #[schema(nullable = false, min_length = 1, max_length = 128)]
        pub decision_id: Option<String>,
        /// Which kind of touch, 1..64 characters.
        #[schema(nullable = false, min_length = 1, max_length = 64)]
        pub name: Option<String>,
    }
);
event_doc!(
    /// Permission for a channel granted or withdrawn; `channel` is where it was given.
    ConsentEvent, Consent, "consent", {
        #[schema(nullable = false)]
        pub channel: Option<crate::profile::Channel>,
        pub consent: ConsentIn,
    }
);
event_doc!(
    /// Profile attributes set (a string of at most 256 characters, a number within ±1e15 or a
    /// boolean) or removed (`null`); 1..32 per event, names of `[A-Za-z0-9_-]`, 1..64
    /// characters; `timezone` must be an IANA zone.
    AttributesEvent, Attributes, "attributes", {
        #[schema(nullable = false)]
        pub channel: Option<crate::profile::Channel>,
        #[schema(value_type = Object)]
        pub attributes: serde_json::Map<String, serde_json::Value>,
    }
);

/// One interaction event (API.md section 2), by its `type`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
#[schema(example = json!({"event_id": "e-0001", "customer_id": "c-42", "type": "purchase", "at": "2026-11-22T10:15:00Z", "channel": "web", "amount": 42.5}))]
pub enum EventIn {
    Purchase(PurchaseEvent),
    Contact(ContactEvent),
    Response(ResponseEvent),
    Interaction(InteractionEvent),
    Consent(ConsentEvent),
    Attributes(AttributesEvent),
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentIn {
    pub channel: crate::profile::Channel,
    pub granted: bool,
}

/// A batch of 1..1,000 events.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    #[schema(min_items = 1, max_items = 1000)]
    pub events: Vec<EventIn>,
}

/// One event, or a batch.
#[derive(ToSchema)]
#[serde(untagged)]
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
    request_body(content = EventsBody, content_type = "application/json", description = "One event, or {\"events\": [...]} with up to 1,000"),
    responses(
        (status = 202, description = "Every accepted event is applied to the store", body = EventsAccepted),
        (status = 400, description = "A field is missing, unknown or wrong; nothing was applied", body = super::error::ErrorBody),
        (status = 413, description = "Body over `server.max_body_bytes`", body = super::error::ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = super::error::ErrorBody),
        (status = 429, description = "A customer took more events within the retry window than their de-duplication memory holds (`profile.dedup_ids`); none of theirs was applied", body = super::error::ErrorBody),
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
    let now = state.clock.now();
    let events = event::parse_body_received(&body, now, state.ingest.max_ahead()).inspect_err(
        |invalid| {
            metrics::counter!(m::EVENTS, "result" => "rejected").increment(rejected_count(invalid));
        },
    )?;
    debug_assert!(events.len() <= MAX_BATCH);
    if super::web_caller(&req).is_some() {
        // A browser's key: interactions and responses of its own customer only.
        let customer = super::web_identity(&req, &state)?;
        for (i, e) in events.iter().enumerate() {
            let field = |name: &str| {
                if events.len() == 1 && !body.starts_with(b"{\"events\"") {
                    name.to_owned()
                } else {
                    format!("events[{i}].{name}")
                }
            };
            if e.customer_id.as_str() != customer {
                return Err(ApiError::Forbidden {
                    code: "identity_mismatch",
                    message: format!(
                        "{}: a web key may only send events of the customer its identity names",
                        field("customer_id")
                    ),
                    field: Some("customer_id"),
                });
            }
            if !matches!(
                e.kind,
                event::EventKind::Interaction { .. } | event::EventKind::Response { .. }
            ) {
                return Err(ApiError::Forbidden {
                    code: "web_event_type",
                    message: format!(
                        "{}: a web key may only send interaction and response events",
                        field("type")
                    ),
                    field: Some("type"),
                });
            }
        }
    }
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
