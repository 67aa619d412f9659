//! `raft-check bench`: the checker's benchmark. Runs a fixed list of (bound, strategy, threads,
//! symmetry) cases, each in a fresh child process (`raft-check check --json`) so that every
//! peak-memory figure (VmHWM) belongs to one run only, and writes the figures to
//! results/bench.json and its table to results/README.md. A benchmark, never a test: nothing
//! here asserts a time.

use crate::engine::options::Strategy;
use crate::report::check_report::EXIT_USAGE;
use crate::standard::standard;
use raft_model::model::ModelConfig;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// One benchmark case.
pub struct Case {
    /// `bound/strategy-threads[-sym]`, e.g. `default/dfs-1-sym`.
    pub name: String,
    pub bound_name: &'static str,
    pub bound: ModelConfig,
    pub strategy: Strategy,
    /// `None`: all cores.
    pub threads: Option<usize>,
    pub symmetry: bool,
    pub timeout: f64,
    /// A cap on generated states, for runs that would otherwise exhaust the machine's memory.
    pub max_states: Option<usize>,
    /// `--engine compact` (DFS: one thread, and with it `--sleep-sets`; BFS: `threads`).
    pub compact: Option<SleepSets>,
    /// `--engine timely` as this many processes of `threads` workers each (on this machine).
    pub timely: Option<usize>,
}

/// Whether a compact-engine case uses sleep sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SleepSets {
    Off,
    On,
}

/// A bound near the one Ongaro's raft.tla was measured on with TLC, **not the same work**:
/// raft.tla starts every server at term 1, so TLC's MaxTerm 2 allows one election, while
/// `--max-term 2` here allows two (terms 1 and 2); the nearest like-for-like bound here is
/// `--max-term 1`. TLC also splits steps finer (UpdateTerm, BecomeLeader, AdvanceCommitIndex
/// are separate actions), has no client actor and no log bound of its own, and its bag of
/// messages allows duplication. State counts of two encodings are not comparable; time to
/// exhaust the same behaviours is, measured on the same day (results/notebook.md).
fn tlc_bound() -> ModelConfig {
    ModelConfig {
        reads: 0,
        ..ModelConfig::default()
    }
}

/// The foundation issue's larger bound (terms ≤ 3, two values, a crash, a lossy duplicating
/// network; ≤ 4 in flight, since a duplicating network needs a bound).
pub fn large_bound() -> ModelConfig {
    ModelConfig {
        max_term: 3,
        values: 2,
        network: raft_model::model::NetworkKind::UnorderedDuplicating,
        max_in_flight: 4,
        ..ModelConfig::default()
    }
}

/// The checker-engine issue's large bound: terms ≤ 3, two values, a crash, a lossy
/// non-duplicating network, ≤ 2 in flight (run with symmetry).
pub fn checker_engine_bound() -> ModelConfig {
    ModelConfig {
        max_term: 3,
        values: 2,
        max_in_flight: 2,
        ..ModelConfig::default()
    }
}

