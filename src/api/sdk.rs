//! `GET /sdk/touchpoint.js`: the website snippet (`web/touchpoint.js`), served with a strong
//! `ETag` (a hash of its bytes) and a short `Cache-Control`, answering `304` to a browser
//! that has it. It needs no key: the page's own `web` key and signed identity travel with
//! the calls it makes.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

pub const SNIPPET: &str = include_str!("../../web/touchpoint.js");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/sdk/touchpoint.js").get(snippet));
}

fn etag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        format!(
            "\"{:016x}\"",
            xxhash_rust::xxh3::xxh3_64(SNIPPET.as_bytes())
        )
    })
}

async fn snippet(req: HttpRequest) -> HttpResponse {
    let tag = etag();
    let cached = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut res = if cached {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"));
    if cached {
        res.finish()
    } else {
        res.content_type("application/javascript; charset=utf-8")
            .body(SNIPPET)
    }
}
