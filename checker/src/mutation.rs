//! `raft-check mutation`: mutation testing of raft-core's rules with cargo-mutants, each mutant
//! judged by the mutation gate (`raft-check gate --quick`, run by checker/tests/mutation_gate.rs;
//! configuration in .cargo/mutants.toml). Writes results/mutation.json and results/mutation.md.
//!
//! Steps: install cargo-mutants (pinned) if it is missing; check that the unmutated tree passes
//! the mutation gate; run `cargo mutants`; read its outcomes and write the results. cargo-mutants
//! 27 runs its own baseline on the mutated package's tests rather than on `test_package`'s, so
//! the baseline is run here and cargo-mutants is told to skip its own.

use crate::report::{EXIT_OK, EXIT_USAGE, EXIT_VIOLATION};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The cargo-mutants release the configuration was written for.
pub const CARGO_MUTANTS_VERSION: &str = "27.1.0";
/// Seconds a mutant's build or test may take: a survivor explores every quick configuration
/// (about a minute in the mutants profile on 2 cores), a hang is cut at this.
const TIMEOUT_SECONDS: u32 = 400;

pub struct MutationArgs {
    pub results: PathBuf,
    pub out: PathBuf,
    /// Only turn an existing run's outcomes into results.
    pub report_only: bool,
    /// Skip mutants a previous run (in `out`) caught, and merge with results/mutation.json.
    pub iterate: bool,
    /// Passed to cargo mutants as they are (e.g. `--shard 0/4`, `-F REGEX`).
    pub extra: Vec<String>,
}

