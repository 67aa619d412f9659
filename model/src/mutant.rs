//! Deliberately broken rules, for showing that the checker's properties have teeth.
//!
//! Each mutant changes exactly one rule of the core: it overrides one of raft-core's
//! [`Rules`] decision points and keeps every other. They exist only here, in the model
//! checker's crate: raft-core names none of them and raft-impl (the runnable node) does not
//! depend on this crate, so no deployment can switch one on.

use raft_core::{HardState, Index, NodeId, Protocol, Rules, Term};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Mutant {
    /// Grant a vote without the §5.4.1 "candidate's log is at least as up-to-date" check.
    VoteWithoutLogCheck,
    /// A leader commits an entry of an earlier term by counting replicas (Figure 8).
    CommitPreviousTerm,
    /// `voted_for` is not restored on restart.
    ForgetVoteOnRestart,
    /// `current_term` is not restored on restart.
    ForgetTermOnRestart,
    /// The log is not restored on restart.
    ForgetLogOnRestart,
    /// Grant a vote even when `voted_for` is another candidate in this term.
    VoteTwice,
    /// A follower accepts AppendEntries whose term is lower than its own.
    AcceptStaleAppend,
    /// A follower appends without checking `prev_log_index` / `prev_log_term`.
    SkipPrevLogCheck,
    /// A follower truncates its log after `prev_log_index` even when the entries match.
    TruncateOnAnyAppend,
    /// A leader adopts a higher term but stays leader.
    LeaderIgnoresHigherTerm,
    /// A candidate counts vote replies from earlier terms.
    CountStaleVotes,
    /// A quorum is n/2 instead of n/2 + 1.
    MinorityQuorum,
    /// A follower sets `commit_index = leader_commit` without `min(.., index of last new entry)`.
    FollowerCommitPastMatch,
    /// On a successful reply the leader takes `match_index` from its own log end (where
    /// `next_index` points) instead of from the acknowledged request.
    MatchIndexFromNextIndex,
    /// On a rejected AppendEntries the leader keeps `next_index` (no §5.3 back-off): a
    /// follower whose log is shorter or divergent never catches up. Safe, but not live.
    NoBackupOnReject,
    /// A candidate that hears from the leader of its own term stays a candidate (no §5.2
    /// step-down): it follows the leader's log but never its leadership. Safe, but the cluster
    /// never settles (the candidate's next timeout disrupts the leader).
    CandidateIgnoresLeader,
    /// A quorum of `n % 2 + 1`: the majority for three servers, not for two, four or five
    /// (found by mutation testing; three servers hide it).
    QuorumRightForThreeOnly,
    /// A leader acts on AppendEntries replies of earlier terms (found by mutation testing): an
    /// old acknowledgement counts toward commitment though the follower's log may have been
    /// rewritten since.
    StaleReplyCounted,
    /// The client sessions execute a late copy of a command older than the client's latest
    /// (found by mutation testing): a retried write lands again after the client moved on.
    LateCopyExecuted,
    /// A leader counts its own entries toward commitment before its disk made them durable
    /// (it writes them behind, Ongaro's thesis §10.2.1): a crash can then lose an entry that
    /// was committed on a majority counting a copy that never reached the disk.
    OwnMatchBeforeFsync,
    /// A pipelining leader counts the entries it sent as replicated (it sets match_index
    /// where it moved next_index): an entry lost in flight, or never written, is counted.
    MatchOnSend,
    /// A leader answers a ReadIndex read without confirming its leadership with a majority
    /// (thesis §6.4 step 2 skipped): a deposed leader that does not know it serves a stale
    /// read.
    ReadWithoutQuorum,
    /// A leader takes its commit_index as the read index before it has committed an entry of
    /// its term (thesis §6.4 step 1 skipped): it may not know of entries the previous leader
    /// committed, and serves a read that misses them.
    ReadBeforeTermCommit,
    /// A server that knows a leader of its term still answers (pre-)votes (thesis §9.6's
    /// lease ignored): a server cut off from the leader but not from the others deposes it.
    VoteDespiteLease,
    /// A pre-candidate raises its own term when it starts the pre-vote round (thesis §9.6:
    /// PreVote must not change terms): a server that cannot win still disrupts the leader.
    PreVoteRaisesTerm,
    /// A pre-candidate starts the election without a majority of pre-vote grants.
    PreVoteWithoutMajority,
    /// A leader handing over its leadership sends TimeoutNow before the target's log matches
    /// its own (thesis §3.10): the target starts an election it cannot win, or wins one
    /// without an entry the old leader had.
    TransferBeforeCaughtUp,
    /// A leader starts a configuration change before it has committed an entry of its own
    /// term (single-server changes as published in 2014, without the July 2015 fix): two
    /// leaders of different terms can each change the same configuration, one way each.
    ConfigChangeBeforeTermCommit,
    /// A leader starts a configuration change while an earlier one is uncommitted: two
    /// changes in flight, whose configurations need not share a majority.
    TwoConfigChangesInFlight,
    /// A leader counts commitments over the configuration of its committed prefix instead
    /// of its latest one (thesis §4.1: a configuration takes effect when appended).
    QuorumOverOldConfig,
    /// A leader that removed itself keeps counting its own log toward commitment (§4.2.2).
    RemovedLeaderCountsItself,
    /// A leader counts learners' acknowledgements toward commitment, as if they voted.
    LearnerCountedAsVoter,
    /// A server compacts its log past what it has applied, up to its last entry (§7: a
    /// snapshot holds only applied, committed state): an uncommitted entry becomes
    /// permanent in its snapshot.
    SnapshotBeyondCommit,
    /// A follower installs a leader's snapshot that covers no more than it knows committed
    /// (Figure 13 installs only a newer one): it discards its log, and entries with it.
    InstallOlderSnapshot,
    /// A follower installing a snapshot discards its whole log even when the log holds the
    /// snapshot's last entry (Figure 13 step 6 skipped): entries it acknowledged are gone.
    InstallDiscardsMatchingLog,
    /// A follower installing a snapshot keeps the entries after the snapshot's index when
    /// its log merely reaches that index, whatever the term there (Figure 13 step 6 without
    /// the term check): a conflicting suffix survives.
    InstallKeepsConflictingLog,
    /// A leader whose follower needs an entry inside its snapshot sends AppendEntries with
    /// prev_log_index inside the snapshot (taking the snapshot's term for it) instead of the
    /// snapshot.
    AppendPrevInsideSnapshot,
    /// A restarted server re-applies the log from index 1 over its snapshot's image
    /// (last_applied 0 after a restart, §7 says the snapshot's index).
    RestartReappliesLog,
    /// A follower that installed a snapshot keeps its old commit_index (Figure 13 step 8
    /// resets the state machine to the snapshot, which is committed): its state machine is
    /// ahead of what it knows committed.
    InstallKeepsCommitIndex,
    /// A server resets its commit_index to 0 when it adopts a later term, as if it restarted
    /// (Figure 2: commit_index increases monotonically; only a leader's next_index and
    /// match_index are reinitialized after an election).
    CommitResetOnNewTerm,
    /// A snapshot holds the register without the client sessions (thesis §6.3: the sessions
    /// are part of the replicated state): a server restored from it runs a retried command
    /// again.
    SnapshotDropsSessions,
    /// With membership changes and a crash: a restarted server ignores the configuration
    /// entries of its log and uses the initial configuration.
    RestartForgetsConfiguration,
    /// With membership changes and CheckQuorum: a learner's election timeout does not end its
    /// lease (it does not campaign, so it never forgets its leader); promoted in the leader's
    /// log but not yet in its own, it ignores the deposed leader's campaign forever.
    LearnerLeaseNeverEnds,
    /// Issue 38, finding 2: the first term no election could follow (`Config::max_term`) is
    /// adopted, as 2^48 was: `term <= max_term`.
    TermCapInclusive,
}

