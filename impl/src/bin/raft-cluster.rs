//! `raft-cluster up --nodes 3 --dir DIR`: a local cluster on free loopback ports. Writes
//! DIR/cluster.secret (a fresh cluster secret, mode 0600, unless one is there already) and
//! DIR/cluster.toml (which names it), starts one raft-node process per server (data in DIR/node-N, logs in
//! DIR/node-N.log) and stops them on Ctrl-C.

use clap::{Parser, Subcommand};
use raft_impl::auth::ClusterSecret;
use raft_impl::config::{ClusterConfig, NodeSpec};
use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

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
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        #[arg(long)]
        dir: PathBuf,
        /// The raft-node binary (default: next to this one).
        #[arg(long)]
        node_bin: Option<PathBuf>,
    },
}

/// The cluster secret's file name, next to cluster.toml.
const SECRET_FILE: &str = "cluster.secret";

fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

fn write_cluster(dir: &Path, nodes: u64) -> anyhow::Result<(ClusterConfig, PathBuf)> {
    let mut specs = Vec::new();
    for id in 0..nodes {
        specs.push(NodeSpec {
            id,
            peer_addr: free_loopback_addr()?,
            client_addr: free_loopback_addr()?,
        });
    }
    fs::create_dir_all(dir)?;
    // The peers' secret: made once, kept across runs of `up` on the same directory.
    let secret_path = dir.join(SECRET_FILE);
    if secret_path.exists() {
        ClusterSecret::load(&secret_path)?;
    } else {
        ClusterSecret::create(&secret_path)?;
    }
    let cluster = ClusterConfig {
        secret_file: Some(PathBuf::from(SECRET_FILE)),
        nodes: specs,
    };
    let path = dir.join("cluster.toml");
    // Written whole, then renamed: a reader never sees a half-written file.
    let partial = dir.join("cluster.toml.partial");
    fs::write(&partial, cluster.to_toml())?;
    fs::rename(&partial, &path)?;
    Ok((cluster, path))
}

fn spawn_node(bin: &Path, id: u64, cluster: &Path, dir: &Path) -> anyhow::Result<Child> {
    let log = File::create(dir.join(format!("node-{id}.log")))?;
    let child = Command::new(bin)
        .arg("--id")
        .arg(id.to_string())
        .arg("--cluster")
        .arg(cluster)
        .arg("--data-dir")
        .arg(dir.join(format!("node-{id}")))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    Ok(child)
}

/// Asks a child to stop (SIGTERM through `kill`, as std has no portable way to signal), then
/// kills it if it has not exited within `grace`.
fn stop(child: &mut Child, grace: Duration) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
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

fn up(nodes: u64, dir: &Path, node_bin: Option<PathBuf>) -> anyhow::Result<()> {
    let bin = match node_bin {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("raft-node"),
    };
    anyhow::ensure!(
        bin.exists(),
        "raft-node binary not found at {}",
        bin.display()
    );
    let (cluster, path) = write_cluster(dir, nodes)?;
    let stopping = Arc::new(AtomicBool::new(false));
    let flag = stopping.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))?;
    let mut children = Vec::new();
    for spec in &cluster.nodes {
        children.push((spec.id, spawn_node(&bin, spec.id, &path, dir)?));
        println!(
            "node {} peer {} client {} (log {})",
            spec.id,
            spec.peer_addr,
            spec.client_addr,
            dir.join(format!("node-{}.log", spec.id)).display()
        );
    }
    println!(
        "cluster file {}; try: raft-kv --cluster {} put k v; Ctrl-C stops",
        path.display(),
        path.display()
    );
    while !stopping.load(Ordering::SeqCst) {
        for (id, child) in &mut children {
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("raft-cluster: node {id} exited ({status})");
            }
        }
        children.retain_mut(|(_, c)| matches!(c.try_wait(), Ok(None)));
        if children.is_empty() {
            anyhow::bail!("every node has exited");
        }
        thread::sleep(Duration::from_millis(100));
    }
    println!("stopping {} nodes", children.len());
    for (_, child) in &mut children {
        stop(child, Duration::from_secs(3));
    }
    Ok(())
}

fn main() -> ExitCode {
    raft_impl::logging::init();
    let args = Args::parse();
    let result = match args.command {
        Cmd::Up {
            nodes,
            dir,
            node_bin,
        } => {
            if nodes == 0 {
                eprintln!("raft-cluster: --nodes must be at least 1");
                return ExitCode::from(2);
            }
            up(nodes, &dir, node_bin)
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
