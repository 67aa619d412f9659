//! raft-impl: the runnable node. It drives `raft_core::Server` with real sockets, disks and
//! timers (see the runnable-cluster issue); nothing here restates a protocol rule.

pub use raft_core as core;

pub mod auth;
pub mod bench;
pub mod bench_poll;
pub mod certs;
pub mod client;
pub mod config;
pub mod join;
pub mod kv;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod storage;
pub mod tls;
pub mod tls_stream;
pub mod trace_log;
pub mod wire;
