//! `raft-check table`: the markdown table of results/ generated from the JSON reports that
//! `raft-check check --json` wrote, so that the figures in results/README.md are never typed by
//! hand.

use crate::report::check_report::{CheckReport, Status};
use raft_model::model::ModelConfig;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;

fn verdict(r: &CheckReport) -> String {
    let props = &r.properties;
    let bad: Vec<String> = props
        .iter()
        .filter(|p| matches!(p.status, Status::Violated | Status::NotWitnessed))
        .map(|p| format!("{} {}", p.name, p.status.name()))
        .collect();
    if !bad.is_empty() {
        bad.join("; ")
    } else if r.complete {
        let always = props.iter().filter(|p| p.status == Status::Holds).count();
        let seen = props
            .iter()
            .filter(|p| p.status == Status::Witnessed)
            .count();
        format!("verified: {always} always hold, {seen} witnessed")
    } else {
        "INCOMPLETE: nothing verified".to_string()
    }
}

/// A report written by `check --json`.
pub fn read_report(f: &std::path::Path) -> Result<CheckReport, String> {
    let raw =
        std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
    serde_json::from_str(&raw)
        .map_err(|e| format!("{} is not a raft-check JSON report: {e}", f.display()))
}

/// The markdown table for these report files, one row each.
pub fn render(files: &[PathBuf]) -> Result<String, String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| report | configuration | strategy | symmetry | complete | distinct states (classes under symmetry) | states generated | depth | seconds | verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---:|---:|---:|---:|---|");
    for f in files {
        let r = read_report(f)?;
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} ({} threads) | {} | {} | {} | {} | {} | {:.1} | {} |",
            name,
            r.config,
            r.strategy,
            r.threads,
            if r.symmetry { "yes" } else { "no" },
            r.complete,
            r.unique_states,
            r.total_states,
            r.max_depth,
            r.seconds,
            verdict(&r)
        );
    }
    Ok(out)
}

/// The markdown table of a `mutants --json` file.
pub fn render_mutants(file: &std::path::Path) -> Result<String, String> {
    let raw = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let v: Value = serde_json::from_str(&raw)
        .map_err(|e| format!("{} is not a mutants report: {e}", file.display()))?;
    let list = v["mutants"]
        .as_array()
        .ok_or_else(|| format!("{} is not a mutants report", file.display()))?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| mutant | broken rule | bound | outcome | property that fails | shortest counterexample (steps) | distinct states searched | seconds |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---:|---:|---:|");
    for m in list {
        let config: ModelConfig = serde_json::from_value(m["config"].clone())
            .map_err(|e| format!("{}: a mutant's config: {e}", file.display()))?;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            m["name"].as_str().unwrap_or("?"),
            m["description"].as_str().unwrap_or("?"),
            config,
            m["outcome"].as_str().unwrap_or("?"),
            m["property"].as_str().unwrap_or("-"),
            m["counterexample_length"],
            m["unique_states"],
            m["seconds"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(out)
}

/// The markdown table of a `bench` file.
pub fn render_bench(file: &std::path::Path) -> Result<String, String> {
    let raw = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let v: Value = serde_json::from_str(&raw)
        .map_err(|e| format!("{} is not a bench report: {e}", file.display()))?;
    let runs = v["runs"]
        .as_array()
        .ok_or_else(|| format!("{} is not a bench report", file.display()))?;
    let m = &v["machine"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Written by `raft-check bench` on {} core(s), {} ({:.0} GiB); each case is its own \
         process (`raft-check bench --list` prints the command lines). Distinct states with \
         symmetry count renaming classes. Peak memory is the process's VmHWM. Load average \
         at the start and end of the run: {} and {} (other work slows every case; compare \
         cases of one run).\n",
        m["cores"],
        m["cpu"].as_str().unwrap_or("?"),
        m["memory_bytes"].as_f64().unwrap_or(0.0) / (1u64 << 30) as f64,
        v["load_average_at_start"],
        v["load_average_at_end"]
    );
    let _ = writeln!(
        out,
        "| case | complete | distinct states | states generated | seconds | distinct states/s | peak memory (MiB) | bytes per distinct state |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|");
    let baseline_runs = v["baseline"]["runs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for r in runs.iter().chain(&baseline_runs) {
        let mib = r["peak_memory_bytes"]
            .as_f64()
            .map(|b| format!("{:.0}", b / (1u64 << 20) as f64))
            .unwrap_or("-".into());
        let per = r["bytes_per_unique_state"]
            .as_f64()
            .map(|b| format!("{b:.0}"))
            .unwrap_or("-".into());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} | {:.0} | {} | {} |",
            r["name"].as_str().unwrap_or("?"),
            r["complete"],
            r["unique_states"],
            r["total_states"],
            r["seconds"].as_f64().unwrap_or(0.0),
            r["unique_states_per_second"].as_f64().unwrap_or(0.0),
            mib,
            per
        );
    }
    if let Some(cmp) = v["baseline"]["comparisons"].as_array() {
        let _ = writeln!(
            out,
            "\n`baseline:` rows are another build, `{}`, run in this same run on the same cases \
             (`raft-check bench --baseline EXE`).\n",
            v["baseline"]["executable"].as_str().unwrap_or("?")
        );
        for c in cmp {
            // Older files compared each case with the baseline's run of the same case.
            let case = c["case"].as_str().unwrap_or("?");
            let theirs = c["baseline_case"].as_str().unwrap_or(case);
            let _ = writeln!(
                out,
                "- {case}: {:.2}× the baseline's distinct states per second on {theirs}{}",
                c["speedup"].as_f64().unwrap_or(0.0),
                match (
                    c["same_states"].as_bool(),
                    c["states"].as_u64(),
                    c["baseline_states"].as_u64(),
                ) {
                    (Some(true), _, _) => ", the same distinct states".to_string(),
                    (_, Some(ours), Some(theirs)) =>
                        format!("; the distinct states DIFFER ({ours} here, {theirs} there)"),
                    _ => "; the distinct states DIFFER".to_string(),
                }
            );
        }
    }
    // Rows replaced by a later `bench --only` run (said in bench.json, by hand).
    if let Some(cases) = v["rerun"]["cases"].as_array() {
        let names: Vec<&str> = cases.iter().filter_map(|c| c.as_str()).collect();
        let _ = writeln!(
            out,
            "\nRerun {}: {} ({}).",
            v["rerun"]["when"].as_str().unwrap_or("later"),
            names.join(", "),
            v["rerun"]["why"].as_str().unwrap_or("see bench.json")
        );
    }
    Ok(out)
}

