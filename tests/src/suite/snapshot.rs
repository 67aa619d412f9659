//! 3D: log compaction (`TestSnapshotBasic3D` … `TestSnapshotInit3D`). The lab's applier takes a
//! snapshot every [`SNAPSHOT_INTERVAL`] applied entries; here the replicas do, by their
//! [`SnapshotPolicy`], through the node's own path (`Event::Compact` with the store's image,
//! InstallSnapshot, the store restored from a snapshot on install and restart).
//!
//! Beyond the lab, two key-value clients write and read throughout every test: afterwards
//! every write acknowledged to them has been applied by every server (from the log or inside
//! a snapshot: the simulator checks that every server's snapshot at an index is the same
//! image), their history is linearizable, and compactions and InstallSnapshots (which the lab
//! cannot count) really happened.

use super::ensure;
use crate::lab::{cmd, Lab, LabResult, Params};
use crate::sim::workload::Workload;
use crate::sim::{ms, SimOptions};
use raft_impl::core::Index;
use raft_impl::kv::Command;
use raft_impl::node::replica::SnapshotPolicy;
use std::collections::BTreeMap;

/// The lab's `SnapShotInterval`: a snapshot every 10 applied entries.
pub const SNAPSHOT_INTERVAL: u64 = 10;

/// The lab's `MAXLOGSIZE`: no server's log (since its snapshot) may exceed 2,000 bytes, in the
/// encoding the WAL writes.
pub const MAX_LOG_BYTES: usize = 2000;

fn lab(servers: usize, p: &Params) -> Lab {
    let opts = SimOptions {
        snapshot: SnapshotPolicy {
            entries: SNAPSHOT_INTERVAL,
            bytes: 0,
        },
        ..SimOptions::new(servers, p.seed)
    };
    let mut lab = Lab::with_options(opts, p);
    lab.sim.add_clients(&Workload {
        clients: 2,
        ops_per_client: 150,
        think: ms(40),
        ..Workload::default()
    });
    lab
}

/// The lab's `LogSize` check, on every live server.
fn check_log_size(lab: &Lab) -> LabResult {
    for i in 0..lab.n() {
        let Some(s) = lab.sim.server(i) else {
            continue;
        };
        let bytes = postcard::to_allocvec(s.log()).map_or(usize::MAX, |b| b.len());
        ensure(bytes < MAX_LOG_BYTES, || {
            format!(
                "Log size too large: server {i} holds {} entries ({bytes} bytes) after its \
                 snapshot at {}",
                s.log().len(),
                s.snapshot_index()
            )
        })?;
    }
    Ok(())
}

/// The clients finish; every write acknowledged to them is applied by every server; their
/// history is linearizable; there were at least `compactions` snapshots taken and `installs`
/// installed from a leader.
fn finish(lab: &mut Lab, compactions: u64, installs: u64) -> LabResult {
    let servers = lab.n();
    for i in 0..servers {
        if !lab.sim.alive(i) {
            lab.start1(i);
        }
        lab.connect(i);
    }
    lab.set_unreliable(false);
    lab.finish_clients(ms(60_000), |lab| lab.sim.describe())?;
    // A last entry through every server, so that all apply every acknowledged write.
    let v = lab.value();
    lab.one(cmd(v), servers, true)?;
    let mut applied_by: BTreeMap<(u64, u64), Vec<(Index, usize)>> = BTreeMap::new();
    let last = (0..servers)
        .filter_map(|i| lab.sim.server(i).map(|s| s.last_applied))
        .max()
        .unwrap_or(0);
    for index in 1..=last {
        if let (n, Some(c)) = lab.n_committed(index)? {
            applied_by
                .entry((c.client_id, c.seq))
                .or_default()
                .push((index, n));
        }
    }
    let mut acked = 0;
    for client in &lab.sim.clients {
        for (at, command) in &client.acked {
            acked += 1;
            let held = |i: usize| held_by(lab, i, command);
            let missing: Vec<usize> = (0..servers).filter(|&i| !held(i)).collect();
            ensure(missing.is_empty(), || {
                format!(
                    "the write {command:?} acknowledged at {at:?} is not applied by servers \
                     {missing:?} (applied at {:?})",
                    applied_by.get(&(command.client_id, command.seq))
                )
            })?;
        }
    }
    ensure(acked > 0, || "no write was acknowledged".into())?;
    let taken: u64 = (0..servers).map(|i| lab.sim.compactions(i)).sum();
    let installed: u64 = (0..servers).map(|i| lab.sim.installs(i)).sum();
    ensure(taken >= compactions, || {
        format!("{taken} snapshots taken, expected at least {compactions}")
    })?;
    ensure(installed >= installs, || {
        format!("{installed} snapshots installed from a leader, expected at least {installs}")
    })?;
    check_log_size(lab)?;
    lab.sim.check()?;
    lab.sim.history.check()
}

/// Server `i` applied `command` (from its log, or inside a snapshot it took or installed).
fn held_by(lab: &Lab, i: usize, command: &Command) -> bool {
    lab.sim.applied(i).values().any(|c| c == command)
}

