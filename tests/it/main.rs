//! Integration tests, compiled into one binary. Redis tests start their own `redis-server`
//! on a free port (see `helpers`).

mod cli;
mod events_api;
mod faults;
mod helpers;
mod redis_server;
mod operations;
mod store_conformance;
