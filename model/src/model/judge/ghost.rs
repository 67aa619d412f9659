//! Ghost records: model-only bookkeeping that lets state properties speak about history.
//!
//! They are kept per server in the model adapter (never in the core) and saved with the
//! server's storage, so a crash does not erase them. They only grow, and every step of every
//! server is observed, so a property stated over them at every reachable state sees every event
//! the paper's history-based property speaks of.

use crate::model::judge::register::Cmd;
use crate::model::shared::Shared;
use raft_core::{Entry, Index, NodeId, Output, Role, Server, Term};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// An entry a leader marked committed: the entry at `index` was committed while the leader was in
/// `commit_term`.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Committed {
    pub index: Index,
    pub entry: Entry<Cmd>,
    pub commit_term: Term,
}

#[derive(
    Clone,
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
pub struct Ghost {
    /// Every term in which this server was leader at the end of some step.
    pub led_terms: BTreeSet<Term>,
    /// Entries this server committed as leader, with the earliest term it did so in.
    pub committed: BTreeMap<(Index, Entry<Cmd>), Term>,
    /// `applied[i - 1]` is the entry this server applied at index `i` (the first time).
    pub applied: Vec<Entry<Cmd>>,
    /// This server once applied, at the same index, an entry different from an earlier one
    /// (possible only across a restart).
    pub applied_conflict: bool,
    /// A leader step removed or changed an entry of its own log (Leader Append-Only broken).
    pub append_only_violated: bool,
    /// Witness: a follower truncated conflicting entries.
    pub truncated_conflict: bool,
    /// A step on a Raft message of an earlier term than this server's changed the server
    /// (Stale Messages Ignored broken).
    pub stale_message_acted_on: bool,
    /// Witness: as leader, this server answered a read from its register without a log entry
    /// (ReadIndex), and the read returned a written value.
    pub read_served_by_index: bool,
    /// Witness: this server became a candidate after winning a pre-vote round (§9.6).
    pub pre_vote_won: bool,
    /// Witness: as leader, this server stepped down in its own term (CheckQuorum, §9.6).
    pub stepped_down_without_quorum: bool,
    /// Witness: this server ignored a RequestVote or PreVote because it knew a leader (§9.6).
    pub vote_ignored_in_lease: bool,
    /// With `--partial-partition` only: the peers that acknowledged an AppendEntries of this
    /// server's leadership, by term.
    pub stable_acks: BTreeSet<(Term, NodeId)>,
    /// With `--partial-partition` only: the latest term in which every peer this server
    /// reaches acknowledged its leadership (0: none): that leadership is stable.
    pub stable_term: Term,
    /// With `--pre-vote` only: this server raised its own term other than by a campaign after
    /// a majority granted its pre-vote for that term ("Elections Follow A Pre-Vote Majority"
    /// broken).
    pub term_raised_without_pre_vote: bool,
    /// With `--partial-partition` only: a stable leadership of this server ended because it
    /// met a higher term ("Stable Leader Not Deposed" broken).
    pub stable_leader_deposed: bool,
    /// Leadership transfers this server took up as leader (bounded by `--max-transfers`).
    pub transfers: u8,
    /// Witness: this server won an election it started on a leader's TimeoutNow (§3.10).
    pub won_by_transfer: bool,
    /// Configuration entries this server appended as leader (bounded by
    /// `--max-config-changes`).
    pub config_changes: u8,
    /// Witness: as leader, this server stepped down, in its term, once its own removal was
    /// committed (§4.2.2).
    pub removed_leader_stepped_down: bool,
    /// Snapshots this server took (bounded by `--max-snapshots`, over all servers).
    pub snapshots: u8,
    /// Forged frames this server received (bounded by `--max-forged`, over all servers).
    pub forged: u8,
    /// The core took a forged frame's term, which no server ever campaigned in ("Forged Terms
    /// Refused" broken). The model records it and keeps the server as it was: the state after
    /// it lies past the bound's terms.
    pub forged_term_adopted: bool,
    /// Witness: this server installed a leader's snapshot (§7, Figure 13).
    pub snapshot_installed: bool,
    /// Witness: this server restarted from a snapshot of its own disk.
    pub restarted_from_snapshot: bool,
    /// The highest current_term this server saved to its disk (what a restart must restore
    /// at least).
    pub durable_term: Term,
    /// This server adopted a lower term than it had: within a life, or on a restart below
    /// `durable_term` ("Terms Never Decrease" broken).
    pub term_decreased: bool,
    /// Within one life, a step lowered this server's commit_index ("Commit Index Never
    /// Decreases" broken).
    pub commit_decreased: bool,
    /// With `--read-index` only: as leader, this server answered a read that fewer than a
    /// majority of its voters (itself included) had acknowledged since it arrived ("Reads
    /// Confirmed By A Quorum" broken).
    pub read_unconfirmed: bool,
    /// What this server learned in its current life and role only: never saved, cleared by a
    /// restart.
    pub volatile: Volatile,
}