/// The lab's `snapcommon`: 30 rounds; in each, a victim (a follower, or every third round the
/// leader) is disconnected or crashed while the others commit enough entries to take a
/// snapshot past it; then it comes back and must catch up (by InstallSnapshot).
fn snapcommon(p: &Params, disconnect: bool, reliable: bool, crash: bool) -> LabResult {
    let iters = 30;
    let servers = 3;
    let mut lab = lab(servers, p);
    lab.set_unreliable(!reliable);
    let v = lab.value();
    lab.one(cmd(v), servers, true)?;
    let mut leader1 = lab.check_one_leader()?;
    for i in 0..iters {
        let mut victim = (leader1 + 1) % servers;
        let mut sender = leader1;
        if i % 3 == 1 {
            sender = (leader1 + 1) % servers;
            victim = leader1;
        }
        if disconnect {
            lab.disconnect(victim);
            let v = lab.value();
            lab.one(cmd(v), servers - 1, true)?;
        }
        if crash {
            lab.crash1(victim);
            let v = lab.value();
            lab.one(cmd(v), servers - 1, true)?;
        }
        // Perhaps send enough to get a snapshot.
        let nn = SNAPSHOT_INTERVAL / 2 + lab.rng.u64(0..SNAPSHOT_INTERVAL);
        for _ in 0..nn {
            let v = lab.value();
            lab.start(sender, cmd(v));
        }
        // Let the appliers catch up with the starts.
        let expected = if !disconnect && !crash {
            servers
        } else {
            servers - 1
        };
        let v = lab.value();
        lab.one(cmd(v), expected, true)?;
        check_log_size(&lab)?;
        if disconnect {
            // Reconnect a follower, which may be behind and need a snapshot.
            lab.connect(victim);
            let v = lab.value();
            lab.one(cmd(v), servers, true)?;
            leader1 = lab.check_one_leader()?;
        }
        if crash {
            lab.start1(victim);
            lab.connect(victim);
            let v = lab.value();
            lab.one(cmd(v), servers, true)?;
            leader1 = lab.check_one_leader()?;
        }
    }
    // Seeds 1-20 (pipelining) took 87-116 snapshots and installed 20-32 in the rounds with a
    // victim.
    let installs = if disconnect || crash { iters / 6 } else { 0 };
    finish(&mut lab, iters / 2, installs)
}

/// 3D TestSnapshotBasic3D: snapshots are taken and the log stays short, no faults.
pub fn snapshot_basic(p: &Params) -> LabResult {
    snapcommon(p, false, true, false)
}

/// 3D TestSnapshotInstall3D: a disconnected server catches up by InstallSnapshot.
pub fn snapshot_install(p: &Params) -> LabResult {
    snapcommon(p, true, true, false)
}

/// 3D TestSnapshotInstallUnreliable3D: the same on an unreliable network.
pub fn snapshot_install_unreliable(p: &Params) -> LabResult {
    snapcommon(p, true, false, false)
}

/// 3D TestSnapshotInstallCrash3D: a crashed server restarts from its snapshot and catches up.
pub fn snapshot_install_crash(p: &Params) -> LabResult {
    snapcommon(p, false, true, true)
}

/// 3D TestSnapshotInstallUnCrash3D: the same on an unreliable network.
pub fn snapshot_install_uncrash(p: &Params) -> LabResult {
    snapcommon(p, false, false, true)
}

/// 3D TestSnapshotAllCrash3D: crash and restart all servers after each burst of entries; the
/// log index never goes back (their snapshots and logs survive).
pub fn snapshot_all_crash(p: &Params) -> LabResult {
    let servers = 3;
    let iters = 5;
    let mut lab = lab(servers, p);
    let v = lab.value();
    lab.one(cmd(v), servers, true)?;
    for _ in 0..iters {
        // Perhaps enough to get a snapshot.
        let nn = SNAPSHOT_INTERVAL / 2 + lab.rng.u64(0..SNAPSHOT_INTERVAL);
        for _ in 0..nn {
            let v = lab.value();
            lab.one(cmd(v), servers, true)?;
        }
        let v = lab.value();
        let index1 = lab.one(cmd(v), servers, true)?;
        // Crash all.
        for i in 0..servers {
            lab.crash1(i);
        }
        // Revive all.
        for i in 0..servers {
            lab.start1(i);
            lab.connect(i);
        }
        let v = lab.value();
        let index2 = lab.one(cmd(v), servers, true)?;
        ensure(index2 > index1, || {
            format!("index decreased from {index1} to {index2}")
        })?;
    }
    let restored = (0..servers)
        .filter_map(|i| lab.sim.server(i))
        .all(|s| s.snapshot_index() > 0);
    ensure(restored, || "a server restarted without a snapshot".into())?;
    finish(&mut lab, iters, 0)
}

/// 3D TestSnapshotInit3D: a snapshot is taken, all servers restart (from it), one entry is
/// written, all restart again: the state is preserved each time.
pub fn snapshot_init(p: &Params) -> LabResult {
    let servers = 3;
    let mut lab = lab(servers, p);
    let v = lab.value();
    lab.one(cmd(v), servers, true)?;
    // Enough ops to make a snapshot.
    for _ in 0..=SNAPSHOT_INTERVAL {
        let v = lab.value();
        lab.one(cmd(v), servers, false)?;
    }
    for round in 0..2 {
        for i in 0..servers {
            lab.crash1(i);
        }
        for i in 0..servers {
            lab.start1(i);
            lab.connect(i);
        }
        let restored = (0..servers)
            .filter_map(|i| lab.sim.server(i))
            .all(|s| s.snapshot_index() > 0);
        ensure(restored, || {
            format!("round {round}: a server restarted without a snapshot")
        })?;
        // A single op, to get something written back to persistent storage.
        let v = lab.value();
        lab.one(cmd(v), servers, true)?;
    }
    finish(&mut lab, 3, 0)
}
