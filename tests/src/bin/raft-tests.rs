//! `raft-tests`: long runs that do not belong in a timed CI test.
//!
//! - `raft-tests sim-soak --seeds 1000 [--from S] [--only NAME] [--ack-before-fsync]`: every
//!   suite test of the deterministic simulator over many seeds (in parallel); prints each
//!   failing seed with its replay command. `--ack-before-fsync` runs the suite against the fake
//!   disk that acknowledges before it is durable, and reports which tests catch it.
//! - `raft-tests soak --trials 100`: the process-level soak (3 `raft-node` processes, write
//!   load, SIGKILL and restart at random times; every acknowledged write must be present and
//!   the history linearizable). `--history-dir DIR` writes each trial's client history as JSON
//!   (for `raft-tests porcupine --include DIR`). Network faults are on unless
//!   `--no-net-faults`: peer connections go through loopback proxies, and the nemesis also
//!   partitions (one-way and two-way, the leader included), delays and cuts connections.
//!
//! - `raft-tests conform-traces --seeds 50 --out DIR [--ack-before-fsync | --stale-restore |
//!   --replay-frames] [--history-dir DIR]`: traced simulator runs of the conformance scenario
//!   (crashes, 10% loss, every fifth seed duplicating), one directory per seed, for `raft-check
//!   conform DIR`; `--history-dir` also writes each run's client history as JSON (for
//!   `raft-tests porcupine --include DIR`).
//!
//! - `raft-tests porcupine --seeds 10 --out DIR [--random 300] [--include DIR]... [--report
//!   results/porcupine.md]`: client histories of simulator runs (three history scenarios, the
//!   power-failure one also on the disk that acknowledges before fsync), copies with injected
//!   violations and small random histories, written as JSON to `DIR/histories/`, each checked
//!   by our checker and by Porcupine (`tests/porcupine`, built with `go build`); exit 0 only
//!   if the two agree on every history, both catch every guaranteed violation and both find
//!   every correct run's history (`"expect": "linearizable"`) linearizable. A missing Go
//!   toolchain is a failure.
//!
//! - `raft-tests campaign --trials 100 [--seed S] [--kinds a,b,...] [--report FILE]
//!   [--history-dir DIR]`: the fault campaign (`raft_tests::campaign`): each trial a fresh
//!   3-node cluster under client load, one voter hit by one fault kind (damaged WAL or
//!   snapshot files, fsync/write errors injected with fiu-run); exit 1 on a lost write, a
//!   split brain, a non-linearizable history or checkers that disagree.
//!
//! Exit codes: 0 all passed; 1 a failure (a seed, a lost write, a violation); 2 bad usage.

