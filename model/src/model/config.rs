//! The model's bounds. Every dimension that could grow without limit is bounded here
//! explicitly; exploration within these bounds is exhaustive (no depth cap).

use crate::mutant::Mutant;
use raft_core::{Term, Window};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How the network may deliver messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NetworkKind {
    /// Any message may be delivered any number of times, in any order.
    UnorderedDuplicating,
    /// Any message may be delivered at most once, in any order.
    UnorderedNonDuplicating,
    /// Per-link FIFO, each message delivered at most once.
    Ordered,
}

impl NetworkKind {
    pub const NAMES: [&'static str; 3] = [
        "unordered-duplicating",
        "unordered-nonduplicating",
        "ordered",
    ];
    pub fn name(self) -> &'static str {
        match self {
            NetworkKind::UnorderedDuplicating => Self::NAMES[0],
            NetworkKind::UnorderedNonDuplicating => Self::NAMES[1],
            NetworkKind::Ordered => Self::NAMES[2],
        }
    }
}

impl fmt::Display for NetworkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NetworkKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "unordered-duplicating" => Ok(NetworkKind::UnorderedDuplicating),
            "unordered-nonduplicating" => Ok(NetworkKind::UnorderedNonDuplicating),
            "ordered" => Ok(NetworkKind::Ordered),
            _ => Err(format!(
                "unknown network '{s}'; expected one of: {}",
                Self::NAMES.join(", ")
            )),
        }
    }
}

