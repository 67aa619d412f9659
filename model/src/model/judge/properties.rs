//! The properties checked on every run (paper, Figure 3, plus linearizability of the service),
//! each paired with a non-vacuity witness showing that what it constrains is reachable.
//!
//! | Always                        | witnessed by                            |
//! |-------------------------------|-----------------------------------------|
//! | Election Safety               | Leaders In Two Terms                    |
//! | Log Matching                  | Log Conflict Truncated                  |
//! | Leader Completeness           | Value Committed, Leaders In Two Terms   |
//! | State Machine Safety          | Committed Then Crashed And Recovered    |
//! | Leader Append-Only            | Leader Elected                          |
//! | Linearizability               | Read Returned A Value                   |
//! | Commit Index Within Log       | Value Committed                         |
//! | Applied Entries Were Committed| Committed Then Crashed And Recovered    |
//! | Core Invariant                | Leader Elected                          |
//! | Match Index Sound             | Leader Knows A Match                    |
//! | Exactly Once                  | Retried Command Deduplicated, Stale Copy Ignored |
//! | Stale Messages Ignored        | Stale Message In Flight                 |
//! | Committed Entries Durable     | Committed Before The Leader's Disk      |
//! | Commit Index Never Decreases  | Value Committed, Leaders In Two Terms   |
//! | Terms Never Decrease          | Committed Then Crashed And Recovered    |
//!
//! Every verdict is taken from what the model recorded as the steps happened (the ghost
//! records, `ghost.rs`, and what it delivered, `received.rs`) or from the core's observable
//! outcomes it judges (role, current_term, voted_for, log, commit_index, applied entries,
//! snapshot, what it saved), never from the core's own bookkeeping (votes_granted,
//! match/next index, read rounds and acks, recent_active, transferee, pending reads): a count
//! that decides a verdict counts messages the model delivered. Match Index Sound is the one
//! property about that bookkeeping itself: it judges the core's match_index against the logs.
//! Commit Index Never Decreases (mutant `commit-reset-on-new-term`; Commit Index Within Log
//! fails in the same state, the core applying what it commits in the step) and Terms Never
//! Decrease (mutant `forget-term-on-restart`) are flags the adapter sets from each step's
//! before and after, and from each restart against the highest term saved.
//!
//! ReadIndex reads (`--read-index`) are witnessed by Read Served Without The Log: a leader
//! answered a read from its register after a majority confirmed its leadership, with no log
//! entry; Linearizability covers them (mutant `read-before-term-commit`). They add the Always
//! property [`READS`], "Reads Confirmed By A Quorum" (mutant `read-without-quorum`): the
//! majority is counted from the AppendEntriesResponses of the leader's term the model
//! delivered to it after the read arrived (a reply in flight when the read arrived counts
//! too: the core's read rounds tell those apart, the model's record does not).
//!
//! Pipelining (`--pipeline`) is witnessed by Pipelined Appends In Flight: two AppendEntries of
//! one leader travel to one follower at once, the second carrying entries after the first's;
//! every property above holds over those states (its mutant, `match-on-send`, breaks Match
//! Index Sound).
//!
//! Linearizability is also witnessed by Retried Command Deduplicated: a client's retried command
//! sat in a log twice and the service's sessions answered the second copy without executing it.
//!
//! PreVote (`--pre-vote`) adds the Always property [`PRE_VOTE`], "Elections Follow A Pre-Vote
//! Majority" (mutants `pre-vote-raises-term`, `pre-vote-without-majority`; the grants are the
//! PreVoteResponses the model delivered in the round in progress), witnessed by
//! Election After A Pre-Vote; CheckQuorum (`--check-quorum`) is witnessed by Leader Stepped
//! Down Without A Quorum and Vote Ignored In A Lease; every property above holds with them.
//! With `--partial-partition` (the 2020 Cloudflare outage: one server cut off from another but
//! not from the third), also the Always property [`UNDISTURBED`], "Stable Leader Not Deposed":
//! it holds with the lease (`--check-quorum`) and fails without it (mutant
//! `vote-despite-lease`).
//!
//! Leadership transfer (`--max-transfers`) adds the Always property [`TRANSFER`], "Transfer
//! Target Up To Date" (mutant `transfer-before-caught-up`), witnessed by Leadership
//! Transferred; Election Safety covers "no two leaders in one term" through it.
//!
//! Membership changes (`--max-config-changes`) add the Always property [`QUORUMS`], "Quorums
//! Overlap" (mutant `two-config-changes-in-flight`), witnessed by Configuration Change
//! Committed and Removed Leader Stepped Down; Election Safety, Leader Completeness and State
//! Machine Safety are stated over every server, member or not, so they cover every
//! configuration (mutants `config-change-before-term-commit`, `quorum-over-old-config`,
//! `removed-leader-counts-itself`, `learner-counted-as-voter`).
//!
//! Log compaction (`--max-snapshots`, §7) adds the Always properties [`SNAPSHOT`], "Snapshot
//! Holds Only Committed State" (mutant `snapshot-beyond-commit`), and [`LOG_TERMS`], "Log
//! Terms Never Decrease" (mutant `install-keeps-conflicting-log`), witnessed by Snapshot
//! Installed On A Follower and Restarted From A Snapshot. The model's snapshot image carries
//! the entries it covers, so Log Matching, Leader Completeness, State Machine Safety, Match
//! Index Sound and Committed Entries Durable are stated over "snapshot + log" ([`full_log`]):
//! a snapshot stands for the entries it covers (mutants `install-discards-matching-log`,
//! `install-older-snapshot`, `install-keeps-commit-index`, `append-prev-inside-snapshot`,
//! `restart-reapplies-log`). The third, [`IMAGE`], "Snapshot Image Equals Applied Prefix"
//! (mutant `snapshot-drops-sessions`), holds every snapshot's register and client sessions to
//! the judge's own reference service (`reference.rs`) applied to the committed entries it
//! covers.
//!
//! With `liveness` (on by default; `--liveness false`), also the Always property [`LIVENESS`], "Progress When Faults Stop"
//! (`liveness.rs`): a bounded, fault-free continuation from every reachable state elects a
//! leader and brings every server's log and commit index to the leader's. It has no witness
//! (it holds in the initial state already); the catalogue mutant `no-backup-on-reject` shows it
//! can fail where no safety property does.

