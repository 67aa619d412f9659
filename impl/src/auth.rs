//! Peer authentication: a cluster secret and a mutual challenge–response handshake at the start
//! of every peer connection.
//!
//! ```text
//! connector (node a)                                   listener (node b)
//!   Hello { magic, version, from: a, to: b, nonce_c }  ->
//!                                                      <- Challenge { nonce_l, mac_l }
//!   Proof { mac_c }                                    ->
//!                                                      <- Welcome | Rejected { reason }
//! mac_l = HMAC-SHA256(secret, "raft-impl peer auth v1 listener"  | a | b | nonce_c | nonce_l)
//! mac_c = HMAC-SHA256(secret, "raft-impl peer auth v1 connector" | a | b | nonce_c | nonce_l)
//! ```
//!
//! Both nonces are 32 random bytes from the OS, fresh per connection, so no recorded handshake
//! can be replayed; the two labels differ, so a listener's answer cannot be reflected back as a
//! connector's proof; both node ids are under both MACs, so a proof made for one connection
//! (a → b) is worth nothing on another (c → b, or a → c). There is one secret for the whole
//! cluster: the handshake proves that the connecting side holds it, and so may speak as the id
//! it claims; any holder of the secret can claim any id (see the threat model in
//! impl/README.md). The
//! connector checks `mac_l` before it sends its proof (the listener proves it holds the secret
//! too); the listener checks `mac_c` in constant time. Handshake frames are the wire's
//! length-prefixed postcard frames, at most [`MAX_HANDSHAKE_FRAME`] bytes, and the whole
//! handshake must finish within [`HANDSHAKE_TIMEOUT`] of its start.

use crate::wire::{read_frame_limited, write_frame, WireError};
use hmac::{Hmac, Mac};
use raft_core::NodeId;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SECRET_LEN: usize = 32;
pub const NONCE_LEN: usize = 32;
pub const MAC_LEN: usize = 32;
/// The first bytes of every handshake: a peer frame sent without a handshake never has them.
pub const HANDSHAKE_MAGIC: [u8; 8] = *b"RAFTAUTH";
pub const HANDSHAKE_VERSION: u8 = 1;
/// The largest handshake frame (a `Rejected` reason included); larger is refused unread.
pub const MAX_HANDSHAKE_FRAME: usize = 256;
/// How long the whole handshake may take, on either side (a deadline, not a per-read timeout:
/// a peer trickling bytes cannot hold a connection slot longer).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

const LISTENER_LABEL: &[u8] = b"raft-impl peer auth v1 listener";
const CONNECTOR_LABEL: &[u8] = b"raft-impl peer auth v1 connector";

