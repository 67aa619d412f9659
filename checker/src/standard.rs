//! The standard configurations: the bounds whose results are committed in results/ and re-run
//! by `raft-check gate`. Each must finish well within CI's time on a 2-core machine.

use raft_core::Window;
use raft_model::model::{ModelConfig, NetworkKind};

pub struct Standard {
    /// File stem in results/ (`results/<name>.json`).
    pub name: &'static str,
    /// What the configuration adds over the default.
    pub purpose: &'static str,
    pub bound: ModelConfig,
    /// Checked with symmetry reduction (its distinct-state count is then of renaming classes;
    /// the representative is canonical, so the count is the same on every run).
    pub symmetry: bool,
}

/// The standard configurations. Three of them (fast-backup, reordering, duplicating: no crash,
/// larger bounds) make the leader's own entries durable in the step that appended them
/// (`write_behind: false`, a subset of the node's behaviours): the write-behind is checked by
/// the configurations with a crash (default, three-terms, quick-crash) and by every quick one,
/// and with it those three bounds take two to three times longer (the gate's time, 2026-12-04).
pub fn standard() -> Vec<Standard> {
    vec![
        Standard {
            name: "default",
            purpose: "the default bound: 2 terms, a write and a read, one crash, loss",
            bound: ModelConfig::default(),
            // With symmetry since the leader's write-behind (2026-12-04) made the plain run
            // (the README's main job, `check` without flags) 2.6 times larger: same verdicts,
            // a fraction of the states, and the gate stays within its time.
            symmetry: true,
        },
        Standard {
            name: "fast-backup",
            purpose: "the runnable node's fast log backup (a rejecting follower hints the start \
                      of the conflicting term): terms <= 3 and two values, where that hint \
                      differs from the plain one (with terms <= 2 it never does)",
            bound: ModelConfig {
                fast_backup: true,
                max_term: 3,
                values: 2,
                reads: 0,
                max_crashes: 0,
                write_behind: false, // see `standard`
                ..ModelConfig::default()
            },
            symmetry: true,
        },
        Standard {
            name: "reordering",
            purpose: "two messages in flight (reordering), no crash",
            bound: ModelConfig {
                max_in_flight: 2,
                max_crashes: 0,
                write_behind: false, // see `standard`
                ..ModelConfig::default()
            },
            symmetry: true,
        },
        Standard {
            name: "duplicating",
            purpose: "a duplicating network (a delivered message stays deliverable)",
            bound: ModelConfig {
                network: NetworkKind::UnorderedDuplicating,
                max_in_flight: 2,
                max_crashes: 0,
                write_behind: false, // see `standard`
                ..ModelConfig::default()
            },
            // (Without symmetry until 2026-12-03: the representative left the duplicating
            // network's last delivered message out of its tie-break, so the class count
            // varied from run to run; fixed, and tested in symmetry_tests.rs.)
            symmetry: true,
        },
        Standard {
            name: "three-terms",
            purpose: "terms <= 3 with a crash: three elections, where a bug that needs a second \
                      leader change shows",
            bound: ModelConfig {
                max_term: 3,
                reads: 0,
                ..ModelConfig::default()
            },
            symmetry: true,
        },
        Standard {
            name: "pre-vote-check-quorum",
            purpose: "PreVote and CheckQuorum (thesis §9.6), as the node runs: pre-vote rounds \
                      that change no term, leaders stepping down without a majority, servers \
                      that know a leader ignoring requests for votes; a write, no crash (with \
                      the default bound's crash it did not finish in 15 minutes: 48 M classes)",
            bound: ModelConfig {
                pre_vote: true,
                check_quorum: true,
                max_crashes: 0,
                reads: 0,
                ..ModelConfig::default()
            },
            symmetry: true,
        },
        Standard {
            name: "membership",
            purpose: "single-server membership changes (thesis ch. 4) with learners: two voters \
                      and a third server outside, one change (add it as a learner, or remove a \
                      voter, the leader itself included); a write, no crash; without symmetry, \
                      which configurations break",
            bound: ModelConfig {
                initial_voters: Some(2),
                max_config_changes: 1,
                max_crashes: 0,
                reads: 0,
                ..ModelConfig::default()
            },
            symmetry: false,
        },
        Standard {
            name: "membership-promote",
            purpose: "one voter and two servers outside, two changes: a learner added, caught \
                      up and promoted (or two learners, or a learner removed); a write, no crash",
            bound: ModelConfig {
                initial_voters: Some(1),
                max_config_changes: 2,
                max_crashes: 0,
                reads: 0,
                ..ModelConfig::default()
            },
            symmetry: false,
        },
        Standard {
            name: "snapshots",
            purpose: "log compaction and InstallSnapshot (§7): a write, one snapshot taken by \
                      any server at any moment of what it applied, a leader sending it to a \
                      follower that needs compacted entries, and a crash (a restart from \
                      snapshot + log)",
            bound: ModelConfig {
                max_snapshots: 1,
                reads: 0,
                ..ModelConfig::default()
            },
            symmetry: true,
        },
        Standard {
            name: "pipelined-crash",
            purpose: "pipelined AppendEntries (as the node sends them: a window of 2 entries per \
                      follower) with two messages in flight and a crash, two servers (with three, \
                      the same bound takes over ten minutes)",
            bound: ModelConfig {
                servers: 2,
                max_in_flight: 2,
                pipeline: Some(WINDOW_OF_TWO),
                ..ModelConfig::default()
            },
            symmetry: true,
        },
    ]
}

