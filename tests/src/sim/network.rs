//! The simulated network: one queue of deliveries ordered by virtual time, with the lab's
//! fault parameters (6.5840 `labrpc`): per-message delay, loss of requests and replies,
//! duplication, long reordering of replies, per-server disconnects and per-link cuts.

use raft_impl::core::{Message, NodeId};
use raft_impl::kv::Command;
use raft_impl::wire::ClientReply;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Where a client's answer goes: the client and which attempt of its current operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientToken {
    pub client: usize,
    pub attempt: u64,
}

impl ClientToken {
    /// Proposals made by the lab harness itself (`Start`): nobody waits for their answer.
    pub const LAB: ClientToken = ClientToken {
        client: usize::MAX,
        attempt: 0,
    };
    /// Operators' requests made by the harness itself ([`crate::sim::Sim::transfer_leadership`]):
    /// their answers are kept in [`crate::sim::Sim::admin_replies`].
    pub const ADMIN: ClientToken = ClientToken {
        client: usize::MAX,
        attempt: 1,
    };
}

/// Fault parameters.
#[derive(Clone, Copy, Debug)]
pub struct NetParams {
    /// labrpc's unreliable mode: 10% of requests and 10% of replies lost, 0–26 ms delay.
    pub unreliable: bool,
    /// labrpc's long reordering: 2/3 of replies held 200–2,200 ms.
    pub long_reordering: bool,
    /// Probability that a delivered message is delivered twice (independent delays).
    pub duplicate: f64,
    /// Broken transport (never in raft-impl): every Raft message is handed to the receiving
    /// core twice, as a transport that replays a frame would.
    pub replay_frames: bool,
}

impl Default for NetParams {
    fn default() -> Self {
        NetParams {
            unreliable: false,
            long_reordering: false,
            duplicate: 0.0,
            replay_frames: false,
        }
    }
}

/// Something in flight.
#[derive(Clone, Debug)]
pub enum Delivery {
    Peer {
        from: NodeId,
        to: NodeId,
        msg: Message<Command>,
    },
    Request {
        to: usize,
        token: ClientToken,
        command: Command,
    },
    Reply {
        token: ClientToken,
        reply: ClientReply,
    },
}

/// Whether a Raft message is a reply (labrpc treats requests and replies differently).
pub fn is_reply(msg: &Message<Command>) -> bool {
    msg.is_reply()
}

#[derive(Default)]
pub struct Network {
    pub params: NetParams,
    queue: BTreeMap<(Duration, u64), Delivery>,
    seq: u64,
    /// Lab `connect`/`disconnect`: a disconnected server neither sends nor receives.
    pub connected: Vec<bool>,
    /// Directed links that are cut (partitions).
    pub cut: BTreeSet<(usize, usize)>,
    /// RPC requests sent (RequestVote, AppendEntries), as labrpc counts calls.
    pub rpcs: u64,
    /// Encoded bytes of those requests.
    pub bytes: u64,
}

impl Network {
    pub fn new(n: usize) -> Self {
        Network {
            connected: vec![true; n],
            ..Network::default()
        }
    }

    pub fn link_up(&self, from: usize, to: usize) -> bool {
        self.connected[from] && self.connected[to] && !self.cut.contains(&(from, to))
    }

    pub fn push(&mut self, at: Duration, delivery: Delivery) {
        self.seq += 1;
        self.queue.insert((at, self.seq), delivery);
    }

    pub fn next_time(&self) -> Option<Duration> {
        self.queue.first_key_value().map(|((t, _), _)| *t)
    }

    pub fn pop(&mut self) -> Option<(Duration, Delivery)> {
        self.queue.pop_first().map(|((t, _), d)| (t, d))
    }

    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// The delays of the copies of one message (empty: lost), by the lab's rules.
    pub fn fate(&self, rng: &mut fastrand::Rng, reply: bool) -> Vec<Duration> {
        let p = self.params;
        let mut copies = Vec::new();
        if p.unreliable && rng.f64() < 0.1 {
            // labrpc: 10% of requests are lost before the server sees them, and 10% of replies
            // are lost on the way back.
            return copies;
        }
        let n = if p.duplicate > 0.0 && rng.f64() < p.duplicate {
            2
        } else {
            1
        };
        for _ in 0..n {
            let mut ms = if p.unreliable {
                rng.u64(0..27)
            } else {
                rng.u64(0..3)
            };
            if reply && p.long_reordering && rng.u64(0..900) < 600 {
                // labrpc: with long reordering, 2/3 of replies are held 200–2,200 ms.
                ms = 200 + rng.u64(0..2001);
            }
            copies.push(Duration::from_millis(ms));
        }
        copies
    }
}
