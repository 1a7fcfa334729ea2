//! Integration tests, compiled into one binary. Redis tests start their own `redis-server`
//! on a free port (see `helpers`).

mod access;
mod api_reference;
mod browser;
mod cdnow;
mod cdnow_fit;
mod cli;
mod closed_loop;
mod cluster;
mod decision_properties;
mod decisions_api;
mod edges;
mod evaluate;
mod events_api;
mod faults;
mod helpers;
mod learning;
mod models;
mod nats;
mod operations;
mod outbound;
mod readme;
mod redis_server;
mod reload;
mod store_conformance;
mod value_model;
