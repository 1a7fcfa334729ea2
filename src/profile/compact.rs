//! The profile's stored form since format 4: [`Head`], what a decision reads, then
//! [`Tail`], what only the customer view and event ingest read (the recent events, the
//! de-duplication memory, the open exposures), each in postcard. A decision decodes the head
//! and stops.
//!
//! Compact where a profile is large, without losing a bit of it (a profile decodes to
//! exactly what was encoded):
//! - every time is a difference: from the first event's time (`first_seen`), or in a list
//!   kept in time order (contacts, answers, recent events) from the entry before, so a few
//!   bytes where an epoch second takes five;
//! - each offer id is written once, in a table, and named by its place in it elsewhere;
//!   texts of the recent events likewise;
//! - decision and event ids: a UUID in its 16 bytes; any other id as the length of the
//!   prefix it shares with the id before it in its list, and the rest (`sim-d-1041` after
//!   `sim-d-1038` is 2 and `41`);
//! - an amount in whole cents as an integer, when it is one;
//! - only the channels with any counts.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::Channel;
use super::codec::{CodecError, Engagement, engagement};
use super::event::{AttrValue, Outcome};
use super::ids::{DecisionId, OfferId};
use super::state::{
    Attribute, ChannelStats, ConsentState, ContactRecord, EVENT_HASH_BITS, OfferStats, Profile,
    PurchaseHistory, RecentEvent, RecentKind, ResponseRecord, SeenEvent, event_id_hash,
};

/// What a decision reads, in this order (read back by [`HeadSeed`], field by field).
#[derive(Serialize)]
struct Head<'a> {
    first_seen: Option<i64>,
    /// From `first_seen`, as every other time here but those of a list in time order.
    last_seen: Option<i64>,
    events: u64,
    attributes: Vec<WireAttribute<'a>>,
    consents: [Option<(bool, i64)>; Channel::COUNT],
    purchases: PurchaseHistory,
    channels: Vec<WireChannel>,
    #[serde(with = "engagement")]
    engagement: Vec<u32>,
    /// Every offer id the profile names, once.
    offer_ids: Vec<OfferId>,
    contacts: Vec<WireContact<'a>>,
    responses: Vec<WireResponse<'a>>,
    offers: Vec<WireOffer>,
}

/// After the head.
#[derive(Serialize, Deserialize)]
struct Tail<'a> {
    /// The recent events' texts, once each.
    #[serde(borrow)]
    details: Vec<&'a str>,
    #[serde(borrow)]
    recent: Vec<WireRecent<'a>>,
    seen: Vec<SeenRun>,
    exposures: Vec<crate::learning::join::Exposure>,
}

/// Bytes of a stored fingerprint.
const HASH_BYTES: usize = (EVENT_HASH_BITS / 8) as usize;

/// The de-duplication memory's ids applied in one minute, in the order applied: each the
/// place of the recent event it is (the recent events hold their ids), or its fingerprint.
#[derive(Serialize, Deserialize)]
struct SeenRun {
    minute: u32,
    /// Bit `i` set: the run's `i`-th id is the next of `in_recent`, else of `hashes`.
    which: Vec<u8>,
    in_recent: Vec<u32>,
    hashes: Vec<[u8; HASH_BYTES]>,
}

fn runs_of(seen: &VecDeque<SeenEvent>, recent: &[u64]) -> Vec<SeenRun> {
    let mut runs: Vec<SeenRun> = Vec::new();
    let mut len = 0; // of the last run
    for s in seen {
        let run = match runs.last_mut() {
            Some(run) if run.minute == s.applied_minute => run,
            _ => {
                len = 0;
                runs.push(SeenRun {
                    minute: s.applied_minute,
                    which: Vec::new(),
                    in_recent: Vec::new(),
                    hashes: Vec::new(),
                });
                runs.last_mut().expect("just pushed")
            }
        };
        if len % 8 == 0 {
            run.which.push(0);
        }
        match recent.iter().position(|&h| h == s.id_hash) {
            Some(place) => {
                *run.which.last_mut().expect("pushed above") |= 1 << (len % 8);
                run.in_recent.push(place as u32);
            }
            None => {
                let bytes = s.id_hash.to_le_bytes();
                run.hashes
                    .push(bytes[..HASH_BYTES].try_into().expect("6 of 8 bytes"));
            }
        }
        len += 1;
    }
    runs
}

