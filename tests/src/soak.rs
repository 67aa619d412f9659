//! The process-level soak: a 3-node cluster of real `raft-node` processes on loopback (and a
//! fourth, started empty outside the cluster), client threads writing and reading through
//! `raft_impl::client::Client`, and a nemesis that SIGKILLs a random voter at random times and
//! restarts it (now and then every voter at once); in its second round it replaces a random
//! voter by the fourth node (`raft-kv member` add with its addresses, promote, remove; the
//! old node is then stopped for good). The voters' cluster files do not list the fourth node:
//! they learn its address from the configuration entry that adds it, and dial it directly
//! (not through a proxy). At the end of each trial every
//! acknowledged write must read back, and the whole history (wall-clock timestamps) must be
//! linearizable (stateright's `LinearizabilityTester`, per key; a timed-out operation is
//! indefinite, Jepsen style). The cluster runs with TLS (certificates made into the trial's
//! directory), as `raft-cluster up` runs one.
//!
//! With network faults (`SoakOptions::net_faults`, the default of `raft-tests soak`), every
//! node's connections to each other node go through a loopback proxy of [`crate::netfault`]
//! (one per ordered pair; node i's own cluster file names the proxies i → j as its peers'
//! addresses), and the nemesis's rounds are SIGKILLs or network faults: partitions (the
//! leader isolated both ways or unable to send, a random node isolated, the leader unable to
//! hear, one random direction), connection cuts, flaky links and background delays. See
//! [`net_round`].
//!
//! Every node compacts its log every [`SoakOptions::snapshot_entries`] applied entries
//! (`raft-node --snapshot-entries`, 20 by default here), so every trial takes snapshots and a
//! node that was down, or the spare that replaces a voter, catches up by InstallSnapshot; the
//! snapshots taken and installed are counted from the nodes' logs.

use crate::linearizability::History;
use crate::netfault::{LinkControl, Proxy};
use raft_impl::client::Client;
use raft_impl::config::{ClusterConfig, NodeSpec, TlsSection};
use raft_impl::core::Address;
use raft_impl::kv::{Op, OpResult};
use raft_impl::tls::ClientTls;
use raft_impl::wire::MemberRequest;
use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) const NODES: u64 = 3;
/// Nodes started outside the cluster (`initial_member = false`), for the nemesis's
/// replacement of a voter (`replace_node`).
const SPARES: u64 = 1;
/// Every node of the cluster file.
const SERVERS: u64 = NODES + SPARES;
pub(crate) const CLIENTS: u64 = 3;
const SHARED_KEYS: u64 = 3;
/// After this long a client gives up on an operation (its outcome is then unknown).
const OP_TIMEOUT: Duration = Duration::from_secs(3);

pub struct SoakOptions {
    pub trials: u32,
    /// Load (and kills) per trial.
    pub load: Duration,
    pub node_bin: PathBuf,
    pub seed: u64,
    /// Each node writes its trace to `trace_dir/trial-<n>/node-<id>.jsonl` (`raft-node
    /// --trace-dir`), with `run.json`, for `raft-check conform`.
    pub trace_dir: Option<PathBuf>,
    /// Each trial's client history is written to `history_dir/soak-<seed>-trial-<n>.json`
    /// (`history_export`'s format), for `raft-tests porcupine --include`.
    pub history_dir: Option<PathBuf>,
    /// Peer connections through fault-injecting proxies, and network-fault rounds in the
    /// nemesis (see the module's doc).
    pub net_faults: bool,
    /// Each node takes a snapshot once this many entries were applied since its last one
    /// (`raft-node --snapshot-entries N --snapshot-bytes 0`); 0: the nodes never compact.
    pub snapshot_entries: u64,
}

/// The soak's snapshot policy: small, so that every trial compacts many times.
pub const SNAPSHOT_ENTRIES: u64 = 20;

impl SoakOptions {
    /// The `raft-tests soak` command line that repeats these trials' choices (the seed, the
    /// load, the faults, the snapshot policy; the output options left out).
    pub fn command(&self) -> String {
        format!(
            "raft-tests soak --trials {} --seed {} --seconds {}{} --snapshot-entries {}",
            self.trials,
            self.seed,
            self.load.as_secs_f64(),
            if self.net_faults {
                ""
            } else {
                " --no-net-faults"
            },
            self.snapshot_entries
        )
    }
}

/// What a node logs when it takes a snapshot (raft-impl's replica, at debug) and when it
/// installs a leader's (at info); the soak runs its nodes with `RUST_LOG` showing both.
/// The replica's line for a compaction: "log compacted into a snapshot" where the batch writes
/// it, "log compacted into the written snapshot" after the node's snapshot writer did.
const COMPACTED_LOG: &str = "log compacted into";
const INSTALLED_LOG: &str = "installing the leader's snapshot";
const NODE_LOG_FILTER: &str = "warn,raft_impl::node::replica=debug";

/// What the network nemesis did (all zero without network faults).
#[derive(Debug, Default, Clone)]
pub struct NetFigures {
    /// Partitions cutting both directions between a node and the others.
    pub two_way: u64,
    /// Partitions cutting one direction only (a node cannot send, or cannot hear, or one link).
    pub one_way: u64,
    /// Partitions of the leader (found by a read just before): isolated, or unable to send.
    pub leader_isolations: u64,
    /// Leader partitions during which another node committed a read (a new leader was elected
    /// and served on the majority side).
    pub new_leaders: u64,
    /// Rounds that cut every open peer connection of a node.
    pub cut_rounds: u64,
    /// Rounds with flaky links (each chunk closes its connection with some probability).
    pub flaky_rounds: u64,
    /// Rounds that changed the background delays.
    pub delay_rounds: u64,
    /// Peer connections made through the proxies.
    pub connections: u64,
    /// Of those, closed by a fault.
    pub cuts: u64,
    /// Bytes the proxies forwarded.
    pub bytes: u64,
}

