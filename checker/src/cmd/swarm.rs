//! `raft-check swarm`: a swarm search (`engine/swarm.rs`) on one bound, or, with
//! `--catalogue`, on every catalogue mutant over a bound larger than its own
//! (`swarm_catalogue.rs`). Never a proof: nothing found is exit 3, as an incomplete check.

use super::check::{writable, TraceArgs};
use super::usage::usage_error;
use crate::engine::interrupt;
use crate::engine::swarm::{self, Options, Outcome};
use crate::engine::swarm_shrink;
use crate::report::check_report::{EXIT_INCOMPLETE, EXIT_VIOLATION};
use crate::report::export;
use crate::report::text_trace;
use clap::Args;
use raft_model::model::{ModelConfig, RaftModel};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct SwarmArgs {
    #[command(flatten)]
    pub model: ModelConfig,
    #[command(flatten)]
    pub search: SearchArgs,
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Instead of one bound: every mutant of the catalogue, each on its catalogue bound
    /// enlarged (terms + 2, one more message in flight), with --budget-per-mutant; --json
    /// then writes every mutant's result. No model flags.
    #[arg(long)]
    pub catalogue: bool,
    /// With --catalogue: one more server too, where the catalogue bound has three or more.
    #[arg(long, requires = "catalogue")]
    pub extra_server: bool,
    /// With --catalogue: seconds of search per mutant.
    #[arg(long, default_value_t = 60.0, requires = "catalogue")]
    pub budget_per_mutant: f64,
}

/// How the walks run (shared with `--catalogue`).
#[derive(Args, Clone, Debug)]
pub struct SearchArgs {
    /// Number of walks (numbered from 0; each from its own seed); --budget usually ends the
    /// search first.
    #[arg(long, default_value_t = 1_000_000_000)]
    pub walks: u64,
    /// Run only walk K (its number in the report of a violation): replays it exactly.
    #[arg(long, conflicts_with = "walks")]
    pub walk: Option<u64>,
    /// Wall-clock budget in seconds: no walk starts after it.
    #[arg(long, default_value_t = 60.0)]
    pub budget: f64,
    /// The run's seed; walk K's own seed is derived from it and K.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Steps per walk at most.
    #[arg(long, default_value_t = 200)]
    pub max_depth: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seconds the counterexample may spend being shortened.
    #[arg(long, default_value_t = 30.0)]
    pub shorten_budget: f64,
    /// Most distinct state fingerprints kept in memory (past it, the distinct count is a
    /// lower bound).
    #[arg(long, default_value_t = 20_000_000)]
    pub max_fingerprints: usize,
    /// Seconds between progress lines on stderr (0: none).
    #[arg(long, default_value_t = 5.0)]
    pub progress: f64,
}

/// The longest budget a flag takes (a `Duration` holds it; a larger one is a typo).
pub const MAX_SECONDS: f64 = 1e9;

impl SearchArgs {
    pub fn validate(&self) -> Result<(), String> {
        if self.walks == 0 {
            return Err("--walks must be at least 1".into());
        }
        if !(self.budget.is_finite() && self.budget > 0.0 && self.budget <= MAX_SECONDS) {
            return Err("--budget must be a positive number of seconds, at most 10^9".into());
        }
        if self.max_depth == 0 {
            return Err("--max-depth must be at least 1".into());
        }
        if self.threads == Some(0) {
            return Err("--threads must be at least 1".into());
        }
        if !(self.shorten_budget.is_finite()
            && self.shorten_budget >= 0.0
            && self.shorten_budget <= MAX_SECONDS)
        {
            return Err(
                "--shorten-budget must be a non-negative number of seconds, at most 10^9".into(),
            );
        }
        if self.max_fingerprints == 0 {
            return Err("--max-fingerprints must be at least 1".into());
        }
        if !(self.progress.is_finite() && self.progress >= 0.0) {
            return Err("--progress must be a non-negative number of seconds".into());
        }
        Ok(())
    }

