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
}
