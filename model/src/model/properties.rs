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
//!
//! Linearizability is also witnessed by Retried Command Deduplicated: a client's retried command
//! sat in a log twice and the service's sessions answered the second copy without executing it.
//!
//! With `liveness` (on by default; `--liveness false`), also the Always property [`LIVENESS`], "Progress When Faults Stop"
//! (`progress.rs`): a bounded, fault-free continuation from every reachable state elects a
//! leader and brings every server's log and commit index to the leader's. It has no witness
//! (it holds in the initial state already); the catalogue mutant `no-backup-on-reject` shows it
//! can fail where no safety property does.

use super::node::ServerState;
use super::{ModelConfig, RaftModel, RaftState};
use raft_core::Role;
use stateright::{Expectation, Property};
use std::collections::BTreeSet;

type Condition = fn(&RaftModel, &RaftState) -> bool;

/// The safety properties: they must hold in every reachable state.
pub const ALWAYS: [(&str, Condition); 9] = [
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
];

/// The liveness property checked with `--liveness` (see `progress.rs`).
pub const LIVENESS: (&str, Condition) = (
    "Progress When Faults Stop",
    super::progress::progress_when_faults_stop,
);

/// The witnesses: each must be reachable, or the corresponding safety property is vacuous.
pub const SOMETIMES: [(&str, Condition); 7] = [
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
    let always = ALWAYS
        .iter()
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
fn servers(state: &RaftState) -> impl Iterator<Item = &ServerState> {
    state.actor_states.iter().filter_map(|s| s.as_server())
}

/// Servers that are up, with their current state.
fn live_servers(state: &RaftState) -> impl Iterator<Item = &ServerState> {
    state
        .actor_states
        .iter()
        .zip(&state.crashed)
        .filter(|(_, crashed)| !**crashed)
        .filter_map(|(s, _)| s.as_server())
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
    let logs: Vec<_> = servers(state).map(|s| s.server.log()).collect();
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
            committed
                .iter()
                .filter(|c| c.commit_term < leader.server.current_term())
                .all(|c| leader.server.entry(c.index) == Some(&c.entry))
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

/// Some server applied one client command at two indices: the client's retry was proposed again
/// and the service deduplicated it when applying (the node's exactly-once path).
fn retried_command_deduplicated(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| {
        let applied = &s.ghost.applied;
        applied
            .iter()
            .enumerate()
            .any(|(i, e)| applied[i + 1..].iter().any(|f| f.command == e.command))
    })
}
