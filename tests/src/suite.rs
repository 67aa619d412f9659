//! The 6.5840 Raft lab suite (3A election, 3B agreement, 3C persistence; `test_test.go`),
//! re-created over the simulator, plus checked client histories. Each test is a function of
//! [`Params`] (seed and disk faults) returning `Err` with the lab's failure message; the limits
//! are the lab's (in virtual time). [`SUITE`] lists them all for the `lab` test target and for
//! `raft-tests sim-soak`.

use crate::lab::{cmd, Lab, LabResult, One, Params, Poll, ELECTION_TIMEOUT};
use crate::sim::clients::Workload;
use crate::sim::network::NetParams;
use crate::sim::{ms, Sim, SimOptions};
use raft_impl::core::Index;
use raft_impl::kv::Command;
use std::time::Duration;

pub type TestFn = fn(&Params) -> LabResult;

/// Every test of the suite, by name (the name of its `#[test]` in `tests/tests/lab.rs`).
pub const SUITE: &[(&str, TestFn)] = &[
    ("initial_election", initial_election),
    ("re_election", re_election),
    ("many_elections", many_elections),
    ("basic_agree", basic_agree),
    ("rpc_bytes", rpc_bytes),
    ("follower_failure", follower_failure),
    ("leader_failure", leader_failure),
    ("fail_agree", fail_agree),
    ("fail_no_agree", fail_no_agree),
    ("concurrent_starts", concurrent_starts),
    ("rejoin", rejoin),
    ("backup", backup),
    ("count", count),
    ("persist1", persist1),
    ("persist2", persist2),
    ("persist3", persist3),
    ("figure8", figure8),
    ("unreliable_agree", unreliable_agree),
    ("figure8_unreliable", figure8_unreliable),
    ("reliable_churn", reliable_churn),
    ("unreliable_churn", unreliable_churn),
    ("linearizable_kv_partitions", linearizable_kv_partitions),
    ("linearizable_kv_crashes", linearizable_kv_crashes),
    (
        "linearizable_kv_power_failures",
        linearizable_kv_power_failures,
    ),
];

