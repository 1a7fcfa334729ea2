//! `GET /openapi.json`: the OpenAPI 3 document, generated from the handlers' own types.

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::{clock, customers, decisions, error, events, health, models, offers};

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
        clock::get_clock,
        clock::set_clock,
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
    cfg.service(web::resource("/openapi.json").get(openapi_json));
}

pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc =
            serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
        refine(&mut doc);
        serde_json::to_string_pretty(&doc).expect("a JSON value serialises")
    })
}

/// What the derived document cannot say by itself, said in JSON Schema: the names and values
/// a free-form map takes, the zones `timezone` may name, and that a response names what it
/// answers.
fn refine(doc: &mut serde_json::Value) {
    use crate::decision::request::MAX_CONTEXT_NUMBER;
    use crate::profile::event::{
        MAX_ATTRIBUTE_NUMBER, MAX_ATTRIBUTE_TEXT_LEN, MAX_ATTRIBUTES_PER_EVENT,
    };
    use serde_json::json;
    // Who may call what (API.md section 8): a bearer key, and each operation's scopes.
    doc["components"]["securitySchemes"] = json!({"api_key": {"type": "http", "scheme": "bearer",
        "description": "An API key: Authorization: Bearer KEY. Configured as [[auth.keys]] with \
            scopes; with no keys configured (loopback only) the service is open."}});
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(ops) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in ops.iter_mut() {
                let Ok(m) = method
                    .to_ascii_uppercase()
                    .parse::<actix_web::http::Method>()
                else {
                    continue;
                };
                let Some(scopes) = super::scopes_of(&m, path) else {
                    op["security"] = json!([]);
                    continue;
                };
                op["security"] = json!([{"api_key": []}]);
                op["x-scopes"] = json!(scopes);
                let note = format!("Needs a key with one of the scopes: {}.", scopes.join(", "));
                let description = op["description"]
                    .as_str()
                    .map_or(note.clone(), |d| format!("{d}\n\n{note}"));
                op["description"] = json!(description);
                let error = json!({"$ref": "#/components/schemas/ErrorBody"});
                let responses = &mut op["responses"];
                responses["401"] = json!({"description": "No API key, or one not configured", "content": {"application/json": {"schema": error}}});
                responses["403"] = json!({"description": "The key lacks the scope (or a web key's identity does not allow it)", "content": {"application/json": {"schema": error}}});
            }
        }
    }
    let schemas = &mut doc["components"]["schemas"];
    let number = |max: f64| json!({"type": "number", "minimum": -max, "maximum": max});
    let zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect();
    schemas["AttributesEvent"]["properties"]["attributes"] = json!({
        "type": "object",
        "minProperties": 1,
        "maxProperties": MAX_ATTRIBUTES_PER_EVENT,
        "propertyNames": {"pattern": "^[A-Za-z0-9_-]{1,64}$"},
        "properties": {"timezone": {"oneOf": [{"type": "string", "enum": zones}, {"type": "null"}]}},
        "additionalProperties": {"oneOf": [
            {"type": "string", "maxLength": MAX_ATTRIBUTE_TEXT_LEN},
            number(MAX_ATTRIBUTE_NUMBER),
            {"type": "boolean"},
            {"type": "null"},
        ]},
        "description": "Values to set (a string, a number or a boolean) or remove (null).",
    });
    schemas["ResponseEvent"]["anyOf"] =
        json!([{"required": ["offer_id"]}, {"required": ["decision_id"]}]);
    schemas["DecisionRequestDoc"]["properties"]["context"] = json!({
        "type": "object",
        "maxProperties": 32,
        "propertyNames": {"pattern": "^[A-Za-z0-9_-]{1,64}$"},
        "additionalProperties": {"oneOf": [
            {"type": "string", "maxLength": 256},
            number(MAX_CONTEXT_NUMBER),
            {"type": "boolean"},
        ]},
        "description": "Free features: strings, numbers or booleans.",
    });
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}