/// The cluster secret: 32 random bytes, stored as 64 hex digits in a file only its owner may
/// read.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret([u8; SECRET_LEN]);

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create secret file {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("secret file {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

impl ClusterSecret {
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Self {
        ClusterSecret(bytes)
    }

    /// A fresh secret from the operating system's random source.
    pub fn generate() -> Result<Self, SecretError> {
        let mut bytes = [0u8; SECRET_LEN];
        getrandom::fill(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(ClusterSecret(bytes))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 hex digits (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() != 2 * SECRET_LEN || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "expected {} hex digits, found {} characters",
                2 * SECRET_LEN,
                text.chars().count()
            ));
        }
        let mut bytes = [0u8; SECRET_LEN];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .map_err(|e| format!("bad hex digit: {e}"))?;
        }
        Ok(ClusterSecret(bytes))
    }

    /// Reads a secret file; refuses one that its group or others may read or write.
    pub fn load(path: &Path) -> Result<Self, SecretError> {
        let shown = path.display().to_string();
        let invalid = |message: String| SecretError::Invalid {
            path: shown.clone(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|source| SecretError::Read {
            path: shown.clone(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(invalid(format!(
                    "mode {mode:03o} lets group or others access it; run chmod 600 on it"
                )));
            }
        }
        if meta.len() > 1024 {
            return Err(invalid(format!("{} bytes: not a secret file", meta.len())));
        }
        let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text).map_err(invalid)
    }

    /// Generates a secret and writes it to a new file, readable only by its owner (mode 0600).
    /// An existing file is an error: it is never overwritten.
    pub fn create(path: &Path) -> Result<Self, SecretError> {
        let shown = path.display().to_string();
        let secret = Self::generate()?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let written = options.open(path).and_then(|mut file| {
            file.write_all(format!("{}\n", secret.to_hex()).as_bytes())?;
            file.sync_all()
        });
        written.map_err(|source| SecretError::Create {
            path: shown,
            source,
        })?;
        Ok(secret)
    }

    fn mac(&self, label: &[u8], from: NodeId, to: NodeId, nonces: &Nonces) -> Hmac<Sha256> {
        // A key of any length is valid for HMAC.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(label);
        mac.update(&from.0.to_le_bytes());
        mac.update(&to.0.to_le_bytes());
        mac.update(&nonces.connector);
        mac.update(&nonces.listener);
        mac
    }

    /// The MAC one side sends: `connector` true for the connecting node's proof.
    pub fn handshake_mac(
        &self,
        connector: bool,
        from: NodeId,
        to: NodeId,
        nonces: &Nonces,
    ) -> [u8; MAC_LEN] {
        let label = if connector {
            CONNECTOR_LABEL
        } else {
            LISTENER_LABEL
        };
        self.mac(label, from, to, nonces)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Checks a received MAC in constant time.
    fn verify(
        &self,
        connector: bool,
        from: NodeId,
        to: NodeId,
        nonces: &Nonces,
        mac: &[u8; MAC_LEN],
    ) -> bool {
        let label = if connector {
            CONNECTOR_LABEL
        } else {
            LISTENER_LABEL
        };
        self.mac(label, from, to, nonces).verify_slice(mac).is_ok()
    }
}

/// The two nonces of one handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nonces {
    pub connector: [u8; NONCE_LEN],
    pub listener: [u8; NONCE_LEN],
}

/// The handshake frames.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Handshake {
    Hello {
        magic: [u8; 8],
        version: u8,
        from: NodeId,
        to: NodeId,
        nonce: [u8; NONCE_LEN],
    },
    Challenge {
        nonce: [u8; NONCE_LEN],
        mac: [u8; MAC_LEN],
    },
    Proof {
        mac: [u8; MAC_LEN],
    },
    Welcome,
    Rejected {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error("the first frame is not a handshake (an unauthenticated peer frame?)")]
    NotAHandshake,
    #[error("handshake version {0} is not supported (this node speaks {HANDSHAKE_VERSION})")]
    Version(u8),
    #[error("unexpected handshake frame: {0}")]
    Unexpected(String),
    #[error("the connection ended during the handshake")]
    Closed,
    #[error("{from} is not a peer of this node")]
    NotAPeer { from: NodeId },
    #[error("the connection is for {to}, this node is {me}")]
    WrongNode { to: NodeId, me: NodeId },
    #[error("the listener did not prove that it holds the cluster secret (wrong secret?)")]
    ListenerProof,
    #[error("{from} did not prove that it holds the cluster secret (wrong secret?)")]
    ConnectorProof { from: NodeId },
    #[error("the listener rejected the handshake: {0}")]
    Rejected(String),
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

fn nonce() -> Result<[u8; NONCE_LEN], AuthError> {
    let mut n = [0u8; NONCE_LEN];
    getrandom::fill(&mut n).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(n)
}

/// Reads from a socket until a deadline for the whole handshake, however slowly bytes come.
struct Deadline<'a> {
    stream: &'a TcpStream,
    at: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut s = self.stream;
        s.read(buf)
    }
}

fn read_handshake(stream: &mut Deadline<'_>) -> Result<Handshake, AuthError> {
    match read_frame_limited::<Handshake>(stream, MAX_HANDSHAKE_FRAME) {
        Ok(Some(h)) => Ok(h),
        Ok(None) => Err(AuthError::Closed),
        Err(e) => Err(e.into()),
    }
}

fn set_timeouts(stream: &TcpStream, t: Option<Duration>) -> Result<(), AuthError> {
    stream.set_read_timeout(t).map_err(WireError::from)?;
    stream.set_write_timeout(t).map_err(WireError::from)?;
    Ok(())
}

/// The connecting side: proves to `peer` that this node (`me`) holds the secret, after
/// checking that `peer` holds it too. Leaves the stream's timeouts at [`HANDSHAKE_TIMEOUT`].
pub fn connect(
    stream: &TcpStream,
    secret: &ClusterSecret,
    me: NodeId,
    peer: NodeId,
) -> Result<(), AuthError> {
    set_timeouts(stream, Some(HANDSHAKE_TIMEOUT))?;
    let mut s = stream;
    let mut r = Deadline {
        stream,
        at: Instant::now() + HANDSHAKE_TIMEOUT,
    };
    let connector = nonce()?;
    write_frame(
        &mut s,
        &Handshake::Hello {
            magic: HANDSHAKE_MAGIC,
            version: HANDSHAKE_VERSION,
            from: me,
            to: peer,
            nonce: connector,
        },
    )?;
    let (listener, mac) = match read_handshake(&mut r)? {
        Handshake::Challenge { nonce, mac } => (nonce, mac),
        Handshake::Rejected { reason } => return Err(AuthError::Rejected(reason)),
        other => return Err(AuthError::Unexpected(format!("{other:?}"))),
    };
    let nonces = Nonces {
        connector,
        listener,
    };
    if !secret.verify(false, me, peer, &nonces, &mac) {
        return Err(AuthError::ListenerProof);
    }
    let proof = secret.handshake_mac(true, me, peer, &nonces);
    write_frame(&mut s, &Handshake::Proof { mac: proof })?;
    match read_handshake(&mut r)? {
        Handshake::Welcome => Ok(()),
        Handshake::Rejected { reason } => Err(AuthError::Rejected(reason)),
        other => Err(AuthError::Unexpected(format!("{other:?}"))),
    }
}