impl NetFigures {
    fn add(&mut self, o: &NetFigures) {
        self.two_way += o.two_way;
        self.one_way += o.one_way;
        self.leader_isolations += o.leader_isolations;
        self.new_leaders += o.new_leaders;
        self.cut_rounds += o.cut_rounds;
        self.flaky_rounds += o.flaky_rounds;
        self.delay_rounds += o.delay_rounds;
        self.connections += o.connections;
        self.cuts += o.cuts;
        self.bytes += o.bytes;
    }
}

/// Figures of all trials.
#[derive(Debug, Default)]
pub struct SoakSummary {
    pub trials: u32,
    pub kills: u64,
    pub ops: u64,
    /// Acknowledged puts to per-trial unique keys, each read back at the end.
    pub acked_unique_writes: u64,
    /// Acknowledged writes (puts and successful compare-and-swaps) to the shared keys.
    pub acked_shared_writes: u64,
    pub indefinite: u64,
    pub lost: u64,
    pub violations: u64,
    pub failures: Vec<String>,
    pub seconds: f64,
    pub net: NetFigures,
    /// Voters replaced under load by a node that started empty (added, promoted, the old one
    /// removed and stopped for good).
    pub replacements: u64,
    /// Snapshots the nodes took (from their logs; one killed before its sync counts too).
    pub compactions: u64,
    /// Snapshots the nodes installed from a leader (from their logs).
    pub installs: u64,
    /// Trials in which some node installed a snapshot.
    pub trials_installing: u32,
}

impl SoakSummary {
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.violations == 0 && self.failures.is_empty()
    }

    pub fn markdown(&self, o: &SoakOptions) -> String {
        let mut s = format!(
            "| trials | load per trial | SIGKILLs | operations | acknowledged writes (unique keys / shared keys) | indefinite (timed out) | writes lost | linearizability violations | other failures | duration |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
             | {} | {:.1} s | {} | {} | {} ({} / {}) | {} | {} | {} | {} | {:.0} s |\n",
            self.trials,
            o.load.as_secs_f64(),
            self.kills,
            self.ops,
            self.acked_unique_writes + self.acked_shared_writes,
            self.acked_unique_writes,
            self.acked_shared_writes,
            self.indefinite,
            self.lost,
            self.violations,
            self.failures.len(),
            self.seconds
        );
        s.push_str(&format!(
            "\nmembership: {} voter(s) replaced under load by a node started empty (add, promote, remove, stop)\n",
            self.replacements
        ));
        if o.snapshot_entries > 0 {
            s.push_str(&format!(
                "\ncompaction: a snapshot every {} applied entries; {} snapshots taken, {} installed from a leader (in {} of {} trials)\n",
                o.snapshot_entries,
                self.compactions,
                self.installs,
                self.trials_installing,
                self.trials
            ));
        } else {
            s.push_str("\ncompaction: off (--snapshot-entries 0)\n");
        }
        if o.net_faults {
            let n = &self.net;
            s.push_str(&format!(
                "\n| network faults | partitions (two-way / one-way) | leader partitions | new leader during them | cut rounds | flaky rounds | delay rounds | peer connections (cut by faults) | bytes forwarded |\n\
                 |---|---:|---:|---:|---:|---:|---:|---:|---:|\n\
                 | proxies on | {} ({} / {}) | {} | {} | {} | {} | {} | {} ({}) | {} |\n",
                n.two_way + n.one_way,
                n.two_way,
                n.one_way,
                n.leader_isolations,
                n.new_leaders,
                n.cut_rounds,
                n.flaky_rounds,
                n.delay_rounds,
                n.connections,
                n.cuts,
                n.bytes
            ));
        } else {
            s.push_str("\nnetwork faults: off (nodes connected directly)\n");
        }
        s.push_str(&format!("\nseed: {}\n", o.seed));
        for f in &self.failures {
            s.push_str(&format!("\n- {f}"));
        }
        s
    }
}

