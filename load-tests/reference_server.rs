//! The reference the decision load test measures Touchpoint against: the least a
//! Redis-backed JSON service can do per request. `POST /v1/reference` parses
//! `{"customer_id": "..."}`, does one Redis `GET` of that customer's profile key, and answers
//! JSON. Same stack as the service (actix-web with its default worker count, a multiplexed
//! redis `ConnectionManager` per worker with `TCP_NODELAY`, mimalloc), so the ratio between
//! the two is the cost of deciding.
//!
//! Its server-side latency is measured as the service's decision latency is: from the body
//! read to the answer serialised (the Redis `GET` included), into a Prometheus histogram with
//! the same buckets (`reference_request_duration_seconds`, served at `GET /metrics`), so the
//! load test reads both the same way.
//!
//! Usage: `reference_server --bind 127.0.0.1:PORT --redis redis://127.0.0.1:PORT/0`

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use clap::Parser;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    bind: String,
    #[arg(long)]
    redis: String,
}

#[derive(serde::Deserialize)]
struct Request {
    customer_id: String,
}

#[derive(serde::Serialize)]
struct Answer {
    customer_id: String,
    found: bool,
    profile_bytes: usize,
}

const DURATION: &str = "reference_request_duration_seconds";

async fn reference(
    conn: web::Data<ConnectionManager>,
    body: web::Bytes,
) -> actix_web::Result<HttpResponse> {
    let started = Instant::now();
    let request: Request =
        serde_json::from_slice(&body).map_err(actix_web::error::ErrorBadRequest)?;
    let key = format!("tp:{{{}}}:profile", request.customer_id);
    let mut conn = conn.get_ref().clone();
    let value: Option<Vec<u8>> = conn
        .get(&key)
        .await
        .map_err(actix_web::error::ErrorServiceUnavailable)?;
    let json = serde_json::to_vec(&Answer {
        found: value.is_some(),
        profile_bytes: value.map_or(0, |v| v.len()),
        customer_id: request.customer_id,
    })?;
    metrics::histogram!(DURATION).record(started.elapsed().as_secs_f64());
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(json))
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    // The service's recorder, buckets and upkeep.
    let metrics = touchpoint::telemetry::metrics::recorder();
    actix_web::rt::System::new().block_on(async move {
        touchpoint::telemetry::metrics::spawn_upkeep(metrics.clone());
        // As the service's: TCP_NODELAY set.
        let client = touchpoint::profile::redis_store::client(&args.redis, None)
            .map_err(std::io::Error::other)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)));
        HttpServer::new(move || {
            let (client, config, metrics) = (client.clone(), config.clone(), metrics.clone());
            App::new()
                // One connection per worker, driven by the worker's own runtime.
                .data_factory(move || {
                    ConnectionManager::new_with_config(client.clone(), config.clone())
                })
                .route("/v1/reference", web::post().to(reference))
                .route("/readyz", web::get().to(HttpResponse::Ok))
                .route(
                    "/metrics",
                    web::get().to(move || {
                        let text = metrics.render();
                        async move { HttpResponse::Ok().body(text) }
                    }),
                )
        })
        .bind(&args.bind)?
        .run()
        .await
    })
}
