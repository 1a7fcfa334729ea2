//! The HTTP edge (API.md). Each area has its own module with a `configure` function; the
//! app chains them. Handlers parse input into domain types, call one domain function, and
//! return `Result<_, ApiError>`. Shared state is `web::Data<AppState>`; the profile store is
//! `web::Data<Profiles>`, one per HTTP worker, each with its own store connection.

pub mod customers;
pub mod decisions;
pub mod error;
pub mod events;
pub mod health;
pub mod models;
pub mod offers;
pub mod openapi;

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

pub type Models = crate::live::Live<crate::model::set::ModelSet, crate::model::set::ModelError>;
pub type Catalogs =
    crate::live::Live<crate::decision::catalog::Catalog, crate::decision::catalog::CatalogError>;

/// What every handler can reach. Cloned into each worker behind an `Arc` (`web::Data`).
pub struct AppState {
    pub profiles: Profiles,
    pub models: std::sync::Arc<Models>,
    pub catalog: std::sync::Arc<Catalogs>,
    pub limits: ProfileLimits,
    pub metrics: PrometheusHandle,
    pub max_body_bytes: usize,
    pub decision: crate::decision::DecisionSettings,
    pub decision_log: crate::decision::log::DecisionLog,
    /// Customers erased in the last minute (see [`RecentlyErased`]).
    pub erased: RecentlyErased,
}

/// Customers erased a short while ago. A decision under way when its customer is erased
/// could otherwise record a plan or a log line for them after the erasure; it asks here
/// first and records nothing. (`DELETE` marks the customer before it erases anything.)
#[derive(Default)]
pub struct RecentlyErased {
    /// Entries in `list`: a decision looks no further while there are none.
    count: std::sync::atomic::AtomicUsize,
    list: std::sync::Mutex<Vec<(String, Instant)>>,
}

impl RecentlyErased {
    /// Far longer than a decision takes.
    const KEPT: std::time::Duration = std::time::Duration::from_secs(60);

    pub fn mark(&self, customer: &str) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|(_, at)| at.elapsed() < Self::KEPT);
        list.push((customer.to_owned(), Instant::now()));
        self.count
            .store(list.len(), std::sync::atomic::Ordering::SeqCst);
    }

    pub fn contains(&self, customer: &str) -> bool {
        if self.count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            return false;
        }
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|(_, at)| at.elapsed() < Self::KEPT);
        self.count
            .store(list.len(), std::sync::atomic::Ordering::SeqCst);
        list.iter().any(|(c, _)| c == customer)
    }
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
}

/// Records the latency of every request under its route pattern (`/v1/customers/{id}`), never
/// the raw path, so label values stay few.
pub async fn record_latency(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
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
                let h = metrics::histogram!(m::HTTP_DURATION, "method" => method.as_str().to_owned(),
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

type HttpHistograms = Vec<(
    (actix_web::http::Method, Cow<'static, str>, u16),
    metrics::Histogram,
)>;

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

#[cfg(test)]
mod tests {
    use super::RecentlyErased;

    #[test]
    fn recently_erased_customers_are_known_by_id() {
        let erased = RecentlyErased::default();
        assert!(!erased.contains("c-1"));
        erased.mark("c-1");
        assert!(erased.contains("c-1"));
        assert!(!erased.contains("c-2"));
    }
}
