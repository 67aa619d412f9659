//! What a leader holds about its leadership and its peers (Figure 2, "Volatile state on
//! leaders"), in one place: a server holds [`LeaderState::default`] in every other role, so
//! stepping down drops all of it in one assignment. [`Progress`] is one peer's part (etcd's
//! `tracker.Progress`).

use super::types::{Index, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a leader knows of one peer (a voter or learner of its configuration, membership.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Progress {
    /// Index of the next entry to send to the peer. Invariant:
    /// `match_index < next_index <= last_log_index() + 1`. A pipelining leader
    /// ([`crate::Config::pipeline`]) moves it past what it sent; otherwise only
    /// acknowledgements and rejections move it.
    pub next_index: Index,
    /// Highest index known to be replicated on the peer (acknowledged by it; sending an entry
    /// never moves it).
    pub match_index: Index,
    /// Pipelining leaders only ([`crate::Config::pipeline`]): the peer's next_index is a guess
    /// being probed (etcd's StateProbe), for every peer on election and a peer whose
    /// AppendEntries was rejected. Sending to such a peer does not move its next_index, so
    /// each rejection moves it back at least one entry, as without pipelining; its first
    /// acknowledgement ends the probe (etcd's StateReplicate), and the leader then pipelines.
    /// Always `false` without pipelining.
    pub probing: bool,
    /// The highest read round the peer echoed in a reply of this term (read.rs); 0 until it
    /// echoes one. Invariant: at most [`LeaderState::read_round`].
    pub read_ack: u64,
    /// Leaders with [`crate::Config::check_quorum`] only: the peer answered (a reply of this
    /// term) since the leader's last election timeout (lease.rs). Always `false` otherwise.
    pub recent_active: bool,
}

impl Progress {
    /// A peer the leader starts tracking (on election, or when it joins the configuration):
    /// next_index at the end of the leader's log (`next`), nothing known replicated, probing
    /// when the leader pipelines.
    pub fn new(next: Index, probing: bool) -> Self {
        Progress {
            next_index: next,
            match_index: 0,
            probing,
            read_ack: 0,
            recent_active: false,
        }
    }
}

/// The state a server holds only while it leads; the default (empty, zero) in every other
/// role.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LeaderState {
    /// One entry per peer the leader replicates to: exactly the voters and learners of its
    /// configuration but itself (membership.rs).
    pub progress: BTreeMap<NodeId, Progress>,
    /// The highest index the leader's own disk is known to hold
    /// ([`crate::Event::Persisted`]), its own match in the commit count. Invariant:
    /// `persisted_index <= last_log_index()`; `last_log_index()` on election (a candidate's
    /// log is durable: every step but a leader's proposal persists before it sends).
    pub persisted_index: Index,
    /// The latest read round of this leadership (read.rs); every AppendEntries carries it and
    /// every reply echoes it. 0 until the leader's first read.
    pub read_round: u64,
    /// The server the leader is handing its leadership to (transfer.rs); it proposes nothing
    /// meanwhile.
    pub transferee: Option<NodeId>,
}

impl LeaderState {
    /// Whether `peer`'s next_index is being probed ([`Progress::probing`]; `false` for a
    /// server that is not a peer).
    pub fn is_probing(&self, peer: NodeId) -> bool {
        self.progress.get(&peer).is_some_and(|g| g.probing)
    }

    /// The peers' next_index, by peer.
    pub fn next_index(&self) -> BTreeMap<NodeId, Index> {
        self.progress
            .iter()
            .map(|(p, g)| (*p, g.next_index))
            .collect()
    }

    /// The peers' match_index, by peer.
    pub fn match_index(&self) -> BTreeMap<NodeId, Index> {
        self.progress
            .iter()
            .map(|(p, g)| (*p, g.match_index))
            .collect()
    }

    /// The peers being probed ([`Progress::probing`]).
    pub fn probing(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.progress
            .iter()
            .filter(|(_, g)| g.probing)
            .map(|(p, _)| *p)
    }

    /// The peers that echoed a read round, with the highest they echoed
    /// ([`Progress::read_ack`]).
    pub fn read_acks(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.progress
            .iter()
            .filter(|(_, g)| g.read_ack > 0)
            .map(|(p, g)| (*p, g.read_ack))
    }

    /// The peers that answered since the last election timeout ([`Progress::recent_active`]).
    pub fn recent_active(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.progress
            .iter()
            .filter(|(_, g)| g.recent_active)
            .map(|(p, _)| *p)
    }
}
