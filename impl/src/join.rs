//! Joining a running cluster by address (etcd's `--initial-cluster-state existing`). A node
//! that no member's cluster file lists starts with its id, its own two addresses and the
//! client address of one or more members (`raft-node --join`). It asks them for the
//! membership (the request of `raft-kv member list`): the cluster's id, the configuration and
//! where each member is reached. It writes what it learnt as the cluster file of its data
//! directory ([`JOINED_CLUSTER_FILE`]), with the current voters as the initial members and
//! itself outside them, and starts from that file: it waits, outside the cluster, for a
//! leader to add it (`raft-kv member add N PEER CLIENT`), then learns every later change
//! from the log and snapshots (membership.rs rule 5). A restart reads the file again and asks
//! nobody.
//!
//! TLS: the node is given its certificates' directory (`--tls-dir`, as `raft-cluster certs
//! --node N` writes it: the CA and the node's own certificate). It asks the members over TLS,
//! presenting its node certificate (a client certificate too), and its cluster file's `[tls]`
//! table names that directory. Without one, only `--insecure` joins, in plain TCP.

use crate::client::{Client, ClientError};
use crate::config::{ClusterConfig, ConfigError, NodeSpec, TlsSection};
use crate::tls::{self, TlsError};
use crate::wire::MemberRequest;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The cluster file a joined node keeps in its data directory.
pub const JOINED_CLUSTER_FILE: &str = "cluster.toml";

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("cannot learn the cluster from {contacts}: {source}")]
    NoAnswer {
        contacts: String,
        source: ClientError,
    },
    #[error("member {id}'s {what} address {text:?} is not an IP address and port")]
    BadAddress {
        id: u64,
        what: &'static str,
        text: String,
    },
    #[error(
        "the cluster's members answered a configuration that is not a valid cluster file: {0}"
    )]
    Invalid(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("{path} was written for node {id} at peer {peer} client {client}; this node is started otherwise (remove the data directory to join anew, or start it as it was)")]
    Mismatch {
        path: String,
        id: u64,
        peer: SocketAddr,
        client: SocketAddr,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// How a joining node talks to the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Security {
    /// TLS, with the certificates in this directory (absolute, or relative to the working
    /// directory).
    Tls(PathBuf),
    /// Plain TCP (`--insecure`).
    Insecure,
}

/// The cluster file of node `me` in `data_dir`: the one an earlier join wrote, or a new one
/// learnt from `contacts` (asked for at most `timeout`).
pub fn join(
    me: &NodeSpec,
    contacts: &[SocketAddr],
    data_dir: &Path,
    security: &Security,
    timeout: Duration,
) -> Result<(ClusterConfig, PathBuf), JoinError> {
    let path = data_dir.join(JOINED_CLUSTER_FILE);
    if path.exists() {
        let cluster = ClusterConfig::load(&path)?;
        return match cluster.node(me.id) {
            Some(n) if n.peer_addr == me.peer_addr && n.client_addr == me.client_addr => {
                Ok((cluster, path))
            }
            _ => Err(JoinError::Mismatch {
                path: path.display().to_string(),
                id: me.id,
                peer: me.peer_addr,
                client: me.client_addr,
            }),
        };
    }
    let (client_tls, tls_section) = match security {
        Security::Tls(dir) => {
            let dir = std::path::absolute(dir).map_err(|source| JoinError::Write {
                path: dir.display().to_string(),
                source,
            })?;
            let identity = tls::node_identity(&dir, me.id);
            let config = tls::client_config(&tls::ca_file(&dir), Some(&identity))?;
            let section = TlsSection {
                dir,
                client_cert_auth: false,
            };
            (Some(config), Some(section))
        }
        Security::Insecure => (None, None),
    };
    let members = Client::new(contacts.to_vec())
        .with_tls(client_tls)
        .member(MemberRequest::List, timeout)
        .map_err(|source| JoinError::NoAnswer {
            contacts: contacts
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>()
                .join(","),
            source,
        })?;
    let mut nodes = Vec::new();
    for (id, address) in members.addresses.iter().filter(|(id, _)| *id != me.id) {
        let parse = |what: &'static str, text: &str| {
            text.parse::<SocketAddr>()
                .map_err(|_| JoinError::BadAddress {
                    id: *id,
                    what,
                    text: text.to_string(),
                })
        };
        nodes.push(NodeSpec {
            id: *id,
            peer_addr: parse("peer", &address.peer)?,
            client_addr: parse("client", &address.client)?,
            initial_member: members.voters.contains(id),
        });
    }
    nodes.push(NodeSpec {
        initial_member: false,
        ..me.clone()
    });
    let cluster = ClusterConfig {
        insecure: tls_section.is_none(),
        tls: tls_section,
        secret_file: None,
        cluster_id: members.cluster_id,
        nodes,
    };
    let text = cluster.to_toml();
    ClusterConfig::parse(&text).map_err(JoinError::Invalid)?;
    write_atomically(&path, text.as_bytes()).map_err(|source| JoinError::Write {
        path: path.display().to_string(),
        source,
    })?;
    Ok((cluster, path))
}

/// Writes `path` whole or not at all: a temporary file, synced, renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("toml.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
