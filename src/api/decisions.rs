//! `POST /v1/decisions`: the next best actions for a customer, now or planned.

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use utoipa::ToSchema;

use super::{ApiError, AppState, read_body};
use crate::decision::engine::{Decision, DecisionEngine, DecisionInput};
use crate::decision::request::parse_request;
use crate::profile::planned::PlannedAction;
use crate::profile::store::{DecisionRead, Profiles};
use crate::telemetry::metrics as m;

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
    state: web::Data<AppState>,
    profiles: web::Data<Profiles>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, state.max_body_bytes).await?;
    let started = Instant::now();
    let request = parse_request(&body)?;
    let budget = Duration::from_millis(state.decision.profile_read_budget_ms);
    // Earlier plans only matter to a decision that may plan outbound contacts.
    let outbound = request.channels.is_some() || request.touchpoint.is_none();
    let (read, degraded) = match profiles
        .load_for_decision(&request.customer_id, outbound, budget)
        .await
    {
        Ok(read) => (read, false),
        Err(e) => {
            tracing::warn!(error = %e, "profile unavailable: deciding from the fallback ranking");
            (DecisionRead::default(), true)
        }
    };
    let models = state.models.current();
    let catalog = state.catalog.current();
    let engine = DecisionEngine {
        catalog: &catalog.value,
        models: &models.value,
        settings: &state.decision,
    };
    let mut decision = engine.decide(&DecisionInput {
        request: &request,
        profile: read.profile.as_deref(),
        planned: &read.planned,
        degraded,
        now: chrono::Utc::now(),
        decision_id: uuid::Uuid::now_v7().to_string(),
    });
    let grace = i64::from(state.decision.contact_policy.planned_grace_hours) * 3600;
    if grace > 0 {
        record_planned(
            &profiles,
            &request.customer_id,
            &mut decision,
            grace,
            budget,
        )
        .await;
    }
    let outcome = if decision.degraded {
        Outcome::Degraded
    } else if decision.actions.is_empty() {
        Outcome::NoAction
    } else {
        Outcome::Actions
    };
    let json = decision.to_json();
    state.decision_log.record(&decision, &request);
    DECISION_METRICS.with(|(duration, outcomes)| {
        duration.record(started.elapsed().as_secs_f64());
        outcomes[outcome as usize].increment(1);
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(json))
}

/// Records the decision's planned outbound marketing actions, so that later decisions count
/// them toward the contact limits. When that cannot be done within `budget`, they are taken
/// out of the answer (a limit could otherwise be broken by the next decision) and the
/// decision says `degraded`.
async fn record_planned(
    profiles: &Profiles,
    customer: &crate::profile::CustomerId,
    decision: &mut Decision,
    grace: i64,
    budget: Duration,
) {
    let planned: Vec<PlannedAction> = decision
        .actions
        .iter()
        .filter(|a| a.counts_as_contact)
        .map(|a| PlannedAction {
            decision_id: decision.decision_id.clone(),
            offer_id: a.offer_id.clone(),
            channel: a.channel,
            send_at: a.send_at_unix,
            made_at: decision.log.at,
            until: a.send_at_unix.saturating_add(grace),
        })
        .collect();
    if planned.is_empty() {
        return;
    }
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = profiles.plan(customer, &planned, now, budget).await {
        tracing::warn!(error = %e, "cannot record the planned actions: answering without them");
        decision.actions.retain(|a| !a.counts_as_contact);
        for (i, a) in decision.actions.iter_mut().enumerate() {
            a.rank = i + 1;
        }
        decision.degraded = true;
    }
}

/// A decision's outcome, the label of `touchpoint_decisions_total` ([`Outcome::LABELS`], in
/// this order).
#[derive(Clone, Copy)]
enum Outcome {
    Actions,
    NoAction,
    Degraded,
}

impl Outcome {
    const LABELS: [&'static str; 3] = ["actions", "no_action", "degraded"];
}

thread_local! {
    /// Each worker's handles on the decision duration and the count by outcome: looking
    /// them up in the recorder's registry hashed the name and label on every decision.
    /// Made on a thread's first decision, so the recorder must be installed before (the
    /// service installs it before it starts the HTTP workers).
    static DECISION_METRICS: (metrics::Histogram, [metrics::Counter; 3]) = (
        metrics::histogram!(m::DECISION_DURATION),
        Outcome::LABELS.map(|label| metrics::counter!(m::DECISIONS, "outcome" => label)),
    );
}
