//! The stored form of a profile: one format byte, then the profile in postcard (compact
//! varints, no field names). A profile is one value in the store, so one customer's update
//! is one atomic write; the format byte lets a later version read older profiles.
//!
//! Format 4 (written now, [`super::compact`]) writes times as differences, each offer id
//! once, ids front-coded, only the channels in use, and the de-duplication memory as 48-bit
//! fingerprints (or the place of the recent event with that id). Formats 1 to 3 are still
//! read (their 64-bit hashes narrowed to today's fingerprints); format 3 stored the memory as
//! runs of the event ids applied in one minute, each id hash its 8 bytes, the minute once a
//! run.
//!
//! Format 5 is format 4 compressed against a store-wide dictionary
//! ([`super::dictionary`]): the dictionary's name (4 bytes), the length of the format-4
//! bytes (a varint), then the LZ4 block. A store writes it once it has a dictionary, and
//! format 4 without one (or when compressing would not save a byte).

use std::collections::VecDeque;

use serde::Deserialize;

use super::Channel;
use super::dictionary::{Dictionaries, Dictionary};
use super::event::Outcome;
use super::ids::OfferId;
use super::state::{ContactRecord, Profile, ResponseRecord, SeenEvent};

const FORMAT_V1: u8 = 1;
/// Format 1 followed by the profile's open exposures (a postcard list).
const FORMAT_V2: u8 = 2;
/// The profile with an empty `seen`, then the de-duplication memory as [`SeenRun`]s, then
/// the open exposures.
const FORMAT_V3: u8 = 3;
/// [`super::compact`]'s head and tail.
const FORMAT_V4: u8 = 4;
/// Format 4's bytes compressed against a dictionary.
const FORMAT_V5: u8 = 5;

/// A stored profile decompresses to at most this many bytes (the limits' largest profile is
/// well under a megabyte): a damaged length is refused before anything is allocated.
const MAX_DECOMPRESSED: usize = 16 << 20;

/// Event ids applied in one minute, in the order applied (format 3).
#[derive(serde::Serialize, Deserialize)]
struct SeenRun {
    minute: u32,
    hashes: Vec<[u8; 8]>,
}

#[cfg(test)]
fn runs_of(seen: &VecDeque<SeenEvent>) -> Vec<SeenRun> {
    let mut runs: Vec<SeenRun> = Vec::new();
    for s in seen {
        match runs.last_mut() {
            Some(run) if run.minute == s.applied_minute => run.hashes.push(s.id_hash.to_le_bytes()),
            _ => runs.push(SeenRun {
                minute: s.applied_minute,
                hashes: vec![s.id_hash.to_le_bytes()],
            }),
        }
    }
    runs
}

fn seen_of(runs: Vec<SeenRun>) -> VecDeque<SeenEvent> {
    let mut seen = VecDeque::with_capacity(runs.iter().map(|r| r.hashes.len()).sum());
    for run in runs {
        seen.extend(run.hashes.into_iter().map(|h| SeenEvent {
            id_hash: u64::from_le_bytes(h),
            applied_minute: run.minute,
        }));
    }
    seen
}

/// Counts what postcard writes (the encoded length of a value, without keeping it).
#[cfg(test)]
struct Counter(usize);

