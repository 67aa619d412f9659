//! The 6.5840 Raft lab suite over the deterministic simulator, each test on
//! `raft_tests::seeds::DEFAULT_SEEDS` seeds (`RAFT_SEEDS=K` for more, `RAFT_SEED=N` to replay
//! one). The tests themselves are in `tests/src/suite.rs`.

use raft_tests::seeds;
use raft_tests::suite;

macro_rules! lab_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                seeds::check(stringify!($name), suite::$name);
            }
        )*

        #[test]
        fn every_suite_entry_has_a_test() {
            let names = [$(stringify!($name)),*];
            for (name, _) in suite::SUITE {
                assert!(names.contains(name), "{name} has no #[test] in tests/lab.rs");
            }
        }
    };
}

lab_tests!(
    initial_election,
    re_election,
    many_elections,
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
);
