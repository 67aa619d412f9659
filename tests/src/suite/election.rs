//! 3A: leader election (`TestInitialElection`, `TestReElection`, `TestManyElections`); and,
//! beyond the lab, a leader that a partial partition must not depose ([`partial_partition`]),
//! and a leadership transfer under writes ([`leadership_transfer`]).

use super::ensure;
use crate::lab::{cmd, Lab, LabResult, Params, ELECTION_TIMEOUT};
use crate::sim::workload::Workload;
use crate::sim::{ms, SimOptions};
use raft_impl::core::{Index, Term};
use raft_impl::kv::Command;
use raft_impl::wire::ClientReply;
use std::collections::BTreeMap;

/// 3A TestInitialElection: a leader is elected, terms stay put without failures.
pub fn initial_election(p: &Params) -> LabResult {
    let mut lab = Lab::new(3, p);
    lab.check_one_leader()?;
    lab.sleep(ms(50))?;
    let term1 = lab.check_terms()?;
    ensure(term1 >= 1, || {
        format!("term is {term1}, but election should change term")
    })?;
    lab.sleep(2 * ELECTION_TIMEOUT)?;
    let term2 = lab.check_terms()?;
    // The lab only warns here; with a reliable network and no failures we require it.
    ensure(term1 == term2, || {
        format!("term changed ({term1} -> {term2}) with no failures")
    })?;
    lab.check_one_leader()?;
    Ok(())
}

/// 3A TestReElection: a new leader after the old one is disconnected; no leader without a
/// quorum.
pub fn re_election(p: &Params) -> LabResult {
    let mut lab = Lab::new(3, p);
    let n = 3;
    let leader1 = lab.check_one_leader()?;
    lab.disconnect(leader1);
    lab.check_one_leader()?;
    lab.connect(leader1);
    let leader2 = lab.check_one_leader()?;
    lab.disconnect(leader2);
    lab.disconnect((leader2 + 1) % n);
    lab.sleep(2 * ELECTION_TIMEOUT)?;
    lab.check_no_leader()?;
    lab.connect((leader2 + 1) % n);
    lab.check_one_leader()?;
    lab.connect(leader2);
    lab.check_one_leader()?;
    Ok(())
}

/// 3A TestManyElections (7 servers): repeated disconnects of 3 random servers.
pub fn many_elections(p: &Params) -> LabResult {
    let n = 7;
    let mut lab = Lab::new(n, p);
    lab.check_one_leader()?;
    for _ in 0..10 {
        let (i1, i2, i3) = (
            lab.rng.usize(0..n),
            lab.rng.usize(0..n),
            lab.rng.usize(0..n),
        );
        lab.disconnect(i1);
        lab.disconnect(i2);
        lab.disconnect(i3);
        lab.check_one_leader()?;
        lab.connect(i1);
        lab.connect(i2);
        lab.connect(i3);
    }
    lab.check_one_leader()?;
    Ok(())
}

/// Of three servers: the leader once every server has heard from it, its term, and one of
/// the other two (chosen by the seed), before `what` happens to them.
fn settled_leader(lab: &mut Lab, what: &str) -> LabResult<(usize, Term, usize)> {
    let leader = lab.check_one_leader()?;
    lab.sleep(ms(200))?;
    let term = lab.check_terms()?;
    ensure(lab.state(leader) == Some((term, true)), || {
        format!("server {leader} no longer leads in term {term} before {what}")
    })?;
    let other = (leader + 1 + lab.rng.usize(0..2)) % 3;
    Ok((leader, term, other))
}

/// What a partial partition did to the leader ([`partially_partitioned_leader`]).
#[derive(Clone, Debug)]
pub struct PartialPartition {
    /// The leader elected before the cut, and its term.
    pub leader: usize,
    pub term: Term,
    /// The follower cut off from it (it still reaches the third server).
    pub follower: usize,
    /// The first check at which the leader no longer led in `term` or some server's term had
    /// passed `term`: how long after the cut, and every server's (term, leads).
    pub deposed: Option<String>,
    /// Every server's term at the end.
    pub terms: Vec<Term>,
    /// Writes the leader accepted, and how many of them were then applied by at least two
    /// servers (the leader and the server it reaches) with the written value.
    pub writes: usize,
    pub committed: usize,
}

/// How long the cluster idles after the cut, then how long the client writes, in the
/// servers' longest election timeouts.
pub const PARTIAL_PARTITION_IDLE: u32 = 10;
pub const PARTIAL_PARTITION_WRITING: u32 = 25;