impl Mutant {
    pub const ALL: [Mutant; 44] = [
        Mutant::VoteWithoutLogCheck,
        Mutant::CommitPreviousTerm,
        Mutant::ForgetVoteOnRestart,
        Mutant::ForgetTermOnRestart,
        Mutant::ForgetLogOnRestart,
        Mutant::VoteTwice,
        Mutant::AcceptStaleAppend,
        Mutant::SkipPrevLogCheck,
        Mutant::TruncateOnAnyAppend,
        Mutant::LeaderIgnoresHigherTerm,
        Mutant::CountStaleVotes,
        Mutant::MinorityQuorum,
        Mutant::FollowerCommitPastMatch,
        Mutant::MatchIndexFromNextIndex,
        Mutant::NoBackupOnReject,
        Mutant::CandidateIgnoresLeader,
        Mutant::QuorumRightForThreeOnly,
        Mutant::StaleReplyCounted,
        Mutant::LateCopyExecuted,
        Mutant::OwnMatchBeforeFsync,
        Mutant::MatchOnSend,
        Mutant::ReadWithoutQuorum,
        Mutant::ReadBeforeTermCommit,
        Mutant::VoteDespiteLease,
        Mutant::PreVoteRaisesTerm,
        Mutant::PreVoteWithoutMajority,
        Mutant::TransferBeforeCaughtUp,
        Mutant::ConfigChangeBeforeTermCommit,
        Mutant::TwoConfigChangesInFlight,
        Mutant::QuorumOverOldConfig,
        Mutant::RemovedLeaderCountsItself,
        Mutant::LearnerCountedAsVoter,
        Mutant::SnapshotBeyondCommit,
        Mutant::InstallOlderSnapshot,
        Mutant::InstallDiscardsMatchingLog,
        Mutant::InstallKeepsConflictingLog,
        Mutant::AppendPrevInsideSnapshot,
        Mutant::RestartReappliesLog,
        Mutant::InstallKeepsCommitIndex,
        Mutant::CommitResetOnNewTerm,
        Mutant::SnapshotDropsSessions,
        Mutant::RestartForgetsConfiguration,
        Mutant::LearnerLeaseNeverEnds,
        Mutant::TermCapInclusive,
    ];