    /// The engine's options, with `budget` seconds.
    pub fn options(&self, budget: f64) -> Options {
        Options {
            seed: self.seed,
            first_walk: self.walk.unwrap_or(0),
            walks: if self.walk.is_some() { 1 } else { self.walks },
            max_depth: self.max_depth,
            budget: Some(Duration::from_secs_f64(budget)),
            threads: self.threads.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            }),
            max_fingerprints: self.max_fingerprints,
            progress: self.progress,
        }
    }
}

/// A Sometimes property: whether a walk reached it, which and when.
#[derive(Serialize, Clone, Debug)]
pub struct WitnessJson {
    pub name: String,
    pub reached: bool,
    pub walk: Option<u64>,
    pub seconds: Option<f64>,
    /// Unreachable by construction of the bound, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_applicable: Option<String>,
}

/// The violation found, shortened.
#[derive(Serialize, Clone, Debug)]
pub struct ViolationJson {
    pub property: String,
    pub walk: u64,
    /// The walk's own generator seed (derived from the run's seed and the walk's number).
    pub walk_seed: u64,
    /// The command that replays the walk.
    pub replay: String,
    /// The kinds of action this walk never took (weight 0) unless nothing else was enabled.
    pub kinds_off: Vec<String>,
    pub found_after_seconds: f64,
    pub raw_length: usize,
    pub shortened_length: usize,
    pub shorten_seconds: f64,
    pub actions: Vec<String>,
    /// The Explorer's path (`raft-check explore` with the same model flags, then
    /// `#/steps/` and this).
    pub explorer_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation: Option<Vec<String>>,
}

/// The report of one swarm search (`--json`).
#[derive(Serialize, Clone, Debug)]
pub struct SwarmReport {
    pub config: ModelConfig,
    /// "random walks, per-walk action weights".
    pub search: &'static str,
    /// "violated" or "incomplete" (never "verified": a swarm search is not exhaustive).
    pub outcome: &'static str,
    pub seed: u64,
    pub first_walk: u64,
    pub walks_requested: u64,
    pub budget_seconds: f64,
    pub max_depth_per_walk: usize,
    pub threads: usize,
    pub walks: u64,
    pub steps: u64,
    pub distinct_states: usize,
    /// The fingerprint set was full: `distinct_states` is a lower bound.
    pub distinct_states_at_least: bool,
    pub deepest: usize,
    pub seconds: f64,
    pub out_of_budget: bool,
    pub interrupted: bool,
    pub violation: Option<ViolationJson>,
    pub witnesses: Vec<WitnessJson>,
}

/// The model flags that differ from the standard bound, as `--flag=value` (for the replay
/// command): every field of the JSON config, so a new flag is never left out.
pub fn model_flags(cfg: &ModelConfig) -> Vec<String> {
    let (Ok(serde_json::Value::Object(mine)), Ok(serde_json::Value::Object(standard))) = (
        serde_json::to_value(cfg),
        serde_json::to_value(ModelConfig::default()),
    ) else {
        return Vec::new();
    };
    mine.into_iter()
        .filter(|(k, v)| standard.get(k) != Some(v) && !v.is_null())
        .map(|(k, v)| {
            let flag = format!("--{}", k.replace('_', "-"));
            match v {
                // A switch that is off by default takes no value; one on by default takes
                // `=false`.
                serde_json::Value::Bool(true) => flag,
                serde_json::Value::String(s) => format!("{flag}={s}"),
                v => format!("{flag}={v}"),
            }
        })
        .collect()
}

/// A finished search with its violation shortened: the report, and the counterexample path.
pub struct Finished {
    pub report: SwarmReport,
    pub path: Option<stateright::Path<raft_model::model::RaftState, text_trace::Action>>,
}

/// Run the search on `cfg` and shorten what it finds.
pub fn run_search(cfg: &ModelConfig, args: &SearchArgs, budget: f64) -> Finished {
    let model = cfg.clone().into_model();
    let options = args.options(budget);
    let outcome = swarm::search(&model, &options);
    let (violation, path) = match &outcome.violation {
        Some(v) => {
            let (json, path) = shortened(cfg, &model, args, v);
            (Some(json), path)
        }
        None => (None, None),
    };
    let report = report(cfg, args, &options, &outcome, violation);
    Finished { report, path }
}

