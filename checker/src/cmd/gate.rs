//! `raft-check gate`: the CI gate. Re-runs every standard configuration and the mutant
//! catalogue and fails when any Always property is violated, any witness is missing, any mutant
//! survives, a run is incomplete, or an exhaustive configuration's distinct-state count differs
//! from the committed baseline in results/ (a changed state space must be a conscious change:
//! `--update` rewrites the baselines). Times are reported, never compared.

use super::mutants;
use super::usage::usage_error;
use crate::engine::options::{Engine, RunArgs, Strategy};
use crate::engine::run;
use crate::gate_bounds::gate as gate_configs;
use crate::part::{every_nth, parse_part};
use crate::report::check_report::{EXIT_OK, EXIT_USAGE, EXIT_VIOLATION};
use crate::report::table;
use crate::standard::{quick as quick_configs, Standard};
use clap::Args;
use raft_model::Mutant;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct GateArgs {
    /// Rewrite the baselines (results/*.json, results/README.md) instead of comparing.
    #[arg(long)]
    pub update: bool,
    /// Run every N-th item (configurations, then mutants) starting at I (I/N).
    #[arg(long)]
    pub part: Option<String>,
    /// Only this standard configuration or mutant.
    #[arg(long)]
    pub only: Option<String>,
    /// Where the baselines live.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Seconds per mutant before it counts as incomplete.
    #[arg(long, default_value_t = 600.0)]
    pub mutant_timeout: f64,
    /// Testing the gate itself: check the standard configurations with this mutant on.
    #[arg(long, hide = true, value_parser = |s: &str| s.parse::<raft_model::Mutant>())]
    pub force_mutant: Option<raft_model::Mutant>,
    /// The mutation gate instead: the quick configurations (`standard::quick`), stopping at
    /// the first failure, with no baselines and no catalogue. `cargo mutants` runs it on
    /// every mutant of raft-core (checker/tests/mutation_gate.rs).
    #[arg(long, conflicts_with_all = ["update", "part", "only"])]
    pub quick: bool,
    /// With --quick: leave the liveness property out (to tell which mutants only the
    /// liveness property catches).
    #[arg(long, requires = "quick")]
    pub no_liveness: bool,
    /// The engine that checks the configurations: `compact` (default), the checker's own
    /// depth-first search with sleep sets, one thread per configuration and the same
    /// distinct-state counts and verdicts as stateright's, faster; `stateright`,
    /// stateright's on every thread, one configuration at a time.
    #[arg(long, value_enum, default_value_t = Engine::Compact, conflicts_with = "quick")]
    pub engine: Engine,
    /// Configurations checked at once, each on one thread, longest first by its recorded time
    /// (default: all cores; with --engine stateright: 1).
    #[arg(long)]
    pub workers: Option<usize>,
}

/// What one configuration's check left: its printed lines and its failures.
struct Checked {
    text: String,
    failures: Vec<String>,
}

enum Item {
    Config(usize),
    Mutant(Mutant),
}

fn baseline_states(path: &Path) -> Result<Option<u64>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let raw = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&raw)
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    v["unique_states"]
        .as_u64()
        .map(Some)
        .ok_or_else(|| format!("{} has no unique_states", path.display()))
}

