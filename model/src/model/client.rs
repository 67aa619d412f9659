//! The model's clients: each runs its operations one at a time against the replicated register.
//! A waiting client may send (or resend) its pending request to any server at any moment (its
//! `Timer::Request(server)` timeouts), and follows a not-leader reply to the hinted server. Resends carry the same sequence number, so the service applies each operation
//! at most once. Which server a client last tried is not part of its state: any server may be
//! tried at any time, which covers every retry policy.

use super::actor::{RaftActor, Timer};
use super::register::{id_of, node_of, ClientOp, ClientReply, Msg};
use crate::core::{Config, NodeId};
use stateright::actor::{model_timeout, Id, Out};
use std::borrow::Cow;

use super::actor::NodeState;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientState {
    /// Index of the operation in progress; `ops.len()` once done.
    pub seq: u8,
}

/// Actors are numbered servers first, then clients.
pub(crate) fn client_id(cfg: &Config, client: u8) -> Id {
    Id::from(cfg.peers.len() + 1 + client as usize)
}

pub(crate) fn client_index(cfg: &Config, id: Id) -> Option<u8> {
    let n = cfg.peers.len() + 1;
    usize::from(id).checked_sub(n).map(|c| c as u8)
}

fn arm(servers: &[Id], o: &mut Out<RaftActor>) {
    for s in servers {
        o.set_timer(Timer::Request(node_of(*s)), model_timeout());
    }
}

pub(crate) fn start(ops: &[ClientOp], servers: &[Id], o: &mut Out<RaftActor>) -> ClientState {
    if !ops.is_empty() {
        arm(servers, o);
    }
    ClientState { seq: 0 }
}

pub(crate) fn on_reply(
    state: &mut Cow<NodeState>,
    ops: &[ClientOp],
    servers: &[Id],
    seq: u8,
    reply: ClientReply,
    o: &mut Out<RaftActor>,
) {
    let Some(client) = state.as_client() else {
        return;
    };
    if seq != client.seq || seq as usize >= ops.len() {
        return; // a late or duplicated reply to an earlier request
    }
    match reply {
        ClientReply::NotLeader(hint) => {
            // Follow the hint. Without one, the request timers already let the client try any
            // server; picking "the next one" would order servers by id and break symmetry.
            if let Some(leader) = hint {
                o.send(
                    id_of(leader),
                    Msg::Request {
                        seq,
                        op: ops[seq as usize],
                    },
                );
            }
        }
        ClientReply::PutOk | ClientReply::GetOk(_) => {
            let next = ClientState { seq: seq + 1 };
            if next.seq as usize >= ops.len() {
                for s in servers {
                    o.cancel_timer(Timer::Request(node_of(*s)));
                }
            }
            *state = Cow::Owned(NodeState::Client(next));
        }
    }
}

/// The client's timeout: send the pending request to `server`.
pub(crate) fn on_request_timer(
    state: &NodeState,
    ops: &[ClientOp],
    server: NodeId,
    o: &mut Out<RaftActor>,
) {
    let Some(client) = state.as_client() else {
        return;
    };
    let Some(op) = ops.get(client.seq as usize) else {
        return;
    };
    o.send(
        id_of(server),
        Msg::Request {
            seq: client.seq,
            op: *op,
        },
    );
    o.set_timer(Timer::Request(server), model_timeout());
}
