//! `raft-node --id N --cluster cluster.toml --data-dir DIR [--trace-dir DIR]
//! [--secret-file FILE] [--metrics-addr ADDR] [--insecure]`: runs one server of the cluster.
//! `raft-node --id N --join ADDR,.. --peer-addr A --client-addr B --data-dir DIR`: a node that
//! no cluster file lists joins a running cluster by address (`raft_impl::join`).
//!
//! TLS is required: the cluster file's `[tls]` table names the certificates
//! (`raft-cluster certs`); without one, the node refuses to start unless `--insecure` (or
//! `insecure = true` in the cluster file) says to run on plain TCP, with a warning.

use clap::Parser;
use raft_impl::auth::ClusterSecret;
use raft_impl::config::{ClusterConfig, NodeSpec};
use raft_impl::join;
use raft_impl::node::replica::SnapshotPolicy;
use raft_impl::node::{self, NodeOptions};
use raft_impl::tls::NodeTls;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "Run one Raft key-value server")]
struct Args {
    /// This node's id in the cluster file.
    #[arg(long)]
    id: u64,
    /// The cluster file (`[[node]]` tables with id, peer_addr, client_addr).
    #[arg(long, required_unless_present = "join", conflicts_with = "join")]
    cluster: Option<PathBuf>,
    /// Join a running cluster: the client addresses (IP:PORT, comma-separated) of one or
    /// more members, asked for the cluster's id and members; what they answer is kept in
    /// DATA_DIR/cluster.toml, which a restart reads instead. Then add the node from the
    /// cluster: `raft-kv member add N PEER_ADDR CLIENT_ADDR`.
    #[arg(long, value_delimiter = ',', requires_all = ["peer_addr", "client_addr"])]
    join: Vec<SocketAddr>,
    /// With --join: where this node listens for its peers.
    #[arg(long)]
    peer_addr: Option<SocketAddr>,
    /// With --join: where this node listens for clients.
    #[arg(long)]
    client_addr: Option<SocketAddr>,
    /// With --join: the directory of this node's certificates (`raft-cluster certs --node N`
    /// writes it: ca.pem, node-N.pem, node-N.key); without it, --join needs --insecure.
    #[arg(long, requires = "join")]
    tls_dir: Option<PathBuf>,
    /// Directory for the write-ahead log (created if missing).
    #[arg(long)]
    data_dir: PathBuf,
    /// Lower bound of the randomized election timeout, in milliseconds.
    #[arg(long, default_value_t = 150)]
    election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout, in milliseconds.
    #[arg(long, default_value_t = 300)]
    election_timeout_max_ms: u64,
    /// Leader heartbeat interval, in milliseconds.
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    /// Write a per-step trace (JSON Lines) to DIR/node-<id>.jsonl, for `raft-check conform`.
    #[arg(long)]
    trace_dir: Option<PathBuf>,
    /// The cluster secret (64 hex digits, mode 0600) that authenticates peers; default: the
    /// cluster file's `secret_file`. Without either, the peer port is unauthenticated.
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// Run without TLS, on plain TCP (even if the cluster file has a `[tls]` table): traffic
    /// is readable and forgeable on the network. Peers are then authenticated only by the
    /// cluster secret, if there is one.
    #[arg(long)]
    insecure: bool,
    /// Require a client certificate signed by the cluster's CA on the client port (as the
    /// cluster file's `client_cert_auth = true`; etcd's --client-cert-auth).
    #[arg(long, conflicts_with = "insecure")]
    client_cert_auth: bool,
    /// Close a client connection after this many milliseconds without a request.
    #[arg(long, default_value_t = 30_000)]
    client_idle_timeout_ms: u64,
    /// Close a connection whose frame is not complete this many milliseconds after its first
    /// byte (client and peer ports).
    #[arg(long, default_value_t = 10_000)]
    frame_timeout_ms: u64,
    /// Most client connections at once; a new one beyond closes the longest-idle one.
    #[arg(long, default_value_t = 256)]
    max_client_connections: usize,
    /// Compact the log into a snapshot once this many entries were applied since the last
    /// snapshot (0: no bound by count). A restart re-applies at most about this many entries;
    /// a follower further behind than the leader's snapshot receives the snapshot.
    #[arg(long, default_value_t = SnapshotPolicy::DEFAULT_ENTRIES)]
    snapshot_entries: u64,
    /// Compact the log into a snapshot once the entries applied since the last snapshot take
    /// this many bytes (0: no bound by size). With --snapshot-entries 0 too, the log is never
    /// compacted and grows with every write.
    #[arg(long, default_value_t = SnapshotPolicy::DEFAULT_BYTES)]
    snapshot_bytes: u64,
    /// Serve `GET /metrics` (Prometheus text format) and `GET /health` over plain HTTP on this
    /// address (e.g. 127.0.0.1:9100); off by default. The endpoint has no authentication.
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// `GET /health` answers 503 when more than this many committed entries are not yet
    /// applied (and whenever no leader is known).
    #[arg(long, default_value_t = raft_impl::metrics::DEFAULT_MAX_APPLY_LAG)]
    health_max_apply_lag: u64,
}

/// The smallest nonzero `--snapshot-bytes`: one maximum-size entry.
const MIN_SNAPSHOT_BYTES: u64 = raft_impl::wire::MAX_ENTRY_BYTES as u64;

