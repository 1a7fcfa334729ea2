//! Interaction events (API.md section 2), parsed once at the edge.
//!
//! [`parse_body`] takes the bytes of `POST /v1/events` (one event, or `{"events": [...]}`) and
//! [`parse_line`] one line of an event file; both return [`Event`]s that cannot hold bad data,
//! or every field error found, each naming its JSON path (`events[3].amount`). The input is
//! strict: one JSON value, no unknown fields (free-form values go in `attributes`), no field
//! that does not apply to the event's type, amounts in 0..=1e9, finite numbers, times from
//! 1900 to before 2200. A receiver also refuses events dated after its clock plus the
//! allowed skew ([`parse_body_received`], [`parse_line_received`]): one event dated years
//! ahead would otherwise stand as the customer's newest and push every real one out of the
//! bounded histories.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::channel::Channel;
use super::ids::{CustomerId, DecisionId, EventId, IdError, OfferId};
use crate::time::{parse_time, rfc3339};
use crate::validation::{FieldError, Invalid, present, read_json};

/// The most events one `POST /v1/events` may carry.
pub const MAX_BATCH: usize = 1000;
/// Attribute limits: they bound the memory a profile can take.
pub const MAX_ATTRIBUTES_PER_EVENT: usize = 32;
pub const MAX_ATTRIBUTE_NAME_LEN: usize = 64;
pub const MAX_ATTRIBUTE_TEXT_LEN: usize = 256;
pub const MAX_NAME_LEN: usize = 64;
/// The largest purchase amount taken: far above any real order, far below where sums of
/// many overflow.
pub const MAX_AMOUNT: f64 = 1e9;
/// The largest magnitude of a number attribute.
pub const MAX_ATTRIBUTE_NUMBER: f64 = 1e15;

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: EventId,
    pub customer_id: CustomerId,
    pub at: DateTime<Utc>,
    /// Where it happened.
    pub channel: Option<Channel>,
    pub offer_id: Option<OfferId>,
    pub decision_id: Option<DecisionId>,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A transaction; the amount is in 0..=[`MAX_AMOUNT`] (a free order is 0).
    Purchase { amount: f64 },
    /// The company reached the customer on `Event::channel` (always set for contacts).
    Contact,
    /// The customer's answer to a contact or offer.
    Response { outcome: Outcome },
    /// Any other touch; `name` says which (visit, call, complaint, ...).
    Interaction { name: Option<String> },
    /// Permission for a channel granted or withdrawn.
    Consent { channel: Channel, granted: bool },
    /// Attributes set (`Some`) or removed (`None`, from a JSON `null`).
    Attributes {
        values: Vec<(String, Option<AttrValue>)>,
    },
}

impl EventKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::Purchase { .. } => "purchase",
            EventKind::Contact => "contact",
            EventKind::Response { .. } => "response",
            EventKind::Interaction { .. } => "interaction",
            EventKind::Consent { .. } => "consent",
            EventKind::Attributes { .. } => "attributes",
        }
    }
}

pub const EVENT_TYPES: &str = "purchase, contact, response, interaction, consent, attributes";

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    Clicked,
    Converted,
    Declined,
    Ignored,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Accepted,
        Outcome::Clicked,
        Outcome::Converted,
        Outcome::Declined,
        Outcome::Ignored,
    ];

    /// A positive answer is what response models learn to predict.
    pub fn is_positive(self) -> bool {
        match self {
            Outcome::Accepted | Outcome::Clicked | Outcome::Converted => true,
            Outcome::Declined | Outcome::Ignored => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Clicked => "clicked",
            Outcome::Converted => "converted",
            Outcome::Declined => "declined",
            Outcome::Ignored => "ignored",
        }
    }

    fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// A profile attribute's value. Stored tagged (the profile codec is not self-describing);
/// the JSON view shows the plain value.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum AttrValue {
    Text(String),
    Number(f64),
    Bool(bool),
}

