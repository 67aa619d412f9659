//! Trace conformance (`raft_model::conform`): simulator runs of the real runtime, with crashes
//! and message loss, replayed step by step against the stateright model; and broken runtimes
//! (switches in the simulator's fake disk and network, never in raft-impl) caught with a
//! readable report.

use raft_model::conform::{conform, ConformError, Summary};
use raft_tests::sim::clients::Workload;
use raft_tests::sim::disk::DiskFaults;
use raft_tests::sim::network::NetParams;
use raft_tests::sim::{ms, Sim, SimOptions};

/// A faulty run: 5 servers, clients, 10% loss, delays, crashes and restarts.
fn faulty_run(seed: u64, disk: DiskFaults, net: NetParams, rounds: u32) -> Sim {
    let mut opts = SimOptions::new(5, seed);
    opts.trace = true;
    opts.disk = disk;
    let mut sim = Sim::new(&opts);
    sim.set_net(net);
    let workload = Workload {
        ops_per_client: 15,
        ..Workload::default()
    };
    sim.add_clients(&workload);
    for round in 0..rounds {
        // A broken runtime may trip the simulator's own checks; conformance judges the trace.
        let _ = sim.run_for(ms(250));
        let i = sim.rng.usize(0..5);
        if round % 3 == 0 {
            sim.crash(i);
        } else if !sim.alive(i) {
            sim.restart(i);
        }
    }
    for i in 0..5 {
        if !sim.alive(i) {
            sim.restart(i);
        }
    }
    let _ = sim.run_for(ms(1000));
    sim
}

fn lossy(duplicate: f64) -> NetParams {
    NetParams {
        unreliable: true,
        long_reordering: false,
        duplicate,
        replay_frames: false,
    }
}

fn validate(sim: &Sim) -> Result<Summary, ConformError> {
    let traces = sim.traces().map_err(ConformError::Invalid)?;
    conform(traces, &sim.run_info())
}

#[test]
fn a_correct_run_conforms() {
    let sim = faulty_run(1, DiskFaults::default(), lossy(0.0), 12);
    let summary = validate(&sim).unwrap_or_else(|e| panic!("{e}"));
    assert!(summary.steps > 100, "{summary:?}");
}

#[test]
fn summary_probe() {
    let sim = faulty_run(2, DiskFaults::default(), lossy(0.0), 12);
    let s = validate(&sim);
    eprintln!("{s:?} turns {}", sim.turns);
    let sim = faulty_run(3, DiskFaults::default(), lossy(0.05), 12);
    eprintln!("dup {:?}", validate(&sim));
    let sim = faulty_run(
        4,
        DiskFaults {
            ack_before_fsync: true,
            ..DiskFaults::default()
        },
        lossy(0.0),
        24,
    );
    eprintln!("ack {}", validate(&sim).unwrap_err());
    let sim = faulty_run(
        4,
        DiskFaults {
            stale_restore: true,
            ..DiskFaults::default()
        },
        lossy(0.0),
        12,
    );
    eprintln!("stale {}", validate(&sim).unwrap_err());
    let sim = faulty_run(
        4,
        DiskFaults::default(),
        NetParams {
            replay_frames: true,
            ..lossy(0.0)
        },
        12,
    );
    eprintln!("replay {}", validate(&sim).unwrap_err());
}

#[test]
fn dump_probe() {
    let sim = faulty_run(2, DiskFaults::default(), lossy(0.0), 12);
    sim.write_traces(std::path::Path::new("/tmp/c2")).unwrap();
}