/// Bounds and faults of one model-checking run.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Number of Raft servers.
    pub servers: usize,
    /// No server's current_term exceeds this (states beyond it are not explored).
    pub max_term: Term,
    /// Number of clients; client `c` writes the distinct value `c + 1` once.
    pub values: usize,
    /// Reads each client performs after its write (each read goes through the log).
    pub reads: usize,
    /// Servers that may be down at the same time (crash loses volatile state; restart recovers
    /// from what was saved).
    pub max_crashes: usize,
    pub network: NetworkKind,
    /// Messages may be lost.
    pub lossy: bool,
    /// At most this many messages in the network at once (distinct ones for the duplicating
    /// network, where a delivered message stays deliverable).
    pub max_in_flight: usize,
    /// No server's log grows beyond this many entries (states beyond it are not explored).
    /// Servers propose every client request they receive, a retried one again (deduplicated
    /// when applied), as the node does; this bounds the retries. `None`: as many entries as the
    /// clients have operations, plus one per membership change (`values * (1 + reads) +
    /// max_config_changes`): a retried copy takes the room of a
    /// later operation, which is enough to reach the deduplication path (the witness "Retried
    /// Command Deduplicated") while the default bound stays small.
    pub max_log_len: Option<usize>,
    /// Most entries per AppendEntries (`None`: the whole suffix from next_index).
    pub max_entries_per_append: Option<usize>,
    /// Rejecting followers hint the start of the conflicting term (`Config::fast_backup`), as
    /// the runnable node does.
    pub fast_backup: bool,
    /// A leader's disk completes its own new entries in a step of its own (`Timer::Persist`),
    /// interleaved with everything else, as the node writes them behind (on by default).
    /// `false`: in the very step that appended them, as if the leader's proposal were durable
    /// at once; a subset of the node's behaviours, for bounds whose point lies elsewhere (the
    /// gate's no-crash configurations with larger bounds).
    #[serde(default = "write_behind_default")]
    pub write_behind: bool,
    /// Leaders pipeline AppendEntries within this window (`Config::pipeline`): next_index moves
    /// past what they send, so several AppendEntries travel to one follower at once. `None`
    /// (the default): next_index moves only on acknowledgements.
    #[serde(default)]
    pub pipeline: Option<Window>,
    /// Clients' reads go through ReadIndex (thesis §6.4, raft-core's `read`), as the node's
    /// do: a leader answers them from its register once a majority confirmed its leadership,
    /// without a log entry (until it has committed an entry of its term, it proposes the read
    /// instead). `false` (the default): every read is proposed to the log. With it, no
    /// leader's read round exceeds `values * reads` (the read operations of the bound; a
    /// retried read starts a round of its own), which bounds the retries.
    #[serde(default)]
    pub read_index: bool,
    /// Servers run PreVote (thesis §9.6, `Config::pre_vote`), as the node does: an election
    /// timeout starts a pre-vote round at the current term, and only a majority of grants
    /// starts the election. Off by default.
    #[serde(default)]
    pub pre_vote: bool,
    /// Servers run CheckQuorum and the lease on votes (thesis §9.6, `Config::check_quorum`),
    /// as the node does: a leader's election timer stays armed, and when it fires the leader
    /// steps down unless a majority answered it since the last time; a server that knows a
    /// leader of its term ignores requests for votes. Off by default.
    #[serde(default)]
    pub check_quorum: bool,
    /// The partial partition of the 2020 Cloudflare outage, on 3 servers with no crashes: the
    /// link between the first and the last server is cut both ways (what one sends the other
    /// is lost at once), and a follower keeps hearing from a leader it follows (its election
    /// timer does not fire while it knows a leader: the timing assumption of a stable
    /// leader). Adds the Always property "Stable Leader Not Deposed": no leader that every
    /// peer it reaches acknowledged in its term ever meets a higher term while it leads. It
    /// holds with `--check-quorum` (the lease on votes), and fails without it.
    #[serde(default)]
    pub partial_partition: bool,
    /// Leadership transfers an operator may ask for, in all (thesis §3.10): a leader may be
    /// asked, at any moment, to hand its leadership to any peer (`Event::TransferLeadership`);
    /// each request a leader takes up counts. 0 (the default): none. Adds the Always property
    /// "Transfer Target Up To Date".
    #[serde(default)]
    pub max_transfers: usize,
    /// Membership changes an operator may ask for, in all (thesis ch. 4, single-server
    /// changes with learners): a leader may be asked, at any moment, to add any server as a
    /// learner, promote a learner, or remove a member; each configuration entry a leader
    /// appends counts. 0 (the default): none. Adds the Always property "Quorums Overlap".
    #[serde(default)]
    pub max_config_changes: usize,
    /// Snapshots the servers may take, in all (§7, log compaction): any server may, at any
    /// moment, compact its log up to what it has applied (`Timer::Compact`; taking the
    /// snapshot at a smaller applied index is the same as taking it earlier, when that was
    /// the applied index), and a leader sends its snapshot (InstallSnapshot) to a follower
    /// that needs compacted entries. 0 (the default): none. Adds the Always property
    /// "Snapshot Holds Only Committed State".
    #[serde(default)]
    pub max_snapshots: usize,
    /// The initial configuration's voters: servers `0..initial_voters`; the others start
    /// outside the cluster, and only a membership change brings them in. `None` (the
    /// default): every server.
    #[serde(default)]
    pub initial_voters: Option<usize>,
    /// A deliberately broken rule (the mutant catalogue); `None` is the correct protocol.
    pub mutant: Option<Mutant>,
    /// Also check the liveness property "Progress When Faults Stop" (`progress.rs`) in every
    /// state: a bounded fault-free continuation of a few core steps per state (on by default:
    /// about a fifth more time on the default bound).
    pub liveness: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            servers: 3,
            max_term: 2,
            values: 1,
            reads: 1,
            max_crashes: 1,
            network: NetworkKind::UnorderedNonDuplicating,
            lossy: true,
            max_in_flight: 1,
            max_log_len: None,
            max_entries_per_append: None,
            fast_backup: false,
            write_behind: true,
            pipeline: None,
            read_index: false,
            pre_vote: false,
            check_quorum: false,
            partial_partition: false,
            max_transfers: 0,
            max_config_changes: 0,
            max_snapshots: 0,
            initial_voters: None,
            mutant: None,
            liveness: true,
        }
    }
}

fn write_behind_default() -> bool {
    true
}

