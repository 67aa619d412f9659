//! `raft-cluster up --nodes 3 [--spares K] --dir DIR [--insecure | --client-cert-auth]`: a
//! local cluster on free loopback ports (with K more nodes started outside the cluster, for `raft-kv member add`).
//! Writes DIR/tls (the cluster's CA and certificates, `raft-cluster certs`, unless they are
//! there already; with `--insecure`, DIR/cluster.secret instead: a fresh cluster secret, mode
//! 0600, unless one is there already) and DIR/cluster.toml (which names them), starts one raft-node process per server (data in
//! DIR/node-N, logs in DIR/node-N.log) and stops them on Ctrl-C. DIR is locked (DIR/LOCK) while
//! it runs; an existing DIR/cluster.toml keeps its cluster id. If a node exits, the others are
//! stopped and raft-cluster exits 1 naming the node, its exit status and its log.
//! `--snapshot-entries N` and `--snapshot-bytes B` are passed to every node (raft-node's log
//! compaction policy; without them, raft-node's defaults).
//!
//! `raft-cluster certs --cluster FILE [--dir DIR] [--force]`: writes a new CA and the
//! certificates of every node of the cluster file and of its clients into the directory of
//! the file's `[tls]` table (or DIR; default: `tls` next to the file). `--node ID [--peer-addr
//! A --client-addr A]`: only node ID's certificate, signed by the CA already there (for a node
//! added later). Existing files are kept (an error) unless `--force`; keys are mode 0600.

use anyhow::Context;
use clap::{Parser, Subcommand};
use raft_impl::auth::ClusterSecret;
use raft_impl::config::{ClusterConfig, NodeSpec};
use raft_impl::storage::DirLock;
use raft_impl::{certs, tls};
use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The most processes (`--nodes` plus `--spares`) one `up` starts on this machine.
const MAX_LOCAL_NODES: u64 = 64;

#[derive(Parser, Debug)]
#[command(about = "Run a local Raft key-value cluster")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Start a cluster and keep it running until Ctrl-C.
    Up {
        /// Members of the cluster (1 to 64 with the spares).
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        /// Also start this many nodes outside the cluster (ids after the members', listed in
        /// cluster.toml with `initial_member = false`), which `raft-kv member add N` and
        /// `member promote N` bring in: the cluster grows and shrinks while it runs.
        #[arg(long, default_value_t = 0)]
        spares: u64,
        #[arg(long)]
        dir: PathBuf,
        /// The raft-node binary (default: next to this one).
        #[arg(long)]
        node_bin: Option<PathBuf>,
        /// Passed to every node: compact its log into a snapshot once this many entries were
        /// applied since its last snapshot (0: no bound by count). Default: raft-node's
        /// (10000).
        #[arg(long)]
        snapshot_entries: Option<u64>,
        /// Passed to every node: compact once the entries applied since its last snapshot take
        /// this many bytes (0: no bound by size; else at least one maximum-size entry,
        /// 1572874). Default: raft-node's (64 MiB). With --snapshot-entries 0 too, the nodes
        /// never compact.
        #[arg(long)]
        snapshot_bytes: Option<u64>,
        /// Run the cluster without TLS (plain TCP, peers authenticated by a cluster secret).
        #[arg(long)]
        insecure: bool,
        /// The nodes' client ports require a client certificate signed by the cluster's CA
        /// (the cluster file's `client_cert_auth = true`; `raft-kv` presents DIR/tls/client.pem).
        #[arg(long, conflicts_with = "insecure")]
        client_cert_auth: bool,
    },
    /// Make a CA and the certificates of a cluster file's nodes and clients.
    Certs {
        /// The cluster file.
        #[arg(long)]
        cluster: PathBuf,
        /// Where to write them (default: the cluster file's [tls] dir, else "tls" next to it).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Only this node's certificate and key, signed by the CA already in the directory.
        #[arg(long)]
        node: Option<u64>,
        /// With --node: its peer address (default: the cluster file's).
        #[arg(long, requires = "node")]
        peer_addr: Option<SocketAddr>,
        /// With --node: its client address (default: the cluster file's).
        #[arg(long, requires = "node")]
        client_addr: Option<SocketAddr>,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}

