//! The model's clients: each runs its operations one at a time against the replicated register,
//! following not-leader hints, and retrying at any moment (its timeout) at the next server.
//! Retries carry the same sequence number, so the service applies each operation at most once.

use super::actor::{RaftActor, Timer};
use super::register::{id_of, ClientOp, ClientReply, Msg};
use crate::core::Config;
use stateright::actor::{model_timeout, Id, Out};
use std::borrow::Cow;

use super::actor::NodeState;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientState {
    /// Index of the operation in progress; `ops.len()` once done.
    pub seq: u8,
    /// The server the current request was sent to.
    pub target: Id,
}

/// Actors are numbered servers first, then clients.
pub(crate) fn client_id(cfg: &Config, client: u8) -> Id {
    Id::from(cfg.peers.len() + 1 + client as usize)
}

pub(crate) fn client_index(cfg: &Config, id: Id) -> Option<u8> {
    let n = cfg.peers.len() + 1;
    usize::from(id).checked_sub(n).map(|c| c as u8)
}

pub(crate) fn start(
    _id: Id,
    index: u8,
    ops: &[ClientOp],
    servers: &[Id],
    o: &mut Out<RaftActor>,
) -> ClientState {
    let target = servers[index as usize % servers.len()];
    if let Some(op) = ops.first() {
        o.send(target, Msg::Request { seq: 0, op: *op });
        o.set_timer(Timer::Retry, model_timeout());
    }
    ClientState { seq: 0, target }
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
    let mut next = client.clone();
    match reply {
        ClientReply::NotLeader(hint) => {
            // Follow the hint, or try the next server.
            next.target = match hint {
                Some(leader) => id_of(leader),
                None => {
                    let at = servers
                        .iter()
                        .position(|s| *s == client.target)
                        .unwrap_or(0);
                    servers[(at + 1) % servers.len()]
                }
            };
            o.send(
                next.target,
                Msg::Request {
                    seq,
                    op: ops[seq as usize],
                },
            );
        }
        ClientReply::PutOk | ClientReply::GetOk(_) => {
            next.seq += 1;
            match ops.get(next.seq as usize) {
                Some(op) => o.send(
                    next.target,
                    Msg::Request {
                        seq: next.seq,
                        op: *op,
                    },
                ),
                None => o.cancel_timer(Timer::Retry),
            }
        }
    }
    *state = Cow::Owned(NodeState::Client(next));
}

/// The client's timeout: send the pending request again, to the next server in turn.
pub(crate) fn on_retry(
    state: &mut Cow<NodeState>,
    ops: &[ClientOp],
    servers: &[Id],
    o: &mut Out<RaftActor>,
) {
    let Some(client) = state.as_client() else {
        return;
    };
    let Some(op) = ops.get(client.seq as usize) else {
        return;
    };
    let at = servers
        .iter()
        .position(|s| *s == client.target)
        .unwrap_or(0);
    let mut next = client.clone();
    next.target = servers[(at + 1) % servers.len()];
    o.send(
        next.target,
        Msg::Request {
            seq: client.seq,
            op: *op,
        },
    );
    o.set_timer(Timer::Retry, model_timeout());
    *state = Cow::Owned(NodeState::Client(next));
}