/// The ghost records of one life and one role of a server, each bounded by what the core
/// holds at the same moment (so that they add no distinct state to a correct run beyond what
/// the core's own bookkeeping already tells apart): the model's own account of the messages
/// the server received, kept apart from the core's counters. They name servers, so symmetry
/// reduction renames them ([`Ghost::renamed`]).
#[derive(
    Clone,
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
pub struct Volatile {
    /// With `--pre-vote` only: while this server is a pre-candidate, the voters whose
    /// PreVoteResponse granting the term it proposes (its current term + 1) it received in
    /// the round in progress (an election timeout starts a new round).
    pub pre_vote_grants: BTreeSet<NodeId>,
    /// With `--read-index` only: while this server leads, each read it took and has not
    /// answered yet, in arrival order, with the servers whose AppendEntriesResponse of its
    /// term it received since the read arrived.
    pub reads: Vec<PendingRead>,
    /// With `--max-transfers` only: the term of the campaign this server started on a
    /// leader's TimeoutNow (thesis §3.10), while it campaigns in it.
    pub transfer_campaign: Option<Term>,
}

/// A read a leader took (`Event::ReadIndex`) and has not answered yet.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct PendingRead {
    /// The read's tag (its client and sequence number).
    pub id: u64,
    /// The servers whose AppendEntriesResponse of the leader's term it received since the
    /// read arrived.
    pub acked: BTreeSet<NodeId>,
}

/// The server ids inside the ghost, renamed and in a fixed order: what tells apart two
/// renamings of a ghost (symmetry reduction's signature).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct GhostIds {
    pre_vote_grants: Vec<NodeId>,
    reads: Vec<(u64, Vec<NodeId>)>,
    stable_acks: Vec<(Term, NodeId)>,
}

impl Ghost {
    /// What is saved with storage: the ghost without its volatile records (`this` itself when
    /// it has none).
    pub fn durable(this: &Shared<Ghost>) -> Shared<Ghost> {
        if this.volatile == Volatile::default() {
            return this.clone();
        }
        let mut saved = (**this).clone();
        saved.volatile = Volatile::default();
        Shared::new(saved)
    }

    /// The ghost with every server id `n` in it replaced by `to(n)` (`this` itself when it
    /// names none).
    pub fn renamed(this: &Shared<Ghost>, to: impl Fn(NodeId) -> NodeId) -> Shared<Ghost> {
        if !this.names_servers() {
            return this.clone();
        }
        let mut g = (**this).clone();
        g.stable_acks = g.stable_acks.iter().map(|(t, n)| (*t, to(*n))).collect();
        g.volatile.pre_vote_grants = g.volatile.pre_vote_grants.iter().map(|n| to(*n)).collect();
        for read in &mut g.volatile.reads {
            read.acked = read.acked.iter().map(|n| to(*n)).collect();
        }
        Shared::new(g)
    }

    /// The server ids inside the ghost, each replaced by `to(n)`, in a fixed order.
    pub fn ids(&self, to: impl Fn(NodeId) -> NodeId) -> GhostIds {
        let sorted = |set: &BTreeSet<NodeId>| {
            let mut v: Vec<NodeId> = set.iter().map(|n| to(*n)).collect();
            v.sort_unstable();
            v
        };
        let mut stable_acks: Vec<(Term, NodeId)> =
            self.stable_acks.iter().map(|(t, n)| (*t, to(*n))).collect();
        stable_acks.sort_unstable();
        GhostIds {
            pre_vote_grants: sorted(&self.volatile.pre_vote_grants),
            reads: self
                .volatile
                .reads
                .iter()
                .map(|r| (r.id, sorted(&r.acked)))
                .collect(),
            stable_acks,
        }
    }