use clap::{Parser, Subcommand};
use raft_tests::seeds;
use raft_tests::sim::disk::DiskFaults;
use raft_tests::soak::{self, SoakOptions};
use raft_tests::suite::{self, TestFn};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Soak runs of the Raft suite (simulated) and of the real cluster (processes)")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run every suite test of the simulator over many seeds.
    SimSoak {
        /// Number of seeds per test.
        #[arg(long, default_value_t = 1000)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Only this test (a name from the suite, e.g. figure8).
        #[arg(long)]
        only: Option<String>,
        /// Run against the broken fake disk (acknowledges fsync before data is durable).
        #[arg(long)]
        ack_before_fsync: bool,
        /// Worker threads (default: available cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Write the traces of simulator runs (the conformance scenario) for `raft-check conform`.
    ConformTraces {
        /// Number of seeds (runs).
        #[arg(long, default_value_t = 50)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// 250 ms rounds per run (a crash every third).
        #[arg(long, default_value_t = 24)]
        rounds: u32,
        /// Directory to write `seed-<S>/node-<i>.jsonl` and `run.json` into.
        #[arg(long)]
        out: PathBuf,
        /// Broken disk: acknowledges fsync before the data is durable.
        #[arg(long)]
        ack_before_fsync: bool,
        /// Broken disk: recovery restores the state of the sync before the last.
        #[arg(long)]
        stale_restore: bool,
        /// Broken transport: every Raft message reaches the core twice.
        #[arg(long)]
        replay_frames: bool,
        /// Also write each run's client history as JSON to DIR/sim-conform-seed-<S>.json (for
        /// `raft-tests porcupine --include DIR`).
        #[arg(long)]
        history_dir: Option<PathBuf>,
    },
    /// Check exported client histories with Porcupine and with our checker; compare verdicts.
    Porcupine {
        /// Simulator seeds (each: 4 scenario runs and up to 4 injected copies).
        #[arg(long, default_value_t = 10)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Small random histories (both verdicts common).
        #[arg(long, default_value_t = 300)]
        random: u64,
        /// Also check the history files of this directory (e.g. a soak's --history-dir).
        #[arg(long)]
        include: Vec<PathBuf>,
        /// Output directory (histories/, porcupine-verdicts.json, agreement.json, the binary).
        #[arg(long)]
        out: PathBuf,
        /// The Go program's directory (default: tests/porcupine of this source tree).
        #[arg(long)]
        go_dir: Option<PathBuf>,
        /// Porcupine's time limit per history, in seconds.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
        /// Also write the report (markdown) to this file (and its JSON beside it).
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Fault campaign: raft-node processes under disk faults and corrupted files.
    Campaign(CampaignArgs),
    /// Process-level soak: 3 raft-node processes, write load, random SIGKILLs and restarts.
    Soak {
        /// Number of trials.
        #[arg(long, default_value_t = 100)]
        trials: u32,
        /// Seconds of load (and kills) per trial.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// The raft-node binary (default: next to this executable).
        #[arg(long)]
        node_bin: Option<PathBuf>,
        /// Seed of the trials' random choices (default: from the clock).
        #[arg(long)]
        seed: Option<u64>,
        /// Also write the summary (markdown) to this file.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Every node writes a per-step trace to DIR/trial-<n>/ (for `raft-check conform`).
        #[arg(long)]
        trace_dir: Option<PathBuf>,
        /// Each trial's client history is written as JSON to DIR/soak-<seed>-trial-<n>.json
        /// (for `raft-tests porcupine --include DIR`).
        #[arg(long)]
        history_dir: Option<PathBuf>,
        /// No network faults: nodes connect to each other directly (only SIGKILLs). By
        /// default every peer connection goes through a loopback proxy that the soak uses to
        /// partition (one-way and two-way, the leader included), delay and cut connections.
        #[arg(long)]
        no_net_faults: bool,
        /// Every node takes a snapshot once this many entries were applied since its last one
        /// (raft-node --snapshot-entries; 0: never). Small, so that every trial compacts and
        /// nodes catch up by InstallSnapshot; with 3 or more trials, the soak fails if none
        /// installed a snapshot.
        #[arg(long, default_value_t = soak::SNAPSHOT_ENTRIES)]
        snapshot_entries: u64,
    },
}

#[derive(clap::Args, Debug)]
struct CampaignArgs {
    /// Number of trials (round-robin over the kinds).
    #[arg(long, default_value_t = 100)]
    trials: u32,
    /// Seed of the trials' random choices (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Fault kinds, comma-separated (default: all): corrupt-wal-tail,
    /// corrupt-wal-last-synced, corrupt-wal-middle, corrupt-wal-header, truncate-wal,
    /// truncate-wal-at-frame,
    /// zero-wal-range, corrupt-snapshot, fsync-eio, write-enospc.
    #[arg(long, value_delimiter = ',')]
    kinds: Vec<String>,
    /// Seconds of load before the fault, and again after it.
    #[arg(long, default_value_t = 1.5)]
    seconds: f64,
    /// The raft-node binary (default: next to this executable).
    #[arg(long)]
    node_bin: Option<PathBuf>,
    /// Also write the report (markdown) to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Each trial's client history is written as JSON to DIR/campaign-<seed>-trial-<n>.json.
    #[arg(long)]
    history_dir: Option<PathBuf>,
    /// Run only trial N of the --trials (same seed, kind and choices): a finding's replay.
    #[arg(long)]
    only_trial: Option<u32>,
}

fn conform_traces(
    seeds: u64,
    from: u64,
    rounds: u32,
    out: &std::path::Path,
    broken: raft_tests::conformance::Faults,
    history_dir: Option<&std::path::Path>,
) -> ExitCode {
    use rayon::prelude::*;
    let start = Instant::now();
    use raft_tests::conformance::{trace_counts, TraceCounts};
    let runs: Vec<(TraceCounts, Option<String>)> = (from..from + seeds)
        .into_par_iter()
        .map(|seed| {
            let mut faults = raft_tests::conformance::ci_faults(seed);
            faults.disk = broken.disk;
            faults.replay_frames = broken.replay_frames;
            let sim = raft_tests::conformance::traced_run(seed, faults, rounds);
            let dir = out.join(format!("seed-{seed}"));
            let mut failure = sim
                .write_traces(&dir)
                .err()
                .map(|e| format!("{}: {e}", dir.display()));
            let counts = trace_counts(&sim);
            if let (Some(h), None) = (history_dir, &failure) {
                let is_broken = broken.disk.ack_before_fsync
                    || broken.disk.stale_restore
                    || broken.replay_frames;
                let note = format!(
                    "conform-traces seed {seed}, {rounds} rounds: {} leadership transfers, {} \
                     membership changes proposed, {} snapshots taken, {} installed",
                    counts.transfers, counts.changes, counts.compactions, counts.installs
                );
                let command = format!(
                    "raft-tests conform-traces --seeds {seeds} --from {from} --rounds {rounds}{}{}{}",
                    if broken.disk.ack_before_fsync { " --ack-before-fsync" } else { "" },
                    if broken.disk.stale_restore { " --stale-restore" } else { "" },
                    if broken.replay_frames { " --replay-frames" } else { "" },
                );
                failure = raft_tests::history_export::write_conform_history(
                    h,
                    seed,
                    &sim.history,
                    is_broken,
                    &command,
                    &note,
                )
                .err()
                .map(|e| format!("{}: {e}", h.display()));
            }
            (counts, failure)
        })
        .collect();
    let failures: Vec<&String> = runs.iter().filter_map(|(_, f)| f.as_ref()).collect();
    for f in &failures {
        eprintln!("raft-tests: cannot write {f}");
    }
    let c = runs
        .iter()
        .fold(TraceCounts::default(), |sum, (c, _)| sum + *c);
    let installing = runs.iter().filter(|(c, _)| c.installs > 0).count();
    println!(
        "conform-traces: {seeds} runs written to {} ({:.1} s): {} leadership transfers, {} \
         membership changes proposed, {} snapshots taken, {} installed ({installing} runs with \
         an install)",
        out.display(),
        start.elapsed().as_secs_f64(),
        c.transfers,
        c.changes,
        c.compactions,
        c.installs,
    );
    // The scenario must exercise compaction: traces without Compact steps or InstallSnapshot
    // messages would leave §7 unchecked (a few seeds may lack an install; 5 or more not all).
    let mut exit = if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if seeds >= 5 && (c.compactions == 0 || c.installs == 0) {
        eprintln!(
            "raft-tests: the runs took {} snapshots and installed {}: the scenario no longer \
             exercises compaction",
            c.compactions, c.installs
        );
        exit = ExitCode::from(1);
    }
    exit
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match args.command {
        Cmd::SimSoak {
            seeds,
            from,
            only,
            ack_before_fsync,
            threads,
        } => sim_soak(seeds, from, only, ack_before_fsync, threads),
        Cmd::ConformTraces {
            seeds,
            from,
            rounds,
            out,
            ack_before_fsync,
            stale_restore,
            replay_frames,
            history_dir,
        } => {
            let broken = raft_tests::conformance::Faults {
                disk: DiskFaults {
                    ack_before_fsync,
                    stale_restore,
                    ..DiskFaults::default()
                },
                replay_frames,
                duplicate: 0.0,
            };
            conform_traces(seeds, from, rounds, &out, broken, history_dir.as_deref())
        }
        Cmd::Porcupine {
            seeds,
            from,
            random,
            include,
            out,
            go_dir,
            timeout_secs,
            report,
        } => {
            let options = raft_tests::history_export::AgreementOptions {
                seeds,
                from,
                random,
                include,
                out,
                go_dir: go_dir.unwrap_or_else(|| {
                    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/porcupine"))
                }),
                timeout_secs,
            };
            porcupine(&options, report)
        }
        Cmd::Campaign(args) => campaign(args),
        Cmd::Soak {
            trials,
            seconds,
            node_bin,
            seed,
            report,
            trace_dir,
            history_dir,
            no_net_faults,
            snapshot_entries,
        } => {
            let node_bin = match node_bin.or_else(default_node_bin) {
                Some(p) if p.is_file() => p,
                Some(p) => {
                    eprintln!(
                        "raft-tests: no raft-node binary at {} (build it: cargo build --release -p raft-impl, or pass --node-bin)",
                        p.display()
                    );
                    return ExitCode::from(2);
                }
                None => {
                    eprintln!("raft-tests: cannot locate raft-node; pass --node-bin");
                    return ExitCode::from(2);
                }
            };
            if trials == 0 || !(0.5..=600.0).contains(&seconds) {
                eprintln!("raft-tests: need --trials ≥ 1 and 0.5 ≤ --seconds ≤ 600");
                return ExitCode::from(2);
            }
            let options = SoakOptions {
                trials,
                load: std::time::Duration::from_secs_f64(seconds),
                node_bin,
                seed: seed.unwrap_or_else(|| fastrand::u64(..)),
                trace_dir,
                history_dir,
                net_faults: !no_net_faults,
                snapshot_entries,
            };
            match soak::run(&options) {
                Ok(summary) => {
                    let text = summary.markdown(&options);
                    if let Err(code) = print_and_write(&text, report.as_deref()) {
                        return code;
                    }
                    if summary.ok() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("raft-tests: soak: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn campaign(args: CampaignArgs) -> ExitCode {
    use raft_tests::campaign::{self, CampaignOptions, FaultKind};
    let CampaignArgs {
        trials,
        seed,
        kinds,
        seconds,
        node_bin,
        report,
        history_dir,
        only_trial,
    } = args;
    let node_bin = match node_bin.or_else(default_node_bin) {
        Some(p) if p.is_file() => p,
        _ => {
            eprintln!("raft-tests: no raft-node binary (cargo build --release -p raft-impl, or pass --node-bin)");
            return ExitCode::from(2);
        }
    };
    let mut parsed = Vec::new();
    for k in &kinds {
        match FaultKind::parse(k) {
            Some(k) => parsed.push(k),
            None => {
                eprintln!(
                    "raft-tests: unknown fault kind {k}; known: {}",
                    FaultKind::ALL.map(|k| k.name()).join(",")
                );
                return ExitCode::from(2);
            }
        }
    }
    if parsed.is_empty() {
        parsed = FaultKind::ALL.to_vec();
    }
    if trials == 0 || !(0.2..=600.0).contains(&seconds) {
        eprintln!("raft-tests: need --trials ≥ 1 and 0.2 ≤ --seconds ≤ 600");
        return ExitCode::from(2);
    }
    let porcupine_dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/porcupine"));
    let porcupine_dir = match raft_tests::history_export::go_missing() {
        None => Some(porcupine_dir),
        Some(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            eprintln!("raft-tests: campaign: {why} (Porcupine may not be skipped under CI=true)");
            return ExitCode::from(1);
        }
        Some(why) => {
            eprintln!("raft-tests: campaign: Porcupine not run: {why}");
            None
        }
    };
    let options = CampaignOptions {
        trials,
        seed: seed.unwrap_or_else(|| fastrand::u64(..)),
        kinds: parsed,
        node_bin,
        history_dir,
        load: std::time::Duration::from_secs_f64(seconds),
        porcupine_dir,
        only_trial,
    };
    // The commit measured: the tree as it is when the run starts.
    let commit = source_commit();
    let summary = match campaign::run(&options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("raft-tests: campaign: {e}");
            return ExitCode::from(1);
        }
    };
    let mut command = options.command();
    if let Some(t) = only_trial {
        command += &format!(" --only-trial {t}");
    }
    if let Some(r) = &report {
        command += &format!(" --report {}", r.display());
    }
    let text = summary.markdown(&options, &command, &commit);
    if let Err(code) = print_and_write(&text, report.as_deref()) {
        return code;
    }
    if summary.ok() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "raft-tests: campaign: {} of {} trials failed ({} writes lost)",
            summary.trials.iter().filter(|t| t.failed()).count(),
            summary.trials.len(),
            summary.lost()
        );
        ExitCode::from(1)
    }
}

fn porcupine(
    options: &raft_tests::history_export::AgreementOptions,
    report: Option<PathBuf>,
) -> ExitCode {
    if options.seeds + options.random == 0 && options.include.is_empty() {
        eprintln!("raft-tests: nothing to check (--seeds 0, --random 0, no --include)");
        return ExitCode::from(2);
    }
    if let Err(e) = std::fs::create_dir_all(&options.out) {
        eprintln!("raft-tests: {}: {e}", options.out.display());
        return ExitCode::from(2);
    }
    let agreement = match raft_tests::history_export::agreement(options) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("raft-tests: porcupine: {e}");
            return ExitCode::from(1);
        }
    };
    let mut command = format!(
        "raft-tests porcupine --seeds {} --from {} --random {} --timeout-secs {}",
        options.seeds, options.from, options.random, options.timeout_secs
    );
    for i in &options.include {
        command += &format!(" --include {}", i.display());
    }
    command += &format!(" --out {}", options.out.display());
    if let Some(r) = &report {
        command += &format!(" --report {}", r.display());
    }
    let text = agreement.markdown(options, &command, &source_commit());
    println!("{text}");
    let json = serde_json::to_string_pretty(&agreement.to_json()).unwrap_or_default() + "\n";
    let mut paths = vec![(options.out.join("agreement.json"), json.clone())];
    if let Some(path) = report {
        paths.push((path.with_extension("json"), json));
        paths.push((path, text));
    }
    for (path, body) in paths {
        if let Err(e) = std::fs::write(&path, body) {
            eprintln!("raft-tests: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    if agreement.ok() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "raft-tests: porcupine: {} disagreements, {} guaranteed violations passed",
            agreement.disagreements().len(),
            agreement.missed().len()
        );
        ExitCode::from(1)
    }
}

/// The commit of the source tree this binary was run from (`git rev-parse HEAD` in the
/// workspace, "+ uncommitted changes" when `git status` shows any), or why it is unknown.
fn source_commit() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(head) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(st) if st.is_empty() => format!("`{head}`"),
            _ => format!("`{head}` + uncommitted changes"),
        },
        None => "unknown (not a git checkout)".into(),
    }
}