fn seen_of(runs: Vec<SeenRun>, recent: &[u64]) -> Result<VecDeque<SeenEvent>, CodecError> {
    let mut seen = VecDeque::with_capacity(
        runs.iter()
            .map(|r| r.hashes.len() + r.in_recent.len())
            .sum::<usize>()
            .min(1 << 16),
    );
    for run in runs {
        let len = run.hashes.len() + run.in_recent.len();
        let marked: u32 = run.which.iter().map(|b| b.count_ones()).sum();
        if run.which.len() != len.div_ceil(8) || marked as usize != run.in_recent.len() {
            return Err(CodecError::Invalid("a run of the de-duplication memory"));
        }
        let bad = || CodecError::Invalid("a run of the de-duplication memory");
        let (mut hashes, mut places) = (run.hashes.iter(), run.in_recent.iter());
        for i in 0..len {
            // A damaged run may mark bits past its length: then a list runs out here.
            let id_hash = if run.which[i / 8] & (1 << (i % 8)) != 0 {
                let place = places.next().ok_or_else(bad)?;
                *recent
                    .get(*place as usize)
                    .ok_or(CodecError::Invalid("a recent event's place"))?
            } else {
                let mut bytes = [0; 8];
                bytes[..HASH_BYTES].copy_from_slice(hashes.next().ok_or_else(bad)?);
                u64::from_le_bytes(bytes)
            };
            seen.push_back(SeenEvent {
                id_hash,
                applied_minute: run.minute,
            });
        }
    }
    Ok(seen)
}

fn recent_hashes(recent: &VecDeque<RecentEvent>) -> Vec<u64> {
    recent.iter().map(|r| event_id_hash(&r.event_id)).collect()
}

/// Read back as an [`Attribute`] (the same fields), its time then made absolute.
#[derive(Serialize)]
struct WireAttribute<'a> {
    name: &'a str,
    value: AttrValue,
    at: i64,
}

/// A channel with any counts: its index and its counts.
#[derive(Serialize, Deserialize)]
struct WireChannel {
    index: u8,
    contacts: u32,
    positive_responses: u32,
    negative_responses: u32,
    interactions: u32,
    last_contact_at: Option<i64>,
    last_response_at: Option<i64>,
}

/// Offer references: 0 for none, else the place in the offer table plus one.
type OfferRef = u32;

#[derive(Serialize, Deserialize)]
struct WireContact<'a> {
    /// From the contact before (the first: from `first_seen`).
    at: i64,
    channel: Channel,
    offer: OfferRef,
    #[serde(borrow)]
    decision: WireId<'a>,
}

#[derive(Serialize, Deserialize)]
struct WireResponse<'a> {
    at: i64,
    channel: Option<Channel>,
    offer: OfferRef,
    #[serde(borrow)]
    decision: WireId<'a>,
    outcome: Outcome,
}

#[derive(Serialize, Deserialize)]
struct WireOffer {
    /// The place in the offer table.
    offer: u32,
    contacts: u32,
    positive_responses: u32,
    declines: u32,
    touched_at: i64,
    /// From `touched_at`.
    last_contact_at: Option<i64>,
    last_positive_at: Option<i64>,
    last_declined_at: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct WireRecent<'a> {
    at: i64,
    kind: RecentKind,
    channel: Option<Channel>,
    offer: OfferRef,
    #[serde(borrow)]
    id: WireId<'a>,
    amount: WireAmount,
    /// 0 for none, else the place in the texts plus one.
    detail: u32,
}

/// An id, after the one before it in its list.
#[derive(Serialize, Deserialize)]
enum WireId<'a> {
    None,
    /// A UUID, as `Uuid::hyphenated` writes it.
    Uuid([u8; 16]),
    /// The first `shared` bytes of the id before, then `rest` (UTF-8, checked when read:
    /// a decision reads past the decision ids).
    Text {
        shared: u32,
        rest: &'a [u8],
    },
}

#[derive(Serialize, Deserialize)]
enum WireAmount {
    None,
    Cents(u64),
    Exact(f64),
}

/// Writes ids front-coded against the one before.
#[derive(Default)]
struct IdWriter<'a> {
    prev: &'a str,
}