use crate::model::adapter::node::ServerState;
use crate::model::judge::reference::Reference;
use crate::model::judge::register::{ClientOp, Cmd, Image, Msg};
use crate::model::{ModelConfig, RaftModel, RaftState};
use raft_core::Entry;
use raft_core::Role;
use raft_core::{Message, Payload};
use stateright::{Expectation, Property};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

type Condition = fn(&RaftModel, &RaftState) -> bool;

/// The safety properties: they must hold in every reachable state.
pub const ALWAYS: [(&str, Condition); 15] = [
    ("Election Safety", election_safety),
    ("Log Matching", log_matching),
    ("Leader Completeness", leader_completeness),
    ("State Machine Safety", state_machine_safety),
    ("Leader Append-Only", leader_append_only),
    ("Linearizability", linearizability),
    ("Commit Index Within Log", commit_index_within_log),
    (
        "Applied Entries Were Committed",
        applied_entries_were_committed,
    ),
    ("Core Invariant", core_invariant),
    ("Match Index Sound", match_index_sound),
    ("Exactly Once", exactly_once),
    ("Stale Messages Ignored", stale_messages_ignored),
    ("Committed Entries Durable", committed_entries_durable),
    ("Commit Index Never Decreases", commit_index_never_decreases),
    ("Terms Never Decrease", terms_never_decrease),
];

/// The property checked with `--partial-partition` (thesis §9.6; see
/// `ModelConfig::partial_partition`): under the partial partition and its timing assumption, no
/// leader that a follower acknowledged in its term ever meets a higher term while it leads.
pub const UNDISTURBED: (&str, Condition) = ("Stable Leader Not Deposed", stable_leader_not_deposed);

/// The property checked with `--pre-vote` (thesis §9.6): a server raises its own term only
/// by a campaign after a majority granted its pre-vote for exactly that term, or on its
/// leader's TimeoutNow (§3.10, the leader vouching for it); any other rise adopts a term it
/// received (§5.1).
pub const PRE_VOTE: (&str, Condition) = (
    "Elections Follow A Pre-Vote Majority",
    elections_follow_a_pre_vote_majority,
);

/// The property checked with `--max-transfers` (thesis §3.10): every TimeoutNow in flight to
/// a server still in the sender's term names a last entry that server's log holds, so the
/// target starts its election with the leader's whole log.
pub const TRANSFER: (&str, Condition) = ("Transfer Target Up To Date", transfer_target_up_to_date);

/// The property checked with `--max-config-changes` (thesis §4.2): the configurations a
/// leader may count a majority in, the one of its committed prefix and every later one in its
/// log, pairwise share a voter in every two of their majorities.
pub const QUORUMS: (&str, Condition) = ("Quorums Overlap", quorums_overlap);

/// The other property checked with `--max-config-changes` (the July 2015 condition): every
/// configuration entry of term T in any log follows, in that log, an entry of term T that a
/// leader committed. Its violation is the precondition of the published counterexample
/// (two leaders of different terms each change the same configuration, one way each); the
/// counterexample itself needs four voters and three terms, beyond the gate's bounds.
pub const TERM_COMMIT: (&str, Condition) = (
    "Configuration Changes Follow A Term Commit",
    configuration_changes_follow_a_term_commit,
);

/// The property checked with `--max-snapshots` (§7): every snapshot, on a server, on a disk
/// or in an InstallSnapshot in flight, covers only entries that a leader committed, each at
/// its index (so compaction never loses an entry that could still be replaced, and every
/// server's snapshot stands for the same entries).
pub const SNAPSHOT: (&str, Condition) = (
    "Snapshot Holds Only Committed State",
    snapshot_holds_only_committed_state,
);

