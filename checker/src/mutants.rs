//! `raft-check mutants`: every mutant of the catalogue on its bound, searched level by level so
//! that each counterexample is a shortest one. Exit 0 only if every mutant is caught.

use crate::catalogue::{catalogue, Case};
use crate::report::{EXIT_INCOMPLETE, EXIT_OK, EXIT_VIOLATION};
use crate::shortest::{self, Search};
use crate::trace;
use raft_model::model::ModelConfig;
use rayon::prelude::*;
use serde::Serialize;
use std::time::{Duration, Instant};

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

/// Which catalogue entries this run takes: `--only`, then every N-th from `--shard I/N`.
pub fn select(only: Option<&str>, shard: Option<(usize, usize)>) -> Result<Vec<Case>, String> {
    let mut cases = catalogue();
    if let Some(name) = only {
        let m: raft_model::Mutant = name.parse()?;
        cases.retain(|c| c.mutant == m);
    }
    if let Some((i, n)) = shard {
        cases = cases
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % n == i)
            .map(|(_, c)| c)
            .collect();
    }
    Ok(cases)
}

/// Parse `I/N` (0 <= I < N).
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--shard takes I/N (e.g. 0/4), not '{s}'"))?;
    let i: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("bad shard index in '{s}'"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("bad shard count in '{s}'"))?;
    if n == 0 || i >= n {
        return Err(format!("--shard {s}: need 0 <= I < N"));
    }
    Ok((i, n))
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
            r.counterexample = Some(trace::actions(&case.bound, &path));
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
