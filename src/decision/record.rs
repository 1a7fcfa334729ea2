//! The decision log's record (format 2): what the service writes for every decision, and
//! how it is read back. Off-policy evaluation and training read records through this module
//! alone; the writers that put them in a file or a Redis stream are [`super::log`].
//!
//! The record is compact: candidates and actions are arrays, not objects. Its bytes are most
//! of what logging costs: writing them into the page cache took about a tenth of the
//! service's CPU at saturation when records were twice as long.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::answer::Decision;
use super::json::Json;
use super::request::{ContextValue, DecisionRequest};

/// Room for a record: they are about 1.3 KB with the shipped catalog (decision load test).
pub const RECORD_CAPACITY: usize = 2048;

/// The record format this version writes, in every record's `format` field.
pub const FORMAT: u32 = 2;

/// One line of the log (format 2).
///
/// Candidates and actions are JSON arrays, `[offer_id, channel, send_after_s, propensity,
/// value, priority, probability]` ([`ScoredRecord`]), not objects: the field names were over
/// half of a record's bytes, and every byte is written, copied to the file and read back by
/// evaluation. `propensity`, `value` and `priority` are written to single precision (the
/// shortest text that reads back as the same `f32`: about seven significant digits, far
/// finer than any model's accuracy); `probability` in full, since
/// evaluation divides by it. Format 1 wrote objects with an RFC 3339 `send_at` and full
/// precision, and no `format` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub format: u32,
    pub decision_id: String,
    pub customer_id: String,
    pub at: String,
    pub model_version: String,
    /// Which model set decided (`champion` in records written before there were arms).
    #[serde(default)]
    pub arm: super::answer::ModelArm,
    pub catalog_version: String,
    pub degraded: bool,
    pub policy: PolicyRecord,
    pub request: RequestRecord,
    /// What the decision knew of the customer.
    pub features: serde_json::Value,
    /// Every candidate scored, with the probability of being chosen first.
    pub candidates: Vec<ScoredRecord>,
    /// The actions in rank order (rank 1 first), each with the probability the policy chose
    /// it at its rank.
    pub actions: Vec<ScoredRecord>,
}

/// The policy that chose, as [`super::policy::Policy::record`] wrote it: its kind
/// (`epsilon_greedy`, ...) and its parameters (`epsilon`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub kind: String,
    #[serde(flatten)]
    pub parameters: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub touchpoint: Option<String>,
    pub channels: Option<Vec<String>>,
    pub placement: Option<String>,
    pub limit: usize,
    pub context: serde_json::Map<String, serde_json::Value>,
}

/// A candidate or an action, written as the array `[offer_id, channel, send_after_s,
/// propensity, value, priority, probability]` (serde reads a struct from an array in field
/// order).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ScoredRecord {
    pub offer_id: String,
    pub channel: String,
    /// When it would be sent: seconds after the decision's `at` (0 for inbound, now).
    pub send_after_s: i64,
    /// The scores, `null` from a policy that does not score (the simulator's uniform
    /// logging policy).
    pub propensity: Option<f64>,
    pub value: Option<f64>,
    pub priority: Option<f64>,
    pub probability: f64,
}

impl Serialize for ScoredRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(7)?;
        t.serialize_element(&self.offer_id)?;
        t.serialize_element(&self.channel)?;
        t.serialize_element(&self.send_after_s)?;
        t.serialize_element(&self.propensity)?;
        t.serialize_element(&self.value)?;
        t.serialize_element(&self.priority)?;
        t.serialize_element(&self.probability)?;
        t.end()
    }
}