/// The other property checked with `--max-snapshots`: in every server's "snapshot + log", the
/// terms never decrease along the log (a leader appends entries of its own term after those it
/// has; a follower's log is a prefix of some leader's). An installed snapshot that keeps a
/// suffix of another history breaks it.
pub const LOG_TERMS: (&str, Condition) = ("Log Terms Never Decrease", log_terms_never_decrease);

/// The property checked with `--read-index` (thesis §6.4): a leader answers a read from its
/// register only once a majority of its voters, itself included, acknowledged its term after
/// the read arrived (the AppendEntriesResponses the model delivered to it, `received.rs`).
pub const READS: (&str, Condition) = ("Reads Confirmed By A Quorum", reads_confirmed_by_a_quorum);

/// The third property checked with `--max-snapshots` (§7, thesis §6.3): every snapshot's image,
/// on a server or on its disk, holds the register and the client sessions that the model's own
/// reference service (`reference.rs`) gives by applying the committed entries it covers, in
/// order.
pub const IMAGE: (&str, Condition) = (
    "Snapshot Image Equals Applied Prefix",
    snapshot_image_equals_applied_prefix,
);

/// The property checked with `--max-forged` (issue 38, finding 2): no server took the term of
/// a forged frame, the first term the servers refuse, which no server campaigned in (the model
/// records what the core did with each forged frame it delivered).
pub const FORGED: (&str, Condition) = ("Forged Terms Refused", forged_terms_refused);

/// The liveness property checked with `--liveness` (see `liveness.rs`).
pub const LIVENESS: (&str, Condition) = (
    "Progress When Faults Stop",
    crate::model::judge::liveness::progress_when_faults_stop,
);

/// The witnesses: each must be reachable, or the corresponding safety property is vacuous.
pub const SOMETIMES: [(&str, Condition); 21] = [
    ("Leader Elected", leader_elected),
    ("Value Committed", value_committed),
    ("Leaders In Two Terms", leaders_in_two_terms),
    ("Log Conflict Truncated", log_conflict_truncated),
    (
        "Committed Then Crashed And Recovered",
        committed_then_crashed_and_recovered,
    ),
    ("Read Returned A Value", read_returned_a_value),
    ("Retried Command Deduplicated", retried_command_deduplicated),
    ("Leader Knows A Match", leader_knows_a_match),
    ("Stale Copy Ignored", stale_copy_ignored),
    ("Stale Message In Flight", stale_message_in_flight),
    (
        "Committed Before The Leader's Disk",
        committed_before_the_leaders_disk,
    ),
    ("Pipelined Appends In Flight", pipelined_appends_in_flight),
    ("Read Served Without The Log", read_served_without_the_log),
    ("Election After A Pre-Vote", election_after_a_pre_vote),
    (
        "Leader Stepped Down Without A Quorum",
        leader_stepped_down_without_a_quorum,
    ),
    ("Vote Ignored In A Lease", vote_ignored_in_a_lease),
    ("Leadership Transferred", leadership_transferred),
    (
        "Configuration Change Committed",
        configuration_change_committed,
    ),
    ("Removed Leader Stepped Down", removed_leader_stepped_down),
    (
        "Snapshot Installed On A Follower",
        snapshot_installed_on_a_follower,
    ),
    ("Restarted From A Snapshot", restarted_from_a_snapshot),
];

pub fn always_names() -> Vec<&'static str> {
    ALWAYS.iter().map(|(n, _)| *n).collect()
}

pub fn sometimes_names() -> Vec<&'static str> {
    SOMETIMES.iter().map(|(n, _)| *n).collect()
}

pub(crate) fn all(cfg: &ModelConfig) -> Vec<Property<RaftModel>> {
    let inapplicable: Vec<_> = cfg
        .inapplicable_witnesses()
        .iter()
        .map(|(n, _)| *n)
        .collect();
    let liveness = cfg.liveness.then_some(&LIVENESS);
    let undisturbed = cfg.partial_partition.then_some(&UNDISTURBED);
    let pre_vote = cfg.pre_vote.then_some(&PRE_VOTE);
    let transfer = (cfg.max_transfers > 0).then_some(&TRANSFER);
    let quorums = (cfg.max_config_changes > 0).then_some(&QUORUMS);
    let term_commit = (cfg.max_config_changes > 0).then_some(&TERM_COMMIT);
    let snapshot = (cfg.max_snapshots > 0).then_some(&SNAPSHOT);
    let log_terms = (cfg.max_snapshots > 0).then_some(&LOG_TERMS);
    let image = (cfg.max_snapshots > 0).then_some(&IMAGE);
    let reads = cfg.read_index.then_some(&READS);
    let forged = (cfg.max_forged > 0).then_some(&FORGED);
    let always = ALWAYS
        .iter()
        .chain(pre_vote)
        .chain(transfer)
        .chain(quorums)
        .chain(term_commit)
        .chain(snapshot)
        .chain(log_terms)
        .chain(image)
        .chain(reads)
        .chain(forged)
        .chain(undisturbed)
        .chain(liveness)
        .map(|(name, condition)| Property {
            expectation: Expectation::Always,
            name,
            condition: *condition,
        });
    let sometimes = SOMETIMES
        .iter()
        .filter(|(name, _)| !inapplicable.contains(name))
        .map(|(name, condition)| Property {
            expectation: Expectation::Sometimes,
            name,
            condition: *condition,
        });
    always.chain(sometimes).collect()
}

