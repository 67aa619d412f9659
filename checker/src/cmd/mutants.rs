//! `raft-check mutants`: every mutant of the catalogue on its bound, searched level by level so
//! that each counterexample is a shortest one. Exit 0 only if every mutant is caught.

use super::usage::usage_error;
use crate::catalogue::{catalogue, Case};
use crate::engine::shortest::{self, Search};
use crate::part::{every_nth, parse_part};
use crate::report::check_report::{EXIT_INCOMPLETE, EXIT_OK, EXIT_VIOLATION};
use crate::report::text_trace;
use clap::Args;
use raft_model::model::ModelConfig;
use rayon::prelude::*;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct MutantsArgs {
    /// Only this mutant.
    #[arg(long)]
    pub only: Option<String>,
    /// Run every N-th mutant starting at I (I/N), to spread the catalogue over machines.
    #[arg(long, value_name = "I/N")]
    pub part: Option<String>,
    /// List the catalogue and exit.
    #[arg(long)]
    pub list: bool,
    /// Seconds per mutant before it counts as incomplete.
    #[arg(long, default_value_t = 300.0)]
    pub timeout: f64,
    /// Mutants checked at once (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Symmetry reduction over server ids (same verdicts and lengths, fewer states).
    #[arg(long)]
    pub symmetry: bool,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Serialize, Clone, Debug)]
pub struct MutantResult {
    pub name: String,
    pub description: String,
    pub config: ModelConfig,
    /// caught | survived | incomplete
    pub outcome: String,
    pub property: Option<String>,
    pub counterexample_length: Option<usize>,
    pub counterexample: Option<Vec<String>>,
    pub unique_states: usize,
    pub seconds: f64,
}

/// Which catalogue entries this run takes: `--only`, then every N-th from `--part I/N`.
pub fn select(only: Option<&str>, part: Option<(usize, usize)>) -> Result<Vec<Case>, String> {
    let mut cases = catalogue();
    if let Some(name) = only {
        let m: raft_model::Mutant = name.parse()?;
        cases.retain(|c| c.mutant == m);
    }
    if let Some(part) = part {
        cases = every_nth(cases, part);
    }
    Ok(cases)
}

fn run_case(case: &Case, timeout: f64, symmetry: bool) -> MutantResult {
    let start = Instant::now();
    let model = case.bound.clone().into_model();
    let deadline = start + Duration::from_secs_f64(timeout);
    let outcome = shortest::search(&model, &[], Some(deadline), symmetry);
    let seconds = start.elapsed().as_secs_f64();
    let mut r = MutantResult {
        name: case.mutant.name().to_string(),
        description: case.mutant.description().to_string(),
        config: case.bound.clone(),
        outcome: String::new(),
        property: None,
        counterexample_length: None,
        counterexample: None,
        unique_states: 0,
        seconds,
    };
    match outcome {
        Search::Violated {
            property,
            path,
            unique_states,
        } => {
            r.outcome = "caught".into();
            r.property = Some(property.to_string());
            r.counterexample_length = Some(path.clone().into_actions().len());
            r.counterexample = Some(text_trace::actions(&case.bound, &path));
            r.unique_states = unique_states;
        }
        Search::Exhausted { unique_states } => {
            r.outcome = "survived".into();
            r.unique_states = unique_states;
        }
        Search::OutOfTime { unique_states, .. } => {
            r.outcome = "incomplete".into();
            r.unique_states = unique_states;
        }
    }
    r
}

/// One line of the results table.
fn row(r: &MutantResult) -> String {
    format!(
        "{:<28} {:<10} {:<32} {:>6} {:>10} {:>8.1}",
        r.name,
        r.outcome,
        r.property.as_deref().unwrap_or("-"),
        r.counterexample_length
            .map(|l| l.to_string())
            .unwrap_or("-".into()),
        r.unique_states,
        r.seconds
    )
}

/// Run the cases (in parallel, one thread each), print the table, return results and exit code.
/// With `symmetry`, each search keeps one state per renaming of the servers.
pub fn run(
    cases: &[Case],
    timeout: f64,
    threads: usize,
    symmetry: bool,
) -> (Vec<MutantResult>, i32) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let results: Vec<MutantResult> = pool.install(|| {
        cases
            .par_iter()
            .map(|c| {
                let r = run_case(c, timeout, symmetry);
                eprintln!("{}", row(&r));
                r
            })
            .collect()
    });
    println!(
        "{:<28} {:<10} {:<32} {:>6} {:>10} {:>8}",
        "mutant", "outcome", "property", "steps", "states", "seconds"
    );
    for r in &results {
        println!("{}", row(r));
    }
    let survived = results.iter().filter(|r| r.outcome == "survived").count();
    let incomplete = results.iter().filter(|r| r.outcome == "incomplete").count();
    let caught = results.len() - survived - incomplete;
    println!(
        "\n{caught} of {} mutants caught, each with a shortest counterexample; {survived} survived; {incomplete} incomplete (time ran out).",
        results.len()
    );
    let code = if survived > 0 {
        EXIT_VIOLATION
    } else if incomplete > 0 {
        EXIT_INCOMPLETE
    } else {
        EXIT_OK
    };
    (results, code)
}

pub fn mutants(args: &MutantsArgs) -> i32 {
    let MutantsArgs {
        only,
        part,
        list,
        timeout,
        threads,
        symmetry,
        json,
    } = args;
    let (only, list, timeout, threads, symmetry) =
        (only.as_deref(), *list, *timeout, *threads, *symmetry);
    let part = match part.as_deref().map(|s| parse_part("--part", s)).transpose() {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let cases = match select(only, part) {
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
    let (results, code) = run(&cases, timeout, threads, symmetry);
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "mutants": results }))
            .expect("results serialize");
        if let Err(e) = std::fs::write(path, text + "\n") {
            return usage_error(format!("cannot write {}: {e}", path.display()));
        }
    }
    code
}
