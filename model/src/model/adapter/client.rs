//! The model's clients: each runs its operations one at a time against the replicated register.
//! A waiting client may send (or resend) its pending request to any server at any moment (its
//! `Timer::Request(server)` timeouts), and follows a not-leader reply to the hinted server. Resends carry the same sequence number, so the service applies each operation
//! at most once. Which server a client last tried is not part of its state: any server may be
//! tried at any time, which covers every retry policy.

use crate::model::adapter::actors::Actors;
use crate::model::adapter::node::{ClientState, NodeState, Timer};
use crate::model::judge::register::{ClientOp, ClientReply, Msg};
use raft_core::NodeId;
use stateright::actor::{model_timeout, Actor, Id, Out};
use std::borrow::Cow;

fn arm<A: Actor<Msg = Msg, Timer = Timer>>(servers: &[Id], o: &mut Out<A>) {
    for s in servers {
        o.set_timer(Timer::Request(Actors::node(*s)), model_timeout());
    }
}

pub(crate) fn start<A: Actor<Msg = Msg, Timer = Timer>>(
    ops: &[ClientOp],
    servers: &[Id],
    o: &mut Out<A>,
) -> ClientState {
    if !ops.is_empty() {
        arm(servers, o);
    }
    ClientState { seq: 0 }
}

pub(crate) fn on_reply<A: Actor<Msg = Msg, Timer = Timer>>(
    state: &mut Cow<NodeState>,
    ops: &[ClientOp],
    servers: &[Id],
    seq: u8,
    reply: ClientReply,
    o: &mut Out<A>,
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
                    Actors::server(leader),
                    Msg::Request {
                        seq,
                        op: ops[seq as usize],
                    },
                );
            }
        }
        // Never for the pending request: a stale copy is older than the latest one applied.
        ClientReply::Stale => {}
        ClientReply::PutOk | ClientReply::GetOk(_) => {
            let next = ClientState { seq: seq + 1 };
            if next.seq as usize >= ops.len() {
                for s in servers {
                    o.cancel_timer(Timer::Request(Actors::node(*s)));
                }
            }
            *state = Cow::Owned(NodeState::Client(next));
        }
    }
}

/// The client's timeout: send the pending request to `server`.
pub(crate) fn on_request_timer<A: Actor<Msg = Msg, Timer = Timer>>(
    state: &NodeState,
    ops: &[ClientOp],
    server: NodeId,
    o: &mut Out<A>,
) {
    let Some(client) = state.as_client() else {
        return;
    };
    let Some(op) = ops.get(client.seq as usize) else {
        return;
    };
    o.send(
        Actors::server(server),
        Msg::Request {
            seq: client.seq,
            op: *op,
        },
    );
    o.set_timer(Timer::Request(server), model_timeout());
}
