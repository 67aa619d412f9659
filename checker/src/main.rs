//! `raft-check`: the command-line model checker for the Raft model in raft-model.

mod args;
mod bench;
mod bfs;
mod catalogue;
mod conform;
mod dfs;
mod engine;
mod explore;
mod export;
mod fingerprint;
mod frontier;
mod gate;
mod interrupt;
mod itf;
mod memory;
mod mutants;
mod mutation;
mod report;
mod run;
mod shard;
mod shortest;
mod snapshot;
mod standard;
mod table;
mod trace;
mod visited;

use args::{RunArgs, ShardArgs, TraceArgs};
use clap::{Parser, Subcommand};
use raft_model::model::ModelConfig;
use report::EXIT_USAGE;
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

// The checker clones and drops millions of small states; mimalloc is markedly faster at that
// than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "raft-check",
    version,
    about = "Exhaustively model-check the Raft protocol core",
    long_about = "Exhaustively model-check the Raft protocol core (the same code the runnable \
                  node executes) under crashes, message loss, duplication and reordering.\n\n\
                  Exit codes: 0 verified within the bound; 1 a property is violated or a \
                  witness is missing; 2 bad usage; 3 incomplete (timeout or state cap)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check every property on one bound.
    Check {
        #[command(flatten)]
        model: ModelConfig,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        trace: TraceArgs,
        #[command(flatten)]
        shard: ShardArgs,
        /// Write the result as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Combine the JSON reports of the parts of one bound (`check --shard I/N --json FILE`)
    /// into one verdict: verified only when all N parts are there, complete, and none is
    /// violated. Exit codes as `check`'s.
    Merge {
        /// The parts' JSON reports.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// Write the merged report as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Serve stateright's web Explorer on the model; with --mutant, also print the link to its
    /// shortest counterexample.
    Explore {
        #[command(flatten)]
        model: ModelConfig,
        /// Address to serve on (HOST:PORT; port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: String,
        /// Checker threads behind the Explorer's "Run to completion" (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Check every mutant of the catalogue on its bound; exit 0 only if each is caught.
    Mutants {
        /// Only this mutant.
        #[arg(long)]
        only: Option<String>,
        /// Run every N-th mutant starting at I (I/N), to spread the catalogue over machines.
        #[arg(long)]
        shard: Option<String>,
        /// List the catalogue and exit.
        #[arg(long)]
        list: bool,
        /// Seconds per mutant before it counts as incomplete.
        #[arg(long, default_value_t = 300.0)]
        timeout: f64,
        /// Mutants checked at once (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Symmetry reduction over server ids (same verdicts and lengths, fewer states).
        #[arg(long)]
        symmetry: bool,
        /// Write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// The CI gate: every standard configuration and the whole mutant catalogue, with the
    /// distinct-state counts compared against the baselines committed in results/.
    Gate {
        /// Rewrite the baselines (results/*.json, results/README.md) instead of comparing.
        #[arg(long)]
        update: bool,
        /// Run every N-th item (configurations, then mutants) starting at I.
        #[arg(long)]
        shard: Option<String>,
        /// Only this standard configuration or mutant.
        #[arg(long)]
        only: Option<String>,
        /// Where the baselines live.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Seconds per mutant before it counts as incomplete.
        #[arg(long, default_value_t = 600.0)]
        mutant_timeout: f64,
        /// Testing the gate itself: check the standard configurations with this mutant on.
        #[arg(long, hide = true, value_parser = |s: &str| s.parse::<raft_model::Mutant>())]
        force_mutant: Option<raft_model::Mutant>,
        /// The mutation gate instead: the quick configurations (`standard::quick`), stopping at
        /// the first failure, with no baselines and no catalogue. `cargo mutants` runs it on
        /// every mutant of raft-core (checker/tests/mutation_gate.rs).
        #[arg(long, conflicts_with_all = ["update", "shard", "only"])]
        quick: bool,
        /// With --quick: leave the liveness property out (to tell which mutants only the
        /// liveness property catches).
        #[arg(long, requires = "quick")]
        no_liveness: bool,
        /// `compact`: check the standard configurations (not the mutants) on the checker's own
        /// engine with sleep sets, against the same baselines: every count must match.
        #[arg(long, value_enum, default_value_t = args::Engine::Stateright, conflicts_with_all = ["update", "quick"])]
        engine: args::Engine,
    },
    /// Mutation testing of raft-core's rules: cargo-mutants (installed if missing) builds every
    /// mutant of .cargo/mutants.toml and runs the mutation gate (`gate --quick`) on it; writes
    /// results/mutation.json and results/mutation.md. Run from the workspace root. Exit 0 only
    /// if no mutant was missed or timed out.
    Mutation {
        /// Where to write mutation.json and mutation.md.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// cargo-mutants' output directory (it makes mutants.out inside).
        #[arg(long, default_value = "target/mutation")]
        out: PathBuf,
        /// Only write the results from the outcomes of an earlier run in --out.
        #[arg(long)]
        report_only: bool,
        /// Skip the mutants an earlier run in --out caught; merge with results/mutation.json.
        #[arg(long)]
        iterate: bool,
        /// More arguments for cargo mutants (after `--`), e.g. `-- --shard 0/4` or `-- -F REGEX`.
        #[arg(last = true)]
        extra: Vec<String>,
    },
    /// The checker's benchmark: a fixed list of bounds × strategies × threads × symmetry, each
    /// in its own process; writes results/bench.json and the table in results/README.md.
    Bench {
        /// Where to write the figures (the table goes to README.md beside it).
        #[arg(long, default_value = "results/bench.json")]
        json: PathBuf,
        /// Only the cases whose name starts with this (e.g. `tlc/`, `default/dfs-1`).
        #[arg(long)]
        only: Option<String>,
        /// Seconds for each run of the large bound (which does not finish here).
        #[arg(long, default_value_t = 300.0)]
        large_timeout: f64,
        /// List the cases with their `check` command lines and exit.
        #[arg(long)]
        list: bool,
        /// Another build of raft-check (an earlier commit's) to compare against in this same
        /// run: it runs the default bound's one-thread cases (its first 20 M generated states,
        /// `default/dfs-1-20M`, and the whole bound with symmetry, `default/dfs-1-sym`) beside
        /// ours on stateright's DFS and on the checker's own engine, and the ratios of distinct
        /// states per second are recorded.
        #[arg(long)]
        baseline: Option<PathBuf>,
    },
    /// Replay traces of real runs against the model (trace conformance): each directory is
    /// one run (node-<id>.jsonl per node, optional run.json), a directory without traces
    /// stands for its subdirectories, loose files form one run. Exit 0 all conform, 1 a
    /// mismatch, 2 unreadable or malformed traces.
    Conform {
        /// Trace directories or node-<id>.jsonl files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// For runs without run.json: the network may deliver a message more than once.
        #[arg(long)]
        duplicating: bool,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Write the summary (runs, steps, seconds) as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Print a markdown table of JSON reports written by `check --json`; given one directory,
    /// regenerate its README.md from the reports in it (as `gate --update` does).
    Table {
        /// The JSON report files, or one directory.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE as u8 } else { 0 });
        }
    };
    let code = match cli.command {
        Command::Check {
            model,
            run,
            trace,
            shard,
            json,
        } => cmd_check(&model, &run, &trace, &shard, json.as_deref()),
        Command::Merge { reports, json } => shard::cmd_merge(&reports, json.as_deref()),
        Command::Explore {
            model,
            addr,
            threads,
        } => cmd_explore(&model, &addr, threads),
        Command::Mutants {
            only,
            shard,
            list,
            timeout,
            threads,
            symmetry,
            json,
        } => cmd_mutants(
            only.as_deref(),
            shard.as_deref(),
            list,
            timeout,
            threads,
            symmetry,
            json,
        ),
        Command::Gate {
            update,
            shard,
            only,
            results,
            mutant_timeout,
            force_mutant,
            quick,
            no_liveness,
            engine,
        } => {
            if quick {
                return ExitCode::from(gate::quick(force_mutant, !no_liveness) as u8);
            }
            let shard = match shard.as_deref().map(mutants::parse_shard).transpose() {
                Ok(s) => s,
                Err(e) => return ExitCode::from(usage_error(e) as u8),
            };
            gate::gate(&gate::GateArgs {
                update,
                shard,
                only,
                results,
                force_mutant,
                mutant_timeout,
                engine,
            })
        }
        Command::Mutation {
            results,
            out,
            report_only,
            iterate,
            extra,
        } => mutation::mutation(&mutation::MutationArgs {
            results,
            out,
            report_only,
            iterate,
            extra,
        }),
        Command::Bench {
            json,
            only,
            large_timeout,
            list,
            baseline,
        } => {
            if !(large_timeout.is_finite() && large_timeout > 0.0) {
                usage_error("--large-timeout must be a positive number of seconds")
            } else {
                bench::bench(&bench::BenchArgs {
                    json,
                    only,
                    large_timeout,
                    list,
                    baseline,
                })
            }
        }
        Command::Conform {
            paths,
            duplicating,
            threads,
            json,
        } => conform::run(&conform::ConformArgs {
            paths,
            duplicating,
            threads,
            json,
        }),
        Command::Table { files } if files.len() == 1 && files[0].is_dir() => {
            match table::write_readme(&files[0]) {
                Ok(()) => 0,
                Err(e) => usage_error(e),
            }
        }
        Command::Table { files } => match table::render(&files) {
            Ok(t) => {
                print!("{t}");
                0
            }
            Err(e) => usage_error(e),
        },
    };
    ExitCode::from(code as u8)
}

fn usage_error(msg: impl std::fmt::Display) -> i32 {
    eprintln!("raft-check: error: {msg}");
    EXIT_USAGE
}

fn cmd_explore(cfg: &ModelConfig, addr: &str, threads: Option<usize>) -> i32 {
    if let Err(e) = cfg.validate() {
        return usage_error(e);
    }
    if threads == Some(0) {
        return usage_error("--threads must be at least 1");
    }
    let addr = match explore::reserve(addr) {
        Ok(a) => a,
        Err(e) => return usage_error(e),
    };
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    explore::explore(cfg, addr, threads)
}

fn cmd_check(
    cfg: &ModelConfig,
    run: &RunArgs,
    trace_args: &TraceArgs,
    shard_args: &ShardArgs,
    json: Option<&std::path::Path>,
) -> i32 {
    if let Err(e) = cfg.validate() {
        return usage_error(e);
    }
    if let Err(e) = run.validate() {
        return usage_error(e);
    }
    if run.symmetry && cfg.partial_partition {
        return usage_error(
            "--symmetry cannot be used with --partial-partition: the cut link tells the servers apart",
        );
    }
    if run.symmetry && cfg.max_config_changes > 0 {
        return usage_error(
            "--symmetry cannot be used with --max-config-changes: configurations tell the servers apart",
        );
    }
    if let Err(e) = trace_args.validate() {
        return usage_error(e);
    }
    let part = match shard_args.validate(run) {
        Ok(p) => p,
        Err(e) => return usage_error(e),
    };
    if let Some(Err(e)) = json.map(|path| args::writable("--json", path)) {
        return usage_error(e);
    }
    let lease = [
        (cfg.pre_vote, ", PreVote"),
        (cfg.check_quorum, ", CheckQuorum"),
        (cfg.partial_partition, ", partial partition"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, s)| *s)
    .collect::<String>();
    let lease = if cfg.max_config_changes > 0 {
        let voters = cfg.initial_voters.unwrap_or(cfg.servers);
        format!(
            "{lease}, <= {} membership change(s) from {voters} voter(s)",
            cfg.max_config_changes
        )
    } else {
        lease
    };
    let lease = if cfg.max_snapshots > 0 {
        format!("{lease}, <= {} snapshot(s)", cfg.max_snapshots)
    } else {
        lease
    };
    println!(
        "Checking Raft: {} servers, terms <= {}, {} value(s), {} read(s) each, crashes <= {}, {} network{}, <= {} messages in flight{lease}{}",
        cfg.servers,
        cfg.max_term,
        cfg.values,
        cfg.reads,
        cfg.max_crashes,
        cfg.network,
        if cfg.lossy { ", lossy" } else { "" },
        cfg.max_in_flight,
        cfg.mutant
            .map(|m| format!(", MUTANT {m}"))
            .unwrap_or_default()
    );
    // From here on, Ctrl-C stops the search and still writes its report (exit 3).
    interrupt::install();
    let recorder = shard_args
        .dump_fingerprints
        .as_ref()
        .map(|_| Arc::new(Mutex::new(HashSet::new())));
    let mut prefix_keys = Vec::new();
    let outcome = match part {
        Some((index, count)) => {
            let raft = cfg.clone().into_model();
            let prefix = Arc::new(shard::Prefix::explore(
                &raft,
                run.symmetry,
                shard_args.shard_depth,
                shard::MIN_FRONTIER_PER_PART * count,
            ));
            let model =
                shard::ShardModel::part(raft, prefix.clone(), index, count, recorder.clone());
            let info = shard::ShardJson {
                index,
                count,
                depth: prefix.depth,
                prefix_states: prefix.interior.len(),
                frontier_states: prefix.frontier.len(),
                part_frontier_states: model.start_count(),
            };
            println!(
                "Part {index} of {count}: a breadth-first prefix to depth {} ({} states above \
                 a frontier of {}); this part explores from {} of the frontier states",
                info.depth, info.prefix_states, info.frontier_states, info.part_frontier_states
            );
            prefix_keys = prefix.interior.clone();
            let mut outcome = run::check_model(cfg, run, model);
            outcome.report.shard = Some(info);
            outcome
        }
        None => match &recorder {
            Some(r) => run::check_model(
                cfg,
                run,
                shard::ShardModel::whole(cfg.clone().into_model(), run.symmetry, r.clone()),
            ),
            None => run::check(cfg, run),
        },
    };
    if let (Some(path), Some(r)) = (&shard_args.dump_fingerprints, &recorder) {
        let mut keys: Vec<u64> = r.lock().expect("recorder").iter().copied().collect();
        keys.extend(prefix_keys);
        keys.sort_unstable();
        keys.dedup();
        let text: String = keys.iter().map(|k| format!("{k:016x}\n")).collect();
        if let Err(e) = std::fs::write(path, text) {
            return usage_error(format!("cannot write {}: {e}", path.display()));
        }
    }
    let report = &outcome.report;
    for p in report.failures() {
        match outcome.path(&p.name) {
            Some(path) => {
                let shortest = p.counterexample.as_ref().is_some_and(|c| c.shortest);
                println!(
                    "\nCounterexample: \"{}\" is violated after {} steps{}:",
                    p.name,
                    path.clone().into_actions().len(),
                    if shortest {
                        " (a shortest path)"
                    } else {
                        " (as discovered, not shortened)"
                    }
                );
                print!("{}", trace::render(cfg, path));
            }
            None => println!(
                "\nWitness missing: \"{}\" was never reached within the bound, so the property \
                 it pairs with may hold vacuously.",
                p.name
            ),
        }
    }
    if let Some(out) = &trace_args.trace_out {
        let first = report
            .failures()
            .find_map(|p| outcome.path(&p.name).map(|path| (p.name.clone(), path)));
        match first {
            Some((name, path)) => {
                if let Err(e) = export::write(cfg, &name, path, trace_args.trace_format, out) {
                    return usage_error(e);
                }
                println!(
                    "\nTrace of \"{name}\" written to {} ({}).",
                    out.display(),
                    trace_args.trace_format.name()
                );
            }
            None => eprintln!(
                "raft-check: no property is violated: {} not written",
                out.display()
            ),
        }
    }
    println!();
    print!("{}", report.summary());
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(report).expect("report serializes");
        if let Err(e) = std::fs::write(path, text + "\n") {
            return usage_error(format!("cannot write {}: {e}", path.display()));
        }
    }
    report.exit_code()
}

fn cmd_mutants(
    only: Option<&str>,
    shard: Option<&str>,
    list: bool,
    timeout: f64,
    threads: Option<usize>,
    symmetry: bool,
    json: Option<PathBuf>,
) -> i32 {
    let shard = match shard.map(mutants::parse_shard).transpose() {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let cases = match mutants::select(only, shard) {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    if list {
        for c in &cases {
            println!("{:<28} {}", c.mutant.name(), c.mutant.description());
        }
        return 0;
    }
    if !(timeout.is_finite() && timeout > 0.0) {
        return usage_error("--timeout must be a positive number of seconds");
    }
    if threads == Some(0) {
        return usage_error("--threads must be at least 1");
    }
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let (results, code) = mutants::run(&cases, timeout, threads, symmetry);
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "mutants": results }))
            .expect("results serialize");
        if let Err(e) = std::fs::write(&path, text + "\n") {
            return usage_error(format!("cannot write {}: {e}", path.display()));
        }
    }
    code
}
