//! `GET /v1/admin/clock`: what time the service takes it to be; `PUT /v1/admin/clock`: move a
//! simulated clock ([`crate::time::Clock`], `server.simulated_clock`) forward, for replays and
//! `simulate --closed-loop --url`. Setting it also brings this replica's online learning up to
//! date at the new time (overdue actions closed as negatives, the outcome log read) before it
//! answers, so that a simulation's next decisions see every answer it fed before.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, AppState, read_json_body};
use crate::time::ClockError;
use crate::validation::FieldError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/admin/clock")
            .get(get_clock)
            .put(set_clock),
    );
}

/// The service's clock.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClockView {
    /// Now, as the service counts it.
    #[schema(example = "2026-11-22T10:15:00Z", format = DateTime)]
    pub now: String,
    /// A simulated clock (set through `PUT /v1/admin/clock`), not the system's.
    pub simulated: bool,
}

/// Where to set the simulated clock.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetClock {
    /// The new time (RFC 3339, from 1900 to before 2200): the time the clock holds, or
    /// later.
    #[schema(example = "2026-11-22T10:15:00Z", format = DateTime)]
    pub now: String,
}

fn view(state: &AppState) -> ClockView {
    ClockView {
        now: crate::time::rfc3339(state.clock.now()),
        simulated: state.clock.is_simulated(),
    }
}

#[utoipa::path(get, path = "/v1/admin/clock", tag = "operations",
    responses((status = 200, body = ClockView)))]
pub async fn get_clock(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(view(&state))
}

/// Moves the simulated clock forward (or leaves it where it stands), then brings this
/// replica's online learning up to date at that time.
#[utoipa::path(put, path = "/v1/admin/clock", tag = "operations",
    request_body(content = SetClock, content_type = "application/json"),
    responses(
        (status = 200, description = "The clock stands at the time asked", body = ClockView),
        (status = 400, description = "`now` is missing or not a time, or an unknown field", body = super::error::ErrorBody),
        (status = 409, description = "The service runs on the system clock, or `now` is before the time the clock holds", body = super::error::ErrorBody),
        (status = 413, description = "Body over `server.max_body_bytes`", body = super::error::ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = super::error::ErrorBody),
        (status = 503, description = "The store could not be read to bring learning up to date (the clock was set)", body = super::error::ErrorBody),
    ))]
pub async fn set_clock(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_json_body(&req, payload, state.max_body_bytes).await?;
    let asked: SetClock = crate::validation::read_json(&body)?;
    let at = crate::time::parse_time(&asked.now, "now")?.timestamp();
    state.clock.set(at).map_err(|e| {
        let code = match e {
            ClockError::NotSimulated => "clock_not_simulated",
            ClockError::Backwards { .. } => "clock_backwards",
        };
        ApiError::CannotHonour(FieldError::new(code, "now", e.to_string()))
    })?;
    if let Some(learner) = state.decider.learner().filter(|l| l.enabled()) {
        learner.refresh(&state.profiles, at).await?;
    }
    Ok(HttpResponse::Ok().json(view(&state)))
}