#[cfg(test)]
impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("stored profile is empty")]
    Empty,
    #[error("stored profile has format {0}, this version reads formats {FORMAT_V1} to {FORMAT_V5}")]
    UnknownFormat(u8),
    #[error("stored profile is compressed with dictionary {0:08x}, which the store does not have")]
    UnknownDictionary(u32),
    #[error("stored profile does not decode: {0}")]
    Corrupt(#[from] postcard::Error),
    #[error("stored profile does not decode: {0} is out of range")]
    Invalid(&'static str),
}

pub fn encode(profile: &Profile) -> Vec<u8> {
    encode_with_prefix(profile, &[], None)
}

/// Encodes after `prefix` (a store's version stamp), saving a copy of the whole value; with
/// a dictionary, compressed (format 5) when that is smaller.
pub fn encode_with_prefix(
    profile: &Profile,
    prefix: &[u8],
    dictionary: Option<&Dictionary>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(prefix);
    out.push(FORMAT_V4);
    super::compact::encode_into(profile, &mut out);
    let Some(dictionary) = dictionary else {
        return out;
    };
    let raw = &out[prefix.len() + 1..];
    let packed = dictionary.compress(raw);
    let mut compressed = Vec::with_capacity(prefix.len() + 10 + packed.len());
    compressed.extend_from_slice(prefix);
    compressed.push(FORMAT_V5);
    compressed.extend_from_slice(&dictionary.id().to_le_bytes());
    postcard::to_io(&(raw.len() as u32), &mut compressed).expect("a length encodes");
    compressed.extend_from_slice(&packed);
    if compressed.len() < out.len() {
        compressed
    } else {
        out
    }
}

/// The dictionary a stored profile (after the store's version stamp) is compressed with.
pub fn dictionary_of(bytes: &[u8]) -> Option<u32> {
    match bytes.split_first() {
        Some((&FORMAT_V5, rest)) => Some(u32::from_le_bytes(rest.get(..4)?.try_into().ok()?)),
        Some(_) | None => None,
    }
}

/// Format 5's format-4 bytes.
fn decompressed(rest: &[u8], dictionaries: &Dictionaries) -> Result<Vec<u8>, CodecError> {
    let invalid = || CodecError::Invalid("a compressed profile");
    let (id, rest) = rest.split_at_checked(4).ok_or_else(invalid)?;
    let id = u32::from_le_bytes(id.try_into().expect("4 bytes"));
    let dictionary = dictionaries
        .get(id)
        .ok_or(CodecError::UnknownDictionary(id))?;
    let (len, packed): (u32, _) = postcard::take_from_bytes(rest)?;
    if len as usize > MAX_DECOMPRESSED {
        return Err(invalid());
    }
    dictionary
        .decompress(packed, len as usize)
        .ok_or_else(invalid)
}

/// Format 3, as earlier versions wrote it (the tests read it back).
#[cfg(test)]
fn encode_v3(profile: &Profile) -> Vec<u8> {
    let mut out = vec![FORMAT_V3];
    // `seen` is the profile's last field: its encoding, the tail, is cut off and an empty
    // list put in its place.
    postcard::to_io(profile, &mut out).expect("profile encodes");
    let seen = postcard::to_io(&profile.seen, Counter(0))
        .expect("seen encodes")
        .0;
    out.truncate(out.len() - seen);
    out.push(0); // an empty list
    postcard::to_io(&runs_of(&profile.seen), &mut out).expect("seen encodes");
    postcard::to_io(&profile.exposures, &mut out).expect("exposures encode");
    out
}

pub fn decode(bytes: &[u8]) -> Result<Profile, CodecError> {
    decode_with(bytes, &NO_DICTIONARIES)
}

static NO_DICTIONARIES: Dictionaries = Dictionaries::new();

/// Decodes a profile that may be compressed with one of `dictionaries`.
pub fn decode_with(bytes: &[u8], dictionaries: &Dictionaries) -> Result<Profile, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT_V1, rest)) => Ok(narrowed(postcard::from_bytes(rest)?)),
        Some((&FORMAT_V2, rest)) => {
            let (mut profile, rest): (Profile, _) = postcard::take_from_bytes(rest)?;
            profile.exposures = postcard::from_bytes(rest)?;
            Ok(narrowed(profile))
        }
        Some((&FORMAT_V3, rest)) => {
            let (mut profile, rest): (Profile, _) = postcard::take_from_bytes(rest)?;
            let (runs, rest): (Vec<SeenRun>, _) = postcard::take_from_bytes(rest)?;
            profile.seen = seen_of(runs);
            profile.exposures = postcard::from_bytes(rest)?;
            Ok(narrowed(profile))
        }
        Some((&FORMAT_V4, rest)) => super::compact::decode(rest, true),
        Some((&FORMAT_V5, rest)) => {
            super::compact::decode(&decompressed(rest, dictionaries)?, true)
        }
        Some((&other, _)) => Err(CodecError::UnknownFormat(other)),
    }
}

/// Formats 1 to 3 remembered an event id by its whole 64-bit xxh3: its fingerprint now is
/// the top bits ([`super::state::event_id_hash`]).
fn narrowed(mut profile: Profile) -> Profile {
    for s in &mut profile.seen {
        s.id_hash >>= 64 - super::state::EVENT_HASH_BITS;
    }
    profile
}

/// Decodes what a decision reads: everything but the two lists at the end of the encoding,
/// the recent events (for the agent screen) and the de-duplication memory, which are left
/// empty, and but the decision ids of contacts and answers, which are read past without
/// being kept. A decision decodes a profile on every request; those two lists were a third
/// of the work (perf, decision load test), and the decision ids one string to allocate and
/// check per contact and per answer.
pub fn decode_for_decision(bytes: &[u8]) -> Result<Profile, CodecError> {
    decode_for_decision_with(bytes, &NO_DICTIONARIES)
}

