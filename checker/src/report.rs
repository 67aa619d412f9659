//! The result of one check: the JSON schema scripts depend on, the verdict and exit code, and
//! the TLC-like text summary.

use crate::args::Strategy;
use raft_model::model::ModelConfig;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ConfigJson {
    pub servers: usize,
    pub max_term: u64,
    pub values: usize,
    pub reads: usize,
    pub max_crashes: usize,
    pub network: String,
    pub lossy: bool,
    pub max_in_flight: usize,
    pub max_entries_per_append: Option<usize>,
    /// The log bound when set explicitly (`ModelConfig::max_log_len`; absent: the default,
    /// one entry per client operation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_log_len: Option<usize>,
    pub fast_backup: bool,
    /// The leader's disk completes in a step of its own (`ModelConfig::write_behind`).
    pub write_behind: bool,
    /// Entries a pipelining leader may have unacknowledged per follower
    /// (`ModelConfig::pipeline`; absent: no pipelining).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<usize>,
    /// Clients' reads go through ReadIndex (`ModelConfig::read_index`; absent: through the
    /// log).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub read_index: bool,
    /// PreVote (`ModelConfig::pre_vote`; absent: off).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub pre_vote: bool,
    /// CheckQuorum and the lease on votes (`ModelConfig::check_quorum`; absent: off).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub check_quorum: bool,
    /// The partial partition (`ModelConfig::partial_partition`; absent: none).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub partial_partition: bool,
    /// Leadership transfers (`ModelConfig::max_transfers`; absent: none).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub max_transfers: usize,
    /// Membership changes (`ModelConfig::max_config_changes`; absent: none).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub max_config_changes: usize,
    /// Snapshots (`ModelConfig::max_snapshots`; absent: none).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub max_snapshots: usize,
    /// The initial voters (`ModelConfig::initial_voters`; absent: every server).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub initial_voters: Option<usize>,
    pub mutant: Option<String>,
    /// "Progress When Faults Stop" was checked too.
    pub liveness: bool,
}