/// Every server's last known state (a crashed server keeps the state it crashed with, which is
/// what its ghost records and storage hold).
/// Every snapshot a server holds, in memory or on its disk (a crashed server's too).
fn snapshots_kept(state: &RaftState) -> impl Iterator<Item = &raft_core::Snapshot> {
    servers(state).map(|s| s.server.snapshot()).chain(
        (0..state.actor_count())
            .filter_map(|i| state.storage(i))
            .map(|s| &s.hard.snapshot),
    )
}

fn servers(state: &RaftState) -> impl Iterator<Item = &ServerState> {
    state.servers()
}

/// Servers that are up, with their current state.
fn live_servers(state: &RaftState) -> impl Iterator<Item = &ServerState> {
    (0..state.actor_count())
        .filter(|&i| !state.is_crashed(i))
        .filter_map(|i| state.server(i))
}

/// A server's whole log as the properties see it, "snapshot + log" (§7): the entries its
/// snapshot covers (which its state machine applied: the ghost's record, extended by an
/// installed snapshot's image) followed by the entries after it. Borrowed without a snapshot.
fn full_log(s: &ServerState) -> Cow<'_, [Entry<Cmd>]> {
    covered_then(s.server.snapshot_index(), &s.ghost.applied, s.server.log())
}

/// The first `k` of `applied`, then `log` (just `log` when `k` is 0).
fn covered_then<'a>(
    k: u64,
    applied: &[Entry<Cmd>],
    log: &'a [Entry<Cmd>],
) -> Cow<'a, [Entry<Cmd>]> {
    if k == 0 {
        return Cow::Borrowed(log);
    }
    let k = usize::try_from(k).unwrap_or(usize::MAX).min(applied.len());
    let mut full = applied[..k].to_vec();
    full.extend_from_slice(log);
    Cow::Owned(full)
}

/// Election Safety: at most one leader can be elected in a given term. Each server's ghost
/// records every term in which it ended a step as leader, across crashes; no term may appear in
/// two servers' records. This is the paper's statement over the whole history, not just over
/// the leaders of the current state.
fn election_safety(_: &RaftModel, state: &RaftState) -> bool {
    let mut seen = BTreeSet::new();
    for s in servers(state) {
        for term in &s.ghost.led_terms {
            if !seen.insert(*term) {
                return false;
            }
        }
    }
    true
}

/// Log Matching: if two logs contain an entry with the same index and term, the logs are
/// identical in all entries up through that index. It suffices to find the highest such index
/// for each pair and compare the prefixes.
fn log_matching(_: &RaftModel, state: &RaftState) -> bool {
    let logs: Vec<_> = servers(state).map(full_log).collect();
    for (a, la) in logs.iter().enumerate() {
        for lb in &logs[a + 1..] {
            let common = la.len().min(lb.len());
            if let Some(i) = (0..common).rev().find(|i| la[*i].term == lb[*i].term) {
                if la[..=i] != lb[..=i] {
                    return false;
                }
            }
        }
    }
    true
}

/// Leader Completeness: if an entry is committed in a given term, it is present in the logs of
/// the leaders of all higher-numbered terms. Commitments are the ghost records of every leader
/// (kept across crashes); the check runs on every current leader in every reachable state, and a
/// leader's log only grows while it leads (Leader Append-Only), so a leader that ever lacked the
/// entry is caught in some state. Stronger than the paper's: the whole entry (term and command)
/// must match, not only its presence.
fn leader_completeness(_: &RaftModel, state: &RaftState) -> bool {
    let committed: Vec<_> = servers(state).flat_map(|s| s.ghost.committed()).collect();
    live_servers(state)
        .filter(|s| s.server.role == Role::Leader)
        .all(|leader| {
            let log = full_log(leader);
            committed
                .iter()
                .filter(|c| c.commit_term < leader.server.current_term())
                .all(|c| {
                    usize::try_from(c.index)
                        .ok()
                        .and_then(|i| log.get(i.checked_sub(1)?))
                        == Some(&c.entry)
                })
        })
}

/// State Machine Safety: if a server has applied an entry at a given index, no other server ever
/// applies a different entry at that index. Each server's ghost keeps what it applied at each
/// index (across restarts, flagging a re-application that differs); prefixes must agree pairwise.
fn state_machine_safety(_: &RaftModel, state: &RaftState) -> bool {
    let applied: Vec<_> = servers(state).map(|s| &s.ghost).collect();
    if applied.iter().any(|g| g.applied_conflict) {
        return false;
    }
    for (a, ga) in applied.iter().enumerate() {
        for gb in &applied[a + 1..] {
            let common = ga.applied.len().min(gb.applied.len());
            if ga.applied[..common] != gb.applied[..common] {
                return false;
            }
        }
    }
    true
}

