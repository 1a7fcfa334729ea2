//! `GET /sdk/touchpoint.js`: the website snippet (`web/touchpoint.js`), served with a strong
//! `ETag` (a hash of its bytes) and a short `Cache-Control`, answering `304` to a browser
//! that has it. `GET /agent` (`/agent?customer_id=ID`): the call-centre agent screen
//! (`web/agent.html`, one page, no external assets). Neither needs a key: the page's calls
//! carry one (the snippet's `web` key and signed identity; the key the agent enters, kept
//! for the browser session only).

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

pub const SNIPPET: &str = include_str!("../../web/touchpoint.js");
pub const AGENT: &str = include_str!("../../web/agent.html");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/sdk/touchpoint.js").get(snippet))
        .service(web::resource("/agent").get(agent));
}

async fn agent() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Its own script and styles only, and calls to this service.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'",
        ))
        .body(AGENT)
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