fn default_node_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join("raft-node"))
}

fn sim_soak(
    count: u64,
    from: u64,
    only: Option<String>,
    ack_before_fsync: bool,
    threads: Option<usize>,
) -> ExitCode {
    let tests: Vec<(&str, TestFn)> = match &only {
        Some(name) => match suite::find(name) {
            Some(f) => vec![(
                suite::SUITE
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or("", |(n, _)| n),
                f,
            )],
            None => {
                let names: Vec<&str> = suite::SUITE.iter().map(|(n, _)| *n).collect();
                eprintln!(
                    "raft-tests: no suite test {name:?}; tests: {}",
                    names.join(", ")
                );
                return ExitCode::from(2);
            }
        },
        None => suite::SUITE.to_vec(),
    };
    if count == 0 {
        eprintln!("raft-tests: --seeds must be at least 1");
        return ExitCode::from(2);
    }
    let faults = DiskFaults {
        ack_before_fsync,
        ..DiskFaults::default()
    };
    let jobs: Vec<(usize, u64)> = (0..tests.len())
        .flat_map(|t| (from..from + count).map(move |s| (t, s)))
        .collect();
    let threads = threads
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .max(1);
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<(usize, u64, String)>> = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(t, seed)) = jobs.get(k) else {
                    return;
                };
                let result = seeds::run(tests[t].1, &[seed], faults);
                if let Some((_, msg)) = result.into_iter().next() {
                    let first_line = msg.lines().next().unwrap_or("").to_string();
                    if let Ok(mut f) = failures.lock() {
                        f.push((t, seed, first_line));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_default();
    failures.sort();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sim-soak: {} tests × {count} seeds (from {from}){} in {secs:.1} s on {threads} threads",
        tests.len(),
        if ack_before_fsync {
            ", fake disk acknowledging before fsync"
        } else {
            ""
        }
    );
    for (t, (name, _)) in tests.iter().enumerate() {
        let failed: Vec<&(usize, u64, String)> = failures.iter().filter(|f| f.0 == t).collect();
        println!("  {name:<32} {:>5} / {count} failed", failed.len());
        for (_, seed, msg) in failed.iter().take(3) {
            println!("      seed={seed}: {msg}");
            if !ack_before_fsync {
                println!("      replay: {}", seeds::replay_command(name, *seed));
            }
        }
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Prints a report and writes it to `path` too, if given; exit code 1 if it cannot be written.
fn print_and_write(text: &str, path: Option<&std::path::Path>) -> Result<(), ExitCode> {
    println!("{text}");
    if let Some(path) = path {
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("raft-tests: cannot write {}: {e}", path.display());
            return Err(ExitCode::from(1));
        }
    }
    Ok(())
}