pub fn find(name: &str) -> Option<TestFn> {
    SUITE.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> LabResult {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

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

/// 3B TestBasicAgree.
pub fn basic_agree(p: &Params) -> LabResult {
    let mut lab = Lab::new(3, p);
    for index in 1..=3u64 {
        let (nd, _) = lab.n_committed(index)?;
        ensure(nd == 0, || "some have committed before Start()".into())?;
        let xindex = lab.one(cmd(index * 100), 3, false)?;
        ensure(xindex == index, || {
            format!("got index {xindex} but expected {index}")
        })?;
    }
    Ok(())
}

/// 3B TestRPCBytes: each command is sent to each peer once (bytes ≤ servers × sent + 50000).
pub fn rpc_bytes(p: &Params) -> LabResult {
    let servers = 3;
    let mut lab = Lab::new(servers, p);
    lab.sim.count_bytes = true;
    lab.one(cmd(99), servers, false)?;
    let bytes0 = lab.bytes_total();
    let mut sent = 0u64;
    for index in 2..10u64 {
        let value: String = (0..5000).map(|_| lab.rng.alphanumeric()).collect();
        sent += value.len() as u64;
        let xindex = lab.one(cmd(value), servers, false)?;
        ensure(xindex == index, || {
            format!("got index {xindex} but expected {index}")
        })?;
    }
    let got = lab.bytes_total() - bytes0;
    let expected = servers as u64 * sent;
    ensure(got <= expected + 50_000, || {
        format!("too many RPC bytes; got {got}, expected {expected}")
    })
}

/// 3B TestFollowerFailure.
pub fn follower_failure(p: &Params) -> LabResult {
    let servers = 3;
    let mut lab = Lab::new(servers, p);
    lab.one(cmd(101), servers, false)?;
    let leader1 = lab.check_one_leader()?;
    lab.disconnect((leader1 + 1) % servers);
    lab.one(cmd(102), servers - 1, false)?;
    lab.sleep(ELECTION_TIMEOUT)?;
    lab.one(cmd(103), servers - 1, false)?;
    let leader2 = lab.check_one_leader()?;
    lab.disconnect((leader2 + 1) % servers);
    lab.disconnect((leader2 + 2) % servers);
    let started = lab.start(leader2, cmd(104));
    let Some((index, _)) = started else {
        return Err("leader rejected Start()".into());
    };
    ensure(index == 4, || format!("expected index 4, got {index}"))?;
    lab.sleep(2 * ELECTION_TIMEOUT)?;
    let (nd, _) = lab.n_committed(index)?;
    ensure(nd == 0, || format!("{nd} committed but no majority"))
}

/// 3B TestLeaderFailure.
pub fn leader_failure(p: &Params) -> LabResult {
    let servers = 3;
    let mut lab = Lab::new(servers, p);
    lab.one(cmd(101), servers, false)?;
    let leader1 = lab.check_one_leader()?;
    lab.disconnect(leader1);
    lab.one(cmd(102), servers - 1, false)?;
    lab.sleep(ELECTION_TIMEOUT)?;
    lab.one(cmd(103), servers - 1, false)?;
    let leader2 = lab.check_one_leader()?;
    lab.disconnect(leader2);
    for i in 0..servers {
        lab.start(i, cmd(104));
    }
    lab.sleep(2 * ELECTION_TIMEOUT)?;
    let (nd, _) = lab.n_committed(4)?;
    ensure(nd == 0, || format!("{nd} committed but no majority"))
}

/// 3B TestFailAgree: a disconnected follower catches up when it rejoins.
pub fn fail_agree(p: &Params) -> LabResult {
    let servers = 3;
    let mut lab = Lab::new(servers, p);
    lab.one(cmd(101), servers, false)?;
    let leader = lab.check_one_leader()?;
    lab.disconnect((leader + 1) % servers);
    for v in 102..=105 {
        lab.one(cmd(v), servers - 1, false)?;
    }
    lab.sleep(ELECTION_TIMEOUT)?;
    lab.one(cmd(106), servers - 1, false)?;
    lab.connect((leader + 1) % servers);
    lab.one(cmd(107), servers, true)?;
    lab.sleep(ELECTION_TIMEOUT)?;
    lab.one(cmd(108), servers, true)?;
    Ok(())
}

/// 3B TestFailNoAgree (5 servers): no agreement without a majority.
pub fn fail_no_agree(p: &Params) -> LabResult {
    let servers = 5;
    let mut lab = Lab::new(servers, p);
    lab.one(cmd(10), servers, false)?;
    let leader = lab.check_one_leader()?;
    for k in 1..=3 {
        lab.disconnect((leader + k) % servers);
    }
    let Some((index, _)) = lab.start(leader, cmd(20)) else {
        return Err("leader rejected Start()".into());
    };
    ensure(index == 2, || format!("expected index 2, got {index}"))?;
    lab.sleep(2 * ELECTION_TIMEOUT)?;
    let (nd, _) = lab.n_committed(index)?;
    ensure(nd == 0, || format!("{nd} committed but no majority"))?;
    for k in 1..=3 {
        lab.connect((leader + k) % servers);
    }
    let leader2 = lab.check_one_leader()?;
    let Some((index2, _)) = lab.start(leader2, cmd(30)) else {
        return Err("leader2 rejected Start()".into());
    };
    ensure((2..=3).contains(&index2), || {
        format!("unexpected index {index2}")
    })?;
    lab.one(cmd(1000), servers, true)?;
    Ok(())
}

/// 3B TestConcurrentStarts: several Starts in one term all commit.
pub fn concurrent_starts(p: &Params) -> LabResult {
    let servers = 3;
    let mut lab = Lab::new(servers, p);
    for attempt in 0..5 {
        if attempt > 0 {
            lab.sleep(ms(3000))?;
        }
        let leader = lab.check_one_leader()?;
        let Some((_, term)) = lab.start(leader, cmd(1)) else {
            continue;
        };
        let mut started = Vec::new();
        for i in 0..5u64 {
            if let Some((index, t)) = lab.start(leader, cmd(100 + i)) {
                if t == term {
                    started.push((index, 100 + i));
                }
            }
        }
        if (0..servers).any(|j| lab.state(j).is_some_and(|(t, _)| t != term)) {
            continue; // term changed: try again
        }
        let mut failed = false;
        let mut cmds = Vec::new();
        for (index, _) in &started {
            match lab.wait(*index, servers, Some(term))? {
                Some(c) => cmds.push(c),
                None => {
                    failed = true; // term changed
                    break;
                }
            }
        }
        if failed {
            continue;
        }
        for (_, v) in &started {
            ensure(cmds.contains(&cmd(v)), || {
                format!("cmd {v} missing in {cmds:?}")
            })?;
        }
        return Ok(());
    }
    Err("term changed too often".into())
}

/// 3B TestRejoin: a partitioned leader with uncommitted entries rejoins.
pub fn rejoin(p: &Params) -> LabResult {
    let servers = 3;
    let mut lab = Lab::new(servers, p);
    lab.one(cmd(101), servers, true)?;
    let leader1 = lab.check_one_leader()?;
    lab.disconnect(leader1);
    lab.start(leader1, cmd(102));
    lab.start(leader1, cmd(103));
    lab.start(leader1, cmd(104));
    lab.one(cmd(103), 2, true)?;
    let leader2 = lab.check_one_leader()?;
    lab.disconnect(leader2);
    lab.connect(leader1);
    lab.one(cmd(104), 2, true)?;
    lab.connect(leader2);
    lab.one(cmd(105), servers, true)?;
    Ok(())
}

/// 3B TestBackup (5 servers): leaders repair 50-entry divergent logs quickly.
pub fn backup(p: &Params) -> LabResult {
    let servers = 5;
    let mut lab = Lab::new(servers, p);
    let v = lab.value();
    lab.one(cmd(v), servers, true)?;
    // Put the leader and one follower in a partition.
    let leader1 = lab.check_one_leader()?;
    for k in 2..=4 {
        lab.disconnect((leader1 + k) % servers);
    }
    // Lots of commands that won't commit.
    for _ in 0..50 {
        let v = lab.value();
        lab.start(leader1, cmd(v));
    }
    lab.sleep(ELECTION_TIMEOUT / 2)?;
    lab.disconnect(leader1);
    lab.disconnect((leader1 + 1) % servers);
    // Allow the other partition to recover.
    for k in 2..=4 {
        lab.connect((leader1 + k) % servers);
    }
    // Lots of successful commands to the new group.
    for _ in 0..50 {
        let v = lab.value();
        lab.one(cmd(v), 3, true)?;
    }
    // Now another partitioned leader and one follower.
    let leader2 = lab.check_one_leader()?;
    let mut other = (leader1 + 2) % servers;
    if leader2 == other {
        other = (leader2 + 1) % servers;
    }
    lab.disconnect(other);
    // Lots more commands that won't commit.
    for _ in 0..50 {
        let v = lab.value();
        lab.start(leader2, cmd(v));
    }
    lab.sleep(ELECTION_TIMEOUT / 2)?;
    // Bring the original leader back to life.
    for i in 0..servers {
        lab.disconnect(i);
    }
    lab.connect(leader1);
    lab.connect((leader1 + 1) % servers);
    lab.connect(other);
    // Lots of successful commands to the new group.
    for _ in 0..50 {
        let v = lab.value();
        lab.one(cmd(v), 3, true)?;
    }
    // Now everyone.
    for i in 0..servers {
        lab.connect(i);
    }
    let v = lab.value();
    lab.one(cmd(v), servers, true)?;
    Ok(())
}

/// 3B TestCount: no more RPCs than needed (election 1–30; 11 entries ≤ 42; ≤ 60 per idle s).
pub fn count(p: &Params) -> LabResult {
    let servers = 3;
    let mut lab = Lab::new(servers, p);
    lab.check_one_leader()?;
    let total1 = lab.rpc_total();
    ensure((1..=30).contains(&total1), || {
        format!("too many or few RPCs ({total1}) to elect initial leader")
    })?;
    let mut total2 = 0;
    let mut success = false;
    'tries: for attempt in 0..5 {
        if attempt > 0 {
            lab.sleep(ms(3000))?;
        }
        let leader = lab.check_one_leader()?;
        let total1 = lab.rpc_total();
        let iters = 10u64;
        let Some((starti, term)) = lab.start(leader, cmd(1)) else {
            continue;
        };
        let mut cmds = Vec::new();
        for i in 1..iters + 2 {
            let x = lab.value();
            cmds.push(x.clone());
            match lab.start(leader, cmd(&x)) {
                Some((index1, term1)) if term1 == term => {
                    ensure(index1 == starti + i, || "Start() failed".into())?;
                }
                _ => continue 'tries,
            }
        }
        for i in 1..iters + 1 {
            let Some(c) = lab.wait(starti + i, servers, Some(term))? else {
                continue 'tries; // term changed
            };
            ensure(c == cmd(&cmds[i as usize - 1]), || {
                format!("wrong value {c:?} committed for index {}", starti + i)
            })?;
        }
        if (0..servers).any(|j| lab.state(j).is_some_and(|(t, _)| t != term)) {
            continue;
        }
        total2 = lab.rpc_total();
        ensure(total2 - total1 <= (iters + 1 + 3) * 3, || {
            format!("too many RPCs ({}) for {iters} entries", total2 - total1)
        })?;
        success = true;
        break;
    }
    ensure(success, || "term changed too often".into())?;
    lab.sleep(ELECTION_TIMEOUT)?;
    let total3 = lab.rpc_total();
    ensure(total3 - total2 <= 3 * 20, || {
        format!(
            "too many RPCs ({}) for 1 second of idleness",
            total3 - total2
        )
    })
}

/// 3C TestPersist1: state survives crashing and restarting every server.
pub fn persist1(p: &Params) -> LabResult {
    let servers = 3;
    let mut lab = Lab::new(servers, p);
    lab.one(cmd(11), servers, true)?;
    // Crash and re-start all.
    for i in 0..servers {
        lab.start1(i);
    }
    for i in 0..servers {
        lab.disconnect(i);
        lab.connect(i);
    }
    lab.one(cmd(12), servers, true)?;
    let leader1 = lab.check_one_leader()?;
    lab.disconnect(leader1);
    lab.start1(leader1);
    lab.connect(leader1);
    lab.one(cmd(13), servers, true)?;
    let leader2 = lab.check_one_leader()?;
    lab.disconnect(leader2);
    lab.one(cmd(14), servers - 1, true)?;
    lab.start1(leader2);
    lab.connect(leader2);
    lab.wait(4, servers, None)?; // wait for leader2 to join before killing i3
    let i3 = (lab.check_one_leader()? + 1) % servers;
    lab.disconnect(i3);
    lab.one(cmd(15), servers - 1, true)?;
    lab.start1(i3);
    lab.connect(i3);
    lab.one(cmd(16), servers, true)?;
    Ok(())
}

/// 3C TestPersist2: more persistence, with partitions and restarts in a loop (5 servers).
pub fn persist2(p: &Params) -> LabResult {
    let servers = 5;
    let mut lab = Lab::new(servers, p);
    let mut index = 1;
    for _ in 0..5 {
        lab.one(cmd(10 + index), servers, true)?;
        index += 1;
        let leader1 = lab.check_one_leader()?;
        lab.disconnect((leader1 + 1) % servers);
        lab.disconnect((leader1 + 2) % servers);
        lab.one(cmd(10 + index), servers - 2, true)?;
        index += 1;
        lab.disconnect(leader1);
        lab.disconnect((leader1 + 3) % servers);
        lab.disconnect((leader1 + 4) % servers);
        lab.start1((leader1 + 1) % servers);
        lab.start1((leader1 + 2) % servers);
        lab.connect((leader1 + 1) % servers);
        lab.connect((leader1 + 2) % servers);
        lab.sleep(ELECTION_TIMEOUT)?;
        lab.start1((leader1 + 3) % servers);
        lab.connect((leader1 + 3) % servers);
        lab.one(cmd(10 + index), servers - 2, true)?;
        index += 1;
        lab.connect((leader1 + 4) % servers);
        lab.connect(leader1);
    }
    lab.one(cmd(1000), servers, true)?;
    Ok(())
}

/// 3C TestPersist3: partitioned leader and one follower crash, leader restarts.
pub fn persist3(p: &Params) -> LabResult {
    let servers = 3;
    let mut lab = Lab::new(servers, p);
    lab.one(cmd(101), 3, true)?;
    let leader = lab.check_one_leader()?;
    lab.disconnect((leader + 2) % servers);
    lab.one(cmd(102), 2, true)?;
    lab.crash1(leader);
    lab.crash1((leader + 1) % servers);
    lab.connect((leader + 2) % servers);
    lab.start1(leader);
    lab.connect(leader);
    lab.one(cmd(103), 2, true)?;
    lab.start1((leader + 1) % servers);
    lab.connect((leader + 1) % servers);
    lab.one(cmd(104), servers, true)?;
    Ok(())
}

/// The lab's sleep between Figure 8 rounds: mostly 0–12 ms, one round in ten up to half an
/// election timeout.
fn figure8_pause(lab: &mut Lab) -> Duration {
    if lab.rng.u32(0..1000) < 100 {
        ms(lab.rng.u64(0..ELECTION_TIMEOUT.as_millis() as u64 / 2))
    } else {
        ms(lab.rng.u64(0..13))
    }
}

/// 3C TestFigure8 (5 servers, 1,000 rounds): leaders crash right after appending; only
/// current-term entries may commit by counting (Raft paper Figure 8).
pub fn figure8(p: &Params) -> LabResult {
    let servers = 5;
    let mut lab = Lab::new(servers, p);
    let v = lab.value();
    lab.one(cmd(v), 1, true)?;
    let mut nup = servers;
    for _ in 0..1000 {
        let mut leader = None;
        for i in 0..servers {
            let v = lab.value();
            if lab.start(i, cmd(v)).is_some() {
                leader = Some(i);
            }
        }
        let d = figure8_pause(&mut lab);
        lab.sleep(d)?;
        if let Some(l) = leader {
            lab.crash1(l);
            nup -= 1;
        }
        if nup < 3 {
            let s = lab.rng.usize(0..servers);
            if !lab.sim.alive(s) {
                lab.start1(s);
                lab.connect(s);
                nup += 1;
            }
        }
    }
    for i in 0..servers {
        if !lab.sim.alive(i) {
            lab.start1(i);
            lab.connect(i);
        }
    }
    let v = lab.value();
    lab.one(cmd(v), servers, true)?;
    Ok(())
}

/// 3C TestUnreliableAgree (5 servers): agreement despite 10% request and reply loss.
pub fn unreliable_agree(p: &Params) -> LabResult {
    let servers = 5;
    let mut lab = Lab::new(servers, p);
    lab.set_unreliable(true);
    for iters in 1..50u64 {
        // The lab's four concurrent one() goroutines and the main one(), interleaved.
        let mut ones: Vec<One> = (0..4)
            .map(|j| One::new(cmd(100 * iters + j), 1, true, lab.sim.now))
            .collect();
        ones.push(One::new(cmd(iters), 1, true, lab.sim.now));
        let mut pending: Vec<Option<Duration>> = vec![Some(lab.sim.now); ones.len()];
        while pending.iter().any(Option::is_some) {
            for k in 0..ones.len() {
                if pending[k].is_some_and(|t| t <= lab.sim.now) {
                    pending[k] = match ones[k].poll(&mut lab)? {
                        Poll::Done(_) => None,
                        Poll::Wait(t) => Some(t),
                    };
                }
            }
            if let Some(t) = pending.iter().flatten().min().copied() {
                lab.sim.run_until(t)?;
            }
        }
    }
    lab.set_unreliable(false);
    lab.one(cmd(100), servers, true)?;
    Ok(())
}

/// 3C TestFigure8Unreliable (5 servers, 1,000 rounds): Figure 8 with disconnects instead of
/// crashes, 10% loss, and from round 200 on, 2/3 of replies held 200–2,200 ms.
pub fn figure8_unreliable(p: &Params) -> LabResult {
    let servers = 5;
    let mut lab = Lab::new(servers, p);
    lab.set_unreliable(true);
    let v = lab.value();
    lab.one(cmd(v), 1, true)?;
    let mut nup = servers;
    for iters in 0..1000 {
        if iters == 200 {
            lab.set_long_reordering(true);
        }
        let mut leader = None;
        for i in 0..servers {
            let v = lab.value();
            if lab.start(i, cmd(v)).is_some() && lab.sim.connected(i) {
                leader = Some(i);
            }
        }
        let d = figure8_pause(&mut lab);
        lab.sleep(d)?;
        if let Some(l) = leader {
            if lab.rng.u64(0..1000) < ELECTION_TIMEOUT.as_millis() as u64 / 2 {
                lab.disconnect(l);
                nup -= 1;
            }
        }
        if nup < 3 {
            let s = lab.rng.usize(0..servers);
            if !lab.sim.connected(s) {
                lab.connect(s);
                nup += 1;
            }
        }
    }
    for i in 0..servers {
        lab.connect(i);
    }
    let v = lab.value();
    lab.one(cmd(v), servers, true)?;
    Ok(())
}

/// A lab churn client (`cfn` in `internalChurn`): Start a value on every server; if one leads,
/// poll for its commit for 10+20+50+100+200 ms and remember it if it committed.
struct ChurnClient {
    me: u64,
    wake: Duration,
    waiting: Option<(Index, Command, usize)>,
    committed: Vec<Command>,
}

const CHURN_POLLS: [u64; 5] = [10, 20, 50, 100, 200];

impl ChurnClient {
    fn step(&mut self, lab: &mut Lab) -> LabResult {
        let now = lab.sim.now;
        if let Some((index, c, k)) = self.waiting.take() {
            let (nd, got) = lab.n_committed(index)?;
            if nd > 0 {
                if got.as_ref() == Some(&c) {
                    self.committed.push(c);
                }
            } else if k < CHURN_POLLS.len() {
                self.wake = now + ms(CHURN_POLLS[k]);
                self.waiting = Some((index, c, k + 1));
                return Ok(());
            }
        }
        let c = cmd(lab.value());
        let mut started = None;
        for i in 0..lab.n() {
            if lab.sim.alive(i) {
                if let Some((index, _)) = lab.start(i, c.clone()) {
                    started = Some(index);
                }
            }
        }
        match started {
            Some(index) => {
                self.waiting = Some((index, c, 0));
                self.wake = now;
            }
            None => self.wake = now + ms(79 + self.me * 17),
        }
        Ok(())
    }
}

/// Runs the lab for `d` while the churn clients act.
fn sleep_with(lab: &mut Lab, clients: &mut [ChurnClient], d: Duration) -> LabResult {
    let end = lab.sim.now + d;
    loop {
        for c in clients.iter_mut() {
            while c.wake <= lab.sim.now && lab.sim.now <= end {
                let before = (c.wake, c.waiting.is_some());
                c.step(lab)?;
                if (c.wake, c.waiting.is_some()) == before {
                    break;
                }
            }
        }
        let next = clients.iter().map(|c| c.wake).min().unwrap_or(end).min(end);
        if lab.sim.now >= end {
            return Ok(());
        }
        lab.sim.run_until(next.max(lab.sim.now + ms(1)).min(end))?;
    }
}

/// 3C internalChurn: 3 clients propose while servers are disconnected, crashed and restarted
/// at random; every value a client saw committed must be in the final log.
fn churn(p: &Params, unreliable: bool) -> LabResult {
    let servers = 5;
    let mut lab = Lab::new(servers, p);
    lab.set_unreliable(unreliable);
    let v = lab.value();
    lab.one(cmd(v), servers, true)?;
    let mut clients: Vec<ChurnClient> = (0..3)
        .map(|me| ChurnClient {
            me,
            wake: lab.sim.now,
            waiting: None,
            committed: Vec::new(),
        })
        .collect();
    for _ in 0..20 {
        if lab.rng.u32(0..1000) < 200 {
            let i = lab.rng.usize(0..servers);
            lab.disconnect(i);
        }
        if lab.rng.u32(0..1000) < 500 {
            let i = lab.rng.usize(0..servers);
            if !lab.sim.alive(i) {
                lab.start1(i);
            }
            lab.connect(i);
        }
        if lab.rng.u32(0..1000) < 200 {
            let i = lab.rng.usize(0..servers);
            if lab.sim.alive(i) {
                lab.crash1(i);
            }
        }
        sleep_with(&mut lab, &mut clients, ELECTION_TIMEOUT * 7 / 10)?;
    }
    sleep_with(&mut lab, &mut clients, ELECTION_TIMEOUT)?;
    lab.set_unreliable(false);
    for i in 0..servers {
        if !lab.sim.alive(i) {
            lab.start1(i);
        }
        lab.connect(i);
    }
    let values: Vec<Command> = clients.into_iter().flat_map(|c| c.committed).collect();
    lab.sleep(ELECTION_TIMEOUT)?;
    let v = lab.value();
    let last_index = lab.one(cmd(v), servers, true)?;
    let mut really = Vec::new();
    for index in 1..=last_index {
        match lab.wait(index, servers, None)? {
            Some(c) => really.push(c),
            None => return Err(format!("index {index} not decided")),
        }
    }
    for v in &values {
        ensure(really.contains(v), || format!("didn't find a value: {v:?}"))?;
    }
    Ok(())
}

/// 3C TestReliableChurn.
pub fn reliable_churn(p: &Params) -> LabResult {
    churn(p, false)
}

/// 3C TestUnreliableChurn.
pub fn unreliable_churn(p: &Params) -> LabResult {
    churn(p, true)
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
    sim.history.check()
}

/// Client histories under partitions (minority leaders keep receiving requests), 10% loss, 2%
/// duplication: linearizable (Herlihy & Wing; checked with stateright).
pub fn linearizable_kv_partitions(p: &Params) -> LabResult {
    let mut opts = SimOptions::new(5, p.seed);
    opts.disk = p.faults;
    let mut sim = Sim::new(&opts);
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
    let mut opts = SimOptions::new(3, p.seed);
    opts.disk = p.faults;
    let mut sim = Sim::new(&opts);
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
    let mut opts = SimOptions::new(3, p.seed);
    opts.disk = p.faults;
    let mut sim = Sim::new(&opts);
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
