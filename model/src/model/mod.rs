//! The stateright model: a thin `Actor` adapter around [`raft_core::Server`], the clients that
//! use the replicated register, the ghost records the properties need, and the bounds that make
//! the state space finite.
//!
//! Nothing here restates a protocol rule: every server step is `Server::handle`.
//!
//! By concern: `adapter/` (the actors, network, timers and the stateright system), `judge/`
//! (the properties and what they read: history, ghost records, the register, liveness),
//! `reductions/` (symmetry, independence, memo), `presentation/` (display, sequence
//! diagrams); `config.rs` holds the bounds.

mod adapter;
mod config;
mod judge;
mod presentation;
mod reductions;
pub mod shared;

pub use judge::discovery::discovers;
pub use judge::liveness;
pub use presentation::{display, sequence};
pub use reductions::{independence, symmetry};

pub use adapter::actor::{RaftAction, RaftActor, ServerConfig};
pub use adapter::actors::Actors;
pub use adapter::node::{ClientState, NodeState, ServerState, ServerStorage, Timer};
pub use config::{ModelConfig, NetworkKind};
pub use judge::ghost::{Committed, Ghost};
pub use judge::history::{History, Recorded};
pub use judge::properties::{
    always_names, sometimes_names, ALWAYS, IMAGE, LIVENESS, LOG_TERMS, PRE_VOTE, QUORUMS, READS,
    SNAPSHOT, SOMETIMES, TERM_COMMIT, UNDISTURBED,
};
pub use judge::register::{
    ClientOp, ClientReply, Cmd, Image, Members, Msg, Register, RegisterMachine, Value,
};

pub use adapter::network::Network;
pub use adapter::state::{ActorSlot, RaftState, Slot};
pub use adapter::system::RaftModel;
pub use adapter::timers::TimerSet;
pub use shared::Shared;

impl ModelConfig {
    /// Build the stateright model for this configuration. Call [`ModelConfig::validate`] first.
    pub fn into_model(self) -> RaftModel {
        let properties = judge::properties::all(&self);
        let servers: Vec<_> = (0..self.servers).map(stateright::actor::Id::from).collect();
        let mut actors: Vec<RaftActor> = (0..self.servers)
            .map(|i| RaftActor::server(i, &self))
            .collect();
        actors.extend((0..self.values).map(|c| RaftActor::client(c, self.reads, &servers)));
        RaftModel {
            actors,
            cfg: self,
            properties,
            liveness_memo: Default::default(),
        }
    }
}

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod judge_tests;
#[cfg(test)]
mod symmetry_tests;
#[cfg(test)]
mod tests;