    /// The catalogue name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mutant::VoteWithoutLogCheck => "vote-without-log-check",
            Mutant::CommitPreviousTerm => "commit-previous-term",
            Mutant::ForgetVoteOnRestart => "forget-vote-on-restart",
            Mutant::ForgetTermOnRestart => "forget-term-on-restart",
            Mutant::ForgetLogOnRestart => "forget-log-on-restart",
            Mutant::VoteTwice => "vote-twice",
            Mutant::AcceptStaleAppend => "accept-stale-append",
            Mutant::SkipPrevLogCheck => "skip-prev-log-check",
            Mutant::TruncateOnAnyAppend => "truncate-on-any-append",
            Mutant::LeaderIgnoresHigherTerm => "leader-ignores-higher-term",
            Mutant::CountStaleVotes => "count-stale-votes",
            Mutant::MinorityQuorum => "minority-quorum",
            Mutant::FollowerCommitPastMatch => "follower-commit-past-match",
            Mutant::MatchIndexFromNextIndex => "match-index-from-next-index",
            Mutant::NoBackupOnReject => "no-backup-on-reject",
            Mutant::CandidateIgnoresLeader => "candidate-ignores-leader",
            Mutant::QuorumRightForThreeOnly => "quorum-right-for-three-only",
            Mutant::StaleReplyCounted => "stale-reply-counted",
            Mutant::LateCopyExecuted => "late-copy-executed",
            Mutant::OwnMatchBeforeFsync => "own-match-before-fsync",
            Mutant::MatchOnSend => "match-on-send",
            Mutant::ReadWithoutQuorum => "read-without-quorum",
            Mutant::ReadBeforeTermCommit => "read-before-term-commit",
            Mutant::VoteDespiteLease => "vote-despite-lease",
            Mutant::PreVoteRaisesTerm => "pre-vote-raises-term",
            Mutant::PreVoteWithoutMajority => "pre-vote-without-majority",
            Mutant::TransferBeforeCaughtUp => "transfer-before-caught-up",
            Mutant::ConfigChangeBeforeTermCommit => "config-change-before-term-commit",
            Mutant::TwoConfigChangesInFlight => "two-config-changes-in-flight",
            Mutant::QuorumOverOldConfig => "quorum-over-old-config",
            Mutant::RemovedLeaderCountsItself => "removed-leader-counts-itself",
            Mutant::LearnerCountedAsVoter => "learner-counted-as-voter",
            Mutant::SnapshotBeyondCommit => "snapshot-beyond-commit",
            Mutant::InstallOlderSnapshot => "install-older-snapshot",
            Mutant::InstallDiscardsMatchingLog => "install-discards-matching-log",
            Mutant::InstallKeepsConflictingLog => "install-keeps-conflicting-log",
            Mutant::AppendPrevInsideSnapshot => "append-prev-inside-snapshot",
            Mutant::RestartReappliesLog => "restart-reapplies-log",
            Mutant::InstallKeepsCommitIndex => "install-keeps-commit-index",
            Mutant::CommitResetOnNewTerm => "commit-reset-on-new-term",
            Mutant::SnapshotDropsSessions => "snapshot-drops-sessions",
            Mutant::RestartForgetsConfiguration => "restart-forgets-configuration",
            Mutant::LearnerLeaseNeverEnds => "learner-lease-never-ends",
            Mutant::TermCapInclusive => "term-cap-inclusive",
        }
    }

    /// The rule it breaks, in one line.
    pub fn description(self) -> &'static str {
        match self {
            Mutant::VoteWithoutLogCheck => "grant a vote without the §5.4.1 up-to-date log check",
            Mutant::CommitPreviousTerm => {
                "a leader commits an earlier-term entry by counting replicas (Figure 8)"
            }
            Mutant::ForgetVoteOnRestart => "voted_for is not persisted",
            Mutant::ForgetTermOnRestart => "current_term is not persisted",
            Mutant::ForgetLogOnRestart => "the log is not persisted",
            Mutant::VoteTwice => "grant a vote when voted_for is another candidate in this term",
            Mutant::AcceptStaleAppend => "a follower accepts AppendEntries of a lower term",
            Mutant::SkipPrevLogCheck => {
                "a follower appends without checking prev_log_index / prev_log_term"
            }
            Mutant::TruncateOnAnyAppend => {
                "a follower truncates after prev_log_index even when the entries match"
            }
            Mutant::LeaderIgnoresHigherTerm => "a leader adopts a higher term but stays leader",
            Mutant::CountStaleVotes => "a candidate counts vote replies from earlier terms",
            Mutant::MinorityQuorum => "a quorum is n/2 instead of n/2 + 1",
            Mutant::FollowerCommitPastMatch => {
                "a follower sets commit_index = leader_commit without min(.., last new entry)"
            }
            Mutant::MatchIndexFromNextIndex => {
                "the leader sets match_index from its log end instead of the acknowledged request"
            }
            Mutant::NoBackupOnReject => {
                "the leader keeps next_index when a follower rejects AppendEntries (liveness)"
            }
            Mutant::CandidateIgnoresLeader => {
                "a candidate hearing from the leader of its term stays a candidate (liveness)"
            }
            Mutant::QuorumRightForThreeOnly => "a quorum is n % 2 + 1 (a majority only for n = 3)",
            Mutant::StaleReplyCounted => "a leader acts on AppendEntries replies of earlier terms",
            Mutant::LateCopyExecuted => {
                "the sessions execute a late copy older than the client's latest command"
            }
            Mutant::OwnMatchBeforeFsync => {
                "a leader counts its own entries toward commitment before they are durable"
            }
            Mutant::MatchOnSend => {
                "a pipelining leader counts the entries it sent as replicated on the follower"
            }
            Mutant::ReadWithoutQuorum => {
                "a leader answers a ReadIndex read without a majority confirming its leadership"
            }
            Mutant::ReadBeforeTermCommit => {
                "a leader serves ReadIndex reads before committing an entry of its term"
            }
            Mutant::VoteDespiteLease => {
                "a server that knows a leader of its term still answers (pre-)votes"
            }
            Mutant::PreVoteRaisesTerm => "a pre-candidate raises its own term (PreVote)",
            Mutant::PreVoteWithoutMajority => {
                "a pre-candidate starts the election without a majority of pre-votes"
            }
            Mutant::TransferBeforeCaughtUp => {
                "a leader sends TimeoutNow before the transfer target's log matches its own"
            }
            Mutant::ConfigChangeBeforeTermCommit => {
                "a leader changes the configuration before committing an entry of its term"
            }
            Mutant::TwoConfigChangesInFlight => {
                "a leader starts a configuration change while another is uncommitted"
            }
            Mutant::QuorumOverOldConfig => {
                "a leader counts commitments over its committed configuration, not its latest"
            }
            Mutant::RemovedLeaderCountsItself => {
                "a leader that removed itself still counts its own log toward commitment"
            }
            Mutant::LearnerCountedAsVoter => {
                "a leader counts learners' acknowledgements toward commitment"
            }
            Mutant::SnapshotBeyondCommit => {
                "a server compacts its log past its commit index (up to its last entry)"
            }
            Mutant::InstallOlderSnapshot => {
                "a follower installs a snapshot older than what it knows committed"
            }
            Mutant::InstallDiscardsMatchingLog => {
                "a follower installing a snapshot discards its log though the snapshot point matches"
            }
            Mutant::InstallKeepsConflictingLog => {
                "a follower installing a snapshot keeps its log after the point without a term check"
            }
            Mutant::AppendPrevInsideSnapshot => {
                "a leader sends AppendEntries whose prev_log_index lies inside its snapshot"
            }
            Mutant::RestartReappliesLog => {
                "a restart re-applies the log from index 1 over the snapshot's image"
            }
            Mutant::InstallKeepsCommitIndex => {
                "a follower that installed a snapshot keeps its older commit_index"
            }
            Mutant::CommitResetOnNewTerm => {
                "a server resets its commit_index to 0 when it adopts a later term"
            }
            Mutant::SnapshotDropsSessions => {
                "a snapshot holds the register without the client sessions"
            }
            Mutant::RestartForgetsConfiguration => {
                "a restarted server uses the initial configuration, not its log's"
            }
            Mutant::LearnerLeaseNeverEnds => {
                "a non-voter's election timeout does not end its lease"
            }
            Mutant::TermCapInclusive => {
                "a message with the first term no election could follow is adopted"
            }
        }
    }
}

