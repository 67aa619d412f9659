//! Simulator runs for trace conformance: the scenario CI validates (`tests/tests/conform.rs`,
//! `raft-tests conform-traces`), and the broken runtimes it must catch.

use crate::sim::disk::DiskFaults;
use crate::sim::network::NetParams;
use crate::sim::workload::Workload;
use crate::sim::{ms, Sim, SimOptions};
use raft_impl::core::{Message, NodeId, Payload};
use raft_impl::node::replica::SnapshotPolicy;
use raft_impl::wire::MemberRequest;
use raft_model::conform::{conform, ConformError, Summary, TraceEvent};

/// The faults of one traced run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    pub disk: DiskFaults,
    /// Probability that the network delivers a message twice (a duplicating run).
    pub duplicate: f64,
    /// The broken transport that hands every message to the core twice.
    pub replay_frames: bool,
}

/// The scenario's snapshot policy: a snapshot every 8 applied entries, so that every run
/// compacts many times and a server that was down or removed catches up by InstallSnapshot.
pub const SNAPSHOT_ENTRIES: u64 = 8;

/// The CI scenario: 5 servers of the real runtime, 3 clients, labrpc's unreliable network
/// (10% of messages lost, 0–26 ms delays), one crash every third 250 ms round and restarts, a
/// leadership transfer to a live server in the round after each crash, and a membership
/// change in the round after that (the leader removes a live voter while more than three are
/// left, adds a removed server back as a learner, or promotes a learner), for `rounds`
/// rounds; then every server restarts and the cluster runs one more second. Every server
/// compacts its log every [`SNAPSHOT_ENTRIES`] applied entries (the node's own
/// `Event::Compact` path), so the traces hold `Compact` steps and InstallSnapshot messages.
pub fn traced_run(seed: u64, faults: Faults, rounds: u32) -> Sim {
    let mut opts = SimOptions::new(5, seed);
    opts.trace = true;
    opts.snapshot = SnapshotPolicy {
        entries: SNAPSHOT_ENTRIES,
        bytes: 0,
    };
    opts.disk = faults.disk;
    let mut sim = Sim::new(&opts);
    sim.set_net(NetParams {
        unreliable: true,
        long_reordering: false,
        duplicate: faults.duplicate,
        replay_frames: faults.replay_frames,
    });
    sim.add_clients(&Workload {
        ops_per_client: 20,
        ..Workload::default()
    });
    for round in 0..rounds {
        // A broken runtime may trip the simulator's own checks; conformance judges the trace.
        let _ = sim.run_for(ms(250));
        let i = sim.rng.usize(0..5);
        if round % 3 == 0 {
            sim.crash(i);
        } else if !sim.alive(i) {
            sim.restart(i);
        } else if round % 3 == 1 {
            // An operator hands the leadership, if any, to server i (thesis §3.10).
            let leader = (0..5).find(|&l| sim.state(l).is_some_and(|(_, leads)| leads));
            if let Some(l) = leader.filter(|&l| l != i) {
                sim.transfer_leadership(l, i);
            }
        } else if let Some(l) = (0..5).find(|&l| sim.state(l).is_some_and(|(_, leads)| leads)) {
            // An operator changes the membership concerning server i (thesis ch. 4).
            let id = i as u64;
            let request = sim.server(l).and_then(|s| {
                let m = s.membership(sim.config(l));
                let voter = m.voters.contains(&NodeId(id));
                if voter && m.voters.len() > 3 {
                    Some(MemberRequest::Remove { id })
                } else if m.learners.contains(&NodeId(id)) {
                    Some(MemberRequest::Promote { id })
                } else if !voter {
                    Some(MemberRequest::AddLearner { id, address: None })
                } else {
                    None
                }
            });
            if let Some(request) = request {
                sim.member(l, request);
            }
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

/// The CI seeds: every fifth is a duplicating run (2% of messages delivered twice).
pub fn ci_faults(seed: u64) -> Faults {
    Faults {
        duplicate: if seed.is_multiple_of(5) { 0.02 } else { 0.0 },
        ..Faults::default()
    }
}

/// What a traced run's records hold, for the scenario's assertions and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceCounts {
    /// Leadership transfers started (`TransferLeadership` steps).
    pub transfers: usize,
    /// Configuration entries proposed (membership changes).
    pub changes: usize,
    /// Snapshots taken (`Compact` steps).
    pub compactions: usize,
    /// InstallSnapshot messages handed to a core (`Receive` steps).
    pub installs: usize,
}

impl std::ops::Add for TraceCounts {
    type Output = TraceCounts;
    fn add(self, o: TraceCounts) -> TraceCounts {
        TraceCounts {
            transfers: self.transfers + o.transfers,
            changes: self.changes + o.changes,
            compactions: self.compactions + o.compactions,
            installs: self.installs + o.installs,
        }
    }
}

/// Counts `sim`'s traced steps (all zero if it kept no traces).
pub fn trace_counts(sim: &Sim) -> TraceCounts {
    let Ok(traces) = sim.traces() else {
        return TraceCounts::default();
    };
    let mut c = TraceCounts::default();
    for record in traces.iter().flatten() {
        match &record.event {
            TraceEvent::TransferLeadership { .. } => c.transfers += 1,
            TraceEvent::Propose { command } if command.configuration().is_some() => c.changes += 1,
            TraceEvent::Compact { .. } => c.compactions += 1,
            TraceEvent::Receive {
                msg: Message::InstallSnapshot(_),
                ..
            } => c.installs += 1,
            _ => {}
        }
    }
    c
}

/// Replays a traced run against the model, through the JSON Lines the runtime wrote.
pub fn validate(sim: &Sim) -> Result<Summary, ConformError> {
    let traces = sim.traces().map_err(ConformError::Invalid)?;
    conform(traces, &sim.run_info())
}