impl DecisionRecord {
    /// Writes the record of a decision as one JSON object (no newline), in the shape
    /// [`DecisionRecord`] reads, straight from the decision and its request.
    ///
    /// Written by hand (see `decision::json`) rather than through serde: this runs for every
    /// decision, and escaping was most of its work (callgrind, the `decide` bench's
    /// service path: 33,700 instructions a record through serde, 13,000 so). The unit test
    /// holds the output to what serde writes for [`DecisionRecord`].
    pub fn write(decision: &Decision, request: &DecisionRequest, out: &mut Vec<u8>) {
        let d = &decision.log;
        let mut w = Json(out);
        w.decision_head(decision);
        w.raw(b",\"format\":");
        w.usize(FORMAT as usize);
        w.raw(b",\"catalog_version\":");
        w.str(&d.catalog_version);
        w.degraded(decision.degraded);
        w.raw(b",\"policy\":");
        if d.policy.is_empty() {
            w.raw(b"null");
        } else {
            w.raw(d.policy.as_bytes());
        }
        w.raw(b",\"request\":{\"touchpoint\":");
        match request.touchpoint {
            Some(c) => w.plain(c.as_str()),
            None => w.raw(b"null"),
        }
        w.raw(b",\"channels\":");
        match &request.channels {
            Some(list) => {
                w.raw(b"[");
                for (i, c) in list.iter().enumerate() {
                    w.comma(i);
                    w.plain(c.as_str());
                }
                w.raw(b"]");
            }
            None => w.raw(b"null"),
        }
        w.raw(b",\"placement\":");
        match &request.placement {
            Some(p) => w.str(p),
            None => w.raw(b"null"),
        }
        w.raw(b",\"limit\":");
        w.usize(request.limit);
        w.raw(b",\"context\":{");
        for (i, (k, v)) in request.context.iter().enumerate() {
            w.comma(i);
            w.str(k);
            w.raw(b":");
            match v {
                ContextValue::Text(t) => w.str(t),
                ContextValue::Number(n) => w.f64(*n),
                ContextValue::Bool(b) => w.raw(if *b { b"true" } else { b"false" }),
            }
        }
        w.raw(b"}},\"features\":{\"segment\":");
        match d.segment {
            Some(s) => w.usize(s),
            None => w.raw(b"null"),
        }
        w.raw(b",\"value\":");
        match &d.value {
            Some(v) => {
                w.raw(b"{\"p_alive\":");
                w.f64(v.p_alive);
                w.raw(b",\"expected_purchases_90d\":");
                w.f64(v.expected_purchases_90d);
                w.raw(b",\"expected_spend_per_purchase\":");
                w.f64(v.expected_spend_per_purchase);
                w.raw(b",\"clv_365d\":");
                w.f64(v.clv_365d);
                w.raw(b"}");
            }
            None => w.raw(b"null"),
        }
        w.raw(b"},\"candidates\":[");
        for (i, c) in d.candidates.iter().enumerate() {
            w.comma(i);
            let scores = [c.propensity, c.value, c.priority, c.probability];
            w.scored_array(c.offer_id.as_str(), c.channel, c.send_at - d.at, scores);
        }
        w.raw(b"],\"actions\":[");
        for (i, a) in decision.actions.iter().enumerate() {
            w.comma(i);
            let scores = [a.propensity, a.value, a.priority, a.probability];
            w.scored_array(
                a.offer_id.as_str(),
                a.channel,
                a.send_at_unix - d.at,
                scores,
            );
        }
        w.raw(b"]}");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read the decision log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: not a decision record of format {FORMAT}: {source}")]
    Parse {
        path: PathBuf,
        line: u64,
        source: serde_json::Error,
    },
    #[error(
        "{path}, line {line}: a decision record of format {found}; this version reads format {FORMAT}"
    )]
    Format {
        path: PathBuf,
        line: u64,
        found: u32,
    },
}

/// The records of a decision log file (JSON lines), in order. Empty lines are passed over; a
/// line that is not a record of this format is an error naming it.
pub struct Records<R> {
    path: PathBuf,
    reader: R,
    line: u64,
    buf: Vec<u8>,
}

impl Records<std::io::BufReader<std::fs::File>> {
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let file = std::fs::File::open(path).map_err(|source| RecordError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::new(
            path,
            std::io::BufReader::with_capacity(1 << 20, file),
        ))
    }
}

impl<R: BufRead> Records<R> {
    /// Records read from `reader`; `path` names it in errors.
    pub fn new(path: &Path, reader: R) -> Self {
        Self {
            path: path.to_owned(),
            reader,
            line: 0,
            buf: Vec::with_capacity(RECORD_CAPACITY),
        }
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.line
    }
}

