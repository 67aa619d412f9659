//! TLS at the process level: a 3-node TLS cluster (certificates from `raft_impl::certs`, as
//! `raft-cluster certs` makes them) serving raft-kv; peers and clients without a valid
//! certificate refused while the cluster keeps working; plaintext and garbage on TLS ports;
//! a node's own bad certificate refused at start with one line naming the file.

mod common;

use common::{kv, output_within, text, wait_until, write_cluster, Node, NODE};
use raft_impl::certs::{Ca, Validity};
use raft_impl::config::ClusterConfig;
use raft_impl::core::{Message, NodeId};
use raft_impl::kv::{Op, OpResult};
use raft_impl::tls;
use raft_impl::wire::{encode_frame, PeerFrame, PeerWire};
use rcgen::{CertificateParams, KeyPair};
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A running TLS cluster of `n` nodes in a temporary directory.
struct TlsCluster {
    dir: tempfile::TempDir,
    cluster: ClusterConfig,
    file: PathBuf,
    nodes: Vec<Node>,
}

impl TlsCluster {
    fn start(n: u64, client_cert_auth: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cluster, file) = write_cluster(dir.path(), n);
        // The node option (the cluster file's `client_cert_auth = true` says the same).
        let args: &[&str] = if client_cert_auth {
            &["--client-cert-auth"]
        } else {
            &[]
        };
        let nodes = (0..n)
            .map(|id| {
                Node::start_with(
                    id,
                    &file,
                    &dir.path().join(format!("node-{id}")),
                    &dir.path().join(format!("node-{id}.log")),
                    args,
                )
            })
            .collect();
        TlsCluster {
            dir,
            cluster,
            file,
            nodes,
        }
    }

    fn tls_dir(&self) -> PathBuf {
        self.dir.path().join("tls")
    }

    fn put_get(&self, key: &str, value: &str) {
        let put = kv(&self.file, &["put", key, value]);
        assert!(put.status.success(), "{put:?}\n{}", self.logs());
        let get = kv(&self.file, &["get", key]);
        assert_eq!(text(&get.stdout), format!("{value}\n"), "{get:?}");
    }

    fn leader(&self) -> String {
        let out = kv(&self.file, &["leader", "show"]);
        assert!(out.status.success(), "{out:?}\n{}", self.logs());
        text(&out.stdout)
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("--- node {i} ---\n{}", n.log_text()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Whether the other side closes `s` (end of stream or an error, such as a TLS alert) within
/// `within`; `false` when the connection is still open then.
fn closed_within(s: &mut impl Read, within: Duration, set_timeout: impl Fn(Duration)) -> bool {
    set_timeout(within);
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// `raft-kv --timeout-secs SECS --cluster FILE ARGS...`.
fn kv_within(file: &Path, secs: u64, args: &[&str]) -> std::process::Output {
    output_within(
        Command::new(common::KV)
            .args(["--timeout-secs", &secs.to_string(), "--cluster"])
            .arg(file)
            .args(args),
        Duration::from_secs(30),
    )
}

/// A RequestVote of the highest term, which no node may act on.
fn forged_vote(from: u64) -> Vec<u8> {
    encode_frame(&PeerWire::Raft(PeerFrame {
        from: NodeId(from),
        msg: Message::RequestVote(raft_impl::core::RequestVote {
            term: u64::MAX,
            last_log_index: u64::MAX,
            last_log_term: u64::MAX,
            transfer: false,
        }),
    }))
    .expect("encode")
}

/// A certificate and key (PEM) for `names`, signed by `issuer` or self-signed.
fn make_cert(
    names: &[String],
    issuer: Option<(&rcgen::Certificate, &KeyPair)>,
) -> (String, String) {
    let mut params = CertificateParams::new(names.to_vec()).expect("params");
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().expect("key");
    let cert = match issuer {
        Some((ca, ca_key)) => params.signed_by(&key, ca, ca_key),
        None => params.self_signed(&key),
    }
    .expect("certificate");
    (cert.pem(), key.serialize_pem())
}

/// The cluster's own CA, rebuilt from its key (same subject and key as `ca.pem`), to sign
/// certificates the cluster's tools never make (a node of another cluster id).
fn cluster_ca(dir: &Path, cluster_id: u64) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::from_pem(&fs::read_to_string(tls::ca_key_file(dir)).expect("ca.key"))
        .expect("the CA key");
    let mut params = CertificateParams::default();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("raft cluster {cluster_id} CA"),
    );
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let cert = params.self_signed(&key).expect("the CA rebuilt");
    (cert, key)
}

/// A client configuration trusting `ca` and presenting `identity` whatever it is (the
/// node, not this side, is to judge it).
fn presenting(
    ca: &Path,
    identity: &tls::Identity,
) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in tls::load_certs(ca).map_err(|e| e.to_string())? {
        roots.add(cert).map_err(|e| e.to_string())?;
    }
    let certs = tls::load_certs(&identity.cert).map_err(|e| e.to_string())?;
    let key = tls::load_key(&identity.key).map_err(|e| e.to_string())?;
    let config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| e.to_string())?;
    Ok(std::sync::Arc::new(config))
}

