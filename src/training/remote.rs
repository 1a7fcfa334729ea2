//! A running Touchpoint service, as `simulate --closed-loop --url` drives it over its HTTP API:
//! the simulated clock (`PUT /v1/admin/clock`), events (`POST /v1/events`, in batches of up to
//! [`MAX_BATCH`]) and decisions (`POST /v1/decisions`). The API key, when one is given, goes
//! in the `Authorization` header and nowhere else (not in an error, not in a log).

use std::time::Duration;

use serde_json::{Value, json};

use crate::profile::event::MAX_BATCH;
use crate::profile::{Channel, CustomerId};
use crate::time::rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{what}: cannot reach the service at {url}: {reason}")]
    Unreachable {
        what: &'static str,
        url: String,
        reason: String,
    },
    #[error("{what}: the service answered {status}: {body}")]
    Refused {
        what: &'static str,
        status: u16,
        body: String,
    },
    #[error("{0}")]
    NotReady(String),
}

/// The first action of a decision, as the closed loop needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteAction {
    pub offer_id: String,
    pub channel: Channel,
    pub send_at: i64,
}

/// What a decision over HTTP answered.
#[derive(Debug, Clone)]
pub struct RemoteDecision {
    pub decision_id: String,
    pub action: Option<RemoteAction>,
}

pub struct Remote {
    client: awc::Client,
    base: String,
    key: Option<String>,
}

impl Remote {
    /// The service at `base` (`http://host:port`), called with `key` if given.
    pub fn new(base: &str, key: Option<String>) -> Result<Self, RemoteError> {
        let base = base.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") {
            return Err(RemoteError::NotReady(format!(
                "--url must be an http:// address (such as http://127.0.0.1:8080), not {base}"
            )));
        }
        Ok(Self {
            client: awc::Client::builder()
                .timeout(Duration::from_secs(60))
                .finish(),
            base,
            key,
        })
    }

    async fn call(
        &self,
        what: &'static str,
        method: awc::http::Method,
        path: &str,
        body: Option<String>,
    ) -> Result<Value, RemoteError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.client.request(method, &url);
        if let Some(key) = &self.key {
            req = req.insert_header(("authorization", format!("Bearer {key}")));
        }
        let unreachable = |reason: String| RemoteError::Unreachable {
            what,
            url: url.clone(),
            reason,
        };
        let sent = match body {
            Some(b) => {
                req.insert_header(("content-type", "application/json"))
                    .send_body(b)
                    .await
            }
            None => req.send().await,
        };
        let mut res = sent.map_err(|e| unreachable(e.to_string()))?;
        let bytes = res
            .body()
            .limit(64 << 20)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = res.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(RemoteError::Refused {
                what,
                status,
                body: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| RemoteError::Refused {
            what,
            status,
            body: format!("not JSON ({e})"),
        })
    }

    pub async fn get(&self, what: &'static str, path: &str) -> Result<Value, RemoteError> {
        self.call(what, awc::http::Method::GET, path, None).await
    }

    /// Moves the service's simulated clock to `at`; the service brings its online learning
    /// up to date at that time before it answers.
    pub async fn set_clock(&self, at: i64) -> Result<(), RemoteError> {
        let body = json!({ "now": rfc3339(at) }).to_string();
        self.call(
            "setting the clock",
            awc::http::Method::PUT,
            "/v1/admin/clock",
            Some(body),
        )
        .await
        .map(|_| ())
    }

    /// The service's clock: (now, simulated).
    pub async fn clock(&self) -> Result<(i64, bool), RemoteError> {
        let v = self.get("reading the clock", "/v1/admin/clock").await?;
        let now = v["now"]
            .as_str()
            .and_then(|s| crate::time::parse_time(s, "now").ok())
            .map_or(0, |t| t.timestamp());
        Ok((now, v["simulated"].as_bool().unwrap_or(false)))
    }

    /// Posts event lines (JSON objects), in batches the events API takes.
    pub async fn post_events(&self, lines: &[String]) -> Result<(), RemoteError> {
        for chunk in lines.chunks(MAX_BATCH) {
            let mut body =
                String::with_capacity(chunk.iter().map(|l| l.len() + 1).sum::<usize>() + 16);
            body.push_str("{\"events\":[");
            for (i, l) in chunk.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(l);
            }
            body.push_str("]}");
            self.call(
                "posting events",
                awc::http::Method::POST,
                "/v1/events",
                Some(body),
            )
            .await?;
        }
        Ok(())
    }

    /// Asks for one outbound action for `customer` as of `at`.
    pub async fn decide(
        &self,
        customer: &CustomerId,
        at: i64,
    ) -> Result<RemoteDecision, RemoteError> {
        let body = json!({"customer_id": customer.as_str(), "limit": 1, "at": rfc3339(at)});
        let d = self
            .call(
                "asking for a decision",
                awc::http::Method::POST,
                "/v1/decisions",
                Some(body.to_string()),
            )
            .await?;
        let action = d["actions"].get(0).and_then(|a| {
            Some(RemoteAction {
                offer_id: a["offer_id"].as_str()?.to_owned(),
                channel: serde_json::from_value(a["channel"].clone()).ok()?,
                send_at: crate::time::parse_time(a["send_at"].as_str()?, "send_at")
                    .ok()?
                    .timestamp(),
            })
        });
        Ok(RemoteDecision {
            decision_id: d["decision_id"].as_str().unwrap_or_default().to_owned(),
            action,
        })
    }
}
