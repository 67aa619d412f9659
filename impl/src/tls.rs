//! TLS for the node's two ports and for its clients (rustls with the ring provider, chosen
//! explicitly: no process-wide default is installed or needed).
//!
//! Identities: every node's certificate carries the DNS name [`node_name`]
//! (`node-<id>.cluster-<cluster_id>.raft`), the clients' [`client_name`]; all are signed by the
//! cluster's CA (`raft-cluster certs`). Standard certificate verification of these names then
//! proves both the node's id and its cluster:
//! - a node connecting to peer P verifies the listener's certificate for P's name;
//! - the peer listener requires a certificate signed by the CA and finds which node of the
//!   cluster file it names ([`NodeTls::peer_of`]); frames naming another sender are dropped,
//!   as with the HMAC secret of [`crate::auth`] (a node of another cluster, or one using
//!   another node's id, is refused);
//! - the client port presents the node's certificate (whose SANs include the client address)
//!   and, with `client_cert_auth`, requires a client certificate signed by the CA.
//!
//! Every file problem (unreadable, not PEM, a key that does not match its certificate, an
//! expired certificate, one the CA did not sign) is one [`TlsError`] naming the file.

use raft_core::NodeId;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The byte a peer listener sends once it has accepted the connector's certificate as a node
/// of its cluster: TLS 1.3 ends the connector's handshake before the listener has judged the
/// connector's certificate, and without this the connector would take a refused connection for
/// a good one (and learn otherwise only when a write fails).
pub(crate) const PEER_ACCEPTED: u8 = 0xA5;

/// A client's TLS configuration, as [`crate::client::Client::with_tls`] takes it.
pub type ClientTls = Arc<ClientConfig>;

/// The DNS name in node `id`'s certificate: what its peers verify it for.
pub fn node_name(id: u64, cluster_id: u64) -> String {
    format!("node-{id}.cluster-{cluster_id}.raft")
}

/// The DNS name in the cluster's client certificate.
pub fn client_name(cluster_id: u64) -> String {
    format!("client.cluster-{cluster_id}.raft")
}

/// The CA certificate in a certificates directory (`raft-cluster certs`).
pub fn ca_file(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}

/// The CA's key in a certificates directory (needed only to make more certificates).
pub fn ca_key_file(dir: &Path) -> PathBuf {
    dir.join("ca.key")
}

/// Node `id`'s certificate and key in a certificates directory.
pub fn node_identity(dir: &Path, id: u64) -> Identity {
    Identity {
        cert: dir.join(format!("node-{id}.pem")),
        key: dir.join(format!("node-{id}.key")),
    }
}

/// The client certificate and key in a certificates directory.
pub fn client_identity(dir: &Path) -> Identity {
    Identity {
        cert: dir.join("client.pem"),
        key: dir.join("client.key"),
    }
}

/// The crypto provider of every configuration here (ring). rustls 0.23.48 deprecates ring's
/// provider for its lack of post-quantum key exchange; ring is this project's choice (no C
/// toolchain beyond ring's own), so the warning is acknowledged here, once.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file that cannot be used, and why.
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// A configuration rustls refused (should not happen with the files checked first).
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn file_error(path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// The certificates of a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| file_error(path, format!("no usable PEM private key: {e}")))
}

/// The CA file as a set of trust anchors.
fn load_roots(ca: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots
            .add(cert)
            .map_err(|e| file_error(ca, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(Arc::new(roots))
}

/// Where a certificate and its key are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A certificate chain and its key, checked to match.
struct Loaded {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    fn load(&self) -> Result<Loaded, TlsError> {
        let certs = load_certs(&self.cert)?;
        let key = load_key(&self.key)?;
        let provider = provider();
        let signing = provider
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| file_error(&self.key, format!("unusable private key: {e}")))?;
        let certified = rustls::sign::CertifiedKey::new(certs.clone(), signing);
        if let Err(e) = certified.keys_match() {
            return Err(file_error(
                &self.key,
                format!(
                    "the key does not match the certificate {} ({e})",
                    self.cert.display()
                ),
            ));
        }
        Ok(Loaded { certs, key })
    }
}

/// Checks at start that `loaded` is signed by `roots`, valid now, and valid for `name` both as
/// a server and as a client certificate: a node's own bad certificate is one error at start,
/// not refusals at every connection.
fn check_own(
    roots: &Arc<RootCertStore>,
    loaded: &Loaded,
    identity: &Identity,
    ca: &Path,
    name: &str,
) -> Result<(), TlsError> {
    let provider = provider();
    let now = UnixTime::now();
    let bad = |e: rustls::Error| {
        file_error(
            &identity.cert,
            format!("not valid for {name} under the CA {}: {e}", ca.display()),
        )
    };
    let (end, intermediates) = loaded
        .certs
        .split_first()
        .ok_or_else(|| file_error(&identity.cert, "no certificate in the file"))?;
    let client = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    client
        .verify_client_cert(end, intermediates, now)
        .map_err(bad)?;
    let server =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots.clone(), provider)
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
    let server_name =
        ServerName::try_from(name.to_string()).map_err(|e| TlsError::Config(e.to_string()))?;
    server
        .verify_server_cert(end, intermediates, &server_name, &[], now)
        .map_err(bad)?;
    Ok(())
}

