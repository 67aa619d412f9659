//! The result of one check: the JSON schema scripts depend on, the verdict and exit code, and
//! the TLC-like text summary.

use crate::engine::options::Strategy;
use raft_model::model::ModelConfig;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

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
    pub config: ModelConfig,
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
    /// `--engine compact`: the checker's own engine ran the search (`engine/dfs.rs`, `engine/bfs.rs`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub engine: Option<EngineJson>,
}

/// The checker's own engine, and what its reduction saved.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EngineJson {
    pub name: String,
    pub sleep_sets: bool,
    /// Steps first visits left asleep (not computed then).
    pub slept_steps: usize,
    /// Steps later visits of the same states computed after all (`engine/dfs.rs`).
    pub woken_steps: usize,
    /// BFS: the most states one level held (`engine/bfs.rs`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub widest_level: Option<usize>,
    /// The distributed engine (`engine/owned.rs`): what each worker owned, sent and waited.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub workers: Option<Vec<WorkerStats>>,
}

/// What one worker of the distributed engine (`engine/owned.rs`) did, as the report lists it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkerStats {
    pub worker: usize,
    /// Distinct states this worker owns.
    pub distinct: usize,
    /// Successors it sent to other workers (states owned elsewhere).
    pub sent: u64,
    /// Of those, bytes sent to workers of other processes (serialized states).
    pub bytes_sent: u64,
    /// Seconds it waited for the other workers (a level's deliveries and agreements).
    pub waiting_seconds: f64,
    /// Bytes of its visited table.
    pub table_bytes: usize,
}

/// Exit codes of `raft-check check`.
pub const EXIT_OK: i32 = 0;
pub const EXIT_VIOLATION: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INCOMPLETE: i32 = 3;

impl CheckReport {
    pub fn new(cfg: &ModelConfig, strategy: Strategy, threads: usize, symmetry: bool) -> Self {
        CheckReport {
            config: cfg.clone(),
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
        }
    }

    /// The properties that fail the check: violations and witnesses never reached.
    pub fn failures(&self) -> impl Iterator<Item = &PropertyJson> {
        self.properties
            .iter()
            .filter(|p| matches!(p.status, Status::Violated | Status::NotWitnessed))
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
        let verdict = match self.exit_code() {
            EXIT_OK => {
                "Model checking completed. No error has been found: verified within the bound."
                    .to_string()
            }
            EXIT_VIOLATION => {
                let names: Vec<_> = self.failures().map(|p| p.name.as_str()).collect();
                format!("Model checking found a problem: {}.", names.join(", "))
            }
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

#[cfg(test)]
mod tests {
    use raft_model::model::ModelConfig;
    use serde_json::Value;

    /// Every `config` object (one with `servers`) anywhere in `v`.
    fn configs<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(m) => {
                if let Some(c) = m.get("config").filter(|c| c.get("servers").is_some()) {
                    out.push(c);
                }
                m.values().for_each(|x| configs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| configs(x, out)),
            _ => {}
        }
    }

    /// The committed reports' `config` objects are `ModelConfig`'s JSON exactly: each
    /// deserializes and serializes back to the same value.
    #[test]
    fn committed_configs_round_trip() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
        let mut seen = 0;
        for e in std::fs::read_dir(&dir).expect("results/") {
            let path = e.expect("entry").path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable");
            let v: Value = serde_json::from_str(&text).expect("JSON");
            let mut found = Vec::new();
            configs(&v, &mut found);
            for c in found {
                let cfg: ModelConfig = serde_json::from_value(c.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}: {c}", path.display()));
                let back = serde_json::to_value(&cfg).expect("serializes");
                assert_eq!(&back, c, "{}", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 60, "only {seen} configs in results/");
    }

    /// A mistyped key fails loudly instead of falling back to a default.
    #[test]
    fn unknown_config_key_is_refused() {
        let mut v = serde_json::to_value(ModelConfig::default()).expect("serializes");
        v["pre_votes"] = Value::Bool(true);
        let e = serde_json::from_value::<ModelConfig>(v).expect_err("unknown key");
        assert!(e.to_string().contains("pre_votes"), "{e}");
    }

    /// A new report's config: the standard bound's keys, the off flags left out.
    #[test]
    fn default_config_shape() {
        let v = serde_json::to_value(ModelConfig::default()).expect("serializes");
        let keys: Vec<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut want = vec![
            "servers",
            "max_term",
            "values",
            "reads",
            "max_crashes",
            "network",
            "lossy",
            "max_in_flight",
            "max_entries_per_append",
            "fast_backup",
            "write_behind",
            "mutant",
            "liveness",
        ];
        let mut keys = keys;
        keys.sort_unstable();
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(v["network"], "unordered-nonduplicating");
        assert_eq!(v["mutant"], Value::Null);
    }
}