/// Regenerate `DIR/README.md` from the JSON reports in `DIR`.
pub fn write_readme(dir: &std::path::Path) -> Result<(), String> {
    let mut reports = Vec::new();
    let mut mutants = None;
    let mut bench = None;
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            if p.file_name().is_some_and(|n| n == "mutants.json") {
                mutants = Some(p);
            } else if p.file_name().is_some_and(|n| n == "bench.json") {
                bench = Some(p);
            } else if std::fs::read_to_string(&p)
                .ok()
                .and_then(|raw| serde_json::from_str::<Value>(&raw).ok())
                .is_some_and(|v| v["properties"].is_array())
            {
                reports.push(p);
            }
        }
    }
    reports.sort();
    let mut out = String::new();
    let _ = writeln!(out, "# Results\n");
    let _ = writeln!(
        out,
        "Generated by `raft-check gate --update` (or `raft-check table`) from the JSON files in \
         this folder, each written by `raft-check check --json` / `raft-check mutants --json` on \
         the project's 2-core, 24 GiB machine. Do not edit the tables by hand. With symmetry \
         reduction (the symmetry column), distinct states count classes of states under \
         renaming of the servers. NOTES.md holds today's figures, each with its command; \
         notebook.md the dated notebook (the analysis, and the larger bound that did not \
         finish); kv-bench.md the key-value service's benchmark.\n"
    );
    let _ = writeln!(out, "## Configurations\n");
    out.push_str(&render(&reports)?);
    let gate = crate::gate_bounds::gate();
    let bounds: Vec<(&str, &raft_model::model::ModelConfig)> =
        gate.iter().map(|s| (s.name, &s.bound)).collect();
    let _ = writeln!(out, "\n## Feature pairs\n");
    let _ = writeln!(
        out,
        "Every pair of the node's features and the gate's bounds that model-check both \
         (`checker/src/coverage.rs`: a bound exercises a feature only where the model can take \
         its steps; the interplay bounds are `checker/src/interplay.rs`).\n"
    );
    out.push_str(&crate::coverage::render(&bounds));
    let _ = writeln!(
        out,
        "\nThe dimensions the features need, and the bounds that give them:\n"
    );
    out.push_str(&crate::coverage::render_needs(&bounds));
    if let Some(m) = mutants {
        let _ = writeln!(out, "\n## Mutant catalogue\n");
        let _ = writeln!(
            out,
            "Each counterexample is a shortest one: `mutants` searches level by level and stops \
             at the first depth that holds a violating state (`checker/src/engine/shortest.rs`).\n"
        );
        out.push_str(&render_mutants(&m)?);
    }
    if let Some(b) = bench {
        let _ = writeln!(out, "\n## Checker benchmark\n");
        out.push_str(&render_bench(&b)?);
    }
    let profile = dir.join("PROFILE.md");
    if let Ok(text) = std::fs::read_to_string(&profile) {
        let _ = writeln!(out, "\n<!-- from PROFILE.md (hand-written analysis) -->");
        out.push_str(&text);
    }
    let path = dir.join("README.md");
    std::fs::write(&path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