/// The partial partition with PreVote and CheckQuorum: 3 servers, no crash, elections only
/// (no client), terms <= 3. Also the catalogue's bound for the mutants of §9.6.
pub fn partial_partition() -> ModelConfig {
    ModelConfig {
        values: 0,
        reads: 0,
        max_crashes: 0,
        max_term: 3,
        pre_vote: true,
        check_quorum: true,
        partial_partition: true,
        ..ModelConfig::default()
    }
}

/// A pipelining leader's window in the model: two entries unacknowledged per follower, so two
/// AppendEntries, each with an entry, may travel to one follower at once.
pub const WINDOW_OF_TWO: Window = Window {
    entries: 2,
    bytes: usize::MAX,
};

/// The node's configuration (impl/src/node/mod.rs, `node_config`) at the size `check` checks by
/// default, within five minutes here: the node's data path (ReadIndex, fast backup, appends
/// bounded to one entry and pipelined two deep, write-behind, a snapshot) on two servers with
/// a crash, a write and a read, two messages in flight. PreVote and CheckQuorum (which the node
/// also runs) and a transfer are left out: with them this bound does not finish in five
/// minutes here (over 18 M classes in 170 s without even the crash, 2026-12-07); the gate's
/// interplay bounds check them with the other features (`coverage::KNOWN_GAPS` lists the
/// pairs none covers yet). With two servers, fast backup's hint never differs from the plain
/// one, no log conflicts, and every majority holds the leader's disk (their witnesses say so).
pub fn node() -> ModelConfig {
    ModelConfig {
        servers: 2,
        read_index: true,
        fast_backup: true,
        max_entries_per_append: Some(1),
        pipeline: Some(WINDOW_OF_TWO),
        max_in_flight: 2,
        max_snapshots: 1,
        ..ModelConfig::default()
    }
}