/// A loopback address for a node to listen on, with a port below the kernel's ephemeral range.
/// A port from `bind(":0")` is ephemeral: while its node is down (between a SIGKILL and the
/// restart, or before the first start) any outgoing connection (a proxy's, a client's) may be
/// given that port as its local one, and the node then cannot bind it again. A port outside
/// that range is only ever taken by an explicit bind.
pub(crate) fn free_addr() -> std::io::Result<SocketAddr> {
    let low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let range = low.saturating_sub(16384).max(10000)..low;
    if !range.is_empty() {
        for _ in 0..256 {
            let addr = SocketAddr::from(([127, 0, 0, 1], fastrand::u16(range.clone())));
            if TcpListener::bind(addr).is_ok() {
                return Ok(addr);
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// The client side of a cluster: its nodes' client addresses (what it derefs to) and its
/// client TLS configuration.
#[derive(Clone)]
pub(crate) struct Endpoints {
    addrs: Vec<SocketAddr>,
    tls: Option<ClientTls>,
}

impl Endpoints {
    /// A client of these nodes.
    pub(crate) fn client(&self) -> Client {
        Client::new(self.addrs.clone()).with_tls(self.tls.clone())
    }

    /// The same cluster's nodes at `addrs` only.
    pub(crate) fn only(&self, addrs: Vec<SocketAddr>) -> Endpoints {
        Endpoints {
            addrs,
            tls: self.tls.clone(),
        }
    }
}

impl std::ops::Deref for Endpoints {
    type Target = [SocketAddr];
    fn deref(&self) -> &[SocketAddr] {
        &self.addrs
    }
}

pub(crate) struct Cluster {
    pub(crate) dir: PathBuf,
    pub(crate) cluster: ClusterConfig,
    /// Nodes in the cluster file: the voters, then the spares.
    servers: u64,
    /// Node i's cluster file (the same file for all without proxies).
    cluster_files: Vec<PathBuf>,
    node_bin: PathBuf,
    pub(crate) nodes: Vec<Option<Child>>,
    /// Nodes that exited without being killed (each a failure of the trial, with its log's
    /// last line): a node stops only when told to.
    pub(crate) exits: Vec<String>,
    trace_dir: Option<PathBuf>,
    snapshot_entries: u64,
    /// `proxies[i][j]`: node i's connections to node j (none on the diagonal, none at all
    /// without network faults).
    proxies: Vec<Vec<Option<Proxy>>>,
}

impl Cluster {
    /// A cluster of [`NODES`] voters and `spares` nodes outside it (started empty), every one
    /// started.
    pub(crate) fn start(
        dir: &Path,
        node_bin: &Path,
        trace_dir: Option<PathBuf>,
        net_faults: bool,
        snapshot_entries: u64,
        spares: u64,
    ) -> Result<Self, String> {
        let servers = NODES + spares;
        if let Some(t) = &trace_dir {
            fs::create_dir_all(t).map_err(|e| format!("{}: {e}", t.display()))?;
            // The real node's configuration; TCP neither duplicates nor replays frames, and
            // nor does the proxy (its cuts lose frames, which a lossy network may).
            let info = raft_model::conform::RunInfo {
                initial_voters: Some(NODES as usize),
                ..raft_model::conform::RunInfo::of(
                    &raft_impl::node::node_config(
                        raft_impl::core::NodeId(0),
                        (0..NODES).map(raft_impl::core::NodeId),
                    ),
                    false,
                )
            };
            let json = serde_json::to_string_pretty(&info).map_err(|e| e.to_string())?;
            fs::write(t.join("run.json"), json).map_err(|e| e.to_string())?;
        }
        let mut nodes = Vec::new();
        for id in 0..servers {
            nodes.push(NodeSpec {
                id,
                peer_addr: free_addr().map_err(|e| e.to_string())?,
                client_addr: free_addr().map_err(|e| e.to_string())?,
                initial_member: id < NODES,
            });
        }
        // TLS everywhere, as `raft-cluster up` runs a cluster (the proxies pass the records
        // through unchanged; a peer verifies its peer by name, not by address).
        let mut cluster = ClusterConfig::new(nodes);
        let tls_dir = dir.join("tls");
        raft_impl::certs::write_cluster(&tls_dir, &cluster, false).map_err(|e| e.to_string())?;
        cluster.tls = Some(TlsSection {
            dir: tls_dir,
            client_cert_auth: false,
        });
        let mut proxies: Vec<Vec<Option<Proxy>>> = Vec::new();
        let mut cluster_files = Vec::new();
        for i in 0..servers as usize {
            let mut row = Vec::new();
            let mut own = cluster.clone();
            for j in 0..servers as usize {
                if i == j || !net_faults {
                    row.push(None);
                    continue;
                }
                let proxy = Proxy::start(cluster.nodes[j].peer_addr)
                    .map_err(|e| format!("proxy {i} -> {j}: {e}"))?;
                own.nodes[j].peer_addr = proxy.addr();
                row.push(Some(proxy));
            }
            proxies.push(row);
            // The initial members' files do not list the spare: they learn its address from
            // the configuration entry that adds it (membership changes by address). Its own
            // file lists every node (a node must find itself in its file), so it can answer.
            if (i as u64) < NODES {
                own.nodes.retain(|node| node.initial_member);
            }
            let file = dir.join(format!("cluster-{i}.toml"));
            fs::write(&file, own.to_toml()).map_err(|e| format!("{}: {e}", file.display()))?;
            cluster_files.push(file);
        }
        let mut c = Cluster {
            dir: dir.to_path_buf(),
            cluster,
            servers,
            cluster_files,
            node_bin: node_bin.to_path_buf(),
            nodes: (0..servers).map(|_| None).collect(),
            exits: Vec::new(),
            trace_dir,
            snapshot_entries,
            proxies,
        };
        for id in 0..servers {
            c.start_node(id)?;
        }
        Ok(c)
    }

    /// Where node `id` really listens (no proxy), as a configuration entry carries it.
    pub(crate) fn address(&self, id: u64) -> Address {
        let node = &self.cluster.nodes[id as usize];
        Address {
            peer: node.peer_addr.to_string(),
            client: node.client_addr.to_string(),
        }
    }

    /// The controls of every proxy: `links[i][j]` for node i's messages to node j.
    fn links(&self) -> Vec<Vec<Option<Arc<LinkControl>>>> {
        self.proxies
            .iter()
            .map(|row| {
                row.iter()
                    .map(|p| p.as_ref().map(|p| Arc::clone(p.control())))
                    .collect()
            })
            .collect()
    }

    /// The proxies' figures so far (connections, cut connections, bytes).
    fn proxy_figures(&self) -> (u64, u64, u64) {
        let mut f = (0, 0, 0);
        for p in self.proxies.iter().flatten().flatten() {
            let s = p.stats();
            f.0 += s.connections.load(Ordering::Relaxed);
            f.1 += s.cuts.load(Ordering::Relaxed);
            f.2 += s.bytes_forward.load(Ordering::Relaxed) + s.bytes_back.load(Ordering::Relaxed);
        }
        f
    }

    pub(crate) fn start_node(&mut self, id: u64) -> Result<(), String> {
        self.start_node_wrapped(id, &[])
    }

    /// The node's data directory.
    pub(crate) fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}"))
    }

    /// The node's log (its stderr, appended to across restarts).
    pub(crate) fn log_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}.log"))
    }

    /// Starts node `id` as `wrapper... raft-node ARGS` (e.g. `fiu-run -x -c ...`); an empty
    /// wrapper runs raft-node itself.
    pub(crate) fn start_node_wrapped(&mut self, id: u64, wrapper: &[String]) -> Result<(), String> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node-{id}.log")))
            .map_err(|e| e.to_string())?;
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&self.node_bin);
                c
            }
            None => Command::new(&self.node_bin),
        };
        if let Some(t) = &self.trace_dir {
            command.arg("--trace-dir").arg(t);
        }
        let child = command
            .args(["--id", &id.to_string(), "--cluster"])
            .arg(&self.cluster_files[id as usize])
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .args(["--snapshot-entries", &self.snapshot_entries.to_string()])
            .args(["--snapshot-bytes", "0"])
            .env("RUST_LOG", NODE_LOG_FILTER)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.node_bin.display()))?;
        self.nodes[id as usize] = Some(child);
        Ok(())
    }

    /// Records every node that has exited on its own since the last look (see `exits`).
    pub(crate) fn check_alive(&mut self) {
        for id in 0..self.servers {
            let Some(child) = self.nodes[id as usize].as_mut() else {
                continue;
            };
            if let Ok(Some(status)) = child.try_wait() {
                self.nodes[id as usize] = None;
                let log = self.dir.join(format!("node-{id}.log"));
                let last = fs::read_to_string(&log)
                    .ok()
                    .and_then(|l| {
                        l.lines()
                            .rev()
                            .find(|l| !l.trim().is_empty())
                            .map(String::from)
                    })
                    .unwrap_or_else(|| "(empty)".into());
                self.exits.push(format!(
                    "node {id} exited by itself ({status}); its log ends: {last}"
                ));
            }
        }
    }

    /// SIGKILL (`Child::kill` on Unix): nothing unsynced survives.
    pub(crate) fn kill9(&mut self, id: u64) {
        self.check_alive();
        if let Some(mut child) = self.nodes[id as usize].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits up to `limit` for node `id` to exit by itself; its status if it did (the node is
    /// then no longer watched, and its exit is not counted among `exits`).
    pub(crate) fn wait_exit(
        &mut self,
        id: u64,
        limit: Duration,
    ) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            let child = self.nodes[id as usize].as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.nodes[id as usize] = None;
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn client(&self) -> Client {
        self.endpoints().client()
    }

    /// The cluster's client side (addresses and TLS).
    pub(crate) fn endpoints(&self) -> Endpoints {
        let tls = raft_impl::client::tls_config_for(
            &self.cluster,
            &self.dir.join("cluster.toml"),
            None,
            None,
        )
        .unwrap_or_else(|e| panic!("the soak's own certificates: {e}"));
        Endpoints {
            addrs: self.cluster.client_addrs(),
            tls,
        }
    }

    /// Snapshots taken and installed by all nodes so far, from their logs (appended to across
    /// restarts).
    pub(crate) fn snapshot_figures(&self) -> (u64, u64) {
        let mut f = (0, 0);
        for id in 0..self.servers {
            let Ok(log) = fs::read_to_string(self.dir.join(format!("node-{id}.log"))) else {
                continue;
            };
            f.0 += log.matches(COMPACTED_LOG).count() as u64;
            f.1 += log.matches(INSTALLED_LOG).count() as u64;
        }
        f
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in 0..self.servers {
            self.kill9(id);
        }
    }
}

/// The trial's shared record: the history and the clock it is timed by.
pub(crate) struct Recorder {
    start: Instant,
    pub(crate) history: Mutex<History>,
    next_thread: Mutex<u64>,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Recorder {
            start: Instant::now(),
            history: Mutex::new(History::default()),
            next_thread: Mutex::new(0),
        }
    }

    pub(crate) fn thread(&self) -> u64 {
        let mut t = self.next_thread.lock().unwrap_or_else(|e| e.into_inner());
        *t += 1;
        *t
    }

    /// Runs `op` as logical thread `thread`, recording its invocation and (if it has a definite
    /// outcome) its return. `None`: indefinite.
    pub(crate) fn run(
        &self,
        client: &mut Client,
        thread: u64,
        op: Op,
    ) -> Result<Option<OpResult>, String> {
        self.run_for(client, thread, op, OP_TIMEOUT)
    }

    /// `run` with another client timeout.
    pub(crate) fn run_for(
        &self,
        client: &mut Client,
        thread: u64,
        op: Op,
        timeout: Duration,
    ) -> Result<Option<OpResult>, String> {
        {
            let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
            h.invoke(thread, self.start.elapsed(), &op)?;
        }
        match client.execute(op, timeout) {
            Ok(result) => {
                let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
                h.ret(thread, self.start.elapsed(), result.clone());
                Ok(Some(result))
            }
            Err(_) => Ok(None),
        }
    }
}

