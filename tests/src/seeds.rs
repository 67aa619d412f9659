//! Running a suite test over many seeds, and replaying one.
//!
//! `RAFT_SEED=N` runs only seed N; `RAFT_SEEDS=K` runs seeds 1..=K (default
//! [`DEFAULT_SEEDS`]). A failure names every failing seed and a one-line replay command.

use crate::lab::Params;
use crate::sim::disk::DiskFaults;
use crate::suite::TestFn;

/// Seeds per test in `cargo test` (CI).
pub const DEFAULT_SEEDS: u64 = 20;

/// The command that replays `test` on `seed`.
pub fn replay_command(test: &str, seed: u64) -> String {
    format!("RAFT_SEED={seed} cargo test --release -p raft-tests --test lab -- {test} --exact")
}

/// Seeds chosen by the environment.
pub fn seeds_from_env() -> Result<Vec<u64>, String> {
    if let Ok(s) = std::env::var("RAFT_SEED") {
        let seed = s
            .trim()
            .parse()
            .map_err(|_| format!("RAFT_SEED={s:?} is not a number"))?;
        return Ok(vec![seed]);
    }
    let count = match std::env::var("RAFT_SEEDS") {
        Ok(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("RAFT_SEEDS={s:?} is not a number"))?,
        Err(_) => DEFAULT_SEEDS,
    };
    Ok((1..=count).collect())
}

/// Runs `test` on `seeds`; returns the failures as (seed, message).
pub fn run(test: TestFn, seeds: &[u64], faults: DiskFaults) -> Vec<(u64, String)> {
    seeds
        .iter()
        .filter_map(|&seed| {
            let params = Params { seed, faults };
            test(&params).err().map(|e| (seed, e))
        })
        .collect()
}

/// For `#[test]`s: runs `name` over the environment's seeds and panics with every failing
/// seed and the command replaying the first.
pub fn check(name: &str, test: TestFn) {
    let seeds = match seeds_from_env() {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let failures = run(test, &seeds, DiskFaults::default());
    if let Some((seed, msg)) = failures.first() {
        let list: Vec<String> = failures.iter().map(|(s, _)| s.to_string()).collect();
        panic!(
            "{name} failed on {} of {} seeds ({}); first: seed={seed}: {msg}\nreplay: {}",
            failures.len(),
            seeds.len(),
            list.join(", "),
            replay_command(name, *seed)
        );
    }
}
