//! 3A: leader election (`TestInitialElection`, `TestReElection`, `TestManyElections`).

use super::ensure;
use crate::lab::{Lab, LabResult, Params, ELECTION_TIMEOUT};
use crate::sim::ms;

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