/// The fixed list. `large_timeout` caps the large bound's runs (it does not finish here).
pub fn cases(large_timeout: f64) -> Vec<Case> {
    let mut v = Vec::new();
    // The checker's own engine's cases, listed after stateright's.
    let mut compact = Vec::new();
    let mut add = |bound_name: &'static str,
                   bound: &ModelConfig,
                   strategy: Strategy,
                   threads: Option<usize>,
                   symmetry: bool,
                   timeout: f64,
                   max_states: Option<usize>| {
        let t = threads.map(|n| n.to_string()).unwrap_or("all".into());
        let sym = if symmetry { "-sym" } else { "" };
        // A capped case says so in its name: `-20M`, its generated-state cap.
        let cap = max_states
            .map(|m| format!("-{}M", m / 1_000_000))
            .unwrap_or_default();
        v.push(Case {
            name: format!("{bound_name}/{}-{t}{sym}{cap}", strategy.name()),
            bound_name,
            bound: bound.clone(),
            strategy,
            threads,
            symmetry,
            timeout,
            max_states,
            compact: None,
            timely: None,
        });
    };
    use Strategy::{Bfs, Dfs};
    let tlc = tlc_bound();
    for (s, sym) in [(Dfs, false), (Dfs, true), (Bfs, false)] {
        for t in [Some(1), None] {
            add("tlc", &tlc, s, t, sym, 600.0, None);
        }
    }
    // The same bounds on the checker's own engine, without and with sleep sets.
    for sym in [false, true] {
        for sleep in [SleepSets::Off, SleepSets::On] {
            compact.push(compact_case("tlc", &tlc, sym, 600.0, sleep));
        }
    }
    // The checker's own BFS on the same bound, against stateright's BFS (one thread and all),
    // and with symmetry (which stateright's BFS ignores).
    for threads in [Some(1), None] {
        compact.push(compact_bfs_case("tlc", &tlc, threads, false, 600.0));
    }
    compact.push(compact_bfs_case("tlc", &tlc, Some(1), true, 600.0));
    // The standard bounds as the gate runs them (with symmetry; without, the default bound
    // alone has grown past 66 M states and does not finish in 10 minutes on one thread).
    for std_cfg in standard()
        .into_iter()
        .filter(|s| matches!(s.name, "default" | "reordering" | "duplicating"))
    {
        let (name, b) = (std_cfg.name, &std_cfg.bound);
        if name == "default" {
            // Per-thread speed on the same work: one thread explores the same states in the
            // same order in every build of one model, so a cap on generated states gives
            // every build the same prefix to explore (`--baseline` runs it too).
            add(name, b, Dfs, Some(1), false, 600.0, Some(DEFAULT_PREFIX));
            add(name, b, Bfs, None, false, 600.0, Some(DEFAULT_PREFIX));
            add(name, b, Dfs, Some(1), true, 600.0, None);
            // The same work on the checker's own engine, without and with sleep sets.
            for sleep in [SleepSets::Off, SleepSets::On] {
                compact.push(compact_case(name, b, true, 600.0, sleep));
            }
            // The capped prefix on the checker's own engine: its depth-first order is not
            // stateright's, so its 20 M generated states hold a slightly different set of
            // distinct states (the comparison says how many each found).
            compact.push(Case {
                name: format!("{name}/dfs-1-20M-compact"),
                max_states: Some(DEFAULT_PREFIX),
                ..compact_case(name, b, false, 600.0, SleepSets::Off)
            });
        }
        add(name, b, Dfs, None, true, 600.0, None);
    }
    let issue_large = checker_engine_bound();
    add(
        "large-nd",
        &issue_large,
        Dfs,
        None,
        true,
        large_timeout,
        None,
    );
    // DFS memory per state on the issue's large bound: the compact engine's table.
    compact.push(compact_case(
        "large-nd",
        &issue_large,
        true,
        large_timeout,
        SleepSets::Off,
    ));
    let large = large_bound();
    add("large", &large, Dfs, None, true, large_timeout, None);
    // stateright's BFS holds its whole frontier as full states: on the large bound it reached
    // 23 GB (2.1 KB per distinct state) within 300 s on this 24 GiB machine. Cap it well below.
    add(
        "large",
        &large,
        Bfs,
        None,
        false,
        large_timeout,
        Some(LARGE_BFS_MAX_STATES),
    );
    // BFS memory per state on both large bounds: the compact frontier and table.
    compact.push(compact_bfs_case(
        "large",
        &large,
        None,
        false,
        large_timeout,
    ));
    compact.push(compact_bfs_case(
        "large-nd",
        &issue_large,
        None,
        true,
        large_timeout,
    ));
    v.extend(compact);
    v.extend(timely_cases(large_timeout));
    v
}

/// A BFS case on the checker's own engine: `bound/bfs-<threads>[-sym]-compact`.
fn compact_bfs_case(
    bound_name: &'static str,
    bound: &ModelConfig,
    threads: Option<usize>,
    symmetry: bool,
    timeout: f64,
) -> Case {
    let t = threads.map(|n| n.to_string()).unwrap_or("all".into());
    let sym = if symmetry { "-sym" } else { "" };
    Case {
        name: format!("{bound_name}/bfs-{t}{sym}-compact"),
        strategy: Strategy::Bfs,
        threads,
        ..compact_case(bound_name, bound, symmetry, timeout, SleepSets::Off)
    }
}

