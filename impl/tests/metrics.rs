//! Process tests of the metrics endpoint (`raft-node --metrics-addr`): a 3-node cluster under a
//! load of puts, each node's `/metrics` scraped during and after it and parsed as Prometheus
//! text; `/health` on a cluster that works and on a node whose peers are all gone.

mod common;

use common::{free_addr, output_within, text, wait_until, write_cluster, Node, NODE};
use prometheus_parse::{HistogramCount, Scrape, Value};
use raft_impl::client::Client;
use raft_impl::kv::Op;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::Duration;

const PUTS: u64 = 300;
const OP_TIMEOUT: Duration = Duration::from_secs(10);
const SETTLE: Duration = Duration::from_secs(20);

/// `GET path` over HTTP/1.0: the status code and the body (`None`: no answer).
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// A node's `/metrics`, parsed; every sample's family has a `# HELP` line.
fn scrape(addr: SocketAddr) -> Option<Scrape> {
    let (code, body) = get(addr, "/metrics")?;
    assert_eq!(code, 200, "{body}");
    let parsed = Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("parses");
    for s in &parsed.samples {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| s.metric.strip_suffix(suffix))
            .filter(|f| parsed.docs.contains_key(*f))
            .unwrap_or(&s.metric);
        assert!(parsed.docs.contains_key(family), "no HELP for {}", s.metric);
    }
    Some(parsed)
}

/// The value of the counter, gauge or untyped sample `name` with (at least) `labels`.
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let sample = s
        .samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"));
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{name} is not a single value: {other:?}"),
    }
}

/// The buckets of histogram `name`, in increasing bound order.
fn buckets(s: &Scrape, name: &str) -> Vec<HistogramCount> {
    let sample = s.samples.iter().find(|x| x.metric == name).expect(name);
    match &sample.value {
        Value::Histogram(b) => {
            let mut b = b.clone();
            b.sort_by(|x, y| x.less_than.total_cmp(&y.less_than));
            b
        }
        other => panic!("{name} is not a histogram: {other:?}"),
    }
}

/// Checks a histogram's shape (cumulative buckets ending in `+Inf` = `_count`); returns its count.
fn histogram_count(s: &Scrape, name: &str) -> f64 {
    let b = buckets(s, name);
    assert!(
        b.windows(2).all(|w| w[0].count <= w[1].count),
        "{name}: buckets not cumulative: {b:?}"
    );
    let last = b.last().expect("buckets");
    assert_eq!(last.less_than, f64::INFINITY, "{name} ends with +Inf");
    let count = value(s, &format!("{name}_count"), &[]);
    assert_eq!(last.count, count, "{name}: +Inf bucket == count");
    count
}

fn is_leader(s: &Scrape) -> bool {
    value(s, "raft_role", &[("role", "leader")]) == 1.0
}

/// Snapshots every this many entries: the load takes several.
const SNAPSHOT_ENTRIES: &str = "100";

struct Cluster {
    dir: tempfile::TempDir,
    file: PathBuf,
    nodes: Vec<Node>,
    metrics: Vec<SocketAddr>,
    client: Vec<SocketAddr>,
    /// The clients' TLS configuration.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cluster, file) = write_cluster(dir.path(), 3);
        let tls = raft_impl::client::tls_config_for(&cluster, &file, None, None)
            .expect("the client TLS configuration");
        let mut c = Cluster {
            dir,
            file,
            nodes: Vec::new(),
            metrics: (0..3).map(|_| free_addr()).collect(),
            client: cluster.client_addrs(),
            tls,
        };
        c.nodes = (0..3).map(|id| c.node(id)).collect();
        c
    }

    /// Starts node `id` (again) on its data directory.
    fn node(&self, id: usize) -> Node {
        let addr = self.metrics[id].to_string();
        let dir = self.dir.path();
        Node::start_with(
            id as u64,
            &self.file,
            &dir.join(format!("node-{id}")),
            &dir.join(format!("node-{id}.log")),
            &[
                "--metrics-addr",
                &addr,
                "--snapshot-entries",
                SNAPSHOT_ENTRIES,
            ],
        )
    }
}

/// The nodes whose scrapes show role leader.
fn leaders(c: &Cluster) -> Vec<usize> {
    (0..3)
        .filter(|i| scrape(c.metrics[*i]).is_some_and(|s| is_leader(&s)))
        .collect()
}