/// The listening side: returns the authenticated peer id, or why the connection must be
/// closed (after a best-effort `Rejected` frame). Clears the stream's timeouts on success.
pub fn accept(
    stream: &TcpStream,
    secret: &ClusterSecret,
    me: NodeId,
    peers: &[NodeId],
) -> Result<NodeId, AuthError> {
    set_timeouts(stream, Some(HANDSHAKE_TIMEOUT))?;
    let mut s = stream;
    let mut r = Deadline {
        stream,
        at: Instant::now() + HANDSHAKE_TIMEOUT,
    };
    let result = accept_inner(&mut s, &mut r, secret, me, peers);
    match &result {
        Ok(_) => set_timeouts(stream, None)?,
        Err(AuthError::Wire(_) | AuthError::Closed) => {}
        Err(e) => {
            let _ = write_frame(
                &mut s,
                &Handshake::Rejected {
                    reason: e.to_string(),
                },
            );
        }
    }
    result
}

fn accept_inner(
    s: &mut &TcpStream,
    r: &mut Deadline<'_>,
    secret: &ClusterSecret,
    me: NodeId,
    peers: &[NodeId],
) -> Result<NodeId, AuthError> {
    let hello = match read_frame_limited::<Handshake>(r, MAX_HANDSHAKE_FRAME) {
        Ok(Some(h)) => h,
        Ok(None) => return Err(AuthError::Closed),
        Err(WireError::Malformed(_) | WireError::TooLarge { .. }) => {
            return Err(AuthError::NotAHandshake)
        }
        Err(e) => return Err(e.into()),
    };
    let Handshake::Hello {
        magic,
        version,
        from,
        to,
        nonce: connector,
    } = hello
    else {
        return Err(AuthError::NotAHandshake);
    };
    if magic != HANDSHAKE_MAGIC {
        return Err(AuthError::NotAHandshake);
    }
    if version != HANDSHAKE_VERSION {
        return Err(AuthError::Version(version));
    }
    if to != me {
        return Err(AuthError::WrongNode { to, me });
    }
    if from == me || !peers.contains(&from) {
        return Err(AuthError::NotAPeer { from });
    }
    let nonces = Nonces {
        connector,
        listener: nonce()?,
    };
    let mac = secret.handshake_mac(false, from, me, &nonces);
    write_frame(
        s,
        &Handshake::Challenge {
            nonce: nonces.listener,
            mac,
        },
    )?;
    let proof = match read_handshake(r)? {
        Handshake::Proof { mac } => mac,
        other => return Err(AuthError::Unexpected(format!("{other:?}"))),
    };
    if !secret.verify(true, from, me, &nonces, &proof) {
        return Err(AuthError::ConnectorProof { from });
    }
    write_frame(s, &Handshake::Welcome)?;
    Ok(from)
}

