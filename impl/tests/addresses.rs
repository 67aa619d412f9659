//! Members that carry their addresses (membership.rs rule 5), on real processes: a running
//! cluster grown by addresses alone, and an address change that reaches a node through its
//! snapshot.

mod common;

use common::*;
use raft_impl::client::Client;
use raft_impl::config::{ClusterConfig, NodeSpec};
use raft_impl::kv::{Op, OpResult};
use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

/// `raft-node --id ID --join CONTACTS --peer-addr P --client-addr C --tls-dir DIR/tls
/// --data-dir DIR/data-ID`, with a certificate made for it (`raft-cluster certs --node`).
fn join_node(
    cluster: &ClusterConfig,
    id: u64,
    peer: SocketAddr,
    client: SocketAddr,
    dir: &Path,
) -> Node {
    let spec = NodeSpec {
        id,
        peer_addr: peer,
        client_addr: client,
        initial_member: false,
    };
    let tls_dir = dir.join("tls");
    raft_impl::certs::write_node(&tls_dir, cluster.cluster_id, &spec, false).expect("certificate");
    let log = dir.join(format!("node-{id}.log"));
    let contacts: Vec<String> = cluster
        .client_addrs()
        .iter()
        .map(SocketAddr::to_string)
        .collect();
    let child = std::process::Command::new(NODE)
        .args(["--id", &id.to_string(), "--join", &contacts.join(",")])
        .args([
            "--peer-addr",
            &peer.to_string(),
            "--client-addr",
            &client.to_string(),
        ])
        .arg("--tls-dir")
        .arg(&tls_dir)
        .arg("--data-dir")
        .arg(dir.join(format!("data-{id}")))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn raft-node --join");
    Node { child, log }
}

fn start(id: u64, cluster_file: &Path, dir: &Path, args: &[&str]) -> Node {
    let data = dir.join(format!("data-{id}"));
    Node::start_with(
        id,
        cluster_file,
        &data,
        &dir.join(format!("node-{id}.log")),
        args,
    )
}

/// `raft-kv member ARGS`, which must succeed; its first line.
fn member(cluster_file: &Path, args: &[&str]) -> String {
    let mut all = vec!["member"];
    all.extend_from_slice(args);
    let out = kv(cluster_file, &all);
    assert!(out.status.success(), "member {args:?}: {out:?}");
    text(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A client of `cluster`'s nodes at `addrs` (with the cluster's TLS).
fn client_of(cluster: &ClusterConfig, addrs: Vec<SocketAddr>) -> Client {
    let tls = raft_impl::client::tls_config_for(cluster, Path::new("cluster.toml"), None, None)
        .expect("the client TLS configuration");
    Client::new(addrs).with_tls(tls)
}

/// Puts `key-N` = `N` for N = 0, 1, ... until `stop`; the acknowledged N are recorded.
fn load(
    mut client: Client,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<u64>>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let op = Op::Put {
                key: format!("key-{n}"),
                value: n.to_string(),
            };
            if client.execute(op, Duration::from_secs(2)).is_ok() {
                acked.lock().unwrap().push(n);
                n += 1;
            }
        }
    })
}

/// Every acknowledged put reads back its value through `client`.
fn assert_all_acknowledged_present(mut client: Client, acked: &[u64]) {
    for n in acked {
        let got = client
            .execute(
                Op::Get {
                    key: format!("key-{n}"),
                },
                TIMEOUT,
            )
            .unwrap_or_else(|e| panic!("get key-{n}: {e}"));
        assert_eq!(got, OpResult::Value(Some(n.to_string())), "key-{n}");
    }
}

