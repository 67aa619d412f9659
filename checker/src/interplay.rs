//! The interplay bounds: a covering design over the node's features (`coverage.rs`), so that
//! every pair of the features the node runs together is model-checked together in at least
//! one exhaustive bound of the gate, with the dimensions the pair needs to show its interplay.
//!
//! The node runs PreVote, CheckQuorum, ReadIndex, fast backup, bounded and pipelined appends,
//! write-behind and snapshots at once, and an operator adds membership changes and transfers;
//! crashes happen. Each bound below holds three to five of them (write-behind is on in every
//! bound with a value), on three servers unless it says otherwise, at a cost the gate can pay
//! (each bound's distinct states and time are in results/<name>.json, the pair table in
//! results/README.md). Membership changes break symmetry, so their bounds have two servers;
//! fast backup shows only with three servers, a third term and two entries, so it meets few
//! features. The pairs no bound affordable today covers are `coverage::KNOWN_GAPS`, each with
//! the size it would take.

use crate::standard::{Standard, WINDOW_OF_TWO};
use raft_model::model::ModelConfig;

/// The small start every interplay bound grows from: three servers, terms <= 2, one client
/// writing once, no read, no crash, one message in flight, the leader's disk written behind.
fn base() -> ModelConfig {
    ModelConfig {
        reads: 0,
        max_crashes: 0,
        ..ModelConfig::default()
    }
}

/// Pipelining as the model shows it: a window of two entries, two messages in flight, one
/// entry per AppendEntries (so two of them can travel to one follower at once).
fn pipelined(b: ModelConfig) -> ModelConfig {
    ModelConfig {
        pipeline: Some(WINDOW_OF_TWO),
        max_in_flight: 2,
        max_entries_per_append: Some(1),
        ..b
    }
}

/// Two servers, one voter: the other joins as a learner (and, with two changes, is promoted;
/// or a learner is removed), and a crash gives the voter a second term.
fn joining(b: ModelConfig) -> ModelConfig {
    ModelConfig {
        servers: 2,
        initial_voters: Some(1),
        max_config_changes: b.max_config_changes.max(1),
        max_crashes: 1,
        ..b
    }
}

/// Two voters; one change removes either (the leader too, which then steps down).
fn two_voters(b: ModelConfig) -> ModelConfig {
    ModelConfig {
        servers: 2,
        max_config_changes: 1,
        ..b
    }
}

pub fn interplay() -> Vec<Standard> {
    vec![
        Standard {
            name: "pair-node-two-servers",
            purpose: "the node's data path (`check`'s default bound, standard::node): \
                      ReadIndex, fast backup, one-entry pipelined appends, write-behind and a \
                      snapshot, with a crash, on two servers",
            bound: crate::standard::node(),
            symmetry: true,
        },
        Standard {
            name: "pair-membership-crash-snapshots-sessions",
            purpose: "a learner joins a one-voter cluster whose voter crashes and takes a \
                      snapshot after a write and a read through the log: the learner installs \
                      it (a session past its first request, an entry after its point), the \
                      voter restarts from snapshot + log with the configuration it had",
            bound: joining(ModelConfig {
                max_snapshots: 1,
                reads: 1,
                ..base()
            }),
            symmetry: false,
        },
        Standard {
            name: "pair-membership-two-changes-crash-check-quorum-transfer",
            purpose: "two membership changes with a crash, PreVote, CheckQuorum and a \
                      transfer: a learner added and promoted (or removed) while the voter \
                      crashes, restarts, checks its quorum (where the learner's lease once \
                      never ended) and hands over to the new voter",
            bound: joining(ModelConfig {
                max_config_changes: 2,
                pre_vote: true,
                check_quorum: true,
                max_transfers: 1,
                ..base()
            }),
            symmetry: false,
        },
        Standard {
            name: "pair-membership-pipelined-crash-snapshots",
            purpose: "a learner joins through pipelined, one-entry appends, the voter takes a \
                      snapshot and crashes: a new member's progress, a snapshot sent past a \
                      window, replies of an earlier life",
            bound: joining(pipelined(ModelConfig {
                max_snapshots: 1,
                ..base()
            })),
            symmetry: false,
        },
        Standard {
            name: "pair-membership-read-index",
            purpose: "a membership change beside ReadIndex reads: a read confirmed by a quorum \
                      of the configuration in force while a voter is removed",
            bound: two_voters(ModelConfig {
                read_index: true,
                reads: 1,
                ..base()
            }),
            symmetry: false,
        },
        Standard {
            name: "pair-membership-pre-vote-check-quorum-transfer",
            purpose: "a membership change beside PreVote, CheckQuorum and a transfer: a \
                      transfer to a server being removed, a lease counted over the new voters",
            bound: two_voters(ModelConfig {
                pre_vote: true,
                check_quorum: true,
                max_transfers: 1,
                ..base()
            }),
            symmetry: false,
        },
        Standard {
            name: "pair-three-terms-transfer-snapshots-pre-vote-check-quorum-bounded",
            purpose: "a transfer and a snapshot over three terms (two servers) with PreVote, \
                      CheckQuorum and one entry per append, a write and a read through the \
                      log: a target that compacted, a snapshot of an earlier leader's entries",
            bound: ModelConfig {
                servers: 2,
                max_term: 3,
                max_snapshots: 1,
                max_transfers: 1,
                pre_vote: true,
                check_quorum: true,
                max_entries_per_append: Some(1),
                reads: 1,
                ..base()
            },
            symmetry: true,
        },
        Standard {
            name: "pair-pipelined-three-servers",
            purpose: "pipelining on three servers, whose logs diverge: a pipelining leader \
                      backing off after a rejection",
            bound: pipelined(ModelConfig {
                reads: 1,
                // As the standard "reordering" bound: its leader's disk completes with the
                // proposal (write-behind is checked with pipelining on two servers).
                write_behind: false,
                ..base()
            }),
            symmetry: true,
        },
    ]
}
