//! Basic Raft types shared by the model and the runtime.

use crate::log::Log;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A term number (paper §5.1). Starts at 0; the first election produces term 1.
pub type Term = u64;

/// The first term a correct cluster never reaches: terms grow by one per election, and even one
/// election per millisecond reaches 2^48 only after 8,900 years. A message carrying this term
/// or a higher one is refused ([`crate::CoreError::AbsurdTerm`]) instead of adopted: it could
/// only come from a forged or corrupt frame, and a server at this term could never start an
/// election that its peers accept, so adopting it would end the cluster's elections for good
/// (issue 38, finding 2). The default of [`crate::Config::max_term`].
pub const MAX_TERM: Term = 1 << 48;

/// The most terms one message may move a server's term forward: 2^24 (16.7 million) elections
/// are more than a server misses in two months of elections every 300 ms without PreVote (with
/// PreVote, a server that cannot win raises no term). A message further ahead is refused
/// ([`crate::CoreError::AbsurdTerm`]), so a corrupt or forged frame cannot move a cluster next
/// to [`MAX_TERM`] in one step: it takes 2^24 adopted terms, each one synced to disk, to gain
/// 2^48. Authentication (a cluster secret) is what keeps forged frames out; this rule keeps one
/// bad frame from ending the cluster. The default of [`crate::Config::max_term_jump`].
pub const MAX_TERM_JUMP: Term = 1 << 24;

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

/// A snapshot (§7, Figure 13): the state machine after applying every entry up to
/// `last_included_index`, standing for those entries, which the log no longer holds.
/// Invariant: it holds only committed state (`last_included_index <= commit_index` on every
/// server that has it), so every server's copy of the entries it covers is the same.
/// The default, index 0, is the empty prefix: no snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Snapshot {
    /// The index of the last entry the snapshot replaces.
    pub last_included_index: Index,
    /// The term of that entry (the AppendEntries consistency check at the snapshot point).
    pub last_included_term: Term,
    /// The latest configuration entry at or before `last_included_index` and the
    /// configuration it leads to (membership.rs); `None`: [`crate::Config::initial`]. A
    /// server that restarts or installs from the snapshot knows its cluster from it.
    pub config: Option<(Index, Membership)>,
    /// The state machine's image, client sessions included; opaque to the core (the driver
    /// makes it in [`crate::Event::Compact`] and restores it when [`crate::Output::restore`]
    /// says so, or after a restart).
    pub data: Vec<u8>,
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
    /// The compacted prefix of the log (§7); the default stands for no entry.
    #[serde(default)]
    pub snapshot: Snapshot,
    /// The log after the snapshot: `log[i]` is the entry at index
    /// `snapshot.last_included_index + 1 + i` (`Server::entry` is the one place that
    /// converts).
    pub log: Log<Entry<C>>,
}

impl<C> Default for HardState<C> {
    fn default() -> Self {
        HardState {
            current_term: 0,
            voted_for: None,
            snapshot: Snapshot::default(),
            log: Log::new(),
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

    /// The configuration this command installs, if it is a configuration entry
    /// (membership.rs): the whole membership after the change, so that a log read from its
    /// start, by a server that joined later too, yields every configuration. A client's
    /// command is `None`.
    fn configuration(&self) -> Option<Membership> {
        None
    }
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

/// Where a member is reached: its peer address (Raft messages) and client address (requests),
/// as text the driver dials. Data the configuration carries, not a rule: no rule of the core
/// reads it. Carrying it in the configuration entries (thesis §4.1: an entry names the
/// servers of the new configuration) means every server learns a member's address from its
/// log or its snapshot, as it learns the member itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Address {
    pub peer: String,
    pub client: String,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer {} client {}", self.peer, self.client)
    }
}

/// A cluster configuration (Ongaro's thesis ch. 4, membership.rs): the voters, whose
/// majorities elect leaders and commit entries, and the learners, who receive the log but
/// neither vote nor count toward any majority; and the addresses of the members that have
/// one in the configuration. Invariants: the two sets are disjoint; every address is a
/// member's.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Membership {
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
    /// Members without an entry here are reached at an address the driver knows otherwise
    /// (the node's bootstrap file; the model routes by id).
    #[serde(default)]
    pub addresses: BTreeMap<NodeId, Address>,
}

