//! Inbound connections: a listener thread per port; a reader thread per peer connection; the
//! client connections go to the node's client poller (`client_poll.rs`). A malformed frame
//! closes the connection with a logged reason.
//!
//! Peers (at most [`MAX_PEER_CONNECTIONS`] at once): with a cluster secret, a connection must
//! first pass the handshake of [`crate::auth`] (within [`crate::auth::HANDSHAKE_TIMEOUT`]);
//! a frame on a connection that did not authenticate is dropped, logged (rate-limited) and
//! the connection closed, as is a frame that names another sender than the authenticated one.
//! With TLS ([`crate::tls`]), the handshake is mutual TLS instead (within the same timeout):
//! the peer's certificate must be signed by the cluster's CA and name exactly one node of the
//! cluster file, the connection's authenticated sender.
//!
//! Clients (at most `max_client_connections`, `client_table.rs`): when every slot is taken, a
//! new connection closes the connection that has been idle the longest (no request in
//! progress); only when every connection has a request waiting for the log is the new one
//! refused, with one `Error` frame ("busy"). Timeouts and request sizes: `client_poll.rs`.

use super::client_poll::ClientPoller;
use super::client_table::{Admission, ClientTable};
use super::input::Input;
use super::peer_book::KnownPeers;
use super::shared::lock;
use crate::auth::{self, ClusterSecret, RateLimitedLog};
use crate::tls::NodeTls;
use crate::tls_stream;
use crate::wire::{
    read_frame_timed, write_frame, ClientReply, PeerFrame, PeerWire, TimedStream, MAX_FRAME_LEN,
};
use raft_core::NodeId;
use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const MAX_PEER_CONNECTIONS: usize = 64;
pub const DEFAULT_MAX_CLIENT_CONNECTIONS: usize = 256;
/// How long a client connection may stay without a request.
pub const DEFAULT_CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one frame may take from its first byte to its last (client and peer ports).
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// At most one warning per this interval for events a remote party can cause at will.
const LOG_EVERY: Duration = Duration::from_secs(5);
/// How long a refused connection gets to take its one-frame answer.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_millis(200);
/// How long a refused TLS connection gets for its handshake.
const REFUSAL_TLS_TIME: Duration = Duration::from_secs(1);

/// What the listeners need to know.
#[derive(Clone, Debug)]
pub(crate) struct ListenOptions {
    pub me: NodeId,
    /// The ids frames may come from (the event loop adds the members it learns of).
    pub peers: KnownPeers,
    pub secret: Option<Arc<ClusterSecret>>,
    /// TLS on both ports (the secret is then not used).
    pub tls: Option<Arc<NodeTls>>,
    pub client_idle_timeout: Duration,
    pub frame_timeout: Duration,
    pub max_client_connections: usize,
}