    /// Orders two ghosts by what they hold with every server id left out (how many, not
    /// which): the same for every renaming of either.
    pub fn cmp_ignoring_ids(&self, other: &Ghost) -> Ordering {
        if !self.names_servers() && !other.names_servers() {
            return self.cmp(other);
        }
        let counts = |g: &Ghost| {
            let by_term = g.stable_acks.iter().map(|(t, _)| *t).collect::<Vec<_>>();
            let reads: Vec<(u64, usize)> = g
                .volatile
                .reads
                .iter()
                .map(|r| (r.id, r.acked.len()))
                .collect();
            (by_term, g.volatile.pre_vote_grants.len(), reads)
        };
        let without_ids = |g: &Ghost| {
            let mut g = g.clone();
            g.stable_acks.clear();
            g.volatile = Volatile::default();
            g
        };
        counts(self)
            .cmp(&counts(other))
            .then_with(|| without_ids(self).cmp(&without_ids(other)))
    }

    fn names_servers(&self) -> bool {
        !self.stable_acks.is_empty()
            || !self.volatile.pre_vote_grants.is_empty()
            || self.volatile.reads.iter().any(|r| !r.acked.is_empty())
    }

    /// Record what one step of the core did: `before` and `after` are the server around the step.
    /// Copy-on-write: the shared record is copied only when the step changes it.
    pub fn record(
        this: &mut Shared<Ghost>,
        before: &Server<Cmd>,
        after: &Server<Cmd>,
        out: &Output<Cmd>,
    ) {
        if after.role == Role::Leader {
            if !this.led_terms.contains(&after.current_term()) {
                Shared::make_mut(this)
                    .led_terms
                    .insert(after.current_term());
            }
            // Leader Append-Only: within one leadership, the log only grows.
            if before.role == Role::Leader
                && before.current_term() == after.current_term()
                && !appends_only(before, after)
                && !this.append_only_violated
            {
                Shared::make_mut(this).append_only_violated = true;
            }
        }
        // What a leader commits, also in the step in which it steps down because its own
        // removal is now committed (§4.2.2).
        let leads = after.role == Role::Leader
            || (before.role == Role::Leader && after.current_term() == before.current_term());
        if leads {
            for index in before.commit_index + 1..=after.commit_index {
                if let Some(entry) = after.entry(index) {
                    if !this.committed.contains_key(&(index, entry.clone())) {
                        Shared::make_mut(this)
                            .committed
                            .insert((index, entry.clone()), after.current_term());
                    }
                }
            }
        }
        if before.role == Role::PreCandidate
            && after.current_term() > before.current_term()
            && !this.pre_vote_won
        {
            Shared::make_mut(this).pre_vote_won = true;
        }
        if before.leader.transferee.is_none() && after.leader.transferee.is_some() {
            let ghost = Shared::make_mut(this);
            ghost.transfers = ghost.transfers.saturating_add(1);
        }
        if before.role == Role::Leader
            && after.role == Role::Follower
            && after.current_term() == before.current_term()
            && !this.stepped_down_without_quorum
        {
            Shared::make_mut(this).stepped_down_without_quorum = true;
        }
        // Commit Index Never Decreases (Figure 2: commit_index "increases monotonically"
        // while the server is up).
        if after.commit_index < before.commit_index && !this.commit_decreased {
            Shared::make_mut(this).commit_decreased = true;
        }
        // Terms Never Decrease (§5.1: a server only adopts a later term).
        if after.current_term() < before.current_term() && !this.term_decreased {
            Shared::make_mut(this).term_decreased = true;
        }
        if let Some(after_index) = out.persist.truncated_after {
            // (An installed snapshot that discards the log is not a conflict truncation.)
            if after_index < before.last_log_index() && !out.restore && !this.truncated_conflict {
                Shared::make_mut(this).truncated_conflict = true;
            }
        }
        if !out.apply.is_empty() {
            Shared::make_mut(this).observe_applied(&out.apply);
        }
    }

