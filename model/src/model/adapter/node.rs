//! The states of the model's actors: a server (the core server, its register, its ghost
//! records), a client, what a server saves, and the timers.

use crate::model::judge::ghost::Ghost;
use crate::model::judge::register::{Cmd, RegisterMachine};
use crate::model::shared::Shared;
use raft_core::{ConfigChange, CoreError, HardState, NodeId, Server};

/// The model's timers. Timeouts may fire at any moment.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Timer {
    /// Followers and candidates: start an election.
    Election,
    /// Candidates and leaders: send the role's request (RequestVote / AppendEntries) to one peer.
    Send(NodeId),
    /// Clients waiting for a reply: send the pending request to this server.
    Request(NodeId),
    /// Leaders whose own entries are written behind (`Persist::write_behind`): the disk
    /// completes, making the whole log durable (`Event::Persisted`). Armed while
    /// `Server::awaits_persisted`; until it fires, a crash loses those entries.
    Persist,
    /// Leaders, with `--max-transfers`: an operator asks to hand the leadership to this peer
    /// (`Event::TransferLeadership`, thesis §3.10).
    Transfer(NodeId),
    /// Leaders, with `--max-config-changes`: an operator asks for this membership change
    /// (a configuration entry proposed, membership.rs).
    Reconfigure(ConfigChange),
    /// Every server, with `--max-snapshots`: its state machine takes a snapshot of what it
    /// has applied, and the log up to there is compacted (`Event::Compact`, §7).
    Compact,
    /// Every server, with `--max-forged`: a forged frame with a term no election could follow
    /// arrives (issue 38, finding 2); the server must refuse it.
    Forge,
}

/// What a server saves: the core's hard state as far as it is durable
/// (`Server::durable_hard_state`: a leader's entries written behind are not, until
/// `Timer::Persist` fires), plus the model's ghost records (which must survive crashes to
/// speak about history).
/// Shared (`Arc`) because every successor state clones every server's storage.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ServerStorage {
    pub hard: Shared<HardState<Cmd>>,
    pub ghost: Shared<Ghost>,
}

/// A server actor's state: the core server, the register it applies to, and its ghost records.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ServerState {
    pub server: Server<Cmd>,
    /// Shared with the previous state until a step changes it (most steps do not).
    pub machine: Shared<RegisterMachine>,
    /// Shared with the previous state and with storage until a step changes it.
    pub ghost: Shared<Ghost>,
    /// The core refused a step (`CoreError`): the node would have logged it and stopped (or,
    /// for a refused message, dropped it). The server takes no step after it, and the property
    /// "Core Invariant" reports it: the correct protocol never gets here.
    pub fault: Option<CoreError>,
}

// Boxing the server variant would add an allocation per step; actor states already live behind
// stateright's `Arc`, so the size difference costs nothing per state.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum NodeState {
    Server(ServerState),
    Client(ClientState),
}

impl NodeState {
    pub fn as_server(&self) -> Option<&ServerState> {
        match self {
            NodeState::Server(s) => Some(s),
            NodeState::Client(_) => None,
        }
    }
    pub fn as_client(&self) -> Option<&ClientState> {
        match self {
            NodeState::Client(c) => Some(c),
            NodeState::Server(_) => None,
        }
    }
}

/// A client's state.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ClientState {
    /// Index of the operation in progress; `ops.len()` once done.
    pub seq: u8,
}
