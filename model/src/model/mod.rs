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
mod node;
pub mod progress;
mod properties;
mod register;
pub mod shared;
pub mod symmetry;
mod system;

pub use actor::{RaftAction, RaftActor, RaftState, ServerConfig};
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

pub use system::RaftModel;

use stateright::actor::{ActorModel, LossyNetwork, Network};

impl ModelConfig {
    /// Build the stateright model for this configuration. Call [`ModelConfig::validate`] first.
    pub fn into_model(self) -> RaftModel {
        let properties = properties::all(&self);
        RaftModel {
            inner: self.clone().into_actor_model(),
            cfg: self,
            properties,
        }
    }

    fn into_actor_model(self) -> ActorModel<RaftActor, ModelConfig, History> {
        let servers: Vec<_> = (0..self.servers).map(stateright::actor::Id::from).collect();
        let mut model = ActorModel::new(self.clone(), History::default());
        for i in 0..self.servers {
            model = model.actor(RaftActor::server(i, &self));
        }
        for c in 0..self.values {
            model = model.actor(RaftActor::client(c, self.reads, &servers));
        }
        let network = match self.network {
            NetworkKind::UnorderedDuplicating => Network::new_unordered_duplicating([]),
            NetworkKind::UnorderedNonDuplicating => Network::new_unordered_nonduplicating([]),
            NetworkKind::Ordered => Network::new_ordered([]),
        };
        let lossy = if self.lossy {
            LossyNetwork::Yes
        } else {
            LossyNetwork::No
        };
        model
            .init_network(network)
            .lossy_network(lossy)
            .max_crashes(self.max_crashes)
            .record_msg_out(history::record_out)
            .record_msg_in(history::record_in)
            .within_boundary(config::within_boundary)
    }
}

#[cfg(test)]
mod symmetry_tests;
#[cfg(test)]
mod tests;
