//! The stored form of a profile: one format byte, then the profile in postcard (compact
//! varints, no field names). A profile is one value in the store, so one customer's update
//! is one atomic write; the format byte lets a later version read older profiles.

use super::state::Profile;

const FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("stored profile is empty")]
    Empty,
    #[error("stored profile has format {0}, this version reads format {FORMAT_V1}")]
    UnknownFormat(u8),
    #[error("stored profile does not decode: {0}")]
    Corrupt(#[from] postcard::Error),
}

pub fn encode(profile: &Profile) -> Vec<u8> {
    encode_with_prefix(profile, &[])
}

/// Encodes after `prefix` (a store's version stamp), saving a copy of the whole value.
pub fn encode_with_prefix(profile: &Profile, prefix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(prefix);
    out.push(FORMAT_V1);
    // Serialising plain owned data into a Vec cannot fail.
    postcard::to_io(profile, &mut out).expect("profile encodes");
    out
}

pub fn decode(bytes: &[u8]) -> Result<Profile, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT_V1, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((&other, _)) => Err(CodecError::UnknownFormat(other)),
    }
}

/// Decodes what a decision reads: everything but the two lists at the end of the encoding,
/// the recent events (for the agent screen) and the de-duplication memory, which are left
/// empty. A decision decodes a profile on every request, and those two lists are a third
/// of the work (perf, decision load test).
pub fn decode_for_decision(bytes: &[u8]) -> Result<Profile, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT_V1, rest)) => Ok(postcard::from_bytes::<DecisionPart>(rest)?.0),
        Some((&other, _)) => Err(CodecError::UnknownFormat(other)),
    }
}

/// A profile decoded up to `recent`. postcard writes a struct's fields in declaration order
/// with nothing between them, so reading the leading fields and stopping reads a prefix
/// of the encoding; [`Profile`]'s fields up to `offers` must stay in this order and
/// `recent` and `seen` last (the round-trip test checks).
struct DecisionPart(Profile);

impl<'de> serde::Deserialize<'de> for DecisionPart {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Leading;
        impl<'de> serde::de::Visitor<'de> for Leading {
            type Value = DecisionPart;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a profile")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<DecisionPart, A::Error> {
                let mut read = 0;
                macro_rules! next {
                    () => {{
                        read += 1;
                        seq.next_element()?.ok_or_else(|| {
                            serde::de::Error::invalid_length(read - 1, &"a profile")
                        })?
                    }};
                }
                Ok(DecisionPart(Profile {
                    first_seen: next!(),
                    last_seen: next!(),
                    events: next!(),
                    attributes: next!(),
                    consents: next!(),
                    purchases: next!(),
                    channels: next!(),
                    engagement: next!(),
                    contacts: next!(),
                    responses: next!(),
                    offers: next!(),
                    recent: Default::default(),
                    seen: Default::default(),
                }))
            }
        }
        const FIELDS: &[&str] = &[
            "first_seen",
            "last_seen",
            "events",
            "attributes",
            "consents",
            "purchases",
            "channels",
            "engagement",
            "contacts",
            "responses",
            "offers",
            "recent",
            "seen",
        ];
        d.deserialize_struct("Profile", FIELDS, Leading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_round_trips_and_a_foreign_format_is_refused() {
        let p = Profile {
            events: 7,
            engagement: vec![1; 168],
            ..Profile::default()
        };
        assert_eq!(decode(&encode(&p)).unwrap(), p);
        assert!(matches!(decode(&[9, 0]), Err(CodecError::UnknownFormat(9))));
        assert!(matches!(decode(&[]), Err(CodecError::Empty)));
    }

    #[test]
    fn a_decision_reads_everything_but_the_recent_events_and_the_dedup_memory() {
        use crate::profile::{Event, ProfileLimits};
        let body = serde_json::json!({"events": [
            {"event_id": "a", "customer_id": "c-1", "type": "attributes",
             "at": "2026-01-05T09:00:00Z", "attributes": {"tier": "gold", "timezone": "Europe/Paris"}},
            {"event_id": "b", "customer_id": "c-1", "type": "consent",
             "at": "2026-01-05T09:01:00Z", "consent": {"channel": "email", "granted": true}},
            {"event_id": "c", "customer_id": "c-1", "type": "purchase",
             "at": "2026-02-05T19:00:00Z", "channel": "web", "amount": 42.5},
            {"event_id": "d", "customer_id": "c-1", "type": "contact",
             "at": "2026-03-05T10:00:00Z", "channel": "email", "offer_id": "gold-card"},
            {"event_id": "e", "customer_id": "c-1", "type": "response",
             "at": "2026-03-05T18:00:00Z", "offer_id": "gold-card", "outcome": "declined"},
        ]});
        let events: Vec<Event> =
            crate::profile::event::parse_body(body.to_string().as_bytes()).unwrap();
        let limits = ProfileLimits::default();
        let mut full = Profile::default();
        for e in &events {
            full.apply(e, &limits, 1_775_000_000);
        }
        assert!(!full.recent.is_empty() && !full.seen.is_empty());
        assert!(!full.contacts.is_empty() && !full.responses.is_empty() && !full.offers.is_empty());
        let for_decision = decode_for_decision(&encode(&full)).unwrap();
        let mut expected = full.clone();
        expected.recent.clear();
        expected.seen.clear();
        assert_eq!(for_decision, expected);
        assert!(matches!(
            decode_for_decision(&encode(&full)[..6]),
            Err(CodecError::Corrupt(_))
        ));
    }
}