/// Writes a certificate and key into `dir` as `name.pem` and `name.key`.
fn write_identity(dir: &Path, name: &str, (cert, key): (String, String)) -> tls::Identity {
    let identity = tls::Identity {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    };
    fs::write(&identity.cert, cert).expect("write cert");
    fs::write(&identity.key, key).expect("write key");
    identity
}

/// A TLS connection to node 0's peer port as a peer presenting `identity` (verifying node
/// 0's certificate with the cluster's CA, as a real peer does). `None`: the handshake failed
/// on this side (the refusal came during it).
fn peer_connection(
    c: &TlsCluster,
    identity: &tls::Identity,
) -> Option<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let config = presenting(&tls::ca_file(&c.tls_dir()), identity).expect("a client configuration");
    let name = rustls_pki_types::ServerName::try_from(tls::node_name(0, c.cluster.cluster_id))
        .expect("a name");
    let socket = TcpStream::connect(c.cluster.nodes[0].peer_addr).expect("connect");
    raft_impl::tls_stream::connect(config, name, socket, Duration::from_secs(5)).ok()
}

#[test]
fn a_three_node_tls_cluster_serves_raft_kv_given_its_ca() {
    let c = TlsCluster::start(3, false);
    let ca = tls::ca_file(&c.tls_dir());
    let with_ca = |args: &[&str]| {
        let mut all = vec!["--ca", ca.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        kv(&c.file, &all)
    };
    let put = with_ca(&["put", "greeting", "hello"]);
    assert!(put.status.success(), "{put:?}\n{}", c.logs());
    let get = with_ca(&["get", "greeting"]);
    assert_eq!(text(&get.stdout), "hello\n", "{get:?}");
    // The client library too, through every node (following the leader's hint).
    assert_eq!(
        common::execute(
            &c.cluster,
            Op::Get {
                key: "greeting".into()
            },
            Duration::from_secs(10)
        ),
        OpResult::Value(Some("hello".into()))
    );
    // The bench's threads speak TLS (its report says so); its poll-driven clients do not, and
    // say so before connecting.
    let report = c.dir.path().join("bench.json");
    let bench = kv(
        &c.file,
        &[
            "bench",
            "--io",
            "threads",
            "--clients",
            "2",
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--json",
            report.to_str().expect("utf-8"),
        ],
    );
    assert!(bench.status.success(), "{bench:?}");
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&report).expect("the report")).expect("json");
    assert_eq!(json["options"]["tls"], true, "{json}");
    assert!(json["ops"].as_u64().unwrap_or(0) > 0, "{json}");
    let poll = kv(&c.file, &["bench", "--io", "poll", "--duration", "1"]);
    assert_eq!(poll.status.code(), Some(2), "{poll:?}");
    assert!(text(&poll.stderr).contains("--io threads"), "{poll:?}");
    // A CA that did not sign the nodes' certificates: refused at connect, saying why.
    let other = tempfile::tempdir().expect("temp dir");
    let other_ca =
        Ca::generate(c.cluster.cluster_id + 1, Validity::default_from_now()).expect("ca");
    let other_ca_file = other.path().join("ca.pem");
    fs::write(&other_ca_file, other_ca.cert_pem()).expect("write");
    let out = output_within(
        Command::new(common::KV)
            .args(["--timeout-secs", "2", "--ca"])
            .arg(&other_ca_file)
            .arg("--cluster")
            .arg(&c.file)
            .args(["get", "greeting"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("UnknownIssuer"),
        "the refusal names the reason: {}",
        text(&out.stderr)
    );
}

#[test]
fn peers_without_a_valid_certificate_are_refused_and_the_cluster_keeps_working() {
    let c = TlsCluster::start(3, false);
    c.put_get("before", "1");
    let leader = c.leader();
    let tls_dir = c.tls_dir();
    let attack = tempfile::tempdir().expect("temp dir");
    let cid = c.cluster.cluster_id;
    let (ca, ca_key) = cluster_ca(&tls_dir, cid);
    let other_ca = Ca::generate(cid, Validity::default_from_now()).expect("ca");
    let other_ca_dir = attack.path().join("other");
    fs::create_dir(&other_ca_dir).expect("mkdir");
    let foreign = other_ca
        .node(1, &[], Validity::default_from_now())
        .expect("cert");
    let expired = Ca::load(&tls_dir, cid)
        .expect("the CA")
        .node(
            1,
            &[],
            Validity {
                from_year: 2000,
                until_year: 2001,
            },
        )
        .expect("cert");
    // The expired one first: the refusals' warnings are rate-limited, and this one's reason
    // is checked in the log below.
    let bad = [
        ("expired", (expired.cert_pem, expired.key_pem)),
        ("self-signed", make_cert(&[tls::node_name(1, cid)], None)),
        ("another CA's", (foreign.cert_pem, foreign.key_pem)),
        (
            "another cluster's",
            make_cert(&[tls::node_name(1, cid + 1)], Some((&ca, &ca_key))),
        ),
    ];
    for (what, pem) in bad {
        let identity = write_identity(attack.path(), &what.replace(' ', "-"), pem);
        if let Some(mut s) = peer_connection(&c, &identity) {
            // TLS 1.3: the client's side may finish before the server judges its
            // certificate; the connection is then closed at once.
            let _ = s.write_all(&forged_vote(1));
            let _ = s.flush();
            let sock = s.sock.try_clone().expect("clone");
            assert!(
                closed_within(&mut s, Duration::from_secs(5), |t| {
                    let _ = sock.set_read_timeout(Some(t));
                }),
                "a peer with a {what} certificate kept its connection"
            );
        }
    }
    // Another node's certificate (node 2's), its frames naming node 1: dropped, closed.
    let node2 = tls::node_identity(&tls_dir, 2);
    let mut s = peer_connection(&c, &node2).expect("node 2's certificate is accepted");
    let sock = s.sock.try_clone().expect("clone");
    let timeout = |t| {
        let _ = sock.set_read_timeout(Some(t));
    };
    assert!(
        !closed_within(&mut s, Duration::from_millis(500), timeout),
        "a valid peer certificate keeps its connection"
    );
    s.write_all(&forged_vote(1)).expect("send");
    s.flush().expect("flush");
    assert!(
        closed_within(&mut s, Duration::from_secs(5), timeout),
        "a frame naming another sender than the certificate's closes the connection"
    );
    // Several election timeouts later, the same leader serves: no forged term was taken.
    std::thread::sleep(Duration::from_secs(2));
    c.put_get("after", "2");
    assert_eq!(c.leader(), leader);
    let log = c.nodes[0].log_text();
    assert!(log.contains("peer connection refused"), "{log}");
    assert!(log.contains("xpired"), "the expiry is named: {log}");
}

#[test]
fn a_client_without_the_required_client_certificate_is_refused() {
    let c = TlsCluster::start(3, true);
    let tls_dir = c.tls_dir();
    let ca = tls::ca_file(&tls_dir);
    let client = tls::client_identity(&tls_dir);
    // The cluster file's defaults: the CA and client.pem: served.
    c.put_get("k", "v");
    // The CA only: refused.
    let out = kv_within(&c.file, 2, &["--ca", ca.to_str().unwrap(), "get", "k"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // Explicit certificate and key: served.
    let out = kv(
        &c.file,
        &[
            "--ca",
            ca.to_str().unwrap(),
            "--cert",
            client.cert.to_str().unwrap(),
            "--key",
            client.key.to_str().unwrap(),
            "get",
            "k",
        ],
    );
    assert_eq!(text(&out.stdout), "v\n", "{out:?}");
    // A self-signed client certificate: refused by raft-kv before it connects, naming it.
    let attack = tempfile::tempdir().expect("temp dir");
    let fake = write_identity(
        attack.path(),
        "fake",
        make_cert(&[tls::client_name(c.cluster.cluster_id)], None),
    );
    let out = kv(
        &c.file,
        &[
            "--ca",
            ca.to_str().unwrap(),
            "--cert",
            fake.cert.to_str().unwrap(),
            "--key",
            fake.key.to_str().unwrap(),
            "get",
            "k",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("fake.pem"), "{out:?}");
    // ... and by the node, when presented anyway.
    let config = presenting(&ca, &fake).expect("config");
    let mut fooled =
        raft_impl::client::Client::new(c.cluster.client_addrs()).with_tls(Some(config));
    assert!(fooled
        .execute(Op::Get { key: "k".into() }, Duration::from_secs(2))
        .is_err());
    c.put_get("k2", "still serving");
}

#[test]
fn plaintext_or_garbage_on_tls_ports_is_refused_and_the_node_keeps_serving() {
    let c = TlsCluster::start(3, false);
    c.put_get("before", "1");
    let get = encode_frame(&raft_impl::wire::ClientRequest::Command(
        raft_impl::kv::Command {
            client_id: 1,
            seq: 1,
            op: Op::Get {
                key: "before".into(),
            },
        },
    ))
    .expect("encode");
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut ports: Vec<SocketAddr> = Vec::new();
    for spec in &c.cluster.nodes {
        ports.extend([spec.client_addr, spec.peer_addr]);
    }
    for addr in ports {
        for (what, bytes) in [
            ("a plaintext request", &get),
            ("garbage", &garbage),
            ("a plaintext peer frame", &forged_vote(1)),
        ] {
            let mut s = TcpStream::connect(addr).expect("connect");
            let _ = s.write_all(bytes);
            let sock = s.try_clone().expect("clone");
            let mut answer = Vec::new();
            let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
            let closed = match (&s).read_to_end(&mut answer) {
                Ok(_) => true,
                Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            };
            assert!(closed, "{what} on {addr}: the connection stayed open");
            // Whatever came back is a TLS alert record at most, never an answer frame.
            assert!(
                answer.is_empty() || answer[0] == 0x15,
                "{what} on {addr}: got {answer:?}"
            );
        }
    }
    c.put_get("after", "2");
    assert!(c.nodes.iter().all(|n| n.log_text().contains("TLS")));
}

#[test]
fn a_nodes_own_bad_certificate_is_one_error_at_start_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cluster, file) = write_cluster(dir.path(), 1);
    let tls_dir = dir.path().join("tls");
    let identity = tls::node_identity(&tls_dir, 0);
    let start = || {
        output_within(
            Command::new(NODE)
                .args(["--id", "0", "--cluster"])
                .arg(&file)
                .arg("--data-dir")
                .arg(dir.path().join("node-0")),
            Duration::from_secs(30),
        )
    };
    let check = |what: &str, must: &[&str]| {
        let out = start();
        assert_eq!(out.status.code(), Some(2), "{what}: {out:?}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
        for m in must {
            assert!(err.contains(m), "{what}: {err} should say {m}");
        }
    };
    let ca = Ca::load(&tls_dir, cluster.cluster_id).expect("the CA");
    let good = (
        fs::read_to_string(&identity.cert).unwrap(),
        fs::read_to_string(&identity.key).unwrap(),
    );
    // Expired.
    let old = ca
        .node(
            0,
            &[],
            Validity {
                from_year: 2000,
                until_year: 2001,
            },
        )
        .expect("cert");
    fs::write(&identity.cert, &old.cert_pem).unwrap();
    fs::write(&identity.key, &old.key_pem).unwrap();
    check("expired", &["node-0.pem", "xpired"]);
    // Another node's certificate.
    let other = ca.node(1, &[], Validity::default_from_now()).expect("cert");
    fs::write(&identity.cert, &other.cert_pem).unwrap();
    fs::write(&identity.key, &other.key_pem).unwrap();
    check(
        "another node's",
        &["node-0.pem", &tls::node_name(0, cluster.cluster_id)],
    );
    // A key that is not the certificate's.
    fs::write(&identity.cert, &good.0).unwrap();
    fs::write(&identity.key, &other.key_pem).unwrap();
    check("foreign key", &["node-0.key", "does not match"]);
    // A CA that did not sign it.
    fs::write(&identity.key, &good.1).unwrap();
    let stranger = Ca::generate(cluster.cluster_id + 1, Validity::default_from_now()).expect("ca");
    fs::write(tls::ca_file(&tls_dir), stranger.cert_pem()).unwrap();
    check("wrong CA", &["node-0.pem", "UnknownIssuer"]);
    // Not PEM at all.
    fs::write(tls::ca_file(&tls_dir), "not a certificate").unwrap();
    check("garbage CA", &["ca.pem"]);
    // No TLS table and no --insecure: refused, saying how to fix it.
    let mut plain = cluster.clone();
    plain.tls = None;
    fs::write(&file, plain.to_toml()).unwrap();
    check("no TLS", &["--insecure", "raft-cluster certs"]);
    // With --insecure: it runs (and warns).
    let log = dir.path().join("insecure.log");
    let mut node = Node::start_with(0, &file, &dir.path().join("node-0"), &log, &["--insecure"]);
    assert!(wait_until(Duration::from_secs(20), || node
        .log_text()
        .contains("without TLS")));
    assert!(node.is_running());
}

#[test]
fn raft_cluster_certs_writes_private_keys_and_keeps_existing_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut cluster, file) = common::write_insecure_cluster(dir.path(), 2);
    cluster.insecure = false;
    fs::write(&file, cluster.to_toml()).expect("rewrite");
    let certs = |extra: &[&str]| {
        output_within(
            Command::new(common::CLUSTER)
                .args(["certs", "--cluster"])
                .arg(&file)
                .args(extra),
            Duration::from_secs(30),
        )
    };
    let out = certs(&[]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains("[tls]"),
        "says what to add: {out:?}"
    );
    let tls_dir = dir.path().join("tls");
    for id in 0..2 {
        let identity = tls::node_identity(&tls_dir, id);
        assert!(identity.cert.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&identity.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "node {id}'s key is private");
        }
    }
    let ca = fs::read_to_string(tls::ca_file(&tls_dir)).unwrap();
    let again = certs(&[]);
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    assert!(text(&again.stderr).contains("--force"), "{again:?}");
    assert_eq!(fs::read_to_string(tls::ca_file(&tls_dir)).unwrap(), ca);
    // One more node, signed by the same CA.
    let more = certs(&[
        "--node",
        "7",
        "--peer-addr",
        "127.0.0.1:7007",
        "--client-addr",
        "127.0.0.1:7107",
    ]);
    assert!(more.status.success(), "{more:?}");
    let files = tls::NodeTlsFiles {
        ca: tls::ca_file(&tls_dir),
        identity: tls::node_identity(&tls_dir, 7),
        client_cert_auth: false,
    };
    tls::NodeTls::load(&files, 7, cluster.cluster_id).expect("node 7's certificate is valid");
    let forced = certs(&["--force"]);
    assert!(forced.status.success(), "{forced:?}");
    assert_ne!(fs::read_to_string(tls::ca_file(&tls_dir)).unwrap(), ca);
}

