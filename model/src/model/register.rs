//! The replicated service of the model: a single register with exactly-once writes, and the
//! client/server messages around the Raft messages.

use crate::core::{Message, NodeId};
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::collections::BTreeMap;

/// A value a client writes. Client `c` writes `c + 1`; reads of the empty register return None.
pub type Value = u8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ClientOp {
    Put(Value),
    Get,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ClientReply {
    PutOk,
    GetOk(Option<Value>),
    /// Not the leader; try this server (if known).
    NotLeader(Option<NodeId>),
}

/// Everything that travels in the model's network.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Msg {
    Raft(Message<Cmd>),
    Request { seq: u8, op: ClientOp },
    Reply { seq: u8, reply: ClientReply },
}

/// The register state machine. Volatile: rebuilt by re-applying the log after a restart.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegisterMachine {
    pub value: Option<Value>,
    /// Last applied sequence number per client and its reply (exactly-once: a retried command is
    /// answered from here instead of being applied twice).
    pub sessions: BTreeMap<u8, (u8, ClientReply)>,
}

impl RegisterMachine {
    pub fn apply(&mut self, cmd: &Cmd) -> ClientReply {
        if let Some((seq, reply)) = self.sessions.get(&cmd.client) {
            if *seq == cmd.seq {
                return *reply;
            }
        }
        let reply = match cmd.op {
            ClientOp::Put(v) => {
                self.value = Some(v);
                ClientReply::PutOk
            }
            ClientOp::Get => ClientReply::GetOk(self.value),
        };
        self.sessions.insert(cmd.client, (cmd.seq, reply));
        reply
    }
}

/// The model numbers its actors 0..n; server `i` is `NodeId(i)` in the core.
pub(crate) fn node_of(id: Id) -> NodeId {
    NodeId(usize::from(id) as u64)
}

pub(crate) fn id_of(node: NodeId) -> Id {
    Id::from(node.0 as usize)
}