#[derive(Default)]
pub(crate) struct ClientFigures {
    pub(crate) ops: u64,
    pub(crate) acked_unique: Vec<(String, String)>,
    pub(crate) acked_shared: u64,
    pub(crate) indefinite: u64,
}

pub(crate) fn client_loop(
    cluster_addrs: Endpoints,
    rec: &Recorder,
    me: u64,
    trial: u32,
    seed: u64,
    stop: &AtomicBool,
) -> Result<ClientFigures, String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut figures = ClientFigures::default();
    let mut client = cluster_addrs.client();
    let mut thread = rec.thread();
    let mut known: Option<String> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let value = format!("t{trial}-c{me}-{n}");
        let (op, unique) = match rng.u32(0..100) {
            0..35 => (
                Op::Put {
                    key: format!("u-{me}-{n}"),
                    value: value.clone(),
                },
                true,
            ),
            35..60 => (
                Op::Put {
                    key: format!("s{}", rng.u64(0..SHARED_KEYS)),
                    value: value.clone(),
                },
                false,
            ),
            60..80 => (
                Op::Get {
                    key: format!("s{}", rng.u64(0..SHARED_KEYS)),
                },
                false,
            ),
            _ => (
                Op::Cas {
                    key: format!("s{}", rng.u64(0..SHARED_KEYS)),
                    expected: known.clone(),
                    new: value.clone(),
                },
                false,
            ),
        };
        figures.ops += 1;
        match rec.run(&mut client, thread, op.clone())? {
            Some(result) => match (&op, result) {
                (Op::Put { key, value }, _) if unique => {
                    figures.acked_unique.push((key.clone(), value.clone()))
                }
                (Op::Put { value, .. }, _) => {
                    figures.acked_shared += 1;
                    known = Some(value.clone());
                }
                (Op::Cas { new, .. }, OpResult::Value(_)) => {
                    figures.acked_shared += 1;
                    known = Some(new.clone());
                }
                (_, OpResult::Value(v)) | (_, OpResult::CasMismatch { current: v }) => known = v,
                _ => {}
            },
            None => {
                // Indefinite: the operation stays in flight; go on as a new logical thread and
                // a new session.
                figures.indefinite += 1;
                thread = rec.thread();
                client = cluster_addrs.client();
            }
        }
        thread::sleep(Duration::from_millis(rng.u64(5..40)));
    }
    Ok(figures)
}