fn shortened(
    cfg: &ModelConfig,
    model: &RaftModel,
    args: &SearchArgs,
    v: &swarm::Violation,
) -> (
    ViolationJson,
    Option<stateright::Path<raft_model::model::RaftState, text_trace::Action>>,
) {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.shorten_budget);
    let actions = swarm_shrink::shorten(model, v.property, &v.init, &v.actions, deadline);
    let shorten_seconds = start.elapsed().as_secs_f64();
    let path = swarm_shrink::path(model, &v.init, &actions);
    let mut replay = vec!["raft-check swarm".to_string()];
    replay.extend(model_flags(cfg));
    replay.push(format!("--seed={}", args.seed));
    replay.push(format!("--walk={}", v.walk));
    replay.push(format!("--max-depth={}", args.max_depth));
    let json = ViolationJson {
        property: v.property.to_string(),
        walk: v.walk,
        walk_seed: v.walk_seed,
        replay: replay.join(" "),
        kinds_off: v.off.iter().map(|k| k.to_string()).collect(),
        found_after_seconds: v.seconds,
        raw_length: v.actions.len(),
        shortened_length: actions.len(),
        shorten_seconds,
        actions: actions
            .iter()
            .map(|a| text_trace::format_action(cfg, a))
            .collect(),
        explorer_path: path.as_ref().map(|p| p.encode(model)).unwrap_or_default(),
        continuation: path.as_ref().and_then(|p| text_trace::continuation(cfg, p)),
    };
    (json, path)
}

fn report(
    cfg: &ModelConfig,
    args: &SearchArgs,
    options: &Options,
    outcome: &Outcome,
    violation: Option<ViolationJson>,
) -> SwarmReport {
    let mut witnesses: Vec<WitnessJson> = outcome
        .witnesses
        .iter()
        .map(|(name, w)| WitnessJson {
            name: name.to_string(),
            reached: w.is_some(),
            walk: w.as_ref().map(|w| w.walk),
            seconds: w.as_ref().map(|w| w.seconds),
            not_applicable: None,
        })
        .collect();
    for (name, why) in cfg.inapplicable_witnesses() {
        witnesses.push(WitnessJson {
            name: name.to_string(),
            reached: false,
            walk: None,
            seconds: None,
            not_applicable: Some(format!("unreachable with {why}")),
        });
    }
    SwarmReport {
        config: cfg.clone(),
        search: "random walks, per-walk action weights",
        outcome: if violation.is_some() {
            "violated"
        } else {
            "incomplete"
        },
        seed: args.seed,
        first_walk: options.first_walk,
        walks_requested: options.walks,
        budget_seconds: options.budget.map_or(0.0, |b| b.as_secs_f64()),
        max_depth_per_walk: options.max_depth,
        threads: options.threads,
        walks: outcome.walks,
        steps: outcome.steps,
        distinct_states: outcome.distinct,
        distinct_states_at_least: outcome.distinct_capped,
        deepest: outcome.max_depth,
        seconds: outcome.seconds,
        out_of_budget: outcome.out_of_budget,
        interrupted: outcome.interrupted,
        violation,
        witnesses,
    }
}

impl SwarmReport {
    /// 1 for a violation, 3 otherwise: a swarm search never verifies.
    pub fn exit_code(&self) -> i32 {
        if self.violation.is_some() {
            EXIT_VIOLATION
        } else {
            EXIT_INCOMPLETE
        }
    }

