//! Customer profiles: the events that change them, their bounded state, the actions planned
//! for them and not yet sent, and the two stores that hold them (embedded memory, Redis: one
//! server or a cluster) behind one trait.

pub mod channel;
pub mod codec;
mod compact;
pub mod dictionary;
pub mod event;
pub mod ids;
pub mod memory;
pub mod planned;
pub mod redis_conn;
pub mod redis_store;
pub mod state;
pub mod store;

pub use channel::{Channel, Direction};
pub use event::{AttrValue, Event, EventKind, Outcome};
pub use ids::{CustomerId, DecisionId, EventId, OfferId};
pub use state::{Applied, Profile, ProfileLimits, PurchaseSummary};
pub use store::{ApplyOutcome, ProfileStore, Profiles, StoreError};