/// One mutant's outcome.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MutantOutcome {
    pub name: String,
    /// caught | missed | timeout | unviable
    pub outcome: String,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct MutationResults {
    pub cargo_mutants_version: String,
    pub judged_by: String,
    pub total: usize,
    pub caught: usize,
    pub missed: usize,
    pub timeouts: usize,
    pub unviable: usize,
    /// Wall time of the cargo-mutants runs that produced these outcomes, summed.
    pub wall_seconds: f64,
    /// The exclusions of .cargo/mutants.toml, each with its committed reason.
    pub excluded: Vec<Exclusion>,
    pub mutants: Vec<MutantOutcome>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Exclusion {
    pub pattern: String,
    pub reason: String,
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

fn ensure_cargo_mutants() -> Result<(), String> {
    let installed = Command::new("cargo")
        .args(["mutants", "--version"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if installed
        .as_deref()
        .is_some_and(|v| v.ends_with(CARGO_MUTANTS_VERSION))
    {
        return Ok(());
    }
    eprintln!("mutation: installing cargo-mutants {CARGO_MUTANTS_VERSION} (cargo install)");
    run(Command::new("cargo").args([
        "install",
        "cargo-mutants",
        "--locked",
        "--version",
        CARGO_MUTANTS_VERSION,
    ]))
}

/// The `exclude_re` patterns of .cargo/mutants.toml with the comment lines above each.
pub fn exclusions(toml: &str) -> Vec<Exclusion> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut comment: Vec<String> = Vec::new();
    for line in toml.lines() {
        let t = line.trim();
        if t.starts_with("exclude_re") {
            inside = true;
            comment.clear();
            continue;
        }
        if !inside {
            continue;
        }
        if t.starts_with(']') {
            break;
        }
        if let Some(c) = t.strip_prefix('#') {
            comment.push(c.trim().to_string());
        } else if let Some(p) = t.strip_prefix('"') {
            let pattern = p.trim_end_matches(',').trim_end_matches('"');
            out.push(Exclusion {
                pattern: pattern.replace("\\\\", "\\"),
                reason: comment.join(" "),
            });
        }
    }
    out
}

#[derive(Deserialize)]
struct Outcomes {
    outcomes: Vec<serde_json::Value>,
    start_time: Option<String>,
    end_time: Option<String>,
}

/// Seconds between two RFC 3339 UTC times as cargo-mutants writes them.
fn seconds_between(start: &str, end: &str) -> Option<f64> {
    fn secs(t: &str) -> Option<f64> {
        let (date, time) = t.trim_end_matches('Z').split_once('T')?;
        let d: Vec<i64> = date
            .split('-')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
        let h: Vec<i64> = hms
            .split(':')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let (y, m, day) = (d[0], d[1], d[2]);
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe;
        let frac: f64 = format!("0.{frac}").parse().ok()?;
        Some((days * 86_400 + h[0] * 3600 + h[1] * 60 + h[2]) as f64 + frac)
    }
    Some(secs(end)? - secs(start)?)
}

fn read_outcomes(out: &Path) -> Result<(Vec<MutantOutcome>, f64), String> {
    let file = out.join("mutants.out").join("outcomes.json");
    let raw = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let parsed: Outcomes = serde_json::from_str(&raw)
        .map_err(|e| format!("{} is not cargo-mutants' outcomes: {e}", file.display()))?;
    let mut mutants = Vec::new();
    for o in &parsed.outcomes {
        let Some(name) = o["scenario"]["Mutant"]["name"].as_str() else {
            continue; // the baseline
        };
        let outcome = match o["summary"].as_str().unwrap_or_default() {
            "CaughtMutant" => "caught",
            "MissedMutant" => "missed",
            "Timeout" => "timeout",
            "Unviable" => "unviable",
            other => return Err(format!("{name}: unknown outcome '{other}'")),
        };
        mutants.push(MutantOutcome {
            name: name.to_string(),
            outcome: outcome.to_string(),
        });
    }
    let wall = match (&parsed.start_time, &parsed.end_time) {
        (Some(s), Some(e)) => seconds_between(s, e).unwrap_or(0.0),
        _ => 0.0,
    };
    Ok((mutants, wall))
}

pub fn results(
    mutants: BTreeMap<String, String>,
    wall_seconds: f64,
    excluded: Vec<Exclusion>,
) -> MutationResults {
    let count = |o: &str| mutants.values().filter(|v| *v == o).count();
    MutationResults {
        cargo_mutants_version: CARGO_MUTANTS_VERSION.to_string(),
        judged_by: "raft-check gate --quick (checker/tests/mutation_gate.rs)".to_string(),
        total: mutants.len(),
        caught: count("caught"),
        missed: count("missed"),
        timeouts: count("timeout"),
        unviable: count("unviable"),
        wall_seconds,
        excluded,
        mutants: mutants
            .into_iter()
            .map(|(name, outcome)| MutantOutcome { name, outcome })
            .collect(),
    }
}

pub fn markdown(r: &MutationResults) -> String {
    let mut s = String::new();
    s.push_str("# Mutation testing of raft-core's rules\n\n");
    s.push_str(&format!(
        "Produced by `raft-check mutation` (cargo-mutants {}, configuration in \
         `.cargo/mutants.toml`). Each mutant is judged by the mutation gate alone: {}. Unit \
         tests do not count.\n\n",
        r.cargo_mutants_version, r.judged_by
    ));
    let viable = r.total - r.unviable;
    s.push_str("| mutants | caught | missed | timeouts | unviable | wall time |\n");
    s.push_str("|---:|---:|---:|---:|---:|---:|\n");
    s.push_str(&format!(
        "| {} | {} | {} | {} | {} | {:.0} min |\n\n",
        r.total,
        r.caught,
        r.missed,
        r.timeouts,
        r.unviable,
        r.wall_seconds / 60.0
    ));
    if viable > 0 {
        s.push_str(&format!(
            "Mutation score (caught ÷ viable): {:.1}%.\n\n",
            100.0 * r.caught as f64 / viable as f64
        ));
    }
    let list = |s: &mut String, what: &str, title: &str| {
        let names: Vec<_> = r.mutants.iter().filter(|m| m.outcome == what).collect();
        if names.is_empty() {
            return;
        }
        s.push_str(&format!("## {title}\n\n"));
        for m in names {
            s.push_str(&format!("- `{}`\n", m.name));
        }
        s.push('\n');
    };
    list(&mut s, "missed", "Missed");
    list(&mut s, "timeout", "Timeouts");
    s.push_str("## Excluded, each with its reason (from `.cargo/mutants.toml`)\n\n");
    for e in &r.excluded {
        s.push_str(&format!("- `{}`: {}\n", e.pattern, e.reason));
    }
    s.push('\n');
    list(&mut s, "unviable", "Unviable (do not compile)");
    s
}

pub fn mutation(args: &MutationArgs) -> i32 {
    match mutation_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("raft-check: error: mutation: {e}");
            EXIT_USAGE
        }
    }
}

fn mutation_inner(args: &MutationArgs) -> Result<i32, String> {
    let toml = std::fs::read_to_string(".cargo/mutants.toml").map_err(|e| {
        format!("cannot read .cargo/mutants.toml (run from the workspace root): {e}")
    })?;
    let mut wall = 0.0;
    if !args.report_only {
        ensure_cargo_mutants()?;
        eprintln!("mutation: the unmutated tree must pass the mutation gate");
        run(Command::new("cargo").args([
            "test",
            "--profile",
            "mutants",
            "-p",
            "raft-checker",
            "--test",
            "mutation_gate",
        ]))?;
        let start = Instant::now();
        let timeout = TIMEOUT_SECONDS.to_string();
        let mut cmd = Command::new("cargo");
        cmd.args(["mutants", "--baseline", "skip", "--timeout", &timeout])
            .args(["--build-timeout", &timeout, "--output"])
            .arg(&args.out);
        if args.iterate {
            cmd.arg("--iterate");
        }
        cmd.args(&args.extra);
        // cargo-mutants exits non-zero when a mutant is missed: the results say so.
        let shown = format!("{cmd:?}");
        let status = cmd
            .status()
            .map_err(|e| format!("cannot run {shown}: {e}"))?;
        eprintln!("mutation: cargo mutants finished ({status})");
        wall = start.elapsed().as_secs_f64();
    }
    let (outcomes, run_wall) = read_outcomes(&args.out)?;
    if args.report_only {
        wall = run_wall;
    }
    let json_path = args.results.join("mutation.json");
    let mut merged: BTreeMap<String, String> = BTreeMap::new();
    if args.iterate {
        if let Ok(raw) = std::fs::read_to_string(&json_path) {
            if let Ok(prev) = serde_json::from_str::<MutationResults>(&raw) {
                wall += prev.wall_seconds;
                merged.extend(prev.mutants.into_iter().map(|m| (m.name, m.outcome)));
            }
        }
    }
    merged.extend(outcomes.into_iter().map(|m| (m.name, m.outcome)));
    let r = results(merged, wall, exclusions(&toml));
    std::fs::create_dir_all(&args.results)
        .map_err(|e| format!("cannot create {}: {e}", args.results.display()))?;
    let text = serde_json::to_string_pretty(&r).expect("results serialize");
    std::fs::write(&json_path, text + "\n")
        .map_err(|e| format!("cannot write {}: {e}", json_path.display()))?;
    let md = args.results.join("mutation.md");
    std::fs::write(&md, markdown(&r)).map_err(|e| format!("cannot write {}: {e}", md.display()))?;
    println!(
        "mutation: {} mutants: {} caught, {} missed, {} timeouts, {} unviable ({} and {})",
        r.total,
        r.caught,
        r.missed,
        r.timeouts,
        r.unviable,
        json_path.display(),
        md.display()
    );
    Ok(if r.missed == 0 && r.timeouts == 0 {
        EXIT_OK
    } else {
        EXIT_VIOLATION
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions_keep_their_reasons() {
        let toml = "x = 1\nexclude_re = [\n  # why one\n  # and more\n  \"a\\\\+b\",\n  # two\n  \"c\",\n]\n";
        let e = exclusions(toml);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].pattern, "a\\+b");
        assert_eq!(e[0].reason, "why one and more");
        assert_eq!(e[1].reason, "two");
    }

    #[test]
    fn wall_time_from_cargo_mutants_timestamps() {
        let s = seconds_between("2026-12-01T23:16:02.5Z", "2026-12-02T00:17:49.5Z").unwrap();
        assert!((s - 3707.0).abs() < 1e-6, "{s}");
    }

    #[test]
    fn counts_by_outcome() {
        let m: BTreeMap<String, String> = [("a", "caught"), ("b", "missed"), ("c", "unviable")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let r = results(m, 1.0, vec![]);
        assert_eq!((r.total, r.caught, r.missed, r.unviable), (3, 1, 1, 1));
        assert!(markdown(&r).contains("- `b`"));
    }
}
