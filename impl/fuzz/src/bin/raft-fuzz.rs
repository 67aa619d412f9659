//! `raft-fuzz`: builds the libFuzzer targets with coverage instrumentation (stable rustc,
//! SanitizerCoverage through `-C passes`/`-C llvm-args`, no nightly and no cargo-fuzz), runs
//! each on a fresh or kept corpus, and reports per target what ran.
//!
//! ```text
//! raft-fuzz list
//! raft-fuzz build
//! raft-fuzz run [--runs N] [--seconds S] [--only T1,T2] [--keep-corpus] [--no-build]
//!               [--jobs J] [--json FILE] [--md FILE]
//! ```
//!
//! `run` stops at the first crash of a target (libFuzzer's default), keeps the crashing input
//! under `target/fuzz/artifacts/TARGET/`, goes on with the other targets and exits 1 if any
//! target crashed. Logs: `target/fuzz/logs/TARGET.log`. `RAFT_FUZZ_TARGET_DIR=DIR` puts all
//! of it (builds, corpora, artifacts, logs) under `DIR` instead of `target/fuzz`.

use raft_fuzz::{alloc::LIMIT, Target, TARGETS};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

const SANCOV_FLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "--cfg",
    "fuzzing",
    "-Cdebug-assertions",
    "-Coverflow-checks",
];

struct Paths {
    root: PathBuf,
    manifest: PathBuf,
    target_dir: PathBuf,
    triple: String,
}

impl Paths {
    fn new() -> Result<Self, String> {
        let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir
            .join("../..")
            .canonicalize()
            .map_err(|e| format!("workspace root: {e}"))?;
        let out = Command::new(rustc())
            .arg("-vV")
            .output()
            .map_err(|e| format!("cannot run rustc -vV: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let triple = text
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .ok_or("rustc -vV printed no host")?
            .to_string();
        Ok(Paths {
            manifest: manifest_dir.join("Cargo.toml"),
            target_dir: std::env::var_os("RAFT_FUZZ_TARGET_DIR")
                .map_or_else(|| root.join("target/fuzz"), PathBuf::from),
            root,
            triple,
        })
    }

    fn binary(&self, t: &Target) -> PathBuf {
        self.target_dir.join(&self.triple).join("fuzz").join(t.name)
    }
}

fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Builds the instrumented targets. `--target` keeps the instrumentation flags off build
/// scripts and proc macros (which are not linked with libFuzzer).
fn build(paths: &Paths, targets: &[&Target]) -> Result<(), String> {
    let mut cmd = Command::new(cargo());
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&paths.manifest)
        .args([
            "-p",
            "raft-fuzz",
            "--features",
            "libfuzzer",
            "--profile",
            "fuzz",
        ])
        .arg("--target")
        .arg(&paths.triple)
        .arg("--target-dir")
        .arg(&paths.target_dir);
    for t in targets {
        cmd.args(["--bin", t.name]);
    }
    cmd.env("RUSTFLAGS", SANCOV_FLAGS.join(" "))
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    eprintln!("raft-fuzz: building {} instrumented targets", targets.len());
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building the fuzz targets failed ({status})"));
    }
    Ok(())
}

struct Options {
    runs: Option<u64>,
    seconds: Option<u64>,
    only: Option<Vec<String>>,
    keep_corpus: bool,
    no_build: bool,
    jobs: usize,
    json: Option<PathBuf>,
    md: Option<PathBuf>,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        runs: None,
        seconds: None,
        only: None,
        keep_corpus: false,
        no_build: false,
        jobs: 1,
        json: None,
        md: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--runs" => o.runs = Some(value()?.parse().map_err(|e| format!("--runs: {e}"))?),
            "--seconds" => {
                o.seconds = Some(value()?.parse().map_err(|e| format!("--seconds: {e}"))?)
            }
            "--only" => o.only = Some(value()?.split(',').map(str::to_string).collect()),
            "--jobs" => o.jobs = value()?.parse().map_err(|e| format!("--jobs: {e}"))?,
            "--keep-corpus" => o.keep_corpus = true,
            "--no-build" => o.no_build = true,
            "--json" => o.json = Some(value()?.into()),
            "--md" => o.md = Some(value()?.into()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.runs.is_none() && o.seconds.is_none() {
        return Err("give --runs N, --seconds S or both".into());
    }
    Ok(o)
}

fn selected(only: &Option<Vec<String>>) -> Result<Vec<&'static Target>, String> {
    match only {
        None => Ok(TARGETS.iter().collect()),
        Some(names) => names
            .iter()
            .map(|n| {
                TARGETS
                    .iter()
                    .find(|t| t.name == n)
                    .ok_or_else(|| format!("no target {n} (see raft-fuzz list)"))
            })
            .collect(),
    }
}

/// The value after `key` on the last line of `log` that has it.
fn stat(log: &str, key: &str) -> Option<u64> {
    log.lines()
        .rev()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
}

