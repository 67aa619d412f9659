//! A follower whose disk lost its last acknowledged entries (issue 13, finding 6): the leader's
//! next_index never goes below match_index, so the same AppendEntries is rejected forever.
//! Both sides must say so, with the indices, at a bounded rate, instead of failing silently,
//! and the follower must not hold the cluster hostage (issue 38, finding 3).
//! And a bit flipped in the last synced frame is not such a loss: the node refuses to start
//! (issue 38, finding 1). Scripted from outside against the real `raft-node`.

mod common;

use common::{execute, node_command, output_within, text, wait_until, write_cluster, Node};
use raft_impl::kv::{Op, OpResult};
use raft_impl::storage::{segment_paths, FRAME_HEADER_LEN, FRAME_MAGIC};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A 3-node cluster (data and logs in the returned directory) after 5 acknowledged writes,
/// k0..k4, and a second for the followers to sync them.
fn three_nodes_after_five_writes() -> (
    tempfile::TempDir,
    raft_impl::config::ClusterConfig,
    std::path::PathBuf,
    Vec<Node>,
) {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, file) = write_cluster(dir.path(), 3);
    let mut nodes = Vec::new();
    for id in 0..3u64 {
        let data = dir.path().join(format!("node-{id}"));
        let log = dir.path().join(format!("node-{id}.log"));
        nodes.push(Node::start(id, &file, &data, &log));
    }
    for k in 0..5 {
        let put = Op::Put {
            key: format!("k{k}"),
            value: format!("v{k}"),
        };
        assert_eq!(execute(&cluster, put, TIMEOUT), OpResult::Value(None));
    }
    std::thread::sleep(Duration::from_secs(1));
    (dir, cluster, file, nodes)
}

/// The newest WAL segment of a data directory, its bytes, and where its last frame starts.
fn newest_segment_and_last_frame(data: &std::path::Path) -> (std::path::PathBuf, Vec<u8>, usize) {
    let wal = segment_paths(data).unwrap().pop().expect("a WAL segment");
    let bytes = std::fs::read(&wal).unwrap();
    let last = bytes
        .windows(FRAME_MAGIC.len())
        .rposition(|w| w == FRAME_MAGIC)
        .expect("a frame");
    (wal, bytes, last)
}

/// A 3-node cluster after 5 writes, in which a follower (`victim`) was killed, lost the
/// last frame of its WAL (cut at the start of that frame, which recovery takes for a torn
/// tail) and was restarted: it lacks entries its leader counted as acknowledged.
struct Damaged {
    dir: tempfile::TempDir,
    cluster: raft_impl::config::ClusterConfig,
    nodes: Vec<Node>,
    victim: usize,
}

fn a_follower_loses_its_last_frame() -> Damaged {
    let (dir, cluster, file, mut nodes) = three_nodes_after_five_writes();
    let data = |id: u64| dir.path().join(format!("node-{id}"));
    let log = |id: u64| dir.path().join(format!("node-{id}.log"));
    // A follower: a node whose log does not say "became leader".
    let victim = (0..3)
        .find(|&i| !nodes[i].log_text().contains("became leader"))
        .expect("two followers");
    nodes[victim].kill9();
    // Disk damage to its last synced record: cut the WAL at the start of its last frame (the
    // recovery takes that for a torn tail and starts without those entries) in its newest WAL
    // segment.
    let (wal, mut bytes, last) = newest_segment_and_last_frame(&data(victim as u64));
    bytes.truncate(last + 1);
    std::fs::write(&wal, &bytes).unwrap();
    nodes[victim] = Node::start(
        victim as u64,
        &file,
        &data(victim as u64),
        &log(victim as u64),
    );
    Damaged {
        dir,
        cluster,
        nodes,
        victim,
    }
}

#[test]
fn a_follower_that_lost_acknowledged_entries_is_reported_by_both_sides() {
    let Damaged {
        dir: _dir,
        nodes,
        victim,
        ..
    } = a_follower_loses_its_last_frame();
    let leader = (0..3)
        .find(|&i| i != victim && nodes[i].log_text().contains("became leader"))
        .expect("a leader");
    let reported = wait_until(Duration::from_secs(20), || {
        nodes[leader]
            .log_text()
            .contains(&format!("follower n{victim} keeps rejecting AppendEntries"))
            && nodes[victim]
                .log_text()
                .contains("rejected AppendEntries from leader")
    });
    assert!(
        reported,
        "both sides report the stuck follower\nleader:\n{}\nfollower:\n{}",
        nodes[leader].log_text(),
        nodes[victim].log_text()
    );
    // At a bounded rate: at most a few lines in these seconds, not one per heartbeat.
    let lines = nodes[leader].log_text().matches("keeps rejecting").count();
    assert!(lines <= 3, "{lines} diagnosis lines");
}

#[test]
fn a_bit_flipped_in_the_last_synced_frame_stops_the_node_naming_the_file() {
    // Issue 38, finding 1: recovery cut a damaged last frame as if it were a torn write, and
    // the node came back without entries (or a vote) it had acknowledged. Now it refuses to
    // start, naming the file and the offset, and leaves the file as it is.
    let (dir, _, file, mut nodes) = three_nodes_after_five_writes();
    let data = |id: u64| dir.path().join(format!("node-{id}"));
    for node in &mut nodes {
        node.kill9();
    }
    let (wal, mut bytes, last) = newest_segment_and_last_frame(&data(1));
    bytes[last + FRAME_HEADER_LEN + 1] ^= 0x08;
    std::fs::write(&wal, &bytes).unwrap();
    let out = output_within(&mut node_command(1, &file, &data(1)), TIMEOUT);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "the node started:\n{stderr}");
    let name = wal.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        stderr.contains(&name)
            && stderr.contains(&format!("byte offset {last}"))
            && stderr.contains("synced data"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&wal).unwrap(), bytes, "the WAL was changed");
}

#[test]
fn a_damaged_follower_and_one_node_down_do_not_stop_the_majority() {
    // Issue 38, finding 3: with the third node down, the damaged follower's rejections counted
    // as CheckQuorum activity, so the leader never stepped down, and with next_index never
    // below match_index the follower could never catch up: 0 of 10 puts in 30 s. Now the
    // leader loses its office, is elected again, and repairs the follower from a fresh
    // progress.
    let Damaged {
        dir: _dir,
        cluster,
        mut nodes,
        victim,
    } = a_follower_loses_its_last_frame();
    let leader = (0..3)
        .find(|&i| i != victim && nodes[i].log_text().contains("became leader"))
        .expect("a leader");
    let third = 3 - leader - victim;
    nodes[third].kill9();
    let put = Op::Put {
        key: "after".into(),
        value: "the damage".into(),
    };
    let logs = || {
        nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("--- node {i} ---\n{}", n.log_text()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut client = common::client(&cluster);
    let done = client.execute(put, Duration::from_secs(45));
    assert!(
        matches!(done, Ok(OpResult::Value(None))),
        "{done:?}\n{}",
        logs()
    );
    let get = Op::Get { key: "k4".into() };
    assert_eq!(
        execute(&cluster, get, TIMEOUT),
        OpResult::Value(Some("v4".into()))
    );
}
