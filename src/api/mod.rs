//! The HTTP edge (API.md). Each area has its own module with a `configure` function; the
//! app chains them. Handlers parse input into domain types, call one domain function, and
//! return `Result<_, ApiError>`. Shared state is `web::Data<AppState>`; the profile store is
//! `web::Data<Profiles>`, one per HTTP worker, each with its own store connection.

pub mod clock;
pub mod customers;
pub mod decisions;
pub mod error;
pub mod events;
pub mod health;
pub mod models;
pub mod offers;
pub mod openapi;
pub mod sdk;

use std::borrow::Cow;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::profile::{ProfileLimits, Profiles};
use crate::telemetry::metrics as m;
pub use error::ApiError;

/// What every handler can reach. Cloned into each worker behind an `Arc` (`web::Data`).
/// Each worker also has its own [`Profiles`] and [`crate::decision::Decider`] over its own
/// store connection (`web::Data<Profiles>`, `web::Data<Decider>`).
pub struct AppState {
    pub profiles: Profiles,
    pub models: std::sync::Arc<crate::live::LiveModels>,
    pub catalog: std::sync::Arc<crate::live::LiveCatalog>,
    pub limits: ProfileLimits,
    pub metrics: PrometheusHandle,
    pub max_body_bytes: usize,
    pub ingest: crate::settings::IngestSettings,
    /// The decision service, over the shared store handle.
    pub decider: crate::decision::Decider,
    /// The API keys and the web identity secret.
    pub auth: crate::auth::Auth,
    /// What "now" is ([`crate::time::Clock`]).
    pub clock: crate::time::Clock,
}

/// What a route needs of the caller's key.
enum Need {
    /// Nothing: health, readiness, metrics, the OpenAPI document, CORS preflights.
    Open,
    /// A key with this scope; `web`: or a `web` key (the handler then holds it to what a
    /// browser may do).
    Scope(crate::auth::Scope, bool),
    /// Any key but a `web` one (reading the catalog and the model set).
    AnyServerKey,
}

/// The scopes a route takes, for the OpenAPI document (`None`: open).
pub(crate) fn scopes_of(method: &actix_web::http::Method, path: &str) -> Option<Vec<&'static str>> {
    use crate::auth::Scope;
    match need(method, path) {
        Need::Open => None,
        Need::Scope(s, web) => Some(if web {
            vec![s.as_str(), Scope::Web.as_str()]
        } else {
            vec![s.as_str()]
        }),
        Need::AnyServerKey => Some(
            Scope::ALL
                .iter()
                .filter(|s| **s != Scope::Web)
                .map(|s| s.as_str())
                .collect(),
        ),
    }
}

fn need(method: &actix_web::http::Method, path: &str) -> Need {
    use crate::auth::Scope;
    use actix_web::http::Method;
    if matches!(path, "/healthz" | "/readyz" | "/metrics" | "/openapi.json")
        || path.starts_with("/sdk/")
        || path == "/agent"
        || method == Method::OPTIONS
    {
        return Need::Open;
    }
    match (method.clone(), path) {
        (Method::POST, decisions::ROUTE) => Need::Scope(Scope::Decisions, true),
        (Method::POST, "/v1/events") => Need::Scope(Scope::Events, true),
        (Method::DELETE, p) if p.starts_with("/v1/customers/") => {
            Need::Scope(Scope::CustomersErase, false)
        }
        (_, p) if p.starts_with("/v1/customers/") => Need::Scope(Scope::CustomersRead, false),
        (_, p) if p.starts_with("/v1/admin/") => Need::Scope(Scope::Admin, false),
        _ => Need::AnyServerKey,
    }
}

/// Checks the caller's key against what the route needs (API.md section 8) and hands the
/// handler its [`crate::auth::Principal`]; with no keys configured every caller passes.
pub async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    let refusal = match req.app_data::<web::Data<AppState>>() {
        Some(state) if !state.auth.is_open() => match need(req.method(), req.path()) {
            Need::Open => None,
            need @ (Need::Scope(..) | Need::AnyServerKey) => match state.auth.authenticate(
                req.headers()
                    .get(actix_web::http::header::AUTHORIZATION)
                    .map(|v| v.as_bytes()),
            ) {
                Err(r) => Some(ApiError::from(r)),
                Ok(p) => {
                    let allowed = match need {
                        Need::Open => true,
                        Need::Scope(scope, web) => {
                            p.has(scope) || (web && p.has(crate::auth::Scope::Web))
                        }
                        Need::AnyServerKey => !p.is_web_only(),
                    };
                    if allowed {
                        req.extensions_mut().insert(p);
                        None
                    } else {
                        Some(ApiError::Forbidden {
                            code: "forbidden",
                            message: format!(
                                "key {:?} may not {} {}",
                                &*p.name,
                                req.method(),
                                req.path()
                            ),
                            field: None,
                        })
                    }
                }
            },
        },
        _ => None,
    };
    match refusal {
        Some(e) => {
            let res = actix_web::ResponseError::error_response(&e);
            Ok(req.into_response(res))
        }
        None => Ok(next.call(req).await?.map_into_boxed_body()),
    }
}