/// `cov`, `ft` and the corpus size on libFuzzer's last status line.
fn last_status(log: &str) -> (Option<u64>, Option<u64>) {
    for line in log.lines().rev() {
        if !line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |k: &str| {
            words
                .iter()
                .position(|w| *w == k)
                .and_then(|i| words.get(i + 1))
                .and_then(|v| v.parse().ok())
        };
        if let Some(cov) = after("cov:") {
            return (Some(cov), after("ft:"));
        }
    }
    (None, None)
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

fn fuzz(paths: &Paths, t: &Target, o: &Options) -> Result<Value, String> {
    let corpus = paths.target_dir.join("corpus").join(t.name);
    let artifacts = paths.target_dir.join("artifacts").join(t.name);
    let logs = paths.target_dir.join("logs");
    if !o.keep_corpus {
        let _ = std::fs::remove_dir_all(&corpus);
    }
    let _ = std::fs::remove_dir_all(&artifacts);
    for dir in [&corpus, &artifacts, &logs] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let seeds = (t.seeds)();
    for (i, seed) in seeds.iter().enumerate() {
        let path = corpus.join(format!("seed-{i}"));
        std::fs::write(&path, seed).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let stats_file = paths.target_dir.join(format!("{}.alloc", t.name));
    let _ = std::fs::remove_file(&stats_file);
    let log_path = logs.join(format!("{}.log", t.name));
    let log_file =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let mut cmd = Command::new(paths.binary(t));
    if let Some(runs) = o.runs {
        cmd.arg(format!("-runs={runs}"));
    }
    if let Some(s) = o.seconds {
        cmd.arg(format!("-max_total_time={s}"));
    }
    let mut prefix = artifacts.clone().into_os_string();
    prefix.push("/");
    cmd.arg(format!("-max_len={}", t.max_len))
        .arg("-print_final_stats=1")
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg("-artifact_prefix=".to_string() + &prefix.to_string_lossy())
        .arg(&corpus)
        .env("RAFT_FUZZ_ALLOC_STATS", &stats_file)
        .stdout(Stdio::null())
        .stderr(log_file);
    let mut limits = vec![format!("{} seeds", seeds.len())];
    limits.extend(o.runs.map(|r| format!("{r} runs")));
    limits.extend(o.seconds.map(|s| format!("at most {s} s")));
    eprintln!("raft-fuzz: {} ({})", t.name, limits.join(", "));
    let start = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", paths.binary(t).display()))?;
    let seconds = start.elapsed().as_secs_f64();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let crashes: Vec<String> = files_in(&artifacts)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let executed = stat(&log, "stat::number_of_executed_units:");
    let (cov, ft) = last_status(&log);
    let alloc = std::fs::read_to_string(&stats_file).unwrap_or_default();
    let mut alloc = alloc.split_whitespace().map(|v| v.parse::<u64>().ok());
    let (peak, largest) = (alloc.next().flatten(), alloc.next().flatten());
    let ok = status.success() && crashes.is_empty() && executed.is_some();
    let result = json!({
        "target": t.name,
        "decoder": t.decoder,
        "ok": ok,
        "exit_status": status.code(),
        "inputs_executed": executed,
        "seconds": (seconds * 10.0).round() / 10.0,
        "inputs_per_second": executed.map(|n| (n as f64 / seconds).round()),
        "seeds": seeds.len(),
        "corpus_files": files_in(&corpus).len(),
        "coverage_edges": cov,
        "coverage_features": ft,
        "new_units_added": stat(&log, "stat::new_units_added:"),
        "peak_rss_mb": stat(&log, "stat::peak_rss_mb:"),
        "max_len": t.max_len,
        "max_heap_per_input_bytes": peak,
        "largest_allocation_bytes": largest,
        "crashes": crashes.len(),
        "crash_inputs": crashes,
    });
    eprintln!(
        "raft-fuzz: {}: {} inputs in {:.1} s, cov {}, {} crash(es){}",
        t.name,
        executed.map(|n| n.to_string()).unwrap_or("?".into()),
        seconds,
        cov.map(|n| n.to_string()).unwrap_or("?".into()),
        result["crashes"],
        if ok {
            String::new()
        } else {
            format!("; FAILED, see {}", log_path.display())
        }
    );
    Ok(result)
}

fn command_output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn locked_version(root: &Path, name: &str) -> Option<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).ok()?;
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l == format!("name = \"{name}\"") {
            return lines
                .next()?
                .strip_prefix("version = \"")
                .map(|v| v.trim_end_matches('"').to_string());
        }
    }
    None
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        None => "–".into(),
        Some(x) => {
            let s = format!("{}", x.round() as i64);
            let mut out = String::new();
            for (i, c) in s.chars().enumerate() {
                if i > 0 && (s.len() - i) % 3 == 0 {
                    out.push(',');
                }
                out.push(c);
            }
            out
        }
    }
}

