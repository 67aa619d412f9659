//! Makes a cluster's certificates (`raft-cluster certs`, and `raft-cluster up` by default): a
//! CA, a certificate per node and one for clients, in one directory (file names:
//! [`crate::tls::ca_file`], [`crate::tls::node_identity`], [`crate::tls::client_identity`]).
//!
//! A node's certificate names it (`node-<id>.cluster-<cluster_id>.raft`, see [`crate::tls`])
//! and carries the IP addresses of its peer and client ports, so that a client verifies the
//! client port by address. Keys are ECDSA P-256, written with mode 0600; an existing file is
//! never overwritten unless asked (`--force`): a CA replaced under a running cluster would
//! cut every node off from its peers.

use crate::config::{ClusterConfig, NodeSpec};
use crate::tls;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{0} exists; use --force to replace it")]
    Exists(String),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

fn file_error(path: &Path, message: impl ToString) -> CertError {
    CertError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// The years a certificate is valid in (from January 1st of the first).
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    pub from_year: i32,
    pub until_year: i32,
}

impl Validity {
    /// From last year (a clock a little behind still accepts it) to ten years from now.
    pub fn default_from_now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // Within a year either way is enough here.
        let year = 1970 + (secs / 31_556_952) as i32;
        Validity {
            from_year: year - 1,
            until_year: year + 10,
        }
    }

    fn apply(&self, params: &mut CertificateParams) {
        params.not_before = rcgen::date_time_ymd(self.from_year, 1, 1);
        params.not_after = rcgen::date_time_ymd(self.until_year, 1, 1);
    }
}

/// A cluster's certificate authority.
pub struct Ca {
    cert: Certificate,
    key: KeyPair,
    cluster_id: u64,
}

/// A certificate and its key, in PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