/// The quick configurations: the mutation gate (`raft-check gate --quick`, which `cargo
/// mutants` runs on every mutant of raft-core). Small bounds, each aimed at one class of bug,
/// cheapest first; together a few tens of seconds. Every one checks liveness too.
pub fn quick() -> Vec<Standard> {
    let base = ModelConfig {
        max_crashes: 0,
        reads: 0,
        ..ModelConfig::default()
    };
    vec![
        Standard {
            name: "quick-one-entry-per-append",
            purpose: "one entry per AppendEntries: leader_commit beyond what was sent",
            bound: ModelConfig {
                max_entries_per_append: Some(1),
                reads: 1,
                ..base.clone()
            },
            symmetry: true,
        },
        Standard {
            name: "quick-two-servers",
            purpose: "two servers: a majority of two is both (a quorum rule that is right only \
                      for three servers shows)",
            bound: ModelConfig {
                servers: 2,
                ..base.clone()
            },
            symmetry: true,
        },
        Standard {
            name: "quick-two-servers-three-terms",
            purpose: "two servers, terms <= 3, two messages in flight: a reply of an earlier term \
                      reaches its leader elected again (a leader leaves office only for a later \
                      term, so it leads again two terms on at the earliest)",
            bound: ModelConfig {
                servers: 2,
                max_term: 3,
                max_in_flight: 2,
                ..base.clone()
            },
            symmetry: true,
        },
        Standard {
            name: "quick-duplicating",
            purpose: "a duplicating network, two messages in flight",
            bound: ModelConfig {
                network: NetworkKind::UnorderedDuplicating,
                max_in_flight: 2,
                ..base.clone()
            },
            symmetry: true,
        },
        Standard {
            name: "quick-reordering",
            purpose: "two messages in flight (stale replies and requests)",
            bound: ModelConfig {
                max_in_flight: 2,
                ..base.clone()
            },
            symmetry: true,
        },
        Standard {
            name: "quick-crash",
            purpose: "a crash and restart (what must be persisted)",
            bound: ModelConfig {
                max_crashes: 1,
                ..base.clone()
            },
            symmetry: true,
        },
        Standard {
            name: "quick-four-terms",
            purpose: "terms <= 4: Figure 8 (commitment of earlier-term entries)",
            bound: ModelConfig {
                max_term: 4,
                ..base.clone()
            },
            symmetry: true,
        },
        Standard {
            name: "quick-stale-copy",
            purpose: "a late copy of a client's write applied after its read (exactly-once \
                      sessions): a log of 3, two messages in flight, two servers",
            bound: ModelConfig {
                servers: 2,
                reads: 1,
                max_log_len: Some(3),
                max_in_flight: 2,
                ..base.clone()
            },
            symmetry: true,
        },
        Standard {
            name: "quick-pipelined",
            purpose: "pipelined AppendEntries: two in flight to one follower, acknowledged, \
                      rejected and probed again out of order (two servers, a write and a read)",
            bound: ModelConfig {
                servers: 2,
                reads: 1,
                max_in_flight: 2,
                pipeline: Some(WINDOW_OF_TWO),
                ..base.clone()
            },
            symmetry: true,
        },
        Standard {
            name: "quick-read-index",
            purpose: "reads through ReadIndex (thesis §6.4): a leader answers a read from its \
                      register after a majority confirmed its leadership, with no log entry, or \
                      proposes it while it has committed no entry of its term",
            bound: ModelConfig {
                reads: 1,
                read_index: true,
                write_behind: false,
                ..base.clone()
            },
            symmetry: true,
        },
        Standard {
            name: "quick-read-index-three-terms",
            purpose: "ReadIndex with terms <= 3 and two messages in flight (two servers): a \
                      leader elected again two terms on meets replies to its earlier \
                      leadership's read rounds",
            bound: ModelConfig {
                servers: 2,
                max_term: 3,
                max_in_flight: 2,
                reads: 1,
                read_index: true,
                ..base.clone()
            },
            symmetry: true,
        },
        Standard {
            name: "quick-pre-vote-check-quorum",
            purpose: "PreVote and CheckQuorum (thesis §9.6) on two servers, with a leadership \
                      transfer (§3.10) whose RequestVote passes the lease (the three-server \
                      bound is the standard `pre-vote-check-quorum`)",
            bound: ModelConfig {
                servers: 2,
                pre_vote: true,
                check_quorum: true,
                max_transfers: 1,
                ..base.clone()
            },
            symmetry: true,
        },
        Standard {
            name: "quick-transfer",
            purpose: "a leadership transfer (thesis §3.10): the leader catches the target up, \
                      refuses proposals meanwhile, sends TimeoutNow; the target's election \
                      deposes it (Transfer Target Up To Date)",
            bound: ModelConfig {
                max_transfers: 1,
                ..base.clone()
            },
            symmetry: true,
        },
        Standard {
            name: "quick-membership",
            purpose: "a membership change on two voters (thesis ch. 4): either may be removed, \
                      the leader itself included, which steps down once its removal is \
                      committed; without symmetry",
            bound: ModelConfig {
                servers: 2,
                max_config_changes: 1,
                ..base.clone()
            },
            symmetry: false,
        },
        Standard {
            name: "quick-snapshots",
            purpose: "a snapshot (§7) of the committed write, taken by any server at any \
                      moment, and installed on a follower that lacks the entry",
            bound: ModelConfig {
                max_snapshots: 1,
                ..base.clone()
            },
            symmetry: true,
        },
        Standard {
            name: "quick-forged-terms",
            purpose: "forged peer frames (issue 38, finding 2): a RequestVote flagged as a \
                      transfer, with the first term no election could follow, reaches a server \
                      at any moment, with PreVote and CheckQuorum; every server refuses it \
                      (Forged Terms Refused); without symmetry, as a forged frame names its \
                      sender",
            bound: ModelConfig {
                servers: 2,
                pre_vote: true,
                check_quorum: true,
                max_forged: 2,
                ..base.clone()
            },
            symmetry: false,
        },
        Standard {
            name: "quick-partial-partition",
            purpose: "the partial partition of the 2020 Cloudflare outage (the link between two \
                      of three servers cut) with PreVote and CheckQuorum: no leader a follower \
                      acknowledged is ever deposed (Stable Leader Not Deposed); without \
                      symmetry, which the cut breaks",
            bound: partial_partition(),
            symmetry: false,
        },
        Standard {
            name: "quick-fast-backup",
            purpose: "fast log backup with terms <= 3",
            bound: ModelConfig {
                fast_backup: true,
                max_term: 3,
                reads: 1,
                ..base
            },
            symmetry: true,
        },
    ]
}