/// `raft-check gate`, or with `--quick` the mutation gate.
pub fn gate(args: &GateArgs) -> i32 {
    if args.quick {
        return quick(args.force_mutant, !args.no_liveness);
    }
    let part = match args
        .part
        .as_deref()
        .map(|s| parse_part("--part", s))
        .transpose()
    {
        Ok(p) => p,
        Err(e) => return usage_error(e),
    };
    let configs = gate_configs();
    // The covering design: every pair of the node's features in some bound (coverage.rs).
    let bounds: Vec<(&str, &raft_model::model::ModelConfig)> =
        configs.iter().map(|c| (c.name, &c.bound)).collect();
    let (mut pairs, needs) = crate::coverage::gaps(&bounds);
    pairs.retain(|p| !crate::coverage::KNOWN_GAPS.contains(p));
    if !pairs.is_empty() || !needs.is_empty() {
        eprintln!(
            "raft-check: error: the gate's bounds leave feature pairs {pairs:?} and dimensions \
             {needs:?} unchecked (checker/src/interplay.rs)"
        );
        return EXIT_VIOLATION;
    }
    let mut items: Vec<(String, Item)> = configs
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.to_string(), Item::Config(i)))
        .collect();
    items.extend(
        Mutant::ALL
            .iter()
            .map(|m| (m.name().to_string(), Item::Mutant(*m))),
    );
    if let Some(only) = &args.only {
        items.retain(|(name, _)| name == only);
        if items.is_empty() {
            eprintln!("raft-check: error: gate --only {only}: no standard configuration or mutant of that name");
            return EXIT_USAGE;
        }
    }
    if let Some(part) = part {
        items = every_nth(items, part);
    }
    if let Err(e) = std::fs::create_dir_all(&args.results) {
        eprintln!(
            "raft-check: error: cannot create {}: {e}",
            args.results.display()
        );
        return EXIT_USAGE;
    }

    let mut failures: Vec<String> = Vec::new();
    let mut selected_mutants = Vec::new();
    let mut selected_configs = Vec::new();
    for (_, item) in &items {
        match item {
            Item::Mutant(m) => selected_mutants.push(*m),
            Item::Config(i) => selected_configs.push(*i),
        }
    }
    if args.workers == Some(0) {
        return usage_error("--workers must be at least 1");
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let workers = match args.engine {
        Engine::Compact => args.workers.unwrap_or(cores),
        Engine::Stateright => args.workers.unwrap_or(1),
        Engine::Timely => {
            return usage_error(
                "the gate's searches are depth-first: --engine stateright or compact",
            )
        }
    };
    // Longest first (by the time its baseline recorded), so the workers finish together.
    selected_configs.sort_by(|a, b| {
        let cost =
            |i: &usize| baseline_seconds(&args.results.join(format!("{}.json", configs[*i].name)));
        cost(b).total_cmp(&cost(a))
    });
    println!(
        "gate: {} configuration(s) on the {} engine, {workers} at a time; {} mutant(s)",
        selected_configs.len(),
        args.engine.name(),
        selected_mutants.len()
    );
    let queue = std::sync::Mutex::new(selected_configs.into_iter());
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let next = queue.lock().expect("queue").next();
                let Some(i) = next else { break };
                let checked = check_config(args, &configs[i], workers);
                print!("{}", checked.text);
                done.lock().expect("results").push(checked.failures);
            });
        }
    });
    for f in done.into_inner().expect("results") {
        failures.extend(f);
    }
    if !selected_mutants.is_empty() {
        let cases: Vec<_> = crate::catalogue::catalogue()
            .into_iter()
            .filter(|c| selected_mutants.contains(&c.mutant))
            .collect();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let (results, code) = mutants::run(&cases, args.mutant_timeout, threads, false);
        for r in &results {
            if r.outcome != "caught" {
                failures.push(format!("mutant {}: {}", r.name, r.outcome));
            }
        }
        // Symmetry reduction must not change a verdict: the same mutants caught, with
        // counterexamples of the same (shortest) length.
        println!("\ngate: the catalogue again, with symmetry reduction");
        let (symmetric, _) = mutants::run(&cases, args.mutant_timeout, threads, true);
        for (plain, sym) in results.iter().zip(&symmetric) {
            if plain.outcome != sym.outcome
                || plain.counterexample_length != sym.counterexample_length
            {
                failures.push(format!(
                    "mutant {}: with symmetry {} in {:?} steps, without {} in {:?} steps",
                    plain.name,
                    sym.outcome,
                    sym.counterexample_length,
                    plain.outcome,
                    plain.counterexample_length
                ));
            }
        }
        if args.update && code == EXIT_OK && part.is_none() && args.only.is_none() {
            let file = args.results.join("mutants.json");
            let text = serde_json::to_string_pretty(&serde_json::json!({ "mutants": results }))
                .expect("results");
            if let Err(e) = std::fs::write(&file, text + "\n") {
                failures.push(format!("cannot write {}: {e}", file.display()));
            }
        }
    }
    if args.update {
        if let Err(e) = table::write_readme(&args.results) {
            failures.push(e);
        }
    }
    if failures.is_empty() {
        println!("\ngate: PASS ({} item(s))", items.len());
        EXIT_OK
    } else {
        println!("\ngate: FAIL");
        for f in &failures {
            println!("  - {f}");
        }
        EXIT_VIOLATION
    }
}