/// Leader Append-Only: a leader never overwrites or deletes entries in its log. The adapter
/// compares the log before and after every step of a server that is leader of the same term on
/// both sides and records a violation in the ghost.
fn leader_append_only(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).all(|s| !s.ghost.append_only_violated)
}

/// Linearizability: the clients' history of invocations and returns is equivalent to a
/// sequential execution of the register that respects real-time order.
fn linearizability(_: &RaftModel, state: &RaftState) -> bool {
    state.history.tester.serialized_history().is_some()
}

/// last_applied <= commit_index <= last log index on every server that is up.
fn commit_index_within_log(_: &RaftModel, state: &RaftState) -> bool {
    live_servers(state).all(|s| {
        s.server.last_applied <= s.server.commit_index
            && s.server.commit_index <= s.server.last_log_index()
    })
}

/// An entry is applied only after a leader committed it (paper §5.3: "applied" implies
/// "committed").
fn applied_entries_were_committed(_: &RaftModel, state: &RaftState) -> bool {
    let committed: BTreeSet<_> = servers(state)
        .flat_map(|s| s.ghost.committed.keys())
        .collect();
    servers(state).all(|s| {
        s.ghost
            .applied
            .iter()
            .enumerate()
            .all(|(i, e)| committed.contains(&(i as u64 + 1, e.clone())))
    })
}

/// The core never refused a step: no server reached a state the correct protocol cannot reach
/// (raft-core's `CoreError`: deleting a committed entry, committing past the log, an index out
/// of range, an overflow), and no message was refused as absurd (the guard against forged terms
/// never rejects a message of the correct protocol).
fn core_invariant(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).all(|s| s.fault.is_none())
}

/// Match Index Sound: a leader's match_index for a server of the leader's own term never exceeds
/// what that server's log shares with the leader's (§5.3: match_index is the highest entry
/// "known to be replicated" on the server). The server acknowledged a prefix in this term, and
/// in this term only this leader changes its log, consistently with its own (a server of a later
/// term may since have been rewritten by a newer leader, so only the leader's term is
/// constrained). This is what commitment counts on: a reply of an earlier term taken as an
/// acknowledgement breaks it at once, long before it commits a wrong entry.
fn match_index_sound(_: &RaftModel, state: &RaftState) -> bool {
    leader_matches(state).all(|(leader, peer, m)| {
        peer.is_some_and(|peer| {
            peer.server.current_term() != leader.server.current_term()
                || shares_prefix(&full_log(leader), &full_log(peer), m)
        })
    })
}

/// Every (leader that is up, the server its match_index entry names, that match_index); the
/// server is `None` if the entry names no server of the state.
fn leader_matches(
    state: &RaftState,
) -> impl Iterator<Item = (&ServerState, Option<&ServerState>, u64)> {
    let all: Vec<&ServerState> = servers(state).collect();
    live_servers(state)
        .filter(|l| l.server.role == Role::Leader)
        .flat_map(move |l| {
            let all = all.clone();
            l.server
                .leader
                .progress
                .iter()
                .map(move |(p, g)| (l, all.get(p.0 as usize).copied(), g.match_index))
        })
}

/// The first `m` entries of both logs exist and are equal.
fn shares_prefix<E: PartialEq>(a: &[E], b: &[E], m: u64) -> bool {
    usize::try_from(m).is_ok_and(|m| m <= a.len() && m <= b.len() && a[..m] == b[..m])
}

fn leader_elected(_: &RaftModel, state: &RaftState) -> bool {
    live_servers(state).any(|s| s.server.role == Role::Leader)
}

fn value_committed(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| !s.ghost.committed.is_empty())
}

fn leaders_in_two_terms(_: &RaftModel, state: &RaftState) -> bool {
    let terms: BTreeSet<_> = servers(state).flat_map(|s| &s.ghost.led_terms).collect();
    terms.len() >= 2
}

fn log_conflict_truncated(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.ghost.truncated_conflict)
}

/// A server that is up again after a crash, having applied entries before it: it remembers
/// (ghost) more applied entries than its volatile last_applied, which a restart reset to 0.
fn committed_then_crashed_and_recovered(_: &RaftModel, state: &RaftState) -> bool {
    live_servers(state).any(|s| s.ghost.applied.len() as u64 > s.server.last_applied)
}

fn read_returned_a_value(_: &RaftModel, state: &RaftState) -> bool {
    state.history.read_returned_value
}

/// A leader answered a read from its register through ReadIndex (`--read-index`), and the read
/// saw a written value: Linearizability then covers reads that never entered a log.
fn read_served_without_the_log(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.ghost.read_served_by_index)
}

fn election_after_a_pre_vote(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.ghost.pre_vote_won)
}

fn leader_stepped_down_without_a_quorum(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.ghost.stepped_down_without_quorum)
}

fn vote_ignored_in_a_lease(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.ghost.vote_ignored_in_lease)
}

fn leadership_transferred(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.ghost.won_by_transfer)
}

fn configuration_change_committed(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.ghost.committed.keys().any(|(_, e)| e.command.is_config()))
}

fn removed_leader_stepped_down(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.ghost.removed_leader_stepped_down)
}