/// [`PUTS`] puts through the client library, while the nodes `watched` are scraped: every
/// scrape parses, and a node's commit index never goes back. Returns the puts acknowledged.
fn load_while_scraping(c: &Cluster, watched: &[usize]) -> f64 {
    let mut client = Client::new(c.client.clone()).with_tls(c.tls.clone());
    let load = thread::spawn(move || {
        let mut acked = 0u64;
        for i in 0..PUTS {
            let op = Op::Put {
                key: format!("k{}", i % 17),
                value: format!("v{i}"),
            };
            if client.execute(op, OP_TIMEOUT).is_ok() {
                acked += 1;
            }
        }
        acked
    });
    let mut last_commit = [0.0; 3];
    let mut scrapes_during = 0;
    loop {
        let done = load.is_finished();
        for &i in watched {
            if let Some(s) = scrape(c.metrics[i]) {
                let commit = value(&s, "raft_commit_index", &[]);
                assert!(commit >= last_commit[i], "node {i}: commit index went back");
                last_commit[i] = commit;
                scrapes_during += 1;
            }
        }
        if done {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let acked = load.join().expect("load thread") as f64;
    assert!(acked > 0.0, "no put acknowledged");
    assert!(scrapes_during > 0, "no scrape during the load");
    acked
}

#[test]
fn scrapes_follow_a_load_of_puts_and_health_follows_the_leader() {
    let mut c = Cluster::start();
    assert!(
        wait_until(SETTLE, || leaders(&c).len() == 1),
        "no single leader in the scrapes"
    );

    let acked = load_while_scraping(&c, &[0, 1, 2]);

    // After the load: every node healthy, connected to both peers and caught up.
    let settled = wait_until(SETTLE, || {
        c.metrics
            .iter()
            .all(|a| get(*a, "/health").is_some_and(|(code, _)| code == 200))
    });
    assert!(settled, "not every node healthy after the load");
    let caught_up = wait_until(SETTLE, || {
        c.metrics
            .iter()
            .all(|a| scrape(*a).is_some_and(|s| value(&s, "raft_applied_index", &[]) >= acked))
    });
    assert!(caught_up, "not every node applied every acknowledged put");
    // (A scrape of each node in turn may catch a leadership change half done: asked again.)
    let mut leader = Vec::new();
    let single = wait_until(SETTLE, || {
        leader = leaders(&c);
        leader.len() == 1
    });
    assert!(single, "not exactly one node with role leader: {leader:?}");
    let scrapes: Vec<Scrape> = c.metrics.iter().map(|a| scrape(*a).unwrap()).collect();
    let l = &scrapes[leader[0]];
    assert!(value(l, "raft_commit_index", &[]) >= acked);
    assert!(value(l, "raft_last_log_index", &[]) >= value(l, "raft_commit_index", &[]));
    assert!(value(l, "raft_term", &[]) >= 1.0);
    assert_eq!(value(l, "raft_leader_id", &[]), leader[0] as f64);
    let writes = |s: &Scrape, outcome: &str| {
        value(
            s,
            "raft_proposals_answered_total",
            &[("kind", "write"), ("outcome", outcome)],
        )
    };
    // Every acknowledged put was answered ok by some node (a retry may add more).
    let ok: f64 = scrapes.iter().map(|s| writes(s, "ok")).sum();
    assert!(ok >= acked, "{ok} writes answered ok, {acked} acknowledged");
    let received: f64 = scrapes
        .iter()
        .map(|s| value(s, "raft_proposals_received_total", &[("kind", "write")]))
        .sum();
    assert!(
        received >= ok,
        "{received} writes received, {ok} answered ok"
    );
    assert!(histogram_count(l, "raft_apply_latency_seconds") >= writes(l, "ok"));
    for (i, s) in scrapes.iter().enumerate() {
        assert!(
            histogram_count(s, "raft_wal_fsync_duration_seconds") > 0.0,
            "node {i}: no fsync observed"
        );
        assert_eq!(value(s, "raft_apply_lag", &[]), 0.0, "node {i}");
        // Every node applied every put, so it holds a snapshot: one it took (every
        // SNAPSHOT_ENTRIES applied entries), or one the leader sent it had it fallen behind.
        assert!(value(s, "raft_applied_index", &[]) >= acked, "node {i}");
        assert!(value(s, "raft_snapshot_index", &[]) >= 100.0, "node {i}");
        let snapshots = value(s, "raft_snapshots_taken_total", &[])
            + value(s, "raft_snapshots_installed_total", &[]);
        assert!(snapshots >= 1.0, "node {i}");
        // A connection opens when there is something to send: the leader's to every
        // follower, a follower's to the leader (followers do not talk to each other).
        let peers: Vec<usize> = if i == leader[0] {
            (0..3).filter(|p| *p != i).collect()
        } else {
            vec![leader[0]]
        };
        for peer in peers {
            let up = value(s, "raft_peer_connected", &[("peer", &peer.to_string())]);
            assert_eq!(up, 1.0, "node {i} to {peer}");
        }
    }
    assert!(value(l, "raft_leader_changes_total", &[]) >= 1.0);
    let elections: f64 = scrapes
        .iter()
        .map(|s| value(s, "raft_elections_started_total", &[]))
        .sum();
    assert!(elections >= 1.0, "the leader was elected by someone");
    assert_eq!(get(c.metrics[0], "/nope").map(|(code, _)| code), Some(404));

    // A node whose peers are all killed loses its leader (CheckQuorum deposes a leader; a
    // follower's election timeout clears it) and reports it.
    let survivor = (leader[0] + 1) % 3;
    for (i, n) in c.nodes.iter_mut().enumerate() {
        if i != survivor {
            n.kill9();
        }
    }
    let mut last = None;
    let unhealthy = wait_until(SETTLE, || {
        last = get(c.metrics[survivor], "/health");
        last.as_ref().is_some_and(|(code, _)| *code == 503)
    });
    assert!(unhealthy, "node {survivor} still answers {last:?}");
    let (_, body) = last.unwrap();
    assert!(body.contains("no leader known"), "{body}");
    let disconnected = wait_until(SETTLE, || {
        let s = scrape(c.metrics[survivor]).unwrap();
        (0..3)
            .filter(|p| *p != survivor)
            .all(|p| value(&s, "raft_peer_connected", &[("peer", &p.to_string())]) == 0.0)
    });
    assert!(
        disconnected,
        "node {survivor} still counts a dead peer connected"
    );
}

#[test]
fn a_follower_behind_the_snapshots_counts_the_one_it_installs() {
    let mut c = Cluster::start();
    assert!(
        wait_until(SETTLE, || leaders(&c).len() == 1),
        "no single leader in the scrapes"
    );
    let leader = leaders(&c)[0];
    let absent = (leader + 1) % 3;
    c.nodes[absent].kill9();
    let present: Vec<usize> = (0..3).filter(|i| *i != absent).collect();
    let acked = load_while_scraping(&c, &present);
    // Restarted behind the leader's snapshot, it is sent the snapshot.
    c.nodes[absent] = c.node(absent);
    let mut last = None;
    let installed = wait_until(SETTLE, || {
        last = scrape(c.metrics[absent]);
        last.as_ref()
            .is_some_and(|s| value(s, "raft_snapshots_installed_total", &[]) >= 1.0)
    });
    assert!(
        installed,
        "node {absent} did not count the snapshot it was sent"
    );
    let s = last.unwrap();
    assert!(value(&s, "raft_snapshot_index", &[]) >= 100.0);
    let caught_up = wait_until(SETTLE, || {
        scrape(c.metrics[absent]).is_some_and(|s| value(&s, "raft_applied_index", &[]) >= acked)
    });
    assert!(
        caught_up,
        "node {absent} did not apply every acknowledged put"
    );
    let healthy = get(c.metrics[absent], "/health").map(|(code, _)| code);
    assert_eq!(healthy, Some(200));
}

#[test]
fn a_metrics_address_in_use_stops_the_node_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, file) = write_cluster(dir.path(), 1);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("its address");
    let out = output_within(
        Command::new(NODE)
            .args(["--id", "0", "--cluster"])
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--metrics-addr", &addr.to_string()]),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let line = stderr.lines().last().unwrap_or_default();
    assert!(
        line.starts_with(&format!("raft-node: cannot serve metrics on {addr}: ")),
        "{stderr}"
    );
}

#[test]
fn a_malformed_metrics_address_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, file) = write_cluster(dir.path(), 1);
    let out = output_within(
        Command::new(NODE)
            .args(["--id", "0", "--cluster"])
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--metrics-addr", "localhost:notaport"]),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--metrics-addr"));
}
