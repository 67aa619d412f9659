//! What the process tests of storage.rs and cli.rs share: cluster files on free loopback ports,
//! spawning the built binaries, waiting with deadlines. Each test crate uses only some of it.
//! Clusters are TLS clusters (certificates made into the test's directory), except where a
//! test is about plain TCP ([`write_insecure_cluster`]).
#![allow(dead_code)]

use raft_impl::client::Client;
use raft_impl::config::{ClusterConfig, NodeSpec, TlsSection};
use raft_impl::kv::{Op, OpResult};
use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub const NODE: &str = env!("CARGO_BIN_EXE_raft-node");
pub const KV: &str = env!("CARGO_BIN_EXE_raft-kv");
pub const CLUSTER: &str = env!("CARGO_BIN_EXE_raft-cluster");

pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// A TLS cluster file of `n` nodes on free loopback ports, written to `dir/cluster.toml`, with
/// its certificates in `dir/tls` (named by an absolute path: [`client`] finds them from the
/// configuration alone).
pub fn write_cluster(dir: &Path, n: u64) -> (ClusterConfig, PathBuf) {
    let mut cluster = nodes_on_free_ports(n);
    let tls_dir = dir.join("tls");
    raft_impl::certs::write_cluster(&tls_dir, &cluster, false).expect("certificates");
    cluster.tls = Some(TlsSection {
        dir: tls_dir,
        client_cert_auth: false,
    });
    let path = dir.join("cluster.toml");
    fs::write(&path, cluster.to_toml()).expect("write cluster file");
    (cluster, path)
}

/// A cluster file of `n` nodes without TLS (`insecure = true`), for tests of plain TCP.
pub fn write_insecure_cluster(dir: &Path, n: u64) -> (ClusterConfig, PathBuf) {
    let mut cluster = nodes_on_free_ports(n);
    cluster.insecure = true;
    let path = dir.join("cluster.toml");
    fs::write(&path, cluster.to_toml()).expect("write cluster file");
    (cluster, path)
}

/// A cluster file (as `raft-cluster up` writes it), its `[tls]` dir made absolute so that
/// [`client`] finds the certificates from the configuration alone.
pub fn load_cluster(file: &Path) -> ClusterConfig {
    let mut cluster = ClusterConfig::load(file).expect("the cluster file");
    if let Some(dir) = cluster.tls_dir(file) {
        if let Some(t) = cluster.tls.as_mut() {
            t.dir = dir;
        }
    }
    cluster
}

/// A client of `cluster`, with TLS when the cluster has it.
pub fn client(cluster: &ClusterConfig) -> Client {
    let tls = raft_impl::client::tls_config_for(cluster, Path::new("cluster.toml"), None, None)
        .expect("the cluster's client TLS configuration");
    Client::new(cluster.client_addrs()).with_tls(tls)
}

fn nodes_on_free_ports(n: u64) -> ClusterConfig {
    ClusterConfig::new(
        (0..n)
            .map(|id| NodeSpec {
                id,
                peer_addr: free_addr(),
                client_addr: free_addr(),
                initial_member: true,
            })
            .collect(),
    )
}

/// A one-node cluster file whose client port is held by the returned listener, so that the node
/// fails to bind it. The listener is bound before the file is written: a port found free and
/// then released could be taken by a parallel test before this one binds it again.
pub fn write_cluster_with_taken_client_port(dir: &Path) -> (TcpListener, PathBuf) {
    let taken = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let mut cluster = ClusterConfig::new(vec![NodeSpec {
        id: 0,
        peer_addr: free_addr(),
        client_addr: taken.local_addr().expect("the listener's address"),
        initial_member: true,
    }]);
    // About binding, not TLS.
    cluster.insecure = true;
    let path = dir.join("cluster.toml");
    fs::write(&path, cluster.to_toml()).expect("write cluster file");
    (taken, path)
}

/// The raft-node command for node `id` on `data_dir` (stdin and stdout closed).
pub fn node_command(id: u64, cluster_file: &Path, data_dir: &Path) -> Command {
    let mut command = Command::new(NODE);
    command
        .args(["--id", &id.to_string(), "--cluster"])
        .arg(cluster_file)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

/// A running raft-node whose stderr goes to `log`; killed (SIGKILL) when dropped.
pub struct Node {
    pub child: Child,
    pub log: PathBuf,
}

impl Node {
    pub fn start(id: u64, cluster_file: &Path, data_dir: &Path, log: &Path) -> Node {
        Self::start_with(id, cluster_file, data_dir, log, &[])
    }

    /// The same, with more `raft-node` options.
    pub fn start_with(
        id: u64,
        cluster_file: &Path,
        data_dir: &Path,
        log: &Path,
        args: &[&str],
    ) -> Node {
        let file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let child = node_command(id, cluster_file, data_dir)
            .args(args)
            .stderr(file)
            .spawn()
            .expect("spawn raft-node");
        Node {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for `child` to exit within `timeout`; kills it and returns `None` if it does not.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let mut status = None;
    wait_until(timeout, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// Runs `command` to completion (stdout and stderr captured), killing it after `timeout`.
pub fn output_within(command: &mut Command, timeout: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if wait_exit(&mut child, timeout).is_none() {
        panic!("{command:?} still running after {timeout:?}");
    }
    child.wait_with_output().expect("output")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The pid in a `LOCK` file, once its holder has written it.
pub fn lock_pid(dir: &Path) -> Option<u32> {
    fs::read_to_string(dir.join("LOCK"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// One operation through the client library, retried until `timeout`.
pub fn execute(cluster: &ClusterConfig, op: Op, timeout: Duration) -> OpResult {
    client(cluster)
        .execute(op.clone(), timeout)
        .unwrap_or_else(|e| panic!("{op:?}: {e}"))
}

/// `raft-kv --cluster FILE ARGS...` with a 10 s timeout.
pub fn kv(cluster_file: &Path, args: &[&str]) -> Output {
    output_within(
        Command::new(KV)
            .args(["--timeout-secs", "10", "--cluster"])
            .arg(cluster_file)
            .args(args),
        Duration::from_secs(30),
    )
}