impl From<&ModelConfig> for ConfigJson {
    fn from(c: &ModelConfig) -> Self {
        ConfigJson {
            servers: c.servers,
            max_term: c.max_term,
            values: c.values,
            reads: c.reads,
            max_crashes: c.max_crashes,
            network: c.network.name().to_string(),
            lossy: c.lossy,
            max_in_flight: c.max_in_flight,
            max_entries_per_append: c.max_entries_per_append,
            max_log_len: c.max_log_len,
            fast_backup: c.fast_backup,
            write_behind: c.write_behind,
            pipeline: c.pipeline.map(|w| w.entries),
            read_index: c.read_index,
            pre_vote: c.pre_vote,
            check_quorum: c.check_quorum,
            partial_partition: c.partial_partition,
            max_transfers: c.max_transfers,
            max_config_changes: c.max_config_changes,
            max_snapshots: c.max_snapshots,
            initial_voters: c.initial_voters,
            mutant: c.mutant.map(|m| m.name().to_string()),
            liveness: c.liveness,
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExpectationJson {
    Always,
    Sometimes,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Holds,
    Violated,
    Witnessed,
    NotWitnessed,
    /// A witness that this bound cannot reach by construction (e.g. no crashes allowed).
    NotApplicable,
    Unknown,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Holds => "holds",
            Status::Violated => "violated",
            Status::Witnessed => "witnessed",
            Status::NotWitnessed => "not-witnessed",
            Status::NotApplicable => "not-applicable",
            Status::Unknown => "unknown",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Counterexample {
    pub length: usize,
    pub actions: Vec<String>,
    /// True when a level-order search proved no shorter path to a violation exists.
    pub shortest: bool,
    /// For "Progress When Faults Stop": the fault-free continuation from the last state that
    /// fails to converge, step by step, then why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PropertyJson {
    pub name: String,
    pub expectation: ExpectationJson,
    pub status: Status,
    pub counterexample: Option<Counterexample>,
    /// Why a witness is not applicable to this bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CheckReport {
    pub config: ConfigJson,
    pub strategy: String,
    pub threads: usize,
    /// Symmetry reduction over server ids was on (distinct states then count renaming classes).
    pub symmetry: bool,
    pub complete: bool,
    pub unique_states: usize,
    pub total_states: usize,
    pub max_depth: usize,
    pub seconds: f64,
    /// Peak resident memory of the whole process (VmHWM), where the OS reports it.
    pub peak_memory_bytes: Option<u64>,
    pub properties: Vec<PropertyJson>,
    /// The user stopped the run (Ctrl-C): the report is what it had found by then.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub interrupted: bool,
    /// `--engine compact`: the checker's own engine ran the search (`dfs.rs`, `bfs.rs`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub engine: Option<EngineJson>,
    /// `check --shard I/N`: this report covers one part of the bound (`shard.rs`); its
    /// witnesses and the verdict are decided by `raft-check merge`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shard: Option<crate::shard::ShardJson>,
    /// `raft-check merge`: the parts this report combines.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub merged: Option<crate::shard::MergedJson>,
}

/// The checker's own engine, and what its reduction saved.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EngineJson {
    pub name: String,
    pub sleep_sets: bool,
    /// Steps first visits left asleep (not computed then).
    pub slept_steps: usize,
    /// Steps later visits of the same states computed after all (`dfs.rs`).
    pub woken_steps: usize,
    /// BFS: the most states one level held (`bfs.rs`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub widest_level: Option<usize>,
}

/// Exit codes of `raft-check check`.
pub const EXIT_OK: i32 = 0;
pub const EXIT_VIOLATION: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INCOMPLETE: i32 = 3;

impl CheckReport {
    pub fn new(cfg: &ModelConfig, strategy: Strategy, threads: usize, symmetry: bool) -> Self {
        CheckReport {
            config: cfg.into(),
            strategy: strategy.name().to_string(),
            threads,
            symmetry,
            complete: false,
            unique_states: 0,
            total_states: 0,
            max_depth: 0,
            seconds: 0.0,
            peak_memory_bytes: None,
            properties: Vec::new(),
            interrupted: false,
            engine: None,
            shard: None,
            merged: None,
        }
    }

    /// The properties that fail the check. In one part of a sharded check (`--shard`) only
    /// violations: a witness another part reaches is no failure, `merge` decides.
    pub fn failures(&self) -> impl Iterator<Item = &PropertyJson> {
        let part = self.shard.is_some();
        self.properties.iter().filter(move |p| match p.status {
            Status::Violated => true,
            Status::NotWitnessed => !part,
            _ => false,
        })
    }

    /// 0: complete and every property as expected; 1: a violation or a missing witness;
    /// 3: incomplete without a failure.
    pub fn exit_code(&self) -> i32 {
        if self.failures().next().is_some() {
            EXIT_VIOLATION
        } else if !self.complete {
            EXIT_INCOMPLETE
        } else {
            EXIT_OK
        }
    }

    /// The closing summary, in the spirit of TLC's.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let rate = if self.seconds > 0.0 {
            self.unique_states as f64 / self.seconds
        } else {
            0.0
        };
        let verdict = match (self.exit_code(), &self.shard) {
            (EXIT_OK, Some(part)) => format!(
                "Part {} of {} explored completely: no violation in it. Witnesses and the verdict \
                 come from `raft-check merge` of all {} parts.",
                part.index, part.count, part.count
            ),
            (EXIT_OK, None) => {
                "Model checking completed. No error has been found: verified within the bound."
                    .to_string()
            }
            (EXIT_VIOLATION, _) => {
                let names: Vec<_> = self.failures().map(|p| p.name.as_str()).collect();
                format!("Model checking found a problem: {}.", names.join(", "))
            }
            (_, None) if self.merged.is_some() => "Model checking INCOMPLETE: a part is missing \
                  or incomplete (timeout or state cap): nothing is verified."
                .to_string(),
            _ if self.interrupted => "Model checking INCOMPLETE (interrupted): nothing is \
                  verified; the figures below are how far the search got."
                .to_string(),
            _ => "Model checking INCOMPLETE (timeout or state cap): nothing is verified; \
                  raise --timeout / --max-states or shrink the bound."
                .to_string(),
        };
        let _ = writeln!(s, "{verdict}");
        let _ = writeln!(
            s,
            "  {} states generated, {} distinct states found{}, depth {}, {:.1} s ({:.0} distinct states/s, {} strategy, {} thread{}{})",
            self.total_states,
            self.unique_states,
            if self.symmetry { " (up to renaming of servers)" } else { "" },
            self.max_depth,
            self.seconds,
            rate,
            self.strategy,
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.peak_memory_bytes
                .map(|b| format!(", peak memory {:.0} MiB", b as f64 / (1 << 20) as f64))
                .unwrap_or_default()
        );
        if let Some(e) = &self.engine {
            let _ = write!(s, "  engine: {}", e.name);
            if e.sleep_sets {
                let _ = write!(
                    s,
                    ", sleep sets: {} steps asleep at first visits, {} taken on later visits",
                    e.slept_steps, e.woken_steps
                );
            }
            if let Some(w) = e.widest_level {
                let _ = write!(s, ", widest level {w} states");
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s, "  exploration complete: {}", self.complete);
        for p in &self.properties {
            let len = p
                .counterexample
                .as_ref()
                .map(|c| format!(" ({} steps)", c.length))
                .unwrap_or_default();
            let note = p
                .note
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            let _ = writeln!(s, "  {:<14} {}{}{}", p.status.name(), p.name, len, note);
        }
        s
    }
}
