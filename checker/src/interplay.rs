//! The interplay bounds: a covering design over the node's features (`coverage.rs`), so that
//! every pair of the features the node runs together is model-checked together in at least
//! one exhaustive bound of the gate, with the dimensions the pair needs to show its interplay.
//!
//! The node runs PreVote, CheckQuorum, ReadIndex, fast backup, bounded and pipelined appends,
//! write-behind and snapshots at once, and an operator adds membership changes and transfers;
//! crashes happen. Each bound below holds three to five of them (write-behind is on in every
//! bound with a value), on three servers unless it says otherwise, chosen so that together they
//! cover all 55 pairs (`coverage::tests`) at a cost the gate can pay: each bound's distinct
//! states and time are in results/<name>.json, the pair table in results/README.md.

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

/// Two voters and a third server outside, one change (add, promote or remove).
fn membership(b: ModelConfig) -> ModelConfig {
    ModelConfig {
        initial_voters: Some(2),
        max_config_changes: 1,
        ..b
    }
}

pub fn interplay() -> Vec<Standard> {
    vec![
        Standard {
            name: "pair-membership-crash-snapshots",
            purpose: "a membership change with a crash and a snapshot: a server restarting \
                      from snapshot + log must come back with the configuration it had",
            bound: membership(ModelConfig {
                max_crashes: 1,
                max_snapshots: 1,
                ..base()
            }),
            symmetry: false,
        },
        Standard {
            name: "pair-membership-pre-vote-check-quorum-transfer",
            purpose: "a membership change beside PreVote, CheckQuorum and a transfer: a \
                      transfer to a server being removed, a lease counted over the new voters",
            bound: membership(ModelConfig {
                pre_vote: true,
                check_quorum: true,
                max_transfers: 1,
                ..base()
            }),
            symmetry: false,
        },
        Standard {
            name: "pair-membership-read-index-fast-backup",
            purpose: "a membership change beside ReadIndex reads and fast backup: a read \
                      confirmed by a quorum of the configuration in force",
            bound: membership(ModelConfig {
                read_index: true,
                reads: 1,
                fast_backup: true,
                ..base()
            }),
            symmetry: false,
        },
        Standard {
            name: "pair-membership-pipelined",
            purpose: "a membership change beside pipelined, one-entry appends: progress of a \
                      new member, replies from an earlier membership",
            bound: membership(pipelined(base())),
            symmetry: false,
        },
        Standard {
            name: "pair-crash-pre-vote-check-quorum-read-index",
            purpose: "a crash beside PreVote, CheckQuorum and ReadIndex: a restarted server's \
                      pre-vote, a lease and a read across a restart",
            bound: ModelConfig {
                max_crashes: 1,
                pre_vote: true,
                check_quorum: true,
                read_index: true,
                reads: 1,
                ..base()
            },
            symmetry: true,
        },
        Standard {
            name: "pair-crash-transfer-fast-backup-bounded",
            purpose: "a crash beside a transfer, fast backup and one entry per append: two \
                      values, so a backed-up follower is repaired in several appends",
            bound: ModelConfig {
                max_crashes: 1,
                max_transfers: 1,
                fast_backup: true,
                max_entries_per_append: Some(1),
                values: 2,
                ..base()
            },
            symmetry: true,
        },
        Standard {
            name: "pair-crash-pipelined-snapshots",
            purpose: "a crash beside pipelining and a snapshot on three servers: diverging \
                      logs, a pipelining leader backing off, a snapshot sent past a window",
            bound: pipelined(ModelConfig {
                max_crashes: 1,
                max_snapshots: 1,
                ..base()
            }),
            symmetry: true,
        },
        Standard {
            name: "pair-snapshots-pre-vote-check-quorum-fast-backup-bounded",
            purpose: "a snapshot with entries after its point (two values, one entry per \
                      append) beside PreVote, CheckQuorum and fast backup",
            bound: ModelConfig {
                max_snapshots: 1,
                pre_vote: true,
                check_quorum: true,
                fast_backup: true,
                max_entries_per_append: Some(1),
                values: 2,
                ..base()
            },
            symmetry: true,
        },
        Standard {
            name: "pair-snapshots-transfer-read-index-three-terms",
            purpose: "a snapshot and a transfer over three terms, with a ReadIndex read",
            bound: ModelConfig {
                max_snapshots: 1,
                max_transfers: 1,
                read_index: true,
                reads: 1,
                max_term: 3,
                ..base()
            },
            symmetry: true,
        },
        Standard {
            name: "pair-pipelined-pre-vote-check-quorum-transfer-fast-backup",
            purpose: "pipelining on three servers beside PreVote, CheckQuorum, a transfer and \
                      fast backup",
            bound: pipelined(ModelConfig {
                pre_vote: true,
                check_quorum: true,
                max_transfers: 1,
                fast_backup: true,
                ..base()
            }),
            symmetry: true,
        },
        Standard {
            name: "pair-pipelined-read-index",
            purpose: "pipelining beside ReadIndex reads: a read's confirmation among \
                      pipelined appends",
            bound: pipelined(ModelConfig {
                read_index: true,
                reads: 1,
                ..base()
            }),
            symmetry: true,
        },
    ]
}
