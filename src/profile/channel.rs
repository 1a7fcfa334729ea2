//! The touchpoints where the company meets its customer.
//!
//! The set is closed so that per-channel state in a profile is a fixed-size array (the memory
//! bound depends on it) and so that metric labels cannot explode. A new channel is a new
//! variant, which forces a decision everywhere channels are matched.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Web,
    App,
    Email,
    Sms,
    Push,
    CallCentre,
    Branch,
    DirectMail,
}

/// Which way a channel points: the customer comes to us, or we go to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The customer started the touch (web, app, call centre, branch): the answer is now.
    Inbound,
    /// The company starts the touch: it needs consent and obeys contact limits.
    Outbound,
}

impl Channel {
    pub const COUNT: usize = 8;
    pub const ALL: [Channel; Channel::COUNT] = [
        Channel::Web,
        Channel::App,
        Channel::Email,
        Channel::Sms,
        Channel::Push,
        Channel::CallCentre,
        Channel::Branch,
        Channel::DirectMail,
    ];

    pub fn index(self) -> usize {
        match self {
            Channel::Web => 0,
            Channel::App => 1,
            Channel::Email => 2,
            Channel::Sms => 3,
            Channel::Push => 4,
            Channel::CallCentre => 5,
            Channel::Branch => 6,
            Channel::DirectMail => 7,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::App => "app",
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
            Channel::CallCentre => "call_centre",
            Channel::Branch => "branch",
            Channel::DirectMail => "direct_mail",
        }
    }

    pub fn direction(self) -> Direction {
        match self {
            Channel::Web | Channel::App | Channel::CallCentre | Channel::Branch => {
                Direction::Inbound
            }
            Channel::Email | Channel::Sms | Channel::Push | Channel::DirectMail => {
                Direction::Outbound
            }
        }
    }

    pub fn is_outbound(self) -> bool {
        self.direction() == Direction::Outbound
    }

    /// The names a caller may use, for error messages.
    pub fn names() -> String {
        Channel::ALL
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?}: use one of {names}", names = Channel::names())]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownChannel(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_round_trips_through_its_name_and_index() {
        for (i, c) in Channel::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
        assert!("fax".parse::<Channel>().is_err());
    }
}
