//! How a search runs (`check`'s, and the gate's and the benchmark's runs): strategy, engine,
//! threads, symmetry and limits.

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
    /// The distributed BFS (--strategy bfs): every state owned by one worker, which alone
    /// decides whether it is new; --threads workers in this process, and with --processes
    /// that many processes (each started with its --process and the same --hostfile) on one
    /// or many machines, joined by timely dataflow. The same states and verdicts as the
    /// compact BFS; symmetry too.
    Timely,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Stateright => "stateright",
            Engine::Compact => "compact",
            Engine::Timely => "timely",
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
    /// per renaming of the servers; same verdicts, fewer states. `check`'s node bound turns it
    /// on wherever the bound allows it (`--symmetry false` turns it off).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set,
          default_value_t = false)]
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
    /// With --engine timely: the number of processes of the search (each runs --threads
    /// workers). Start every process with the same flags and its own --process.
    #[arg(long, default_value_t = 1)]
    pub processes: usize,
    /// With --engine timely and --processes N: this process's index, 0 to N-1.
    #[arg(long, default_value_t = 0)]
    pub process: usize,
    /// With --engine timely and --processes N: a file of N lines, each process's
    /// `host:port` in process order (default: 127.0.0.1, ports 2101 and up).
    #[arg(long)]
    pub hostfile: Option<std::path::PathBuf>,
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
        if self.symmetry && self.strategy == Strategy::Bfs && self.engine == Engine::Stateright {
            // stateright 0.31's BFS accepts a symmetry function and silently ignores it.
            return Err(
                "--symmetry needs --strategy dfs (the default) or sim, or --engine compact or \
                 timely: \
                 stateright 0.31's BFS ignores symmetry reduction"
                    .into(),
            );
        }
        if self.engine != Engine::Timely
            && (self.processes != 1 || self.process != 0 || self.hostfile.is_some())
        {
            return Err("--processes, --process and --hostfile need --engine timely".into());
        }
        if self.engine == Engine::Timely {
            if self.strategy != Strategy::Bfs {
                return Err(
                    "--engine timely is a breadth-first search: give --strategy bfs".into(),
                );
            }
            if self.sleep_sets {
                return Err("--sleep-sets is for --engine compact's depth-first search".into());
            }
            if self.processes == 0 {
                return Err("--processes must be at least 1".into());
            }
            if self.process >= self.processes {
                return Err(format!(
                    "--process {} is not one of the {} processes (0 to {})",
                    self.process,
                    self.processes,
                    self.processes - 1
                ));
            }
        } else if self.engine == Engine::Compact {
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

    /// With --engine timely and --processes above 1: every process's address, from
    /// --hostfile or the default ports.
    pub fn addresses(&self) -> Result<Option<Vec<String>>, String> {
        if self.engine != Engine::Timely || self.processes == 1 {
            return Ok(None);
        }
        let Some(path) = &self.hostfile else {
            return Ok(Some(
                (0..self.processes)
                    .map(|i| format!("127.0.0.1:{}", 2101 + i))
                    .collect(),
            ));
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --hostfile {}: {e}", path.display()))?;
        let hosts: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect();
        if hosts.len() != self.processes {
            return Err(format!(
                "--hostfile {} names {} processes, --processes says {}",
                path.display(),
                hosts.len(),
                self.processes
            ));
        }
        if let Some(bad) = hosts.iter().find(|h| {
            h.rsplit_once(':')
                .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        }) {
            return Err(format!(
                "--hostfile {}: \"{bad}\" is not host:port",
                path.display()
            ));
        }
        Ok(Some(hosts))
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
