//! The 6.5840 Raft lab suite over the deterministic simulator, each test on
//! `raft_tests::seeds::DEFAULT_SEEDS` seeds (`RAFT_SEEDS=K` for more, `RAFT_SEED=N` to replay
//! one). The tests themselves are in `tests/src/suite/` (their one list: `for_each_lab_test!`). Also here: a broken runtime is caught
//! (`broken_runtime`), the partial-partition test can fail (`partial_partition_control`), and a
//! seed replays a run exactly (`determinism`).

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
    };
}

// The one list of the suite (tests/src/suite/mod.rs).
raft_tests::for_each_lab_test!(lab_tests);

/// Every test function of the suite's files is in the list (so none is silently left out).
#[test]
fn every_suite_function_is_listed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/suite");
    let mut found = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("pub fn ") else {
                continue;
            };
            if let Some((name, sig)) = rest.split_once('(') {
                if sig.starts_with("p: &Params) -> LabResult") {
                    found += 1;
                    assert!(
                        suite::find(name).is_some(),
                        "{name} is not in for_each_lab_test!"
                    );
                }
            }
        }
    }
    assert_eq!(
        found,
        suite::SUITE.len(),
        "every listed test is a suite function"
    );
}

mod broken_runtime {
    //! A deliberately broken runtime must be caught: the simulator's fake disk acknowledges
    //! `sync` before the data is durable (`DiskFaults::ack_before_fsync`; the switch lives in the
    //! fake disk in raft-tests, not in raft-impl). A crash then loses votes and entries the
    //! node had already acknowledged: persist1 and persist3 must fail on every one of seeds
    //! 1–20, the whole-cluster power-failure history on at least 15 of them (it did on 166 of
    //! seeds 1–200: results/sim-soak.md).

    use raft_tests::sim::disk::DiskFaults;
    use raft_tests::{seeds, suite};

    const BROKEN: DiskFaults = DiskFaults {
        ack_before_fsync: true,
        stale_restore: false,
        snapshot_rename_before_fsync: false,
    };

    /// `name` passes on seeds 1–20 with the correct disk and fails with the broken one on at
    /// least `min` of them (the runs are deterministic, so this is no flake).
    fn caught_on_at_least(name: &str, min: usize) {
        caught_with_on_at_least(name, BROKEN, min);
    }

    fn caught_with_on_at_least(name: &str, broken: DiskFaults, min: usize) {
        let test = suite::find(name).expect("a suite test");
        let all: Vec<u64> = (1..=seeds::DEFAULT_SEEDS).collect();
        let correct = seeds::run(test, &all, DiskFaults::default());
        assert!(
            correct.is_empty(),
            "{name} fails with a correct disk: {correct:?}"
        );
        let failures = seeds::run(test, &all, broken);
        let caught: Vec<u64> = failures.iter().map(|(s, _)| *s).collect();
        assert!(
            caught.len() >= min,
            "{name} caught {broken:?} on only {} of {} seeds ({caught:?}): {failures:?}",
            caught.len(),
            all.len()
        );
    }

    #[test]
    fn persist1_catches_a_runtime_that_acknowledges_before_fsync() {
        caught_on_at_least("persist1", 20);
    }

    #[test]
    fn persist3_catches_a_runtime_that_acknowledges_before_fsync() {
        caught_on_at_least("persist3", 20);
    }

    #[test]
    fn power_failure_history_catches_a_runtime_that_acknowledges_before_fsync() {
        caught_on_at_least("linearizable_kv_power_failures", 15);
    }

