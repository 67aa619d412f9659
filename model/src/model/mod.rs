//! The stateright model: a thin `Actor` adapter around [`raft_core::Server`], the clients that
//! use the replicated register, the ghost records the properties need, and the bounds that make
//! the state space finite.
//!
//! Nothing here restates a protocol rule: every server step is `Server::handle`.

mod actor;
mod actors;
mod client;
mod config;
pub mod display;
mod ghost;
mod history;
pub mod independence;
mod memo;
mod network;
mod node;
pub mod progress;
mod properties;
mod register;
pub mod sequence;
pub mod shared;
mod state;
pub mod symmetry;
mod system;
mod timers;

pub use actor::{RaftAction, RaftActor, ServerConfig};
pub use actors::Actors;
pub use config::{ModelConfig, NetworkKind};
pub use ghost::{Committed, Ghost};
pub use history::{History, Recorded};
pub use node::{ClientState, NodeState, ServerState, ServerStorage, Timer};
pub use properties::{
    always_names, sometimes_names, ALWAYS, LIVENESS, LOG_TERMS, PRE_VOTE, QUORUMS, SNAPSHOT,
    SOMETIMES, TERM_COMMIT, UNDISTURBED,
};
pub use register::{
    ClientOp, ClientReply, Cmd, Image, Members, Msg, Register, RegisterMachine, Value,
};

pub use network::Network;
pub use shared::Shared;
pub use state::{ActorSlot, RaftState, Slot};
pub use system::RaftModel;
pub use timers::TimerSet;

impl ModelConfig {
    /// Build the stateright model for this configuration. Call [`ModelConfig::validate`] first.
    pub fn into_model(self) -> RaftModel {
        let properties = properties::all(&self);
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
mod symmetry_tests;
#[cfg(test)]
mod tests;