/// Log Terms Never Decrease (see [`LOG_TERMS`]): from the snapshot's last included term on.
fn log_terms_never_decrease(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).all(|s| {
        let mut last = s.server.snapshot().last_included_term;
        s.server.log().iter().all(|e| {
            let ok = e.term >= last;
            last = e.term;
            ok
        })
    })
}

fn snapshot_installed_on_a_follower(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.ghost.snapshot_installed)
}

/// A server that is up restarted from a snapshot its disk held (and has not yet been told
/// of anything committed after it).
fn restarted_from_a_snapshot(_: &RaftModel, state: &RaftState) -> bool {
    live_servers(state).any(|s| s.ghost.restarted_from_snapshot)
}

/// Snapshot Holds Only Committed State (see [`SNAPSHOT`]): each snapshot's image names the
/// entries it covers; every one is an entry some leader's ghost recorded committing at that
/// index, and the last one has the snapshot's last included term.
fn forged_terms_refused(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).all(|s| !s.ghost.forged_term_adopted)
}

fn snapshot_holds_only_committed_state(_: &RaftModel, state: &RaftState) -> bool {
    let committed: BTreeSet<_> = servers(state)
        .flat_map(|s| s.ghost.committed.keys())
        .collect();
    let holds_committed = |snapshot: &raft_core::Snapshot| {
        if snapshot.last_included_index == 0 {
            return true;
        }
        let Some(image) = Image::decode(&snapshot.data) else {
            return false;
        };
        image.entries.len() as u64 == snapshot.last_included_index
            && image.entries.last().map(|e| e.term) == Some(snapshot.last_included_term)
            && image
                .entries
                .iter()
                .enumerate()
                .all(|(i, e)| committed.contains(&(i as u64 + 1, e.clone())))
    };
    let in_flight = state
        .network
        .iter_deliverable()
        .filter_map(|env| match env.msg {
            Msg::Raft(Message::InstallSnapshot(m)) => Some(&m.snapshot),
            _ => None,
        });
    snapshots_kept(state).chain(in_flight).all(holds_committed)
}

/// Configuration Changes Follow A Term Commit (see [`TERM_COMMIT`]): the committed entries
/// are those some leader's ghost recorded committing.
fn configuration_changes_follow_a_term_commit(_: &RaftModel, state: &RaftState) -> bool {
    let committed: BTreeSet<_> = servers(state)
        .flat_map(|s| s.ghost.committed.keys())
        .collect();
    servers(state).all(|s| {
        let log = full_log(s);
        log.iter().enumerate().all(|(j, e)| {
            !e.command.is_config()
                || log[..j].iter().enumerate().any(|(i, f)| {
                    f.term == e.term && committed.contains(&(i as u64 + 1, f.clone()))
                })
        })
    })
}

/// Quorums Overlap (thesis §4.2, with `--max-config-changes`): for every leader that is up,
/// every two of the configurations it may count a majority in (that of its log up to the
/// last entry some leader committed, and each configuration entry after it) are such that
/// every majority of the one shares a voter with every majority of the other. One change at a time, each a single
/// server, keeps this so.
fn quorums_overlap(model: &RaftModel, state: &RaftState) -> bool {
    let initial = model.cfg.initial_membership();
    // Committed: what any leader committed (a new leader's own commit_index may lag behind
    // entries an earlier leader committed, changes included).
    let all_committed: BTreeSet<_> = servers(state)
        .flat_map(|s| s.ghost.committed.keys())
        .collect();
    live_servers(state)
        .filter(|s| s.server.role == Role::Leader)
        .all(|s| {
            let log = full_log(s);
            let known = (1..=log.len())
                .rev()
                .find(|&k| all_committed.contains(&(k as u64, log[k - 1].clone())))
                .unwrap_or(0)
                .max(usize::try_from(s.server.commit_index).unwrap_or(usize::MAX));
            let committed = log
                .iter()
                .take(known)
                .rev()
                .find_map(|e| e.command.configuration())
                .unwrap_or_else(|| initial.clone());
            let mut configs = vec![committed];
            configs.extend(
                log.iter()
                    .skip(known)
                    .filter_map(|e| e.command.configuration()),
            );
            configs
                .iter()
                .enumerate()
                .all(|(i, a)| configs[i + 1..].iter().all(|b| a.majorities_overlap(b)))
        })
}

/// Transfer Target Up To Date (thesis §3.10, with `--max-transfers`): for every TimeoutNow in
/// the network whose receiver is still in the sender's term, the receiver's log holds the
/// entry it names (its index and term): the leader sent it only once the target held its
/// whole log, and within one term a follower's log only grows past what its leader sent it.
fn transfer_target_up_to_date(_: &RaftModel, state: &RaftState) -> bool {
    state.network.iter_deliverable().all(|env| {
        let Msg::Raft(Message::TimeoutNow(t)) = env.msg else {
            return true;
        };
        match state.server(usize::from(env.dst)) {
            // Over snapshot + log: a target that compacted still holds the entries its
            // snapshot covers (found by the interplay bound of transfers and snapshots).
            Some(s) if s.server.current_term() == t.term => match t.last_log_index {
                0 => true,
                i => full_log(s)
                    .get(i as usize - 1)
                    .is_some_and(|e| e.term == t.last_log_term),
            },
            _ => true,
        }
    })
}

