//! Process tests of forwarding (`node/forward.rs`): 3 raft-node processes, clients that talk
//! only to a follower, which forwards their commands to the leader and relays its answers.

mod common;

use common::{write_cluster, write_insecure_cluster, Node};
use raft_impl::client::Client;
use raft_impl::config::ClusterConfig;
use raft_impl::kv::{Command, Op, OpResult};
use raft_impl::wire::{read_frame, write_frame, ClientReply, ClientRequest};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// The client library's read timeout: a request must be answered before a client gives up.
const CLIENT_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// Three nodes, a leader elected; the processes are killed when dropped.
struct Cluster {
    _dir: tempfile::TempDir,
    config: ClusterConfig,
    nodes: Vec<Node>,
    /// The clients' TLS configuration (a TLS cluster).
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Cluster {
    /// Plain TCP (the raw-wire tests speak it).
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (config, file) = write_insecure_cluster(dir.path(), 3);
        Self::start_nodes(dir, config, &file, &[], None)
    }

    /// TLS, every client port requiring a client certificate signed by the cluster's CA.
    fn start_tls() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (config, file) = write_cluster(dir.path(), 3);
        let tls = raft_impl::client::tls_config_for(&config, &file, None, None)
            .expect("the client TLS configuration");
        assert!(tls.is_some(), "a TLS cluster");
        Self::start_nodes(dir, config, &file, &["--client-cert-auth"], tls)
    }

    fn start_nodes(
        dir: tempfile::TempDir,
        config: ClusterConfig,
        file: &std::path::Path,
        args: &[&str],
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Self {
        let nodes = (0..3)
            .map(|id| {
                let data = dir.path().join(format!("node-{id}"));
                let log = dir.path().join(format!("node-{id}.log"));
                Node::start_with(id, file, &data, &log, args)
            })
            .collect();
        Cluster {
            _dir: dir,
            config,
            nodes,
            tls,
        }
    }

    /// A client of the nodes at `addrs`.
    fn client(&self, addrs: Vec<SocketAddr>) -> Client {
        Client::new(addrs).with_tls(self.tls.clone())
    }

    fn addr(&self, id: u64) -> SocketAddr {
        self.config
            .node(id)
            .expect("a node of the cluster")
            .client_addr
    }

    /// The leader's id, and a follower's, as the leader says (after a first write committed,
    /// so that the followers have heard from the leader).
    fn leader_and_follower(&self) -> (u64, u64) {
        let mut client = self.client(self.config.client_addrs());
        client
            .execute(
                Op::Put {
                    key: "warm".into(),
                    value: "up".into(),
                },
                OP_TIMEOUT,
            )
            .unwrap_or_else(|e| panic!("no leader: {e}\n{}", self.logs()));
        let leader = client.leader_info(OP_TIMEOUT).expect("a leader").id;
        (leader, (leader + 1) % 3)
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.log_text())
            .collect::<Vec<_>>()
            .join("\n----\n")
    }
}

