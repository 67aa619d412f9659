//! 3B: log agreement (`TestBasicAgree` … `TestCount`).

use super::ensure;
use crate::lab::{cmd, Lab, LabResult, Params, ELECTION_TIMEOUT};
use crate::sim::ms;

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
