//! Identifiers, parsed once at the edge so that nothing past it can hold a bad one.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Why an identifier was refused; the caller adds the field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters long")]
    TooLong { max: usize },
    #[error("may only hold the characters A-Z a-z 0-9 . _ : @ -")]
    BadCharacter,
}

impl IdError {
    pub fn code(&self) -> &'static str {
        match self {
            IdError::Empty => "empty",
            IdError::TooLong { .. } => "too_long",
            IdError::BadCharacter => "bad_character",
        }
    }
}

/// The longest identifier the API takes (API.md section 2).
pub const MAX_ID_LEN: usize = 128;

fn check_len(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        Err(IdError::Empty)
    } else if s.len() > MAX_ID_LEN && s.chars().count() > MAX_ID_LEN {
        Err(IdError::TooLong { max: MAX_ID_LEN })
    } else {
        Ok(())
    }
}

/// Customer ids become part of store keys (`tp:{c-42}:profile`), so the character set is
/// closed: no braces, spaces or glob characters can reach a Redis key or hash tag.
fn check_key_safe(s: &str) -> Result<(), IdError> {
    check_len(s)?;
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'-'))
    {
        Ok(())
    } else {
        Err(IdError::BadCharacter)
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                $check(&s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}

id_type!(
    /// A customer, 1..128 characters of `[A-Za-z0-9._:@-]`.
    CustomerId,
    check_key_safe
);
id_type!(
    /// An event, unique per event, 1..128 characters.
    EventId,
    check_len
);
/// An offer of the catalog, 1..128 characters of `[A-Za-z0-9._:@-]`.
///
/// Shared, so cloning one copies a pointer; and a profile holds up to a few hundred (one per
/// contact, answer and offer counted), decoded on every decision. Decoding one looks it up in
/// its thread's table of the ids seen before ([`OfferId::intern`]) rather than checking and
/// allocating it again: a catalog has tens of offers, so nearly every lookup finds one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OfferId(Arc<str>);

/// Distinct offer ids each thread keeps for decoding. Events may name any offer, so the
/// table can fill with ids no catalog has; when it is full it is emptied and fills again
/// with the ids in use, so memory stays bounded and the catalog's ids come back.
const INTERNED_OFFER_IDS: usize = 4096;

/// An interned id, found by its bytes: a stored profile's ids are looked up before they are
/// checked as UTF-8, which a known one needs no more. Hashes as its bytes do, so that a
/// `[u8]` finds it.
#[derive(PartialEq, Eq)]
struct Interned(Arc<str>);

impl std::hash::Hash for Interned {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.as_bytes().hash(state);
    }
}

impl std::borrow::Borrow<[u8]> for Interned {
    fn borrow(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

thread_local! {
    static OFFER_IDS: std::cell::RefCell<foldhash::HashSet<Interned>> = Default::default();
}

impl OfferId {
    pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check_key_safe(&s)?;
        Ok(Self(Arc::from(s)))
    }

    /// The id `s`, shared with every other copy of it this thread decoded before, checked
    /// only the first time.
    pub fn intern(s: &str) -> Result<Self, IdError> {
        Self::intern_bytes(s.as_bytes())
    }

    /// [`Self::intern`] of bytes not yet known to be UTF-8: checked only when new (the
    /// character set is ASCII, so an id that passes is UTF-8).
    fn intern_bytes(bytes: &[u8]) -> Result<Self, IdError> {
        OFFER_IDS.with_borrow_mut(|ids| {
            if let Some(id) = ids.get(bytes) {
                return Ok(Self(id.0.clone()));
            }
            let s = std::str::from_utf8(bytes).map_err(|_| IdError::BadCharacter)?;
            check_key_safe(s)?;
            let id: Arc<str> = Arc::from(s);
            if ids.len() >= INTERNED_OFFER_IDS {
                ids.clear();
            }
            ids.insert(Interned(id.clone()));
            Ok(Self(id))
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OfferId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl From<OfferId> for String {
    fn from(id: OfferId) -> String {
        id.0.to_string()
    }
}

impl AsRef<str> for OfferId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for OfferId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for OfferId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OfferId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = OfferId;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an offer id")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<OfferId, E> {
                OfferId::intern(s).map_err(E::custom)
            }

            fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> Result<OfferId, E> {
                OfferId::intern_bytes(b).map_err(E::custom)
            }
        }
        // A binary format (the stored profile's postcard) writes a string as its bytes:
        // reading it as bytes skips the UTF-8 check for ids already known.
        if d.is_human_readable() {
            d.deserialize_str(Visitor)
        } else {
            d.deserialize_bytes(Visitor)
        }
    }
}
id_type!(
    /// A decision that an event answers, 1..128 characters.
    DecisionId,
    check_len
);

impl DecisionId {
    /// A new decision's id: a UUID v7 (time-ordered, unique).
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_ids_refuse_characters_that_could_break_a_store_key() {
        assert_eq!(CustomerId::parse("c-42{x}"), Err(IdError::BadCharacter));
        assert_eq!(CustomerId::parse("c 42"), Err(IdError::BadCharacter));
        assert_eq!(CustomerId::parse(""), Err(IdError::Empty));
        assert!(CustomerId::parse("user.name@example.com:7_x-1").is_ok());
        assert_eq!(
            CustomerId::parse("c".repeat(129)),
            Err(IdError::TooLong { max: 128 })
        );
        assert!(CustomerId::parse("c".repeat(128)).is_ok());
    }

    #[test]
    fn offer_ids_decode_shared_and_checked() {
        let a: OfferId = serde_json::from_str("\"gold-card\"").unwrap();
        let b: OfferId = serde_json::from_str("\"gold-card\"").unwrap();
        assert_eq!(a, OfferId::parse("gold-card").unwrap());
        assert!(
            Arc::ptr_eq(&a.0, &b.0),
            "the second decode shares the first"
        );
        let bad = serde_json::from_str::<OfferId>("\"gold card\"").unwrap_err();
        assert!(bad.to_string().contains("may only hold"), "{bad}");
        // Refused the second time too: a bad id is never kept.
        assert!(serde_json::from_str::<OfferId>("\"gold card\"").is_err());
        let bytes = postcard::to_allocvec(&a).unwrap();
        let c = postcard::from_bytes::<OfferId>(&bytes).unwrap();
        assert!(Arc::ptr_eq(&a.0, &c.0), "read as bytes, found by them");
        // Stored bytes are checked as any id is when they are new: not UTF-8, or not an id.
        assert!(postcard::from_bytes::<OfferId>(&[2, 0xc3, 0x28]).is_err());
        let spaced = postcard::to_allocvec("gold card").unwrap();
        assert!(postcard::from_bytes::<OfferId>(&spaced).is_err());
    }

    #[test]
    fn event_ids_take_any_character_within_the_length_limit() {
        assert!(EventId::parse("order 17 / line {3}").is_ok());
        assert_eq!(EventId::parse(""), Err(IdError::Empty));
    }
}