impl<'a> IdWriter<'a> {
    fn write(&mut self, id: Option<&'a str>) -> WireId<'a> {
        let Some(id) = id else {
            return WireId::None;
        };
        let prev = std::mem::replace(&mut self.prev, id);
        if let Ok(u) = uuid::Uuid::try_parse(id) {
            let mut buf = [0; uuid::fmt::Hyphenated::LENGTH];
            if u.hyphenated().encode_lower(&mut buf) == id {
                return WireId::Uuid(u.into_bytes());
            }
        }
        let mut shared = id
            .bytes()
            .zip(prev.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        while !id.is_char_boundary(shared) {
            shared -= 1;
        }
        WireId::Text {
            shared: shared as u32,
            rest: &id.as_bytes()[shared..],
        }
    }
}

/// The longest id in bytes: 128 characters of up to four bytes.
const MAX_ID_BYTES: usize = 4 * 128;

/// Reads what [`IdWriter`] wrote.
#[derive(Default)]
struct IdReader {
    prev: String,
}

impl IdReader {
    fn read(&mut self, id: &WireId) -> Result<Option<String>, CodecError> {
        let s = match id {
            WireId::None => return Ok(None),
            WireId::Uuid(bytes) => uuid::Uuid::from_bytes(*bytes).hyphenated().to_string(),
            WireId::Text { shared, rest } => {
                let shared = *shared as usize;
                if shared + rest.len() > MAX_ID_BYTES {
                    return Err(CodecError::Invalid("an id's length"));
                }
                let prefix = self
                    .prev
                    .as_bytes()
                    .get(..shared)
                    .ok_or(CodecError::Invalid("an id's shared prefix"))?;
                String::from_utf8([prefix, rest].concat())
                    .map_err(|_| CodecError::Invalid("an id's text"))?
            }
        };
        self.prev.clone_from(&s);
        Ok(Some(s))
    }

    fn decision(&mut self, id: &WireId) -> Result<Option<DecisionId>, CodecError> {
        self.read(id)?
            .map(DecisionId::parse)
            .transpose()
            .map_err(|_| CodecError::Invalid("a decision id"))
    }
}

/// The offer ids a profile names, and their places.
#[derive(Default)]
struct OfferTable {
    ids: Vec<OfferId>,
}

impl OfferTable {
    fn place(&mut self, id: &OfferId) -> u32 {
        let at = match self.ids.iter().position(|o| o == id) {
            Some(at) => at,
            None => {
                self.ids.push(id.clone());
                self.ids.len() - 1
            }
        };
        at as u32
    }

    fn reference(&mut self, id: Option<&OfferId>) -> OfferRef {
        id.map_or(0, |id| self.place(id) + 1)
    }
}

fn offer_at(table: &[OfferId], place: u32) -> Result<OfferId, CodecError> {
    table
        .get(place as usize)
        .cloned()
        .ok_or(CodecError::Invalid("an offer's place in the table"))
}

fn offer_of(table: &[OfferId], reference: OfferRef) -> Result<Option<OfferId>, CodecError> {
    match reference {
        0 => Ok(None),
        r => offer_at(table, r - 1).map(Some),
    }
}

fn since(base: i64, at: Option<i64>) -> Option<i64> {
    at.map(|t| t.wrapping_sub(base))
}

fn after(base: i64, delta: Option<i64>) -> Option<i64> {
    delta.map(|d| base.wrapping_add(d))
}

fn wire_amount(amount: Option<f64>) -> WireAmount {
    let Some(a) = amount else {
        return WireAmount::None;
    };
    let cents = (a * 100.0).round();
    // Bit for bit: -0.0 stays an exact f64.
    if (0.0..=1e15).contains(&cents)
        && (cents / 100.0).to_bits() == a.to_bits()
        && a.is_sign_positive()
    {
        WireAmount::Cents(cents as u64)
    } else {
        WireAmount::Exact(a)
    }
}

fn amount_of(amount: &WireAmount) -> Option<f64> {
    match *amount {
        WireAmount::None => None,
        WireAmount::Cents(c) => Some(c as f64 / 100.0),
        WireAmount::Exact(a) => Some(a),
    }
}

/// Appends the profile's format-4 form to `out`.
pub(super) fn encode_into(profile: &Profile, out: &mut Vec<u8>) {
    let base = profile.first_seen.unwrap_or(0);
    let mut table = OfferTable::default();
    // The offers first: a decision looks them up by place less often than by id, but the
    // table in their order keeps a profile's references small.
    let offers: Vec<WireOffer> = profile
        .offers
        .iter()
        .map(|o| WireOffer {
            offer: table.place(&o.offer_id),
            contacts: o.contacts,
            positive_responses: o.positive_responses,
            declines: o.declines,
            touched_at: o.touched_at.wrapping_sub(base),
            last_contact_at: since(o.touched_at, o.last_contact_at),
            last_positive_at: since(o.touched_at, o.last_positive_at),
            last_declined_at: since(o.touched_at, o.last_declined_at),
        })
        .collect();
    let mut prev = base;
    let mut ids = IdWriter::default();
    let contacts = profile
        .contacts
        .iter()
        .map(|c| WireContact {
            at: c.at.wrapping_sub(std::mem::replace(&mut prev, c.at)),
            channel: c.channel,
            offer: table.reference(c.offer_id.as_ref()),
            decision: ids.write(c.decision_id.as_ref().map(DecisionId::as_str)),
        })
        .collect();
    let (mut prev, mut ids) = (base, IdWriter::default());
    let responses = profile
        .responses
        .iter()
        .map(|r| WireResponse {
            at: r.at.wrapping_sub(std::mem::replace(&mut prev, r.at)),
            channel: r.channel,
            offer: table.reference(r.offer_id.as_ref()),
            decision: ids.write(r.decision_id.as_ref().map(DecisionId::as_str)),
            outcome: r.outcome,
        })
        .collect();
    let mut details: Vec<&str> = Vec::new();
    let (mut prev, mut ids) = (base, IdWriter::default());
    let recent = profile
        .recent
        .iter()
        .map(|r| WireRecent {
            at: r.at.wrapping_sub(std::mem::replace(&mut prev, r.at)),
            kind: r.kind,
            channel: r.channel,
            offer: table.reference(r.offer_id.as_ref()),
            id: ids.write(Some(&r.event_id)),
            amount: wire_amount(r.amount),
            detail: r.detail.as_deref().map_or(0, |d| {
                let at = details.iter().position(|x| *x == d).unwrap_or_else(|| {
                    details.push(d);
                    details.len() - 1
                });
                at as u32 + 1
            }),
        })
        .collect();
    let head = Head {
        first_seen: profile.first_seen,
        last_seen: since(base, profile.last_seen),
        events: profile.events,
        attributes: profile
            .attributes
            .iter()
            .map(|a| WireAttribute {
                name: &a.name,
                value: a.value.clone(),
                at: a.at.wrapping_sub(base),
            })
            .collect(),
        consents: profile
            .consents
            .map(|c| c.map(|c| (c.granted, c.at.wrapping_sub(base)))),
        purchases: profile.purchases.clone(),
        channels: profile
            .channels
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != ChannelStats::default())
            .map(|(index, c)| WireChannel {
                index: index as u8,
                contacts: c.contacts,
                positive_responses: c.positive_responses,
                negative_responses: c.negative_responses,
                interactions: c.interactions,
                last_contact_at: since(base, c.last_contact_at),
                last_response_at: since(base, c.last_response_at),
            })
            .collect(),
        engagement: profile.engagement.clone(),
        offer_ids: table.ids,
        contacts,
        responses,
        offers,
    };
    let tail = Tail {
        details,
        recent,
        seen: runs_of(&profile.seen, &recent_hashes(&profile.recent)),
        exposures: profile.exposures.clone(),
    };
    // Serialising plain owned data into a Vec cannot fail.
    postcard::to_io(&head, &mut *out).expect("profile encodes");
    postcard::to_io(&tail, out).expect("profile encodes");
}

/// Reads [`Head`] into a profile as it goes (no list decoded twice), and gives the offer
/// table with it for the tail.
struct HeadSeed {
    full: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for HeadSeed {
    type Value = (Profile, Vec<OfferId>);

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_tuple(HEAD_FIELDS, self)
    }
}

/// [`Head`]'s fields.
const HEAD_FIELDS: usize = 12;

fn invalid<E: serde::de::Error>(e: CodecError) -> E {
    E::custom(e)
}

/// A list read element by element into what it stands for.
struct MapSeq<W, F> {
    f: F,
    wire: std::marker::PhantomData<W>,
}

fn map_seq<W, F>(f: F) -> MapSeq<W, F> {
    MapSeq {
        f,
        wire: std::marker::PhantomData,
    }
}

impl<'de, W, T, F> serde::de::DeserializeSeed<'de> for MapSeq<W, F>
where
    W: Deserialize<'de>,
    F: FnMut(W) -> Result<T, CodecError>,
{
    type Value = Vec<T>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, W, T, F> serde::de::Visitor<'de> for MapSeq<W, F>
where
    W: Deserialize<'de>,
    F: FnMut(W) -> Result<T, CodecError>,
{
    type Value = Vec<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<Vec<T>, A::Error> {
        // The length comes from stored bytes: room for a profile's worth at most, whatever
        // a damaged one says.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(w) = seq.next_element::<W>()? {
            out.push((self.f)(w).map_err(invalid)?);
        }
        Ok(out)
    }
}

impl<'de> serde::de::Visitor<'de> for HeadSeed {
    type Value = (Profile, Vec<OfferId>);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a profile")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut read = 0;
        macro_rules! next {
            () => {
                next!(seed std::marker::PhantomData)
            };
            (seed $seed:expr) => {{
                read += 1;
                seq.next_element_seed($seed)?
                    .ok_or_else(|| serde::de::Error::invalid_length(read - 1, &"a profile"))?
            }};
        }
        let first_seen: Option<i64> = next!();
        let base = first_seen.unwrap_or(0);
        let last_seen: Option<i64> = next!();
        let events: u64 = next!();
        // Stored as `WireAttribute`s, field for field an `Attribute` with its time from
        // `first_seen`.
        let mut attributes: Vec<Attribute> = next!();
        for a in &mut attributes {
            a.at = base.wrapping_add(a.at);
        }
        let stored: [Option<(bool, i64)>; Channel::COUNT] = next!();
        let consents = stored.map(|c| {
            c.map(|(granted, at)| ConsentState {
                granted,
                at: base.wrapping_add(at),
            })
        });
        let purchases: PurchaseHistory = next!();
        let mut channels = [ChannelStats::default(); Channel::COUNT];
        // Into the array as read: a list of `()` allocates nothing.
        let _: Vec<()> = next!(seed map_seq(|c: WireChannel| {
            let slot = channels
                .get_mut(usize::from(c.index))
                .ok_or(CodecError::Invalid("a channel's index"))?;
            *slot = ChannelStats {
                contacts: c.contacts,
                positive_responses: c.positive_responses,
                negative_responses: c.negative_responses,
                interactions: c.interactions,
                last_contact_at: after(base, c.last_contact_at),
                last_response_at: after(base, c.last_response_at),
            };
            Ok(())
        }));
        let engagement: Engagement = next!();
        let table: Vec<OfferId> = next!();
        let full = self.full;
        let (mut prev, mut ids) = (base, IdReader::default());
        let contacts = next!(seed map_seq(|c: WireContact| {
            prev = prev.wrapping_add(c.at);
            Ok(ContactRecord {
                at: prev,
                channel: c.channel,
                offer_id: offer_of(&table, c.offer)?,
                decision_id: if full { ids.decision(&c.decision)? } else { None },
            })
        }));
        let (mut prev, mut ids) = (base, IdReader::default());
        let responses = next!(seed map_seq(|r: WireResponse| {
            prev = prev.wrapping_add(r.at);
            Ok(ResponseRecord {
                at: prev,
                channel: r.channel,
                offer_id: offer_of(&table, r.offer)?,
                decision_id: if full { ids.decision(&r.decision)? } else { None },
                outcome: r.outcome,
            })
        }));
        let offers = next!(seed map_seq(|o: WireOffer| {
            let touched_at = base.wrapping_add(o.touched_at);
            Ok(OfferStats {
                offer_id: offer_at(&table, o.offer)?,
                contacts: o.contacts,
                positive_responses: o.positive_responses,
                declines: o.declines,
                last_contact_at: after(touched_at, o.last_contact_at),
                last_positive_at: after(touched_at, o.last_positive_at),
                last_declined_at: after(touched_at, o.last_declined_at),
                touched_at,
            })
        }));
        let profile = Profile {
            first_seen,
            last_seen: after(base, last_seen),
            events,
            attributes,
            consents,
            purchases,
            channels,
            engagement: engagement.0,
            contacts: contacts.into(),
            responses: responses.into(),
            offers,
            recent: VecDeque::new(),
            seen: VecDeque::new(),
            exposures: Vec::new(),
        };
        Ok((profile, table))
    }
}