struct TrialFigures {
    kills: u64,
    replacements: u64,
    compactions: u64,
    installs: u64,
    ops: u64,
    acked_unique: u64,
    acked_shared: u64,
    indefinite: u64,
    lost: Vec<String>,
    violation: Option<String>,
    net: NetFigures,
}

/// One round of the network nemesis.
#[derive(Clone, Copy, Debug)]
enum NetFault {
    /// The leader can neither send nor hear (its links both ways stalled).
    IsolateLeader,
    /// The leader's messages reach nobody; it still hears the others (who elect a new leader,
    /// whose messages make it step down).
    LeaderCannotSend,
    /// Nobody's messages reach the leader; its own still go out (its heartbeats keep the
    /// followers from an election, and nothing commits until the heal).
    LeaderCannotHear,
    /// A random node isolated both ways.
    IsolateNode,
    /// One random direction i ↛ j.
    OneLink,
    /// Every open peer connection of a random node closed at once (they reconnect).
    Cut,
    /// Every link flaky for a while (each chunk closes its connection with 2–20%).
    Flaky,
    /// Background delays: cleared, or 1–60 ms on each link with probability 1/2 (they stay
    /// until the next delay round or the end of the trial, across kills and partitions).
    Delay,
}

impl NetFault {
    const LEADER: [NetFault; 2] = [NetFault::IsolateLeader, NetFault::LeaderCannotSend];
    const ALL: [NetFault; 8] = [
        NetFault::IsolateLeader,
        NetFault::LeaderCannotSend,
        NetFault::LeaderCannotHear,
        NetFault::IsolateNode,
        NetFault::OneLink,
        NetFault::Cut,
        NetFault::Flaky,
        NetFault::Delay,
    ];
}

type Links = Vec<Vec<Option<Arc<LinkControl>>>>;

/// The node that answers a read now (a read goes through the log, so it is the leader, as of
/// a moment ago), or none within a second. The read is recorded like any other.
fn find_leader(addrs: &Endpoints, rec: &Recorder) -> Result<Option<usize>, String> {
    let mut client = addrs.client();
    let get = Op::Get { key: "s0".into() };
    if rec
        .run_for(&mut client, rec.thread(), get, Duration::from_secs(1))?
        .is_none()
    {
        return Ok(None);
    }
    Ok(client
        .leader()
        .and_then(|a| addrs.iter().position(|&b| b == a)))
}

/// Stalls (or heals) node `v`'s outbound links (`out`) and inbound links (`inbound`).
fn stall_node(links: &Links, v: usize, out: bool, inbound: bool, stalled: bool) {
    let outbound = links[v].iter().filter(|_| out);
    let inbound = links.iter().map(|row| &row[v]).filter(|_| inbound);
    for l in outbound.chain(inbound).flatten() {
        l.set_stalled(stalled);
    }
}