impl fmt::Display for Mutant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mutant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mutant::ALL
            .iter()
            .copied()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Mutant::ALL.iter().map(|m| m.name()).collect();
                format!("unknown mutant '{s}'; known: {}", names.join(", "))
            })
    }
}

/// The rules the model runs: the correct protocol, or the protocol with one mutant's rule
/// broken. Every method asks `Protocol` (the core's default, what the node runs) unless its
/// mutant is on, so a bug in a default rule is a bug the checker sees (mutation testing found
/// two methods that answered on their own).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ModelRules(pub Option<Mutant>);

impl ModelRules {
    fn is(self, m: Mutant) -> bool {
        self.0 == Some(m)
    }
}

impl Rules for ModelRules {
    fn recover<C>(&self, mut hard: HardState<C>) -> HardState<C> {
        if self.is(Mutant::ForgetVoteOnRestart) {
            hard.voted_for = None;
        }
        if self.is(Mutant::ForgetTermOnRestart) {
            hard.current_term = 0;
        }
        if self.is(Mutant::ForgetLogOnRestart) {
            hard.log = raft_core::Log::new();
        }
        Protocol.recover(hard)
    }

    fn quorum(&self, n: usize) -> usize {
        if self.is(Mutant::MinorityQuorum) {
            n / 2
        } else if self.is(Mutant::QuorumRightForThreeOnly) {
            n % 2 + 1
        } else {
            Protocol.quorum(n)
        }
    }

