//! Trace conformance (`raft_model::conform`): simulator runs of the real runtime, with crashes
//! and message loss, replayed step by step against the stateright model; and broken runtimes
//! (switches in the simulator's fake disk and network, never in raft-impl) caught with a
//! readable report.

use raft_model::conform::ConformError;
use raft_tests::conformance::{ci_faults, trace_counts, traced_run, validate, Faults, TraceCounts};
use raft_tests::sim::disk::DiskFaults;
use rayon::prelude::*;
use std::time::Instant;

const SEEDS: u64 = 50;
const ROUNDS: u32 = 24;

#[test]
fn fifty_faulty_simulator_runs_conform_to_the_model() {
    let start = Instant::now();
    let results: Vec<_> = (1..=SEEDS)
        .into_par_iter()
        .map(|seed| {
            let sim = traced_run(seed, ci_faults(seed), ROUNDS);
            (seed, validate(&sim), trace_counts(&sim))
        })
        .collect();
    let mut steps = 0;
    let mut crashes = 0;
    let counts = results
        .iter()
        .fold(TraceCounts::default(), |sum, (_, _, c)| sum + *c);
    let runs_installing = results.iter().filter(|(_, _, c)| c.installs > 0).count();
    let TraceCounts {
        transfers,
        changes,
        compactions,
        installs,
    } = counts;
    for (seed, result, _) in &results {
        match result {
            Ok(s) => {
                steps += s.steps;
                crashes += s.crashes;
            }
            Err(e) => panic!("seed {seed} does not conform:\n{e}"),
        }
    }
    eprintln!(
        "{} runs, {steps} steps, {crashes} crashes, {transfers} leadership transfers, {changes} membership changes proposed, {compactions} snapshots taken, {installs} installed ({runs_installing} runs with an install): all conform ({:.1} s)",
        results.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(steps > 50 * 300, "too few steps to mean anything: {steps}");
    assert!(crashes >= 50 * 4, "too few crashes: {crashes}");
    assert!(transfers >= 50, "too few leadership transfers: {transfers}");
    assert!(changes >= 50, "too few membership changes: {changes}");
    assert!(
        compactions >= 50 * 5,
        "too few snapshots taken: {compactions}"
    );
    assert!(installs >= 50, "too few snapshots installed: {installs}");
}

/// The first of `seeds` whose run the broken runtime makes non-conforming, with its report.
fn caught(faults: Faults, seeds: std::ops::Range<u64>) -> (u64, String) {
    for seed in seeds {
        match validate(&traced_run(seed, faults, ROUNDS)) {
            Ok(_) => continue,
            Err(e) => return (seed, e.to_string()),
        }
    }
    panic!("the broken runtime {faults:?} was never caught");
}

#[test]
fn a_disk_that_acknowledges_before_fsync_is_caught_at_restart() {
    // The node sends (and answers) before its state is durable; a crash then loses what it
    // promised, and the restarted node does not come back with what the model saved.
    let faults = Faults {
        disk: DiskFaults {
            ack_before_fsync: true,
            ..DiskFaults::default()
        },
        ..Faults::default()
    };
    let (seed, report) = caught(faults, 1..20);
    eprintln!("ack-before-fsync, seed {seed}:\n{report}");
    assert!(report.starts_with("MISMATCH at step"), "{report}");
    assert!(report.contains(": restart\n"), "{report}");
    assert!(
        report.contains("log: model") || report.contains("current_term: model"),
        "{report}"
    );
}

#[test]
fn a_stale_restore_is_caught_at_restart() {
    let faults = Faults {
        disk: DiskFaults {
            stale_restore: true,
            ..DiskFaults::default()
        },
        ..Faults::default()
    };
    let (seed, report) = caught(faults, 1..20);
    eprintln!("stale restore, seed {seed}:\n{report}");
    assert!(report.contains(": restart\n"), "{report}");
    assert!(report.contains(": model "), "{report}");
    assert!(report.contains(", trace "), "{report}");
}

#[test]
fn a_message_delivered_twice_on_a_non_duplicating_run_is_caught() {
    let faults = Faults {
        replay_frames: true,
        ..Faults::default()
    };
    let (seed, report) = caught(faults, 1..20);
    eprintln!("frame replay, seed {seed}:\n{report}");
    assert!(report.contains("receive from"), "{report}");
    assert!(report.contains("message not in flight"), "{report}");
    assert!(report.contains("delivered at most once"), "{report}");
}

#[test]
fn the_same_replay_on_a_duplicating_run_conforms() {
    // The frame replay is a duplicating network in disguise: declared as one, it conforms
    // (so the catch above is the declaration being broken, not a false alarm).
    let sim = traced_run(
        3,
        Faults {
            replay_frames: true,
            duplicate: 0.01,
            ..Faults::default()
        },
        ROUNDS,
    );
    validate(&sim).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_tampered_trace_is_caught() {
    // The replay does compare states: change one term in one record and it must say where.
    let sim = traced_run(7, Faults::default(), 6);
    let mut traces = sim.traces().expect("parse");
    let record = traces[2]
        .iter_mut()
        .rev()
        .find(|r| r.state_after.is_some())
        .expect("a record with a state");
    if let Some(s) = record.state_after.as_mut() {
        s.hard.current_term += 1;
    }
    let err = raft_model::conform::conform(traces, &sim.run_info()).unwrap_err();
    let ConformError::Mismatch(m) = &err else {
        panic!("expected a mismatch, got {err}");
    };
    assert_eq!(m.node.0, 2);
    assert!(
        m.problems
            .iter()
            .any(|p| p.starts_with("current_term: model")),
        "{err}"
    );
}
