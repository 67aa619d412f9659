//! Client histories under faults, checked for linearizability (beyond the lab).

use super::ensure;
use crate::lab::{LabResult, Params};
use crate::sim::network::NetParams;
use crate::sim::workload::Workload;
use crate::sim::{ms, Sim, SimOptions};
use raft_impl::node::replica::SnapshotPolicy;
use std::time::Duration;

/// Every history test compacts (§7): each server snapshots every 8 applied entries, so a
/// server that was cut off or down catches up by InstallSnapshot, and the histories cover
/// compaction and installs.
const SNAPSHOT_EVERY: SnapshotPolicy = SnapshotPolicy {
    entries: 8,
    bytes: 0,
};

/// The options of a history test: `servers`, the seed's disk faults, compaction on.
fn options(servers: usize, p: &Params) -> SimOptions {
    let mut opts = SimOptions::new(servers, p.seed);
    opts.disk = p.faults;
    opts.snapshot = SNAPSHOT_EVERY;
    opts
}

/// Runs the clients of `workload` until they finish (at most `limit` of virtual time), while
/// `nemesis` injects faults every `period`; then heals everything, lets the stragglers finish
/// and checks the history for linearizability (Jepsen style: timed-out operations are
/// indefinite).
fn run_history(
    sim: &mut Sim,
    workload: &Workload,
    period: Duration,
    limit: Duration,
    mut nemesis: impl FnMut(&mut Sim),
) -> LabResult {
    sim.add_clients(workload);
    let end = sim.now + limit;
    while !sim.clients_done() && sim.now < end {
        let next = sim.now + period;
        sim.run_until(next)?;
        nemesis(sim);
    }
    sim.heal();
    for i in 0..sim.servers() {
        if !sim.alive(i) {
            sim.restart(i);
        }
        sim.connect(i);
    }
    let end = sim.now + ms(30_000);
    while !sim.clients_done() && sim.now < end {
        sim.run_for(ms(100))?;
    }
    ensure(sim.clients_done(), || {
        "clients did not finish after healing".into()
    })?;
    sim.check()?;
    let summary = sim.history.summary();
    ensure(summary.returned > 0, || "no operation completed".into())?;
    let taken: u64 = (0..sim.servers()).map(|i| sim.compactions(i)).sum();
    let installed: u64 = (0..sim.servers()).map(|i| sim.installs(i)).sum();
    eprintln!("snapshots taken {taken}, installed {installed}");
    ensure(taken > 0, || "no server compacted its log".into())?;
    sim.history.check()
}

/// Client histories under partitions (minority leaders keep receiving requests), 10% loss, 2%
/// duplication: linearizable (Herlihy & Wing; checked with stateright).
pub fn linearizable_kv_partitions(p: &Params) -> LabResult {
    let mut sim = Sim::new(&options(5, p));
    sim.set_net(NetParams {
        unreliable: true,
        long_reordering: false,
        duplicate: 0.02,
        replay_frames: false,
    });
    run_history(&mut sim, &Workload::default(), ms(700), ms(60_000), |sim| {
        sim.heal();
        if sim.rng.u32(0..3) > 0 {
            // A random split, majority on one side.
            let mut ids: Vec<usize> = (0..sim.servers()).collect();
            sim.rng.shuffle(&mut ids);
            let k = sim.rng.usize(1..=2);
            let (a, b) = ids.split_at(k);
            let (a, b) = (a.to_vec(), b.to_vec());
            sim.partition(&a, &b);
        }
    })
}

/// Client histories while single servers crash (losing everything not synced) and restart.
pub fn linearizable_kv_crashes(p: &Params) -> LabResult {
    let mut sim = Sim::new(&options(3, p));
    sim.set_net(NetParams {
        unreliable: false,
        long_reordering: false,
        duplicate: 0.02,
        replay_frames: false,
    });
    run_history(&mut sim, &Workload::default(), ms(400), ms(60_000), |sim| {
        let i = sim.rng.usize(0..sim.servers());
        if sim.alive(i) {
            if sim.rng.u32(0..2) == 0 {
                sim.crash(i);
            }
        } else {
            sim.restart(i);
        }
    })
}

/// Client histories across whole-cluster power failures: every server crashes at once, then
/// all restart. Acknowledged writes must survive (they were fsynced on a majority).
pub fn linearizable_kv_power_failures(p: &Params) -> LabResult {
    let mut sim = Sim::new(&options(3, p));
    let mut rounds = 0u32;
    run_history(&mut sim, &Workload::default(), ms(300), ms(60_000), |sim| {
        rounds += 1;
        if rounds.is_multiple_of(4) {
            for i in 0..sim.servers() {
                sim.crash(i);
            }
            for i in 0..sim.servers() {
                sim.restart(i);
            }
        }
    })
}
