//! `POST /v1/decisions` requests (API.md section 3), parsed once at the edge.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::profile::{Channel, CustomerId};
use crate::time::parse_time;
use crate::validation::{FieldError, Invalid, present, read_json};

pub const MAX_LIMIT: usize = 20;
const MAX_CONTEXT_ENTRIES: usize = 32;
const MAX_TEXT: usize = 256;
/// The largest magnitude of a number in `context`.
pub const MAX_CONTEXT_NUMBER: f64 = 1e15;

/// A request context value: string, number or bool.
#[derive(Debug, Clone, PartialEq)]
pub enum ContextValue {
    Text(String),
    Number(f64),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRequest {
    pub customer_id: CustomerId,
    /// The inbound channel the customer is on now.
    pub touchpoint: Option<Channel>,
    /// Outbound channels to plan for.
    pub channels: Option<Vec<Channel>>,
    pub placement: Option<String>,
    pub limit: usize,
    /// The decision is made as of this time (default now).
    pub at: Option<DateTime<Utc>>,
    pub context: BTreeMap<String, ContextValue>,
    pub explain: bool,
}

/// The wire shape; every field optional so that a missing one gets a clear message. A field
/// it does not know is refused (a misspelt `touchpoint` would otherwise plan outbound).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    #[serde(default, deserialize_with = "present")]
    customer_id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    touchpoint: Option<String>,
    #[serde(default, deserialize_with = "present")]
    channels: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    placement: Option<String>,
    /// A number, so that `2.0` is the integer 2 as JSON Schema reads it.
    #[serde(default, deserialize_with = "present")]
    limit: Option<f64>,
    #[serde(default, deserialize_with = "present")]
    at: Option<String>,
    #[serde(default, deserialize_with = "present")]
    context: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, deserialize_with = "present")]
    explain: Option<bool>,
}

pub fn parse_request(bytes: &[u8]) -> Result<DecisionRequest, Invalid> {
    let raw: RawRequest = read_json(bytes)?;
    let mut errors = Vec::new();
    let customer_id = customer_id(raw.customer_id, &mut errors);
    let touchpoint = raw.touchpoint.and_then(|t| touchpoint(&t, &mut errors));
    let channels = raw.channels.map(|list| channels(&list, &mut errors));
    let placement = raw.placement.filter(|p| {
        let ok = !p.is_empty() && p.chars().count() <= 128;
        if !ok {
            errors.push(FieldError::new(
                "invalid_placement",
                "placement",
                "placement is 1..128 characters",
            ));
        }
        ok
    });
    let limit = match raw.limit {
        None => 1,
        Some(l) if l.fract() == 0.0 && (1.0..=MAX_LIMIT as f64).contains(&l) => l as usize,
        Some(l) => {
            errors.push(FieldError::new(
                "invalid_limit",
                "limit",
                format!("limit must be 1..{MAX_LIMIT}, not {l}"),
            ));
            1
        }
    };
    let at = raw
        .at
        .and_then(|s| parse_time(&s, "at").map_err(|e| errors.push(e)).ok());
    let context = raw
        .context
        .map(|map| context(map, &mut errors))
        .unwrap_or_default();
    match customer_id {
        Some(customer_id) if errors.is_empty() => Ok(DecisionRequest {
            customer_id,
            touchpoint,
            channels,
            placement,
            limit,
            at,
            context,
            explain: raw.explain.unwrap_or(false),
        }),
        _ => Err(Invalid(errors)),
    }
}

fn customer_id(raw: Option<String>, errors: &mut Vec<FieldError>) -> Option<CustomerId> {
    let Some(s) = raw else {
        errors.push(FieldError::new(
            "missing_field",
            "customer_id",
            "customer_id is required",
        ));
        return None;
    };
    CustomerId::parse(s)
        .map_err(|e| {
            errors.push(FieldError::new(
                e.code(),
                "customer_id",
                format!("customer_id {e}"),
            ))
        })
        .ok()
}

fn touchpoint(t: &str, errors: &mut Vec<FieldError>) -> Option<Channel> {
    match t.parse::<Channel>() {
        Ok(c) if !c.is_outbound() => Some(c),
        Ok(c) => {
            errors.push(FieldError::new(
                "outbound_touchpoint",
                "touchpoint",
                format!("touchpoint is the inbound channel the customer is on now (web, app, call_centre, branch), not {c}; plan outbound channels with `channels`"),
            ));
            None
        }
        Err(e) => {
            errors.push(FieldError::new(
                "unknown_channel",
                "touchpoint",
                e.to_string(),
            ));
            None
        }
    }
}