/// A case on the checker's own engine (one thread): `bound/dfs-1[-sym]-compact[-sleep]`.
fn compact_case(
    bound_name: &'static str,
    bound: &ModelConfig,
    symmetry: bool,
    timeout: f64,
    sleep: SleepSets,
) -> Case {
    let sym = if symmetry { "-sym" } else { "" };
    let sleep_name = if sleep == SleepSets::On { "-sleep" } else { "" };
    Case {
        name: format!("{bound_name}/dfs-1{sym}-compact{sleep_name}"),
        bound_name,
        bound: bound.clone(),
        strategy: Strategy::Dfs,
        threads: Some(1),
        symmetry,
        timeout,
        max_states: None,
        compact: Some(sleep),
        timely: None,
    }
}

/// The distributed engine's cases (issue "One bound on many cores and many machines"), after
/// the compact BFS on the same bound and threads: `timely/<bound>/bfs-<workers>[-sym]-<engine>`
/// where `PxT` workers are P processes of T threads. Every engine explores the same classes,
/// so the ratios of distinct states per second compare the same work, in one run.
fn timely_cases(large_timeout: f64) -> Vec<Case> {
    let mut v = Vec::new();
    // The main job's bound: the node's configuration (`check` without flags).
    let node = crate::standard::node();
    let large = checker_engine_bound();
    let mut add = |bound_name: &'static str,
                   bound: &ModelConfig,
                   processes: Option<usize>,
                   threads: usize,
                   timeout: f64| {
        let workers = match processes {
            Some(p) if p > 1 => format!("{p}x{threads}"),
            _ => threads.to_string(),
        };
        let engine = if processes.is_some() {
            "timely"
        } else {
            "compact"
        };
        v.push(Case {
            name: format!("timely/{bound_name}/bfs-{workers}-sym-{engine}"),
            strategy: Strategy::Bfs,
            threads: Some(threads),
            timely: processes,
            ..compact_case(bound_name, bound, true, timeout, SleepSets::Off)
        });
    };
    // One worker against the compact BFS on one thread; two workers as threads and as
    // processes against one (and the compact BFS on two threads: what two cores give here).
    add("node", &node, None, 1, 900.0);
    add("node", &node, Some(1), 1, 900.0);
    add("node", &node, None, 2, 900.0);
    add("node", &node, Some(1), 2, 900.0);
    add("node", &node, Some(2), 1, 900.0);
    // Memory per class on the large bound (stopped by the clock: it does not finish here),
    // and four processes on this machine for correctness (the scaling table needs more cores).
    add("large-nd", &large, None, 2, large_timeout);
    add("large-nd", &large, Some(1), 2, large_timeout);
    add("large-nd", &large, Some(4), 1, large_timeout);
    v
}

/// Generated-state cap of the large bound's BFS run (about 9 GB there).
const LARGE_BFS_MAX_STATES: usize = 20_000_000;

/// Generated-state cap of the default bound's runs without symmetry: the same prefix of the
/// search for every build (about 5 M distinct states).
const DEFAULT_PREFIX: usize = 20_000_000;

/// One case's figures.
#[derive(Serialize)]
pub struct Run {
    pub name: String,
    pub bound: &'static str,
    pub strategy: &'static str,
    pub threads: usize,
    pub symmetry: bool,
    pub complete: bool,
    pub unique_states: u64,
    pub total_states: u64,
    pub seconds: f64,
    pub unique_states_per_second: f64,
    pub peak_memory_bytes: Option<u64>,
    pub bytes_per_unique_state: Option<f64>,
    /// The run's verdict line (a benchmark run must still verify, or say why not).
    pub exit_code: i32,
    /// `--engine timely`: its processes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<usize>,
    /// `--engine timely`: the workers' distinct states summed over the run's (1.0: every
    /// state explored once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplication: Option<f64>,
    /// `--engine timely`: a process's peak memory over the states its workers own, the most
    /// of any process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_owned_state: Option<f64>,
}

#[derive(Serialize)]
struct Machine {
    cores: usize,
    cpu: String,
    memory_bytes: Option<u64>,
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|k| k * 1024);
    Machine {
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu,
        memory_bytes,
    }
}