/// The 2020 Cloudflare outage, in small (Ongaro's thesis §9.6): 3 servers; once a leader L
/// is elected, the link between L and one follower F is cut both ways, while F and the third
/// server M still reach each other, and M still reaches L. The cluster idles for
/// [`PARTIAL_PARTITION_IDLE`] of the servers' longest election timeouts (F's log as
/// up-to-date as M's), then a client writes through L every 100 ms for
/// [`PARTIAL_PARTITION_WRITING`] more (F's log falls behind); every 100 ms the run checks
/// that L still leads in its term and that no server's term rose.
///
/// Without PreVote and CheckQuorum, F times out, raises its term and asks M for its vote; M
/// adopts the term, and its next answer to L deposes L. PreVote alone (Cloudflare's etcd
/// configuration) does not help while F's log is as up-to-date as M's: M grants the
/// pre-vote, then the vote. With both (the node's configuration, `SimOptions::new`'s
/// default), M, hearing from L, is in L's lease and ignores F's pre-votes, and L, hearing
/// from M, passes every CheckQuorum. Returns the lab (the cut still in place) and the outcome.
pub fn partially_partitioned_leader(
    p: &Params,
    pre_vote: bool,
    check_quorum: bool,
) -> LabResult<(Lab, PartialPartition)> {
    let mut opts = SimOptions::new(3, p.seed);
    opts.pre_vote = pre_vote;
    opts.check_quorum = check_quorum;
    let longest_timeout = opts.election_timeout.1;
    let mut lab = Lab::with_options(opts, p);
    let (leader, term, follower) = settled_leader(&mut lab, "the cut")?;
    lab.sim.partition(&[leader], &[follower]);

    let mut writes: Vec<(Index, Command)> = Vec::new();
    let mut deposed = None;
    let cut = lab.sim.now;
    let writing = cut + PARTIAL_PARTITION_IDLE * longest_timeout;
    let end = writing + PARTIAL_PARTITION_WRITING * longest_timeout;
    while lab.sim.now < end {
        if lab.sim.now >= writing {
            let command = cmd(lab.value());
            if let Some((index, t)) = lab.start(leader, command.clone()) {
                if t == term {
                    writes.push((index, command));
                }
            }
        }
        lab.sleep(ms(100))?;
        let states: Vec<Option<(Term, bool)>> = (0..3).map(|i| lab.state(i)).collect();
        let kept = states[leader] == Some((term, true))
            && states.iter().all(|s| s.is_some_and(|(t, _)| t == term));
        if !kept && deposed.is_none() {
            deposed = Some(format!(
                "{:?} after the cut, (term, leads) of each server: {states:?}",
                lab.sim.now - cut
            ));
        }
    }
    // The last write's round trip.
    lab.sleep(ms(100))?;
    let mut committed = 0;
    for (index, command) in &writes {
        let (n, applied) = lab.n_committed(*index)?;
        if n >= 2 && applied.as_ref() == Some(command) {
            committed += 1;
        }
    }
    let terms = (0..3).map(|i| lab.state(i).map_or(0, |(t, _)| t)).collect();
    let outcome = PartialPartition {
        leader,
        term,
        follower,
        deposed,
        terms,
        writes: writes.len(),
        committed,
    };
    Ok((lab, outcome))
}

/// Beyond the lab: a partially partitioned server (it reaches one peer but not the leader)
/// deposes no one, with PreVote and CheckQuorum (see [`partially_partitioned_leader`]). The
/// leader stays leader in its term, no server's term rises, and every write commits; once the
/// cut heals, the cut-off follower catches up under the same leader.
pub fn partial_partition(p: &Params) -> LabResult {
    let (mut lab, r) = partially_partitioned_leader(p, true, true)?;
    let (leader, term) = (r.leader, r.term);
    ensure(r.deposed.is_none(), || {
        format!(
            "leader {leader} of term {term} was deposed, follower {} cut off from it: {}",
            r.follower,
            r.deposed.clone().unwrap_or_default()
        )
    })?;
    ensure(r.terms.iter().all(|t| *t == term), || {
        format!("a term rose past {term}: {:?}", r.terms)
    })?;
    let expected = (PARTIAL_PARTITION_WRITING as usize) * 5;
    ensure(r.writes >= expected, || {
        format!(
            "the leader accepted {} writes, expected {expected}",
            r.writes
        )
    })?;
    ensure(r.committed == r.writes, || {
        format!("{} of {} writes committed", r.committed, r.writes)
    })?;
    lab.sim.heal();
    let last = lab.sim.server(leader).map_or(0, |s| s.last_log_index());
    lab.wait(last, 3, None)?;
    ensure(lab.state(leader) == Some((term, true)), || {
        format!("server {leader} no longer leads in term {term} after the heal")
    })?;
    ensure(lab.check_terms()? == term, || {
        format!("a term rose past {term} after the heal")
    })?;
    Ok(())
}

