//! Process tests of the node's network defences, scripted from outside on loopback: raft-node
//! processes with a cluster secret, probed through raw sockets and the client library.
//! Every loop here is bounded in count and time.

use raft_impl::auth::{self, AuthError, ClusterSecret, Handshake, HANDSHAKE_MAGIC};
use raft_impl::client::{Client, ClientError};
use raft_impl::config::{ClusterConfig, NodeSpec};
use raft_impl::core::{Message, NodeId};
use raft_impl::kv::{Command, Op, OpResult};
use raft_impl::wire::{
    encode_frame, read_frame, write_frame, ClientReply, ClientRequest, PeerFrame, PeerWire,
    MAX_REQUEST_BYTES,
};
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const OP_TIMEOUT: Duration = Duration::from_secs(15);

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// raft-node processes sharing a cluster secret, in a temporary directory; killed on drop.
struct Cluster {
    dir: tempfile::TempDir,
    config: ClusterConfig,
    secret: ClusterSecret,
    nodes: Vec<Child>,
}

impl Cluster {
    /// `n` nodes of a cluster of `n`, each started with `extra` flags. Slow timers: a leader
    /// keeps its term for the whole test unless something disturbs it.
    fn start(n: u64, extra: &[&str]) -> Self {
        Self::start_some(n, n, extra)
    }

    /// The first `running` nodes of a cluster of `n`.
    fn start_some(n: u64, running: u64, extra: &[&str]) -> Self {
        Self::start_with(n, running, extra, true)
    }

    /// The same, with the secret named in the cluster file or not (the peer port then takes
    /// frames from anyone).
    fn start_with(n: u64, running: u64, extra: &[&str], named_secret: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let secret = ClusterSecret::create(&dir.path().join("cluster.secret")).expect("secret");
        let config = ClusterConfig {
            cluster_id: ClusterConfig::random_id(),
            secret_file: named_secret.then(|| PathBuf::from("cluster.secret")),
            // The cluster secret's handshake and raw frames: plain TCP.
            insecure: true,
            tls: None,
            nodes: (0..n)
                .map(|id| NodeSpec {
                    id,
                    peer_addr: free_addr(),
                    client_addr: free_addr(),
                    initial_member: true,
                })
                .collect(),
        };
        fs::write(dir.path().join("cluster.toml"), config.to_toml()).expect("cluster file");
        let mut c = Cluster {
            dir,
            config,
            secret,
            nodes: Vec::new(),
        };
        for id in 0..running {
            let log = File::create(c.dir.path().join(format!("node-{id}.log"))).expect("log");
            let child = Process::new(env!("CARGO_BIN_EXE_raft-node"))
                .args(["--id", &id.to_string(), "--cluster"])
                .arg(c.dir.path().join("cluster.toml"))
                .arg("--data-dir")
                .arg(c.dir.path().join(format!("node-{id}")))
                .args([
                    "--election-timeout-min-ms",
                    "800",
                    "--election-timeout-max-ms",
                    "1600",
                    "--heartbeat-ms",
                    "100",
                ])
                .args(extra)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn raft-node");
            c.nodes.push(child);
        }
        c.wait_listening();
        c
    }