    fn vote_available(&self, voted_for: Option<NodeId>, candidate: NodeId) -> bool {
        self.is(Mutant::VoteTwice) || Protocol.vote_available(voted_for, candidate)
    }

    fn candidate_up_to_date(&self, candidate: (Term, Index), voter: (Term, Index)) -> bool {
        self.is(Mutant::VoteWithoutLogCheck) || Protocol.candidate_up_to_date(candidate, voter)
    }

    fn counts_vote(&self, reply_term: Term, current_term: Term) -> bool {
        if self.is(Mutant::CountStaleVotes) {
            reply_term <= current_term
        } else {
            Protocol.counts_vote(reply_term, current_term)
        }
    }

    fn leader_steps_down_on_higher_term(&self) -> bool {
        !self.is(Mutant::LeaderIgnoresHigherTerm) && Protocol.leader_steps_down_on_higher_term()
    }

    fn accepts_append_term(&self, term: Term, current_term: Term) -> bool {
        self.is(Mutant::AcceptStaleAppend) || Protocol.accepts_append_term(term, current_term)
    }

    fn on_prev_log_mismatch(&self, prev_log_index: Index, last_log_index: Index) -> Option<Index> {
        if self.is(Mutant::SkipPrevLogCheck) {
            Some(prev_log_index.min(last_log_index))
        } else {
            Protocol.on_prev_log_mismatch(prev_log_index, last_log_index)
        }
    }

