//! Values at the request limit: a follower that was down while many of them were committed
//! catches up (AppendEntries are batched by bytes as well as entries, and always carry one
//! entry), and the cluster keeps a leader throughout. Scripted from outside against the real
//! `raft-node` binary.

mod common;

use common::{execute, write_cluster, Node};
use raft_impl::kv::{Op, OpResult};
use raft_impl::wire::{request_size, MAX_FRAME_LEN, MAX_REQUEST_BYTES};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

/// The largest value whose put request is within the limit.
fn value_at_the_limit(key: &str) -> String {
    let command = |len: usize| raft_impl::kv::Command {
        client_id: u64::MAX,
        seq: u64::MAX,
        op: Op::Put {
            key: key.into(),
            value: "x".repeat(len),
        },
    };
    let mut len = MAX_REQUEST_BYTES;
    while request_size(&command(len)).unwrap() > MAX_REQUEST_BYTES {
        len -= 1;
    }
    "x".repeat(len)
}

#[test]
fn a_follower_catches_up_across_many_values_at_the_request_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, file) = write_cluster(dir.path(), 3);
    let data = |id: u64| dir.path().join(format!("node-{id}"));
    let log = |id: u64| dir.path().join(format!("node-{id}.log"));
    let mut n0 = Node::start(0, &file, &data(0), &log(0));
    let mut n1 = Node::start(1, &file, &data(1), &log(1));
    // Node 2 is down while 12 values of 1.5 MiB commit: 18 MiB, more than one frame may carry
    // (and 256 of them, the entry-count batch, would be 384 MiB).
    let values = 12;
    assert!(values * MAX_REQUEST_BYTES > MAX_FRAME_LEN);
    for k in 0..values {
        let key = format!("big-{k}");
        let value = value_at_the_limit(&key);
        let put = Op::Put { key, value };
        assert_eq!(execute(&cluster, put, TIMEOUT), OpResult::Value(None));
    }
    let mut n2 = Node::start(2, &file, &data(2), &log(2));
    // Let node 2 catch up, then stop node 1: nothing commits any more unless node 2 holds the
    // whole log.
    std::thread::sleep(Duration::from_secs(5));
    n1.kill9();
    let put = Op::Put {
        key: "after".into(),
        value: "v".into(),
    };
    assert_eq!(execute(&cluster, put, TIMEOUT), OpResult::Value(None));
    let get = Op::Get {
        key: format!("big-{}", values - 1),
    };
    match execute(&cluster, get, TIMEOUT) {
        OpResult::Value(Some(v)) => assert!(v.len() > MAX_REQUEST_BYTES - 100),
        other => panic!("the last big value is gone: {other:?}"),
    }
    assert!(n0.is_running() && n2.is_running());
    assert!(
        !n2.log_text().contains("exceeds"),
        "no frame over the limit:\n{}",
        n2.log_text()
    );
}