fn channels(list: &[String], errors: &mut Vec<FieldError>) -> Vec<Channel> {
    let before = errors.len();
    let mut out: Vec<Channel> = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        let field = format!("channels[{i}]");
        match c.parse::<Channel>() {
            Ok(ch) if ch.is_outbound() => {
                if !out.contains(&ch) {
                    out.push(ch);
                }
            }
            Ok(ch) => errors.push(FieldError::new(
                "inbound_channel",
                field,
                format!("channels lists outbound channels (email, sms, push, direct_mail); {ch} is inbound: use touchpoint"),
            )),
            Err(e) => errors.push(FieldError::new("unknown_channel", field, e.to_string())),
        }
    }
    if out.is_empty() && errors.len() == before {
        errors.push(FieldError::new(
            "empty_channels",
            "channels",
            "channels, when given, lists at least one channel",
        ));
    }
    out
}

fn context(
    map: serde_json::Map<String, serde_json::Value>,
    errors: &mut Vec<FieldError>,
) -> BTreeMap<String, ContextValue> {
    let mut context = BTreeMap::new();
    if map.len() > MAX_CONTEXT_ENTRIES {
        errors.push(FieldError::new(
            "too_many_context_values",
            "context",
            format!("context holds at most {MAX_CONTEXT_ENTRIES} values"),
        ));
    }
    for (k, v) in map.into_iter().take(MAX_CONTEXT_ENTRIES) {
        let field = format!("context.{k}");
        let name_ok = !k.is_empty()
            && k.len() <= 64
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            errors.push(FieldError::new(
                "invalid_context_name",
                field,
                "context names are 1..64 characters of A-Z a-z 0-9 _ -",
            ));
            continue;
        }
        let value = match v {
            serde_json::Value::String(s) if s.chars().count() <= MAX_TEXT => ContextValue::Text(s),
            serde_json::Value::Bool(b) => ContextValue::Bool(b),
            serde_json::Value::Number(n)
                if n.as_f64().is_some_and(|x| x.abs() <= MAX_CONTEXT_NUMBER) =>
            {
                ContextValue::Number(n.as_f64().unwrap_or_default())
            }
            serde_json::Value::String(_) => {
                errors.push(FieldError::new(
                    "invalid_context",
                    field,
                    format!("text values are at most {MAX_TEXT} characters"),
                ));
                continue;
            }
            serde_json::Value::Null
            | serde_json::Value::Number(_)
            | serde_json::Value::Array(_)
            | serde_json::Value::Object(_) => {
                errors.push(FieldError::new(
                    "invalid_context",
                    field,
                    format!("context values are strings, numbers within ±{MAX_CONTEXT_NUMBER} or booleans"),
                ));
                continue;
            }
        };
        context.insert(k, value);
    }
    context
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(json: &str) -> (String, &'static str) {
        let e = parse_request(json.as_bytes()).unwrap_err();
        (e.first().field.clone().unwrap_or_default(), e.first().code)
    }

    #[test]
    fn a_full_request_parses() {
        let r = parse_request(
            br#"{"customer_id":"c-42","touchpoint":"call_centre","channels":["email","sms","email"],
                "placement":"homepage_hero","limit":3,"at":"2026-11-22T10:15:00Z",
                "context":{"device":"mobile","basket":12.5,"logged_in":true},"explain":true}"#,
        )
        .unwrap();
        assert_eq!(r.touchpoint, Some(Channel::CallCentre));
        assert_eq!(r.channels, Some(vec![Channel::Email, Channel::Sms]));
        assert_eq!(r.limit, 3);
        assert_eq!(r.context["basket"], ContextValue::Number(12.5));
        assert!(r.explain);
        let minimal = parse_request(br#"{"customer_id":"c-1"}"#).unwrap();
        assert_eq!((minimal.limit, minimal.explain), (1, false));
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (r#"{}"#, "customer_id", "missing_field"),
            (r#"{"customer_id":"c 1"}"#, "customer_id", "bad_character"),
            (
                r#"{"customer_id":"c","limit":21}"#,
                "limit",
                "invalid_limit",
            ),
            (r#"{"customer_id":"c","limit":0}"#, "limit", "invalid_limit"),
            (r#"{"customer_id":"c","limit":"3"}"#, "limit", "wrong_type"),
            (
                r#"{"customer_id":"c","touchpoint":"email"}"#,
                "touchpoint",
                "outbound_touchpoint",
            ),
            (
                r#"{"customer_id":"c","touchpoint":"fax"}"#,
                "touchpoint",
                "unknown_channel",
            ),
            (
                r#"{"customer_id":"c","channels":["email","web"]}"#,
                "channels[1]",
                "inbound_channel",
            ),
            (
                r#"{"customer_id":"c","channels":[]}"#,
                "channels",
                "empty_channels",
            ),
            (r#"{"customer_id":"c","at":"now"}"#, "at", "invalid_time"),
            (
                r#"{"customer_id":"c","context":{"device":["a"]}}"#,
                "context.device",
                "invalid_context",
            ),
            (
                r#"{"customer_id":"c","explain":"yes"}"#,
                "explain",
                "wrong_type",
            ),
        ];
        for (json, field, code) in cases {
            assert_eq!(field_of(json), (field.to_owned(), code), "{json}");
        }
    }
}