    /// The text summary.
    pub fn summary(&self) -> String {
        let at_least = if self.distinct_states_at_least {
            "at least "
        } else {
            ""
        };
        let mut s = format!(
            "Swarm search ({}), seed {}: {} walks (walks {}..), {} steps, {at_least}{} distinct \
             states, deepest walk {} steps (at most {} each), {} threads, {:.1} s.\n",
            self.search,
            self.seed,
            self.walks,
            self.first_walk,
            self.steps,
            self.distinct_states,
            self.deepest,
            self.max_depth_per_walk,
            self.threads,
            self.seconds
        );
        let applicable: Vec<_> = self
            .witnesses
            .iter()
            .filter(|w| w.not_applicable.is_none())
            .collect();
        let reached = applicable.iter().filter(|w| w.reached).count();
        s += &format!("Witnesses reached: {reached} of {}.\n", applicable.len());
        for w in &applicable {
            match (w.walk, w.seconds) {
                (Some(k), Some(t)) => {
                    s += &format!("  reached      {} (walk {k}, {t:.1} s)\n", w.name)
                }
                _ => s += &format!("  not reached  {}\n", w.name),
            }
        }
        match &self.violation {
            Some(v) => {
                s += &format!(
                    "Swarm search found a problem: \"{}\" is violated (walk {}, after {:.1} s; \
                     {} steps, shortened to {}).\n",
                    v.property, v.walk, v.found_after_seconds, v.raw_length, v.shortened_length
                );
            }
            None => {
                let why = if self.interrupted {
                    "interrupted; "
                } else if self.out_of_budget {
                    "budget spent; "
                } else {
                    ""
                };
                s += &format!(
                    "No violation found in {} walks ({why}not a proof: a swarm search is never \
                     exhaustive). Incomplete.\n",
                    self.walks
                );
            }
        }
        s
    }
}

pub fn run(args: &SwarmArgs) -> i32 {
    if let Err(e) = args.search.validate() {
        return usage_error(e);
    }
    if let Err(e) = args.trace.validate() {
        return usage_error(e);
    }
    if let Some(Err(e)) = args.json.as_deref().map(|p| writable("--json", p)) {
        return usage_error(e);
    }
    let cfg = &args.model;
    if let Err(e) = cfg.validate() {
        return usage_error(e);
    }
    println!("Swarm search on Raft: {cfg}");
    // From here on, Ctrl-C stops the walks and still writes the report (exit 3).
    interrupt::install();
    let finished = run_search(cfg, &args.search, args.search.budget);
    let report = &finished.report;
    if let (Some(v), Some(path)) = (&report.violation, &finished.path) {
        println!(
            "\nCounterexample: \"{}\" is violated after {} steps (walk {}'s {} steps, shortened):",
            v.property, v.shortened_length, v.walk, v.raw_length
        );
        print!("{}", text_trace::render(cfg, path));
        println!("Replay the walk: {}", v.replay);
        println!(
            "Open it in the Explorer: raft-check explore {}, then the link's #/steps/{}",
            model_flags(cfg).join(" "),
            v.explorer_path
        );
        if let Some(out) = &args.trace.trace_out {
            if let Err(e) = export::write(cfg, &v.property, path, args.trace.trace_format, out) {
                return usage_error(e);
            }
            println!(
                "\nTrace of \"{}\" written to {} ({}).",
                v.property,
                out.display(),
                args.trace.trace_format.name()
            );
        }
    } else if let Some(out) = &args.trace.trace_out {
        eprintln!(
            "raft-check: no property is violated: {} not written",
            out.display()
        );
    }
    println!();
    print!("{}", report.summary());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(report).expect("report serializes");
        if let Err(e) = std::fs::write(path, text + "\n") {
            return usage_error(format!("cannot write {}: {e}", path.display()));
        }
    }
    report.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        cfg: ModelConfig,
    }

    // The replay command's model flags give back the bound they were written from.
    #[test]
    fn model_flags_parse_back_to_the_bound() {
        let cfg = ModelConfig {
            servers: 5,
            fast_backup: true,
            read_index: true,
            lossy: false,
            liveness: false,
            max_entries_per_append: Some(1),
            max_log_len: Some(3),
            pipeline: Some(raft_core::Window {
                entries: 2,
                bytes: usize::MAX,
            }),
            max_config_changes: 1,
            initial_voters: Some(4),
            network: raft_model::model::NetworkKind::Ordered,
            mutant: Some(raft_model::Mutant::VoteTwice),
            ..ModelConfig::default()
        };
        let mut argv = vec!["raft-check".to_string()];
        argv.extend(model_flags(&cfg));
        let parsed = Flags::try_parse_from(&argv).expect("the flags parse");
        assert_eq!(parsed.cfg, cfg, "{argv:?}");
    }
}