impl ModelConfig {
    /// Reject bounds that make no sense or could not be represented.
    pub fn validate(&self) -> Result<(), String> {
        if self.servers == 0 {
            return Err("--servers must be at least 1".into());
        }
        if self.servers > 9 {
            return Err(
                "--servers must be at most 9 (the state space explodes long before)".into(),
            );
        }
        if self.max_term == 0 {
            return Err("--max-term must be at least 1 (no leader exists in term 0)".into());
        }
        if self.max_term > 100 {
            return Err("--max-term must be at most 100".into());
        }
        if self.values > 9 {
            return Err("--values must be at most 9".into());
        }
        if self.reads > 9 {
            return Err("--reads must be at most 9".into());
        }
        if self.max_crashes > self.servers {
            return Err(format!(
                "--max-crashes {} exceeds --servers {}",
                self.max_crashes, self.servers
            ));
        }
        if self.max_entries_per_append == Some(0) {
            return Err("--max-entries-per-append must be at least 1".into());
        }
        if self.max_log_len == Some(0) {
            return Err("--max-log-len must be at least 1".into());
        }
        if self.pipeline.is_some_and(|w| w.entries == 0) {
            return Err("--pipeline must be at least 1 (entries in flight per follower)".into());
        }
        if self.max_in_flight == 0 {
            return Err("--max-in-flight must be at least 1".into());
        }
        if self.partial_partition && self.max_transfers > 0 {
            return Err(
                "--partial-partition excludes --max-transfers (a transfer deposes a stable \
                 leader on purpose)"
                    .into(),
            );
        }
        if let Some(v) = self.initial_voters {
            if v == 0 || v > self.servers {
                return Err(format!(
                    "--initial-voters must be between 1 and --servers ({})",
                    self.servers
                ));
            }
            if v < self.servers && self.max_config_changes == 0 {
                return Err(
                    "--initial-voters below --servers leaves servers outside the cluster for                      good: add --max-config-changes"
                        .into(),
                );
            }
        }
        if self.max_snapshots > 9 {
            return Err("--max-snapshots must be at most 9".into());
        }
        if self.max_config_changes > 0 && self.partial_partition {
            return Err("--partial-partition excludes --max-config-changes".into());
        }
        if self.partial_partition && (self.servers != 3 || self.max_crashes != 0) {
            return Err(
                "--partial-partition needs --servers 3 --max-crashes 0 (it cuts the link \
                 between the first and the last server, and its stable leader must not crash)"
                    .into(),
            );
        }
        Ok(())
    }

    /// Witnesses that cannot be reached by construction of this bound (so their absence says
    /// nothing), with the reason. Every other witness must be reached.
    pub fn inapplicable_witnesses(&self) -> Vec<(&'static str, &'static str)> {
        let mut v = Vec::new();
        if self.max_crashes == 0 {
            v.push(("Committed Then Crashed And Recovered", "--max-crashes 0"));
        }
        if self.values == 0 {
            v.push(("Value Committed", "--values 0"));
            v.push(("Log Conflict Truncated", "--values 0"));
            v.push(("Leader Knows A Match", "--values 0"));
        } else if self.servers == 1 {
            v.push(("Leader Knows A Match", "a single server has no peers"));
        }
        if self.values == 0 || self.effective_max_log_len() < 2 {
            v.push((
                "Retried Command Deduplicated",
                "no room in the log for a retried copy",
            ));
        }
        if self.values == 0 || self.reads == 0 {
            v.push(("Read Returned A Value", "no reads in this bound"));
        }
        if self.max_term < 2 {
            v.push(("Stale Message In Flight", "--max-term 1: no later term"));
        }
        if self.values == 0 {
            v.push(("Committed Before The Leader's Disk", "--values 0"));
        } else if !self.write_behind {
            v.push((
                "Committed Before The Leader's Disk",
                "--write-behind false: the leader's disk completes with its proposal",
            ));
        } else if self.servers < 3 {
            v.push((
                "Committed Before The Leader's Disk",
                "fewer than 3 servers: every majority includes the leader's own copy",
            ));
        } else if self.max_voters() < 3 {
            v.push((
                "Committed Before The Leader's Disk",
                "fewer than 3 voters: every majority includes the leader's own copy",
            ));
        }
        if !self.pre_vote {
            v.push(("Election After A Pre-Vote", "no --pre-vote"));
        }
        if !self.check_quorum {
            v.push(("Leader Stepped Down Without A Quorum", "no --check-quorum"));
            v.push(("Vote Ignored In A Lease", "no --check-quorum"));
        } else if self.servers < 2 {
            v.push((
                "Leader Stepped Down Without A Quorum",
                "a single server is its own majority",
            ));
            v.push(("Vote Ignored In A Lease", "a single server asks no one"));
        }
        if self.max_transfers == 0 {
            v.push(("Leadership Transferred", "no --max-transfers"));
        } else if self.servers < 2 {
            v.push((
                "Leadership Transferred",
                "a single server has no one to hand over to",
            ));
        }
        if self.max_config_changes == 0 {
            v.push(("Configuration Change Committed", "no --max-config-changes"));
            v.push(("Removed Leader Stepped Down", "no --max-config-changes"));
        } else if self.values == 0 {
            // A change waits for an entry of the leader's term, and only clients write one.
            v.push(("Configuration Change Committed", "--values 0"));
            v.push(("Removed Leader Stepped Down", "--values 0"));
        } else if self.initial_voters.unwrap_or(self.servers) < 2 && self.max_config_changes < 3 {
            v.push((
                "Removed Leader Stepped Down",
                "a single voter cannot remove itself, and the bound's changes cannot add a \
                 second voter and then remove the leader",
            ));
        }
        if self.max_snapshots == 0 {
            v.push(("Snapshot Installed On A Follower", "no --max-snapshots"));
            v.push(("Restarted From A Snapshot", "no --max-snapshots"));
        } else {
            if self.values == 0 || self.servers < 2 {
                v.push((
                    "Snapshot Installed On A Follower",
                    "no entry to compact, or no follower",
                ));
            }
            if self.values == 0 || self.max_crashes == 0 {
                v.push((
                    "Restarted From A Snapshot",
                    "no entry to compact, or no crash",
                ));
            }
        }
        if !self.read_index {
            v.push(("Read Served Without The Log", "no --read-index"));
        } else if self.values == 0 || self.reads == 0 {
            v.push(("Read Served Without The Log", "no reads in this bound"));
        }
        match self.pipeline {
            None => v.push(("Pipelined Appends In Flight", "no --pipeline")),
            Some(w) if w.entries < 2 => v.push((
                "Pipelined Appends In Flight",
                "--pipeline 1: one entry in flight per follower",
            )),
            Some(_) if self.max_in_flight < 2 => v.push((
                "Pipelined Appends In Flight",
                "--max-in-flight 1: one message in the network",
            )),
            Some(_) if self.values == 0 || self.effective_max_log_len() < 2 => v.push((
                "Pipelined Appends In Flight",
                "fewer than two entries in the log",
            )),
            Some(_) => {}
        }
        if self.values == 0
            || self.reads == 0
            || self.effective_max_log_len() < 3
            || self.max_in_flight < 2
        {
            // The late copy is a retry sent before the first reply came and delivered after the
            // client's next request was appended: it is in flight alongside that traffic, and
            // it needs the room of a third entry.
            v.push((
                "Stale Copy Ignored",
                "no late copy: needs a client with two operations, a log of 3 and 2 messages in flight",
            ));
        }
        if self.servers >= 3
            && self.max_voters() < 3
            && !v.iter().any(|(n, _)| *n == "Log Conflict Truncated")
        {
            v.push((
                "Log Conflict Truncated",
                "fewer than 3 voters (a leader's log is never behind another voter's)",
            ));
        }
        if self.servers < 3 && !v.iter().any(|(n, _)| *n == "Log Conflict Truncated") {
            // Every leader needs every vote, so its log is at least as up-to-date as each
            // other server's (§5.4.1), and no follower ever holds an entry the leader lacks.
            v.push((
                "Log Conflict Truncated",
                "fewer than 3 servers (a leader's log is never behind another's)",
            ));
        }
        if self.max_term < 2 {
            v.push(("Leaders In Two Terms", "--max-term 1"));
            if !v.iter().any(|(n, _)| *n == "Log Conflict Truncated") {
                v.push(("Log Conflict Truncated", "--max-term 1"));
            }
        }
        v
    }