/// A connection speaking the raw client protocol (no hints followed, nothing retried).
struct Raw(TcpStream);

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(CLIENT_READ_TIMEOUT)).unwrap();
        Raw(s)
    }

    /// One request and its answer; panics if none comes within the client's read timeout.
    fn call(&mut self, request: &ClientRequest) -> ClientReply {
        write_frame(&mut self.0, request).expect("send");
        match read_frame(&mut self.0) {
            Ok(Some(reply)) => reply,
            other => panic!("no answer to {request:?} within {CLIENT_READ_TIMEOUT:?}: {other:?}"),
        }
    }

    /// Sends `request` again while it is answered `Error` or `NotLeader` (the cluster
    /// settling), for at most [`OP_TIMEOUT`]; the first other answer.
    fn until_served(&mut self, request: &ClientRequest) -> ClientReply {
        let deadline = Instant::now() + OP_TIMEOUT;
        loop {
            let reply = self.call(request);
            let retry = matches!(reply, ClientReply::Error(_) | ClientReply::NotLeader { .. });
            if !retry || Instant::now() >= deadline {
                return reply;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Puts v0 .. v4 to key k through `client`: each answered with the value before it (applied
/// once, in order).
fn five_puts_in_order(cluster: &Cluster, client: &mut Client) {
    let mut previous = None;
    for i in 0..5 {
        let value = format!("v{i}");
        let put = Op::Put {
            key: "k".into(),
            value: value.clone(),
        };
        let got = client
            .execute(put, OP_TIMEOUT)
            .unwrap_or_else(|e| panic!("put {i} through the follower: {e}\n{}", cluster.logs()));
        assert_eq!(
            got,
            OpResult::Value(previous),
            "each put applied once, in order"
        );
        previous = Some(value);
    }
}

fn command(client_id: u64, seq: u64, op: Op) -> ClientRequest {
    ClientRequest::Command(Command { client_id, seq, op })
}

fn get(key: &str) -> Op {
    Op::Get { key: key.into() }
}

#[test]
fn a_client_of_a_follower_only_gets_its_writes_committed_and_reads_the_latest_value() {
    let cluster = Cluster::start();
    let (leader, follower) = cluster.leader_and_follower();

    // The client library, given only the follower and following no hints.
    let mut client = Client::new(vec![cluster.addr(follower)]).without_hints();
    five_puts_in_order(&cluster, &mut client);
    let got = client.execute(get("k"), OP_TIMEOUT).expect("get");
    assert_eq!(got, OpResult::Value(Some("v4".into())));
    let deleted = client
        .execute(Op::Delete { key: "k".into() }, OP_TIMEOUT)
        .expect("delete");
    assert_eq!(deleted, OpResult::Value(Some("v4".into())));

    // Raw: a get sent to the follower reads the latest write, also one made at the leader.
    let mut at_leader = Raw::connect(cluster.addr(leader));
    let put = Op::Put {
        key: "k".into(),
        value: "at the leader".into(),
    };
    let reply = at_leader.until_served(&command(5, 1, put));
    assert_eq!(reply, ClientReply::Ok(OpResult::Value(None)));
    let mut at_follower = Raw::connect(cluster.addr(follower));
    let reply = at_follower.until_served(&command(6, 1, get("k")));
    assert_eq!(
        reply,
        ClientReply::Ok(OpResult::Value(Some("at the leader".into())))
    );

    // One hop: a request marked not to be forwarded is answered NotLeader by the follower,
    // with the leader's address (checked while the leader has not changed).
    let still = Client::new(cluster.config.client_addrs())
        .leader_info(OP_TIMEOUT)
        .expect("a leader");
    if still.id == leader {
        let marked = ClientRequest::NoForward(Command {
            client_id: 6,
            seq: 2,
            op: get("k"),
        });
        // (No hint only if the follower lost track of the leader just now.)
        let hint = Some(cluster.addr(leader).to_string());
        let reply = at_follower.call(&marked);
        assert!(
            matches!(&reply, ClientReply::NotLeader { leader_hint } if *leader_hint == hint || leader_hint.is_none()),
            "{reply:?}"
        );
    }
}

#[test]
fn a_retried_forwarded_write_is_applied_once() {
    let cluster = Cluster::start();
    let (leader, follower) = cluster.leader_and_follower();
    let mut via_follower = Raw::connect(cluster.addr(follower));
    let mut at_leader = Raw::connect(cluster.addr(leader));
    // A compare-and-set tells a second application apart: it would find its own value and
    // answer CasMismatch.
    let first = command(
        4242,
        1,
        Op::Cas {
            key: "c".into(),
            expected: None,
            new: "a".into(),
        },
    );
    let applied = ClientReply::Ok(OpResult::Value(None));
    assert_eq!(via_follower.until_served(&first), applied);
    // The same command again through the follower (a client's retry), then straight at the
    // leader (a retry at another node): the session answers it, nothing is applied again.
    assert_eq!(via_follower.until_served(&first), applied);
    assert_eq!(at_leader.until_served(&first), applied);

    let second = command(
        4242,
        2,
        Op::Cas {
            key: "c".into(),
            expected: Some("a".into()),
            new: "b".into(),
        },
    );
    let applied = ClientReply::Ok(OpResult::Value(Some("a".into())));
    assert_eq!(at_leader.until_served(&second), applied);
    assert_eq!(via_follower.until_served(&second), applied);
    // The first, delivered late once more: older than the session's latest, not applied.
    assert_eq!(
        via_follower.until_served(&first),
        ClientReply::Ok(OpResult::StaleRequest { last_seq: 2 })
    );
    assert_eq!(
        via_follower.until_served(&command(4243, 1, get("c"))),
        ClientReply::Ok(OpResult::Value(Some("b".into())))
    );
}

/// A forwarded request whose leader is gone is answered (`Error` or `NotLeader`, the client
/// retries) before the client's read timeout: the leader killed (its port refuses), then
/// stopped (its port accepts and never answers: the forwarding deadline answers).
#[test]
fn a_forwarded_request_to_a_dead_or_silent_leader_is_answered_in_time() {
    let mut cluster = Cluster::start();
    let (leader, follower) = cluster.leader_and_follower();
    let mut via_follower = Raw::connect(cluster.addr(follower));
    let put = |seq| {
        command(
            7,
            seq,
            Op::Put {
                key: "p".into(),
                value: format!("{seq}"),
            },
        )
    };
    // Forwarded once: the follower holds a connection to the leader.
    assert_eq!(
        via_follower.until_served(&put(1)),
        ClientReply::Ok(OpResult::Value(None))
    );
    cluster.nodes[leader as usize].kill9();
    let reply = via_follower.call(&put(2));
    assert!(
        matches!(reply, ClientReply::Error(_) | ClientReply::NotLeader { .. }),
        "{reply:?}"
    );

    // A new leader among the two left; the follower forwards to it once it knows it.
    let reply = via_follower.until_served(&put(2));
    assert!(matches!(reply, ClientReply::Ok(_)), "{reply:?}");
    let next = Client::new(cluster.config.client_addrs())
        .leader_info(OP_TIMEOUT)
        .expect("a new leader")
        .id;
    let other = (0..3)
        .find(|&id| id != leader && id != next)
        .expect("a follower");
    let mut via_other = Raw::connect(cluster.addr(other));
    assert!(matches!(
        via_other.until_served(&put(3)),
        ClientReply::Ok(_)
    ));
    // Stopped, not killed: its client port still accepts connections and reads nothing.
    let pid = cluster.nodes[next as usize].child.id().to_string();
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .expect("kill -STOP");
    assert!(stopped.success());
    let reply = via_other.call(&put(4));
    assert!(
        matches!(reply, ClientReply::Error(_) | ClientReply::NotLeader { .. }),
        "{reply:?}"
    );
    // (Dropping the cluster kills the stopped node too.)
}

#[test]
fn a_follower_forwards_over_tls_with_its_certificate_to_a_leader_that_requires_one() {
    let cluster = Cluster::start_tls();
    let (_, follower) = cluster.leader_and_follower();
    let mut client = cluster.client(vec![cluster.addr(follower)]).without_hints();
    five_puts_in_order(&cluster, &mut client);
    assert_eq!(
        client.leader(),
        Some(cluster.addr(follower)),
        "the follower answered every request"
    );
}
