//! `raft-check merge`: one verdict from the reports of the parts of one bound (`check --shard
//! I/N --json FILE`, `engine/shard.rs`).

use crate::report::check_report::{
    CheckReport, ExpectationJson, MergedJson, PartJson, PropertyJson, Status, EXIT_USAGE,
};
use clap::Args;
use std::path::{Path as FsPath, PathBuf};

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The parts' JSON reports.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Write the merged report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

fn read_part(path: &FsPath) -> Result<CheckReport, String> {
    let raw = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let report: CheckReport = serde_json::from_str(&raw)
        .map_err(|e| format!("{}: not a `check --json` report: {e}", path.display()))?;
    if report.shard.is_none() {
        return Err(format!(
            "{}: not a part's report (written without --shard)",
            path.display()
        ));
    }
    Ok(report)
}

/// Combine the reports of the parts of one bound into one. Errors (exit 2) for unreadable
/// reports, reports of different bounds, part counts, prefix depths or symmetry, and a part
/// given twice; missing parts make the result incomplete.
pub fn merge_reports(files: &[PathBuf]) -> Result<CheckReport, String> {
    let mut parts = Vec::new();
    for f in files {
        parts.push((f.clone(), read_part(f)?));
    }
    let (first_file, first) = &parts[0];
    let first_shard = first.shard.clone().expect("checked by read_part");
    let config = serde_json::to_value(&first.config).expect("config serializes");
    for (f, r) in &parts[1..] {
        let s = r.shard.as_ref().expect("checked by read_part");
        let mismatch = |what: &str| {
            format!(
                "{} and {} are parts of different checks ({what} differ): refusing to merge",
                first_file.display(),
                f.display()
            )
        };
        if serde_json::to_value(&r.config).expect("config serializes") != config {
            return Err(mismatch("the bounds"));
        }
        if r.symmetry != first.symmetry {
            return Err(mismatch("--symmetry"));
        }
        if s.count != first_shard.count {
            return Err(mismatch("the part counts N"));
        }
        if s.depth != first_shard.depth || s.frontier_states != first_shard.frontier_states {
            return Err(mismatch("the prefixes (--shard-depth)"));
        }
    }
    let count = first_shard.count;
    let mut by_index: Vec<Option<&CheckReport>> = vec![None; count];
    for (f, r) in &parts {
        let i = r.shard.as_ref().expect("checked").index;
        if by_index[i].is_some() {
            return Err(format!("part {i}/{count} is given twice ({})", f.display()));
        }
        by_index[i] = Some(r);
    }
    let missing: Vec<usize> = (0..count).filter(|i| by_index[*i].is_none()).collect();
    let present: Vec<&CheckReport> = by_index.iter().flatten().copied().collect();
    let all_complete = missing.is_empty() && present.iter().all(|r| r.complete);

    let mut merged = CheckReport {
        config: first.config.clone(),
        strategy: first.strategy.clone(),
        threads: first.threads,
        symmetry: first.symmetry,
        complete: all_complete,
        unique_states: first_shard.prefix_states
            + present.iter().map(|r| r.unique_states).sum::<usize>(),
        total_states: present.iter().map(|r| r.total_states).sum(),
        max_depth: first_shard.depth + present.iter().map(|r| r.max_depth).max().unwrap_or(0),
        seconds: present.iter().map(|r| r.seconds).fold(0.0, f64::max),
        peak_memory_bytes: present.iter().filter_map(|r| r.peak_memory_bytes).max(),
        properties: Vec::new(),
        interrupted: present.iter().any(|r| r.interrupted),
        // Parts never use sleep sets (`sleep_sets_apply`); the engine is the first part's.
        engine: first.engine.clone(),
        shard: None,
        merged: Some(MergedJson {
            count,
            depth: first_shard.depth,
            prefix_states: first_shard.prefix_states,
            frontier_states: first_shard.frontier_states,
            parts: present
                .iter()
                .map(|r| PartJson {
                    index: r.shard.as_ref().expect("checked").index,
                    complete: r.complete,
                    unique_states: r.unique_states,
                    total_states: r.total_states,
                    seconds: r.seconds,
                })
                .collect(),
            missing,
        }),
    };
    for p in &first.properties {
        let same: Vec<&PropertyJson> = present
            .iter()
            .filter_map(|r| r.properties.iter().find(|q| q.name == p.name))
            .collect();
        if same.len() != present.len() {
            return Err(format!(
                "property \"{}\" is not in every part's report: refusing to merge",
                p.name
            ));
        }
        let any = |s: Status| same.iter().any(|q| q.status == s);
        let status = match p.expectation {
            _ if any(Status::NotApplicable) => Status::NotApplicable,
            ExpectationJson::Always if any(Status::Violated) => Status::Violated,
            ExpectationJson::Always if all_complete => Status::Holds,
            ExpectationJson::Sometimes if any(Status::Witnessed) => Status::Witnessed,
            ExpectationJson::Sometimes if all_complete => Status::NotWitnessed,
            _ => Status::Unknown,
        };
        // The shortest counterexample any part found (each is a full path).
        let counterexample = same
            .iter()
            .filter(|q| q.status == Status::Violated)
            .filter_map(|q| q.counterexample.clone())
            .min_by_key(|c| c.length);
        merged.properties.push(PropertyJson {
            name: p.name.clone(),
            expectation: p.expectation,
            status,
            counterexample: if status == Status::Violated {
                counterexample
            } else {
                None
            },
            note: p.note.clone(),
        });
    }
    Ok(merged)
}

/// `raft-check merge`: print the merged verdict, write it as JSON, exit as `check` does.
pub fn merge(args: &MergeArgs) -> i32 {
    let (files, json) = (&args.reports, args.json.as_deref());
    let merged = match merge_reports(files) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("raft-check merge: {e}");
            return EXIT_USAGE;
        }
    };
    let info = merged.merged.as_ref().expect("a merged report");
    println!(
        "Merging {} of {} parts: prefix to depth {} ({} states above a frontier of {})",
        info.parts.len(),
        info.count,
        info.depth,
        info.prefix_states,
        info.frontier_states
    );
    for p in &info.parts {
        println!(
            "  part {}/{}: {} distinct states, {:.1} s, complete: {}",
            p.index, info.count, p.unique_states, p.seconds, p.complete
        );
    }
    for i in &info.missing {
        println!("  part {i}/{}: MISSING", info.count);
    }
    for p in merged.failures() {
        match &p.counterexample {
            Some(c) => {
                println!(
                    "\nCounterexample: \"{}\" is violated after {} steps (from an initial state):",
                    p.name, c.length
                );
                for (n, a) in c.actions.iter().enumerate() {
                    println!("  {:>3}. {a}", n + 1);
                }
            }
            None => println!(
                "\nWitness missing: \"{}\" was reached in no part, so the property it pairs \
                 with may hold vacuously.",
                p.name
            ),
        }
    }
    println!();
    print!("{}", merged.summary());
    println!(
        "  (distinct states: the prefix's plus each part's, summed: a state that several parts \
         reach counts once per part)"
    );
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&merged).expect("report serializes");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("raft-check merge: cannot write {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    merged.exit_code()
}
