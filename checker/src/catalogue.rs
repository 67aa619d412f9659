//! The mutant catalogue: each classic Raft bug (one broken `raft_core::Rules` decision point,
//! see `raft_model::Mutant` and `ModelRules`) with the smallest bound known to expose it.
//!
//! To add a mutant: add a variant to `Mutant` (with its name and one-line description) and break
//! exactly one rule in `ModelRules` (model/src/mutant.rs); then add a row here with the smallest
//! bound that exposes it (start from the default bound and grow one dimension at a time), and run
//! `raft-check mutants --only NAME`.

use raft_model::model::ModelConfig;
use raft_model::Mutant;

/// One catalogue entry: the mutant and the bound it is checked on.
pub struct Case {
    pub mutant: Mutant,
    pub bound: ModelConfig,
}

fn with(mutant: Mutant, tweak: impl FnOnce(&mut ModelConfig)) -> Case {
    let mut bound = ModelConfig {
        mutant: Some(mutant),
        ..ModelConfig::default()
    };
    tweak(&mut bound);
    Case { mutant, bound }
}

/// Every mutant with its bound, in the order of `Mutant::ALL`.
pub fn catalogue() -> Vec<Case> {
    Mutant::ALL
        .iter()
        .map(|&m| match m {
            // A pipelining leader: the entry it sent (and counted) is lost, or not yet written,
            // when it commits on the strength of that count.
            Mutant::MatchOnSend => with(m, |b| {
                b.pipeline = Some(raft_core::Window {
                    entries: 2,
                    bytes: usize::MAX,
                });
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // A stale heartbeat must arrive after the entry it predates: two messages in flight.
            Mutant::TruncateOnAnyAppend => with(m, |b| {
                b.max_in_flight = 2;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // A deposed leader of term 1 (it holds the first write, committed) answers a read
            // after the leader of term 2 committed the second write: two clients, a log of 2
            // (reads through ReadIndex only).
            Mutant::ReadWithoutQuorum => with(m, |b| {
                b.read_index = true;
                b.values = 2;
                b.max_log_len = Some(2);
                b.max_crashes = 0;
                b.write_behind = false;
                // Linearizability catches it; the liveness continuation would only add time
                // (about a fifth) to the catalogue's largest search.
                b.liveness = false;
            }),
            // A new leader of term 2 holds the entry committed in term 1 but not its commit:
            // reading at its commit_index (0) misses the completed write.
            Mutant::ReadBeforeTermCommit => with(m, |b| {
                b.read_index = true;
                b.max_crashes = 0;
                b.write_behind = false;
            }),
            // Thesis §9.6: a server cut off from a stable leader, but not from the third
            // server, deposes it.
            Mutant::VoteDespiteLease => Case {
                mutant: m,
                bound: ModelConfig {
                    mutant: Some(m),
                    ..crate::standard::partial_partition()
                },
            },
            // Thesis §3.10: the leader holds an entry the target lacks when it hands over.
            Mutant::TransferBeforeCaughtUp => with(m, |b| {
                b.max_transfers = 1;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // Thesis §9.6: the first election timeout raises a term without a majority.
            Mutant::PreVoteRaisesTerm | Mutant::PreVoteWithoutMajority => with(m, |b| {
                b.pre_vote = true;
                b.check_quorum = true;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // An acknowledgement must be in flight while the leader appends a new entry.
            Mutant::MatchIndexFromNextIndex => with(m, |b| {
                b.max_in_flight = 2;
                b.max_crashes = 0;
            }),
            // The leader must send fewer entries than it has committed: one per AppendEntries.
            Mutant::FollowerCommitPastMatch => with(m, |b| {
                b.max_entries_per_append = Some(1);
                b.max_crashes = 0;
            }),
            // Figure 8: an old-term entry re-replicated by a term-3 leader, overwritten by the
            // term-4 leader; the same client value proposed in terms 1 and 2 gives the two
            // conflicting entries.
            Mutant::CommitPreviousTerm => with(m, |b| {
                b.max_term = 4;
                b.reads = 0;
                b.max_crashes = 0;
            }),
            // Safe but not live: only "Progress When Faults Stop" (on by default) sees a
            // follower left behind.
            // Right for three servers: two servers show it (each one alone is a "majority").
            Mutant::QuorumRightForThreeOnly => with(m, |b| {
                b.servers = 2;
                b.max_crashes = 0;
            }),
            // Found by mutation testing. A leader leaves office only for a later term, so it
            // leads again two terms on: terms <= 3, and the old reply in flight alongside the
            // elections. Two servers suffice.
            Mutant::StaleReplyCounted => with(m, |b| {
                b.servers = 2;
                b.max_term = 3;
                b.max_in_flight = 2;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // Found by mutation testing. The client's retry of its write must reach the log
            // after its read: a log of 3 and the retry in flight alongside the traffic.
            Mutant::LateCopyExecuted => with(m, |b| {
                b.servers = 2;
                b.max_log_len = Some(3);
                b.max_in_flight = 2;
                b.max_crashes = 0;
            }),
            // Thesis §4.2.2: two voters; the leader removes itself and commits a write on
            // its own copy, which the remaining voter lacks.
            Mutant::RemovedLeaderCountsItself => with(m, |b| {
                b.servers = 2;
                b.max_config_changes = 1;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // Two voters and a learner: the write counted on the learner's copy is on one
            // voter only.
            Mutant::LearnerCountedAsVoter => with(m, |b| {
                b.initial_voters = Some(2);
                b.max_config_changes = 1;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // Thesis §4.1: two voters, the leader removes the other and still waits for its
            // acknowledgement; only the liveness continuation sees the stall on two servers
            // (three servers and two changes reach a write on too few voters).
            Mutant::QuorumOverOldConfig => with(m, |b| {
                b.servers = 2;
                b.max_config_changes = 1;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // The July 2015 condition: a leader of term 2 that has committed nothing of its
            // term changes the configuration. The published counterexample (two leaders each
            // changing the same configuration, one way each) needs four voters and three
            // terms: not found within 160 s (10 M states) here; "Configuration Changes Follow
            // A Term Commit" sees its first step.
            Mutant::ConfigChangeBeforeTermCommit => with(m, |b| {
                b.servers = 2;
                b.max_config_changes = 1;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // Two removals in a row leave one voter whose majority shares no voter with the
            // first configuration's: "Quorums Overlap".
            Mutant::TwoConfigChangesInFlight => with(m, |b| {
                b.max_config_changes = 2;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // §7: the leader compacts its own uncommitted entry: "Snapshot Holds Only
            // Committed State" at once.
            Mutant::SnapshotBeyondCommit => with(m, |b| {
                b.max_snapshots = 1;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // The follower that needs the compacted entry is sent AppendEntries from inside
            // the snapshot, with entries from the snapshot point: it never catches up.
            Mutant::AppendPrevInsideSnapshot => with(m, |b| {
                b.max_snapshots = 1;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // A follower that holds the snapshot point and entries after it, acknowledged,
            // throws them away when a delayed InstallSnapshot arrives: two entries (the
            // client's write and its retry), one snapshot, two messages in flight.
            Mutant::InstallDiscardsMatchingLog => with(m, |b| {
                b.max_snapshots = 1;
                b.max_log_len = Some(2);
                b.max_in_flight = 2;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // A delayed InstallSnapshot of an index the follower already knows committed
            // rewinds its state machine below its commit index, for good (the same bound).
            Mutant::InstallOlderSnapshot => with(m, |b| {
                b.max_snapshots = 1;
                b.max_log_len = Some(2);
                b.max_in_flight = 2;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // A restart from a snapshot: the snapshot's image is restored, then the entries it
            // covers are applied again.
            Mutant::RestartReappliesLog => with(m, |b| {
                b.max_snapshots = 1;
                b.reads = 0;
            }),
            // The follower's state machine is at the snapshot, its commit_index behind it.
            Mutant::InstallKeepsCommitIndex => with(m, |b| {
                b.max_snapshots = 1;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // The leader of term 1 holds the write and the client's retry (a log of 2), the
            // leader of term 2 commits the write again in its term and compacts it, and the
            // old leader installs that snapshot keeping its term-1 entry 2 after it.
            Mutant::InstallKeepsConflictingLog => with(m, |b| {
                b.max_snapshots = 1;
                b.max_log_len = Some(2);
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // Interplay (checker/src/interplay.rs): each needs two features at once.
            // A membership change and a crash.
            // A membership change with CheckQuorum: a learner joins a one-voter cluster, is
            // promoted in the leader's log, and the leader's quorum check deposes it.
            // A forged frame with the first refused term reaches a server of term 1.
            Mutant::TermCapInclusive => with(m, |b| {
                b.servers = 2;
                b.max_term = 1;
                b.max_forged = 1;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            Mutant::LearnerLeaseNeverEnds => with(m, |b| {
                b.servers = 2;
                b.initial_voters = Some(1);
                b.max_config_changes = 2;
                b.check_quorum = true;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            // Two servers, both voters at first, so that the initial configuration the mutant
            // falls back to names no server apart (symmetry stays sound).
            Mutant::RestartForgetsConfiguration => with(m, |b| {
                b.servers = 2;
                b.max_config_changes = 1;
                b.reads = 0;
            }),
            // A follower that knows the write committed meets a later term (no client read:
            // the write's commit and an election suffice). "Commit Index Never Decreases"
            // and "Commit Index Within Log" break in 14 steps; the liveness continuation,
            // left out here, sees the stalled commit index 2 steps earlier.
            Mutant::CommitResetOnNewTerm => with(m, |b| {
                b.max_crashes = 0;
                b.reads = 0;
                b.liveness = false;
            }),
            // The first snapshot a server takes after applying the write lacks the write's
            // session: "Snapshot Image Equals Applied Prefix" at once.
            Mutant::SnapshotDropsSessions => with(m, |b| {
                b.max_snapshots = 1;
                b.max_crashes = 0;
                b.reads = 0;
            }),
            _ => with(m, |_| {}),
        })
        .collect()
}
