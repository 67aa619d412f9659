//! The adapter: raft-core's servers and the clients as stateright actors, their network and timers,
//! and the system that steps them.

pub(crate) mod actor;
pub(crate) mod actors;
pub(crate) mod client;
pub(crate) mod network;
pub(crate) mod node;
pub(crate) mod state;
pub(crate) mod system;
pub(crate) mod timers;
