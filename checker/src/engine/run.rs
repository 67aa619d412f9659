//! Running the stateright checker on the model, with progress lines and an honest verdict.

use crate::engine::bfs;
use crate::engine::compact::Limits;
use crate::engine::dfs;
use crate::engine::interrupt;
use crate::engine::options::{Engine, RunArgs, Strategy};
use crate::engine::owned;
use crate::engine::shortest::{self, Search};
use crate::report::check_report::{
    CheckReport, Counterexample, EngineJson, ExpectationJson, PropertyJson, Status,
};
use crate::report::text_trace::{self, Action};
use raft_model::model::{independence, symmetry, ModelConfig, RaftModel, RaftState};
use stateright::{Checker, Expectation, HasDiscoveries, Model, Path, UniformChooser};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A finished check: the report and the paths of every discovery (violations and witnesses).
pub struct Outcome {
    pub report: CheckReport,
    pub paths: Vec<(&'static str, Path<RaftState, Action>)>,
}

impl Outcome {
    pub fn path(&self, name: &str) -> Option<&Path<RaftState, Action>> {
        self.paths.iter().find(|(n, _)| *n == name).map(|(_, p)| p)
    }
}

/// A model the checker explores: the bound's own (`RaftModel`).
pub trait Explored:
    Model<State = RaftState, Action = Action> + Send + Sync + Sized + 'static
{
    /// The bound's model (for shortening counterexamples from its initial states).
    fn raft(&self) -> &RaftModel;
    /// Whether the compact engine may use sleep sets: where the bound's independence relation
    /// is sound (`raft_model::model::independence`) and the boundary is the bound's own.
    fn sleep_sets_apply(&self) -> bool {
        independence::applies(&self.raft().cfg)
    }
}

impl Explored for RaftModel {
    fn raft(&self) -> &RaftModel {
        self
    }
}

/// Check `cfg` as `run` says. Progress goes to stderr when `run.progress > 0`.
pub fn check(cfg: &ModelConfig, run: &RunArgs) -> Outcome {
    check_model(cfg, run, cfg.clone().into_model())
}

/// Check `model` (the bound `cfg`) as `run` says.
pub fn check_model<M: Explored>(cfg: &ModelConfig, run: &RunArgs, model: M) -> Outcome {
    let threads = run.thread_count();
    let start = Instant::now();
    if run.engine == Engine::Timely {
        let limits = Limits {
            timeout: run.timeout.map(Duration::from_secs_f64),
            max_states: run.max_states,
            stop: Some(&interrupt::REQUESTED),
        };
        let cluster = run
            .addresses()
            .expect("check validates --hostfile before it starts")
            .map(|addresses| owned::Cluster {
                process: run.process,
                addresses,
            });
        let options = owned::Options {
            symmetry: run.symmetry,
            threads,
            cluster,
            limits,
        };
        let (checker, measured) = owned::spawn(model, options);
        let stats = checker.stats();
        let mut outcome = drive(cfg, run, threads * run.processes, start, checker);
        if let Some(why) = measured.failure.lock().expect("failure lock").as_ref() {
            eprintln!("raft-check: {why}: no verdict");
        }
        if measured
            .incomplete
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            outcome.report.complete = false;
            for p in &mut outcome.report.properties {
                if matches!(p.status, Status::Holds | Status::NotWitnessed) {
                    p.status = Status::Unknown;
                }
            }
        }
        let workers = measured.workers.lock().expect("workers lock").clone();
        outcome.report.engine = Some(EngineJson {
            name: Engine::Timely.name().to_string(),
            sleep_sets: false,
            slept_steps: 0,
            woken_steps: 0,
            widest_level: Some(stats.widest_level()),
            workers: Some(workers),
        });
        return outcome;
    }
    if run.engine == Engine::Compact {
        let limits = Limits {
            timeout: run.timeout.map(Duration::from_secs_f64),
            max_states: run.max_states,
            stop: Some(&interrupt::REQUESTED),
        };
        let bfs = run.strategy == Strategy::Bfs;
        let sleep_sets = !bfs && run.sleep_sets && model.sleep_sets_apply();
        let checker = if bfs {
            let options = bfs::Options {
                symmetry: run.symmetry,
                threads,
                limits: limits.clone(),
            };
            bfs::spawn(model, options)
        } else {
            let options = dfs::Options {
                symmetry: run.symmetry,
                sleep_sets: sleep_sets.then(|| model.raft().cfg.clone()),
                limits: limits.clone(),
            };
            dfs::spawn(model, options)
        };
        let stats = checker.stats();
        let mut outcome = drive(cfg, run, threads, start, checker);
        outcome.report.engine = Some(EngineJson {
            name: Engine::Compact.name().to_string(),
            sleep_sets,
            slept_steps: stats.slept_steps(),
            woken_steps: stats.woken_steps(),
            widest_level: bfs.then(|| stats.widest_level()),
            workers: None,
        });
        return outcome;
    }
    let mut builder = model
        .checker()
        .threads(threads)
        .finish_when(HasDiscoveries::AnyFailures);
    if let Some(t) = run.timeout {
        builder = builder.timeout(Duration::from_secs_f64(t));
    }
    if let Some(m) = run.max_states {
        builder = builder.target_state_count(m);
    }
    if run.symmetry {
        builder = builder.symmetry_fn(symmetry::representative);
    }
    match run.strategy {
        Strategy::Bfs => drive(cfg, run, threads, start, builder.spawn_bfs()),
        Strategy::Dfs => drive(cfg, run, threads, start, builder.spawn_dfs()),
        Strategy::Sim => drive(
            cfg,
            run,
            threads,
            start,
            builder.spawn_simulation(run.seed, UniformChooser),
        ),
    }
}