impl Membership {
    /// A configuration of these voters and no learners.
    pub fn voters(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Membership {
            voters: voters.into_iter().collect(),
            ..Membership::default()
        }
    }

    /// The same configuration with member `id` at `address` (how a driver builds the entry of
    /// [`ConfigChange::AddLearner`] with the new member's address, or of
    /// [`ConfigChange::Readdress`]).
    pub fn with_address(mut self, id: NodeId, address: Address) -> Membership {
        self.addresses.insert(id, address);
        self
    }

    /// The address member `id` has in this configuration, if it has one.
    pub fn address(&self, id: NodeId) -> Option<&Address> {
        self.addresses.get(&id)
    }

    /// Whether `id` is a voter or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }

    /// Every voter and learner, in order.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.union(&self.learners).copied()
    }

    /// The configuration after `change` (whether the change makes sense here is the
    /// leader's to check: membership.rs).
    pub fn changed(&self, change: ConfigChange) -> Membership {
        let mut m = self.clone();
        match change {
            ConfigChange::AddLearner(id) => {
                if !m.voters.contains(&id) {
                    m.learners.insert(id);
                }
            }
            ConfigChange::Promote(id) => {
                m.learners.remove(&id);
                m.voters.insert(id);
            }
            ConfigChange::Remove(id) => {
                m.voters.remove(&id);
                m.learners.remove(&id);
                m.addresses.remove(&id);
            }
            // The new address is the driver's to set (`with_address`).
            ConfigChange::Readdress(_) => {}
        }
        m
    }

    /// The one single-server change that leads from this configuration to `next`, if there is
    /// exactly one: a server added as a learner (with or without its address), a learner
    /// promoted, a member removed (with its address), or a member's address changed. `None`
    /// for any other difference (none, several, a server added straight as a voter or
    /// demoted, an address changed beside another change, an address removed from a member
    /// that stays, or an address of a non-member).
    pub fn change_to(&self, next: &Membership) -> Option<ConfigChange> {
        if next.addresses.keys().any(|id| !next.contains(*id)) {
            return None;
        }
        let ids: BTreeSet<NodeId> = self
            .addresses
            .keys()
            .chain(next.addresses.keys())
            .copied()
            .collect();
        let mut readdressed = ids
            .into_iter()
            .filter(|id| self.addresses.get(id) != next.addresses.get(id));
        let readdressed = match (readdressed.next(), readdressed.next()) {
            (None, _) => None,
            (Some(id), None) => Some(id),
            (Some(_), Some(_)) => return None,
        };
        match (self.change_of_members(next), readdressed) {
            (change, None) => change,
            (Some(ConfigChange::AddLearner(id)), Some(r)) if r == id => {
                Some(ConfigChange::AddLearner(id))
            }
            (Some(ConfigChange::Remove(id)), Some(r)) if r == id => Some(ConfigChange::Remove(id)),
            (None, Some(id)) if self.contains(id) && next.addresses.contains_key(&id) => {
                (self.voters == next.voters && self.learners == next.learners)
                    .then_some(ConfigChange::Readdress(id))
            }
            _ => None,
        }
    }

    /// The one change of the voter and learner sets from this configuration to `next`.
    fn change_of_members(&self, next: &Membership) -> Option<ConfigChange> {
        let ids: BTreeSet<NodeId> = self.members().chain(next.members()).collect();
        let mut changes = ids.into_iter().filter_map(|id| {
            let was = (self.voters.contains(&id), self.learners.contains(&id));
            let is = (next.voters.contains(&id), next.learners.contains(&id));
            match (was, is) {
                _ if was == is => None,
                ((false, false), (false, true)) => Some(Some(ConfigChange::AddLearner(id))),
                ((false, true), (true, false)) => Some(Some(ConfigChange::Promote(id))),
                (_, (false, false)) => Some(Some(ConfigChange::Remove(id))),
                _ => Some(None),
            }
        });
        match (changes.next(), changes.next()) {
            (Some(change), None) => change,
            _ => None,
        }
    }

    /// Whether every majority of this configuration's voters shares a voter with every
    /// majority of `other`'s: the condition that makes a change between them safe (any two
    /// configurations one single-server change apart satisfy it, thesis §4.2).
    pub fn majorities_overlap(&self, other: &Membership) -> bool {
        let majority = |n: usize| n / 2 + 1;
        let shared = self.voters.intersection(&other.voters).count();
        let only_self = self.voters.len() - shared;
        let only_other = other.voters.len() - shared;
        // Two disjoint majorities exist iff each can be filled from its own voters first
        // and the shared voters they still need fit side by side.
        let need_self = majority(self.voters.len()).saturating_sub(only_self);
        let need_other = majority(other.voters.len()).saturating_sub(only_other);
        need_self + need_other > shared
    }
}