#[test]
fn raft_cluster_up_starts_a_tls_cluster_by_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut up = Command::new(common::CLUSTER)
        .args(["up", "--nodes", "3", "--dir"])
        .arg(dir.path())
        .arg("--node-bin")
        .arg(NODE)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn raft-cluster");
    let file = dir.path().join("cluster.toml");
    assert!(wait_until(Duration::from_secs(20), || file.exists()));
    let cluster = common::load_cluster(&file);
    assert!(
        cluster.tls.is_some(),
        "the cluster file names its certificates"
    );
    assert!(!dir.path().join("cluster.secret").exists());
    let put = kv(&file, &["put", "k", "tls"]);
    assert!(put.status.success(), "{put:?}");
    assert_eq!(
        common::execute(
            &cluster,
            Op::Get { key: "k".into() },
            Duration::from_secs(10)
        ),
        OpResult::Value(Some("tls".into()))
    );
    // A plaintext client cannot talk to it.
    let mut plain = raft_impl::client::Client::new(cluster.client_addrs());
    assert!(plain
        .execute(Op::Get { key: "k".into() }, Duration::from_secs(1))
        .is_err());
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(up.id().to_string())
        .status();
    let status = common::wait_exit(&mut up, Duration::from_secs(20)).expect("raft-cluster stops");
    assert!(status.success(), "{status}");
}

