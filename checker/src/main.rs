//! `raft-check`: the command-line model checker for the Raft model in raft-model.

mod args;
mod report;
mod run;
mod trace;

use args::{ModelArgs, RunArgs};
use clap::{Parser, Subcommand};
use report::EXIT_USAGE;
use std::path::PathBuf;
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
    Check {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        run: RunArgs,
        /// Write the result as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
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
        Command::Check { model, run, json } => cmd_check(&model, &run, json.as_deref()),
    };
    ExitCode::from(code as u8)
}

fn usage_error(msg: impl std::fmt::Display) -> i32 {
    eprintln!("raft-check: error: {msg}");
    EXIT_USAGE
}

fn cmd_check(model: &ModelArgs, run: &RunArgs, json: Option<&std::path::Path>) -> i32 {
    let cfg = match model.to_config() {
        Ok(cfg) => cfg,
        Err(e) => return usage_error(e),
    };
    if let Err(e) = run.validate() {
        return usage_error(e);
    }
    println!(
        "Checking Raft: {} servers, terms <= {}, {} value(s), {} read(s) each, crashes <= {}, {} network{}, <= {} messages in flight{}",
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
    let outcome = run::check(&cfg, run);
    let report = &outcome.report;
    for p in report.failures() {
        match outcome.path(&p.name) {
            Some(path) => {
                println!(
                    "\nCounterexample: \"{}\" is violated after {} steps:",
                    p.name,
                    path.clone().into_actions().len()
                );
                print!("{}", trace::render(&cfg, path));
            }
            None => println!(
                "\nWitness missing: \"{}\" was never reached within the bound, so the property \
                 it pairs with may hold vacuously.",
                p.name
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
