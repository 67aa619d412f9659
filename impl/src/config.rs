//! The cluster file (`cluster.toml`): the cluster's id, then one `[[node]]` table per server.
//!
//! ```toml
//! cluster_id = 4242
//!
//! [[node]]
//! id = 0
//! peer_addr = "127.0.0.1:7000"
//! client_addr = "127.0.0.1:7100"
//! ```
//!
//! Optionally, before the tables, `secret_file = "cluster.secret"`: the cluster secret that
//! authenticates peers (a relative path is relative to the cluster file's directory; see
//! [`crate::auth`]).
//!
//! TLS (the default: `raft-node` refuses to start without it unless told `--insecure`, or
//! `insecure = true` here), after the node tables or before them:
//!
//! ```toml
//! [tls]
//! dir = "tls"               # ca.pem, node-<id>.pem, node-<id>.key, client.pem, client.key
//! client_cert_auth = false  # true: the client port requires a client certificate
//! ```
//!
//! `raft-cluster certs` writes that directory ([`crate::certs`]); a relative `dir` is relative
//! to the cluster file's directory.

use raft_core::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub id: u64,
    /// Where the node listens for Raft messages from its peers.
    pub peer_addr: SocketAddr,
    /// Where the node listens for client requests.
    pub client_addr: SocketAddr,
    /// Whether the node is a voter of the cluster's initial configuration (the default). A
    /// node listed with `initial_member = false` starts outside the cluster and joins only
    /// when a leader adds it (`raft-kv member add`): the file is the address book of every
    /// node that is or may become a member.
    #[serde(default = "initial_member_default", skip_serializing_if = "is_true")]
    pub initial_member: bool,
}