#[test]
fn a_running_cluster_grows_to_five_and_back_to_three_by_addresses_alone() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (cluster, cluster_file) = write_cluster(dir, 3);
    let mut nodes: Vec<Node> = (0..3)
        .map(|id| start(id, &cluster_file, dir, &[]))
        .collect();
    execute(
        &cluster,
        Op::Put {
            key: "first".into(),
            value: "1".into(),
        },
        TIMEOUT,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let loader = load(client(&cluster), stop.clone(), acked.clone());

    // Nodes 3 and 4 are in no cluster file: they learn the cluster from a member, and the
    // members learn their addresses from the configuration entries that add them.
    let mut joined = Vec::new();
    for id in [3u64, 4] {
        let (peer, client) = (free_addr(), free_addr());
        let mut node = join_node(&cluster, id, peer, client, dir);
        assert!(
            wait_until(TIMEOUT, || dir
                .join(format!("data-{id}/cluster.toml"))
                .exists()),
            "node {id} did not learn the cluster: {}",
            node.log_text()
        );
        assert!(node.is_running(), "{}", node.log_text());
        let (p, c) = (peer.to_string(), client.to_string());
        let added = member(&cluster_file, &["add", &id.to_string(), &p, &c]);
        assert!(added.ends_with(&format!("learners {id}")), "{added}");
        member(&cluster_file, &["promote", &id.to_string()]);
        joined.push((id, peer, client, node));
    }
    let out = kv(&cluster_file, &["member", "list"]);
    let listed = text(&out.stdout);
    assert!(
        listed.starts_with("voters 0,1,2,3,4 learners -\n"),
        "{listed}"
    );
    for (id, peer, client, _) in &joined {
        assert!(
            listed.contains(&format!("{id} peer {peer} client {client}")),
            "{listed}"
        );
    }

    // Back to three: the two original members leave, and are stopped.
    assert_eq!(
        member(&cluster_file, &["remove", "0"]),
        "voters 1,2,3,4 learners -"
    );
    assert_eq!(
        member(&cluster_file, &["remove", "1"]),
        "voters 2,3,4 learners -"
    );
    nodes[0].kill9();
    nodes[1].kill9();
    // Writes go on (the load's client follows the leader hints to the new members).
    let before = acked.lock().unwrap().len();
    assert!(
        wait_until(Duration::from_secs(20), || acked.lock().unwrap().len()
            >= before + 20),
        "no writes acknowledged after the change"
    );
    stop.store(true, Ordering::SeqCst);
    loader.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 40,
        "only {} writes acknowledged",
        acked.len()
    );
    let mut survivors = vec![cluster.nodes[2].client_addr];
    survivors.extend(joined.iter().map(|(_, _, client, _)| *client));
    assert_all_acknowledged_present(client_of(&cluster, survivors), &acked);
    for (id, _, _, node) in &mut joined {
        assert!(node.is_running(), "node {id}: {}", node.log_text());
    }
}

/// The snapshot index a node started from, from the log lines of its starts.
fn snapshot_indices_at_start(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains("node starting"))
        .filter_map(|l| {
            l.split("snapshot_index=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

#[test]
fn a_node_restarted_from_a_snapshot_reaches_a_member_at_its_new_address() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (cluster, cluster_file) = write_cluster(dir, 3);
    let compact = ["--snapshot-entries", "4", "--snapshot-bytes", "0"];
    let mut nodes: Vec<Node> = (0..3)
        .map(|id| start(id, &cluster_file, dir, &compact))
        .collect();
    let put = |addrs: Vec<SocketAddr>, n: u64| {
        let op = Op::Put {
            key: format!("key-{n}"),
            value: n.to_string(),
        };
        client_of(&cluster, addrs)
            .execute(op, TIMEOUT)
            .unwrap_or_else(|e| panic!("put {n}: {e}"));
    };
    for n in 0..3 {
        put(cluster.client_addrs(), n);
    }
    // Node 2 moves: stopped, its address changed in the configuration (0 and 1 commit it).
    nodes[2].kill9();
    let (peer, client) = (free_addr(), free_addr());
    let moved = member(
        &cluster_file,
        &["readdress", "2", &peer.to_string(), &client.to_string()],
    );
    assert_eq!(moved, "voters 0,1,2 learners -");
    // Enough writes that 0 and 1 compact past the change.
    for n in 3..20 {
        put(cluster.client_addrs(), n);
    }
    // Node 1 restarts from its snapshot; its cluster file still has node 2's old address.
    nodes[1].kill9();
    nodes[1] = start(1, &cluster_file, dir, &compact);
    // Node 2 listens at its new address (its own cluster file says so).
    let mut file2 = cluster.clone();
    file2.nodes[2].peer_addr = peer;
    file2.nodes[2].client_addr = client;
    let file2_path = dir.join("cluster-2.toml");
    fs::write(&file2_path, file2.to_toml()).unwrap();
    nodes[2] = start(2, &file2_path, dir, &compact);
    // Without node 0, nodes 1 and 2 are the majority: they must reach each other, node 1
    // at node 2's new address, which it knows only from its snapshot.
    nodes[0].kill9();
    let survivors = vec![cluster.nodes[1].client_addr, client];
    put(survivors.clone(), 20);
    let starts = snapshot_indices_at_start(&nodes[1].log_text());
    assert!(
        matches!(starts[..], [_, restarted] if restarted > 0),
        "node 1 did not restart from a snapshot: {starts:?}"
    );
    assert_all_acknowledged_present(
        client_of(&cluster, survivors),
        &(0..=20).collect::<Vec<_>>(),
    );
    let _ = ClusterConfig::load(&file2_path).expect("a valid cluster file");
}