/// Two commands written on one TLS connection before either answer is read: both arrive in
/// one read, the second is held (decrypted, in the connection or the poller's buffer) until
/// the first is answered, and both are answered in order.
#[test]
fn two_commands_on_one_tls_connection_are_answered_in_order() {
    use raft_impl::wire::{read_frame, ClientReply, ClientRequest};
    let c = TlsCluster::start(3, false);
    let mut client = common::client(&c.cluster);
    client
        .leader_info(Duration::from_secs(10))
        .expect("a leader");
    let leader = client.leader().expect("the leader's address");
    let config = raft_impl::client::tls_config_for(&c.cluster, &c.file, None, None)
        .expect("config")
        .expect("a TLS cluster");
    let socket = TcpStream::connect(leader).expect("connect");
    let mut stream = raft_impl::tls_stream::connect(
        config,
        tls::server_name_of(leader),
        socket,
        Duration::from_secs(10),
    )
    .expect("a TLS connection");
    let command = |seq, value: &str| {
        ClientRequest::Command(raft_impl::kv::Command {
            client_id: 77,
            seq,
            op: Op::Put {
                key: "greeting".into(),
                value: value.into(),
            },
        })
    };
    let mut both = encode_frame(&command(1, "one")).unwrap();
    both.extend(encode_frame(&command(2, "two")).unwrap());
    stream.write_all(&both).expect("write both");
    stream.flush().expect("flush");
    stream
        .sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // A put answers the value it replaced.
    for previous in [None, Some("one".to_string())] {
        let reply: ClientReply = read_frame(&mut stream).expect("an answer").expect("open");
        assert_eq!(
            reply,
            ClientReply::Ok(OpResult::Value(previous)),
            "{}",
            c.logs()
        );
    }
    assert_eq!(
        common::execute(
            &c.cluster,
            Op::Get {
                key: "greeting".into()
            },
            Duration::from_secs(10)
        ),
        OpResult::Value(Some("two".into()))
    );
}