fn initial_member_default() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The `[tls]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The certificates' directory (relative: to the cluster file's directory).
    pub dir: PathBuf,
    /// Whether the client port requires a client certificate signed by the cluster's CA.
    #[serde(default, skip_serializing_if = "is_false")]
    pub client_cert_auth: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The cluster secret's file (relative: to the cluster file's directory); see
    /// [`ClusterConfig::secret_path`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// Runs without TLS on purpose (plaintext ports; `raft-node --insecure` says the same).
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
    /// Identifies the cluster: written into every node's WAL header and checked at open, so
    /// that a data directory of another cluster is refused. At most `i64::MAX` (TOML integers
    /// are signed 64-bit).
    pub cluster_id: u64,
    /// Where the certificates are (see the module doc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSection>,
    #[serde(rename = "node")]
    pub nodes: Vec<NodeSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read cluster file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cluster file {path}: {message}")]
    Invalid { path: String, message: String },
}

impl ClusterConfig {
    /// A cluster of `nodes` with a new random id.
    pub fn new(nodes: Vec<NodeSpec>) -> Self {
        ClusterConfig {
            cluster_id: Self::random_id(),
            secret_file: None,
            insecure: false,
            tls: None,
            nodes,
        }
    }

    /// A random cluster id, in `1..=i64::MAX` so that TOML can hold it.
    pub fn random_id() -> u64 {
        fastrand::u64(1..=i64::MAX as u64)
    }

    /// Reads and validates a cluster file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Invalid {
            path: shown,
            message,
        })
    }

    /// `load` for a command-line program: on error, prints `PROG: error` and gives exit code 2.
    pub fn load_or_exit(prog: &str, path: &Path) -> Result<Self, std::process::ExitCode> {
        Self::load(path).map_err(|e| {
            eprintln!("{prog}: {e}");
            std::process::ExitCode::from(2)
        })
    }

    /// Parses and validates a cluster description: at least one node, unique ids and addresses.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: ClusterConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        if config.cluster_id == 0 {
            return Err("cluster_id = 0: a cluster id is 1 or more".into());
        }
        if config.cluster_id > i64::MAX as u64 {
            return Err(format!(
                "cluster_id {} is above {}",
                config.cluster_id,
                i64::MAX
            ));
        }
        if config.insecure && config.tls.is_some() {
            return Err("insecure = true and a [tls] table: keep one of them".into());
        }
        if config.nodes.is_empty() {
            return Err("no [[node]] entries".into());
        }
        if !config.nodes.iter().any(|n| n.initial_member) {
            return Err("no node is an initial member (initial_member = false everywhere)".into());
        }
        let mut ids = BTreeSet::new();
        let mut addrs = BTreeSet::new();
        for node in &config.nodes {
            if !ids.insert(node.id) {
                return Err(format!("node id {} appears twice", node.id));
            }
            for addr in [node.peer_addr, node.client_addr] {
                if !addrs.insert(addr) {
                    return Err(format!("address {addr} is used twice"));
                }
            }
        }
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Where the secret file named in the cluster file read from `cluster_file` is.
    pub fn secret_path(&self, cluster_file: &Path) -> Option<PathBuf> {
        let file = self.secret_file.as_ref()?;
        Some(match cluster_file.parent() {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file.clone(),
        })
    }

    /// Where the `[tls]` table's directory is, for the cluster file read from `cluster_file`.
    pub fn tls_dir(&self, cluster_file: &Path) -> Option<PathBuf> {
        let dir = &self.tls.as_ref()?.dir;
        Some(match cluster_file.parent() {
            Some(parent) if dir.is_relative() => parent.join(dir),
            _ => dir.clone(),
        })
    }

    /// Node `id`'s TLS files, per the `[tls]` table (`None`: no such table).
    pub fn node_tls_files(&self, cluster_file: &Path, id: u64) -> Option<crate::tls::NodeTlsFiles> {
        let dir = self.tls_dir(cluster_file)?;
        Some(crate::tls::NodeTlsFiles {
            ca: crate::tls::ca_file(&dir),
            identity: crate::tls::node_identity(&dir, id),
            client_cert_auth: self.tls.as_ref().is_some_and(|t| t.client_cert_auth),
        })
    }

    pub fn node(&self, id: u64) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| NodeId(n.id)).collect()
    }

    /// The voters of the cluster's initial configuration.
    pub fn initial_ids(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|n| n.initial_member)
            .map(|n| NodeId(n.id))
            .collect()
    }

    /// Every node's peer and client address, as a configuration carries them.
    pub fn addresses(&self) -> std::collections::BTreeMap<NodeId, raft_core::Address> {
        let address = |n: &NodeSpec| raft_core::Address {
            peer: n.peer_addr.to_string(),
            client: n.client_addr.to_string(),
        };
        self.nodes
            .iter()
            .map(|n| (NodeId(n.id), address(n)))
            .collect()
    }

    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.client_addr).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
cluster_id = 7
[[node]]
id = 0
peer_addr = "127.0.0.1:7000"
client_addr = "127.0.0.1:7100"
[[node]]
id = 1
peer_addr = "127.0.0.1:7001"
client_addr = "127.0.0.1:7101"
"#;

    #[test]
    fn a_good_file_parses_and_round_trips() {
        let c = ClusterConfig::parse(GOOD).unwrap();
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(c.node(1).unwrap().client_addr.port(), 7101);
        assert_eq!(c.cluster_id, 7);
        assert_eq!(ClusterConfig::parse(&c.to_toml()).unwrap(), c);
    }

    fn c_nodes() -> Vec<NodeSpec> {
        ClusterConfig::parse(GOOD).unwrap().nodes
    }

    #[test]
    fn the_secret_file_is_optional_and_relative_to_the_cluster_file() {
        assert_eq!(ClusterConfig::parse(GOOD).unwrap().secret_file, None);
        let with =
            ClusterConfig::parse(&format!("secret_file = \"cluster.secret\"\n{GOOD}")).unwrap();
        assert_eq!(
            with.secret_path(Path::new("/etc/raft/cluster.toml")),
            Some(PathBuf::from("/etc/raft/cluster.secret"))
        );
        assert_eq!(ClusterConfig::parse(&with.to_toml()).unwrap(), with);
        let abs = ClusterConfig::parse(&format!("secret_file = \"/s/x\"\n{GOOD}")).unwrap();
        assert_eq!(
            abs.secret_path(Path::new("/etc/raft/cluster.toml")),
            Some(PathBuf::from("/s/x"))
        );
    }

    #[test]
    fn the_tls_table_is_optional_and_its_dir_relative_to_the_cluster_file() {
        let plain = ClusterConfig::parse(GOOD).unwrap();
        assert_eq!(plain.tls, None);
        assert!(!plain.insecure);
        let with = ClusterConfig::parse(&format!(
            "insecure = false\n{GOOD}\n[tls]\ndir = \"certs\"\nclient_cert_auth = true\n"
        ))
        .unwrap();
        let files = with
            .node_tls_files(Path::new("/etc/raft/cluster.toml"), 1)
            .unwrap();
        assert_eq!(files.ca, PathBuf::from("/etc/raft/certs/ca.pem"));
        assert_eq!(
            files.identity.cert,
            PathBuf::from("/etc/raft/certs/node-1.pem")
        );
        assert!(files.client_cert_auth);
        assert_eq!(ClusterConfig::parse(&with.to_toml()).unwrap(), with);
        let insecure = ClusterConfig::parse(&format!("insecure = true\n{GOOD}")).unwrap();
        assert!(insecure.insecure);
        assert_eq!(ClusterConfig::parse(&insecure.to_toml()).unwrap(), insecure);
        let unknown = format!("{GOOD}\n[tls]\ndir = \"x\"\nnope = 1\n");
        assert!(ClusterConfig::parse(&unknown).unwrap_err().contains("nope"));
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let dup = GOOD.replace("id = 1", "id = 0");
        assert!(ClusterConfig::parse(&dup).unwrap_err().contains("twice"));
        let addr = GOOD.replace("7101", "7100");
        assert!(ClusterConfig::parse(&addr).unwrap_err().contains("twice"));
        assert!(ClusterConfig::parse("").is_err());
        let zero = GOOD.replace("cluster_id = 7", "cluster_id = 0");
        assert!(ClusterConfig::parse(&zero)
            .unwrap_err()
            .contains("cluster_id = 0"));
        let no_id = GOOD.replace("cluster_id = 7", "");
        assert!(ClusterConfig::parse(&no_id)
            .unwrap_err()
            .contains("cluster_id"));
        let random = ClusterConfig::new(c_nodes());
        assert_eq!(ClusterConfig::parse(&random.to_toml()).unwrap(), random);
        assert!(ClusterConfig::parse("[[node]]\nid = 0\n").is_err());
        assert!(ClusterConfig::parse(&GOOD.replace("127.0.0.1:7000", "nope")).is_err());
    }
}
