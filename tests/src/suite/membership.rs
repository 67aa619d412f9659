//! Membership changes under load (Ongaro's thesis ch. 4, raft-core's membership.rs): not a
//! test of the 6.5840 lab, which has none; the same harness and limits.

use super::ensure;
use crate::lab::{Lab, LabResult, Params, ELECTION_TIMEOUT};
use crate::sim::workload::Workload;
use crate::sim::{ms, SimOptions};
use raft_impl::wire::{ClientReply, MemberRequest};

/// Servers in the address book; the last starts outside the cluster.
const SERVERS: usize = 4;

/// Replacing a voter under load: four servers, three of them the initial configuration; the
/// fourth, started empty, is added as a learner, promoted once caught up, and the leader then
/// removes itself (it steps down once that is committed) and is stopped. Two clients write
/// and read throughout: every acknowledged write is applied by every remaining member, the
/// history is linearizable, and the new configuration elects a leader among its voters.
pub fn membership_change(p: &Params) -> LabResult {
    let opts = SimOptions {
        initial_voters: Some(SERVERS - 1),
        ..SimOptions::new(SERVERS, p.seed)
    };
    let mut lab = Lab::with_options(opts, p);
    let first = lab.check_one_leader()?;
    let workload = Workload {
        clients: 2,
        ops_per_client: 1000,
        think: ms(20),
        ..Workload::default()
    };
    lab.sim.add_clients(&workload);
    lab.sleep(ELECTION_TIMEOUT)?;

    let newcomer = SERVERS as u64 - 1;
    let added = change(
        &mut lab,
        MemberRequest::AddLearner {
            id: newcomer,
            address: None,
        },
    )?;
    ensure(added == (vec![0, 1, 2], vec![newcomer]), || {
        format!("after adding {newcomer}: {added:?}")
    })?;
    let promoted = change(&mut lab, MemberRequest::Promote { id: newcomer })?;
    ensure(promoted == (vec![0, 1, 2, newcomer], vec![]), || {
        format!("after promoting {newcomer}: {promoted:?}")
    })?;
    // The leader of the moment removes itself.
    let leader = lab.check_one_leader()?;
    let removed = change(&mut lab, MemberRequest::Remove { id: leader as u64 })?;
    let rest: Vec<u64> = (0..SERVERS as u64)
        .filter(|&i| i != leader as u64)
        .collect();
    ensure(removed == (rest.clone(), vec![]), || {
        format!("after removing {leader}: {removed:?}")
    })?;
    // Its operator stops it; the others elect a leader among themselves.
    lab.sim.crash(leader);
    let stopped = lab.sim.now;
    let next = lab.check_one_leader()?;
    ensure(next != leader, || format!("server {leader} still leads"))?;

    lab.finish_clients(ms(60_000), |lab| {
        format!(
            "first leader {first}, removed {leader}:\n{}",
            lab.sim.describe()
        )
    })?;
    ensure(lab.acked_since(stopped) > 0, || {
        format!(
            "no write acknowledged in the new configuration (stopped at {stopped:?}, now {:?}, \
             acked {})",
            lab.sim.now,
            lab.sim.clients.iter().map(|c| c.acked.len()).sum::<usize>()
        )
    })?;
    // Every acknowledged write is applied by every remaining member, the newcomer included.
    for client in &lab.sim.clients {
        for (_, command) in &client.acked {
            for &i in &rest {
                let s = lab.sim.server(i as usize).ok_or("a member is down")?;
                let held = s
                    .log()
                    .iter()
                    .take(s.last_applied as usize)
                    .any(|e| e.command == *command);
                ensure(held, || {
                    format!("server {i} did not apply the acknowledged {command:?}")
                })?;
            }
        }
    }
    Ok(())
}

/// Asks whoever leads for `request` until the change is applied (the answer lists the
/// configuration), or the lab's limit passes. A leader that refuses for now (no entry of its
/// term committed yet, an earlier change pending, a learner still behind) is asked again.
fn change(lab: &mut Lab, request: MemberRequest) -> LabResult<(Vec<u64>, Vec<u64>)> {
    let deadline = lab.sim.now + ms(10_000);
    while lab.sim.now < deadline {
        let leader = lab.check_one_leader()?;
        let seen = lab.sim.admin_replies.len();
        lab.sim.member(leader, request.clone());
        // The answer comes once the entry is applied (a round trip or two), or at once.
        let asked = lab.sim.now;
        while lab.sim.admin_replies.len() == seen && lab.sim.now < asked + ELECTION_TIMEOUT {
            lab.sleep(ms(5))?;
        }
        match lab.sim.admin_replies.get(seen).map(|(_, _, r)| r.clone()) {
            Some(ClientReply::Members {
                voters, learners, ..
            }) => return Ok((voters, learners)),
            Some(ClientReply::Refused(why)) if !why.contains("retry shortly") => {
                return Err(format!("{request:?} refused: {why}"));
            }
            _ => lab.sleep(ms(50))?,
        }
    }
    Err(format!(
        "{request:?} not done within 10 s: {:?}",
        lab.sim.admin_replies
    ))
}