    /// Waits (at most 10 s) until every running node's client port accepts connections.
    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for spec in self.config.nodes.iter().take(self.nodes.len()) {
            while TcpStream::connect(spec.client_addr).is_err() {
                assert!(Instant::now() < deadline, "node {} never listened", spec.id);
                thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn client(&self) -> Client {
        Client::new(self.config.client_addrs())
    }

    fn cluster_file(&self) -> PathBuf {
        self.dir.path().join("cluster.toml")
    }

    fn logs(&self) -> String {
        (0..self.nodes.len())
            .map(|id| {
                let path = self.dir.path().join(format!("node-{id}.log"));
                format!(
                    "--- node {id} ---\n{}",
                    fs::read_to_string(path).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Runs `f`; on a panic prints the nodes' logs first.
    fn check<T>(&self, f: impl FnOnce() -> T) -> T {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{}", self.logs());
                std::panic::resume_unwind(e)
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn put(client: &mut Client, key: &str, value: &str) -> OpResult {
    client
        .execute(
            Op::Put {
                key: key.into(),
                value: value.into(),
            },
            OP_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("put {key}: {e}"))
}

fn get(client: &mut Client, key: &str) -> Option<String> {
    match client.execute(Op::Get { key: key.into() }, OP_TIMEOUT) {
        Ok(OpResult::Value(v)) => v,
        other => panic!("get {key}: {other:?}"),
    }
}

/// Reads until the peer closes the connection (or resets it); `false` if it is still open
/// after `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).expect("timeout");
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

// ---- item 1: authenticated peers ----

#[test]
fn a_forged_request_vote_without_the_handshake_changes_neither_the_leader_nor_the_term() {
    let cluster = Cluster::start(3, &[]);
    let mut client = cluster.client();
    cluster.check(|| put(&mut client, "before", "1"));
    let leader = client.leader().expect("a leader answered");
    // The attack of the issue: RequestVote{term: u64::MAX} "from" another member, on every
    // node's peer port, with no handshake.
    for (i, spec) in cluster.config.nodes.iter().enumerate() {
        let from = NodeId(((i + 1) % 3) as u64);
        let forged = PeerWire::Raft(PeerFrame {
            from,
            msg: Message::RequestVote(raft_core::RequestVote {
                term: u64::MAX,
                last_log_index: u64::MAX,
                last_log_term: u64::MAX,
                transfer: false,
            }),
        });
        let mut s = TcpStream::connect(spec.peer_addr).expect("connect to the peer port");
        s.write_all(&encode_frame(&forged).expect("encode"))
            .expect("send the forged frame");
        // A second frame, as a raw attacker would keep sending: the connection is closed.
        let _ = s.write_all(&encode_frame(&forged).expect("encode"));
        assert!(
            closed_within(&mut s, Duration::from_secs(5)),
            "node {} kept an unauthenticated peer connection open",
            spec.id
        );
    }
    // Several election timeouts later, the same leader serves reads and writes. Had any node
    // adopted the forged term, the leader would have stepped down (and, in a debug build,
    // the next election would overflow the term and stop the node).
    thread::sleep(Duration::from_secs(3));
    cluster.check(|| {
        put(&mut client, "after", "2");
        assert_eq!(get(&mut client, "before").as_deref(), Some("1"));
        assert_eq!(get(&mut client, "after").as_deref(), Some("2"));
        assert_eq!(
            client.leader(),
            Some(leader),
            "leadership changed after the forged frame"
        );
        let logs = cluster.logs();
        assert!(
            logs.contains("did not authenticate"),
            "the dropped frames were not logged"
        );
        assert_eq!(
            logs.matches("became leader").count(),
            1,
            "more than one election won"
        );
    });
}

#[test]
fn without_a_secret_a_forged_unreachable_term_is_refused_and_elections_go_on() {
    // Issue 38, finding 2: in a cluster without a secret, one 19-byte frame to a peer port (a
    // RequestVote flagged as a transfer, or an AppendEntriesResponse, with term 2^48) was
    // adopted by every node, and no election could succeed after it, restarts included.
    let mut cluster = Cluster::start_with(3, 3, &[], false);
    let mut client = cluster.client();
    cluster.check(|| put(&mut client, "before", "1"));
    let leader_addr = client.leader().expect("a leader answered");
    let leader = cluster
        .config
        .nodes
        .iter()
        .position(|n| n.client_addr == leader_addr)
        .expect("the leader is a node");
    let forged = |from: NodeId, term| {
        [
            Message::RequestVote(raft_core::RequestVote {
                term,
                last_log_index: u64::MAX,
                last_log_term: u64::MAX,
                transfer: true,
            }),
            Message::AppendEntriesResponse(raft_core::AppendEntriesResponse {
                term,
                success: false,
                match_index: 0,
                read_round: 0,
            }),
        ]
        .map(|msg| PeerWire::Raft(PeerFrame { from, msg }))
    };
    for term in [raft_core::MAX_TERM, raft_core::MAX_TERM - 3] {
        for (i, spec) in cluster.config.nodes.iter().enumerate() {
            let from = NodeId(((i + 1) % 3) as u64);
            for frame in forged(from, term) {
                if let Ok(mut s) = TcpStream::connect(spec.peer_addr) {
                    let _ = s.write_all(&encode_frame(&frame).expect("encode"));
                }
            }
        }
    }
    thread::sleep(Duration::from_millis(500));
    // The leader is killed: the two others must elect a new one, then again after a restart.
    let _ = cluster.nodes[leader].kill();
    let _ = cluster.nodes[leader].wait();
    cluster.check(|| {
        put(&mut client, "after", "2");
        assert_eq!(get(&mut client, "before").as_deref(), Some("1"));
        let logs = cluster.logs();
        assert!(
            logs.contains("refused a message"),
            "the forged frames were not logged"
        );
    });
}

#[test]
fn a_peer_connection_with_a_wrong_secret_is_rejected() {
    // One node of a 3-node cluster is enough: its peer listener does the handshake.
    let cluster = Cluster::start_some(3, 1, &[]);
    let addr = cluster.config.nodes[0].peer_addr;
    let wrong = ClusterSecret::from_bytes([0x42; 32]);
    cluster.check(|| {
        // The right secret passes (so the refusals below are the secret's doing).
        let s = TcpStream::connect(addr).expect("connect");
        auth::connect(&s, &cluster.secret, NodeId(1), NodeId(0)).expect("the right secret");
        drop(s);

        // A connector with a wrong secret sees that the listener's proof does not check out.
        let s = TcpStream::connect(addr).expect("connect");
        let err = auth::connect(&s, &wrong, NodeId(1), NodeId(0)).unwrap_err();
        assert!(matches!(err, AuthError::ListenerProof), "{err}");
        drop(s);

        // A connector that ignores that and sends a proof made with the wrong secret is
        // refused, and its connection closed: a Raft frame after it is never read.
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let nonce = [7u8; 32];
        write_frame(
            &mut s,
            &Handshake::Hello {
                magic: HANDSHAKE_MAGIC,
                version: 1,
                from: NodeId(1),
                to: NodeId(0),
                nonce,
            },
        )
        .expect("hello");
        let Some(Handshake::Challenge { nonce: theirs, .. }) =
            read_frame::<Handshake>(&mut s).expect("challenge")
        else {
            panic!("no challenge");
        };
        let nonces = auth::Nonces {
            connector: nonce,
            listener: theirs,
        };
        let mac = wrong.handshake_mac(true, NodeId(1), NodeId(0), &nonces);
        write_frame(&mut s, &Handshake::Proof { mac }).expect("proof");
        match read_frame::<Handshake>(&mut s).expect("answer") {
            Some(Handshake::Rejected { reason }) => {
                assert!(reason.contains("did not prove"), "{reason}")
            }
            other => panic!("a wrong proof was answered with {other:?}"),
        }
        let forged = PeerWire::Raft(PeerFrame {
            from: NodeId(1),
            msg: Message::RequestVote(raft_core::RequestVote {
                term: u64::MAX,
                last_log_index: 0,
                last_log_term: 0,
                transfer: false,
            }),
        });
        let _ = write_frame(&mut s, &forged);
        assert!(closed_within(&mut s, Duration::from_secs(5)));

        // Logged (at most one warning per few seconds: the first failure of this test's).
        let logs = cluster.logs();
        assert!(logs.contains("did not authenticate"), "{logs}");
    });
}

#[test]
fn a_node_refuses_a_secret_file_that_others_can_read_or_that_is_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("cluster.secret");
    ClusterSecret::create(&secret).expect("secret");
    let cluster = ClusterConfig {
        cluster_id: ClusterConfig::random_id(),
        secret_file: Some(PathBuf::from("cluster.secret")),
        insecure: true,
        tls: None,
        nodes: vec![NodeSpec {
            id: 0,
            peer_addr: free_addr(),
            client_addr: free_addr(),
            initial_member: true,
        }],
    };
    let file = dir.path().join("cluster.toml");
    fs::write(&file, cluster.to_toml()).expect("cluster file");
    let run = |extra: &[&str]| {
        Process::new(env!("CARGO_BIN_EXE_raft-node"))
            .args(["--id", "0", "--cluster"])
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(extra)
            .output()
            .expect("run raft-node")
    };
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let out = run(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let missing = dir.path().join("nope");
    let out = run(&["--secret-file", missing.to_str().expect("utf-8 path")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn raft_cluster_up_insecure_writes_a_private_secret_named_by_the_cluster_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut up = Process::new(env!("CARGO_BIN_EXE_raft-cluster"))
        .args(["up", "--insecure", "--nodes", "3", "--dir"])
        .arg(dir.path())
        .arg("--node-bin")
        .arg(env!("CARGO_BIN_EXE_raft-node"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn raft-cluster");
    let file = dir.path().join("cluster.toml");
    for _ in 0..200 {
        if file.exists() {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let put = Process::new(env!("CARGO_BIN_EXE_raft-kv"))
        .args(["--timeout-secs", "15", "--cluster"])
        .arg(&file)
        .args(["put", "k", "v"])
        .output()
        .expect("run raft-kv");
    let _ = Process::new("kill")
        .args(["-TERM", &up.id().to_string()])
        .status();
    let _ = up.wait();
    assert!(put.status.success(), "{put:?}");
    let config = ClusterConfig::load(&file).expect("cluster file");
    let secret = config
        .secret_path(&file)
        .expect("the cluster file names a secret");
    assert_eq!(secret, dir.path().join("cluster.secret"));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&secret).expect("secret").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    ClusterSecret::load(&secret).expect("a valid secret");
    // The nodes authenticated each other (the put committed) and logged no unauthenticated
    // start.
    for id in 0..3 {
        let log = fs::read_to_string(dir.path().join(format!("node-{id}.log"))).unwrap_or_default();
        assert!(!log.contains("no cluster secret"), "node {id}: {log}");
    }
}

// ---- item 2: size limits ----

/// A put whose request, from `client`, is exactly `size` bytes.
fn put_of_size(client: &Client, key: &str, size: usize) -> Op {
    let op = |n: usize| Op::Put {
        key: key.into(),
        value: "x".repeat(n),
    };
    let mut n = size.saturating_sub(client.next_request_size(&op(0)));
    for _ in 0..8 {
        let len = client.next_request_size(&op(n));
        if len == size {
            return op(n);
        }
        n = if len > size { n - (len - size) } else { n + 1 };
    }
    panic!("no value gives a request of {size} bytes");
}

#[test]
fn a_value_just_over_the_request_limit_is_refused_and_one_at_the_limit_is_accepted() {
    let cluster = Cluster::start(3, &[]);
    let mut client = cluster.client();
    cluster.check(|| {
        // At the limit: accepted, committed, replicated, read back.
        let at = put_of_size(&client, "big", MAX_REQUEST_BYTES);
        let Op::Put { value, .. } = &at else {
            unreachable!()
        };
        let expected = value.clone();
        client.execute(at, OP_TIMEOUT).expect("a put at the limit");
        assert_eq!(get(&mut client, "big"), Some(expected));

        // One byte over: refused by the client before sending.
        let over = put_of_size(&client, "big", MAX_REQUEST_BYTES + 1);
        let t = Instant::now();
        match client.execute(over, OP_TIMEOUT) {
            Err(ClientError::TooLarge { size, max }) => {
                assert_eq!((size, max), (MAX_REQUEST_BYTES + 1, MAX_REQUEST_BYTES));
            }
            other => panic!("a request over the limit: {other:?}"),
        }
        assert!(t.elapsed() < Duration::from_secs(1), "it was sent");

        // One byte over, sent raw to the leader's client port: one clear error frame.
        let leader = client.leader().expect("a leader");
        let mut s = TcpStream::connect(leader).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let request = ClientRequest::Command(Command {
            client_id: 1,
            seq: 1,
            op: Op::Put {
                key: "raw".into(),
                value: "x".repeat(MAX_REQUEST_BYTES),
            },
        });
        let frame = encode_frame(&request).expect("encode");
        assert!(frame.len() - 4 > MAX_REQUEST_BYTES);
        let _ = s.write_all(&frame);
        match read_frame::<ClientReply>(&mut s) {
            Ok(Some(ClientReply::Error(e))) => assert!(
                e.contains(&format!(
                    "exceeds the maximum request size of {MAX_REQUEST_BYTES} bytes"
                )),
                "{e}"
            ),
            other => panic!("an oversized request was answered with {other:?}"),
        }
        assert_eq!(
            get(&mut client, "raw"),
            None,
            "the oversized put was applied"
        );
        assert!(closed_within(&mut s, Duration::from_secs(5)));

        // The command line says so too, with exit code 2.
        let file = cluster.dir.path().join("big.value");
        fs::write(&file, "x".repeat(MAX_REQUEST_BYTES)).expect("value file");
        let out = Process::new(env!("CARGO_BIN_EXE_raft-kv"))
            .args(["--timeout-secs", "5", "--cluster"])
            .arg(cluster.cluster_file())
            .args(["put", "k", "--value-file"])
            .arg(&file)
            .output()
            .expect("run raft-kv");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("exceeds the maximum request size"), "{err}");
    });
}

// ---- item 3: connection limits and timeouts ----

#[test]
fn idle_client_connections_at_the_limit_do_not_lock_out_a_new_client() {
    const MAX: usize = 4;
    let cluster = Cluster::start(
        3,
        &[
            "--max-client-connections",
            "4",
            "--client-idle-timeout-ms",
            "3000",
        ],
    );
    let mut client = cluster.client();
    cluster.check(|| put(&mut client, "warm", "up"));
    let leader = client.leader().expect("a leader");
    // Hold every slot of every node with connections that never send anything.
    let mut idle: Vec<(SocketAddr, TcpStream)> = Vec::new();
    for spec in &cluster.config.nodes {
        for _ in 0..MAX {
            let s = TcpStream::connect(spec.client_addr).expect("an idle connection");
            idle.push((spec.client_addr, s));
        }
    }
    thread::sleep(Duration::from_millis(200)); // let the nodes accept them
    let started = Instant::now();
    let mut fresh = cluster.client();
    cluster.check(|| {
        put(&mut fresh, "fresh", "served");
        assert_eq!(get(&mut fresh, "fresh").as_deref(), Some("served"));
    });
    let waited = started.elapsed();
    cluster.check(|| {
        assert!(
            waited < Duration::from_millis(2000),
            "a new client waited {waited:?}, nearly the idle timeout"
        );
        // The leader made room by closing its longest-idle connection, not the newest.
        let on_leader: Vec<&mut TcpStream> = idle
            .iter_mut()
            .filter(|(a, _)| *a == leader)
            .map(|(_, s)| s)
            .collect();
        let mut on_leader = on_leader.into_iter();
        let first = on_leader.next().expect("idle connections on the leader");
        assert!(
            closed_within(first, Duration::from_millis(200)),
            "the oldest idle connection is still open"
        );
        let last = on_leader.last().expect("more than one");
        assert!(
            !closed_within(last, Duration::from_millis(200)),
            "the newest idle connection was closed"
        );
    });
}

#[test]
fn idle_and_slow_client_connections_are_closed_after_their_timeouts() {
    let cluster = Cluster::start(
        1,
        &[
            "--client-idle-timeout-ms",
            "1000",
            "--frame-timeout-ms",
            "1000",
        ],
    );
    let addr = cluster.config.nodes[0].client_addr;
    cluster.check(|| {
        // Idle: closed after about a second, not before.
        let mut s = TcpStream::connect(addr).expect("connect");
        let t = Instant::now();
        assert!(
            closed_within(&mut s, Duration::from_secs(5)),
            "never closed"
        );
        let after = t.elapsed();
        assert!(
            after >= Duration::from_millis(800),
            "closed too early: {after:?}"
        );

        // A frame sent one byte every 200 ms (a slowloris): every read is well within the
        // timeout, but the frame is not complete within a second of its first byte.
        let mut s = TcpStream::connect(addr).expect("connect");
        let frame = encode_frame(&ClientRequest::Command(Command {
            client_id: 1,
            seq: 1,
            op: Op::Put {
                key: "k".into(),
                value: "v".repeat(40),
            },
        }))
        .expect("encode");
        assert!(frame.len() > 40, "the trickle lasts well past the timeout");
        let t = Instant::now();
        let mut closed = false;
        for byte in &frame[..frame.len() - 1] {
            if s.write_all(&[*byte]).is_err() {
                closed = true;
                break;
            }
            if closed_within(&mut s, Duration::from_millis(200)) {
                closed = true;
                break;
            }
        }
        let after = t.elapsed();
        assert!(
            closed,
            "a frame trickling in for {after:?} kept its connection"
        );
        assert!(
            after < Duration::from_millis(2500),
            "closed only after {after:?}"
        );

        // A normal request on a fresh connection is served.
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write_frame(
            &mut s,
            &ClientRequest::Command(Command {
                client_id: 1,
                seq: 1,
                op: Op::Get { key: "k".into() },
            }),
        )
        .expect("request");
        let reply = read_frame::<ClientReply>(&mut s).expect("reply");
        assert!(
            matches!(
                reply,
                Some(ClientReply::Ok(_)) | Some(ClientReply::NotLeader { .. })
            ),
            "{reply:?}"
        );
    });
}
