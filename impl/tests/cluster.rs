//! Process tests: 3 raft-node processes on loopback ports, driven through the client library.

use raft_impl::client::Client;
use raft_impl::config::{ClusterConfig, NodeSpec};
use raft_impl::kv::{Op, OpResult};
use raft_impl::wire::{encode_frame, read_frame, ClientReply, ClientRequest};
use std::fs::{self, File};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

const OP_TIMEOUT: Duration = Duration::from_secs(10);

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// The client TLS configuration of the cluster file `file` (read into `cluster`).
fn client_tls(
    cluster: &ClusterConfig,
    file: &std::path::Path,
) -> Option<std::sync::Arc<rustls::ClientConfig>> {
    raft_impl::client::tls_config_for(cluster, file, None, None)
        .expect("the cluster's client TLS configuration")
}

/// A cluster of raft-node processes in a temporary directory; killed when dropped.
struct TestCluster {
    dir: tempfile::TempDir,
    cluster: ClusterConfig,
    cluster_file: PathBuf,
    nodes: Vec<Option<Child>>,
}

impl TestCluster {
    fn start(n: u64) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cluster = ClusterConfig::new(
            (0..n)
                .map(|id| NodeSpec {
                    id,
                    peer_addr: free_addr(),
                    client_addr: free_addr(),
                    initial_member: true,
                })
                .collect(),
        );
        // TLS, with the certificates in the test's directory.
        let tls_dir = dir.path().join("tls");
        raft_impl::certs::write_cluster(&tls_dir, &cluster, false).expect("certificates");
        cluster.tls = Some(raft_impl::config::TlsSection {
            dir: tls_dir,
            client_cert_auth: false,
        });
        let cluster_file = dir.path().join("cluster.toml");
        fs::write(&cluster_file, cluster.to_toml()).expect("write cluster file");
        let mut c = TestCluster {
            dir,
            cluster,
            cluster_file,
            nodes: (0..n).map(|_| None).collect(),
        };
        for id in 0..n {
            c.start_node(id);
        }
        c
    }

    fn start_node(&mut self, id: u64) {
        let log_path = self.dir.path().join(format!("node-{id}.log"));
        let log = File::options()
            .create(true)
            .append(true)
            .open(log_path)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_raft-node"))
            .args(["--id", &id.to_string(), "--cluster"])
            .arg(&self.cluster_file)
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("node-{id}")))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn raft-node");
        self.nodes[id as usize] = Some(child);
    }

    /// SIGKILL: no chance to flush anything that was not already durable.
    fn kill9(&mut self, id: u64) {
        if let Some(mut child) = self.nodes[id as usize].take() {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        }
    }

    fn client(&self) -> Client {
        Client::new(self.cluster.client_addrs())
            .with_tls(client_tls(&self.cluster, &self.cluster_file))
    }

    fn id_of(&self, client_addr: SocketAddr) -> u64 {
        self.cluster
            .nodes
            .iter()
            .find(|n| n.client_addr == client_addr)
            .map(|n| n.id)
            .expect("a cluster member's address")
    }

    fn logs(&self) -> String {
        (0..self.nodes.len())
            .map(|id| {
                let path = self.dir.path().join(format!("node-{id}.log"));
                let text = fs::read_to_string(path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!("--- node {id} (last lines) ---\n{}", tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for id in 0..self.nodes.len() as u64 {
            self.kill9(id);
        }
    }
}

/// `total` puts from `clients` concurrent sessions; returns every acknowledged (key, value).
fn put_many(
    cluster: &TestCluster,
    prefix: &str,
    clients: usize,
    total: usize,
) -> Vec<(String, String)> {
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let mut client = cluster.client();
            let prefix = prefix.to_string();
            thread::spawn(move || {
                let mut acked = Vec::new();
                for i in (c..total).step_by(clients) {
                    let key = format!("{prefix}-{i}");
                    let value = format!("value-{i}");
                    let op = Op::Put {
                        key: key.clone(),
                        value: value.clone(),
                    };
                    match client.execute(op, OP_TIMEOUT) {
                        Ok(OpResult::Value(_)) => acked.push((key, value)),
                        other => panic!("put {key}: {other:?}"),
                    }
                }
                acked
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect()
}

/// Reads every key back (through the log) and checks its value; returns the leader that
/// answered.
fn check_all(cluster: &TestCluster, acked: &[(String, String)], clients: usize) -> SocketAddr {
    let chunks: Vec<Vec<(String, String)>> = acked
        .chunks(acked.len().div_ceil(clients).max(1))
        .map(|c| c.to_vec())
        .collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let mut client = cluster.client();
            thread::spawn(move || {
                for (key, value) in chunk {
                    let got = client.execute(Op::Get { key: key.clone() }, OP_TIMEOUT);
                    assert_eq!(
                        got.ok(),
                        Some(OpResult::Value(Some(value))),
                        "acknowledged put of {key} lost"
                    );
                }
                client.leader().expect("some node answered")
            })
        })
        .collect();
    let leaders: Vec<SocketAddr> = handles
        .into_iter()
        .map(|h| h.join().expect("reader thread"))
        .collect();
    leaders[0]
}

fn run_or_dump<T>(cluster: &TestCluster, f: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{}", cluster.logs());
            std::panic::resume_unwind(e)
        }
    }
}

#[test]
fn a_leader_killed_with_sigkill_loses_no_acknowledged_put() {
    let mut cluster = TestCluster::start(3);
    let acked = run_or_dump(&cluster, || put_many(&cluster, "before", 8, 1000));
    assert_eq!(acked.len(), 1000);
    // The node that acknowledged the last puts is the leader.
    let mut probe = cluster.client();
    run_or_dump(&cluster, || {
        probe
            .execute(
                Op::Get {
                    key: "before-0".into(),
                },
                OP_TIMEOUT,
            )
            .expect("leader reachable")
    });
    let leader = cluster.id_of(probe.leader().expect("a leader answered"));
    cluster.kill9(leader);

    let new_leader = run_or_dump(&cluster, || check_all(&cluster, &acked, 4));
    assert_ne!(
        cluster.id_of(new_leader),
        leader,
        "the killed node answered"
    );
    // The remaining majority keeps accepting writes.
    let after = run_or_dump(&cluster, || put_many(&cluster, "after", 4, 100));
    run_or_dump(&cluster, || check_all(&cluster, &after, 4));
}

#[test]
fn restarting_every_node_recovers_all_acknowledged_puts_from_disk() {
    let mut cluster = TestCluster::start(3);
    let acked = run_or_dump(&cluster, || put_many(&cluster, "durable", 8, 500));
    assert_eq!(acked.len(), 500);
    for id in 0..3 {
        cluster.kill9(id);
    }
    for id in 0..3 {
        cluster.start_node(id);
    }
    run_or_dump(&cluster, || check_all(&cluster, &acked, 4));
    // The restarted cluster accepts new writes on top of the recovered state.
    let more = run_or_dump(&cluster, || put_many(&cluster, "durable", 4, 20));
    run_or_dump(&cluster, || check_all(&cluster, &more, 2));
}

#[test]
fn a_bad_cluster_file_exits_with_status_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("cluster.toml");
    fs::write(&file, "[[node]]\nid = 0\npeer_addr = \"not an address\"\n").expect("write");
    let status = Command::new(env!("CARGO_BIN_EXE_raft-node"))
        .args(["--id", "0", "--cluster"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stderr(Stdio::null())
        .status()
        .expect("run raft-node");
    assert_eq!(status.code(), Some(2));
    let status = Command::new(env!("CARGO_BIN_EXE_raft-kv"))
        .args(["--cluster"])
        .arg(&file)
        .args(["get", "k"])
        .stderr(Stdio::null())
        .status()
        .expect("run raft-kv");
    assert_eq!(status.code(), Some(2));
    let status = Command::new(env!("CARGO_BIN_EXE_raft-kv"))
        .args(["--no-such-flag"])
        .stderr(Stdio::null())
        .status()
        .expect("run raft-kv");
    assert_eq!(status.code(), Some(2));
}

#[test]
fn raft_kv_reports_no_quorum_with_a_nonzero_exit() {
    // A cluster file naming ports where nothing listens.
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = ClusterConfig::new(
        (0..3)
            .map(|id| NodeSpec {
                id,
                peer_addr: free_addr(),
                client_addr: free_addr(),
                initial_member: true,
            })
            .collect(),
    );
    let file = dir.path().join("cluster.toml");
    fs::write(&file, cluster.to_toml()).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_raft-kv"))
        .args(["--timeout-secs", "1", "--cluster"])
        .arg(&file)
        .args(["put", "k", "v"])
        .output()
        .expect("run raft-kv");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no leader with a quorum"));
}

#[test]
fn raft_cluster_up_serves_raft_kv_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    // --insecure: the bench below speaks plain TCP only (tls.rs runs `up` with TLS).
    let mut up = Command::new(env!("CARGO_BIN_EXE_raft-cluster"))
        .args(["up", "--insecure", "--nodes", "3", "--dir"])
        .arg(dir.path())
        .arg("--node-bin")
        .arg(env!("CARGO_BIN_EXE_raft-node"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn raft-cluster");
    let file = dir.path().join("cluster.toml");
    let kv = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_raft-kv"))
            .args(["--timeout-secs", "10", "--cluster"])
            .arg(&file)
            .args(args)
            .output()
            .expect("run raft-kv")
    };
    for _ in 0..100 {
        if file.exists() {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let put = kv(&["put", "greeting", "hello"]);
    let get = kv(&["get", "greeting"]);
    let cas = kv(&["cas", "greeting", "nope", "x"]);
    // The bench's poll-driven clients (the default) against the same cluster.
    let report = dir.path().join("bench.json");
    let bench = kv(&[
        "bench",
        "--clients",
        "4",
        "--warmup",
        "0.5",
        "--duration",
        "1",
        "--json",
        report.to_str().unwrap(),
    ]);
    let pipelined = two_commands_before_reading(&file);
    let _ = Command::new("kill")
        .args(["-TERM", &up.id().to_string()])
        .status();
    let status = up.wait().expect("raft-cluster exits");
    assert!(put.status.success(), "{put:?}");
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "hello");
    assert_eq!(cas.status.code(), Some(3), "{cas:?}");
    assert!(bench.status.success(), "{bench:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["options"]["io"], "poll", "{report}");
    assert!(report["ops"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    assert_eq!(
        pipelined,
        vec![
            ClientReply::Ok(OpResult::Value(Some("hello".into()))),
            ClientReply::Ok(OpResult::Value(Some("one".into()))),
        ],
        "both commands answered, in order"
    );
    assert!(
        status.success(),
        "raft-cluster did not stop cleanly: {status}"
    );
}

/// Two commands written on one connection before either answer is read (the client library
/// never does this): the node answers both, in order (the second waits for the first).
fn two_commands_before_reading(file: &std::path::Path) -> Vec<ClientReply> {
    let cluster = ClusterConfig::load(file).expect("cluster file");
    let mut client = Client::new(cluster.client_addrs());
    client
        .leader_info(Duration::from_secs(10))
        .expect("a leader");
    let leader = client.leader().expect("the leader's address");
    let mut stream = std::net::TcpStream::connect(leader).expect("connect to the leader");
    let command = |seq, value: &str| {
        ClientRequest::Command(raft_impl::kv::Command {
            client_id: 77,
            seq,
            op: Op::Put {
                key: "greeting".into(),
                value: value.into(),
            },
        })
    };
    let mut both = encode_frame(&command(1, "one")).unwrap();
    both.extend(encode_frame(&command(2, "two")).unwrap());
    stream.write_all(&both).expect("write both");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (0..2)
        .map(|_| {
            read_frame::<ClientReply>(&mut stream)
                .expect("an answer")
                .expect("not closed")
        })
        .collect()
}
