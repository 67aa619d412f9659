//! A deliberately broken runtime must be caught: the simulator's fake disk acknowledges
//! `sync` before the data is durable (`DiskFaults::ack_before_fsync`; the switch lives in the
//! fake disk in raft-tests, not in raft-impl). The lab's persistence tests and the
//! whole-cluster power-failure history must fail on every seed: a crash then loses votes and
//! entries the node had already acknowledged.

use raft_tests::sim::disk::DiskFaults;
use raft_tests::{seeds, suite};

const BROKEN: DiskFaults = DiskFaults {
    ack_before_fsync: true,
};

fn caught_on_every_seed(name: &str) {
    let test = suite::find(name).expect("a suite test");
    let all: Vec<u64> = (1..=seeds::DEFAULT_SEEDS).collect();
    // The correct disk passes on these seeds (the lab tests check that too) ...
    let correct = seeds::run(test, &all, DiskFaults::default());
    assert!(
        correct.is_empty(),
        "{name} fails with a correct disk: {correct:?}"
    );
    // ... and the broken one is caught on each of them.
    let failures = seeds::run(test, &all, BROKEN);
    let caught: Vec<u64> = failures.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        caught, all,
        "{name} missed acknowledge-before-fsync on some seeds (caught only on {caught:?})"
    );
}

#[test]
fn persist1_catches_a_runtime_that_acknowledges_before_fsync() {
    caught_on_every_seed("persist1");
}

#[test]
fn persist3_catches_a_runtime_that_acknowledges_before_fsync() {
    caught_on_every_seed("persist3");
}

#[test]
fn power_failure_history_catches_a_runtime_that_acknowledges_before_fsync() {
    caught_on_every_seed("linearizable_kv_power_failures");
}