/// Beyond the lab: leadership transfer (Ongaro's thesis §3.10) while clients write. 3 servers;
/// once a leader L of term T is elected, two key-value clients write (and read) continuously
/// for a second; then an operator asks L to hand its leadership to a follower F (chosen by
/// the seed). F must lead within two of the servers' longest election timeouts, in term T + 1
/// exactly (its TimeoutNow skips the pre-vote and its RequestVote passes the leases: no other
/// election), and L must answer the request with F and T + 1 once it has stepped down. The
/// clients go on under F to the end; then every write acknowledged to them, before or after
/// the transfer, has been applied by all three servers, their history is linearizable, and no
/// term passed T + 1. The simulator checks Election Safety and State Machine Safety at every
/// turn. (A transfer that L abandons, its election timeout coming before F's election, is
/// asked again, as `raft-kv leader transfer` does.)
pub fn leadership_transfer(p: &Params) -> LabResult {
    let opts = SimOptions::new(3, p.seed);
    let longest_timeout = opts.election_timeout.1;
    let mut lab = Lab::with_options(opts, p);
    let (leader, term, target) = settled_leader(&mut lab, "the transfer")?;
    let workload = Workload {
        clients: 2,
        ops_per_client: 400,
        think: ms(20),
        ..Workload::default()
    };
    lab.sim.add_clients(&workload);
    lab.sleep(ELECTION_TIMEOUT)?;
    let acked = |lab: &Lab| -> usize { lab.sim.clients.iter().map(|c| c.acked.len()).sum() };
    ensure(acked(&lab) > 0, || {
        "no write acknowledged before the transfer".into()
    })?;

    // The transfer, asked again (of whoever leads) if the leader answers that it abandoned it.
    let asked = lab.sim.now;
    let deadline = asked + 2 * longest_timeout;
    let mut from = leader;
    let mut asks = 0;
    let mut answers = 0;
    lab.sim.transfer_leadership(from, target);
    asks += 1;
    while lab.state(target) != Some((term + 1, true)) {
        ensure(lab.sim.now < deadline, || {
            format!(
                "server {target} does not lead {:?} after the transfer from {leader} was asked \
                 ({asks} asks, answers {:?}):\n{}",
                lab.sim.now - asked,
                lab.sim.admin_replies,
                lab.sim.describe()
            )
        })?;
        lab.sleep(ms(5))?;
        if lab.sim.admin_replies.len() > answers {
            answers = lab.sim.admin_replies.len();
            if let Some((_, _, ClientReply::Error(_))) = lab.sim.admin_replies.last() {
                if let Some(l) = (0..3).find(|&i| lab.state(i).is_some_and(|(_, l)| l)) {
                    from = l;
                    lab.sim.transfer_leadership(from, target);
                    asks += 1;
                }
            }
        }
    }
    let led = lab.sim.now;
    // The old leader answers once it has heard from the new one (its first AppendEntries).
    lab.sleep(ms(50))?;
    let expected = ClientReply::Leader {
        id: target as u64,
        term: term + 1,
    };
    ensure(
        lab.sim
            .admin_replies
            .iter()
            .any(|(_, i, r)| *i == from && *r == expected),
        || {
            format!(
                "server {from} did not answer the transfer with {expected:?}: {:?}",
                lab.sim.admin_replies
            )
        },
    )?;

    // The clients go on under the new leader, to the end.
    lab.sleep(ELECTION_TIMEOUT)?;
    lab.finish_clients(ms(30_000), |_| "after the transfer".into())?;
    ensure(lab.acked_since(led) > 0, || {
        "no write acknowledged after the transfer".into()
    })?;
    // Every acknowledged write, before and after, is applied by every server.
    let last = (0..3)
        .filter_map(|i| lab.sim.server(i).map(|s| s.last_applied))
        .max()
        .unwrap_or(0);
    let mut applied: BTreeMap<(u64, u64), Vec<(Command, usize)>> = BTreeMap::new();
    for index in 1..=last {
        if let (n, Some(command)) = lab.n_committed(index)? {
            let session = (command.client_id, command.seq);
            applied.entry(session).or_default().push((command, n));
        }
    }
    for client in &lab.sim.clients {
        for (at, command) in &client.acked {
            let n = applied
                .get(&(command.client_id, command.seq))
                .into_iter()
                .flatten()
                .filter(|(c, _)| c == command)
                .map(|(_, n)| *n)
                .max()
                .unwrap_or(0);
            ensure(n == 3, || {
                format!("the write {command:?} acknowledged at {at:?} is applied by {n} servers")
            })?;
        }
    }
    let terms: Vec<Option<(Term, bool)>> = (0..3).map(|i| lab.state(i)).collect();
    ensure(
        terms[target] == Some((term + 1, true))
            && terms.iter().all(|s| s.is_some_and(|(t, _)| t == term + 1)),
        || {
            format!(
                "after the transfer to {target} in term {}: (term, leads) of each server {terms:?}",
                term + 1
            )
        },
    )?;
    lab.sim.history.check()
}
