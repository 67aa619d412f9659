//! The node runtime: one event-loop thread drives the node's [`replica::Replica`] (which owns
//! the Raft [`Server`], the WAL and the state machine, without doing I/O itself); a reader
//! thread per peer connection and one poller thread for all client connections decode frames
//! into inputs for it; one sender thread per peer keeps an outbound connection (reconnecting
//! with backoff).

mod client_conn;
mod client_poll;
mod client_reply;
mod client_table;
mod diagnose;
mod event_loop;
mod forward;
mod input;
mod listen;
mod metered_reply;
mod metered_wal;
mod peer_book;
mod peers;
pub mod replica;
mod shared;
pub mod snapshot_transfer;
mod snapshot_writer;

use crate::auth::ClusterSecret;
use crate::config::ClusterConfig;
use crate::kv::Command;
use crate::metrics::{MetricsEndpoint, NodeMetrics};
use crate::storage::{Wal, WalIdentity};
use anyhow::Context;
use input::Input;
use raft_core::{Config, NodeId, Server, Window};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// How a node is run.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub id: u64,
    pub cluster: ClusterConfig,
    pub data_dir: PathBuf,
    /// The election timeout is drawn uniformly from this range each time the timer restarts.
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    pub heartbeat_interval: Duration,
    /// Write a per-step trace to `DIR/node-<id>.jsonl` (trace conformance).
    pub trace_dir: Option<PathBuf>,
    /// The cluster secret: every peer connection must pass the handshake of [`crate::auth`].
    /// `None`: the peer port is unauthenticated (a warning is logged at start).
    pub secret: Option<ClusterSecret>,
    /// TLS on both ports ([`crate::tls`]): mutual TLS between peers (the secret is then not
    /// used), server TLS on the client port. `None`: plain TCP (a warning is logged at start).
    pub tls: Option<crate::tls::NodeTls>,
    /// A client connection without a request for this long is closed.
    pub client_idle_timeout: Duration,
    /// A frame (client or peer) must be complete this long after its first byte.
    pub frame_timeout: Duration,
    /// Most client connections at once; a new one beyond closes the longest-idle one.
    pub max_client_connections: usize,
    /// When to compact the log into a snapshot (§7).
    pub snapshot: replica::SnapshotPolicy,
    /// Serve `GET /metrics` and `GET /health` over HTTP on this address (`None`: off).
    pub metrics_addr: Option<SocketAddr>,
    /// The most committed entries a node may have left unapplied and still be healthy.
    pub health_max_apply_lag: u64,
}

impl NodeOptions {
    pub fn new(id: u64, cluster: ClusterConfig, data_dir: PathBuf) -> Self {
        NodeOptions {
            id,
            cluster,
            data_dir,
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            trace_dir: None,
            secret: None,
            tls: None,
            client_idle_timeout: listen::DEFAULT_CLIENT_IDLE_TIMEOUT,
            frame_timeout: listen::DEFAULT_FRAME_TIMEOUT,
            max_client_connections: listen::DEFAULT_MAX_CLIENT_CONNECTIONS,
            snapshot: replica::SnapshotPolicy::default(),
            metrics_addr: None,
            health_max_apply_lag: crate::metrics::DEFAULT_MAX_APPLY_LAG,
        }
    }
}

/// A running node.
pub struct NodeHandle {
    input: mpsc::Sender<Input>,
    event_loop: thread::JoinHandle<anyhow::Result<()>>,
    /// The metrics endpoint, if on: stopped with the node.
    metrics: Option<MetricsEndpoint>,
}

impl NodeHandle {
    /// Something that asks the node to stop (e.g. from a signal handler).
    pub fn stopper(&self) -> impl Fn() + Send + 'static {
        let input = self.input.clone();
        move || {
            let _ = input.send(Input::Shutdown);
        }
    }

    /// Waits for the event loop to end: after a shutdown request, or on a fatal storage error.
    pub fn wait(self) -> anyhow::Result<()> {
        let result = match self.event_loop.join() {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!("the event loop thread panicked")),
        };
        drop(self.metrics);
        result
    }

    /// Where the metrics endpoint listens, if it is on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsEndpoint::addr)
    }
}

/// Most log entries one AppendEntries carries.
pub const MAX_ENTRIES_PER_APPEND: usize = 256;