/// Whether certificate `cert` carries the DNS name `name` (its chain is checked elsewhere).
fn subject_is(cert: &CertificateDer<'_>, name: &str) -> Result<(), String> {
    let parsed =
        webpki::EndEntityCert::try_from(cert).map_err(|e| format!("bad certificate: {e}"))?;
    let server_name = ServerName::try_from(name).map_err(|e| e.to_string())?;
    parsed
        .verify_is_valid_for_subject_name(&server_name)
        .map_err(|e| format!("not valid for {name}: {e}"))
}

/// Where a node's TLS files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeTlsFiles {
    pub ca: PathBuf,
    pub identity: Identity,
    /// Whether the client port requires a client certificate signed by the CA.
    pub client_cert_auth: bool,
}

/// A node's TLS configurations: its peer listener, its connections to peers, its client port.
#[derive(Clone, Debug)]
pub struct NodeTls {
    pub cluster_id: u64,
    pub(crate) peer_server: Arc<ServerConfig>,
    pub(crate) peer_client: Arc<ClientConfig>,
    pub(crate) client_server: Arc<ServerConfig>,
}

impl NodeTls {
    /// Loads and checks node `id`'s files (see the module doc).
    pub fn load(files: &NodeTlsFiles, id: u64, cluster_id: u64) -> Result<Self, TlsError> {
        let roots = load_roots(&files.ca)?;
        let loaded = files.identity.load()?;
        check_own(
            &roots,
            &loaded,
            &files.identity,
            &files.ca,
            &node_name(id, cluster_id),
        )?;
        let provider = provider();
        let config = |e: rustls::Error| TlsError::Config(e.to_string());
        let peers_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
        let mut peer_server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(config)?
            .with_client_cert_verifier(peers_verifier)
            .with_single_cert(loaded.certs.clone(), loaded.key.clone_key())
            .map_err(config)?;
        // Peers never resume: no session tickets to send (nor for their senders to ignore).
        peer_server.send_tls13_tickets = 0;
        let peer_client = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(config)?
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(loaded.certs.clone(), loaded.key.clone_key())
            .map_err(config)?;
        let clients = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(config)?;
        let clients = if files.client_cert_auth {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            clients.with_client_cert_verifier(verifier)
        } else {
            clients.with_no_client_auth()
        };
        let mut client_server = clients
            .with_single_cert(loaded.certs, loaded.key)
            .map_err(config)?;
        client_server.send_tls13_tickets = 0;
        Ok(NodeTls {
            cluster_id,
            peer_server: Arc::new(peer_server),
            peer_client: Arc::new(peer_client),
            client_server: Arc::new(client_server),
        })
    }

    /// The name peer `peer`'s listener must prove.
    pub(crate) fn peer_server_name(&self, peer: NodeId) -> Result<ServerName<'static>, String> {
        ServerName::try_from(node_name(peer.0, self.cluster_id)).map_err(|e| e.to_string())
    }

    /// Which of `peers` the verified client certificate `cert` names: exactly one, or an error.
    pub(crate) fn peer_of(
        &self,
        cert: &CertificateDer<'_>,
        peers: &[NodeId],
    ) -> Result<NodeId, String> {
        let named: Vec<NodeId> = peers
            .iter()
            .copied()
            .filter(|p| subject_is(cert, &node_name(p.0, self.cluster_id)).is_ok())
            .collect();
        match named.as_slice() {
            [one] => Ok(*one),
            [] => Err(format!(
                "the certificate names no node of cluster {} in the cluster file",
                self.cluster_id
            )),
            _ => Err("the certificate names more than one node".into()),
        }
    }
}

/// A client's TLS configuration: trust the CA in `ca`; present `identity` when given (for a
/// node that requires client certificates).
pub fn client_config(
    ca: &Path,
    identity: Option<&Identity>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = load_roots(ca)?;
    let config = |e: rustls::Error| TlsError::Config(e.to_string());
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config)?
        .with_root_certificates(roots.clone());
    let config = match identity {
        Some(identity) => {
            let loaded = identity.load()?;
            let end = loaded
                .certs
                .first()
                .ok_or_else(|| file_error(&identity.cert, "no certificate in the file"))?;
            // Signed by the CA and valid now: the node would refuse it otherwise.
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            verifier
                .verify_client_cert(end, &loaded.certs[1..], UnixTime::now())
                .map_err(|e| {
                    file_error(
                        &identity.cert,
                        format!(
                            "not a valid client certificate under the CA {}: {e}",
                            ca.display()
                        ),
                    )
                })?;
            builder
                .with_client_auth_cert(loaded.certs, loaded.key)
                .map_err(config)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The name a client verifies a node's client port for: its IP address (in every node
/// certificate made by `raft-cluster certs`).
pub fn server_name_of(addr: std::net::SocketAddr) -> ServerName<'static> {
    ServerName::IpAddress(addr.ip().into())
}