    /// The log bound in force (see [`ModelConfig::max_log_len`]).
    pub fn effective_max_log_len(&self) -> usize {
        self.max_log_len.unwrap_or_else(|| {
            (self.values * (1 + self.reads)).saturating_add(self.max_config_changes)
        })
    }

    /// The bound on each leader's read round (see [`ModelConfig::read_index`]).
    pub fn max_read_rounds(&self) -> u64 {
        (self.values * self.reads) as u64
    }

    /// With `partial_partition`: whether messages from server `from` to server `to` are lost
    /// at once (the link between the first and the last server is cut).
    pub fn link_cut(&self, from: usize, to: usize) -> bool {
        let last = self.servers.saturating_sub(1);
        self.partial_partition
            && from != to
            && (from == 0 || from == last)
            && (to == 0 || to == last)
    }

    /// The most voters a configuration of this bound can have: the initial ones, plus one per
    /// two changes (a server is added as a learner, then promoted).
    pub fn max_voters(&self) -> usize {
        let initial = self.initial_voters.unwrap_or(self.servers);
        (initial + self.max_config_changes / 2).min(self.servers)
    }

    /// The configuration every server starts with (see [`ModelConfig::initial_voters`]).
    pub fn initial_membership(&self) -> raft_core::Membership {
        let voters = self.initial_voters.unwrap_or(self.servers);
        raft_core::Membership::voters((0..voters as u64).map(raft_core::NodeId))
    }

    /// Number of actors that are servers; the rest are clients.
    pub fn is_server(&self, actor_index: usize) -> bool {
        actor_index < self.servers
    }
}
