//! Log compaction and InstallSnapshot between real `raft-node` processes: a follower that was
//! down while the others committed and compacted catches up from the leader's snapshot, which
//! is larger than a frame (so it travels in chunks), and then serves the data as leader.

mod common;

use common::{execute, kv, text, wait_until, write_cluster, Node};
use raft_impl::kv::{Op, OpResult};
use raft_impl::wire::{request_size, MAX_FRAME_LEN, MAX_REQUEST_BYTES};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

/// The largest value whose put request is within the limit.
fn value_at_the_limit(key: &str, fill: char) -> String {
    let command = |len: usize| raft_impl::kv::Command {
        client_id: u64::MAX,
        seq: u64::MAX,
        op: Op::Put {
            key: key.into(),
            value: fill.to_string().repeat(len),
        },
    };
    let mut len = MAX_REQUEST_BYTES;
    while request_size(&command(len)).unwrap() > MAX_REQUEST_BYTES {
        len -= 1;
    }
    fill.to_string().repeat(len)
}

/// The `bytes=` of the first log line containing `what`.
fn logged_bytes(log: &str, what: &str) -> Option<usize> {
    let line = log.lines().find(|l| l.contains(what))?;
    let rest = &line[line.find("bytes=")? + "bytes=".len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn a_follower_behind_the_snapshot_installs_it_in_chunks_and_serves_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, file) = write_cluster(dir.path(), 3);
    let data = |id: u64| dir.path().join(format!("node-{id}"));
    let log = |id: u64| dir.path().join(format!("node-{id}.log"));
    let args = ["--snapshot-entries", "12"];
    let start = |id: u64| Node::start_with(id, &file, &data(id), &log(id), &args);
    let mut n0 = start(0);
    let mut n1 = start(1);
    // Node 2 is down while 12 values of 1.5 MiB commit and the others compact them: an image
    // of 18 MiB, more than one frame may carry.
    let values = 12;
    let key = |k: usize| format!("big-{k}");
    let fill = |k: usize| (b'a' + k as u8) as char;
    for k in 0..values {
        let put = Op::Put {
            key: key(k),
            value: value_at_the_limit(&key(k), fill(k)),
        };
        assert_eq!(execute(&cluster, put, TIMEOUT), OpResult::Value(None));
    }
    let small = Op::Put {
        key: "small".into(),
        value: "1".into(),
    };
    execute(&cluster, small, TIMEOUT);
    let mut n2 = start(2);
    assert!(
        wait_until(TIMEOUT, || n2
            .log_text()
            .contains("installing the leader's snapshot")),
        "node 2 installed no snapshot:\n{}",
        n2.log_text()
    );
    let installed = logged_bytes(&n2.log_text(), "installing the leader's snapshot").unwrap();
    assert!(installed > MAX_FRAME_LEN, "a snapshot of {installed} bytes");
    let sent = [&n0, &n1]
        .iter()
        .any(|n| n.log_text().contains("sending a snapshot"));
    assert!(sent, "no leader logged sending a snapshot");
    // Node 1 stops: nothing commits unless node 2 holds everything.
    n1.kill9();
    let after = Op::Put {
        key: "after".into(),
        value: "v".into(),
    };
    assert_eq!(execute(&cluster, after, TIMEOUT), OpResult::Value(None));
    // Node 2 leads (a transfer, asked until done) and answers every read from its store.
    let transferred = wait_until(TIMEOUT, || {
        let out = kv(&file, &["leader", "transfer", "--to", "2"]);
        out.status.success()
    });
    assert!(transferred, "node 2 does not lead:\n{}", n2.log_text());
    for k in 0..values {
        match execute(&cluster, Op::Get { key: key(k) }, TIMEOUT) {
            OpResult::Value(Some(v)) => {
                assert!(v.len() > MAX_REQUEST_BYTES - 100 && v.chars().all(|c| c == fill(k)))
            }
            other => panic!("{} is gone: {other:?}", key(k)),
        }
    }
    let show = kv(&file, &["leader", "show"]);
    assert!(text(&show.stdout).contains('2'), "{}", text(&show.stdout));
    assert!(n0.is_running() && n2.is_running());
    for n in [&n0, &n2] {
        assert!(
            !n.log_text().contains("bad snapshot chunk"),
            "{}",
            n.log_text()
        );
    }
}

/// Snapshots are written off the event loop by a writer thread and the log is compacted once
/// the file is durable: nodes killed (SIGKILL) at arbitrary points of that, one after the other
/// and then all at once, come back with every acknowledged put, from their snapshot files and
/// the WAL after them, and leave no temporary file behind.
#[test]
fn nodes_killed_while_writing_snapshots_keep_every_acknowledged_put() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, file) = write_cluster(dir.path(), 3);
    let data = |id: u64| dir.path().join(format!("node-{id}"));
    let log = |id: u64| dir.path().join(format!("node-{id}.log"));
    // A snapshot every 10 entries of a store that grows to about 2.4 MB: the writer is busy
    // much of the time, so the kills land before, during and after its writes.
    let args = ["--snapshot-entries", "10"];
    let start = |id: u64| Node::start_with(id, &file, &data(id), &log(id), &args);
    let mut nodes: Vec<Node> = (0..3).map(start).collect();
    let key = |k: usize| format!("key-{k}");
    let value = |k: usize| format!("{k:08}").repeat(1000);
    let puts = 300;
    for k in 0..puts {
        let put = Op::Put {
            key: key(k),
            value: value(k),
        };
        assert_eq!(execute(&cluster, put, TIMEOUT), OpResult::Value(None));
        if k % 100 == 50 {
            let id = (k / 100) % 3;
            nodes[id].kill9();
            nodes[id] = start(id as u64);
        }
    }
    for n in &mut nodes {
        n.kill9();
    }
    let nodes: Vec<Node> = (0..3).map(start).collect();
    for k in 0..puts {
        match execute(&cluster, Op::Get { key: key(k) }, TIMEOUT) {
            OpResult::Value(Some(v)) => assert!(v == value(k), "{} holds another value", key(k)),
            other => panic!("{} is gone: {other:?}", key(k)),
        }
    }
    for (id, n) in nodes.iter().enumerate() {
        let names: Vec<String> = std::fs::read_dir(data(id as u64))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("snap-") && n.ends_with(".snap")),
            "node {id} took no snapshot: {names:?}\n{}",
            n.log_text()
        );
        assert!(
            !names.iter().any(|n| n.ends_with(".tmp")),
            "node {id} kept a temporary file: {names:?}"
        );
        assert!(!n.log_text().contains("cannot write the snapshot"));
    }
}