/// Elections Follow A Pre-Vote Majority (thesis §9.6, with `--pre-vote`): no server's ghost
/// records a term it raised itself without a majority of pre-vote grants for it.
fn elections_follow_a_pre_vote_majority(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).all(|s| !s.ghost.term_raised_without_pre_vote)
}

/// Stable Leader Not Deposed (thesis §9.6, with `--partial-partition`): no server's stable
/// leadership (a follower acknowledged an AppendEntries of its term) ended in a higher term.
fn stable_leader_not_deposed(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).all(|s| !s.ghost.stable_leader_deposed)
}

/// Exactly Once: every server that is up holds the register and client sessions that applying
/// its applied entries exactly once gives (§8: a command whose client already saw a later or the
/// same sequence number applied is not executed again). The reference here is independent of
/// raft-core's `Service`: per client, an entry executes only if its sequence number exceeds every
/// earlier one of that client; the register holds the last executed write; each client's
/// session records its highest sequence number.
fn exactly_once(_: &RaftModel, state: &RaftState) -> bool {
    live_servers(state).all(|s| {
        let Some(applied) = usize::try_from(s.server.last_applied)
            .ok()
            .and_then(|n| s.ghost.applied.get(..n))
        else {
            return false;
        };
        let mut last_seq: BTreeMap<u8, u8> = BTreeMap::new();
        let mut value = None;
        for e in applied.iter().filter(|e| !e.command.is_config()) {
            let c = e.command;
            if last_seq.get(&c.client).is_some_and(|&l| c.seq <= l) {
                continue;
            }
            last_seq.insert(c.client, c.seq);
            if let ClientOp::Put(v) = c.op {
                value = Some(v);
            }
        }
        s.machine.machine.value == value
            && last_seq.iter().all(|(&client, &seq)| {
                s.machine
                    .recorded(u64::from(client), u64::from(seq))
                    .is_some()
            })
    })
}

/// Some server applied a copy of a command older than one its client had applied already (a
/// late retry): what Exactly Once constrains beyond the duplicate of the latest command.
fn stale_copy_ignored(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| {
        let applied = &s.ghost.applied;
        applied.iter().enumerate().any(|(i, e)| {
            applied[..i]
                .iter()
                .any(|f| f.command.client == e.command.client && f.command.seq > e.command.seq)
        })
    })
}

/// Stale Messages Ignored: a Raft message of an earlier term than its receiver's changes nothing
/// on the receiver (§5.1: "If a server receives a request with a stale term number, it rejects
/// the request"; a stale reply answers a request of a term that is over, so it is dropped). The
/// adapter compares the server before and after every such step and records a change in the
/// ghost. A leader that took an earlier term's acknowledgement as one of its own would count
/// entries the follower may no longer hold.
fn stale_messages_ignored(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).all(|s| !s.ghost.stale_message_acted_on)
}

/// A Raft message in flight to a server (up) whose current term is later than the message's:
/// its delivery is what Stale Messages Ignored constrains.
fn stale_message_in_flight(m: &RaftModel, state: &RaftState) -> bool {
    state.network.iter_deliverable().any(|env| {
        let dst = usize::from(env.dst);
        match (env.msg, state.server(dst)) {
            (crate::model::judge::register::Msg::Raft(msg), Some(s)) if m.cfg.is_server(dst) => {
                !state.is_crashed(dst) && msg.term() < s.server.current_term()
            }
            _ => false,
        }
    })
}

/// Two AppendEntries of one term from one sender to one receiver are in the network at once,
/// both with entries, the second's starting after the first's last entry: a pipelining
/// leader's (without pipelining, a later AppendEntries starts at an acknowledged index, so it
/// overlaps or follows a delivered one).
fn pipelined_appends_in_flight(_: &RaftModel, state: &RaftState) -> bool {
    let appends: Vec<_> = state
        .network
        .iter_deliverable()
        .filter_map(|env| match env.msg {
            crate::model::judge::register::Msg::Raft(raft_core::Message::AppendEntries(ae))
                if !ae.entries.is_empty() =>
            {
                Some((env.src, env.dst, ae))
            }
            _ => None,
        })
        .collect();
    appends.iter().any(|(src, dst, a)| {
        appends.iter().any(|(s2, d2, b)| {
            s2 == src
                && d2 == dst
                && b.term == a.term
                && b.prev_log_index >= a.prev_log_index + a.entries.len() as u64
        })
    })
}

/// A leader (up) holds a positive match_index for a server of its own term: what Match Index
/// Sound constrains.
fn leader_knows_a_match(_: &RaftModel, state: &RaftState) -> bool {
    leader_matches(state).any(|(leader, peer, m)| {
        m > 0 && peer.is_some_and(|p| p.server.current_term() == leader.server.current_term())
    })
}