impl<R: BufRead> Iterator for Records<R> {
    type Item = Result<DecisionRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => self.line += 1,
                Err(source) => {
                    return Some(Err(RecordError::Io {
                        path: self.path.clone(),
                        source,
                    }));
                }
            }
            let text = self.buf.trim_ascii();
            if text.is_empty() {
                continue;
            }
            #[derive(Deserialize)]
            struct Format {
                format: Option<u32>,
            }
            let record = serde_json::from_slice::<DecisionRecord>(text).map_err(|source| {
                match serde_json::from_slice::<Format>(text) {
                    Ok(Format {
                        format: Some(found),
                    }) if found != FORMAT => RecordError::Format {
                        path: self.path.clone(),
                        line: self.line,
                        found,
                    },
                    _ => RecordError::Parse {
                        path: self.path.clone(),
                        line: self.line,
                        source,
                    },
                }
            });
            return Some(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::answer::{Action, LogDetails, LoggedCandidate};
    use crate::profile::{Channel, CustomerId, DecisionId, OfferId};

    fn candidate(offer: &str, channel: Channel, send_at: i64, x: f64) -> LoggedCandidate {
        LoggedCandidate {
            offer_id: OfferId::parse(offer).unwrap(),
            channel,
            send_at,
            propensity: x,
            value: 10.0 * x,
            priority: x * x,
            probability: 1.0 / 3.0,
        }
    }

    /// The hand-written lists read back exactly as the typed record serde would write: keys,
    /// order of ranks, numbers, and strings that do need escaping.
    #[test]
    fn a_record_is_the_typed_record_as_json() {
        let request = crate::decision::request::parse_request(
            br#"{"customer_id":"c-1","touchpoint":"web","channels":["email","sms"],
                 "placement":"hero \"1\"","limit":2,
                 "context":{"device":"mobile","n":3.5,"ok":true,"k":"v\u0001"}}"#,
        )
        .unwrap();
        let candidates = vec![
            candidate("gold-card", Channel::Web, 1_790_000_000, 0.25),
            candidate("gold-card", Channel::Email, 1_790_003_600, 0.125),
            candidate("loan-2026.b", Channel::Email, 1_790_003_600, 1e-7),
            candidate(
                "mortgage-switch",
                Channel::Sms,
                1_790_007_200,
                0.034666553699773825,
            ),
        ];
        let rfc3339 = |t: i64| {
            chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let action = |rank, c: &LoggedCandidate| Action {
            rank,
            offer_id: c.offer_id.clone(),
            channel: c.channel,
            send_at: rfc3339(c.send_at),
            send_at_unix: c.send_at,
            planned: false,
            counts_as_contact: false,
            propensity: c.propensity,
            value: c.value,
            priority: c.priority,
            probability: c.probability,
            explanation: None,
        };
        let value = crate::model::value::ValueFigures {
            p_alive: 0.71,
            expected_purchases_90d: 0.84,
            expected_spend_per_purchase: 38.2,
            clv_365d: f64::NAN,
        };
        let decision = Decision {
            decision_id: DecisionId::parse("d-1").unwrap(),
            customer_id: CustomerId::parse("c-1").unwrap(),
            at: rfc3339(1_790_000_000),
            model_version: "m-1".into(),
            arm: crate::decision::answer::ModelArm::Challenger,
            degraded: false,
            actions: vec![action(1, &candidates[0]), action(2, &candidates[2])],
            suppressed: None,
            log: LogDetails {
                at: 1_790_000_000,
                candidates: candidates.clone(),
                segment: Some(2),
                value: Some(value),
                catalog_version: "cat-1".into(),
                policy: crate::decision::policy::Policy::record(
                    &crate::decision::policy::EpsilonGreedy::new(0.05),
                ),
            },
        };
        let mut out = Vec::new();
        DecisionRecord::write(&decision, &request, &mut out);
        let written: serde_json::Value = serde_json::from_slice(&out).unwrap();

        // Scores to single precision, as the shortest text that reads back as the same f32
        // (Rust's `Display` for f32 is that text too); the probability in full.
        let single = |x: f64| (x as f32).to_string().parse::<f64>().unwrap();
        let record = |c: &LoggedCandidate| ScoredRecord {
            offer_id: c.offer_id.to_string(),
            channel: c.channel.as_str().into(),
            send_after_s: c.send_at - 1_790_000_000,
            propensity: Some(single(c.propensity)),
            value: Some(single(c.value)),
            priority: Some(single(c.priority)),
            probability: c.probability,
        };
        let expected = DecisionRecord {
            format: 2,
            decision_id: "d-1".into(),
            customer_id: "c-1".into(),
            at: rfc3339(1_790_000_000),
            model_version: "m-1".into(),
            arm: crate::decision::answer::ModelArm::Challenger,
            catalog_version: "cat-1".into(),
            degraded: false,
            policy: PolicyRecord {
                kind: "epsilon_greedy".into(),
                parameters: serde_json::json!({"epsilon": 0.05})
                    .as_object()
                    .unwrap()
                    .clone(),
            },
            request: RequestRecord {
                touchpoint: Some("web".into()),
                channels: Some(vec!["email".into(), "sms".into()]),
                placement: Some("hero \"1\"".into()),
                limit: 2,
                context:
                    serde_json::json!({"device": "mobile", "n": 3.5, "ok": true, "k": "v\u{1}"})
                        .as_object()
                        .unwrap()
                        .clone(),
            },
            // Built from the type, so a new value figure the writer leaves out fails here.
            features: serde_json::json!({"segment": 2, "value": value}),
            candidates: candidates.iter().map(record).collect(),
            actions: vec![record(&candidates[0]), record(&candidates[2])],
        };
        assert_eq!(written, serde_json::to_value(&expected).unwrap());
        let typed: DecisionRecord = serde_json::from_slice(&out).unwrap();
        assert_eq!(typed, expected);
        assert_eq!(typed.request.placement.as_deref(), Some("hero \"1\""));
    }
}