    /// Record that this server saved `term` as its current term (Figure 2: current_term is
    /// persistent).
    pub fn observe_saved_term(this: &mut Shared<Ghost>, term: Term) {
        if term > this.durable_term {
            Shared::make_mut(this).durable_term = term;
        }
    }

    /// Record that this server restarted with `term`: below the term it had saved, it
    /// forgot one (Figure 2: current_term is persistent).
    pub fn observe_restart(this: &mut Shared<Ghost>, term: Term) {
        if term < this.durable_term && !this.term_decreased {
            Shared::make_mut(this).term_decreased = true;
        }
    }

    /// Record that a step on a message of an earlier term than `before`'s changed the server
    /// into `after` (§5.1: a stale request is refused with the current term, a stale reply is
    /// dropped; neither may change the receiver).
    pub fn record_stale_step(this: &mut Shared<Ghost>, before: &Server<Cmd>, after: &Server<Cmd>) {
        if before != after && !this.stale_message_acted_on {
            Shared::make_mut(this).stale_message_acted_on = true;
        }
    }

    /// With `--partial-partition`: record that the leader `before` had an AppendEntries of its
    /// term acknowledged by `acknowledged_by`, its leadership stable once all `reachable`
    /// peers did, and that a stable leadership ended in a higher term.
    pub fn record_stability(
        this: &mut Shared<Ghost>,
        before: &Server<Cmd>,
        after: &Server<Cmd>,
        acknowledged_by: Option<NodeId>,
        reachable: usize,
    ) {
        let term = before.current_term();
        if let Some(peer) = acknowledged_by {
            if !this.stable_acks.contains(&(term, peer)) {
                let acks = Shared::make_mut(this);
                acks.stable_acks.insert((term, peer));
                let by = acks
                    .stable_acks
                    .range((term, NodeId(0))..)
                    .filter(|(t, _)| *t == term);
                if by.count() >= reachable && acks.stable_term < term {
                    acks.stable_term = term;
                }
            }
        }
        if before.role == Role::Leader
            && this.stable_term == before.current_term()
            && after.current_term() > before.current_term()
            && !this.stable_leader_deposed
        {
            Shared::make_mut(this).stable_leader_deposed = true;
        }
    }

    /// The state machine now holds the entries 1..=k of a snapshot image (installed from a
    /// leader, or compacted past what was applied): they count as applied, in order.
    pub fn observe_image(this: &mut Shared<Ghost>, entries: &[Entry<Cmd>]) {
        let known = this.applied.len().min(entries.len());
        if this.applied[..known] != entries[..known] {
            Shared::make_mut(this).applied_conflict = true;
        }
        if entries.len() > this.applied.len() {
            let g = Shared::make_mut(this);
            let from = g.applied.len();
            g.applied.extend_from_slice(&entries[from..]);
        }
    }

    fn observe_applied(&mut self, apply: &[(Index, Entry<Cmd>)]) {
        for (index, entry) in apply {
            let i = *index as usize;
            if i <= self.applied.len() {
                if self.applied[i - 1] != *entry {
                    self.applied_conflict = true;
                }
            } else if i == self.applied.len() + 1 {
                self.applied.push(entry.clone());
            } else {
                // Applied out of order: record it as a conflict, it can never be right.
                self.applied_conflict = true;
            }
        }
    }

    /// Entries committed as recorded by this server, as (index, entry, commit term).
    pub fn committed(&self) -> impl Iterator<Item = Committed> + '_ {
        self.committed
            .iter()
            .map(|((index, entry), term)| Committed {
                index: *index,
                entry: entry.clone(),
                commit_term: *term,
            })
    }
}

/// Leader Append-Only across one step of a leader: every entry it had is still there (in its
/// log, or covered by its snapshot: compaction keeps the entry at the snapshot point's term),
/// and the log did not shrink.
fn appends_only(before: &Server<Cmd>, after: &Server<Cmd>) -> bool {
    if after.last_log_index() < before.last_log_index() {
        return false;
    }
    let from = before.snapshot_index().max(after.snapshot_index()) + 1;
    let point = after.snapshot_index();
    (point <= before.snapshot_index() || before.term_at(point) == after.term_at(point))
        && (from..=before.last_log_index()).all(|i| before.entry(i) == after.entry(i))
}