    fn truncates_matching_suffix(&self) -> bool {
        self.is(Mutant::TruncateOnAnyAppend) || Protocol.truncates_matching_suffix()
    }

    fn follower_commit(&self, leader_commit: Index, last_new: Index, commit_index: Index) -> Index {
        if self.is(Mutant::FollowerCommitPastMatch) {
            leader_commit
        } else {
            Protocol.follower_commit(leader_commit, last_new, commit_index)
        }
    }

    fn acknowledged(&self, reply_match_index: Index, last_log_index: Index) -> Index {
        if self.is(Mutant::MatchIndexFromNextIndex) {
            last_log_index
        } else {
            Protocol.acknowledged(reply_match_index, last_log_index)
        }
    }

    fn next_index_after_rejection(
        &self,
        next_index: Index,
        hint: Index,
        match_index: Index,
    ) -> Index {
        if self.is(Mutant::NoBackupOnReject) {
            next_index
        } else {
            Protocol.next_index_after_rejection(next_index, hint, match_index)
        }
    }

    fn own_match(&self, persisted_index: Index, last_log_index: Index) -> Index {
        if self.is(Mutant::OwnMatchBeforeFsync) {
            last_log_index
        } else {
            Protocol.own_match(persisted_index, last_log_index)
        }
    }

    fn read_index_known(&self, commit_term: Option<Term>, current_term: Term) -> bool {
        self.is(Mutant::ReadBeforeTermCommit)
            || Protocol.read_index_known(commit_term, current_term)
    }
    fn read_confirmed(&self, acks: usize, quorum: usize) -> bool {
        self.is(Mutant::ReadWithoutQuorum) || Protocol.read_confirmed(acks, quorum)
    }
    fn match_after_send(&self, match_index: Index, last_sent: Index) -> Index {
        if self.is(Mutant::MatchOnSend) {
            last_sent
        } else {
            Protocol.match_after_send(match_index, last_sent)
        }
    }

    fn commits_by_counting(&self, entry_term: Term, current_term: Term) -> bool {
        self.is(Mutant::CommitPreviousTerm)
            || Protocol.commits_by_counting(entry_term, current_term)
    }

    fn recognizes_leader(&self) -> bool {
        !self.is(Mutant::CandidateIgnoresLeader) && Protocol.recognizes_leader()
    }

    fn counts_append_reply(&self, reply_term: Term, current_term: Term) -> bool {
        if self.is(Mutant::StaleReplyCounted) {
            reply_term <= current_term
        } else {
            Protocol.counts_append_reply(reply_term, current_term)
        }
    }

    fn is_late_copy(&self, seq: u64, latest_seq: u64) -> bool {
        !self.is(Mutant::LateCopyExecuted) && Protocol.is_late_copy(seq, latest_seq)
    }

    fn lease_ignores_votes(&self, check_quorum: bool, knows_leader: bool) -> bool {
        !self.is(Mutant::VoteDespiteLease)
            && Protocol.lease_ignores_votes(check_quorum, knows_leader)
    }

    fn pre_vote_raises_own_term(&self) -> bool {
        self.is(Mutant::PreVoteRaisesTerm) || Protocol.pre_vote_raises_own_term()
    }

    fn transfer_ready(&self, target_match: Index, last_log_index: Index) -> bool {
        self.is(Mutant::TransferBeforeCaughtUp)
            || Protocol.transfer_ready(target_match, last_log_index)
    }

    fn pre_vote_won(&self, grants: usize, quorum: usize) -> bool {
        if self.is(Mutant::PreVoteWithoutMajority) {
            grants >= 1
        } else {
            Protocol.pre_vote_won(grants, quorum)
        }
    }

    fn config_change_ready(&self, commit_term: Option<Term>, current_term: Term) -> bool {
        self.is(Mutant::ConfigChangeBeforeTermCommit)
            || Protocol.config_change_ready(commit_term, current_term)
    }

    fn config_change_pending(&self, config_index: Index, commit_index: Index) -> bool {
        !self.is(Mutant::TwoConfigChangesInFlight)
            && Protocol.config_change_pending(config_index, commit_index)
    }

    fn counts_latest_config(&self) -> bool {
        !self.is(Mutant::QuorumOverOldConfig) && Protocol.counts_latest_config()
    }

