//! Health, readiness, metrics and the OpenAPI document.

use crate::helpers::{purchase, spawn_app, test_settings};

#[actix_web::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app(test_settings(None)).await;
    assert_eq!(
        app.get("/healthz").await,
        (200, serde_json::json!({"status": "ok"}))
    );
    let (status, ready) = app.get("/readyz").await;
    assert_eq!((status, ready["store"].as_str()), (200, Some("memory")));

    app.post_json(
        "/v1/events",
        &purchase("m1", "c-1", "2026-01-01T00:00:00Z", 1.0),
    )
    .await;
    app.post_json(
        "/v1/events",
        &purchase("m1", "c-1", "2026-01-01T00:00:00Z", 1.0),
    )
    .await;
    app.post_json("/v1/events", &serde_json::json!({"event_id": "x"}))
        .await;
    app.post_json(
        "/v1/decisions",
        &serde_json::json!({"customer_id": "c-1", "touchpoint": "web"}),
    )
    .await;
    app.get("/v1/customers/c-1").await;
    let (status, text) = app.get("/metrics").await;
    assert_eq!(status, 200);
    let text = text.as_str().unwrap();
    for needle in [
        "touchpoint_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/events\",status=\"202\",le=\"0.001\"}",
        "touchpoint_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/decisions\",status=\"200\",le=\"0.001\"}",
        "touchpoint_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/customers/{id}\",status=\"200\",le=\"0.001\"}",
        "touchpoint_events_total{result=\"accepted\"}",
        "touchpoint_events_total{result=\"duplicate\"}",
        "touchpoint_events_total{result=\"rejected\"}",
        "touchpoint_store_operation_duration_seconds_bucket{store=\"memory\",op=\"apply\"",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app(test_settings(None)).await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/v1/events", "post"),
        ("/v1/customers/{id}", "get"),
        ("/v1/customers/{id}", "delete"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} not documented"
        );
    }
    // An event is one of a schema per type; together they name every field.
    let schemas = &doc["components"]["schemas"];
    let variants: Vec<&serde_json::Value> = schemas["EventIn"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let name = v["$ref"]
                .as_str()
                .unwrap()
                .trim_start_matches("#/components/schemas/");
            &schemas[name]["properties"]
        })
        .collect();
    assert_eq!(variants.len(), 6);
    for field in [
        "event_id",
        "customer_id",
        "type",
        "at",
        "channel",
        "offer_id",
        "decision_id",
        "amount",
        "outcome",
        "consent",
        "attributes",
        "name",
    ] {
        assert!(
            variants.iter().any(|p| p[field].is_object()),
            "EventIn lacks {field}"
        );
    }
    let (status, missing) = app.get("/v1/nothing-here").await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    app.stop().await;
}
