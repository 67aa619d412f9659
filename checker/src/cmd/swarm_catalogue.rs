//! `raft-check swarm --catalogue`: the swarm search, on its own, on every catalogue mutant over
//! a bound larger than the catalogue's (and so the gate's): how long each takes to be caught.

use super::swarm::{run_search, SwarmArgs};
use super::usage::usage_error;
use crate::catalogue::catalogue;
use crate::engine::interrupt;
use crate::report::check_report::{EXIT_INCOMPLETE, EXIT_OK};
use raft_model::model::ModelConfig;
use serde::Serialize;

/// How the catalogue bound is enlarged, in words (for the report).
pub const ENLARGEMENT: &str = "the catalogue bound with --max-term + 2 and --max-in-flight + 1";

/// With --extra-server, in words.
pub const EXTRA_SERVER: &str = ", and one more server where it has three or more (not with \
     --partial-partition, which needs exactly three)";

/// The catalogue bound `bound` enlarged as [`ENLARGEMENT`] (and, with `extra_server`,
/// [`EXTRA_SERVER`]) says.
pub fn enlarge(bound: &ModelConfig, extra_server: bool) -> ModelConfig {
    let mut big = bound.clone();
    big.max_term += 2;
    big.max_in_flight += 1;
    if extra_server && big.servers >= 3 && !big.partial_partition {
        big.servers += 1;
    }
    if big.validate().is_err() {
        // Keep the servers where one more is refused.
        big.servers = bound.servers;
    }
    big
}

/// One mutant's result.
#[derive(Serialize, Clone, Debug)]
pub struct MutantSwarm {
    pub name: String,
    pub catalogue_bound: ModelConfig,
    pub bound: ModelConfig,
    /// "caught" or "not caught" (within the budget: not a proof that it survives).
    pub outcome: &'static str,
    pub property: Option<String>,
    /// Seconds until the violating walk ended (shortening excluded).
    pub seconds_to_catch: Option<f64>,
    pub walk: Option<u64>,
    /// Walks run, up to the violation or the budget.
    pub walks: u64,
    pub raw_length: Option<usize>,
    pub shortened_length: Option<usize>,
    pub distinct_states: usize,
    pub replay: Option<String>,
}

/// The whole measurement (`--json`).
#[derive(Serialize, Clone, Debug)]
pub struct CatalogueReport {
    pub commit: String,
    pub machine: String,
    pub seed: u64,
    pub budget_per_mutant: f64,
    pub max_depth_per_walk: usize,
    pub threads: usize,
    pub enlargement: String,
    pub caught: usize,
    pub mutants: Vec<MutantSwarm>,
}

/// The machine: its cores and, where Linux says, its processor.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown processor".into());
    format!("{cores} cores, {cpu}")
}

/// The commit of the working directory, if git can say, with "-dirty" when tracked files
/// differ from it.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if changes.is_empty() => head,
        _ => format!("{head}-dirty"),
    }
}

pub fn run(args: &SwarmArgs) -> i32 {
    if args.model != ModelConfig::default() {
        return usage_error("--catalogue takes no model flags: each mutant has its own bound");
    }
    if args.trace.trace_out.is_some() {
        return usage_error("--catalogue writes no --trace-out: replay a mutant's walk for it");
    }
    let budget = args.budget_per_mutant;
    if !(budget.is_finite() && budget > 0.0 && budget <= super::swarm::MAX_SECONDS) {
        return usage_error(
            "--budget-per-mutant must be a positive number of seconds, at most 10^9",
        );
    }
    // The commit measured: read before the run (a commit made meanwhile is not measured).
    let measured = commit();
    interrupt::install();
    let mut search = args.search.clone();
    search.progress = 0.0;
    let threads = search.options(budget).threads;
    println!(
        "Swarm search on every catalogue mutant, {budget} s each, seed {}",
        search.seed
    );
    let enlargement = format!(
        "{ENLARGEMENT}{}",
        if args.extra_server { EXTRA_SERVER } else { "" }
    );
    println!("Bound: {enlargement}.");
    println!(
        "{:<30} {:<10} {:<36} {:>8} {:>7} {:>5} {:>5}",
        "mutant", "outcome", "property", "seconds", "walks", "raw", "short"
    );
    let mut results = Vec::new();
    for case in catalogue() {
        if interrupt::requested() {
            break;
        }
        let bound = enlarge(&case.bound, args.extra_server);
        let finished = run_search(&bound, &search, budget);
        let r = &finished.report;
        let v = r.violation.as_ref();
        let m = MutantSwarm {
            name: case.mutant.name().to_string(),
            catalogue_bound: case.bound.clone(),
            bound: bound.clone(),
            outcome: if v.is_some() { "caught" } else { "not caught" },
            property: v.map(|v| v.property.clone()),
            seconds_to_catch: v.map(|v| v.found_after_seconds),
            walk: v.map(|v| v.walk),
            walks: r.walks,
            raw_length: v.map(|v| v.raw_length),
            shortened_length: v.map(|v| v.shortened_length),
            distinct_states: r.distinct_states,
            replay: v.map(|v| v.replay.clone()),
        };
        println!(
            "{:<30} {:<10} {:<36} {:>8} {:>7} {:>5} {:>5}",
            m.name,
            m.outcome,
            m.property.as_deref().unwrap_or("-"),
            m.seconds_to_catch.map_or("-".into(), |s| format!("{s:.1}")),
            m.walks,
            m.raw_length.map_or("-".into(), |n| n.to_string()),
            m.shortened_length.map_or("-".into(), |n| n.to_string()),
        );
        results.push(m);
    }
    let caught = results.iter().filter(|m| m.outcome == "caught").count();
    println!(
        "\n{caught} of {} mutants caught by the swarm search alone (a mutant not caught within \
         its budget is not shown to survive).",
        results.len()
    );
    let report = CatalogueReport {
        commit: measured,
        machine: machine(),
        seed: search.seed,
        budget_per_mutant: budget,
        max_depth_per_walk: search.max_depth,
        threads,
        enlargement: enlargement.clone(),
        caught,
        mutants: results,
    };
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).expect("report serializes");
        if let Err(e) = std::fs::write(path, text + "\n") {
            return usage_error(format!("cannot write {}: {e}", path.display()));
        }
    }
    if caught == report.mutants.len() && caught == catalogue().len() {
        EXIT_OK
    } else {
        EXIT_INCOMPLETE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every enlarged bound is valid and larger than the catalogue's in terms and messages in
    // flight (the measurement's claim), and one more server is added only where allowed.
    #[test]
    fn every_enlarged_bound_is_valid_and_larger() {
        for case in catalogue() {
            for extra in [false, true] {
                let big = enlarge(&case.bound, extra);
                assert_eq!(big.validate(), Ok(()), "{}", case.mutant.name());
                assert_eq!(big.max_term, case.bound.max_term + 2);
                assert_eq!(big.max_in_flight, case.bound.max_in_flight + 1);
                let more = extra && case.bound.servers >= 3 && !case.bound.partial_partition;
                assert_eq!(big.servers, case.bound.servers + usize::from(more));
                assert_eq!(big.mutant, Some(case.mutant));
            }
        }
    }
}