/// The recorded time of a configuration's baseline (0 where none).
fn baseline_seconds(path: &Path) -> f64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|raw| serde_json::from_str::<serde_json::Value>(&raw).ok())
        .and_then(|v| v["seconds"].as_f64())
        .unwrap_or(0.0)
}

/// Check one standard configuration and compare it with its baseline (or write it).
fn check_config(args: &GateArgs, std_cfg: &Standard, workers: usize) -> Checked {
    use std::fmt::Write as _;
    let name = std_cfg.name;
    let mut text = String::new();
    let mut failures = Vec::new();
    let mut bound = std_cfg.bound.clone();
    if args.force_mutant.is_some() {
        bound.mutant = args.force_mutant;
    }
    println!("gate: {name} started");
    let _ = writeln!(text, "gate: {name} — {}", std_cfg.purpose);
    let compact = args.engine == Engine::Compact;
    let run_args = RunArgs {
        strategy: Strategy::Dfs,
        engine: args.engine,
        sleep_sets: compact,
        // The compact DFS is one thread; stateright's takes them all when alone.
        threads: (compact || workers > 1).then_some(1),
        symmetry: std_cfg.symmetry,
        timeout: Some(1500.0),
        max_states: None,
        seed: 0,
        shorten_budget: 60.0,
        // Lines of several configurations at once would not say whose they are.
        progress: if workers > 1 { 0.0 } else { 30.0 },
        processes: 1,
        process: 0,
        hostfile: None,
    };
    let mut outcome = run::check(&bound, &run_args);
    // VmHWM is the whole gate process's peak so far, not this run's: leave it out
    // (`raft-check bench` measures memory one process per run).
    outcome.report.peak_memory_bytes = None;
    let report = &outcome.report;
    text.push_str(&report.summary());
    let code = report.exit_code();
    if code != EXIT_OK {
        failures.push(format!(
            "{name}: {}",
            report.summary().lines().next().unwrap_or_default()
        ));
    }
    let file = args.results.join(format!("{name}.json"));
    if args.update {
        if code == EXIT_OK {
            let json = serde_json::to_string_pretty(report).expect("report");
            if let Err(e) = std::fs::write(&file, json + "\n") {
                failures.push(format!("cannot write {}: {e}", file.display()));
            }
        }
    } else {
        match baseline_states(&file) {
            Ok(Some(b)) if b != report.unique_states as u64 => failures.push(format!(
                "{name}: the state space changed: baseline {b} distinct states in {}, now {}; \
                 if intended, run `raft-check gate --update` and commit",
                file.display(),
                report.unique_states
            )),
            Ok(Some(_)) => {}
            Ok(None) => failures.push(format!(
                "{name}: no baseline {}; run `raft-check gate --update` and commit",
                file.display()
            )),
            Err(e) => failures.push(e),
        }
    }
    Checked { text, failures }
}

/// `raft-check gate --quick`, the mutation gate: every quick configuration on the correct
/// protocol (or `force_mutant`), stopping at the first that fails; `liveness: false` leaves
/// the liveness property out. Exit 0 only if every one is
/// complete, holds every Always property and reaches every witness.
pub fn quick(force_mutant: Option<Mutant>, liveness: bool) -> i32 {
    for std_cfg in quick_configs() {
        let mut bound = std_cfg.bound.clone();
        bound.liveness = liveness;
        if force_mutant.is_some() {
            bound.mutant = force_mutant;
        }
        println!("gate --quick: {} — {}", std_cfg.name, std_cfg.purpose);
        let run_args = RunArgs {
            strategy: Strategy::Dfs,
            engine: Engine::Stateright,
            sleep_sets: false,
            threads: None,
            symmetry: std_cfg.symmetry,
            timeout: Some(600.0),
            max_states: None,
            seed: 0,
            shorten_budget: 0.0,
            progress: 0.0,
            processes: 1,
            process: 0,
            hostfile: None,
        };
        let report = run::check(&bound, &run_args).report;
        print!("{}", report.summary());
        let code = report.exit_code();
        if code != EXIT_OK {
            println!("\ngate --quick: FAIL at {}", std_cfg.name);
            return code;
        }
    }
    println!("\ngate --quick: PASS");
    EXIT_OK
}