    fn counts_itself(&self, voter: bool) -> bool {
        self.is(Mutant::RemovedLeaderCountsItself) || Protocol.counts_itself(voter)
    }

    fn counts_toward_quorum(&self, voter: bool, learner: bool) -> bool {
        (self.is(Mutant::LearnerCountedAsVoter) && learner)
            || Protocol.counts_toward_quorum(voter, learner)
    }

    fn compact_limit(&self, last_applied: Index, last_log_index: Index) -> Index {
        if self.is(Mutant::SnapshotBeyondCommit) {
            last_log_index
        } else {
            Protocol.compact_limit(last_applied, last_log_index)
        }
    }

    fn installs_snapshot(&self, snapshot_index: Index, commit_index: Index) -> bool {
        self.is(Mutant::InstallOlderSnapshot)
            || Protocol.installs_snapshot(snapshot_index, commit_index)
    }

    fn retains_log_after_snapshot(&self, own_term: Option<Term>, snapshot_term: Term) -> bool {
        if self.is(Mutant::InstallDiscardsMatchingLog) {
            false
        } else if self.is(Mutant::InstallKeepsConflictingLog) {
            own_term.is_some()
        } else {
            Protocol.retains_log_after_snapshot(own_term, snapshot_term)
        }
    }

    fn prev_log_term(&self, term_at_prev: Option<Term>, snapshot_term: Term) -> Option<Term> {
        if self.is(Mutant::AppendPrevInsideSnapshot) {
            term_at_prev.or(Some(snapshot_term))
        } else {
            Protocol.prev_log_term(term_at_prev, snapshot_term)
        }
    }

    fn applied_after_restart(&self, snapshot_index: Index) -> Index {
        if self.is(Mutant::RestartReappliesLog) {
            0
        } else {
            Protocol.applied_after_restart(snapshot_index)
        }
    }

    fn commit_after_install(&self, snapshot_index: Index, commit_index: Index) -> Index {
        if self.is(Mutant::InstallKeepsCommitIndex) {
            commit_index
        } else {
            Protocol.commit_after_install(snapshot_index, commit_index)
        }
    }

    fn commit_on_new_term(&self, commit_index: Index) -> Index {
        if self.is(Mutant::CommitResetOnNewTerm) {
            0
        } else {
            Protocol.commit_on_new_term(commit_index)
        }
    }

    fn snapshot_holds_sessions(&self) -> bool {
        !self.is(Mutant::SnapshotDropsSessions) && Protocol.snapshot_holds_sessions()
    }

    fn term_adoptable(
        &self,
        term: Term,
        current_term: Term,
        max_term: Term,
        max_jump: Term,
    ) -> bool {
        if self.is(Mutant::TermCapInclusive) {
            return term <= max_term && term.saturating_sub(current_term) <= max_jump;
        }
        Protocol.term_adoptable(term, current_term, max_term, max_jump)
    }

    fn reply_shows_activity(&self, success: bool, moved_next_index: bool) -> bool {
        Protocol.reply_shows_activity(success, moved_next_index)
    }

    fn non_voter_lease_ends_on_timeout(&self) -> bool {
        !self.is(Mutant::LearnerLeaseNeverEnds) && Protocol.non_voter_lease_ends_on_timeout()
    }