/// Applies `kind`, holds it (0.6–1.8 s) and heals it (a delay round stays in place).
fn net_round(
    kind: NetFault,
    links: &Links,
    addrs: &Endpoints,
    rec: &Recorder,
    rng: &mut fastrand::Rng,
    net: &mut NetFigures,
) -> Result<(), String> {
    let nodes = links.len();
    let all = || links.iter().flatten().flatten();
    let hold = Duration::from_millis(rng.u64(600..1500));
    match kind {
        NetFault::IsolateLeader | NetFault::LeaderCannotSend | NetFault::LeaderCannotHear => {
            let leader = find_leader(addrs, rec)?;
            let victim = leader.unwrap_or_else(|| rng.usize(0..nodes));
            let hold = Duration::from_millis(rng.u64(1000..1800));
            let out = !matches!(kind, NetFault::LeaderCannotHear);
            let inbound = !matches!(kind, NetFault::LeaderCannotSend);
            let start = Instant::now();
            stall_node(links, victim, out, inbound, true);
            if out && inbound {
                net.two_way += 1;
            } else {
                net.one_way += 1;
            }
            if leader.is_some() && out {
                net.leader_isolations += 1;
                // Does the majority side elect a new leader and serve? Reads through the
                // other nodes only (a hint may still lead to the old leader, which cannot
                // commit: its messages reach nobody).
                let others: Vec<SocketAddr> = (0..nodes)
                    .filter(|&j| j != victim)
                    .map(|j| addrs[j])
                    .collect();
                thread::sleep(Duration::from_millis(300));
                let mut served = false;
                let mut probes = 0;
                while !served && probes < 20 && start.elapsed() + Duration::from_millis(100) < hold
                {
                    probes += 1;
                    let left = hold.saturating_sub(start.elapsed());
                    let mut client = addrs.only(others.clone()).client();
                    let get = Op::Get { key: "s0".into() };
                    let timeout = left.min(Duration::from_millis(700));
                    if rec
                        .run_for(&mut client, rec.thread(), get, timeout)?
                        .is_some()
                    {
                        served = client.leader().is_some_and(|a| a != addrs[victim]);
                    }
                }
                if served {
                    net.new_leaders += 1;
                }
            }
            thread::sleep(hold.saturating_sub(start.elapsed()));
            stall_node(links, victim, out, inbound, false);
        }
        NetFault::IsolateNode => {
            let v = rng.usize(0..nodes);
            stall_node(links, v, true, true, true);
            net.two_way += 1;
            thread::sleep(hold);
            stall_node(links, v, true, true, false);
        }
        NetFault::OneLink => {
            let i = rng.usize(0..nodes);
            let j = (i + rng.usize(1..nodes)) % nodes;
            if let Some(l) = &links[i][j] {
                l.set_stalled(true);
                net.one_way += 1;
                thread::sleep(hold);
                l.set_stalled(false);
            }
        }
        NetFault::Cut => {
            let v = rng.usize(0..nodes);
            let inbound = links.iter().map(|row| &row[v]);
            for l in links[v].iter().chain(inbound).flatten() {
                l.cut();
            }
            net.cut_rounds += 1;
        }
        NetFault::Flaky => {
            for l in all() {
                l.set_cut_per_mille(rng.u64(20..200));
            }
            net.flaky_rounds += 1;
            thread::sleep(hold);
            for l in all() {
                l.set_cut_per_mille(0);
            }
        }
        NetFault::Delay => {
            let clear = rng.bool();
            for l in all() {
                let ms = if clear || rng.bool() {
                    0
                } else {
                    rng.u64(1..60)
                };
                l.set_delay(Duration::from_millis(ms));
            }
            net.delay_rounds += 1;
        }
    }
    Ok(())
}

