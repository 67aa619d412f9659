//! A follower whose disk lost its last acknowledged entries (issue 13, finding 6): the leader's
//! next_index never goes below match_index, so the same AppendEntries is rejected forever.
//! Both sides must say so, with the indices, at a bounded rate, instead of failing silently.
//! And a bit flipped in the last synced frame is not such a loss: the node refuses to start
//! (issue 38, finding 1). Scripted from outside against the real `raft-node`.

mod common;

use common::{execute, node_command, output_within, text, wait_until, write_cluster, Node};
use raft_impl::kv::{Op, OpResult};
use raft_impl::storage::{segment_paths, FRAME_HEADER_LEN, FRAME_MAGIC};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn a_follower_that_lost_acknowledged_entries_is_reported_by_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, file) = write_cluster(dir.path(), 3);
    let data = |id: u64| dir.path().join(format!("node-{id}"));
    let log = |id: u64| dir.path().join(format!("node-{id}.log"));
    let mut nodes: Vec<Node> = (0..3)
        .map(|id| Node::start(id, &file, &data(id), &log(id)))
        .collect();
    for k in 0..5 {
        let put = Op::Put {
            key: format!("k{k}"),
            value: format!("v{k}"),
        };
        assert_eq!(execute(&cluster, put, TIMEOUT), OpResult::Value(None));
    }
    std::thread::sleep(Duration::from_secs(1));
    // A follower: a node whose log does not say "became leader".
    let victim = (0..3)
        .find(|&i| !nodes[i].log_text().contains("became leader"))
        .expect("two followers");
    nodes[victim].kill9();
    // Disk damage to its last synced record: cut the WAL at the start of its last frame (the
    // recovery takes that for a torn tail and starts without those entries) in its newest WAL
    // segment.
    let wal = segment_paths(&data(victim as u64))
        .unwrap()
        .pop()
        .expect("a WAL segment");
    let mut bytes = std::fs::read(&wal).unwrap();
    let last = bytes
        .windows(FRAME_MAGIC.len())
        .rposition(|w| w == FRAME_MAGIC)
        .expect("a frame");
    bytes.truncate(last + 1);
    std::fs::write(&wal, &bytes).unwrap();
    nodes[victim] = Node::start(
        victim as u64,
        &file,
        &data(victim as u64),
        &log(victim as u64),
    );

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
    let dir = tempfile::tempdir().unwrap();
    let (cluster, file) = write_cluster(dir.path(), 3);
    let data = |id: u64| dir.path().join(format!("node-{id}"));
    let log = |id: u64| dir.path().join(format!("node-{id}.log"));
    let mut nodes: Vec<Node> = (0..3)
        .map(|id| Node::start(id, &file, &data(id), &log(id)))
        .collect();
    for k in 0..5 {
        let put = Op::Put {
            key: format!("k{k}"),
            value: format!("v{k}"),
        };
        assert_eq!(execute(&cluster, put, TIMEOUT), OpResult::Value(None));
    }
    std::thread::sleep(Duration::from_secs(1));
    for node in &mut nodes {
        node.kill9();
    }
    let wal = segment_paths(&data(1))
        .unwrap()
        .pop()
        .expect("a WAL segment");
    let mut bytes = std::fs::read(&wal).unwrap();
    let last = bytes
        .windows(FRAME_MAGIC.len())
        .rposition(|w| w == FRAME_MAGIC)
        .expect("a frame");
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
