//! `raft-check`: the command-line model checker for the Raft model in raft-model.

mod catalogue;
mod cmd;
mod coverage;
mod engine;
mod gate_bounds;
mod interplay;
mod part;
mod report;
mod standard;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use cmd::usage::usage_error;
use report::check_report::EXIT_USAGE;
use std::process::ExitCode;

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
    Check(cmd::check::CheckArgs),
    /// Serve stateright's web Explorer on the model; with --mutant, also print the link to its
    /// shortest counterexample.
    Explore(cmd::explore::ExploreArgs),
    /// Check every mutant of the catalogue on its bound; exit 0 only if each is caught.
    Mutants(cmd::mutants::MutantsArgs),
    /// The CI gate: every standard configuration and the whole mutant catalogue, with the
    /// distinct-state counts compared against the baselines committed in results/.
    Gate(cmd::gate::GateArgs),
    /// Mutation testing of raft-core's rules: cargo-mutants (installed if missing) builds every
    /// mutant of .cargo/mutants.toml and runs the mutation gate (`gate --quick`) on it; writes
    /// results/mutation.json and results/mutation.md. Run from the workspace root. Exit 0 only
    /// if no mutant was missed or timed out.
    Mutation(cmd::mutation::MutationArgs),
    /// The checker's benchmark: a fixed list of bounds × strategies × threads × symmetry, each
    /// in its own process; writes results/bench.json and the table in results/README.md.
    Bench(cmd::bench::BenchArgs),
    /// Replay traces of real runs against the model (trace conformance): each directory is
    /// one run (node-<id>.jsonl per node, optional run.json), a directory without traces
    /// stands for its subdirectories, loose files form one run. Exit 0 all conform, 1 a
    /// mismatch, 2 unreadable or malformed traces.
    Conform(cmd::conform::ConformArgs),
    /// Swarm search: many random walks, each from its own seed with its own action weights,
    /// depth-bounded, judged by every property; the violation of the lowest-numbered walk is
    /// shortened and printed. Never a proof: exit 1 a violation, 3 nothing found; with
    /// --catalogue, every catalogue mutant on a larger bound.
    Swarm(cmd::swarm::SwarmArgs),
    /// Print a markdown table of JSON reports written by `check --json`; given one directory,
    /// regenerate its README.md from the reports in it (as `gate --update` does).
    Table(cmd::table::TableArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let (mut cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE as u8 } else { 0 });
        }
    };
    if let (Command::Check(args), Some(m)) = (&mut cli.command, matches.subcommand_matches("check"))
    {
        if let Err(e) = args.apply_bound(m) {
            return ExitCode::from(usage_error(e) as u8);
        }
    }
    let code = match &cli.command {
        Command::Check(args) => cmd::check::check(args),
        Command::Explore(args) => cmd::explore::run(args),
        Command::Mutants(args) => cmd::mutants::mutants(args),
        Command::Gate(args) => cmd::gate::gate(args),
        Command::Mutation(args) => cmd::mutation::mutation(args),
        Command::Bench(args) => cmd::bench::bench(args),
        Command::Conform(args) => cmd::conform::run(args),
        // `--catalogue` measures the catalogue (swarm_catalogue.rs, which runs swarm.rs's
        // search); otherwise one search.
        Command::Swarm(args) if args.catalogue => cmd::swarm_catalogue::run(args),
        Command::Swarm(args) => cmd::swarm::run(args),
        Command::Table(args) => cmd::table::run(args),
    };
    ExitCode::from(code as u8)
}