/// Counts open connections of one kind; the slot is released when the guard drops.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        let previous = count.fetch_add(1, Ordering::SeqCst);
        if previous >= max {
            count.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(count.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Accepts connections and hands each accepted one to `admit` (which refuses it, starts its
/// thread, or hands it to the client poller).
fn accept_loop(
    listener: TcpListener,
    kind: &'static str,
    mut admit: impl FnMut(TcpStream) + Send + 'static,
) {
    let spawned = thread::Builder::new()
        .name(format!("raft-accept-{kind}"))
        .spawn(move || {
            for stream in listener.incoming() {
                let stream = match stream {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(kind, error = %e, "accept failed");
                        thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                admit(stream);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(kind, error = %e, "cannot start the accept thread");
    }
}

/// Raft messages from peers. The frame names its sender, which must be the authenticated peer
/// (with a secret) or at least a cluster member (without one).
pub(crate) fn spawn_peer_listener(
    listener: TcpListener,
    options: ListenOptions,
    events: mpsc::Sender<Input>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    let full_log = Arc::new(RateLimitedLog::new(LOG_EVERY));
    let auth_log = Arc::new(RateLimitedLog::new(LOG_EVERY));
    accept_loop(listener, "peer", move |stream| {
        let Some(slot) = Slot::take(&open, MAX_PEER_CONNECTIONS) else {
            full_log.log(|suppressed| {
                tracing::warn!(
                    max = MAX_PEER_CONNECTIONS,
                    suppressed,
                    "too many peer connections; closing a new one"
                )
            });
            return;
        };
        let options = options.clone();
        let events = events.clone();
        let auth_log = auth_log.clone();
        let spawned = thread::Builder::new()
            .name("raft-conn-peer".into())
            .spawn(move || {
                let _slot = slot;
                serve_peer(stream, &options, &events, &auth_log);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a peer connection thread");
        }
    });
}

fn serve_peer(
    stream: TcpStream,
    options: &ListenOptions,
    events: &mpsc::Sender<Input>,
    auth_log: &RateLimitedLog,
) {
    let remote = stream.peer_addr().ok();
    if let Some(tls) = &options.tls {
        let Some((stream, peer)) = tls_peer(stream, tls, options, auth_log) else {
            return;
        };
        tracing::debug!(?remote, %peer, "peer authenticated (TLS)");
        return read_peer_frames(
            BufReader::new(stream),
            Some(peer),
            options,
            events,
            auth_log,
        );
    }
    let authenticated = match &options.secret {
        Some(secret) => match auth::accept(&stream, secret, options.me, &options.peers.list()) {
            Ok(peer) => {
                tracing::debug!(?remote, %peer, "peer authenticated");
                Some(peer)
            }
            Err(e) => {
                auth_log.log(|suppressed| {
                    tracing::warn!(
                        ?remote,
                        error = %e,
                        suppressed,
                        "peer connection did not authenticate; its frames are dropped and it is closed"
                    )
                });
                return;
            }
        },
        None => None,
    };
    read_peer_frames(
        BufReader::new(stream),
        authenticated,
        options,
        events,
        auth_log,
    )
}

/// The TLS handshake of an inbound peer connection, and which peer its certificate names.
/// `None`: refused (logged, rate-limited).
fn tls_peer(
    stream: TcpStream,
    tls: &NodeTls,
    options: &ListenOptions,
    auth_log: &RateLimitedLog,
) -> Option<(
    rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    NodeId,
)> {
    let remote = stream.peer_addr().ok();
    let result = tls_stream::accept(tls.peer_server.clone(), stream, auth::HANDSHAKE_TIMEOUT)
        .map_err(|e| format!("TLS handshake: {e}"))
        .and_then(|mut s| {
            let cert = s
                .conn
                .peer_certificates()
                .and_then(|c| c.first())
                .ok_or("no client certificate")?;
            let peer = tls.peer_of(cert, &options.peers.list())?;
            s.write_all(&[crate::tls::PEER_ACCEPTED])
                .and_then(|()| s.flush())
                .map_err(|e| format!("cannot confirm the connection: {e}"))?;
            Ok((s, peer))
        });
    match result {
        Ok(found) => Some(found),
        Err(e) => {
            auth_log.log(|suppressed| {
                tracing::warn!(
                    ?remote,
                    error = %e,
                    suppressed,
                    "peer connection refused: no valid certificate of a node of this cluster"
                )
            });
            None
        }
    }
}

/// Reads a peer connection's frames into inputs until it closes or breaks. `authenticated`:
/// the only sender its frames may name (without one, any other node of the cluster file).
fn read_peer_frames<S: TimedStream + PeerAddr>(
    mut reader: BufReader<S>,
    authenticated: Option<NodeId>,
    options: &ListenOptions,
    events: &mpsc::Sender<Input>,
    auth_log: &RateLimitedLog,
) {
    let remote = reader.get_ref().peer_addr();
    loop {
        match read_frame_timed::<PeerWire, _>(
            &mut reader,
            MAX_FRAME_LEN,
            None,
            options.frame_timeout,
        ) {
            Ok(Some(wire)) => {
                let from = match &wire {
                    PeerWire::Raft(PeerFrame { from, .. })
                    | PeerWire::SnapshotChunk { from, .. }
                    | PeerWire::SnapshotProgress { from, .. } => *from,
                };
                let allowed = match authenticated {
                    Some(peer) => from == peer,
                    None => options.peers.contains(from) && from != options.me,
                };
                if !allowed {
                    auth_log.log(|suppressed| {
                        tracing::warn!(
                            ?remote,
                            %from,
                            authenticated = ?authenticated,
                            suppressed,
                            "frame from another sender than the connection's; dropped, closing"
                        )
                    });
                    return;
                }
                let input = match wire {
                    PeerWire::Raft(PeerFrame { from, msg }) => Input::Peer { from, msg },
                    PeerWire::SnapshotChunk { from, chunk } => {
                        if let Err(e) = super::snapshot_transfer::check(&chunk) {
                            tracing::warn!(?remote, %from, error = %e, "bad snapshot chunk; closing connection");
                            return;
                        }
                        Input::SnapshotChunk { from, chunk }
                    }
                    PeerWire::SnapshotProgress {
                        from,
                        term,
                        index,
                        offset,
                    } => Input::SnapshotProgress {
                        from,
                        term,
                        index,
                        offset,
                    },
                };
                if events.send(input).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(?remote, error = %e, "bad peer frame; closing connection");
                return;
            }
        }
    }
}

/// The remote address of a peer connection, for the log.
trait PeerAddr {
    fn peer_addr(&self) -> Option<std::net::SocketAddr>;
}

impl PeerAddr for TcpStream {
    fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        TcpStream::peer_addr(self).ok()
    }
}

impl PeerAddr for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.sock.peer_addr().ok()
    }
}

/// Answers a connection with one frame and closes it, without waiting long for a slow reader.
fn refuse(stream: &TcpStream, message: String) {
    let _ = stream.set_write_timeout(Some(REFUSAL_WRITE_TIMEOUT));
    let mut s = stream;
    let _ = write_frame(&mut s, &ClientReply::Error(message));
    let _ = stream.shutdown(Shutdown::Write);
}

/// Most TLS refusals under way at once (each on its own short-lived thread); beyond, a new
/// connection is closed without an answer.
const MAX_TLS_REFUSALS: usize = 8;

/// [`refuse`] over TLS: the handshake and the answer on a short-lived thread, within
/// [`REFUSAL_TLS_TIME`], so that the accept thread never waits on a client's handshake.
fn refuse_tls(stream: TcpStream, message: String, tls: &NodeTls, refusing: &Arc<AtomicUsize>) {
    let Some(slot) = Slot::take(refusing, MAX_TLS_REFUSALS) else {
        let _ = stream.shutdown(Shutdown::Both);
        return;
    };
    let config = tls.client_server.clone();
    let spawned = thread::Builder::new()
        .name("raft-refuse-tls".into())
        .spawn(move || {
            let _slot = slot;
            if let Ok(mut s) = tls_stream::accept(config, stream, REFUSAL_TLS_TIME) {
                let _ = s.sock.set_write_timeout(Some(REFUSAL_WRITE_TIMEOUT));
                if let Ok(frame) = crate::wire::encode_frame(&ClientReply::Error(message)) {
                    let _ = s.conn.writer().write_all(&frame);
                    s.conn.send_close_notify();
                    let _ = tls_stream::flush(&mut s.conn, &mut s.sock);
                }
                let _ = s.sock.shutdown(Shutdown::Write);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a thread to refuse a client connection");
    }
}

/// Client requests: admitted connections are read by the node's client poller
/// (`client_poll.rs`), which hands each request to the event loop.
pub(crate) fn spawn_client_listener(
    listener: TcpListener,
    options: ListenOptions,
    events: mpsc::Sender<Input>,
) -> std::io::Result<()> {
    let table = Arc::new(Mutex::new(ClientTable::new(
        options.max_client_connections.max(1),
    )));
    let poller = ClientPoller::spawn(
        Arc::clone(&table),
        events,
        options.client_idle_timeout,
        options.frame_timeout,
        options.tls.as_ref().map(|t| t.client_server.clone()),
    )?;
    let busy_log = Arc::new(RateLimitedLog::new(LOG_EVERY));
    let refusing = Arc::new(AtomicUsize::new(0));
    let evict_log = Arc::new(RateLimitedLog::new(LOG_EVERY));
    accept_loop(listener, "client", move |stream| {
        let handle = match stream.try_clone() {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "cannot register a client connection");
                return;
            }
        };
        let admission = lock(&table).admit(handle, Instant::now());
        let id = match admission {
            Admission::Admit { id, evicted } => {
                if let Some(evicted) = evicted {
                    evict_log.log(|suppressed| {
                        tracing::info!(
                            max = options.max_client_connections,
                            evicted,
                            suppressed,
                            "client connections full; closed the longest-idle one"
                        )
                    });
                }
                id
            }
            Admission::Busy => {
                busy_log.log(|suppressed| {
                    tracing::warn!(
                        max = options.max_client_connections,
                        suppressed,
                        "client connections full, every one with a request in progress; refusing a new one"
                    )
                });
                let message = format!(
                    "server busy: all {} client connections have a request in progress; retry",
                    options.max_client_connections
                );
                match &options.tls {
                    Some(tls) => refuse_tls(stream, message, tls, &refusing),
                    None => refuse(&stream, message),
                }
                return;
            }
        };
        if !poller.add(id, stream) {
            tracing::warn!("the client poller stopped; closing a new client connection");
            lock(&table).remove(id);
        }
    });
    Ok(())
}