fn drive<M: Explored, C: Checker<M>>(
    cfg: &ModelConfig,
    run: &RunArgs,
    threads: usize,
    start: Instant,
    checker: C,
) -> Outcome {
    let mut last_progress = Instant::now();
    let mut asked_to_stop: Option<Instant> = None;
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(20));
        if interrupt::requested() {
            // Give the search a moment to stop on its own (the checker's own engine does).
            let asked = *asked_to_stop.get_or_insert_with(Instant::now);
            if asked.elapsed() >= Duration::from_secs(2) {
                break;
            }
            continue;
        }
        if run.progress > 0.0 && last_progress.elapsed().as_secs_f64() >= run.progress {
            last_progress = Instant::now();
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "progress: {} states, {} distinct, {:.0} distinct/s, depth {}, {:.0} s",
                checker.state_count(),
                checker.unique_state_count(),
                checker.unique_state_count() as f64 / secs.max(1e-9),
                checker.max_depth(),
                secs
            );
        }
    }
    // Ctrl-C: the checker's own engine stops within a few thousand states; stateright's
    // checkers cannot be stopped, so the report is taken from them running (their threads end
    // with the process).
    let interrupted = interrupt::requested();
    let checker = if checker.is_done() {
        checker.join()
    } else {
        checker
    };
    let seconds = start.elapsed().as_secs_f64();

    let mut report = CheckReport::new(cfg, run.strategy, threads, run.symmetry);
    report.seconds = seconds;
    report.unique_states = checker.unique_state_count();
    report.total_states = checker.state_count();
    report.max_depth = checker.max_depth();
    report.peak_memory_bytes = crate::engine::memory::peak_bytes();
    report.interrupted = interrupted;

    let model = checker.model();
    let discoveries: HashMap<&'static str, Path<RaftState, Action>> = checker.discoveries();
    let any_violation = model
        .properties()
        .iter()
        .any(|p| p.expectation == Expectation::Always && discoveries.contains_key(p.name));
    let timed_out = run
        .timeout
        .is_some_and(|t| seconds >= t - 0.05 && !any_violation);
    let capped = run.max_states.is_some_and(|m| report.total_states >= m);
    // Simulation never proves anything; a run stopped at a violation did not explore everything.
    report.complete =
        run.strategy != Strategy::Sim && !timed_out && !capped && !any_violation && !interrupted;

    let mut paths = Vec::new();
    for p in model.properties() {
        let found = discoveries.get(p.name);
        let expectation = match p.expectation {
            Expectation::Always => ExpectationJson::Always,
            _ => ExpectationJson::Sometimes,
        };
        let status = match (expectation, found.is_some(), report.complete) {
            (ExpectationJson::Always, true, _) => Status::Violated,
            (ExpectationJson::Always, false, true) => Status::Holds,
            (ExpectationJson::Sometimes, true, _) => Status::Witnessed,
            (ExpectationJson::Sometimes, false, true) => Status::NotWitnessed,
            (_, false, false) => Status::Unknown,
        };
        let mut found = found.cloned();
        let mut shortest = false;
        if status == Status::Violated {
            // Replace the discovery by a shortest path to a violation of this property.
            let budget = Instant::now() + Duration::from_secs_f64(run.shorten_budget);
            if let Search::Violated { property, path, .. } =
                shortest::search(model.raft(), &[p.name], Some(budget), run.symmetry)
            {
                debug_assert_eq!(property, p.name);
                found = Some(path);
                shortest = true;
            }
        }
        let counterexample = match (status, &found) {
            (Status::Violated, Some(path)) => Some(Counterexample {
                length: path.clone().into_actions().len(),
                actions: text_trace::actions(cfg, path),
                shortest,
                continuation: text_trace::continuation(cfg, path),
            }),
            _ => None,
        };
        if let Some(path) = found {
            paths.push((p.name, path));
        }
        report.properties.push(PropertyJson {
            name: p.name.to_string(),
            expectation,
            status,
            counterexample,
            note: None,
        });
    }
    for (name, why) in cfg.inapplicable_witnesses() {
        report.properties.push(PropertyJson {
            name: name.to_string(),
            expectation: ExpectationJson::Sometimes,
            status: Status::NotApplicable,
            counterexample: None,
            note: Some(format!("unreachable with {why}")),
        });
    }
    Outcome { report, paths }
}