/// The snapshot flags `up` passes through to each raft-node (none: raft-node's defaults).
#[derive(Debug, Default, Clone, Copy)]
struct SnapshotFlags {
    entries: Option<u64>,
    bytes: Option<u64>,
}

impl SnapshotFlags {
    /// raft-node's own rule for `--snapshot-bytes`, checked before any node starts.
    fn check(&self) -> Result<(), String> {
        let min = raft_impl::wire::MAX_ENTRY_BYTES as u64;
        match self.bytes {
            Some(b) if b > 0 && b < min => Err(format!(
                "--snapshot-bytes must be 0 (no bound by size) or at least {min} (one \
                 maximum-size entry), not {b}"
            )),
            _ => Ok(()),
        }
    }

    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(n) = self.entries {
            args.extend(["--snapshot-entries".to_string(), n.to_string()]);
        }
        if let Some(n) = self.bytes {
            args.extend(["--snapshot-bytes".to_string(), n.to_string()]);
        }
        args
    }
}

/// The cluster secret's file name, next to cluster.toml.
const SECRET_FILE: &str = "cluster.secret";
/// The certificates' directory, next to cluster.toml.
const TLS_DIR: &str = "tls";

/// A free loopback port, held (by `held`) until every port of the file is chosen: a port
/// released at once may be handed out again by the next bind (the same address twice).
fn free_loopback_addr(held: &mut Vec<TcpListener>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .context("cannot find a free loopback port (bind 127.0.0.1:0)")?;
    let addr = listener
        .local_addr()
        .context("cannot find a free loopback port (bind 127.0.0.1:0)")?;
    held.push(listener);
    Ok(addr)
}

/// Writes DIR/cluster.toml with fresh loopback ports. An existing cluster file's id is kept
/// (the nodes' WALs carry it), and it must describe as many nodes.
fn write_cluster(
    dir: &Path,
    nodes: u64,
    spares: u64,
    insecure: bool,
    client_cert_auth: bool,
) -> anyhow::Result<(ClusterConfig, PathBuf)> {
    let path = dir.join("cluster.toml");
    let cluster_id = if path.exists() {
        let old = ClusterConfig::load(&path)?;
        let members = old.initial_ids().len() as u64;
        let others = old.nodes.len() as u64 - members;
        anyhow::ensure!(
            members == nodes && others == spares,
            "{} describes {members} nodes and {others} spares, not {nodes} and {spares}: use \
             another --dir for another cluster",
            path.display(),
        );
        old.cluster_id
    } else {
        ClusterConfig::random_id()
    };
    let mut specs = Vec::new();
    let mut held = Vec::new();
    for id in 0..nodes + spares {
        specs.push(NodeSpec {
            id,
            peer_addr: free_loopback_addr(&mut held)?,
            client_addr: free_loopback_addr(&mut held)?,
            initial_member: id < nodes,
        });
    }
    drop(held);
    let mut cluster = ClusterConfig {
        cluster_id,
        secret_file: None,
        insecure,
        tls: None,
        nodes: specs,
    };
    if insecure {
        // The peers' secret: made once, kept across runs of `up` on the same directory.
        let secret_path = dir.join(SECRET_FILE);
        if secret_path.exists() {
            ClusterSecret::load(&secret_path)
                .with_context(|| format!("cannot use the secret {}", secret_path.display()))?;
        } else {
            ClusterSecret::create(&secret_path)
                .with_context(|| format!("cannot create the secret {}", secret_path.display()))?;
        }
        cluster.secret_file = Some(PathBuf::from(SECRET_FILE));
    } else {
        // The certificates: made once, kept across runs of `up` on the same directory (the
        // ports change, the addresses, all 127.0.0.1, do not).
        let tls_dir = dir.join(TLS_DIR);
        if !tls::ca_file(&tls_dir).exists() {
            certs::write_cluster(&tls_dir, &cluster, false).with_context(|| {
                format!("cannot make the certificates in {}", tls_dir.display())
            })?;
        }
        cluster.tls = Some(raft_impl::config::TlsSection {
            dir: PathBuf::from(TLS_DIR),
            client_cert_auth,
        });
    }
    // Written whole, then renamed: a reader never sees a half-written file.
    let partial = dir.join("cluster.toml.partial");
    fs::write(&partial, cluster.to_toml())
        .with_context(|| format!("cannot write {}", partial.display()))?;
    fs::rename(&partial, &path)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))?;
    Ok((cluster, path))
}