fn markdown(report: &Value) -> String {
    let mut md = String::new();
    md.push_str("# Fuzzing every decoder\n\n");
    md.push_str(
        "Written by `raft-fuzz run` (impl/fuzz); do not edit by hand. How to run it: see \
         \"Fuzzing the decoders\" in docs/testing.md.\n\n",
    );
    md.push_str(&format!(
        "- command: `{}` (each target runs until `--runs` inputs or `--seconds`, whichever \
         comes first; targets done: {} of {})\n- tool: {}\n- rustc: {}\n- date (UTC): {}\n- allocation bound: no \
         input may hold more than {} bytes (`MAX_FRAME_LEN` + 1 MiB) live at once, nor \
         allocate one block larger (counting global allocator)\n- result: {}\n\n",
        report["command"].as_str().unwrap_or(""),
        report["targets_done"],
        report["targets_selected"],
        report["tool"].as_str().unwrap_or(""),
        report["rustc"].as_str().unwrap_or(""),
        report["date"].as_str().unwrap_or(""),
        num(&report["alloc_limit_bytes"]),
        if report["ok"].as_bool() == Some(true) {
            "every target ran without a crash"
        } else {
            "AT LEAST ONE TARGET FAILED"
        }
    ));
    md.push_str(
        "| target | inputs executed | seconds | inputs/s | corpus files | coverage (edges / features) | max heap per input (bytes) | largest allocation (bytes) | peak RSS (MB) | crashes |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    let empty = vec![];
    let targets = report["targets"].as_array().unwrap_or(&empty);
    for t in targets {
        md.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} / {} | {} | {} | {} | {} |\n",
            t["target"].as_str().unwrap_or(""),
            num(&t["inputs_executed"]),
            t["seconds"],
            num(&t["inputs_per_second"]),
            num(&t["corpus_files"]),
            num(&t["coverage_edges"]),
            num(&t["coverage_features"]),
            num(&t["max_heap_per_input_bytes"]),
            num(&t["largest_allocation_bytes"]),
            num(&t["peak_rss_mb"]),
            t["crashes"],
        ));
    }
    md.push_str("\nWhat each target decodes:\n\n");
    for t in targets {
        md.push_str(&format!(
            "- `{}`: {}\n",
            t["target"].as_str().unwrap_or(""),
            t["decoder"].as_str().unwrap_or("")
        ));
    }
    md
}

fn write_report(
    paths: &Paths,
    args: &[String],
    o: &Options,
    results: &[Value],
    ok: bool,
    selected: usize,
) -> Result<(), String> {
    let report = json!({
        "command": format!("raft-fuzz run {}", args.join(" ")),
        "tool": format!(
            "libFuzzer (libfuzzer-sys {}) with SanitizerCoverage (inline 8-bit counters, pc table, trace-compares), stable rustc, profile fuzz (debug assertions and overflow checks on), no sanitizer",
            locked_version(&paths.root, "libfuzzer-sys").unwrap_or("?".into())
        ),
        "rustc": command_output(&rustc(), &["-V"]),
        "date": command_output("date", &["-u", "+%Y-%m-%d %H:%M"]),
        "alloc_limit_bytes": LIMIT,
        "ok": ok,
        "targets_selected": selected,
        "targets_done": results.len(),
        "targets": results,
    });
    if let Some(path) = &o.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())? + "\n";
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &o.md {
        std::fs::write(path, markdown(&report)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn run(args: &[String]) -> Result<bool, String> {
    let o = parse_options(args)?;
    let paths = Paths::new()?;
    let targets = selected(&o.only)?;
    if !o.no_build {
        build(&paths, &targets)?;
    }
    // Targets run `--jobs` at a time; the report is written after every target, so that a run
    // cut short keeps what it measured.
    let done: Mutex<Vec<Option<Value>>> = Mutex::new(vec![None; targets.len()]);
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..o.jobs.clamp(1, targets.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Relaxed);
                let Some(t) = targets.get(i) else { break };
                let outcome = fuzz(&paths, t, &o).and_then(|r| {
                    let mut done = done.lock().unwrap_or_else(|p| p.into_inner());
                    done[i] = Some(r);
                    let results: Vec<Value> = done.iter().flatten().cloned().collect();
                    let ok = results.iter().all(|r| r["ok"].as_bool() == Some(true));
                    write_report(&paths, args, &o, &results, ok, targets.len())
                });
                if let Err(e) = outcome {
                    *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    break;
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let results = done.into_inner().unwrap_or_else(|p| p.into_inner());
    let ok = results
        .iter()
        .all(|r| r.as_ref().is_some_and(|r| r["ok"].as_bool() == Some(true)));
    Ok(ok)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("list") => {
            for t in TARGETS {
                println!("{}\t{}", t.name, t.decoder);
            }
            Ok(true)
        }
        Some("build") => Paths::new()
            .and_then(|p| build(&p, &TARGETS.iter().collect::<Vec<_>>()))
            .map(|()| true),
        Some("run") => run(&args[1..]),
        _ => {
            eprintln!(
                "usage: raft-fuzz list | build | run [--runs N] [--seconds S] [--only T1,T2] \
                 [--keep-corpus] [--no-build] [--jobs J] [--json FILE] [--md FILE]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("raft-fuzz: {e}");
            ExitCode::from(2)
        }
    }
}
