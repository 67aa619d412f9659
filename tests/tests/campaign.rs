//! The fault campaign, short: a few trials of real `raft-node` processes, each hitting one voter
//! with a damaged WAL (a bit flipped in its last synced frame: refused, the node replaced by
//! the operator procedure; a torn tail: cut) and, where fiu-run is installed, an fsync failing
//! with EIO. Asserts that no acknowledged write is lost, that every history is linearizable
//! (and that Porcupine agrees, where Go is installed) and that no term had two leaders.

use raft_tests::campaign::{self, CampaignOptions, FaultKind, Outcome};
use std::path::PathBuf;
use std::time::Duration;

/// The `raft-node` built with this test (same profile): `target/<profile>/raft-node`.
fn raft_node() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?; // target/<profile>/deps/<test> → target/<profile>
    let bin = profile_dir.join("raft-node");
    bin.exists().then_some(bin)
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

#[test]
fn campaign_replaces_a_node_with_a_corrupt_wal_and_loses_no_write() {
    let Some(node_bin) = raft_node() else {
        let what = "no raft-node beside this test (cargo build -p raft-impl)";
        if ci() {
            panic!("{what} (under CI=true this check may not be skipped)");
        }
        eprintln!("SKIPPED: {what}");
        return;
    };
    let mut kinds = vec![FaultKind::CorruptWalLastSynced, FaultKind::CorruptWalTail];
    if campaign::fiu_available() {
        kinds.push(FaultKind::FsyncEio);
    } else if ci() {
        panic!("fiu-run not found (apt-get install fiu-utils); under CI=true the fsync-eio trial may not be skipped");
    } else {
        eprintln!("SKIPPED: the fsync-eio trial (fiu-run not found; apt-get install fiu-utils)");
    }
    let porcupine_dir = match raft_tests::history_export::go_missing() {
        None => Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/porcupine"
        ))),
        Some(why) if ci() => panic!("{why} (under CI=true Porcupine may not be skipped)"),
        Some(why) => {
            eprintln!("SKIPPED: Porcupine's verdicts ({why})");
            None
        }
    };
    let options = CampaignOptions {
        trials: kinds.len() as u32,
        seed: 7,
        kinds,
        node_bin,
        history_dir: None,
        load: Duration::from_millis(1500),
        porcupine_dir,
        only_trial: None,
    };
    let summary = campaign::run(&options).expect("the campaign runs");
    let report = summary.markdown(&options, &options.command(), "(test)");
    assert_eq!(summary.lost(), 0, "{report}");
    assert!(summary.ok(), "{report}");
    // The flipped bit in the last synced frame is refused and the node replaced.
    let synced = &summary.trials[0];
    assert_eq!(synced.kind, FaultKind::CorruptWalLastSynced);
    assert_eq!(synced.outcome, Outcome::RefusedReplaced, "{report}");
    assert!(summary.trials.iter().all(|t| t.acked > 0), "{report}");
}