/// Logs at most one warning per `every`, counting the ones it held back (for logs an attacker
/// can trigger at will).
pub(crate) struct RateLimitedLog {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimitedLog {
    pub(crate) fn new(every: Duration) -> Self {
        RateLimitedLog {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// Calls `log` with the number of suppressed earlier events, or counts this one.
    pub(crate) fn log(&self, log: impl FnOnce(u64)) {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        let due = state
            .0
            .is_none_or(|last| now.duration_since(last) >= self.every);
        if due {
            let suppressed = state.1;
            *state = (Some(now), 0);
            drop(state);
            log(suppressed);
        } else {
            state.1 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    fn secret(b: u8) -> ClusterSecret {
        ClusterSecret::from_bytes([b; SECRET_LEN])
    }

    /// Runs `accept` on one end and `connect` on the other.
    fn handshake(
        listener_secret: ClusterSecret,
        connector_secret: ClusterSecret,
        claimed: NodeId,
        target: NodeId,
    ) -> (Result<NodeId, AuthError>, Result<(), AuthError>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            accept(
                &stream,
                &listener_secret,
                NodeId(1),
                &[NodeId(0), NodeId(1), NodeId(2)],
            )
        });
        let stream = TcpStream::connect(addr).unwrap();
        let client = connect(&stream, &connector_secret, claimed, target);
        drop(stream);
        (server.join().unwrap(), client)
    }

    #[test]
    fn the_same_secret_authenticates_both_sides() {
        let (server, client) = handshake(secret(7), secret(7), NodeId(2), NodeId(1));
        assert_eq!(server.unwrap(), NodeId(2));
        client.unwrap();
    }

    #[test]
    fn a_wrong_secret_is_refused_by_the_connector_before_it_proves_anything() {
        let (server, client) = handshake(secret(7), secret(8), NodeId(2), NodeId(1));
        assert!(
            matches!(client, Err(AuthError::ListenerProof)),
            "{client:?}"
        );
        assert!(server.is_err());
    }

    #[test]
    fn non_members_and_misdirected_connections_are_rejected_with_a_reason() {
        let (server, client) = handshake(secret(7), secret(7), NodeId(9), NodeId(1));
        assert!(
            matches!(server, Err(AuthError::NotAPeer { .. })),
            "{server:?}"
        );
        assert!(
            matches!(&client, Err(AuthError::Rejected(r)) if r.contains("n9")),
            "{client:?}"
        );
        let (server, _) = handshake(secret(7), secret(7), NodeId(2), NodeId(0));
        assert!(
            matches!(server, Err(AuthError::WrongNode { .. })),
            "{server:?}"
        );
        let (server, _) = handshake(secret(7), secret(7), NodeId(1), NodeId(1));
        assert!(
            matches!(server, Err(AuthError::NotAPeer { .. })),
            "{server:?}"
        );
    }

    #[test]
    fn a_handshake_trickling_in_is_cut_off_at_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let t = Instant::now();
            let result = accept(&stream, &secret(7), NodeId(1), &[NodeId(0), NodeId(1)]);
            (result, t.elapsed())
        });
        let hello = crate::wire::encode_frame(&Handshake::Hello {
            magic: HANDSHAKE_MAGIC,
            version: HANDSHAKE_VERSION,
            from: NodeId(0),
            to: NodeId(1),
            nonce: [0; NONCE_LEN],
        })
        .unwrap();
        let mut stream = TcpStream::connect(addr).unwrap();
        // One byte every 250 ms: each read is quick, the whole would take 15 s.
        for byte in &hello {
            if server.is_finished() || stream.write_all(&[*byte]).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(250));
        }
        let (result, took) = server.join().unwrap();
        assert!(result.is_err());
        assert!(
            took < HANDSHAKE_TIMEOUT + Duration::from_secs(1),
            "held for {took:?}"
        );
    }

    #[test]
    fn macs_bind_the_role_both_ids_and_both_nonces() {
        let s = secret(1);
        let nonces = Nonces {
            connector: [1; NONCE_LEN],
            listener: [2; NONCE_LEN],
        };
        let base = s.handshake_mac(true, NodeId(0), NodeId(1), &nonces);
        assert!(s.verify(true, NodeId(0), NodeId(1), &nonces, &base));
        assert_ne!(base, s.handshake_mac(false, NodeId(0), NodeId(1), &nonces));
        assert_ne!(base, s.handshake_mac(true, NodeId(2), NodeId(1), &nonces));
        assert_ne!(base, s.handshake_mac(true, NodeId(0), NodeId(2), &nonces));
        let mut other = nonces;
        other.connector[0] ^= 1;
        assert_ne!(base, s.handshake_mac(true, NodeId(0), NodeId(1), &other));
        let mut other = nonces;
        other.listener[31] ^= 1;
        assert_ne!(base, s.handshake_mac(true, NodeId(0), NodeId(1), &other));
        assert_ne!(
            base,
            secret(2).handshake_mac(true, NodeId(0), NodeId(1), &nonces)
        );
    }

    #[test]
    fn secret_files_are_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.secret");
        let created = ClusterSecret::create(&path).unwrap();
        assert_eq!(ClusterSecret::load(&path).unwrap(), created);
        assert!(ClusterSecret::create(&path).is_err(), "never overwritten");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = ClusterSecret::load(&path).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
        assert!(ClusterSecret::parse("abc").is_err());
        assert!(ClusterSecret::parse(&"g".repeat(64)).is_err());
        assert_eq!(
            ClusterSecret::parse(&format!(" {}\n", created.to_hex())).unwrap(),
            created
        );
        assert_eq!(format!("{created:?}"), "ClusterSecret(..)");
    }
}