fn trial(options: &SoakOptions, n: u32, rng: &mut fastrand::Rng) -> Result<TrialFigures, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let trace_dir = options
        .trace_dir
        .as_ref()
        .map(|t| t.join(format!("trial-{n}")));
    let cluster = Arc::new(Mutex::new(Cluster::start(
        dir.path(),
        &options.node_bin,
        trace_dir,
        options.net_faults,
        options.snapshot_entries,
        SPARES,
    )?));
    let addrs = cluster.lock().map_err(|_| "poisoned")?.endpoints();
    let rec = Recorder::new();
    let links = cluster.lock().map_err(|_| "poisoned")?.links();
    let mut net = NetFigures::default();
    let stop = AtomicBool::new(false);
    let mut kills = 0u64;
    // The voters the nemesis may kill, and the spare that replaces one of them.
    let mut members: Vec<u64> = (0..NODES).collect();
    let mut spare = Some(NODES);
    let spare_address = cluster.lock().map_err(|_| "poisoned")?.address(NODES);
    let mut replacements = 0u64;
    let seeds: Vec<u64> = (0..CLIENTS).map(|_| rng.u64(..)).collect();
    let results: Vec<Result<ClientFigures, String>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|me| {
                let (addrs, rec, stop, seed) = (addrs.clone(), &rec, &stop, seeds[me as usize]);
                scope.spawn(move || client_loop(addrs, rec, me, n, seed, stop))
            })
            .collect();
        // The nemesis: SIGKILL a random node at random times, restart it a little later; one
        // time in six, SIGKILL every node at once (all must recover from their WALs). With
        // network faults, a round is a network fault instead six times in ten, and always the
        // first round of a trial (a leader partition).
        let end = Instant::now() + options.load;
        let mut round = 0u32;
        while Instant::now() < end {
            thread::sleep(Duration::from_millis(rng.u64(200..900)));
            round += 1;
            // The second round replaces a random voter by the spare, under load (and whatever
            // faults the earlier rounds left behind: none persist past their round).
            if round == 2 {
                if let Some(new) = spare.take() {
                    let old = members[rng.usize(0..members.len())];
                    let done = replace_node(&addrs, old, new, spare_address.clone());
                    if done.promoted {
                        members.push(new);
                    }
                    if done.removed {
                        if let Ok(mut c) = cluster.lock() {
                            c.kill9(old);
                        }
                        members.retain(|m| *m != old);
                        replacements += 1;
                    }
                    if let Some(e) = done.error {
                        eprintln!("trial {n}: replacing node {old} by node {new}: {e}");
                    }
                }
                continue;
            }
            if options.net_faults && (round == 1 || rng.u32(0..10) < 6) {
                let kind = if round == 1 {
                    NetFault::LEADER[rng.usize(0..NetFault::LEADER.len())]
                } else {
                    NetFault::ALL[rng.usize(0..NetFault::ALL.len())]
                };
                if let Err(e) = net_round(kind, &links, &addrs, &rec, rng, &mut net) {
                    eprintln!("trial {n}: network fault {kind:?}: {e}");
                }
                continue;
            }
            let victims: Vec<u64> = if rng.u32(0..6) == 0 {
                members.clone()
            } else {
                vec![members[rng.usize(0..members.len())]]
            };
            if let Ok(mut c) = cluster.lock() {
                for &id in &victims {
                    c.kill9(id);
                }
            }
            kills += victims.len() as u64;
            thread::sleep(Duration::from_millis(rng.u64(50..600)));
            if let Ok(mut c) = cluster.lock() {
                for &id in &victims {
                    if let Err(e) = c.start_node(id) {
                        eprintln!("trial {n}: restart node {id}: {e}");
                    }
                }
            }
        }
        // The network is whole again for the final reads.
        for l in links.iter().flatten().flatten() {
            l.heal();
        }
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("client thread panicked".into()))
            })
            .collect()
    });
    let mut figures = TrialFigures {
        kills,
        replacements,
        compactions: 0,
        installs: 0,
        ops: 0,
        acked_unique: 0,
        acked_shared: 0,
        indefinite: 0,
        lost: Vec::new(),
        violation: None,
        net: NetFigures::default(),
    };
    let mut acked = Vec::new();
    for r in results {
        let f = r?;
        figures.ops += f.ops;
        figures.acked_unique += f.acked_unique.len() as u64;
        figures.acked_shared += f.acked_shared;
        figures.indefinite += f.indefinite;
        acked.extend(f.acked_unique);
    }
    // Every acknowledged write must read back (reads go through the log; recorded too).
    figures.lost = read_back(&cluster, &rec, &acked)?;
    let (connections, cuts, bytes) = cluster.lock().map_err(|_| "poisoned")?.proxy_figures();
    net.connections = connections;
    net.cuts = cuts;
    net.bytes = bytes;
    figures.net = net;
    (figures.compactions, figures.installs) =
        cluster.lock().map_err(|_| "poisoned")?.snapshot_figures();
    let exits = {
        let mut c = cluster.lock().map_err(|_| "poisoned")?;
        c.check_alive();
        std::mem::take(&mut c.exits)
    };
    drop(cluster);
    if !exits.is_empty() {
        return Err(exits.join("; "));
    }
    if let Some(t) = &options.trace_dir {
        cut_torn_trace_tails(&t.join(format!("trial-{n}")), n)?;
    }
    let history = rec.history.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = history.check() {
        figures.violation = Some(e);
    }
    if let Some(dir) = &options.history_dir {
        let f = &figures;
        crate::history_export::write_soak_history(
            dir,
            options.seed,
            n,
            &history,
            &options.command(),
            &format!(
                "trial {n}: {} kills, {} voter(s) replaced (add, promote, remove), {} snapshots \
                 taken, {} installed, {} partitions ({} of the leader), {} indefinite",
                f.kills,
                f.replacements,
                f.compactions,
                f.installs,
                f.net.two_way + f.net.one_way,
                f.net.leader_isolations,
                f.indefinite
            ),
        )?;
    }
    if figures.violation.is_some() || !figures.lost.is_empty() {
        // Keep the evidence.
        let keep = std::env::temp_dir().join(format!("raft-soak-trial-{}-{n}", options.seed));
        let _ = fs::remove_dir_all(&keep);
        let _ = fs::rename(dir.path(), &keep);
        eprintln!("trial {n}: data and node logs kept in {}", keep.display());
    }
    Ok(figures)
}

/// Reads back every acknowledged write `(key, value)` at the end of a trial (each read
/// recorded in the history; a read that times out is retried as a new logical thread, three
/// times at most); returns the writes lost (read back with another value).
pub(crate) fn read_back(
    cluster: &Mutex<Cluster>,
    rec: &Recorder,
    acked: &[(String, String)],
) -> Result<Vec<String>, String> {
    let mut lost = Vec::new();
    let mut reader = cluster.lock().map_err(|_| "poisoned")?.client();
    for (key, value) in acked {
        // A read that times out is indefinite like any other operation: retry as a new
        // logical thread (the cluster is whole again, so this is rare).
        let mut got = None;
        for _ in 0..3 {
            let thread = rec.thread();
            if let Some(r) = rec.run(&mut reader, thread, Op::Get { key: key.clone() })? {
                got = Some(r);
                break;
            }
            reader = cluster.lock().map_err(|_| "poisoned")?.client();
        }
        let Some(got) = got else {
            return Err(format!("final read of {key} timed out three times"));
        };
        if got != OpResult::Value(Some(value.clone())) {
            lost.push(format!("{key}={value} acknowledged, read back {got:?}"));
        }
    }
    Ok(lost)
}

/// How far a replacement got (`replace_node`).
struct Replacement {
    promoted: bool,
    removed: bool,
    error: Option<String>,
}