/// How far a leader pipelines AppendEntries to one follower: entries sent and not yet
/// acknowledged (16 full AppendEntries) and their bytes (four full-size ones).
pub const PIPELINE: Window = Window {
    entries: 16 * MAX_ENTRIES_PER_APPEND,
    bytes: 4 * crate::wire::MAX_APPEND_BATCH_BYTES,
};

/// The protocol configuration of node `id` in a cluster of `ids`. Bounded AppendEntries: a
/// lagging follower catches up in messages of at most [`MAX_ENTRIES_PER_APPEND`] entries, far
/// below the wire's frame limit. Fast backup: a divergent follower is repaired in one rejected
/// AppendEntries per conflicting term (6.5840's Backup and Figure8Unreliable need it).
/// Pipelining within [`PIPELINE`]: each entry goes to a follower once, while earlier ones are
/// in flight. PreVote and CheckQuorum (Ongaro's thesis §9.6, raft-core's lease.rs): a server
/// that cannot reach the leader but reaches another server (a partial partition) raises no
/// term and deposes no leader; a leader that has not heard from a majority for an election
/// timeout steps down (the replica keeps a leader's election timer running for this check).
/// (`raft_core::trace_record::RunInfo::default()`, what conformance assumes of a node's traces
/// without a `run.json`, is this configuration: a test below pins it.)
///
/// `voters` is the initial configuration: node `id` is a voter only if it is among them (a
/// node listed with `initial_member = false` is not: it waits to be added; the conformance
/// replay of the soak, whose fourth node starts outside, caught `Config::new` here, which
/// counts `id` among the voters whatever the list says).
pub fn node_config(id: NodeId, voters: impl IntoIterator<Item = NodeId>) -> Config {
    Config::with_initial(id, raft_core::Membership::voters(voters))
        .with_max_entries_per_append(MAX_ENTRIES_PER_APPEND)
        .with_max_bytes_per_append(crate::wire::MAX_APPEND_BATCH_BYTES)
        .with_fast_backup(true)
        .with_pipeline(Some(PIPELINE))
        .with_pre_vote(true)
        .with_check_quorum(true)
}

