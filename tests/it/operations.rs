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
    assert_eq!(
        (status, ready["store"].as_str()),
        (200, Some(crate::helpers::default_store_kind()))
    );

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
        &format!(
            "touchpoint_store_operation_duration_seconds_bucket{{store=\"{}\",op=\"apply\"",
            crate::helpers::default_store_kind()
        ),
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

/// Every counter is there from the start (at zero until something happens; a histogram
/// appears with its first observation), the build-info gauge names the model set, and every
/// metric the shipped Grafana dashboard and alert rules read is one the service exports.
#[actix_web::test]
async fn the_dashboard_and_alerts_read_metrics_that_exist_from_the_start() {
    let app = spawn_app(test_settings(None)).await;
    let (_, text) = app.get("/metrics").await;
    let text = text.as_str().unwrap().to_owned();
    for needle in [
        "touchpoint_decisions_total{outcome=\"degraded\"}",
        "touchpoint_events_total{result=\"rejected\"}",
        &format!(
            "touchpoint_store_errors_total{{store=\"{}\",op=\"apply\",kind=\"timeout\"}}",
            crate::helpers::default_store_kind()
        ),
        "touchpoint_model_reloads_total{result=\"error\"}",
        "touchpoint_decision_log_dropped_total",
        "touchpoint_arm_decisions_total{arm=\"challenger\"}",
    ] {
        assert!(text.contains(needle), "{needle} missing from /metrics");
    }
    let (_, models) = app.get("/v1/models").await;
    let info = format!(
        "touchpoint_build_info{{version=\"{}\",model_version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        models["version"].as_str().unwrap()
    );
    // The gauge is set by a task started with the service.
    let mut found = false;
    for _ in 0..50 {
        let (_, t) = app.get("/metrics").await;
        if t.as_str().unwrap().contains(&info) {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(found, "{info} missing");
    // Histograms appear with their first observation: one decision.
    app.post_json(
        "/v1/decisions",
        &serde_json::json!({"customer_id": "c-ops", "touchpoint": "web"}),
    )
    .await;
    let (_, text) = app.get("/metrics").await;
    let text = text.as_str().unwrap().to_owned();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::helpers::repo_path("ops/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    let alerts = std::fs::read_to_string(crate::helpers::repo_path("ops/alerts.yml")).unwrap();
    exprs.extend(
        alerts
            .lines()
            .filter_map(|l| l.trim().strip_prefix("expr: "))
            .map(str::to_owned),
    );
    assert!(exprs.len() >= 15, "{exprs:?}");
    for expr in &exprs {
        for name in expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("touchpoint_"))
        {
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_count")
                .trim_end_matches("_sum");
            assert!(
                text.contains(&format!("\n{base}")) || text.contains(&format!("# TYPE {base} ")),
                "{name} (in `{expr}`) is not exported"
            );
        }
    }
    app.stop().await;
}
