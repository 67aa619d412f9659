//! Command-line flags shared by the subcommands.

use clap::{Args, ValueEnum};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Breadth-first: exhaustive; counterexamples found in level order.
    Bfs,
    /// Depth-first: exhaustive; less memory.
    Dfs,
    /// Random simulation: never exhaustive (always reported incomplete).
    Sim,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Bfs => "bfs",
            Strategy::Dfs => "dfs",
            Strategy::Sim => "sim",
        }
    }
}

/// Which engine runs a depth-first search.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// stateright's DFS: all --threads.
    Stateright,
    /// The checker's own DFS (one thread) or BFS (all --threads): a compact visited set, BFS a
    /// compact frontier and symmetry; the same states and verdicts; DFS with --sleep-sets,
    /// partial-order reduction.
    Compact,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Stateright => "stateright",
            Engine::Compact => "compact",
        }
    }
}

/// How to run the checker.
#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    /// Search strategy.
    #[arg(long, value_enum, default_value_t = Strategy::Dfs)]
    pub strategy: Strategy,
    /// Engine for --strategy dfs or bfs.
    #[arg(long, value_enum, default_value_t = Engine::Stateright)]
    pub engine: Engine,
    /// With --engine compact: sleep sets (partial-order reduction) on the non-duplicating
    /// network: steps that commute with one already explored are skipped; every state is
    /// still visited (the same count and verdicts), fewer steps are computed.
    #[arg(long)]
    pub sleep_sets: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Symmetry reduction over server ids (DFS, sim, and BFS on --engine compact): one state
    /// per renaming of the servers; same verdicts, fewer states.
    #[arg(long)]
    pub symmetry: bool,
    /// Stop after this many seconds (the run is then incomplete: exit 3).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Stop after generating this many states (the run is then incomplete: exit 3).
    #[arg(long)]
    pub max_states: Option<usize>,
    /// Seed for --strategy sim.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Seconds a violated property's counterexample may spend being shortened (a level-order
    /// search); past it the discovered path is printed as found.
    #[arg(long, default_value_t = 120.0)]
    pub shorten_budget: f64,
    /// Seconds between progress lines on stderr (0: none).
    #[arg(long, default_value_t = 5.0)]
    pub progress: f64,
}

impl RunArgs {
    pub fn validate(&self) -> Result<(), String> {
        if self.threads == Some(0) {
            return Err("--threads must be at least 1".into());
        }
        if let Some(t) = self.timeout {
            if !(t.is_finite() && t > 0.0) {
                return Err("--timeout must be a positive number of seconds".into());
            }
        }
        if self.max_states == Some(0) {
            return Err("--max-states must be at least 1".into());
        }
        if self.symmetry && self.strategy == Strategy::Bfs && self.engine != Engine::Compact {
            // stateright 0.31's BFS accepts a symmetry function and silently ignores it.
            return Err(
                "--symmetry needs --strategy dfs (the default) or sim, or --engine compact: \
                 stateright 0.31's BFS ignores symmetry reduction"
                    .into(),
            );
        }
        if self.engine == Engine::Compact {
            if self.strategy == Strategy::Sim {
                return Err(
                    "--engine compact is a depth-first or breadth-first search: use --strategy \
                     dfs or bfs"
                        .into(),
                );
            }
            if self.sleep_sets && self.strategy != Strategy::Dfs {
                return Err(
                    "--sleep-sets is for the depth-first search: use --strategy dfs".into(),
                );
            }
            if self.strategy == Strategy::Dfs && self.threads.is_some_and(|t| t > 1) {
                return Err(
                    "--engine compact's DFS runs on one thread: leave out --threads, give \
                     1, or use --strategy bfs"
                        .into(),
                );
            }
        } else if self.sleep_sets {
            return Err("--sleep-sets needs --engine compact".into());
        }
        if self.strategy == Strategy::Sim && self.timeout.is_none() && self.max_states.is_none() {
            return Err(
                "--strategy sim never finishes on its own: give --timeout or --max-states".into(),
            );
        }
        if !(self.shorten_budget.is_finite() && self.shorten_budget >= 0.0) {
            return Err("--shorten-budget must be a non-negative number of seconds".into());
        }
        if !(self.progress.is_finite() && self.progress >= 0.0) {
            return Err("--progress must be a non-negative number of seconds".into());
        }
        Ok(())
    }

    pub fn thread_count(&self) -> usize {
        if self.engine == Engine::Compact && self.strategy == Strategy::Dfs {
            return 1;
        }
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
    }
}

/// How a counterexample is exported.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    /// The numbered text trace that `check` prints.
    Text,
    /// Every state as JSON: servers (Figure 2's variables), messages in flight, clients.
    Json,
    /// The Informal Trace Format of Apalache and Quint.
    Itf,
}

impl TraceFormat {
    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::Text => "text",
            TraceFormat::Json => "json",
            TraceFormat::Itf => "itf",
        }
    }
}

/// Refuses an output file that cannot be written (a directory, a missing folder, no
/// permission) before a long run, so that its verdict is not lost at the end. Leaves no file
/// behind that was not there.
pub fn writable(flag: &str, path: &std::path::Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!("{flag} {}: is a directory", path.display()));
    }
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| format!("cannot write {flag} {}: {e}", path.display()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Where and how `check` writes the counterexample of the first violated property.
#[derive(Args, Clone, Debug)]
pub struct TraceArgs {
    /// Format of the trace written to --trace-out.
    #[arg(long, value_enum, default_value_t = TraceFormat::Text)]
    pub trace_format: TraceFormat,
    /// Write the counterexample of the first violated property to this file (nothing is
    /// written when no property is violated).
    #[arg(long)]
    pub trace_out: Option<std::path::PathBuf>,
}

impl TraceArgs {
    /// Refuse a JSON or ITF format with nowhere to write it, and an unwritable file, before a
    /// long check.
    pub fn validate(&self) -> Result<(), String> {
        let Some(path) = &self.trace_out else {
            if self.trace_format != TraceFormat::Text {
                return Err("--trace-format json|itf needs --trace-out FILE".into());
            }
            return Ok(());
        };
        writable("--trace-out", path)
    }
}

/// Checking one bound in parts, on many machines (`shard.rs`).
#[derive(Args, Clone, Debug)]
pub struct ShardArgs {
    /// Explore part I of N of the bound (I/N, 0 <= I < N): every part explores the same
    /// breadth-first prefix, then exhaustively the frontier states whose fingerprint is I
    /// modulo N. Combine the parts' --json reports with `raft-check merge`.
    #[arg(long)]
    pub shard: Option<String>,
    /// With --shard: the depth of the prefix's frontier (default: the first level with at
    /// least 64 states per part).
    #[arg(long, requires = "shard")]
    pub shard_depth: Option<usize>,
    /// Write the fingerprint of every state the check reached (the prefix's too) to FILE,
    /// one hex number a line, sorted (for the tests).
    #[arg(long, hide = true)]
    pub dump_fingerprints: Option<std::path::PathBuf>,
}

impl ShardArgs {
    /// The part (I, N) to check, if any, or a message for exit code 2.
    pub fn validate(&self, run: &RunArgs) -> Result<Option<(usize, usize)>, String> {
        let Some(s) = &self.shard else {
            return Ok(None);
        };
        let part = crate::mutants::parse_shard(s)?;
        if run.strategy == Strategy::Sim {
            return Err("--shard needs an exhaustive strategy (dfs or bfs), not sim".into());
        }
        if let Some(p) = &self.dump_fingerprints {
            writable("--dump-fingerprints", p)?;
        }
        Ok(Some(part))
    }
}
