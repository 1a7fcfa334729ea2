//! `GET /openapi.json`: the OpenAPI 3 document, generated from the handlers' own types.

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::{customers, decisions, error, events, health, models, offers};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Touchpoint",
        description = "Real-time personalization decisions: next-best-action with consent, contact policy and customer value. See API.md for the contract.",
    ),
    paths(
        decisions::post_decision,
        events::post_events,
        offers::get_offers,
        customers::get_customer,
        customers::delete_customer,
        models::get_models,
        models::reload_models,
        health::healthz,
        health::readyz,
        health::metrics_text,
    ),
    components(schemas(error::ErrorBody)),
    tags(
        (name = "decisions", description = "Next best actions: offer, channel and time"),
        (name = "events", description = "Interaction events that keep profiles up to date"),
        (name = "offers", description = "The offer catalog in force"),
        (name = "customers", description = "What Touchpoint holds about a customer"),
        (name = "models", description = "The trained model set in service"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi_json));
}

pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serialises")
    })
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}