impl AttrValue {
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            AttrValue::Text(s) => serde_json::Value::String(s.clone()),
            AttrValue::Number(n) => serde_json::Number::from_f64(*n)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            AttrValue::Bool(b) => serde_json::Value::Bool(*b),
        }
    }
}

/// The wire shape: every field optional so that a missing one gets a clear message instead
/// of serde's. The same struct reads a batch (`events`) and a single event.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    #[serde(default, deserialize_with = "present")]
    events: Option<Vec<RawEvent>>,
    #[serde(default, deserialize_with = "present")]
    event_id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    customer_id: Option<String>,
    #[serde(default, deserialize_with = "present", rename = "type")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "present")]
    at: Option<String>,
    #[serde(default, deserialize_with = "present")]
    channel: Option<String>,
    #[serde(default, deserialize_with = "present")]
    offer_id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    decision_id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    amount: Option<f64>,
    #[serde(default, deserialize_with = "present")]
    outcome: Option<String>,
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    consent: Option<RawConsent>,
    #[serde(default, deserialize_with = "present")]
    attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

impl RawEvent {
    /// Whether it holds any field of an event (a batch holds only `events`).
    fn has_event_fields(&self) -> bool {
        self.event_id.is_some()
            || self.customer_id.is_some()
            || self.kind.is_some()
            || self.at.is_some()
            || self.channel.is_some()
            || self.offer_id.is_some()
            || self.decision_id.is_some()
            || self.amount.is_some()
            || self.outcome.is_some()
            || self.name.is_some()
            || self.consent.is_some()
            || self.attributes.is_some()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsent {
    #[serde(default, deserialize_with = "present")]
    channel: Option<String>,
    #[serde(default, deserialize_with = "present")]
    granted: Option<bool>,
}

/// Parses the body of `POST /v1/events`. All errors are collected (up to a limit) so that a
/// producer can fix a whole batch at once; any error refuses the whole body.
pub fn parse_body(body: &[u8]) -> Result<Vec<Event>, Invalid> {
    parse_body_until(body, None)
}

/// [`parse_body`] for a receiver whose clock says `now`: an event dated more than
/// `max_ahead` seconds after it is refused (`time_in_future`).
pub fn parse_body_received(body: &[u8], now: i64, max_ahead: i64) -> Result<Vec<Event>, Invalid> {
    parse_body_until(body, Some(now.saturating_add(max_ahead)))
}

/// [`parse_line`] for a receiver, as [`parse_body_received`].
pub fn parse_line_received(line: &[u8], now: i64, max_ahead: i64) -> Result<Event, Invalid> {
    parse_line_until(line, Some(now.saturating_add(max_ahead)))
}

fn parse_body_until(body: &[u8], latest: Option<i64>) -> Result<Vec<Event>, Invalid> {
    let mut raw: RawEvent = read_json(body)?;
    match raw.events.take() {
        Some(batch) => {
            if raw.has_event_fields() {
                return Err(FieldError::new(
                    "ambiguous_body",
                    "events",
                    "a batch body holds only `events`; send single events without it",
                )
                .into());
            }
            if batch.is_empty() {
                return Err(FieldError::new("empty_batch", "events", "the batch is empty").into());
            }
            if batch.len() > MAX_BATCH {
                return Err(FieldError::new(
                    "batch_too_large",
                    "events",
                    format!(
                        "a batch holds at most {MAX_BATCH} events, this one {}",
                        batch.len()
                    ),
                )
                .into());
            }
            let mut events = Vec::with_capacity(batch.len());
            let mut errors = Vec::new();
            for (i, raw) in batch.into_iter().enumerate() {
                match validate(raw, latest) {
                    Ok(e) => events.push(e),
                    Err(errs) => {
                        let prefix = format!("events[{i}]");
                        errors.extend(errs.into_iter().map(|e| e.within(&prefix)));
                        if errors.len() >= 100 {
                            break;
                        }
                    }
                }
            }
            if errors.is_empty() {
                Ok(events)
            } else {
                Err(Invalid(errors))
            }
        }
        None => validate(raw, latest).map(|e| vec![e]).map_err(Invalid),
    }
}

/// Parses one line of a JSON-lines event file (one event per line, no batches).
pub fn parse_line(line: &[u8]) -> Result<Event, Invalid> {
    parse_line_until(line, None)
}

fn parse_line_until(line: &[u8], latest: Option<i64>) -> Result<Event, Invalid> {
    let raw: RawEvent = read_json(line)?;
    if raw.events.is_some() {
        return Err(FieldError::new(
            "unexpected_batch",
            "events",
            "an event file holds one event per line, not batches",
        )
        .into());
    }
    validate(raw, latest).map_err(Invalid)
}

fn id_error(field: &str, e: IdError) -> FieldError {
    FieldError::new(e.code(), field, format!("{field} {e}"))
}

fn required<T>(v: Option<T>, field: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    if v.is_none() {
        errors.push(FieldError::new(
            "missing_field",
            field,
            format!("{field} is required"),
        ));
    }
    v
}

/// The event's time, no later than `latest` when a receiver's clock sets one.
fn event_time(s: &str, latest: Option<i64>) -> Result<DateTime<Utc>, FieldError> {
    let at = parse_time(s, "at")?;
    match latest {
        Some(latest) if at.timestamp() > latest => Err(FieldError::new(
            "time_in_future",
            "at",
            format!(
                "at {s} is ahead of the receiver's clock by more than the allowed skew (latest {}; events.max_clock_skew_secs)",
                rfc3339(latest)
            ),
        )),
        _ => Ok(at),
    }
}

/// The fields that only some event types carry, refused on the others.
fn fields_not_applying(raw: &RawEvent, kind: &str) -> Vec<FieldError> {
    let present = [
        ("amount", raw.amount.is_some(), &["purchase"][..]),
        ("outcome", raw.outcome.is_some(), &["response"][..]),
        ("name", raw.name.is_some(), &["interaction"][..]),
        ("consent", raw.consent.is_some(), &["consent"][..]),
        ("attributes", raw.attributes.is_some(), &["attributes"][..]),
        (
            "offer_id",
            raw.offer_id.is_some(),
            &["purchase", "contact", "response", "interaction"][..],
        ),
        (
            "decision_id",
            raw.decision_id.is_some(),
            &["purchase", "contact", "response", "interaction"][..],
        ),
    ];
    present
        .into_iter()
        .filter(|(_, given, types)| *given && !types.contains(&kind))
        .map(|(field, _, types)| {
            FieldError::new(
                "field_not_allowed",
                field,
                format!(
                    "{field} does not apply to a {kind} event (only to {})",
                    types.join(", ")
                ),
            )
        })
        .collect()
}

fn parse_channel(s: &str, field: &str) -> Result<Channel, FieldError> {
    s.parse::<Channel>()
        .map_err(|e| FieldError::new("unknown_channel", field, e.to_string()))
}

fn validate(raw: RawEvent, latest: Option<i64>) -> Result<Event, Vec<FieldError>> {
    let mut errors = Vec::new();
    if let Some(kind) = raw.kind.as_deref()
        && EVENT_TYPES.split(", ").any(|t| t == kind)
    {
        errors.extend(fields_not_applying(&raw, kind));
    }
    if raw.events.is_some() {
        errors.push(FieldError::new(
            "nested_batch",
            "events",
            "batches do not nest",
        ));
    }
    let event_id = required(raw.event_id, "event_id", &mut errors).and_then(|s| {
        EventId::parse(s)
            .map_err(|e| errors.push(id_error("event_id", e)))
            .ok()
    });
    let customer_id = required(raw.customer_id, "customer_id", &mut errors).and_then(|s| {
        CustomerId::parse(s)
            .map_err(|e| errors.push(id_error("customer_id", e)))
            .ok()
    });
    let at = required(raw.at.as_deref(), "at", &mut errors)
        .and_then(|s| event_time(s, latest).map_err(|e| errors.push(e)).ok());
    let channel = raw.channel.and_then(|s| {
        parse_channel(&s, "channel")
            .map_err(|e| errors.push(e))
            .ok()
    });
    let offer_id = raw.offer_id.and_then(|s| {
        OfferId::parse(s)
            .map_err(|e| errors.push(id_error("offer_id", e)))
            .ok()
    });
    let decision_id = raw.decision_id.and_then(|s| {
        DecisionId::parse(s)
            .map_err(|e| errors.push(id_error("decision_id", e)))
            .ok()
    });
    let kind = required(raw.kind, "type", &mut errors).and_then(|t| match t.as_str() {
        "purchase" => match raw.amount {
            None => {
                errors.push(FieldError::new(
                    "missing_field",
                    "amount",
                    "a purchase needs an amount",
                ));
                None
            }
            Some(a) if !(0.0..=MAX_AMOUNT).contains(&a) => {
                errors.push(FieldError::new(
                    "invalid_amount",
                    "amount",
                    format!("amount must be from 0 (a free order) to {MAX_AMOUNT}, not {a}"),
                ));
                None
            }
            Some(amount) => Some(EventKind::Purchase { amount }),
        },
        "contact" => {
            if channel.is_none() && !errors.iter().any(|e| e.field.as_deref() == Some("channel"))
            {
                errors.push(FieldError::new(
                    "missing_field",
                    "channel",
                    "a contact needs the channel it used",
                ));
            }
            Some(EventKind::Contact)
        }
        "response" => {
            if offer_id.is_none() && decision_id.is_none() {
                errors.push(FieldError::new(
                    "missing_field",
                    "offer_id",
                    "a response names the offer_id or the decision_id it answers",
                ));
            }
            match raw.outcome.as_deref() {
                None => {
                    errors.push(FieldError::new(
                        "missing_field",
                        "outcome",
                        "a response needs an outcome: accepted, clicked, converted, declined or ignored",
                    ));
                    None
                }
                Some(o) => match Outcome::parse(o) {
                    Some(outcome) => Some(EventKind::Response { outcome }),
                    None => {
                        errors.push(FieldError::new(
                            "unknown_outcome",
                            "outcome",
                            format!(
                                "unknown outcome {o:?}: use accepted, clicked, converted, declined or ignored"
                            ),
                        ));
                        None
                    }
                },
            }
        }
        "interaction" => match raw.name {
            Some(n) if n.is_empty() || n.chars().count() > MAX_NAME_LEN => {
                errors.push(FieldError::new(
                    "invalid_name",
                    "name",
                    format!("name must be 1..{MAX_NAME_LEN} characters"),
                ));
                None
            }
            name => Some(EventKind::Interaction { name }),
        },
        "consent" => match raw.consent {
            None => {
                errors.push(FieldError::new(
                    "missing_field",
                    "consent",
                    r#"a consent event needs "consent": {"channel": ..., "granted": true|false}"#,
                ));
                None
            }
            Some(c) => {
                let ch = required(c.channel, "consent.channel", &mut errors).and_then(|s| {
                    parse_channel(&s, "consent.channel")
                        .map_err(|e| errors.push(e))
                        .ok()
                });
                let granted = required(c.granted, "consent.granted", &mut errors);
                match (ch, granted) {
                    (Some(channel), Some(granted)) => Some(EventKind::Consent { channel, granted }),
                    _ => None,
                }
            }
        },
        "attributes" => match raw.attributes {
            None => {
                errors.push(FieldError::new(
                    "missing_field",
                    "attributes",
                    "an attributes event needs an attributes object",
                ));
                None
            }
            Some(map) => attributes(map, &mut errors).map(|values| EventKind::Attributes { values }),
        },
        other => {
            errors.push(FieldError::new(
                "unknown_type",
                "type",
                format!("unknown event type {other:?}: use one of {EVENT_TYPES}"),
            ));
            None
        }
    });
    match (event_id, customer_id, at, kind) {
        (Some(event_id), Some(customer_id), Some(at), Some(kind)) if errors.is_empty() => {
            Ok(Event {
                event_id,
                customer_id,
                at,
                channel,
                offer_id,
                decision_id,
                kind,
            })
        }
        _ => Err(errors),
    }
}

fn attributes(
    map: serde_json::Map<String, serde_json::Value>,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<(String, Option<AttrValue>)>> {
    if map.is_empty() {
        errors.push(FieldError::new(
            "empty_attributes",
            "attributes",
            "attributes must set or remove at least one attribute",
        ));
        return None;
    }
    if map.len() > MAX_ATTRIBUTES_PER_EVENT {
        errors.push(FieldError::new(
            "too_many_attributes",
            "attributes",
            format!("at most {MAX_ATTRIBUTES_PER_EVENT} attributes per event"),
        ));
        return None;
    }
    let before = errors.len();
    let mut values = Vec::with_capacity(map.len());
    for (name, v) in map {
        let field = format!("attributes.{name}");
        let name_ok = !name.is_empty()
            && name.len() <= MAX_ATTRIBUTE_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if !name_ok {
            errors.push(FieldError::new(
                "invalid_attribute_name",
                field,
                format!(
                    "attribute names are 1..{MAX_ATTRIBUTE_NAME_LEN} characters of A-Z a-z 0-9 _ -"
                ),
            ));
            continue;
        }
        let value = match v {
            serde_json::Value::Null => None,
            _ if name == "timezone"
                && !matches!(v, serde_json::Value::String(_) | serde_json::Value::Null) =>
            {
                errors.push(FieldError::new(
                    "unknown_timezone",
                    field,
                    "timezone is an IANA time zone name such as Europe/London (or null to remove it)",
                ));
                continue;
            }
            serde_json::Value::Bool(b) => Some(AttrValue::Bool(b)),
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(x) if x.abs() <= MAX_ATTRIBUTE_NUMBER => Some(AttrValue::Number(x)),
                _ => {
                    errors.push(FieldError::new(
                        "invalid_attribute",
                        field,
                        format!("numbers must be within ±{MAX_ATTRIBUTE_NUMBER}"),
                    ));
                    continue;
                }
            },
            serde_json::Value::String(s) => {
                if s.chars().count() > MAX_ATTRIBUTE_TEXT_LEN {
                    errors.push(FieldError::new(
                        "invalid_attribute",
                        field,
                        format!("text attributes are at most {MAX_ATTRIBUTE_TEXT_LEN} characters"),
                    ));
                    continue;
                }
                if name == "timezone" && s.parse::<chrono_tz::Tz>().is_err() {
                    errors.push(FieldError::new(
                        "unknown_timezone",
                        field,
                        format!("{s:?} is not an IANA time zone such as Europe/London"),
                    ));
                    continue;
                }
                Some(AttrValue::Text(s))
            }
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                errors.push(FieldError::new(
                    "invalid_attribute",
                    field,
                    "attribute values are strings, numbers, booleans or null (to remove)",
                ));
                continue;
            }
        };
        values.push((name, value));
    }
    (errors.len() == before).then_some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(json: &str) -> Result<Event, Invalid> {
        parse_body(json.as_bytes()).map(|mut v| v.remove(0))
    }

    fn first_field(r: Result<impl std::fmt::Debug, Invalid>) -> (String, &'static str) {
        let e = r.unwrap_err();
        let f = e.first();
        (f.field.clone().unwrap_or_default(), f.code)
    }

    const OK: &str = r#"{"event_id":"e1","customer_id":"c-1","type":"purchase","at":"2026-11-22T10:15:00Z","amount":42.5,"channel":"web"}"#;

    #[test]
    fn a_valid_purchase_parses_into_an_event() {
        let e = one(OK).unwrap();
        assert_eq!(e.kind, EventKind::Purchase { amount: 42.5 });
        assert_eq!(e.channel, Some(Channel::Web));
        assert_eq!(e.at.to_rfc3339(), "2026-11-22T10:15:00+00:00");
    }

    #[test]
    fn each_invalid_field_is_named_in_the_error() {
        let cases = [
            (
                OK.replace(r#""event_id":"e1","#, ""),
                "event_id",
                "missing_field",
            ),
            (OK.replace("c-1", "c 1"), "customer_id", "bad_character"),
            (OK.replace("purchase", "purchas"), "type", "unknown_type"),
            (
                OK.replace("2026-11-22T10:15:00Z", "yesterday"),
                "at",
                "invalid_time",
            ),
            (OK.replace("42.5", "-3"), "amount", "invalid_amount"),
            (OK.replace("42.5", "\"42\""), "amount", "wrong_type"),
            (
                OK.replace("\"web\"", "\"fax\""),
                "channel",
                "unknown_channel",
            ),
            (
                OK.replace(r#","amount":42.5"#, ""),
                "amount",
                "missing_field",
            ),
        ];
        for (json, field, code) in cases {
            assert_eq!(first_field(one(&json)), (field.to_owned(), code), "{json}");
        }
    }

    #[test]
    fn batch_errors_name_the_event_index() {
        // (A free order, amount 0, is a purchase: API.md 1.1.)
        let bad = OK.replace("42.5", "-1");
        let body = format!(r#"{{"events":[{OK},{bad}]}}"#);
        assert_eq!(
            first_field(parse_body(body.as_bytes())),
            ("events[1].amount".to_owned(), "invalid_amount")
        );
    }

    /// Strict input: one JSON value, no unknown fields, no field of another event type,
    /// amounts and numbers bounded, times between 1900 and 2200 and not ahead of the
    /// receiver's clock.
    #[test]
    fn only_what_an_event_type_carries_is_taken() {
        let cases = [
            (
                OK.replace(r#""channel":"web""#, r#""chanel":"web""#),
                "chanel",
                "unknown_field",
            ),
            (
                OK.replace(r#""amount":42.5"#, r#""amount":42.5,"outcome":"accepted""#),
                "outcome",
                "field_not_allowed",
            ),
            (OK.replace("42.5", "1.7e308"), "amount", "invalid_amount"),
            (
                OK.replace("42.5", "1000000000.5"),
                "amount",
                "invalid_amount",
            ),
            (
                OK.replace("2026-11-22T10:15:00Z", "9999-12-31T00:00:00Z"),
                "at",
                "time_out_of_range",
            ),
            (
                OK.replace("2026-11-22T10:15:00Z", "1899-12-31T23:00:00Z"),
                "at",
                "time_out_of_range",
            ),
        ];
        for (json, field, code) in cases {
            assert_eq!(first_field(one(&json)), (field.to_owned(), code), "{json}");
        }
        let consent = r#"{"event_id":"e","customer_id":"c","type":"consent","at":"2026-01-01T00:00:00Z","consent":{"channel":"sms","granted":true},"offer_id":"x"}"#;
        assert_eq!(
            first_field(one(consent)),
            ("offer_id".to_owned(), "field_not_allowed")
        );
        let inner = consent.replace(r#""granted":true}"#, r#""granted":true,"until":1}"#);
        assert_eq!(
            first_field(one(&inner)),
            ("consent.until".to_owned(), "unknown_field")
        );
        let batch = format!(r#"{{"events":[{}],"source":"x"}}"#, OK);
        assert_eq!(
            first_field(parse_body(batch.as_bytes())),
            ("source".to_owned(), "unknown_field")
        );
        // Two events as JSON lines, or anything after the event: refused, not half taken.
        for body in [format!("{OK}\n{OK}"), format!("{OK} trailing")] {
            assert_eq!(
                parse_body(body.as_bytes()).unwrap_err().first().code,
                "trailing_data"
            );
        }
        let free = one(&OK.replace("42.5", "0")).unwrap();
        assert_eq!(free.kind, EventKind::Purchase { amount: 0.0 });
        // A receiver refuses what is dated past its clock and the skew.
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:10:00Z")
            .unwrap()
            .timestamp();
        assert!(parse_body_received(OK.as_bytes(), now, 300).is_ok());
        let e = parse_body_received(OK.as_bytes(), now, 299).unwrap_err();
        assert_eq!(
            (e.first().field.as_deref(), e.first().code),
            (Some("at"), "time_in_future")
        );
        let batch = format!(r#"{{"events":[{OK}]}}"#);
        let e = parse_body_received(batch.as_bytes(), now, 0).unwrap_err();
        assert_eq!(e.first().field.as_deref(), Some("events[0].at"));
        assert!(parse_line_received(OK.as_bytes(), now, 0).is_err());
    }

    #[test]
    fn batches_are_limited_to_a_thousand_events() {
        let body = format!(r#"{{"events":[{}]}}"#, vec![OK; 1001].join(","));
        assert_eq!(
            first_field(parse_body(body.as_bytes())),
            ("events".to_owned(), "batch_too_large")
        );
        let body = format!(r#"{{"events":[{}]}}"#, vec![OK; 1000].join(","));
        assert_eq!(parse_body(body.as_bytes()).unwrap().len(), 1000);
    }

    #[test]
    fn consent_and_attribute_events_check_their_inner_fields() {
        let c = r#"{"event_id":"e","customer_id":"c","type":"consent","at":"2026-01-01T00:00:00Z","consent":{"channel":"sms"}}"#;
        assert_eq!(
            first_field(one(c)),
            ("consent.granted".to_owned(), "missing_field")
        );
        let a = r#"{"event_id":"e","customer_id":"c","type":"attributes","at":"2026-01-01T00:00:00Z","attributes":{"timezone":"Mars/Olympus"}}"#;
        assert_eq!(
            first_field(one(a)),
            ("attributes.timezone".to_owned(), "unknown_timezone")
        );
        let a = a.replace("Mars/Olympus", "Europe/London");
        match one(&a).unwrap().kind {
            EventKind::Attributes { values } => assert_eq!(
                values,
                vec![(
                    "timezone".to_owned(),
                    Some(AttrValue::Text("Europe/London".into()))
                )]
            ),
            EventKind::Purchase { .. }
            | EventKind::Contact
            | EventKind::Response { .. }
            | EventKind::Interaction { .. }
            | EventKind::Consent { .. } => panic!("not an attributes event"),
        }
    }

    #[test]
    fn a_response_needs_an_outcome_and_what_it_answers() {
        let r = r#"{"event_id":"e","customer_id":"c","type":"response","at":"2026-01-01T00:00:00Z","offer_id":"o","outcome":"maybe"}"#;
        assert_eq!(
            first_field(one(r)),
            ("outcome".to_owned(), "unknown_outcome")
        );
        let r = r#"{"event_id":"e","customer_id":"c","type":"response","at":"2026-01-01T00:00:00Z","outcome":"accepted"}"#;
        assert_eq!(
            first_field(one(r)),
            ("offer_id".to_owned(), "missing_field")
        );
    }

    #[test]
    fn malformed_json_is_a_body_error() {
        let e = parse_body(b"{\"event_id\":").unwrap_err();
        assert_eq!(e.first().code, "malformed_json");
        assert_eq!(e.first().field, None);
    }
}