    /// A snapshot writer that renames its file into place before its contents are durable
    /// (`DiskFaults::snapshot_rename_before_fsync`): the segments the snapshot covers are
    /// deleted at once, so a crash soon after leaves an empty or torn snapshot file and no WAL
    /// to rebuild the state from. The restarted server cannot recover (an error naming the
    /// file), which the simulator reports: snapshot_install_crash catches it on every one of
    /// seeds 1–20 (checked here with a margin: at least 15).
    #[test]
    fn snapshot_install_crash_catches_a_snapshot_writer_that_renames_before_fsync() {
        let broken = DiskFaults {
            snapshot_rename_before_fsync: true,
            ..DiskFaults::default()
        };
        caught_with_on_at_least("snapshot_install_crash", broken, 15);
        let test = suite::find("snapshot_install_crash").expect("a suite test");
        let failures = seeds::run(test, &[1], broken);
        let (_, message) = failures.first().expect("seed 1 is caught");
        assert!(
            message.contains("cannot recover") && message.contains(".snap is corrupt"),
            "{message}"
        );
    }
}

mod partial_partition_control {
    //! The partial-partition test (`suite::partial_partition`) can fail: the same scenario
    //! without PreVote and CheckQuorum deposes the leader on every one of seeds 1–20 (the
    //! cut-off follower's elections raise the third server's term, whose next answer makes
    //! the leader step down, its term risen); and so does PreVote alone, Cloudflare's 2020
    //! configuration (the third server grants the pre-vote of a follower whose log is as
    //! up-to-date as its own).

    use raft_tests::lab::Params;
    use raft_tests::seeds;
    use raft_tests::suite::{partially_partitioned_leader, PartialPartition};

    fn every_seed(pre_vote: bool, check_quorum: bool) -> Vec<(u64, PartialPartition)> {
        (1..=seeds::DEFAULT_SEEDS)
            .map(|seed| {
                let params = Params {
                    seed,
                    ..Params::default()
                };
                match partially_partitioned_leader(&params, pre_vote, check_quorum) {
                    Ok((_, r)) => (seed, r),
                    Err(e) => panic!("seed {seed}: {e}"),
                }
            })
            .collect()
    }

    #[test]
    fn without_pre_vote_and_check_quorum_the_leader_is_deposed() {
        for (seed, r) in every_seed(false, false) {
            assert!(
                r.deposed.is_some(),
                "seed {seed}: the leader kept its leadership without PreVote and CheckQuorum: {r:?}"
            );
            assert!(
                r.terms[r.leader] > r.term,
                "seed {seed}: the leader's term did not rise: {r:?}"
            );
        }
    }

    #[test]
    fn with_pre_vote_alone_the_leader_is_deposed() {
        for (seed, r) in every_seed(true, false) {
            assert!(
                r.deposed.is_some(),
                "seed {seed}: the leader kept its leadership with PreVote alone: {r:?}"
            );
            assert!(
                r.terms[r.leader] > r.term,
                "seed {seed}: the leader's term did not rise: {r:?}"
            );
        }
    }
}

mod determinism {
    //! The same seed replays the same run exactly: two runs of a faulty simulation with
    //! clients give the same history, the same message and turn counts and the same final
    //! state; another seed gives another run.

    use raft_tests::sim::network::NetParams;
    use raft_tests::sim::workload::Workload;
    use raft_tests::sim::{ms, Sim, SimOptions};

    fn fingerprint(seed: u64) -> String {
        let mut sim = Sim::new(&SimOptions::new(5, seed));
        sim.set_net(NetParams {
            unreliable: true,
            long_reordering: true,
            duplicate: 0.05,
            replay_frames: false,
        });
        sim.add_clients(&Workload::default());
        for round in 0..40 {
            sim.run_for(ms(250)).expect("no violation");
            let i = sim.rng.usize(0..5);
            if round % 3 == 0 {
                sim.crash(i);
            } else if !sim.alive(i) {
                sim.restart(i);
            }
        }
        format!(
            "{:?}\nturns {} rpcs {}\n{}",
            sim.history.events,
            sim.turns,
            sim.net.rpcs,
            sim.describe()
        )
    }

    #[test]
    fn the_same_seed_replays_the_same_run() {
        let a = fingerprint(42);
        assert_eq!(a, fingerprint(42));
        assert_ne!(a, fingerprint(43));
    }
}
