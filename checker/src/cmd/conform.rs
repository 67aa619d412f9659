//! `raft-check conform TRACE...`: trace conformance of real runs against the model (see
//! `raft_model::conform`). Each directory is one run (`node-<id>.jsonl` per node, optionally
//! `run.json`); a directory without node traces stands for its subdirectories, one run each;
//! files given directly form one run. Runs are validated in parallel.

use crate::report::check_report::{EXIT_OK, EXIT_USAGE, EXIT_VIOLATION};
use raft_model::conform::{
    conform, parse_jsonl, ConformError, Opaque, RunInfo, Summary, TraceRecord,
};
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct ConformArgs {
    /// Trace directories or node-<id>.jsonl files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// For runs without run.json: the network may deliver a message more than once.
    #[arg(long)]
    pub duplicating: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the summary (runs, steps, seconds) as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

struct Run {
    name: String,
    files: Vec<PathBuf>,
    info: Option<PathBuf>,
}

fn node_traces(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("node-") && name.ends_with(".jsonl") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn collect_runs(paths: &[PathBuf]) -> Result<Vec<Run>, String> {
    let mut runs = Vec::new();
    let mut loose = Vec::new();
    for path in paths {
        if path.is_dir() {
            let files = node_traces(path)?;
            if !files.is_empty() {
                let info = path.join("run.json");
                runs.push(Run {
                    name: path.display().to_string(),
                    files,
                    info: info.exists().then_some(info),
                });
                continue;
            }
            let mut subdirs: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect();
            subdirs.sort();
            let before = runs.len();
            for sub in subdirs {
                let files = node_traces(&sub)?;
                if !files.is_empty() {
                    let info = sub.join("run.json");
                    runs.push(Run {
                        name: sub.display().to_string(),
                        files,
                        info: info.exists().then_some(info),
                    });
                }
            }
            if runs.len() == before {
                return Err(format!(
                    "{}: no node-*.jsonl traces in it or in its subdirectories",
                    path.display()
                ));
            }
        } else if path.is_file() {
            loose.push(path.clone());
        } else {
            return Err(format!("{}: no such file or directory", path.display()));
        }
    }
    if !loose.is_empty() {
        runs.push(Run {
            name: "(files)".into(),
            files: loose,
            info: None,
        });
    }
    Ok(runs)
}

enum Outcome {
    Ok(Summary),
    Mismatch(String),
    Unreadable(String),
}

fn validate(run: &Run, duplicating: bool) -> Outcome {
    let info = match &run.info {
        Some(path) => {
            let parsed = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<RunInfo>(&t).map_err(|e| e.to_string()));
            match parsed {
                Ok(i) => i,
                Err(e) => return Outcome::Unreadable(format!("{}: {e}", path.display())),
            }
        }
        None => RunInfo {
            duplicating,
            ..RunInfo::default()
        },
    };
    let mut traces: Vec<Vec<TraceRecord<Opaque>>> = Vec::new();
    for file in &run.files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => return Outcome::Unreadable(format!("{}: {e}", file.display())),
        };
        match parse_jsonl(&text, &file.display().to_string()) {
            Ok(t) => traces.push(t),
            Err(e) => return Outcome::Unreadable(e),
        }
    }
    match conform(traces, &info) {
        Ok(s) => Outcome::Ok(s),
        Err(ConformError::Invalid(e)) => Outcome::Unreadable(e),
        Err(e) => Outcome::Mismatch(e.to_string()),
    }
}

#[derive(Serialize)]
struct JsonSummary {
    runs: usize,
    conforming: usize,
    mismatching: usize,
    unreadable: usize,
    steps: usize,
    model_actions: usize,
    crashes: usize,
    seconds: f64,
    threads: usize,
}

pub fn run(args: &ConformArgs) -> i32 {
    let runs = match collect_runs(&args.paths) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("raft-check conform: error: {e}");
            return EXIT_USAGE;
        }
    };
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        .build()
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("raft-check conform: error: {e}");
            return EXIT_USAGE;
        }
    };
    let start = Instant::now();
    let outcomes: Vec<Outcome> = pool.install(|| {
        runs.par_iter()
            .map(|r| validate(r, args.duplicating))
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let mut summary = JsonSummary {
        runs: runs.len(),
        conforming: 0,
        mismatching: 0,
        unreadable: 0,
        steps: 0,
        model_actions: 0,
        crashes: 0,
        seconds,
        threads: pool.current_num_threads(),
    };
    for (run, outcome) in runs.iter().zip(&outcomes) {
        match outcome {
            Outcome::Ok(s) => {
                summary.conforming += 1;
                summary.steps += s.steps;
                summary.model_actions += s.actions;
                summary.crashes += s.crashes;
                println!(
                    "OK        {}: {} nodes, {} steps ({} crashes), {} model actions",
                    run.name, s.nodes, s.steps, s.crashes, s.actions
                );
            }
            Outcome::Mismatch(report) => {
                summary.mismatching += 1;
                println!("MISMATCH  {}:\n{report}", run.name);
            }
            Outcome::Unreadable(e) => {
                summary.unreadable += 1;
                eprintln!("raft-check conform: error: {}: {e}", run.name);
            }
        }
    }
    println!(
        "conform: {} runs, {} conform, {} mismatch, {} unreadable; {} steps replayed, {} crashes; {:.2} s on {} threads",
        summary.runs,
        summary.conforming,
        summary.mismatching,
        summary.unreadable,
        summary.steps,
        summary.crashes,
        seconds,
        summary.threads
    );
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(&summary)
            .map_err(|e| e.to_string())
            .and_then(|j| std::fs::write(path, j + "\n").map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("raft-check conform: error: {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    if summary.unreadable > 0 {
        EXIT_USAGE
    } else if summary.mismatching > 0 {
        EXIT_VIOLATION
    } else {
        EXIT_OK
    }
}
