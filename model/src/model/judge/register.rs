//! The replicated service of the model: a single register behind raft-core's exactly-once
//! sessions ([`raft_core::service::Service`], the very type the node's key-value store uses),
//! and the client/server messages around the Raft messages.

use raft_core::service::{Applied, Service, SessionsImage, StateMachine};
use raft_core::{Entry, Membership, Message, NodeId};
use serde::{Deserialize, Serialize};

/// A value a client writes. Client `c` writes `c + 1`; reads of the empty register return None.
pub type Value = u8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ClientOp {
    Put(Value),
    Get,
    /// Not a client's: a configuration entry (`--max-config-changes`), proposed by a leader
    /// on an operator's request; never applied to the register.
    Config(Members),
}

/// A configuration in the model's compact form: bit `i` of `voters` (`learners`) is set if
/// server `i` is a voter (a learner). The model has at most 9 servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Members {
    pub voters: u16,
    pub learners: u16,
}

impl Members {
    pub fn of(m: &Membership) -> Self {
        let bits =
            |set: &std::collections::BTreeSet<NodeId>| set.iter().fold(0u16, |b, id| b | 1 << id.0);
        Members {
            voters: bits(&m.voters),
            learners: bits(&m.learners),
        }
    }

    pub fn membership(self) -> Membership {
        let ids = |bits: u16| (0..16u64).filter(move |i| bits >> i & 1 == 1).map(NodeId);
        Membership {
            voters: ids(self.voters).collect(),
            learners: ids(self.learners).collect(),
            // The model routes messages by id: its configurations carry no addresses.
            ..Membership::default()
        }
    }
}

/// A log command: the client's operation with its identity for exactly-once application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cmd {
    /// The client actor's index.
    pub client: u8,
    /// The client's sequence number for this operation.
    pub seq: u8,
    pub op: ClientOp,
}

impl raft_core::Payload for Cmd {
    fn payload_bytes(&self) -> usize {
        3
    }

    fn configuration(&self) -> Option<Membership> {
        match self.op {
            ClientOp::Config(m) => Some(m.membership()),
            _ => None,
        }
    }
}

impl Cmd {
    /// The configuration entry installing `m` (an operator's, not a client's).
    pub fn config(m: &Membership) -> Self {
        Cmd {
            client: u8::MAX,
            seq: 0,
            op: ClientOp::Config(Members::of(m)),
        }
    }

    pub fn is_config(&self) -> bool {
        matches!(self.op, ClientOp::Config(_))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ClientReply {
    PutOk,
    GetOk(Option<Value>),
    /// The request is older than the client's latest applied one (a late copy from the log);
    /// its result is no longer kept.
    Stale,
    /// Not the leader; try this server (if known).
    NotLeader(Option<NodeId>),
}

/// Everything that travels in the model's network.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Msg {
    Raft(Message<Cmd>),
    Request { seq: u8, op: ClientOp },
    Reply { seq: u8, reply: ClientReply },
}

/// The register itself.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Register {
    pub value: Option<Value>,
}

impl StateMachine for Register {
    type Op = ClientOp;
    type Output = ClientReply;
    fn execute(&mut self, op: &ClientOp) -> ClientReply {
        match op {
            ClientOp::Put(v) => {
                self.value = Some(*v);
                ClientReply::PutOk
            }
            ClientOp::Get => ClientReply::GetOk(self.value),
            // Configuration entries never reach the register (the model's driver skips them).
            ClientOp::Config(_) => ClientReply::GetOk(self.value),
        }
    }
}

/// The register with its client sessions. Volatile: rebuilt by re-applying the log after a
/// restart.
pub type RegisterMachine = Service<Register, crate::mutant::ModelRules>;

/// Applies one committed command at most once; the reply its client gets.
pub fn apply(machine: &mut RegisterMachine, cmd: &Cmd) -> ClientReply {
    match machine.apply(u64::from(cmd.client), u64::from(cmd.seq), &cmd.op) {
        Applied::Executed(reply) | Applied::Duplicate(reply) => reply,
        Applied::Stale { .. } => ClientReply::Stale,
    }
}

/// The model's snapshot image (§7; raft-core keeps it as opaque bytes): the register and its
/// client sessions, and the log prefix it covers. The entries are the model's own addition
/// (a state machine that remembers its history): they let the properties state Log
/// Matching, Leader Completeness and State Machine Safety over "snapshot + log", and check
/// that a snapshot holds only committed entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub value: Option<Value>,
    pub sessions: SessionsImage<ClientReply>,
    /// The entries at indices 1..=last_included_index, in order.
    pub entries: Vec<Entry<Cmd>>,
}

impl Image {
    /// The image of `machine`, which has applied `entries`.
    pub fn of(machine: &RegisterMachine, entries: Vec<Entry<Cmd>>) -> Self {
        Image {
            value: machine.machine.value,
            sessions: machine.sessions_image(),
            entries,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a model image always encodes")
    }

    /// The image in a snapshot's data; `None` if the data is not one (no snapshot).
    pub fn decode(data: &[u8]) -> Option<Self> {
        postcard::from_bytes(data).ok()
    }

    /// The register restored from this image, with `rules`.
    pub fn machine(&self, rules: crate::mutant::ModelRules) -> RegisterMachine {
        let mut m = RegisterMachine::with_rules(Register::default(), rules);
        m.restore(Register { value: self.value }, self.sessions.clone());
        m
    }
}