fn main() -> ExitCode {
    raft_impl::logging::init();
    let args = Args::parse();
    let (cluster, cluster_file) = match cluster_file(&args) {
        Ok(found) => found,
        Err(code) => return code,
    };
    if cluster.node(args.id).is_none() {
        eprintln!(
            "raft-node: node id {} is not in {}",
            args.id,
            cluster_file.display()
        );
        return ExitCode::from(2);
    }
    if args.election_timeout_min_ms == 0
        || args.election_timeout_max_ms < args.election_timeout_min_ms
        || args.heartbeat_ms == 0
        || args.heartbeat_ms >= args.election_timeout_min_ms
    {
        eprintln!("raft-node: need 0 < heartbeat < election-timeout-min <= election-timeout-max");
        return ExitCode::from(2);
    }
    if args.client_idle_timeout_ms == 0 || args.frame_timeout_ms == 0 {
        eprintln!("raft-node: --client-idle-timeout-ms and --frame-timeout-ms must be positive");
        return ExitCode::from(2);
    }
    if args.max_client_connections == 0 {
        eprintln!("raft-node: --max-client-connections must be at least 1");
        return ExitCode::from(2);
    }
    if args.snapshot_bytes > 0 && args.snapshot_bytes < MIN_SNAPSHOT_BYTES {
        eprintln!(
            "raft-node: --snapshot-bytes must be 0 (no bound by size) or at least \
             {MIN_SNAPSHOT_BYTES}: a smaller bound would compact after nearly every write"
        );
        return ExitCode::from(2);
    }
    let secret_path = args
        .secret_file
        .clone()
        .or_else(|| cluster.secret_path(&cluster_file));
    let secret = match secret_path {
        Some(path) => match ClusterSecret::load(&path) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("raft-node: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let insecure = args.insecure || cluster.insecure;
    let tls = match (insecure, cluster.node_tls_files(&cluster_file, args.id)) {
        (true, _) => {
            tracing::warn!(
                "--insecure: running without TLS; anyone on the network can read and forge this node's traffic"
            );
            None
        }
        (false, Some(mut files)) => {
            files.client_cert_auth |= args.client_cert_auth;
            match NodeTls::load(&files, args.id, cluster.cluster_id) {
                Ok(tls) => Some(tls),
                Err(e) => {
                    eprintln!("raft-node: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        (false, None) => {
            eprintln!(
                "raft-node: {} has no [tls] table: make certificates with `raft-cluster certs \
                 --cluster {}`, or run without TLS with --insecure",
                cluster_file.display(),
                cluster_file.display()
            );
            return ExitCode::from(2);
        }
    };
    let mut options = NodeOptions::new(args.id, cluster, args.data_dir);
    options.tls = tls;
    options.secret = secret;
    options.client_idle_timeout = Duration::from_millis(args.client_idle_timeout_ms);
    options.frame_timeout = Duration::from_millis(args.frame_timeout_ms);
    options.max_client_connections = args.max_client_connections;
    options.election_timeout_min = Duration::from_millis(args.election_timeout_min_ms);
    options.election_timeout_max = Duration::from_millis(args.election_timeout_max_ms);
    options.heartbeat_interval = Duration::from_millis(args.heartbeat_ms);
    options.trace_dir = args.trace_dir;
    options.metrics_addr = args.metrics_addr;
    options.health_max_apply_lag = args.health_max_apply_lag;
    options.snapshot = SnapshotPolicy {
        entries: args.snapshot_entries,
        bytes: args.snapshot_bytes,
    };
    if options.snapshot == SnapshotPolicy::NEVER {
        tracing::warn!("--snapshot-entries 0 --snapshot-bytes 0: the log is never compacted");
    }
    let handle = match node::start(options) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("raft-node: {e:#}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = ctrlc::set_handler(handle.stopper()) {
        tracing::warn!(error = %e, "cannot install the signal handler");
    }
    match handle.wait() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raft-node: stopped: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The cluster file given, or the one a join learns (or learnt before) in the data directory.
fn cluster_file(args: &Args) -> Result<(ClusterConfig, PathBuf), ExitCode> {
    if let Some(path) = &args.cluster {
        return ClusterConfig::load_or_exit("raft-node", path).map(|c| (c, path.clone()));
    }
    let (Some(peer_addr), Some(client_addr)) = (args.peer_addr, args.client_addr) else {
        eprintln!("raft-node: --join needs --peer-addr and --client-addr");
        return Err(ExitCode::from(2));
    };
    let me = NodeSpec {
        id: args.id,
        peer_addr,
        client_addr,
        initial_member: false,
    };
    let security = match (&args.tls_dir, args.insecure) {
        (Some(dir), false) => join::Security::Tls(dir.clone()),
        (None, true) => join::Security::Insecure,
        (Some(_), true) => {
            eprintln!("raft-node: --tls-dir and --insecure exclude each other");
            return Err(ExitCode::from(2));
        }
        (None, false) => {
            eprintln!(
                "raft-node: --join needs --tls-dir (this node's certificates: `raft-cluster certs \
                 --node N`), or --insecure to join in plain TCP"
            );
            return Err(ExitCode::from(2));
        }
    };
    match join::join(&me, &args.join, &args.data_dir, &security, JOIN_TIMEOUT) {
        Ok((cluster, path)) => {
            tracing::info!(cluster_id = cluster.cluster_id, file = %path.display(), "joined by address; waiting to be added");
            Ok((cluster, path))
        }
        Err(e) => {
            eprintln!("raft-node: {e}");
            Err(ExitCode::from(match e {
                join::JoinError::NoAnswer { .. } | join::JoinError::Write { .. } => 1,
                _ => 2,
            }))
        }
    }
}

/// How long a joining node asks the members it was given.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_well_formed() {
        super::Args::command().debug_assert();
    }
}
