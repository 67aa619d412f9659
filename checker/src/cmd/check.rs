//! `raft-check check`: every property on one bound.

use super::usage::usage_error;
use crate::engine::interrupt;
use crate::engine::options::RunArgs;
use crate::engine::run;
use crate::report::export::{self, TraceFormat};
use crate::report::text_trace;
use clap::parser::ValueSource;
use clap::Args;
use raft_model::model::ModelConfig;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Where the bound starts before the flags given: `node`, the runnable node's configuration
    /// (every feature it runs by default: PreVote, CheckQuorum, ReadIndex, fast backup, bounded
    /// and pipelined appends, write-behind, snapshots; symmetry on) at the size the main job
    /// checks; `plain`, the model's feature-free bound (each flag at the default its help
    /// shows, the main job before 2026-12-07). Every flag given overrides the start.
    #[arg(long, value_enum, default_value_t = Bound::Node)]
    pub bound: Bound,
    #[command(flatten)]
    pub model: ModelConfig,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The starting point of `check`'s bound.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// The node's configuration (`standard::node`), symmetry on where the bound allows it.
    Node,
    /// The model's own defaults: no feature flag on.
    Plain,
}

impl CheckArgs {
    /// Starts the bound where `--bound` says: each model flag not given on the command line
    /// (`matches`, `check`'s own) takes the start's value; with `--bound node`, symmetry is
    /// on unless given or the bound tells the servers apart.
    pub fn apply_bound(&mut self, matches: &clap::ArgMatches) -> Result<(), String> {
        if self.bound == Bound::Plain {
            return Ok(());
        }
        let given = |id: &str| {
            matches
                .try_contains_id(id)
                .is_ok_and(|_| matches.value_source(id) == Some(ValueSource::CommandLine))
        };
        let start = crate::standard::node();
        let start = serde_json::to_value(&start).map_err(|e| e.to_string())?;
        let mut cfg = serde_json::to_value(&self.model).map_err(|e| e.to_string())?;
        let (Some(start), Some(map)) = (start.as_object(), cfg.as_object_mut()) else {
            return Err("a bound is not a JSON object".into());
        };
        let ids = <ModelConfig as clap::Args>::augment_args(clap::Command::new("bound"));
        for arg in ids.get_arguments() {
            let id = arg.get_id().as_str();
            if given(id) {
                continue;
            }
            // A key left out of the JSON holds its default value.
            match start.get(id) {
                Some(v) => map.insert(id.to_string(), v.clone()),
                None => map.remove(id),
            };
        }
        self.model = serde_json::from_value(cfg).map_err(|e| e.to_string())?;
        if !given("symmetry") {
            self.run.symmetry = self.model.symmetry_breaker().is_none();
        }
        Ok(())
    }
}

/// Refuses an output file that cannot be written (a directory, a missing folder, no
/// permission) before a long run, so that its verdict is not lost at the end. Leaves no file
/// behind that was not there.
pub fn writable(flag: &str, path: &std::path::Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!("{flag} {}: is a directory", path.display()));
    }
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| format!("cannot write {flag} {}: {e}", path.display()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Where and how `check` writes the counterexample of the first violated property.
#[derive(Args, Clone, Debug)]
pub struct TraceArgs {
    /// Format of the trace written to --trace-out.
    #[arg(long, value_enum, default_value_t = TraceFormat::Text)]
    pub trace_format: TraceFormat,
    /// Write the counterexample of the first violated property to this file (nothing is
    /// written when no property is violated).
    #[arg(long)]
    pub trace_out: Option<std::path::PathBuf>,
}

impl TraceArgs {
    /// Refuse a JSON or ITF format with nowhere to write it, and an unwritable file, before a
    /// long check.
    pub fn validate(&self) -> Result<(), String> {
        let Some(path) = &self.trace_out else {
            if self.trace_format != TraceFormat::Text {
                return Err("--trace-format json|itf needs --trace-out FILE".into());
            }
            return Ok(());
        };
        writable("--trace-out", path)
    }
}

pub fn check(args: &CheckArgs) -> i32 {
    let CheckArgs {
        model: cfg,
        run,
        trace: trace_args,
        json,
        bound: _,
    } = args;
    if let Err(e) = cfg.validate() {
        return usage_error(e);
    }
    if let Err(e) = run.validate() {
        return usage_error(e);
    }
    if let Err(e) = run.addresses() {
        return usage_error(e);
    }
    if let Some(why) = cfg.symmetry_breaker().filter(|_| run.symmetry) {
        return usage_error(format!("--symmetry cannot be used with {why}"));
    }
    if let Err(e) = trace_args.validate() {
        return usage_error(e);
    }
    if let Some(Err(e)) = json.as_deref().map(|path| writable("--json", path)) {
        return usage_error(e);
    }
    println!("Checking Raft: {cfg}");
    // From here on, Ctrl-C stops the search and still writes its report (exit 3).
    interrupt::install();
    let outcome = run::check(cfg, run);
    let report = &outcome.report;
    for p in report.failures() {
        match outcome.path(&p.name) {
            Some(path) => {
                let shortest = p.counterexample.as_ref().is_some_and(|c| c.shortest);
                println!(
                    "\nCounterexample: \"{}\" is violated after {} steps{}:",
                    p.name,
                    path.clone().into_actions().len(),
                    if shortest {
                        " (a shortest path)"
                    } else {
                        " (as discovered, not shortened)"
                    }
                );
                print!("{}", text_trace::render(cfg, path));
            }
            None => println!(
                "\nWitness missing: \"{}\" was never reached within the bound, so the property \
                 it pairs with may hold vacuously.",
                p.name
            ),
        }
    }
    if let Some(out) = &trace_args.trace_out {
        let first = report
            .failures()
            .find_map(|p| outcome.path(&p.name).map(|path| (p.name.clone(), path)));
        match first {
            Some((name, path)) => {
                if let Err(e) = export::write(cfg, &name, path, trace_args.trace_format, out) {
                    return usage_error(e);
                }
                println!(
                    "\nTrace of \"{name}\" written to {} ({}).",
                    out.display(),
                    trace_args.trace_format.name()
                );
            }
            None => eprintln!(
                "raft-check: no property is violated: {} not written",
                out.display()
            ),
        }
    }
    println!();
    print!("{}", report.summary());
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(report).expect("report serializes");
        if let Err(e) = std::fs::write(path, text + "\n") {
            return usage_error(format!("cannot write {}: {e}", path.display()));
        }
    }
    report.exit_code()
}