/// The 1-minute load average (/proc/loadavg), where the OS reports it.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The `check` flags that reproduce `c`.
pub fn check_args(c: &Case) -> Vec<String> {
    let b = &c.bound;
    let mut a: Vec<String> = vec![
        "check".into(),
        // The flags below set the bound; every other flag starts from the bound named here
        // (without it, `check` would start from the node's configuration).
        if c.bound_name == "node" {
            "--bound=node".into()
        } else {
            "--bound=plain".into()
        },
        format!("--servers={}", b.servers),
        format!("--max-term={}", b.max_term),
        format!("--values={}", b.values),
        format!("--reads={}", b.reads),
        format!("--max-crashes={}", b.max_crashes),
        format!("--network={}", b.network.name()),
        format!("--lossy={}", b.lossy),
        format!("--max-in-flight={}", b.max_in_flight),
        format!("--strategy={}", c.strategy.name()),
        format!("--timeout={}", c.timeout),
        "--progress=0".into(),
        "--shorten-budget=0".into(),
    ];
    if b.fast_backup {
        a.push("--fast-backup".into());
    }
    if !b.write_behind {
        a.push("--write-behind=false".into());
    }
    if b.read_index {
        a.push("--read-index".into());
    }
    if let Some(n) = b.max_entries_per_append {
        a.push(format!("--max-entries-per-append={n}"));
    }
    if let Some(t) = c.threads {
        a.push(format!("--threads={t}"));
    }
    if c.symmetry {
        a.push("--symmetry".into());
    }
    if let Some(m) = c.max_states {
        a.push(format!("--max-states={m}"));
    }
    if c.timely.is_some() {
        a.push("--engine=timely".into());
    } else if let Some(sleep) = c.compact {
        a.push("--engine=compact".into());
        if sleep == SleepSets::On {
            a.push("--sleep-sets".into());
        }
    }
    a
}

/// A hostfile of `n` free ports on this machine, in `scratch`.
fn local_hostfile(scratch: &Path, n: usize) -> Result<PathBuf, String> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("no free port: {e}"))?;
    let text: String = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| format!("{a}\n"))
        .collect();
    let path = scratch.join("bench-hosts");
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