/// An operator replaces voter `old` by node `new` (started empty, outside the cluster):
/// `raft-kv member add`, `promote`, then `remove` of the old one; each asked again (by the
/// client) while the leader cannot make it yet. The caller stops `old` once removed.
fn replace_node(addrs: &Endpoints, old: u64, new: u64, address: Address) -> Replacement {
    let mut admin = addrs.client();
    let limit = Duration::from_secs(20);
    let mut done = Replacement {
        promoted: false,
        removed: false,
        error: None,
    };
    let steps = [
        MemberRequest::AddLearner {
            id: new,
            address: Some(address),
        },
        MemberRequest::Promote { id: new },
        MemberRequest::Remove { id: old },
    ];
    for (k, request) in steps.into_iter().enumerate() {
        if let Err(e) = admin.member(request.clone(), limit) {
            done.error = Some(format!("{request:?}: {e}"));
            return done;
        }
        done.promoted = k >= 1;
        done.removed = k >= 2;
    }
    done
}

/// The trial ends with a SIGKILL of every node, which may land in the middle of a trace
/// record's write (one `write` of a large record can be cut at a page). A restarted node cuts
/// such a torn last line itself (`raft_impl::trace_log::open_node_trace`: whole lines only); after
/// the last kill nothing restarts, so the soak cuts it the same way, and says so.
fn cut_torn_trace_tails(dir: &Path, n: u32) -> Result<(), String> {
    for id in 0..SERVERS {
        let path = dir.join(format!("node-{id}.jsonl"));
        let Ok(bytes) = fs::read(&path) else {
            continue;
        };
        let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if keep < bytes.len() {
            truncate(&path, keep as u64)?;
            eprintln!(
                "trial {n}: node {id}'s trace ended in a record torn by the final SIGKILL ({} bytes); cut, as a restart would",
                bytes.len() - keep
            );
        }
    }
    Ok(())
}

/// Runs the trials; prints one line per trial to stderr.
pub fn run(options: &SoakOptions) -> Result<SoakSummary, String> {
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(options.seed);
    let mut s = SoakSummary::default();
    for n in 1..=options.trials {
        let t0 = Instant::now();
        match trial(options, n, &mut rng) {
            Ok(f) => {
                s.trials += 1;
                s.kills += f.kills;
                s.replacements += f.replacements;
                s.compactions += f.compactions;
                s.installs += f.installs;
                s.trials_installing += u32::from(f.installs > 0);
                s.ops += f.ops;
                s.acked_unique_writes += f.acked_unique;
                s.acked_shared_writes += f.acked_shared;
                s.indefinite += f.indefinite;
                s.lost += f.lost.len() as u64;
                s.net.add(&f.net);
                eprintln!(
                    "trial {n}/{}: {} ops, {} kills, {} replaced, {} snapshots taken, {} installed, {} partitions ({} of the leader, {} with a new leader), {} + {} acknowledged writes, {} indefinite, {} lost, {} in {:.1} s",
                    options.trials,
                    f.ops,
                    f.kills,
                    f.replacements,
                    f.compactions,
                    f.installs,
                    f.net.two_way + f.net.one_way,
                    f.net.leader_isolations,
                    f.net.new_leaders,
                    f.acked_unique,
                    f.acked_shared,
                    f.indefinite,
                    f.lost.len(),
                    if f.violation.is_some() { "NOT LINEARIZABLE" } else { "linearizable" },
                    t0.elapsed().as_secs_f64()
                );
                for l in f.lost.iter().take(5) {
                    s.failures.push(format!("trial {n}: lost write: {l}"));
                }
                if let Some(v) = f.violation {
                    s.violations += 1;
                    s.failures.push(format!("trial {n}: {v}"));
                }
            }
            Err(e) => {
                eprintln!("trial {n}: failed: {e}");
                s.trials += 1;
                s.failures.push(format!("trial {n}: {e}"));
            }
        }
    }
    if options.net_faults {
        // The faults must have had an effect: a proxy that forwards nothing, or a stall that
        // lets bytes through (the isolated leader would keep its quorum, and the other nodes
        // would hint at it), fails the soak.
        let n = &s.net;
        if n.bytes == 0 {
            s.failures
                .push("network faults: the proxies forwarded nothing".into());
        }
        if n.leader_isolations == 0 {
            s.failures.push(
                "network faults: no leader was partitioned (no leader found by a read)".into(),
            );
        } else if n.new_leaders == 0 {
            s.failures.push(format!(
                "network faults: in none of {} leader partitions did another node commit",
                n.leader_isolations
            ));
        }
    }
    // The replacement must have happened: each trial tries once (its second nemesis round,
    // which a very short trial may not reach).
    if s.trials >= 3 && s.replacements == 0 {
        s.failures.push(format!(
            "membership: no voter was replaced in {} trials",
            s.trials
        ));
    }
    // So must compaction: with small thresholds every trial compacts, and a node that was
    // down (or the spare that replaced a voter) catches up by InstallSnapshot.
    if s.trials >= 3 && options.snapshot_entries > 0 && s.installs == 0 {
        s.failures.push(format!(
            "compaction: no snapshot was installed in {} trials ({} taken)",
            s.trials, s.compactions
        ));
    }
    s.seconds = started.elapsed().as_secs_f64();
    Ok(s)
}

/// Cuts the file at `path` to `len` bytes; the error names the file.
pub(crate) fn truncate(path: &Path, len: u64) -> Result<(), String> {
    File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len))
        .map_err(|e| format!("{}: {e}", path.display()))
}
