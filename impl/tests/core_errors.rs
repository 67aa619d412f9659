//! A state the correct protocol never reaches stops the node (raft-core's `CoreError`), loudly:
//! the process exits non-zero naming the offending message, and nothing committed is deleted.
//! Scripted from outside against the real `raft-node` binary.

use raft_impl::config::{ClusterConfig, NodeSpec};
use raft_impl::core::{AppendEntries, Entry, Message, NodeId};
use raft_impl::kv::{Command, Op};
use raft_impl::wire::{encode_frame, PeerFrame, PeerWire};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

fn entry(term: u64, seq: u64) -> Entry<Command> {
    Entry {
        term,
        command: Command {
            client_id: 9,
            seq,
            op: Op::Put {
                key: "k".into(),
                value: format!("v{seq}"),
            },
        },
    }
}

fn append(from: u64, term: u64, prev: (u64, u64), entries: Vec<Entry<Command>>) -> Vec<u8> {
    encode_frame(&PeerWire::Raft(PeerFrame {
        from: NodeId(from),
        msg: Message::AppendEntries(AppendEntries {
            term,
            prev_log_index: prev.0,
            prev_log_term: prev.1,
            entries,
            leader_commit: 2,
            read_round: 0,
        }),
    }))
    .expect("encode")
}

fn connect(addr: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => return s,
            Err(e) if Instant::now() > deadline => panic!("node never listened on {addr}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[test]
fn an_append_entries_deleting_a_committed_entry_stops_the_node_with_the_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<NodeSpec> = (0..3)
        .map(|id| NodeSpec {
            id,
            peer_addr: free_addr(),
            client_addr: free_addr(),
            initial_member: true,
        })
        .collect();
    let mut config = ClusterConfig::new(nodes.clone());
    // Forged frames on the plain peer port.
    config.insecure = true;
    std::fs::write(dir.path().join("cluster.toml"), config.to_toml()).unwrap();
    // Only node 0 runs, with election timeouts far longer than the test, so that it stays a
    // follower of whoever speaks to it.
    let mut child = Process::new(env!("CARGO_BIN_EXE_raft-node"))
        .args(["--id", "0", "--cluster"])
        .arg(dir.path().join("cluster.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("node-0"))
        .args(["--election-timeout-min-ms", "60000"])
        .args(["--election-timeout-max-ms", "60000"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start raft-node");

    let mut peer = connect(nodes[0].peer_addr);
    // Term 1, from n1: two entries, both committed (leader_commit 2).
    peer.write_all(&append(1, 1, (0, 0), vec![entry(1, 1), entry(1, 2)]))
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Term 2, from n2: replaces the committed entry 2, which no real leader can do.
    peer.write_all(&append(2, 2, (1, 1), vec![entry(2, 3)]))
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the node kept running after a request that deletes a committed entry");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(
        stderr.contains("would delete the entry at index 2, which is committed"),
        "the typed error is named:\n{stderr}"
    );
    assert!(
        stderr.contains("AppendEntries(term 2, prev 1/t1, 1 entries, commit 2) from n2"),
        "the offending message is named:\n{stderr}"
    );
}