fn run_case(exe: &Path, c: &Case, scratch: &Path) -> Result<Run, String> {
    let processes = c.timely.unwrap_or(1);
    let hosts = if processes > 1 {
        Some(local_hostfile(scratch, processes)?)
    } else {
        None
    };
    let mut children = Vec::new();
    for p in 0..processes {
        let json = scratch.join(format!("bench-case-{p}.json"));
        let _ = std::fs::remove_file(&json);
        let mut args = check_args(c);
        args.push(format!("--json={}", json.display()));
        if let Some(h) = &hosts {
            args.push(format!("--processes={processes}"));
            args.push(format!("--process={p}"));
            args.push(format!("--hostfile={}", h.display()));
        }
        let child = Command::new(exe)
            .args(&args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        children.push((child, json));
    }
    let mut reports = Vec::new();
    let mut status = None;
    for (mut child, json) in children {
        let s = child
            .wait()
            .map_err(|e| format!("cannot wait for {}: {e}", exe.display()))?;
        let raw = std::fs::read_to_string(&json).map_err(|e| {
            format!(
                "{}: the check wrote no report ({e}); exit status {s}",
                c.name
            )
        })?;
        let v: serde_json::Value =
            serde_json::from_str(&raw).map_err(|e| format!("{}: bad report: {e}", c.name))?;
        status.get_or_insert(s);
        reports.push(v);
    }
    let status = status.expect("at least one process");
    let v = &reports[0];
    let unique = v["unique_states"].as_u64().unwrap_or(0);
    let seconds = v["seconds"].as_f64().unwrap_or(0.0);
    // Every process's own peak: the run's memory is their sum.
    let peak = reports
        .iter()
        .map(|r| r["peak_memory_bytes"].as_u64())
        .sum::<Option<u64>>();
    let workers = v["engine"]["workers"].as_array();
    let owned: Option<u64> = workers.map(|w| w.iter().filter_map(|w| w["distinct"].as_u64()).sum());
    // Per process: its peak over the classes its workers own; the most of any process.
    let threads_per_process = c.threads.unwrap_or(1) as u64;
    let per_worker = workers.and_then(|w| {
        reports
            .iter()
            .enumerate()
            .filter_map(|(p, r)| {
                let mine: u64 = w
                    .iter()
                    .filter(|w| {
                        w["worker"].as_u64().map(|i| i / threads_per_process) == Some(p as u64)
                    })
                    .filter_map(|w| w["distinct"].as_u64())
                    .sum();
                let peak = r["peak_memory_bytes"].as_u64()?;
                (mine > 0).then(|| peak as f64 / mine as f64)
            })
            .reduce(f64::max)
    });
    Ok(Run {
        name: c.name.clone(),
        bound: c.bound_name,
        strategy: c.strategy.name(),
        threads: v["threads"].as_u64().unwrap_or(0) as usize,
        symmetry: c.symmetry,
        complete: v["complete"].as_bool().unwrap_or(false),
        unique_states: unique,
        total_states: v["total_states"].as_u64().unwrap_or(0),
        seconds,
        unique_states_per_second: if seconds > 0.0 {
            unique as f64 / seconds
        } else {
            0.0
        },
        peak_memory_bytes: peak,
        bytes_per_unique_state: peak
            .filter(|_| unique > 0)
            .map(|p| p as f64 / unique as f64),
        exit_code: status.code().unwrap_or(-1),
        processes: c.timely,
        duplication: owned
            .filter(|_| unique > 0)
            .map(|o| o as f64 / unique as f64),
        bytes_per_owned_state: per_worker,
    })
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Where to write the figures (the table goes to README.md beside it).
    #[arg(long, default_value = "results/bench.json")]
    pub json: PathBuf,
    /// Only the cases whose name starts with this (e.g. `tlc/`, `default/dfs-1`).
    #[arg(long)]
    pub only: Option<String>,
    /// Seconds for each run of the large bound (which does not finish here).
    #[arg(long, default_value_t = 300.0)]
    pub large_timeout: f64,
    /// List the cases with their `check` command lines and exit.
    #[arg(long)]
    pub list: bool,
    /// Another build of raft-check (an earlier commit's) to compare against in this same
    /// run: it runs the default bound's one-thread cases (its first 20 M generated states,
    /// `default/dfs-1-20M`, and the whole bound with symmetry, `default/dfs-1-sym`) beside
    /// ours on stateright's DFS and on the checker's own engine, and the ratios of distinct
    /// states per second are recorded.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
}

/// The comparisons with a `--baseline` build, as (our case, the case the baseline runs). Per
/// thread, on the same work, in the same run: the default bound's first 20 M generated states
/// (the same states in every build of one model, on stateright's DFS), and the whole default
/// bound with symmetry (the same classes in every build), on stateright's DFS and on the
/// checker's own engine (which the baseline build lacks: it runs stateright's).
const BASELINE_CASES: [(&str, &str); 4] = [
    ("default/dfs-1-20M", "default/dfs-1-20M"),
    ("default/dfs-1-20M-compact", "default/dfs-1-20M"),
    ("default/dfs-1-sym", "default/dfs-1-sym"),
    ("default/dfs-1-sym-compact", "default/dfs-1-sym"),
];

/// What a baseline build measured beside ours.
#[derive(Serialize)]
struct Comparison {
    case: String,
    /// The case the baseline build ran.
    baseline_case: String,
    /// Distinct states per second, ours ÷ the baseline's.
    speedup: f64,
    /// Both found the same number of distinct states (the same state space).
    same_states: bool,
    /// Distinct states each found.
    states: u64,
    baseline_states: u64,
}

pub fn bench(args: &BenchArgs) -> i32 {
    if !(args.large_timeout.is_finite() && args.large_timeout > 0.0) {
        return super::usage::usage_error("--large-timeout must be a positive number of seconds");
    }
    let all = cases(args.large_timeout);
    let mut list = cases(args.large_timeout);
    if let Some(only) = &args.only {
        list.retain(|c| c.name.starts_with(only.as_str()));
        if list.is_empty() {
            eprintln!("raft-check: error: bench --only {only}: no case starts with that");
            return EXIT_USAGE;
        }
    }
    if args.list {
        for c in &list {
            println!("{:<28} raft-check {}", c.name, check_args(c).join(" "));
        }
        return 0;
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("raft-check: error: cannot find this executable: {e}");
            return EXIT_USAGE;
        }
    };
    let scratch = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("raft-check: error: cannot create a scratch directory: {e}");
            return EXIT_USAGE;
        }
    };
    if let Some(dir) = args.json.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("raft-check: error: cannot create {}: {e}", dir.display());
            return EXIT_USAGE;
        }
    }
    if let Some(b) = &args.baseline {
        if !b.is_file() {
            eprintln!(
                "raft-check: error: --baseline {}: no such executable",
                b.display()
            );
            return EXIT_USAGE;
        }
    }
    let started = Instant::now();
    let load_start = load_average();
    let mut runs = Vec::new();
    let mut baseline_runs = Vec::new();
    let mut comparisons = Vec::new();
    let mut failed = false;
    println!("{}", header());
    for c in &list {
        let ours = match run_case(&exe, c, scratch.path()) {
            Ok(r) => {
                println!("{}", row(&r));
                // 0 verified, 3 incomplete (the large bound): anything else is a finding.
                failed |= r.exit_code != 0 && r.exit_code != 3;
                r
            }
            Err(e) => {
                eprintln!("raft-check: error: {e}");
                failed = true;
                continue;
            }
        };
        for (_, theirs_name) in BASELINE_CASES.iter().filter(|(o, _)| *o == c.name) {
            let Some(b) = &args.baseline else { break };
            if !baseline_runs
                .iter()
                .any(|r: &Run| r.name == format!("baseline:{theirs_name}"))
            {
                let Some(theirs_case) = all.iter().find(|k| k.name == *theirs_name) else {
                    continue;
                };
                match run_case(b, theirs_case, scratch.path()) {
                    Ok(mut theirs) => {
                        theirs.name = format!("baseline:{}", theirs.name);
                        println!("{}", row(&theirs));
                        failed |= theirs.exit_code != 0 && theirs.exit_code != 3;
                        baseline_runs.push(theirs);
                    }
                    Err(e) => {
                        eprintln!("raft-check: error: baseline: {e}");
                        failed = true;
                        continue;
                    }
                }
            }
            let theirs = baseline_runs
                .iter()
                .find(|r| r.name == format!("baseline:{theirs_name}"))
                .expect("run just above");
            if theirs.unique_states_per_second > 0.0 {
                comparisons.push(Comparison {
                    case: c.name.clone(),
                    baseline_case: theirs_name.to_string(),
                    speedup: ours.unique_states_per_second / theirs.unique_states_per_second,
                    same_states: ours.unique_states == theirs.unique_states,
                    states: ours.unique_states,
                    baseline_states: theirs.unique_states,
                });
            }
        }
        runs.push(ours);
    }
    for c in &comparisons {
        println!(
            "{}: {:.2}x the baseline's distinct states/s on {} ({})",
            c.case,
            c.speedup,
            c.baseline_case,
            if c.same_states {
                format!("same {} distinct states", c.states)
            } else {
                format!(
                    "DIFFERENT distinct states: {} here, {} there",
                    c.states, c.baseline_states
                )
            }
        );
    }
    let out = serde_json::json!({
        "machine": machine(),
        "total_seconds": started.elapsed().as_secs_f64(),
        // Other work on the machine slows every case; compare cases of one run only.
        "load_average_at_start": load_start,
        "load_average_at_end": load_average(),
        "runs": runs,
        "baseline": args.baseline.as_ref().map(|b| serde_json::json!({
            "executable": b.display().to_string(),
            "runs": baseline_runs,
            "comparisons": comparisons,
        })),
    });
    let text = serde_json::to_string_pretty(&out).expect("bench json");
    if let Err(e) = std::fs::write(&args.json, text + "\n") {
        eprintln!(
            "raft-check: error: cannot write {}: {e}",
            args.json.display()
        );
        return EXIT_USAGE;
    }
    println!("wrote {}", args.json.display());
    if let Some(dir) = args.json.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if dir.join("README.md").exists() || dir.ends_with("results") {
            if let Err(e) = crate::report::table::write_readme(dir) {
                eprintln!("raft-check: error: {e}");
                return EXIT_USAGE;
            }
            println!("regenerated {}", dir.join("README.md").display());
        }
    }
    if failed {
        1
    } else {
        0
    }
}

fn header() -> String {
    format!(
        "{:<26} {:>9} {:>12} {:>9} {:>11} {:>10} {:>8}",
        "case", "complete", "distinct", "seconds", "distinct/s", "peak MiB", "B/state"
    )
}

fn row(r: &Run) -> String {
    format!(
        "{:<26} {:>9} {:>12} {:>9.1} {:>11.0} {:>10} {:>8}",
        r.name,
        r.complete,
        r.unique_states,
        r.seconds,
        r.unique_states_per_second,
        r.peak_memory_bytes
            .map(|b| format!("{:.0}", b as f64 / (1 << 20) as f64))
            .unwrap_or("-".into()),
        r.bytes_per_unique_state
            .map(|b| format!("{b:.0}"))
            .unwrap_or("-".into()),
    )
}
