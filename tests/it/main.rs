//! Integration tests, compiled into one binary. Redis tests start their own `redis-server`
//! on a free port (see `helpers`).

mod helpers;
mod store_conformance;
mod events_api;