/// One single-server membership change (thesis §4.2), as an operator asks for it; the
/// configuration entry carries the configuration it leads to, which takes effect on every
/// server as soon as the entry is in its log, committed or not (§4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConfigChange {
    /// A new server joins as a learner: it receives the log and catches up, but does not
    /// vote.
    AddLearner(NodeId),
    /// A learner that has caught up becomes a voter.
    Promote(NodeId),
    /// A voter or learner leaves the cluster (a leader may remove itself: it steps down once
    /// the change is committed, §4.2.2).
    Remove(NodeId),
    /// A member's address changes (its voting rights do not): a configuration change like the
    /// others, one at a time, so that every server learns the new address from its log.
    Readdress(NodeId),
}

impl fmt::Display for ConfigChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigChange::AddLearner(id) => write!(f, "+learner {id}"),
            ConfigChange::Promote(id) => write!(f, "promote {id}"),
            ConfigChange::Remove(id) => write!(f, "remove {id}"),
            ConfigChange::Readdress(id) => write!(f, "readdress {id}"),
        }
    }
}

/// Why a leader refused a configuration change (membership.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConfigRefusal {
    /// The proposed configuration is not one single-server change from the leader's
    /// (it changed meanwhile, or the change adds a voter directly or demotes one).
    NotASingleChange,
    /// The leader has not yet committed an entry of its own term (the condition announced on
    /// raft-dev in July 2015: without it, single-server changes are unsafe).
    NotCommittedInTerm,
    /// An earlier configuration entry is not yet committed: one change at a time.
    ChangePending,
    /// The server to add is already a voter or a learner.
    AlreadyMember,
    /// Only a learner can be promoted.
    NotALearner,
    /// The learner to promote has not yet caught up with the leader's commit index (§4.2.1).
    LearnerBehind,
    /// The server to remove is not a member.
    NotAMember,
    /// A cluster keeps at least one voter.
    LastVoter,
}

impl fmt::Display for ConfigRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigRefusal::NotASingleChange => {
                "not one single-server change from the current configuration"
            }
            ConfigRefusal::NotCommittedInTerm => {
                "the leader has not yet committed an entry of its term; retry shortly"
            }
            ConfigRefusal::ChangePending => {
                "an earlier membership change is not yet committed; retry shortly"
            }
            ConfigRefusal::AlreadyMember => "that server is already a member",
            ConfigRefusal::NotALearner => "only a learner can be promoted (add it first)",
            ConfigRefusal::LearnerBehind => {
                "that learner has not caught up with the leader yet; retry shortly"
            }
            ConfigRefusal::NotAMember => "that server is not a member",
            ConfigRefusal::LastVoter => "the cluster must keep at least one voter",
        })
    }
}
