//! Command-line flags shared by the subcommands.

use clap::{Args, ValueEnum};
use raft_model::model::{ModelConfig, NetworkKind};
use raft_model::Mutant;

/// The model's bounds and faults. Defaults are the standard exhaustive bound.
#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// Number of Raft servers.
    #[arg(long, default_value_t = ModelConfig::default().servers)]
    pub servers: usize,
    /// Highest term any server may reach (bounds the number of elections).
    #[arg(long, default_value_t = ModelConfig::default().max_term)]
    pub max_term: u64,
    /// Number of clients; each writes its own value once.
    #[arg(long, default_value_t = ModelConfig::default().values)]
    pub values: usize,
    /// Reads each client performs after its write (through the log).
    #[arg(long, default_value_t = ModelConfig::default().reads)]
    pub reads: usize,
    /// Servers that may be crashed at the same time (each may restart any number of times).
    #[arg(long, default_value_t = ModelConfig::default().max_crashes)]
    pub max_crashes: usize,
    /// Message delivery semantics.
    #[arg(long, default_value_t = ModelConfig::default().network.name().to_string(),
          value_parser = clap::builder::PossibleValuesParser::new(NetworkKind::NAMES))]
    pub network: String,
    /// Messages may be lost (default: on).
    #[arg(long, default_value_t = ModelConfig::default().lossy, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub lossy: bool,
    /// Most messages in the network at once.
    #[arg(long, default_value_t = ModelConfig::default().max_in_flight)]
    pub max_in_flight: usize,
    /// Longest log any server may reach (default: as many entries as the clients have
    /// operations; servers propose every request they get, retries too, as the node does, and
    /// deduplicate when applying).
    #[arg(long)]
    pub max_log_len: Option<usize>,
    /// Most entries per AppendEntries (default: the whole suffix).
    #[arg(long)]
    pub max_entries_per_append: Option<usize>,
    /// Rejecting followers hint the start of the conflicting term (the runnable node's
    /// setting; `Config::fast_backup` in the core).
    #[arg(long)]
    pub fast_backup: bool,
    /// A leader's disk completes its own new entries in a step of its own, interleaved with
    /// everything else, as the node writes them behind (default: on); `--write-behind false`
    /// makes them durable in the step that appended them (a subset of the node's behaviours).
    #[arg(long, default_value_t = ModelConfig::default().write_behind, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub write_behind: bool,
    /// Leaders pipeline AppendEntries: at most N entries sent and not acknowledged per
    /// follower, next_index moving past what was sent (`Config::pipeline`; default: no
    /// pipelining, next_index moves only on acknowledgements). Use with --max-in-flight 2 or
    /// more and --max-entries-per-append 1 to have two AppendEntries in flight to a follower.
    #[arg(long)]
    pub pipeline: Option<usize>,
    /// Clients' reads go through ReadIndex, as the node's do (thesis §6.4): a leader answers
    /// a read from its register once a majority confirmed its leadership, without a log entry
    /// (default: every read is proposed to the log). Each leader's read rounds are bounded by
    /// the bound's reads (--values × --reads).
    #[arg(long)]
    pub read_index: bool,
    /// Servers run PreVote, as the node does (thesis §9.6): an election timeout starts a
    /// pre-vote round that changes no term; only a majority of grants starts the election.
    #[arg(long)]
    pub pre_vote: bool,
    /// Servers run CheckQuorum and the lease on votes, as the node does (thesis §9.6): a
    /// leader whose election timer fires steps down unless a majority answered it since the
    /// last time; a server that knows a leader of its term ignores requests for votes.
    #[arg(long)]
    pub check_quorum: bool,
    /// The partial partition of the 2020 Cloudflare outage (3 servers, no crashes): the link
    /// between the first and the last server is cut, and the middle one keeps hearing from a
    /// leader it follows. Adds the property "Stable Leader Not Deposed", which holds with
    /// --pre-vote --check-quorum. Not with --symmetry (the cut breaks it).
    #[arg(long)]
    pub partial_partition: bool,
    /// Leadership transfers an operator may ask for, in all (thesis §3.10): any leader may be
    /// asked at any moment to hand over to any peer. Adds the property "Transfer Target Up To
    /// Date" (default: 0, none).
    #[arg(long, default_value_t = ModelConfig::default().max_transfers)]
    pub max_transfers: usize,
    /// Membership changes an operator may ask for, in all (thesis ch. 4: single-server
    /// changes with learners): any leader may be asked at any moment to add a server as a
    /// learner, promote a learner, or remove a member. Adds the property "Quorums Overlap"
    /// (default: 0, none). Not with --symmetry (the configuration tells servers apart).
    #[arg(long, default_value_t = ModelConfig::default().max_config_changes)]
    pub max_config_changes: usize,
    /// Snapshots the servers may take, in all (§7, log compaction): any server may compact
    /// its log up to what it has applied at any moment, and a leader sends its snapshot to a
    /// follower that needs compacted entries (InstallSnapshot). Adds the property "Snapshot
    /// Holds Only Committed State" (default: 0, none; at most 9).
    #[arg(long, default_value_t = ModelConfig::default().max_snapshots)]
    pub max_snapshots: usize,
    /// The initial configuration's voters: the first N servers; the others start outside
    /// the cluster and join only through membership changes (default: every server).
    #[arg(long)]
    pub initial_voters: Option<usize>,
    /// Break one protocol rule on purpose (see `raft-check mutants --list`).
    #[arg(long, value_parser = parse_mutant)]
    pub mutant: Option<Mutant>,
    /// Check liveness too (default: on): from every reachable state, once faults stop, a
    /// fault-free continuation elects a leader and brings every server's log and commit index
    /// to the leader's ("Progress When Faults Stop"; `--liveness false` leaves it out).
    #[arg(long, default_value_t = ModelConfig::default().liveness, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub liveness: bool,
}

fn parse_mutant(s: &str) -> Result<Mutant, String> {
    s.parse()
}

impl ModelArgs {
    /// The validated model configuration, or a message for exit code 2.
    pub fn to_config(&self) -> Result<ModelConfig, String> {
        let cfg = ModelConfig {
            servers: self.servers,
            max_term: self.max_term,
            values: self.values,
            reads: self.reads,
            max_crashes: self.max_crashes,
            network: self.network.parse()?,
            lossy: self.lossy,
            max_in_flight: self.max_in_flight,
            max_log_len: self.max_log_len,
            max_entries_per_append: self.max_entries_per_append,
            fast_backup: self.fast_backup,
            write_behind: self.write_behind,
            pipeline: self.pipeline.map(|entries| raft_core::Window {
                entries,
                bytes: usize::MAX,
            }),
            read_index: self.read_index,
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            partial_partition: self.partial_partition,
            max_transfers: self.max_transfers,
            max_config_changes: self.max_config_changes,
            max_snapshots: self.max_snapshots,
            initial_voters: self.initial_voters,
            mutant: self.mutant,
            liveness: self.liveness,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

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
