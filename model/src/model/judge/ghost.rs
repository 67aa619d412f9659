//! Ghost records: model-only bookkeeping that lets state properties speak about history.
//!
//! They are kept per server in the model adapter (never in the core) and saved with the
//! server's storage, so a crash does not erase them. They only grow, and every step of every
//! server is observed, so a property stated over them at every reachable state sees every event
//! the paper's history-based property speaks of.

use crate::model::judge::register::Cmd;
use crate::model::shared::Shared;
use raft_core::{Entry, Index, NodeId, Output, Role, Server, Term};
use std::collections::{BTreeMap, BTreeSet};

/// An entry a leader marked committed: the entry at `index` was committed while the leader was in
/// `commit_term`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Committed {
    pub index: Index,
    pub entry: Entry<Cmd>,
    pub commit_term: Term,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// Witness: this server installed a leader's snapshot (§7, Figure 13).
    pub snapshot_installed: bool,
    /// Witness: this server restarted from a snapshot of its own disk.
    pub restarted_from_snapshot: bool,
}

impl Ghost {
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
        if after.role == Role::Leader
            && before.role == Role::Candidate
            && before.transfer_campaign
            && !this.won_by_transfer
        {
            Shared::make_mut(this).won_by_transfer = true;
        }
        if before.role == Role::Leader
            && after.role == Role::Follower
            && after.current_term() == before.current_term()
            && !this.stepped_down_without_quorum
        {
            Shared::make_mut(this).stepped_down_without_quorum = true;
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
