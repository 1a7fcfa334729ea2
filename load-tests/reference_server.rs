//! The reference the decision load test measures Touchpoint against: the least a
//! Redis-backed JSON service can do per request. `POST /v1/reference` parses
//! `{"customer_id": "..."}`, does one Redis `GET` of that customer's profile key, and answers
//! JSON. Same stack as the service (actix-web with its default worker count, a multiplexed
//! redis `ConnectionManager` per worker, mimalloc), so the ratio between the two is the cost
//! of deciding.
//!
//! Usage: `reference_server --bind 127.0.0.1:PORT --redis redis://127.0.0.1:PORT/0`

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

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

async fn reference(
    conn: web::Data<ConnectionManager>,
    body: web::Json<Request>,
) -> actix_web::Result<HttpResponse> {
    let key = format!("tp:{{{}}}:profile", body.customer_id);
    let mut conn = conn.get_ref().clone();
    let value: Option<Vec<u8>> = conn
        .get(&key)
        .await
        .map_err(actix_web::error::ErrorServiceUnavailable)?;
    Ok(HttpResponse::Ok().json(Answer {
        found: value.is_some(),
        profile_bytes: value.map_or(0, |v| v.len()),
        customer_id: body.into_inner().customer_id,
    }))
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    actix_web::rt::System::new().block_on(async move {
        let client = redis::Client::open(args.redis.as_str()).map_err(std::io::Error::other)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)));
        HttpServer::new(move || {
            let (client, config) = (client.clone(), config.clone());
            App::new()
                // One connection per worker, driven by the worker's own runtime.
                .data_factory(move || {
                    ConnectionManager::new_with_config(client.clone(), config.clone())
                })
                .route("/v1/reference", web::post().to(reference))
                .route("/readyz", web::get().to(HttpResponse::Ok))
        })
        .bind(&args.bind)?
        .run()
        .await
    })
}