/// Committed Entries Durable: every entry a server (up) knows is committed is held, at its
/// index, on the disks of a majority of the servers (what each server saved, which is what a
/// crash leaves it). A leader writes its own entries behind (`Persist::write_behind`), so this
/// is what its commit rule must ensure by counting its own copy only once it is durable; the
/// mutant `own-match-before-fsync` breaks it. (The majority is the correct one, whatever the
/// rules under check say.)
fn committed_entries_durable(model: &RaftModel, state: &RaftState) -> bool {
    let n = model.cfg.servers;
    // What each disk holds: its snapshot (standing for the entries it covers) and its log.
    let disks: Vec<Cow<'_, [Entry<Cmd>]>> = (0..n)
        .map(|i| match state.storage(i) {
            Some(s) => covered_then(
                s.hard.snapshot.last_included_index,
                &s.ghost.applied,
                &s.hard.log,
            ),
            None => Cow::Borrowed(&[][..]),
        })
        .collect();
    let initial = model.cfg.initial_membership();
    live_servers(state).all(|s| {
        let log = full_log(s);
        log[..(s.server.commit_index as usize).min(log.len())]
            .iter()
            .enumerate()
            .all(|(k, e)| {
                // On a majority of the voters of a configuration the committing leader may
                // have counted over: that of the log up to the entry, or a later one (thesis
                // §4.1). Without membership changes: a majority of all servers.
                let at = log[..k + 1]
                    .iter()
                    .rev()
                    .find_map(|e| e.command.configuration())
                    .unwrap_or_else(|| initial.clone());
                let later = log[k + 1..]
                    .iter()
                    .filter_map(|e| e.command.configuration());
                std::iter::once(at).chain(later).any(|m| {
                    let holders = m
                        .voters
                        .iter()
                        .filter(|v| disks.get(v.0 as usize).and_then(|d| d.get(k)) == Some(e))
                        .count();
                    holders > m.voters.len() / 2
                })
            })
    })
}

/// A leader (up) committed an entry its own disk does not hold yet: the followers' durable
/// copies made the majority while it wrote behind (what Committed Entries Durable constrains).
fn committed_before_the_leaders_disk(_: &RaftModel, state: &RaftState) -> bool {
    (0..state.actor_count())
        .filter(|&i| !state.is_crashed(i))
        .filter_map(|i| Some((state.server(i)?, state.storage(i))))
        .any(|(s, disk)| {
            // What its disk holds: the snapshot's entries and the log after them.
            let saved = disk.map_or(0, |d| {
                d.hard.snapshot.last_included_index + d.hard.log.len() as u64
            });
            s.server.role == Role::Leader && s.server.commit_index > saved
        })
}

/// Some server applied one client command at two indices: the client's retry was proposed again
/// and the service deduplicated it when applying (the node's exactly-once path).
fn retried_command_deduplicated(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| {
        let applied = &s.ghost.applied;
        applied.iter().enumerate().any(|(i, e)| {
            !e.command.is_config() && applied[i + 1..].iter().any(|f| f.command == e.command)
        })
    })
}

/// Commit Index Never Decreases (Figure 2: commit_index "increases monotonically"): no step of
/// a server lowered its commit_index within one life (a restart starts it again from its
/// snapshot). The adapter compares every step's before and after.
fn commit_index_never_decreases(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).all(|s| !s.ghost.commit_decreased)
}

/// Terms Never Decrease (§5.1, Figure 2: current_term is persistent): no step of a server
/// lowered its current_term, and no restart brought back a term below the highest one it had
/// saved (the ghost's `durable_term`, saved with its storage).
fn terms_never_decrease(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).all(|s| !s.ghost.term_decreased)
}

/// Reads Confirmed By A Quorum (see [`READS`]).
fn reads_confirmed_by_a_quorum(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).all(|s| !s.ghost.read_unconfirmed)
}

/// Snapshot Image Equals Applied Prefix (see [`IMAGE`]): the entries are those some leader's
/// ghost recorded committing at each index 1..=last_included_index. Where an index has no
/// such entry, or two, the image is not judged here: Snapshot Holds Only Committed State and
/// State Machine Safety judge that.
fn snapshot_image_equals_applied_prefix(_: &RaftModel, state: &RaftState) -> bool {
    let mut committed: BTreeMap<u64, BTreeSet<&Entry<Cmd>>> = BTreeMap::new();
    for s in servers(state) {
        for (index, entry) in s.ghost.committed.keys() {
            committed.entry(*index).or_default().insert(entry);
        }
    }
    let prefix = |k: u64| -> Option<Vec<&Entry<Cmd>>> {
        (1..=k)
            .map(|i| match committed.get(&i) {
                Some(at) if at.len() == 1 => at.first().copied(),
                _ => None,
            })
            .collect()
    };
    let image_right = |snapshot: &raft_core::Snapshot| {
        if snapshot.last_included_index == 0 {
            return true;
        }
        let Some(entries) = prefix(snapshot.last_included_index) else {
            return true;
        };
        Image::decode(&snapshot.data).is_some_and(|image| Reference::after(entries).matches(&image))
    };
    snapshots_kept(state).all(image_right)
}
