//! Basic Raft types shared by the model and the runtime.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A term number (paper §5.1). Starts at 0; the first election produces term 1.
pub type Term = u64;

/// The highest term a correct cluster can reach: terms grow by one per election, and even one
/// election per millisecond reaches 2^48 only after 8,900 years. A message carrying a higher term
/// is refused ([`crate::CoreError::AbsurdTerm`]) instead of adopted: adopting it could only
/// come from a forged or corrupt frame, and would exhaust the term space of the whole cluster.
pub const MAX_TERM: Term = 1 << 48;

/// A log index. The first entry has index 1; index 0 stands for the empty prefix.
pub type Index = u64;

/// Identifies a server. Opaque to the core: the model and the runtime number servers
/// differently, so the core never converts it to a position.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// One log entry: the term in which a leader created it, and the client command.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Entry<C> {
    pub term: Term,
    pub command: C,
}

/// The state a server keeps on stable storage (Figure 2, "Persistent state on all servers").
/// It must be durable before the server answers or sends anything that depends on it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HardState<C> {
    /// Latest term this server has seen; never decreases.
    pub current_term: Term,
    /// Candidate that received this server's vote in `current_term`, if any. Reset to `None`
    /// whenever `current_term` changes.
    pub voted_for: Option<NodeId>,
    /// The log; `log[i - 1]` is the entry at index `i`.
    pub log: Vec<Entry<C>>,
}

impl<C> Default for HardState<C> {
    fn default() -> Self {
        HardState {
            current_term: 0,
            voted_for: None,
            log: Vec::new(),
        }
    }
}

/// A server's role (paper §5.1).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Role {
    #[default]
    Follower,
    /// Thesis §9.6, PreVote: asking whether it could win an election, at its current term,
    /// before it starts one ([`crate::Config::pre_vote`]).
    PreCandidate,
    Candidate,
    Leader,
}

/// What the core needs to know of a command: an upper bound on the bytes it takes inside a
/// message, for batching AppendEntries by bytes ([`crate::Config::max_bytes_per_append`]).
pub trait Payload {
    fn payload_bytes(&self) -> usize;
}

impl Payload for u8 {
    fn payload_bytes(&self) -> usize {
        1
    }
}

impl Payload for String {
    fn payload_bytes(&self) -> usize {
        // A length prefix (a varint of at most 10 bytes) and the bytes.
        10 + self.len()
    }
}

/// An upper bound on the bytes an entry adds besides its command (its term, a varint).
pub const ENTRY_OVERHEAD_BYTES: usize = 10;

/// A read a leader holds until a majority confirms its leadership (thesis §6.4, read.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PendingRead {
    /// The driver's tag for this read (it names the read in [`ReadResult`]).
    pub id: u64,
    /// The read index: the leader's commit_index when the read arrived.
    pub index: Index,
    /// The read round it started; replies echoing this round or a later one confirm it.
    pub round: u64,
}

/// What became of a read (`Event::ReadIndex`, see read.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReadResult {
    /// Answer read `id` from the state machine now: a majority confirmed this server's
    /// leadership after the read arrived, and the state machine holds the log up to `index`
    /// once the driver has applied the step's `Output::apply` (which it does first).
    Ready { id: u64, index: Index },
    /// This server is not the leader, or stopped leading before the read could be answered;
    /// `leader_hint` is the leader it last heard from.
    NotLeader {
        id: u64,
        leader_hint: Option<NodeId>,
    },
    /// The leader has not yet committed an entry of its term, so it knows no safe read index:
    /// it proposed the read's command instead (`Output::propose` says where), and the read is
    /// answered like any proposal, when that entry is applied.
    ThroughLog { id: u64 },
}

/// What a leadership transfer request ([`crate::Event::TransferLeadership`]) came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TransferResult {
    /// This leader is handing over to the target: it sends TimeoutNow once the target's log
    /// matches its own, and refuses proposals meanwhile (they go to the target). The transfer
    /// ends when the target's election deposes it, or is abandoned at this leader's next
    /// election timeout.
    Started,
    /// The target is this server, already the leader.
    AlreadyLeader,
    /// The target is not a member of this cluster.
    NotAPeer,
    /// This server is not the leader; `leader_hint` is the leader it last heard from.
    NotLeader { leader_hint: Option<NodeId> },
}