    fn restart_restores_configuration(&self) -> bool {
        !self.is(Mutant::RestartForgetsConfiguration) && Protocol.restart_restores_configuration()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With no mutant on, the model's rules are the core's (every decision point, on a grid of
    /// inputs): the checker checks the rules the node runs.
    #[test]
    fn no_mutant_is_the_protocol() {
        let (m, p) = (ModelRules(None), Protocol);
        assert_eq!(
            m.leader_steps_down_on_higher_term(),
            p.leader_steps_down_on_higher_term()
        );
        assert_eq!(m.truncates_matching_suffix(), p.truncates_matching_suffix());
        assert_eq!(m.recognizes_leader(), p.recognizes_leader());
        assert_eq!(m.pre_vote_raises_own_term(), p.pre_vote_raises_own_term());
        assert_eq!(m.counts_latest_config(), p.counts_latest_config());
        assert_eq!(m.snapshot_holds_sessions(), p.snapshot_holds_sessions());
        for (v, l) in [(false, false), (false, true), (true, false)] {
            assert_eq!(m.counts_itself(v), p.counts_itself(v));
            assert_eq!(m.counts_toward_quorum(v, l), p.counts_toward_quorum(v, l));
        }
        for (q, k) in [(false, false), (false, true), (true, false), (true, true)] {
            assert_eq!(m.lease_ignores_votes(q, k), p.lease_ignores_votes(q, k));
        }
        assert_eq!(
            m.restart_restores_configuration(),
            p.restart_restores_configuration()
        );
        assert_eq!(
            m.non_voter_lease_ends_on_timeout(),
            p.non_voter_lease_ends_on_timeout()
        );
        for n in 1..8 {
            assert_eq!(m.quorum(n), p.quorum(n));
        }
        for (s, moved) in [(false, false), (false, true), (true, false), (true, true)] {
            assert_eq!(
                m.reply_shows_activity(s, moved),
                p.reply_shows_activity(s, moved)
            );
        }
        for t in 0..6u64 {
            for c in 0..4u64 {
                assert_eq!(m.term_adoptable(t, c, 4, 2), p.term_adoptable(t, c, 4, 2));
            }
        }
        let ids = [None, Some(NodeId(0)), Some(NodeId(1))];
        for a in 0..4u64 {
            for b in 0..4u64 {
                for c in 0..4u64 {
                    assert_eq!(
                        m.candidate_up_to_date((a, b), (c, a)),
                        p.candidate_up_to_date((a, b), (c, a))
                    );
                    assert_eq!(m.follower_commit(a, b, c), p.follower_commit(a, b, c));
                    assert_eq!(
                        m.next_index_after_rejection(a + 1, b, c.min(a)),
                        p.next_index_after_rejection(a + 1, b, c.min(a))
                    );
                }
                assert_eq!(m.counts_vote(a, b), p.counts_vote(a, b));
                assert_eq!(m.accepts_append_term(a, b), p.accepts_append_term(a, b));
                assert_eq!(m.on_prev_log_mismatch(a, b), p.on_prev_log_mismatch(a, b));
                assert_eq!(m.acknowledged(a, b), p.acknowledged(a, b));
                assert_eq!(m.commits_by_counting(a, b), p.commits_by_counting(a, b));
                assert_eq!(m.counts_append_reply(a, b), p.counts_append_reply(a, b));
                assert_eq!(m.is_late_copy(a, b), p.is_late_copy(a, b));
                assert_eq!(m.own_match(a, b), p.own_match(a, b));
                assert_eq!(m.match_after_send(a, b), p.match_after_send(a, b));
                assert_eq!(m.transfer_ready(a, b), p.transfer_ready(a, b));
                assert_eq!(m.config_change_pending(a, b), p.config_change_pending(a, b));
                assert_eq!(m.compact_limit(a, b), p.compact_limit(a, b));
                assert_eq!(m.installs_snapshot(a, b), p.installs_snapshot(a, b));
                assert_eq!(m.applied_after_restart(a), p.applied_after_restart(a));
                assert_eq!(m.commit_on_new_term(a), p.commit_on_new_term(a));
                assert_eq!(m.commit_after_install(a, b), p.commit_after_install(a, b));
                for t in [None, Some(a)] {
                    assert_eq!(
                        m.retains_log_after_snapshot(t, b),
                        p.retains_log_after_snapshot(t, b)
                    );
                    assert_eq!(m.prev_log_term(t, b), p.prev_log_term(t, b));
                }
                for t in [None, Some(a)] {
                    assert_eq!(m.config_change_ready(t, b), p.config_change_ready(t, b));
                }
                let (a, b) = (a as usize, b as usize);
                assert_eq!(m.pre_vote_won(a, b), p.pre_vote_won(a, b));
                assert_eq!(m.quorum_active(a, b), p.quorum_active(a, b));
                assert_eq!(m.read_confirmed(a, b), p.read_confirmed(a, b));
            }
            for v in ids {
                assert_eq!(
                    m.vote_available(v, NodeId(a)),
                    p.vote_available(v, NodeId(a))
                );
            }
        }
        let hard = HardState {
            snapshot: Default::default(),
            current_term: 3,
            voted_for: Some(NodeId(1)),
            log: vec![raft_core::Entry {
                term: 1,
                command: 7u8,
            }]
            .into(),
        };
        assert_eq!(m.recover(hard.clone()), p.recover(hard));
    }
}