/// [`decode_for_decision`] of a profile that may be compressed with one of `dictionaries`.
pub fn decode_for_decision_with(
    bytes: &[u8],
    dictionaries: &Dictionaries,
) -> Result<Profile, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        // Format 2's exposures come after the part a decision reads.
        Some((&FORMAT_V1 | &FORMAT_V2 | &FORMAT_V3, rest)) => {
            Ok(postcard::from_bytes::<DecisionPart>(rest)?.0)
        }
        Some((&FORMAT_V4, rest)) => super::compact::decode(rest, false),
        Some((&FORMAT_V5, rest)) => {
            super::compact::decode(&decompressed(rest, dictionaries)?, false)
        }
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
                    () => {
                        next!(_)
                    };
                    ($t:ty) => {{
                        read += 1;
                        seq.next_element::<$t>()?.ok_or_else(|| {
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
                    engagement: next!(Engagement).0,
                    contacts: next!(Contacts).0,
                    responses: next!(Responses).0,
                    offers: next!(),
                    recent: Default::default(),
                    seen: Default::default(),
                    exposures: Vec::new(),
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

/// A profile's engagement by hour of week as stored ([`engagement`]).
pub(super) struct Engagement(pub(super) Vec<u32>);

impl<'de> Deserialize<'de> for Engagement {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        engagement::deserialize(d).map(Engagement)
    }
}

/// The engagement by hour of week as stored: empty; the 168 counts; or, while fewer than 84
/// hours have any, (hour, count) pairs, a list of an even length below 168, so the three
/// cannot be mistaken for each other (and profiles stored dense still read). A customer
/// touches a few hours of the week: about 20 bytes instead of 170.
pub mod engagement {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::time::HOURS_PER_WEEK;

    pub fn serialize<S: Serializer>(counts: &[u32], s: S) -> Result<S::Ok, S::Error> {
        let touched = counts.iter().filter(|&&c| c > 0).count();
        if counts.len() != HOURS_PER_WEEK || 2 * touched >= HOURS_PER_WEEK {
            return counts.serialize(s);
        }
        let mut pairs = Vec::with_capacity(2 * touched);
        for (hour, &c) in counts.iter().enumerate() {
            if c > 0 {
                pairs.extend([hour as u32, c]);
            }
        }
        pairs.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        let stored = Vec::<u32>::deserialize(d)?;
        if stored.is_empty() || stored.len() == HOURS_PER_WEEK {
            return Ok(stored);
        }
        if stored.len() % 2 == 1 || stored.len() > HOURS_PER_WEEK {
            return Err(serde::de::Error::invalid_length(
                stored.len(),
                &"0, 168, or an even number of (hour, count) values below 168",
            ));
        }
        let mut counts = vec![0; HOURS_PER_WEEK];
        for pair in stored.chunks_exact(2) {
            let slot = counts
                .get_mut(pair[0] as usize)
                .ok_or_else(|| serde::de::Error::custom("an engagement hour past the week"))?;
            *slot = pair[1];
        }
        Ok(counts)
    }
}

/// A profile's contacts, their decision ids read past.
struct Contacts(VecDeque<ContactRecord>);

/// A profile's answers, their decision ids read past.
struct Responses(VecDeque<ResponseRecord>);

/// [`ContactRecord`] and [`ResponseRecord`] as they are encoded, the decision id borrowed
/// from the input as bytes, neither copied nor checked (a string is encoded as its bytes):
/// field for field the same (the round-trip test checks).
#[derive(Deserialize)]
struct ContactWithoutDecision<'a> {
    at: i64,
    channel: Channel,
    offer_id: Option<OfferId>,
    #[serde(borrow)]
    _decision_id: Option<&'a [u8]>,
}

#[derive(Deserialize)]
struct ResponseWithoutDecision<'a> {
    at: i64,
    channel: Option<Channel>,
    offer_id: Option<OfferId>,
    #[serde(borrow)]
    _decision_id: Option<&'a [u8]>,
    outcome: Outcome,
}

/// Deserializes a sequence of `$raw` into a `VecDeque` of `$record`, field by field.
macro_rules! records_without_decision {
    ($list:ident, $raw:ident, $record:ident { $($field:ident),* }) => {
        impl<'de> Deserialize<'de> for $list {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Seq;
                impl<'de> serde::de::Visitor<'de> for Seq {
                    type Value = $list;

                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("a list of ", stringify!($record)))
                    }

                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<$list, A::Error> {
                        // The length comes from stored bytes: room for a profile's worth
                        // at most, as serde's own lists do, whatever a damaged one says.
                        let room = seq.size_hint().unwrap_or(0).min(1024);
                        let mut out = VecDeque::with_capacity(room);
                        while let Some(r) = seq.next_element::<$raw<'de>>()? {
                            out.push_back($record {
                                $($field: r.$field,)*
                                decision_id: None,
                            });
                        }
                        Ok($list(out))
                    }
                }
                d.deserialize_seq(Seq)
            }
        }
    };
}

