//! The process soak with network faults, short: two trials of real `raft-node` processes whose
//! peer connections go through the soak's proxies. Fails if the proxies do nothing (no bytes
//! forwarded, or a partitioned leader keeps serving and no other node commits), and on any lost
//! write or non-linearizable history.

use raft_tests::soak::{self, SoakOptions};
use std::path::PathBuf;
use std::time::Duration;

/// The `raft-node` built with this test (same profile): `target/<profile>/raft-node`.
fn raft_node() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?; // target/<profile>/deps/<test> → target/<profile>
    let bin = profile_dir.join("raft-node");
    bin.exists().then_some(bin)
}

#[test]
fn soak_with_network_faults_partitions_the_leader_and_a_new_one_serves() {
    let Some(node_bin) = raft_node() else {
        let what = "no raft-node beside this test (cargo build -p raft-impl)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{what} (under CI=true this check may not be skipped)");
        }
        eprintln!("SKIPPED: {what}");
        return;
    };
    let options = SoakOptions {
        trials: 2,
        load: Duration::from_secs(2),
        node_bin,
        seed: 13,
        trace_dir: None,
        history_dir: None,
        net_faults: true,
        snapshot_entries: soak::SNAPSHOT_ENTRIES,
    };
    let summary = soak::run(&options).expect("the soak runs");
    let report = summary.markdown(&options);
    assert!(summary.ok(), "{report}");
    assert!(summary.net.bytes > 0, "{report}");
    assert!(summary.net.leader_isolations >= 1, "{report}");
    assert!(summary.net.new_leaders >= 1, "{report}");
    assert!(summary.net.two_way + summary.net.one_way >= 2, "{report}");
    assert!(summary.compactions > 0, "{report}");
}
