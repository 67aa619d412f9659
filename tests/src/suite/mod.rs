//! The 6.5840 Raft lab suite (3A election, 3B agreement, 3C persistence, 3D log compaction;
//! `test_test.go`),
//! re-created over the simulator, plus checked client histories. Each test is a function of
//! [`Params`] (seed and disk faults) returning `Err` with the lab's failure message; the limits
//! are the lab's (in virtual time). [`SUITE`] lists them all for the `lab` test target and for
//! `raft-tests sim-soak`.

//!
//! One file per part of the lab: [`election`] (3A), [`agreement`] (3B), [`persistence`] (3C),
//! [`snapshot`] (3D), [`histories`] (client histories). The list of tests is written once, in
//! [`for_each_lab_test!`]: it makes [`SUITE`] here and the `#[test]`s of `tests/tests/lab.rs`.

mod agreement;
mod election;
mod histories;
mod membership;
mod persistence;
mod snapshot;

pub use agreement::*;
pub use election::*;
pub use histories::*;
pub use membership::*;
pub use persistence::*;
pub use snapshot::*;

use crate::lab::{LabResult, Params};

pub type TestFn = fn(&Params) -> LabResult;

/// Calls `$m!(name, name, ...)` with every test of the suite, in order: the one list.
#[macro_export]
macro_rules! for_each_lab_test {
    ($m:ident) => {
        $m!(
            initial_election,
            re_election,
            many_elections,
            partial_partition,
            leadership_transfer,
            membership_change,
            basic_agree,
            rpc_bytes,
            follower_failure,
            leader_failure,
            fail_agree,
            fail_no_agree,
            concurrent_starts,
            rejoin,
            backup,
            count,
            persist1,
            persist2,
            persist3,
            figure8,
            unreliable_agree,
            figure8_unreliable,
            reliable_churn,
            unreliable_churn,
            linearizable_kv_partitions,
            linearizable_kv_crashes,
            linearizable_kv_power_failures,
            snapshot_basic,
            snapshot_install,
            snapshot_install_unreliable,
            snapshot_install_crash,
            snapshot_install_uncrash,
            snapshot_all_crash,
            snapshot_init,
        );
    };
}

macro_rules! suite_table {
    ($($name:ident),* $(,)?) => {
        /// Every test of the suite, by name (the name of its `#[test]` in `tests/tests/lab.rs`).
        pub const SUITE: &[(&str, TestFn)] = &[$((stringify!($name), $name as TestFn)),*];
    };
}

for_each_lab_test!(suite_table);

pub fn find(name: &str) -> Option<TestFn> {
    SUITE.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

pub(crate) fn ensure(cond: bool, msg: impl FnOnce() -> String) -> LabResult {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}
