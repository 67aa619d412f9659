//! 3C: persistence, Figure 8 and churn (`TestPersist1` … `TestUnreliableChurn`).

use super::ensure;
use crate::lab::{cmd, Lab, LabResult, One, Params, Poll, ELECTION_TIMEOUT};
use crate::sim::ms;
use raft_impl::core::Index;
use raft_impl::kv::Command;
use std::time::Duration;

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