fn ca_params(cluster_id: u64, validity: Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("raft cluster {cluster_id} CA"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity.apply(&mut params);
    params
}

impl Ca {
    /// A new CA for cluster `cluster_id`.
    pub fn generate(cluster_id: u64, validity: Validity) -> Result<Self, CertError> {
        let key = KeyPair::generate()?;
        let cert = ca_params(cluster_id, validity).self_signed(&key)?;
        Ok(Ca {
            cert,
            key,
            cluster_id,
        })
    }

    /// The CA of a certificates directory, from its key (to sign a certificate for one more
    /// node): the subject and key are the same as the written CA's, so what it signs chains
    /// to that CA.
    pub fn load(dir: &Path, cluster_id: u64) -> Result<Self, CertError> {
        let path = tls::ca_key_file(dir);
        let pem = std::fs::read_to_string(&path)
            .map_err(|e| file_error(&path, format!("cannot read the CA key: {e}")))?;
        let key = KeyPair::from_pem(&pem)
            .map_err(|e| file_error(&path, format!("not a usable PEM key: {e}")))?;
        let cert = ca_params(cluster_id, Validity::default_from_now()).self_signed(&key)?;
        Ok(Ca {
            cert,
            key,
            cluster_id,
        })
    }

    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    fn issue(&self, names: Vec<String>, validity: Validity) -> Result<Issued, CertError> {
        let mut params = CertificateParams::new(names.clone())?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        validity.apply(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Node `id`'s certificate, valid for its name and for `addrs` (its ports' addresses).
    pub fn node(&self, id: u64, addrs: &[IpAddr], validity: Validity) -> Result<Issued, CertError> {
        let mut names = vec![tls::node_name(id, self.cluster_id)];
        for addr in addrs {
            let addr = addr.to_string();
            if !names.contains(&addr) {
                names.push(addr);
            }
        }
        self.issue(names, validity)
    }

    /// The clients' certificate.
    pub fn client(&self, validity: Validity) -> Result<Issued, CertError> {
        self.issue(vec![tls::client_name(self.cluster_id)], validity)
    }
}

/// The IP addresses of node `spec`'s ports.
pub fn node_addrs(spec: &NodeSpec) -> Vec<IpAddr> {
    vec![spec.peer_addr.ip(), spec.client_addr.ip()]
}

/// Writes `contents` to a new file (`force`: replacing one), mode 0600 when `secret`.
fn write_new(path: &Path, contents: &str, secret: bool, force: bool) -> Result<(), CertError> {
    if path.exists() && !force {
        return Err(CertError::Exists(path.display().to_string()));
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(if secret { 0o600 } else { 0o644 });
        // A replaced file keeps its mode otherwise.
        if force && path.exists() {
            let mode = if secret { 0o600 } else { 0o644 };
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| file_error(path, e))?;
        }
    }
    options
        .open(path)
        .and_then(|mut f| {
            f.write_all(contents.as_bytes())?;
            f.sync_all()
        })
        .map_err(|e| file_error(path, format!("cannot write: {e}")))
}

fn write_issued(identity: &tls::Identity, issued: &Issued, force: bool) -> Result<(), CertError> {
    write_new(&identity.key, &issued.key_pem, true, force)?;
    write_new(&identity.cert, &issued.cert_pem, false, force)
}

/// The files `write_cluster` would write into `dir` for `cluster`.
pub fn cluster_files(dir: &Path, cluster: &ClusterConfig) -> Vec<PathBuf> {
    let mut files = vec![tls::ca_file(dir), tls::ca_key_file(dir)];
    for node in &cluster.nodes {
        let identity = tls::node_identity(dir, node.id);
        files.extend([identity.cert, identity.key]);
    }
    let client = tls::client_identity(dir);
    files.extend([client.cert, client.key]);
    files
}

/// Writes a new CA and the certificates of every node of `cluster` and of the clients into
/// `dir` (created if missing). Refuses (before writing anything) when one of the files exists,
/// unless `force`. Returns the files written.
pub fn write_cluster(
    dir: &Path,
    cluster: &ClusterConfig,
    force: bool,
) -> Result<Vec<PathBuf>, CertError> {
    let files = cluster_files(dir, cluster);
    if !force {
        if let Some(existing) = files.iter().find(|f| f.exists()) {
            return Err(CertError::Exists(existing.display().to_string()));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, format!("cannot create: {e}")))?;
    let validity = Validity::default_from_now();
    let ca = Ca::generate(cluster.cluster_id, validity)?;
    write_new(&tls::ca_key_file(dir), &ca.key_pem(), true, force)?;
    write_new(&tls::ca_file(dir), &ca.cert_pem(), false, force)?;
    for node in &cluster.nodes {
        let issued = ca.node(node.id, &node_addrs(node), validity)?;
        write_issued(&tls::node_identity(dir, node.id), &issued, force)?;
    }
    write_issued(&tls::client_identity(dir), &ca.client(validity)?, force)?;
    Ok(files)
}

/// Writes node `spec`'s certificate into `dir`, signed by the CA there (`ca.key`): for a node
/// added to a running cluster. Returns the files written.
pub fn write_node(
    dir: &Path,
    cluster_id: u64,
    spec: &NodeSpec,
    force: bool,
) -> Result<Vec<PathBuf>, CertError> {
    let identity = tls::node_identity(dir, spec.id);
    if !force {
        if let Some(existing) = [&identity.cert, &identity.key]
            .into_iter()
            .find(|f| f.exists())
        {
            return Err(CertError::Exists(existing.display().to_string()));
        }
    }
    let ca = Ca::load(dir, cluster_id)?;
    let issued = ca.node(spec.id, &node_addrs(spec), Validity::default_from_now())?;
    write_issued(&identity, &issued, force)?;
    Ok(vec![identity.cert, identity.key])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{NodeTls, NodeTlsFiles};

    fn cluster() -> ClusterConfig {
        ClusterConfig::parse(
            "cluster_id = 9\n[[node]]\nid = 0\npeer_addr = \"127.0.0.1:7000\"\nclient_addr = \"127.0.0.1:7100\"\n",
        )
        .unwrap()
    }

    fn files(dir: &Path, id: u64) -> NodeTlsFiles {
        NodeTlsFiles {
            ca: tls::ca_file(dir),
            identity: tls::node_identity(dir, id),
            client_cert_auth: true,
        }
    }

    #[test]
    fn written_certificates_load_and_name_their_node() {
        let dir = tempfile::tempdir().unwrap();
        let c = cluster();
        write_cluster(dir.path(), &c, false).unwrap();
        NodeTls::load(&files(dir.path(), 0), 0, 9).unwrap();
        // Node 0's certificate is not node 1's, nor a node of another cluster's.
        let wrong_id = NodeTls::load(&files(dir.path(), 0), 1, 9).unwrap_err();
        assert!(wrong_id.to_string().contains("node-0.pem"), "{wrong_id}");
        assert!(NodeTls::load(&files(dir.path(), 0), 0, 8).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(tls::node_identity(dir.path(), 0).key)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn existing_files_are_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let c = cluster();
        write_cluster(dir.path(), &c, false).unwrap();
        let ca = std::fs::read_to_string(tls::ca_file(dir.path())).unwrap();
        let err = write_cluster(dir.path(), &c, false).unwrap_err();
        assert!(matches!(err, CertError::Exists(_)), "{err}");
        assert_eq!(
            std::fs::read_to_string(tls::ca_file(dir.path())).unwrap(),
            ca
        );
        write_cluster(dir.path(), &c, true).unwrap();
        assert_ne!(
            std::fs::read_to_string(tls::ca_file(dir.path())).unwrap(),
            ca
        );
    }

    #[test]
    fn a_node_added_later_chains_to_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let c = cluster();
        write_cluster(dir.path(), &c, false).unwrap();
        let spec = NodeSpec {
            id: 5,
            peer_addr: "127.0.0.1:7005".parse().unwrap(),
            client_addr: "127.0.0.1:7105".parse().unwrap(),
            initial_member: false,
        };
        write_node(dir.path(), 9, &spec, false).unwrap();
        NodeTls::load(&files(dir.path(), 5), 5, 9).unwrap();
        assert!(write_node(dir.path(), 9, &spec, false).is_err());
    }

    #[test]
    fn an_expired_certificate_or_a_foreign_key_is_one_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let c = cluster();
        write_cluster(dir.path(), &c, false).unwrap();
        let ca = Ca::load(dir.path(), 9).unwrap();
        let old = Validity {
            from_year: 2000,
            until_year: 2001,
        };
        let expired = ca.node(0, &[], old).unwrap();
        let identity = tls::node_identity(dir.path(), 0);
        write_issued(&identity, &expired, true).unwrap();
        let err = NodeTls::load(&files(dir.path(), 0), 0, 9)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("node-0.pem") && err.contains("xpired"),
            "{err}"
        );
        // A key of another certificate.
        let other = ca.client(Validity::default_from_now()).unwrap();
        write_new(&identity.key, &other.key_pem, true, true).unwrap();
        let err = NodeTls::load(&files(dir.path(), 0), 0, 9)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("node-0.key") && err.contains("does not match"),
            "{err}"
        );
    }
}
