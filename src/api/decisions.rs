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
    cfg.route(ROUTE, web::post().to(post_decision));
}

/// A decision request (API.md section 3).
#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(example = json!({"customer_id": "c-42", "touchpoint": "call_centre", "limit": 3, "explain": true}))]
pub struct DecisionRequestDoc {
    pub customer_id: String,
    /// The inbound channel the customer is on now (web, app, call_centre, branch): actions
    /// for that channel, now.
    pub touchpoint: Option<crate::profile::Channel>,
    /// Outbound channels to plan for (email, sms, push, direct_mail): the engine picks the
    /// channel and `send_at` of each action. With neither this nor `touchpoint`, every
    /// outbound channel the customer consented to.
    pub channels: Option<Vec<crate::profile::Channel>>,
    /// Slot name, e.g. homepage_hero.
    pub placement: Option<String>,
    /// 1..20, default 1.
    pub limit: Option<u32>,
    /// RFC 3339; the decision is made as of this time (default now).
    pub at: Option<String>,
    /// Free features: string, number or bool values.
    #[schema(value_type = Option<Object>)]
    pub context: Option<serde_json::Map<String, serde_json::Value>>,
    /// Add explanations and the suppressed candidates.
    pub explain: Option<bool>,
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
    request_body = DecisionRequestDoc,
    responses(
        (status = 200, body = Decision),
        (status = 400, description = "A field is missing or wrong", body = super::error::ErrorBody),
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
    let decision = decider.decide_since(&request, started).await;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(decision.to_json()))
}