fn log_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("node-{id}.log"))
}

fn spawn_node(
    bin: &Path,
    id: u64,
    cluster: &Path,
    dir: &Path,
    snapshot: SnapshotFlags,
    insecure: bool,
) -> anyhow::Result<Child> {
    let log_path = log_path(dir, id);
    let log = File::create(&log_path)
        .with_context(|| format!("cannot create log file {}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .with_context(|| format!("cannot duplicate the handle of {}", log_path.display()))?;
    let child = Command::new(bin)
        .arg("--id")
        .arg(id.to_string())
        .arg("--cluster")
        .arg(cluster)
        .arg("--data-dir")
        .arg(dir.join(format!("node-{id}")))
        .args(snapshot.args())
        .args(insecure.then_some("--insecure"))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .with_context(|| format!("cannot start node {id} ({})", bin.display()))?;
    Ok(child)
}

/// Asks a child to stop (SIGTERM through `kill`, as std has no portable way to signal), then
/// kills it if it has not exited within `grace`.
fn stop(child: &mut Child, grace: Duration) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn stop_all(children: &mut [(u64, Child)]) {
    for (_, child) in children.iter_mut() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stderr(Stdio::null())
            .status();
    }
    for (_, child) in children.iter_mut() {
        stop(child, Duration::from_secs(3));
    }
}

/// The last non-empty line of a node's log, for the message when it exits.
fn last_log_line(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
}

fn up(
    nodes: u64,
    spares: u64,
    dir: &Path,
    node_bin: Option<PathBuf>,
    snapshot: SnapshotFlags,
    insecure: bool,
    client_cert_auth: bool,
) -> anyhow::Result<()> {
    let bin = match node_bin {
        Some(b) => b,
        None => std::env::current_exe()
            .context("cannot find this program's path")?
            .with_file_name("raft-node"),
    };
    anyhow::ensure!(
        bin.exists(),
        "raft-node binary not found at {}",
        bin.display()
    );
    // Held until this process exits: a second `up` on the same directory stops here, before it
    // rewrites the cluster file.
    let _lock = DirLock::acquire(dir).map_err(|e| anyhow::anyhow!("cluster directory {e}"))?;
    let (cluster, path) = write_cluster(dir, nodes, spares, insecure, client_cert_auth)?;
    let stopping = Arc::new(AtomicBool::new(false));
    let flag = stopping.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("cannot install the signal handler")?;
    let mut children = Vec::new();
    for spec in &cluster.nodes {
        if stopping.load(Ordering::SeqCst) {
            // Ctrl-C while starting: no more nodes.
            println!("interrupted: stopping the {} nodes started", children.len());
            stop_all(&mut children);
            return Ok(());
        }
        match spawn_node(&bin, spec.id, &path, dir, snapshot, insecure) {
            Ok(child) => children.push((spec.id, child)),
            Err(e) => {
                stop_all(&mut children);
                return Err(e);
            }
        }
        println!(
            "node {} peer {} client {} (log {}){}",
            spec.id,
            spec.peer_addr,
            spec.client_addr,
            log_path(dir, spec.id).display(),
            if spec.initial_member {
                ""
            } else {
                " — a spare: raft-kv member add, then promote"
            }
        );
    }
    println!(
        "cluster file {}; try: raft-kv --cluster {} put k v; Ctrl-C stops",
        path.display(),
        path.display()
    );
    while !stopping.load(Ordering::SeqCst) {
        let exited = children
            .iter_mut()
            .find_map(|(id, child)| match child.try_wait() {
                Ok(Some(status)) => Some((*id, status.to_string())),
                Ok(None) => None,
                Err(e) => Some((*id, format!("cannot wait for it: {e}"))),
            });
        if let Some((id, status)) = exited {
            // One node down is a broken cluster: stop the others rather than run degraded.
            let log = log_path(dir, id);
            if let Some(line) = last_log_line(&log) {
                eprintln!("raft-cluster: node {id}'s log ends with: {line}");
            }
            children.retain(|(i, _)| *i != id);
            stop_all(&mut children);
            anyhow::bail!(
                "node {id} exited ({status}); its log is {}; stopped the other nodes",
                log.display()
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
    println!("stopping {} nodes", children.len());
    stop_all(&mut children);
    Ok(())
}

/// `raft-cluster certs` (see the module doc).
fn make_certs(
    config: &ClusterConfig,
    cluster_file: &Path,
    dir: Option<PathBuf>,
    node: Option<u64>,
    peer_addr: Option<SocketAddr>,
    client_addr: Option<SocketAddr>,
    force: bool,
) -> Result<(), String> {
    let dir = dir
        .or_else(|| config.tls_dir(cluster_file))
        .unwrap_or_else(|| match cluster_file.parent() {
            Some(parent) => parent.join(TLS_DIR),
            None => PathBuf::from(TLS_DIR),
        });
    let written = match node {
        None => certs::write_cluster(&dir, config, force).map_err(|e| e.to_string())?,
        Some(id) => {
            let known = config.node(id);
            let (Some(peer_addr), Some(client_addr)) = (
                peer_addr.or(known.map(|n| n.peer_addr)),
                client_addr.or(known.map(|n| n.client_addr)),
            ) else {
                return Err(format!(
                    "node {id} is not in {}: give its --peer-addr and --client-addr",
                    cluster_file.display()
                ));
            };
            let spec = NodeSpec {
                id,
                peer_addr,
                client_addr,
                initial_member: false,
            };
            certs::write_node(&dir, config.cluster_id, &spec, force).map_err(|e| e.to_string())?
        }
    };
    for file in &written {
        println!("wrote {}", file.display());
    }
    if config.tls.is_none() {
        println!(
            "add to {}:\n[tls]\ndir = \"{}\"",
            cluster_file.display(),
            dir.display()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    raft_impl::logging::init();
    let args = Args::parse();
    let result = match args.command {
        Cmd::Up {
            nodes,
            spares,
            dir,
            node_bin,
            snapshot_entries,
            snapshot_bytes,
            insecure,
            client_cert_auth,
        } => {
            if nodes == 0 {
                eprintln!("raft-cluster: --nodes must be at least 1");
                return ExitCode::from(2);
            }
            if nodes.saturating_add(spares) > MAX_LOCAL_NODES {
                eprintln!(
                    "raft-cluster: --nodes {nodes} and --spares {spares} make more than \
                     {MAX_LOCAL_NODES} processes on this machine; a larger cluster is deployed \
                     with a cluster.toml and raft-node on each host"
                );
                return ExitCode::from(2);
            }
            let snapshot = SnapshotFlags {
                entries: snapshot_entries,
                bytes: snapshot_bytes,
            };
            if let Err(e) = snapshot.check() {
                eprintln!("raft-cluster: {e}");
                return ExitCode::from(2);
            }
            up(
                nodes,
                spares,
                &dir,
                node_bin,
                snapshot,
                insecure,
                client_cert_auth,
            )
        }
        Cmd::Certs {
            cluster,
            dir,
            node,
            peer_addr,
            client_addr,
            force,
        } => {
            let config = match ClusterConfig::load_or_exit("raft-cluster", &cluster) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match make_certs(&config, &cluster, dir, node, peer_addr, client_addr, force) {
                Ok(()) => return ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("raft-cluster: certs: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raft-cluster: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_well_formed() {
        super::Args::command().debug_assert();
    }
}
