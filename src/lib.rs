//! Touchpoint: a real-time personalization decision engine.
//!
//! # Layout
//!
//! The folders follow a request's path:
//!
//! - [`api`]: the HTTP edge (API.md): parses input, calls the domain, maps errors to statuses.
//! - [`decision`]: decisions: the decision service every caller uses (read, decide, record
//!   planned actions, log; erasure), the engine's stages (history, channels and timing,
//!   eligibility, candidates, arbitration, explanation), the exploration [`decision::policy`],
//!   the offer catalog and its conditions, consent and contact policy, the decision log's
//!   record and its writers.
//! - [`profile`]: customer profiles: events, the bounded profile state, the store trait and its
//!   two backends (embedded memory, Redis: one server or a Redis Cluster).
//! - [`model`]: trained models as served: the one feature path, the model set on disk and its
//!   scoring (value, segments, send time, channel, propensity).
//! - [`training`]: used by the CLI only: `simulate` (synthetic histories with known truth) and
//!   `train` (fitting, held-out metrics and plots, the report).
//! - [`import`]: bulk loading of event files into the store.
//! - [`campaign`]: batch campaign planning (`touchpoint decide --customers`).
//! - [`nats`]: events consumed from a NATS JetStream stream.
//! - [`outbound`]: the outbound feed: due planned actions handed to the sender, once.
//! - [`settings`]: layered configuration (defaults, TOML file, `TOUCHPOINT__…` variables).
//! - [`startup`]: building and running the service, graceful shutdown.
//! - [`telemetry`]: logs and the Prometheus metrics, with every metric name in one module.
//! - [`time`]: times as the service counts them: RFC 3339, days, the customer's local clock.
//! - [`validation`]: field-level input errors shared by every edge.
//! - [`live`], [`watch`]: the model set and catalog in service, swapped atomically when their
//!   files change.
//! - [`cli`]: the `touchpoint` command line.

pub mod api;
pub mod auth;
pub mod campaign;
pub mod cli;
pub mod decision;
pub mod import;
pub mod learning;
pub mod live;
pub mod model;
pub mod nats;
pub mod outbound;
pub mod profile;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub mod time;
pub mod training;
pub mod validation;
pub mod watch;