records_without_decision!(
    Contacts,
    ContactWithoutDecision,
    ContactRecord {
        at,
        channel,
        offer_id
    }
);
records_without_decision!(
    Responses,
    ResponseWithoutDecision,
    ResponseRecord {
        at,
        channel,
        offer_id,
        outcome
    }
);

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
        // Sparse engagement: fewer bytes, the same counts back, for a decision too.
        let mut sparse = vec![0; 168];
        sparse[3] = 2;
        sparse[167] = 9;
        let q = Profile {
            engagement: sparse,
            ..Profile::default()
        };
        assert_eq!(decode(&encode(&q)).unwrap(), q);
        assert_eq!(decode_for_decision(&encode(&q)).unwrap(), q);
        assert!(encode(&q).len() + 150 < encode(&p).len());
        // Half the hours or more: dense (a list of 168, as before).
        let mut half = vec![0; 168];
        for h in (0..168).step_by(2) {
            half[h] = 1;
        }
        let r = Profile {
            engagement: half,
            ..Profile::default()
        };
        assert_eq!(decode(&encode(&r)).unwrap(), r);
        assert!(matches!(decode(&[9, 0]), Err(CodecError::UnknownFormat(9))));
        assert!(matches!(decode(&[]), Err(CodecError::Empty)));
    }

    /// The de-duplication memory in runs: the same memory back, in a fraction of the
    /// pairs' bytes; profiles written in formats 1 and 2 still read.
    #[test]
    fn the_dedup_memory_is_stored_in_runs_and_older_formats_still_read() {
        let mut p = Profile {
            events: 120,
            ..Profile::default()
        };
        for i in 0..120u64 {
            p.seen.push_back(SeenEvent {
                id_hash: xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()),
                applied_minute: 29_600_000 + (i / 50) as u32,
            });
        }
        p.exposures.clear();
        let v3 = encode_v3(&p);
        assert_eq!(v3[0], FORMAT_V3);
        // Read back with the fingerprints of today: the top 48 bits of the hashes.
        let now = narrowed(p.clone());
        assert_ne!(now, p);
        assert_eq!(decode(&v3).unwrap(), now);
        assert_eq!(decode(&encode(&now)).unwrap(), now);
        assert_eq!(decode_for_decision(&v3).unwrap().events, 120);
        let mut v1 = vec![FORMAT_V1];
        postcard::to_io(&p, &mut v1).unwrap();
        assert_eq!(decode(&v1).unwrap(), now);
        let mut v2 = vec![FORMAT_V2];
        postcard::to_io(&p, &mut v2).unwrap();
        postcard::to_io(&p.exposures, &mut v2).unwrap();
        assert_eq!(decode(&v2).unwrap(), now);
        // Three runs of 8-byte hashes against a (varint hash, varint minute) per event: at
        // least 4 bytes an event less.
        assert!(v3.len() + 120 * 4 < v1.len(), "{} {}", v3.len(), v1.len());
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
             "at": "2026-03-05T10:00:00Z", "channel": "email", "offer_id": "gold-card",
             "decision_id": "d-1"},
            {"event_id": "e", "customer_id": "c-1", "type": "response",
             "at": "2026-03-05T18:00:00Z", "offer_id": "gold-card", "outcome": "declined",
             "decision_id": "d-1"},
            {"event_id": "f", "customer_id": "c-1", "type": "contact",
             "at": "2026-03-06T10:00:00Z", "channel": "sms"},
            {"event_id": "g", "customer_id": "c-1", "type": "response",
             "at": "2026-03-06T18:00:00Z", "channel": "sms", "outcome": "clicked",
             "decision_id": "d-2"},
        ]});
        let events: Vec<Event> =
            crate::profile::event::parse_body(body.to_string().as_bytes()).unwrap();
        let limits = ProfileLimits::default();
        let mut full = Profile::default();
        for e in &events {
            full.apply(e, &limits, 1_775_000_000).unwrap();
        }
        assert!(!full.recent.is_empty() && !full.seen.is_empty());
        assert!(!full.contacts.is_empty() && !full.responses.is_empty() && !full.offers.is_empty());
        let for_decision = decode_for_decision(&encode(&full)).unwrap();
        assert!(full.contacts.iter().any(|c| c.decision_id.is_some()));
        assert!(full.responses.iter().any(|r| r.decision_id.is_some()));
        let mut expected = full.clone();
        expected.recent.clear();
        expected.seen.clear();
        for c in &mut expected.contacts {
            c.decision_id = None;
        }
        for r in &mut expected.responses {
            r.decision_id = None;
        }
        assert_eq!(for_decision, expected);
        assert!(matches!(
            decode_for_decision(&encode(&full)[..6]),
            Err(CodecError::Corrupt(_))
        ));
    }
}