/// The caller's key, when it is a `web` key only (a browser's).
pub fn web_caller(req: &actix_web::HttpRequest) -> Option<crate::auth::Principal> {
    use actix_web::HttpMessage;
    req.extensions()
        .get::<crate::auth::Principal>()
        .filter(|p| p.is_web_only())
        .cloned()
}

/// For a `web` key: the customer its signed identity names (`X-Touchpoint-Identity`).
pub fn web_identity(req: &actix_web::HttpRequest, state: &AppState) -> Result<String, ApiError> {
    Ok(state.auth.verify_identity(
        req.headers()
            .get("X-Touchpoint-Identity")
            .map(|v| v.as_bytes()),
        chrono::Utc::now().timestamp(),
    )?)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Routes are tried in order, and patterns with a `{segment}` are matched with a regex:
    // the hot, static ones go first.
    decisions::configure(cfg);
    events::configure(cfg);
    health::configure(cfg);
    openapi::configure(cfg);
    customers::configure(cfg);
    models::configure(cfg);
    offers::configure(cfg);
    clock::configure(cfg);
    sdk::configure(cfg);
}

/// Gives actix's own `405` (a known path, a method it does not take) the error body every
/// other answer has, keeping its `Allow` header.
pub fn method_not_allowed<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    use actix_web::http::header::ALLOW;
    let (req, old) = res.into_parts();
    let allow = old.headers().get(ALLOW).cloned();
    let error = ApiError::MethodNotAllowed(format!(
        "{} does not take {}{}",
        req.path(),
        req.method(),
        allow
            .as_ref()
            .and_then(|a| a.to_str().ok())
            .map(|a| format!("; it takes {a}"))
            .unwrap_or_default()
    ));
    let mut new = actix_web::ResponseError::error_response(&error);
    if let Some(allow) = allow {
        new.headers_mut().insert(ALLOW, allow);
    }
    Ok(actix_web::middleware::ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new).map_into_right_body(),
    ))
}

/// Records the latency of every request under its route pattern (`/v1/customers/{id}`), never
/// the raw path, so label values stay few.
pub async fn record_latency(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    // The decision route is a fixed path: its pattern is known without asking the router
    // (which builds a new string each time).
    let route: Cow<'static, str> = if req.path() == decisions::ROUTE {
        Cow::Borrowed(decisions::ROUTE)
    } else {
        Cow::Owned(req.match_pattern().unwrap_or_else(|| "unmatched".into()))
    };
    let res = next.call(req).await?;
    let status = res.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    HTTP_HISTOGRAMS.with_borrow_mut(|handles| {
        let found = handles
            .iter()
            .find(|((m, r, s), _)| *s == status && *m == method && *r == route);
        match found {
            Some((_, h)) => h.record(elapsed),
            None => {
                let h = metrics::histogram!(m::HTTP_DURATION, "method" => method,
                    "route" => route.to_string(), "status" => status.to_string());
                h.record(elapsed);
                handles.push(((method, route, status), h));
            }
        }
    });
    Ok(res)
}

thread_local! {
    /// Each worker's histogram handles by method, route and status: few distinct ones (a
    /// short list, searched in order), and finding one in the recorder's registry copied and
    /// hashed its labels on every request.
    static HTTP_HISTOGRAMS: std::cell::RefCell<HttpHistograms> = Default::default();
}

type HttpHistograms = Vec<((&'static str, Cow<'static, str>, u16), metrics::Histogram)>;

/// The `method` label: the standard methods by name, anything else a client sends as
/// `other` (a label value per invented method would let any client grow the scrape
/// without bound).
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::TRACE, "TRACE"),
        (Method::CONNECT, "CONNECT"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| m == method)
        .map_or("other", |(_, name)| *name)
}

/// Reads a JSON request body up to `limit` bytes: a body sent as anything but
/// `application/json` is refused with `415` (a page cannot then make a visitor's browser post
/// it cross-site as a form or plain text), and a larger one with `413` before it is buffered
/// whole.
pub async fn read_json_body(
    req: &actix_web::HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    use actix_web::HttpMessage;
    match req.mime_type() {
        Ok(Some(m))
            if m.type_() == actix_web::mime::APPLICATION
                && (m.subtype() == actix_web::mime::JSON
                    || m.suffix() == Some(actix_web::mime::JSON)) => {}
        Ok(Some(m)) => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body must be JSON, sent with Content-Type: application/json, not {m}"
            )));
        }
        Ok(None) | Err(_) => {
            return Err(ApiError::UnsupportedMediaType(
                "the body must be JSON, sent with Content-Type: application/json".into(),
            ));
        }
    }
    read_body(payload, limit).await
}

/// Reads a request body up to `limit` bytes; a larger one is refused with `413` before it is
/// buffered whole.
pub async fn read_body(payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(ApiError::Invalid(crate::validation::Invalid::one(
            crate::validation::FieldError::body(
                "unreadable_body",
                format!("the request body could not be read: {e}"),
            ),
        ))),
        Err(_) => Err(ApiError::PayloadTooLarge { limit }),
    }
}