/// A node whose certificate its peers refuse after the TLS handshake (its id is not in their
/// cluster file) learns it at connect, and logs the refusal, instead of taking the connection
/// for a good one.
#[test]
fn a_connector_whose_certificate_the_listener_refuses_logs_it_at_connect() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cluster, file) = write_cluster(dir.path(), 3);
    // Nodes 1 and 2 know only each other.
    let mut pair = cluster.clone();
    pair.nodes.retain(|n| n.id != 0);
    let pair_file = dir.path().join("pair.toml");
    fs::write(&pair_file, pair.to_toml()).expect("write");
    let node = |id: u64, file: &Path| {
        Node::start(
            id,
            file,
            &dir.path().join(format!("node-{id}")),
            &dir.path().join(format!("node-{id}.log")),
        )
    };
    let outsider = node(0, &file);
    let others = [node(1, &pair_file), node(2, &pair_file)];
    assert!(
        wait_until(Duration::from_secs(20), || outsider
            .log_text()
            .contains("did not accept this node's certificate")),
        "{}",
        outsider.log_text()
    );
    assert!(others
        .iter()
        .any(|n| n.log_text().contains("names no node of cluster")));
    // The two that know each other serve.
    let put = kv(&pair_file, &["put", "k", "v"]);
    assert!(put.status.success(), "{put:?}");
}