/// Recovers the node's state from its WAL, binds its listeners and starts its threads.
pub fn start(options: NodeOptions) -> anyhow::Result<NodeHandle> {
    let me = options
        .cluster
        .node(options.id)
        .with_context(|| format!("node id {} is not in the cluster file", options.id))?
        .clone();
    // The initial configuration: the cluster file's initial members (a node listed with
    // `initial_member = false` starts outside it, and waits for a leader to add it).
    let cfg = node_config(NodeId(options.id), options.cluster.initial_ids());
    // Locks the data directory first: a second instance stops here, before touching the WAL.
    let identity = WalIdentity {
        cluster_id: options.cluster.cluster_id,
        node_id: options.id,
    };
    let (wal, hard) = Wal::<Command>::open(&options.data_dir, identity)?;
    let trace = match &options.trace_dir {
        Some(dir) => Some(
            crate::trace_log::open_node_trace(dir, NodeId(options.id), &hard)
                .with_context(|| format!("cannot open the trace in {}", dir.display()))?,
        ),
        None => None,
    };
    let server = Server::restart(&cfg, hard);
    let peer_listener = TcpListener::bind(me.peer_addr)
        .with_context(|| format!("cannot listen for peers on {}", me.peer_addr))?;
    let client_listener = TcpListener::bind(me.client_addr)
        .with_context(|| format!("cannot listen for clients on {}", me.client_addr))?;
    let peer_ids = options.cluster.nodes.iter().map(|n| n.id);
    let metrics = Arc::new(NodeMetrics::new(peer_ids.filter(|id| *id != options.id)));
    let metrics_endpoint = match options.metrics_addr {
        Some(addr) => Some(MetricsEndpoint::start(
            addr,
            Arc::clone(&metrics),
            options.health_max_apply_lag,
        )?),
        None => None,
    };
    tracing::info!(
        id = options.id,
        peer_addr = %me.peer_addr,
        client_addr = %me.client_addr,
        term = server.current_term(),
        log_len = server.last_log_index(),
        snapshot_index = server.snapshot_index(),
        "node starting"
    );

    let secret = options.secret.clone().map(Arc::new);
    let tls = options.tls.clone().map(Arc::new);
    if tls.is_none() {
        tracing::warn!(
            "no TLS (--insecure): peer and client traffic is unencrypted, and clients are not authenticated (see the threat model in impl/README.md)"
        );
    }
    if tls.is_some() && secret.is_some() {
        tracing::info!("TLS authenticates the peers; the cluster secret is not used");
    }
    if secret.is_none() && tls.is_none() {
        tracing::warn!(
            "no cluster secret: the peer port accepts unauthenticated Raft messages from anyone who can connect to it (see the threat model in impl/README.md)"
        );
    }

    let (input_tx, input_rx) = mpsc::channel();
    // Every node of the cluster file may become a member (and a removed one may still send
    // until it learns of its removal); members the configuration adds join the set.
    let known =
        peer_book::KnownPeers::new(options.cluster.ids().into_iter().filter(|p| *p != cfg.id));
    let peer_book = peer_book::PeerBook::new(
        cfg.id,
        secret.clone(),
        tls.clone(),
        input_tx.clone(),
        known.clone(),
    );
    let listen_options = listen::ListenOptions {
        me: cfg.id,
        peers: known,
        secret,
        tls,
        client_idle_timeout: options.client_idle_timeout,
        frame_timeout: options.frame_timeout,
        max_client_connections: options.max_client_connections,
    };
    listen::spawn_peer_listener(peer_listener, listen_options.clone(), input_tx.clone());
    listen::spawn_client_listener(client_listener, listen_options, input_tx.clone())
        .context("cannot start the client connection poller")?;

    let replica_options = replica::ReplicaOptions {
        election_timeout_min: options.election_timeout_min,
        election_timeout_max: options.election_timeout_max,
        heartbeat_interval: options.heartbeat_interval,
        addresses: options.cluster.addresses(),
        cluster_id: options.cluster.cluster_id,
        snapshot: options.snapshot,
    };
    let mut replica = replica::Replica::new(
        cfg,
        server,
        metered_wal::MeteredWal::new(wal, Arc::clone(&metrics)),
        replica_options,
        fastrand::u64(..),
        Duration::ZERO,
    )
    .context("cannot start from the snapshot on disk")?;
    if let Some(mut trace) = trace {
        trace.restart(Duration::ZERO, replica.server());
        replica.set_trace(Box::new(trace));
    }
    // Snapshots are still written within the batch that takes them: written by the writer
    // thread (`replica.defer_snapshot_writes()`), a snapshot is compacted only once durable,
    // by when more entries are applied, and the node then compacts below what it applied, a
    // step the model never takes (its compaction takes all it applied), so trace conformance
    // refuses it (the soak's traces: "snapshot: model 41, trace 40"). Until the model
    // explores a lagging compaction, the writer thread stays idle here.
    let writer = snapshot_writer::SnapshotWriter::new(
        replica.durable().dir().to_path_buf(),
        replica.durable().identity(),
        input_tx.clone(),
    );
    let forward_tls = options.tls.as_ref().map(|t| Arc::clone(&t.peer_client));
    let event_loop = event_loop::EventLoop::new(
        replica,
        Instant::now(),
        peer_book,
        forward::Forwarder::new(forward::FORWARD_TIMEOUT, forward_tls),
        metrics,
        writer,
    );
    let handle = thread::Builder::new()
        .name("raft-event-loop".into())
        .spawn(move || event_loop.run(input_rx))
        .context("cannot start the event loop thread")?;
    Ok(NodeHandle {
        input: input_tx,
        event_loop: handle,
        metrics: metrics_endpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::trace_record::RunInfo;

    /// Conformance replays a node's traces without a `run.json` as `RunInfo::default()`: that
    /// must be the node's own configuration.
    #[test]
    fn a_node_outside_the_initial_voters_is_not_a_voter() {
        let initial = [0, 1, 2].map(NodeId);
        let spare = node_config(NodeId(3), initial);
        assert_eq!(spare.initial.voters, initial.into());
        assert!(!spare.initial.contains(NodeId(3)));
        let member = node_config(NodeId(1), initial);
        assert!(member.initial.voters.contains(&NodeId(1)));
    }

    #[test]
    fn conformance_assumes_the_nodes_configuration() {
        let cfg = node_config(NodeId(0), (0..3).map(NodeId));
        assert_eq!(RunInfo::of(&cfg, false), RunInfo::default());
    }
}
