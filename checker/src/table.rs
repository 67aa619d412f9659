//! `raft-check table`: the markdown table of results/ generated from the JSON reports that
//! `raft-check check --json` wrote, so that the figures in results/README.md are never typed by
//! hand.

use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;

fn config_text(c: &Value) -> String {
    let mut s = format!(
        "{} servers, terms ≤ {}, {} value(s), {} read(s), crashes ≤ {}, {}{}, ≤ {} in flight",
        c["servers"],
        c["max_term"],
        c["values"],
        c["reads"],
        c["max_crashes"],
        c["network"].as_str().unwrap_or("?"),
        if c["lossy"] == true { " lossy" } else { "" },
        c["max_in_flight"]
    );
    if let Some(m) = c["mutant"].as_str() {
        let _ = write!(s, ", mutant {m}");
    }
    s
}

fn verdict(v: &Value) -> String {
    let props = v["properties"].as_array().cloned().unwrap_or_default();
    let bad: Vec<String> = props
        .iter()
        .filter(|p| p["status"] == "violated" || p["status"] == "not-witnessed")
        .map(|p| {
            format!(
                "{} {}",
                p["name"].as_str().unwrap_or("?"),
                p["status"].as_str().unwrap_or("?")
            )
        })
        .collect();
    if !bad.is_empty() {
        bad.join("; ")
    } else if v["complete"] == true {
        let always = props.iter().filter(|p| p["status"] == "holds").count();
        let seen = props.iter().filter(|p| p["status"] == "witnessed").count();
        format!("verified: {always} always hold, {seen} witnessed")
    } else {
        "INCOMPLETE: nothing verified".to_string()
    }
}

/// The markdown table for these report files, one row each.
pub fn render(files: &[PathBuf]) -> Result<String, String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| report | configuration | strategy | complete | distinct states | states generated | depth | seconds | verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---:|---:|---:|---:|---|");
    for f in files {
        let raw =
            std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        let v: Value = serde_json::from_str(&raw)
            .map_err(|e| format!("{} is not a raft-check JSON report: {e}", f.display()))?;
        if !v["properties"].is_array() || !v["config"].is_object() {
            return Err(format!("{} is not a raft-check JSON report", f.display()));
        }
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} ({} threads) | {} | {} | {} | {} | {:.1} | {} |",
            name,
            config_text(&v["config"]),
            v["strategy"].as_str().unwrap_or("?"),
            v["threads"],
            v["complete"],
            v["unique_states"],
            v["total_states"],
            v["max_depth"],
            v["seconds"].as_f64().unwrap_or(0.0),
            verdict(&v)
        );
    }
    Ok(out)
}
