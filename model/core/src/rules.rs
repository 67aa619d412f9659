//! The decision points of the protocol, each named once with the paper's rule.
//!
//! The core's handlers ask a [`Rules`] value at exactly these points; every method's default
//! body is the correct rule, and [`Protocol`] (what [`crate::Config::new`] builds, and all that
//! a node can use) keeps every default. The model checker implements `Rules` with deliberately
//! broken rules (its mutant catalogue, in raft-model) to show that its properties catch each
//! classic bug; this crate names no such bug.

use super::types::{HardState, Index, NodeId, Term};
use std::fmt::Debug;
use std::hash::Hash;

pub trait Rules: Clone + Debug + PartialEq + Eq + Hash + Send + Sync + 'static {
    /// Figure 2: current_term, voted_for and the log are persistent; a restarted server gets
    /// back exactly what it made durable.
    fn recover<C>(&self, hard: HardState<C>) -> HardState<C> {
        hard
    }

    /// §5.2: the number of servers (votes or replicas) that form a majority of `n`.
    fn quorum(&self, n: usize) -> usize {
        n / 2 + 1
    }

    /// Figure 2, all servers: "if RPC request or response contains term T > currentTerm: set
    /// currentTerm = T", for a term the protocol can go on from (issue 38, finding 2): below
    /// `max_term` (a server there could never start an election its peers accept) and at most
    /// `max_jump` ahead (no correct peer is further ahead). Any other message is refused.
    fn term_adoptable(
        &self,
        term: Term,
        current_term: Term,
        max_term: Term,
        max_jump: Term,
    ) -> bool {
        term < max_term && term.saturating_sub(current_term) <= max_jump
    }

    /// RequestVote receiver (Figure 2): a vote is free if voted_for is none or the candidate.
    fn vote_available(&self, voted_for: Option<NodeId>, candidate: NodeId) -> bool {
        voted_for.is_none_or(|v| v == candidate)
    }

    /// §5.4.1, the election restriction: the candidate's log is at least as up-to-date as the
    /// voter's (a higher last term, or the same last term and a last index at least as high).
    /// Logs are given as (last_log_term, last_log_index).
    fn candidate_up_to_date(&self, candidate: (Term, Index), voter: (Term, Index)) -> bool {
        candidate >= voter
    }

    /// §5.2: a candidate counts only the votes granted in its current term.
    fn counts_vote(&self, reply_term: Term, current_term: Term) -> bool {
        reply_term == current_term
    }

    /// §5.1: a leader that learns of a higher term converts to follower.
    fn leader_steps_down_on_higher_term(&self) -> bool {
        true
    }

    /// AppendEntries receiver, step 1: reply false if term < current_term.
    fn accepts_append_term(&self, term: Term, current_term: Term) -> bool {
        term >= current_term
    }

    /// AppendEntries receiver, step 2: with no entry at prev_log_index of prev_log_term, reply
    /// false (`None`). `Some(i)` would append after index `i` instead.
    fn on_prev_log_mismatch(
        &self,
        _prev_log_index: Index,
        _last_log_index: Index,
    ) -> Option<Index> {
        None
    }

    /// AppendEntries receiver, step 3: entries after prev_log_index are deleted only where they
    /// conflict with new ones; a matching suffix is kept (the request may be stale, §5.3).
    fn truncates_matching_suffix(&self) -> bool {
        false
    }

    /// AppendEntries receiver, step 5: commit_index = min(leader_commit, index of last new
    /// entry), and never lower than it was (a stale request says nothing new).
    fn follower_commit(&self, leader_commit: Index, last_new: Index, commit_index: Index) -> Index {
        leader_commit.min(last_new).max(commit_index)
    }

    /// Leaders, on a successful AppendEntries reply: the index it acknowledges, taken from the
    /// reply (the request it answers), never from the leader's own log.
    fn acknowledged(&self, reply_match_index: Index, _last_log_index: Index) -> Index {
        reply_match_index
    }

    /// Pipelining leaders, having sent the entries up to `last_sent` and moved next_index past
    /// them: match_index stays what the follower acknowledged (Figure 2: "highest log entry
    /// known to be replicated"); an entry in flight may be lost, or never written.
    fn match_after_send(&self, match_index: Index, _last_sent: Index) -> Index {
        match_index
    }

    /// Leaders, on a rejected AppendEntries (§5.3: "decrement nextIndex and retry"): back to
    /// at most the entry after the follower's hint, one step at least, but never to or below
    /// match_index (those entries are known to match: a rejection at or below them is stale).
    /// `next_index > match_index` holds for every peer of a leader.
    fn next_index_after_rejection(
        &self,
        next_index: Index,
        hint: Index,
        match_index: Index,
    ) -> Index {
        next_index
            .saturating_sub(1)
            .min(hint.saturating_add(1))
            .max(match_index.saturating_add(1))
    }

    /// §5.4.2 (Figure 8): a leader commits an entry by counting replicas only if it is of its
    /// current term; earlier entries commit indirectly.
    fn commits_by_counting(&self, entry_term: Term, current_term: Term) -> bool {
        entry_term == current_term
    }

    /// Leaders, counting replicas (§5.3): their own log counts as a match only as far as it is
    /// durable, `persisted_index` (Ongaro's thesis §10.2.1: the leader writes its disk in
    /// parallel with replication, and an entry it counted but then lost in a crash could be
    /// committed on fewer than a majority of disks).
    fn own_match(&self, persisted_index: Index, _last_log_index: Index) -> Index {
        persisted_index
    }

    /// §5.2: a candidate that receives AppendEntries from a leader of its own term recognizes
    /// the leader as legitimate and returns to follower state.
    fn recognizes_leader(&self) -> bool {
        true
    }

    /// Leaders act on an AppendEntries reply only if it is of their current term (§5.1: a
    /// reply of an earlier term answers a leadership that is over; the entries it acknowledges
    /// may have been overwritten since, so it is dropped, like a stale vote).
    fn counts_append_reply(&self, reply_term: Term, current_term: Term) -> bool {
        reply_term == current_term
    }

    /// §8, the client sessions: a command whose sequence number is below the latest one its
    /// client had applied is a late copy (a retry that reached the log after the client moved
    /// on); it is not executed, and its result is no longer kept.
    fn is_late_copy(&self, seq: u64, latest_seq: u64) -> bool {
        seq < latest_seq
    }

    /// Thesis §6.4, ReadIndex step 1: a leader's commit_index is a safe read index only once
    /// it has committed an entry of its current term (until then it may lag behind entries a
    /// previous leader committed). `commit_term` is the term of the entry at commit_index.
    fn read_index_known(&self, commit_term: Option<Term>, current_term: Term) -> bool {
        commit_term == Some(current_term)
    }

    /// Thesis §6.4, ReadIndex step 2: a read is answered only once `acks` servers, the leader
    /// included, have confirmed its leadership after the read arrived, a majority (`quorum`).
    fn read_confirmed(&self, acks: usize, quorum: usize) -> bool {
        acks >= quorum
    }

    /// Thesis §9.6, the leader's lease on votes (with CheckQuorum): a server that knows a
    /// leader of its current term (it heard from it since its own last election timeout, or
    /// is that leader) disregards RequestVote and PreVote, so a server that cannot reach the
    /// leader cannot depose it.
    fn lease_ignores_votes(&self, check_quorum: bool, knows_leader: bool) -> bool {
        check_quorum && knows_leader
    }

    /// Thesis §9.6, PreVote: a pre-candidate asks at its current term, which it does not
    /// raise; it proposes `current_term + 1` in its PreVote. `false`: it raises its own term.
    fn pre_vote_raises_own_term(&self) -> bool {
        false
    }

    /// Thesis §9.6, PreVote: a pre-candidate starts the real election only with the grants
    /// of a majority (`quorum`), itself included.
    fn pre_vote_won(&self, grants: usize, quorum: usize) -> bool {
        grants >= quorum
    }

    /// Thesis §9.6, CheckQuorum: a leader stays leader across an election timeout only if a
    /// majority (`quorum`), itself included, answered it since the previous one.
    fn quorum_active(&self, active: usize, quorum: usize) -> bool {
        active >= quorum
    }

    /// Thesis §9.6, CheckQuorum's activity: an AppendEntries reply of the leader's term shows
    /// the follower active if it succeeded, or if it is a rejection that moved next_index back
    /// (a probe answered). A rejection that moves nothing shows no progress: it is stale, or
    /// the follower lost entries it acknowledged and rejects every append of this leader,
    /// which must then lose its office rather than hold a cluster that cannot commit (issue
    /// 38, finding 3; a new term starts the follower's progress afresh).
    fn reply_shows_activity(&self, success: bool, moved_next_index: bool) -> bool {
        success || moved_next_index
    }

    /// Thesis §3.10, leadership transfer: the leader sends TimeoutNow only once the target's
    /// match_index reaches its last log index (the target then holds the leader's whole log,
    /// and wins the election it starts).
    fn transfer_ready(&self, target_match: Index, last_log_index: Index) -> bool {
        target_match >= last_log_index
    }

    /// Membership changes, the condition of July 2015 (raft-dev): a leader starts a
    /// configuration change only once it has committed an entry of its own term (the entry
    /// at its commit_index has term `commit_term`).
    fn config_change_ready(&self, commit_term: Option<Term>, current_term: Term) -> bool {
        commit_term == Some(current_term)
    }

    /// Thesis §4.2: one change at a time; a change waits while the log's latest
    /// configuration entry (at `config_index`, 0 if none) is not yet committed.
    fn config_change_pending(&self, config_index: Index, commit_index: Index) -> bool {
        config_index > commit_index
    }

    /// Thesis §4.1: a leader counts commitments over its latest configuration, committed or
    /// not. `false`: over the configuration of its committed prefix.
    fn counts_latest_config(&self) -> bool {
        true
    }

    /// Thesis §4.2.2: a leader counts itself toward a majority only while it is a voter of
    /// its configuration (a leader that removed itself does not).
    fn counts_itself(&self, voter: bool) -> bool {
        voter
    }

    /// Thesis §4.2.1: only voters count toward a majority (votes, commitments, read
    /// confirmations, the quorum check); learners never do.
    fn counts_toward_quorum(&self, voter: bool, _learner: bool) -> bool {
        voter
    }

    /// §7: a server compacts only entries its state machine has applied (so only committed
    /// ones): the highest index a snapshot may cover.
    fn compact_limit(&self, last_applied: Index, _last_log_index: Index) -> Index {
        last_applied
    }

    /// Figure 13, receiver: a snapshot is installed only if it covers more than this server
    /// knows committed; an older one (at or below `commit_index`) says nothing new, and
    /// installing it would throw away entries.
    fn installs_snapshot(&self, snapshot_index: Index, commit_index: Index) -> bool {
        snapshot_index > commit_index
    }

    /// Figure 13, receiver steps 6 and 7: if the log holds the snapshot's last included
    /// entry (`own_term` is this log's term at its index), the entries after it are kept;
    /// otherwise the whole log is discarded.
    fn retains_log_after_snapshot(&self, own_term: Option<Term>, snapshot_term: Term) -> bool {
        own_term == Some(snapshot_term)
    }

    /// Figure 13, receiver step 8: a follower that installed a snapshot knows everything in it
    /// committed (a snapshot holds only committed state), so commit_index is at least the
    /// snapshot's index, as last_applied now is.
    fn commit_after_install(&self, snapshot_index: Index, commit_index: Index) -> Index {
        commit_index.max(snapshot_index)
    }

    /// Leaders: the prev_log_term of an AppendEntries, from the term of the entry at
    /// prev_log_index (`None` once the snapshot replaced it). `None`: the follower needs
    /// compacted entries, and gets the snapshot instead (§7).
    fn prev_log_term(&self, term_at_prev: Option<Term>, _snapshot_term: Term) -> Option<Term> {
        term_at_prev
    }

    /// §7: a server restarting from a snapshot restores its state machine from it, so it has
    /// applied everything up to the snapshot's index.
    fn applied_after_restart(&self, snapshot_index: Index) -> Index {
        snapshot_index
    }

    /// Figure 2, volatile state on all servers: commit_index is initialized to 0 when the
    /// server starts and increases monotonically; a new term reinitializes only a leader's
    /// next_index and match_index. The commit_index a server keeps when it adopts a later
    /// term (§5.1).
    fn commit_on_new_term(&self, commit_index: Index) -> Index {
        commit_index
    }

    /// Thesis §6.3 with §7: a snapshot holds the client sessions along with the state
    /// machine, so that a server restored from it deduplicates retried commands exactly as
    /// the one that took it. `false`: the state machine alone.
    fn snapshot_holds_sessions(&self) -> bool {
        true
    }

    // Where two features meet: each rule below is asked only where both run.

    /// Thesis ch. 4 with a restart: a restarted server takes its configuration from its log
    /// and snapshot, the latest entry, committed or not (`false`: the initial one).
    fn restart_restores_configuration(&self) -> bool {
        true
    }

    /// Thesis §9.6 (the lease) with ch. 4 (learners): a server that does not campaign still
    /// forgets its leader when its election timeout passes, so it answers (pre-)votes again.
    /// A learner promoted in a leader's log but not yet in its own would otherwise ignore that
    /// leader's campaign forever once CheckQuorum deposed it (found by the interplay bound of
    /// membership changes, CheckQuorum and PreVote, 2026-12-07).
    fn non_voter_lease_ends_on_timeout(&self) -> bool {
        true
    }
}

/// The correct protocol: every rule as the paper states it.
#[derive(
    Clone,
    Copy,
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
pub struct Protocol;

impl Rules for Protocol {}