/// Decodes a format-4 profile; for a decision (`full` false) the head only, without the
/// decision ids of contacts and answers.
pub(super) fn decode(bytes: &[u8], full: bool) -> Result<Profile, CodecError> {
    let mut de = postcard::Deserializer::from_bytes(bytes);
    let (mut profile, table) = serde::de::DeserializeSeed::deserialize(HeadSeed { full }, &mut de)?;
    let rest = de.finalize()?;
    if !full {
        return Ok(profile);
    }
    let base = profile.first_seen.unwrap_or(0);
    let tail: Tail = postcard::from_bytes(rest)?;
    let (mut prev, mut ids) = (base, IdReader::default());
    profile.recent.reserve(tail.recent.len());
    for r in &tail.recent {
        prev = prev.wrapping_add(r.at);
        let detail = match r.detail {
            0 => None,
            d => Some(
                (*tail
                    .details
                    .get(d as usize - 1)
                    .ok_or(CodecError::Invalid("a recent event's text"))?)
                .to_owned(),
            ),
        };
        profile.recent.push_back(RecentEvent {
            event_id: ids
                .read(&r.id)?
                .ok_or(CodecError::Invalid("a recent event's id"))?,
            at: prev,
            kind: r.kind,
            channel: r.channel,
            offer_id: offer_of(&table, r.offer)?,
            amount: amount_of(&r.amount),
            detail,
        });
    }
    profile.seen = seen_of(tail.seen, &recent_hashes(&profile.recent))?;
    profile.exposures = tail.exposures;
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::profile::codec::{
        decode, decode_for_decision, decode_for_decision_with, decode_with, dictionary_of, encode,
        encode_with_prefix,
    };
    use crate::profile::dictionary::{Dictionaries, Dictionary, MAX_BYTES};
    use crate::profile::{Profile, ProfileLimits};

    /// Ids as they come: UUIDs (canonical, upper case, braced), short counters sharing
    /// prefixes, and text with characters of several UTF-8 lengths.
    fn an_id() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).hyphenated().to_string()),
            any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n)
                .hyphenated()
                .to_string()
                .to_uppercase()),
            (0u32..3000).prop_map(|n| format!("sim-d-{n}")),
            "[a-zé€😀]{1,6}",
        ]
    }

    fn an_event(i: usize) -> impl Strategy<Value = serde_json::Value> {
        let at = (1_600_000_000i64..1_800_000_000).prop_map(|t| {
            chrono::DateTime::from_timestamp(t, 0)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        });
        let offer = prop::sample::select(vec!["gold-card", "loan", "o.1", "o:2"]);
        let channel = prop::sample::select(vec!["email", "sms", "web", "branch"]);
        (0u8..6, at, offer, channel, an_id(), an_id(), 0u32..100_000, any::<bool>()).prop_map(
            move |(kind, at, offer, channel, decision, event, cents, flag)| {
                let id = format!("{event}-{i}");
                let amount = if flag {
                    f64::from(cents) / 100.0
                } else {
                    f64::from(cents) / 7.0
                };
                match kind {
                    0 => serde_json::json!({"event_id": id, "customer_id": "c", "type": "purchase",
                        "at": at, "amount": amount, "channel": channel}),
                    1 => serde_json::json!({"event_id": id, "customer_id": "c", "type": "contact",
                        "at": at, "channel": channel, "offer_id": offer, "decision_id": decision}),
                    2 => {
                        let mut e = serde_json::json!({"event_id": id, "customer_id": "c",
                            "type": "response", "at": at, "offer_id": offer,
                            "outcome": if flag { "accepted" } else { "declined" }});
                        if flag {
                            e["decision_id"] = decision.into();
                        }
                        e
                    }
                    3 => serde_json::json!({"event_id": id, "customer_id": "c", "type": "interaction",
                        "at": at, "channel": channel, "name": if flag { "visit" } else { "call" }}),
                    4 => serde_json::json!({"event_id": id, "customer_id": "c", "type": "consent",
                        "at": at, "consent": {"channel": channel, "granted": flag}}),
                    _ => serde_json::json!({"event_id": id, "customer_id": "c", "type": "attributes",
                        "at": at, "attributes": {"tier": event, "score": amount, "app": flag}}),
                }
            },
        )
    }

    fn a_profile() -> impl Strategy<Value = Profile> {
        (1usize..60)
            .prop_flat_map(|n| (0..n).map(an_event).collect::<Vec<_>>())
            .prop_map(|events| {
                let body = serde_json::json!({ "events": events });
                let events =
                    crate::profile::event::parse_body(body.to_string().as_bytes()).unwrap();
                let limits = ProfileLimits {
                    recent_events: 12,
                    contact_history: 16,
                    offer_stats: 3,
                    ..ProfileLimits::default()
                };
                let mut p = Profile::default();
                for (k, e) in events.iter().enumerate() {
                    p.apply(e, &limits, 1_800_000_000 + 40 * k as i64).unwrap();
                }
                p
            })
    }

    /// A damaged run that marks a bit past its length is refused, not a panic; an amount
    /// of -0.0 comes back bit for bit.
    #[test]
    fn damaged_runs_are_refused_and_negative_zero_survives() {
        let run = super::SeenRun {
            minute: 1,
            which: vec![0b1000_0001],
            in_recent: vec![0, 0],
            hashes: vec![[0; super::HASH_BYTES]],
        };
        assert!(super::seen_of(vec![run], &[7]).is_err());
        let body = serde_json::json!({"events": [{"event_id": "e", "customer_id": "c",
            "type": "purchase", "at": "2026-01-01T10:00:00Z", "amount": -0.0}]});
        let events = crate::profile::event::parse_body(body.to_string().as_bytes()).unwrap();
        let mut p = Profile::default();
        p.apply(&events[0], &ProfileLimits::default(), 1_800_000_000)
            .unwrap();
        let back = decode(&encode(&p)).unwrap();
        assert_eq!(
            back.recent[0].amount.map(f64::to_bits),
            p.recent[0].amount.map(f64::to_bits)
        );
    }

    proptest! {
        /// Whatever the profile, format 4 gives it back exactly; a decision gets the same
        /// without the recent events, the de-duplication memory, the exposures and the
        /// decision ids.
        #[test]
        fn every_profile_round_trips(p in a_profile()) {
            let bytes = encode(&p);
            prop_assert_eq!(bytes[0], 4);
            prop_assert_eq!(&decode(&bytes).unwrap(), &p);
            let mut expected = p.clone();
            expected.recent.clear();
            expected.seen.clear();
            expected.exposures.clear();
            expected.contacts.iter_mut().for_each(|c| c.decision_id = None);
            expected.responses.iter_mut().for_each(|r| r.decision_id = None);
            prop_assert_eq!(&decode_for_decision(&bytes).unwrap(), &expected);
            // A damaged profile is refused, never misread as another or a panic.
            for cut in [1, bytes.len() / 2, bytes.len() - 1] {
                prop_assert!(decode(&bytes[..cut]).is_err());
            }

            // Format 5: compressed against a dictionary (made of this profile's own bytes
            // here, so that it surely saves), the same profile back; without the
            // dictionary, a clear refusal; damaged, refused.
            if bytes.len() < 40 {
                // Too small to gain by it (an LZ4 block ends in literals): format 4.
                let dictionary = Dictionary::new(vec![7; 64]);
                prop_assert_eq!(&encode_with_prefix(&p, &[], Some(&dictionary)), &bytes);
                return Ok(());
            }
            let dictionary =
                Dictionary::new(bytes[1..].iter().copied().take(MAX_BYTES).collect());
            let packed = encode_with_prefix(&p, &[], Some(&dictionary));
            prop_assert_eq!(packed[0], 5);
            prop_assert_eq!(dictionary_of(&packed), Some(dictionary.id()));
            prop_assert!(packed.len() < bytes.len());
            let known = Dictionaries::new();
            prop_assert!(matches!(
                decode_with(&packed, &known),
                Err(crate::profile::codec::CodecError::UnknownDictionary(id)) if id == dictionary.id()
            ));
            known.learn(vec![dictionary], None);
            prop_assert_eq!(&decode_with(&packed, &known).unwrap(), &p);
            prop_assert_eq!(decode_for_decision_with(&packed, &known).unwrap(), expected);
            for cut in [1, 5, packed.len() / 2, packed.len() - 1] {
                prop_assert!(decode_with(&packed[..cut], &known).is_err());
            }
        }
    }
}
