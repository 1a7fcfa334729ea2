//! `POST /v1/decisions`: the next best actions for a customer, now or planned.

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::ToSchema;

use super::{ApiError, AppState, read_json_body};
use crate::decision::Decider;
use crate::decision::answer::Decision;
use crate::decision::request::parse_request;

/// The decision route's path (and pattern).
pub const ROUTE: &str = "/v1/decisions";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(ROUTE).post(post_decision));
}

/// A decision request (API.md section 3). Any other field is refused.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"customer_id": "c-42", "touchpoint": "call_centre", "limit": 3, "explain": true}))]
pub struct DecisionRequestDoc {
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._:@-]+$")]
    pub customer_id: String,
    /// The inbound channel the customer is on now: actions for that channel, now.
    #[schema(nullable = false)]
    pub touchpoint: Option<InboundChannel>,
    /// Outbound channels to plan for: the engine picks the channel and `send_at` of each
    /// action. With neither this nor `touchpoint`, every outbound channel the customer
    /// consented to.
    #[schema(nullable = false, min_items = 1)]
    pub channels: Option<Vec<OutboundChannel>>,
    /// Slot name, e.g. homepage_hero; 1..128 characters.
    #[schema(nullable = false, min_length = 1, max_length = 128)]
    pub placement: Option<String>,
    /// 1..20, default 1.
    #[schema(nullable = false, minimum = 1, maximum = 20)]
    pub limit: Option<u32>,
    /// RFC 3339, from 1900 to before 2200; the decision is made as of this time (default
    /// now).
    #[schema(nullable = false, value_type = Option<String>, format = DateTime)]
    pub at: Option<String>,
    /// Free features: at most 32, names of `[A-Za-z0-9_-]` (1..64 characters), values
    /// strings of at most 256 characters, numbers within ±1e15 or booleans.
    #[schema(nullable = false, value_type = Option<Object>)]
    pub context: Option<serde_json::Map<String, serde_json::Value>>,
    /// Add explanations and the suppressed candidates.
    #[schema(nullable = false)]
    pub explain: Option<bool>,
}

/// A channel where the customer comes to the company.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // only describes the body for the OpenAPI document
pub enum InboundChannel {
    Web,
    App,
    CallCentre,
    Branch,
}

/// A channel where the company goes to the customer.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum OutboundChannel {
    Email,
    Sms,
    Push,
    DirectMail,
}

/// Decides the next best actions. An unknown customer is not an error: the engine decides
/// for a new customer. When the profile store cannot be read within the budget, a fallback
/// ranking decides (inbound only, since consent cannot be checked) and `degraded` is true.
/// Planned outbound marketing actions are recorded so that later decisions count them toward
/// the contact limits until they are reported sent; when that cannot be done, they are left
/// out of the answer and `degraded` is true.
#[utoipa::path(
    post,
    path = "/v1/decisions",
    tag = "decisions",
    request_body(content = DecisionRequestDoc, content_type = "application/json"),
    responses(
        (status = 200, body = Decision),
        (status = 400, description = "A field is missing, unknown or wrong", body = super::error::ErrorBody),
        (status = 413, description = "Body over `server.max_body_bytes`", body = super::error::ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = super::error::ErrorBody),
    )
)]
pub async fn post_decision(
    req: HttpRequest,
    state: web::Data<AppState>,
    decider: web::Data<Decider>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_json_body(&req, payload, state.max_body_bytes).await?;
    let started = Instant::now();
    let request = parse_request(&body)?;
    if super::web_caller(&req).is_some() {
        // A browser's key: its own customer, on a web or app page, nothing planned.
        let customer = super::web_identity(&req, &state)?;
        let forbid = |code, message: &str, field| ApiError::Forbidden {
            code,
            message: message.to_owned(),
            field: Some(field),
        };
        if customer != request.customer_id.as_str() {
            return Err(forbid(
                "identity_mismatch",
                "a web key may only ask for the customer its identity names",
                "customer_id",
            ));
        }
        if !matches!(
            request.touchpoint,
            Some(crate::profile::Channel::Web | crate::profile::Channel::App)
        ) || request.channels.is_some()
        {
            return Err(forbid(
                "web_touchpoint_only",
                "a web key may only ask for decisions on the web and app touchpoints",
                "touchpoint",
            ));
        }
    }
    let decision = decider.decide_since(&request, started).await;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(decision.to_json()))
}
