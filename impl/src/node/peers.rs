//! Outbound peer connections: one thread per peer sends Raft messages, reconnecting with
//! exponential backoff. Messages that arrive while the peer is unreachable are dropped; Raft
//! retransmits (heartbeats, election timeouts, and a resend when the connection comes back).
//! With a cluster secret, each new connection first passes the handshake of [`crate::auth`]
//! (this node proves its id; the peer proves it holds the secret too); a connection that fails
//! it is closed and retried with backoff, with a rate-limited warning.
//!
//! An InstallSnapshot is streamed in chunks, one per write between the other messages
//! (`snapshot_transfer::Outgoing`): a heartbeat or a vote waits behind at most one chunk, and
//! the core's copies of the snapshot being streamed are dropped instead of queued.
//!
//! Direct sends: when nothing is queued for the thread and it is not writing, the event loop
//! writes a message into the connection itself, with a non-blocking send ([`PeerLink::send`]):
//! the sender thread is not woken for it (a wake-up per message on each side of every round
//! trip, measured at about a fifth of a loaded node's CPU). What does not fit the socket at
//! once, and every message while the thread has work queued or is writing, goes through the
//! queue, so the frames reach the peer whole and in the order they were sent.
//!
//! With TLS ([`crate::tls`]), each new connection first completes a mutual TLS handshake that
//! verifies the peer's certificate for its node name (a failure is logged, rate-limited, and
//! retried with backoff). A direct send then hands the frame whole to the TLS connection
//! and writes what the socket takes at once; the records left are written by the sender
//! thread ([`Outbound::Flush`]), before anything queued after them.

use super::input::Input;
use super::snapshot_transfer::Outgoing;
use crate::auth::{self, ClusterSecret, RateLimitedLog};
use crate::kv::Command;
use crate::tls::NodeTls;
use crate::tls_stream;
use crate::wire::{encode_frame, PeerFrame, PeerWire};
use raft_core::{Index, Message, NodeId, Term};
use rustls::{ClientConnection, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, TryLockError};
use std::thread;
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
const MIN_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What the sender thread writes, in order.
enum Outbound {
    Msg(Message<Command>),
    /// The rest of a frame whose start the event loop wrote (the socket took only part).
    Rest(Vec<u8>),
    /// TLS records of a direct send that the socket did not take at once (they wait in the
    /// connection).
    Flush,
    /// A frame of the snapshot transfer's own (`PeerWire::SnapshotProgress`, as a receiver).
    Wire(PeerWire),
    /// The peer holds the first `offset` bytes of the snapshot at `index` streamed to it in
    /// `term`: the stream continues there (`Outgoing::resume`).
    Resume {
        term: Term,
        index: Index,
        offset: u64,
    },
}

/// One outbound connection: plain TCP, or TLS over it.
pub(crate) enum PeerStream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// What a direct send left for the sender thread.
enum Left {
    Nothing,
    Rest(Vec<u8>),
    Flush,
}

impl PeerStream {
    /// Writes `bytes` whole (blocking, within the socket's write timeout), reading nothing.
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            PeerStream::Plain(s) => s.write_all(bytes),
            PeerStream::Tls(s) => tls_stream::write_all_no_read(s, bytes),
        }
    }

    /// Writes what TLS records are waiting (blocking, within the write timeout).
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            PeerStream::Plain(_) => Ok(()),
            PeerStream::Tls(s) => tls_stream::flush(&mut s.conn, &mut s.sock),
        }
    }

    /// Sends `frame` without waiting: what the socket does not take at once is left.
    fn send_no_wait(&mut self, frame: Vec<u8>) -> Left {
        match self {
            PeerStream::Plain(s) => {
                let flags = rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL;
                // A broken connection is the sender thread's to find (its write fails, it
                // reconnects): the frame goes to it whole.
                let written = rustix::net::send(&*s, &frame, flags).unwrap_or(0);
                if written < frame.len() {
                    Left::Rest(frame[written..].to_vec())
                } else {
                    Left::Nothing
                }
            }
            PeerStream::Tls(s) => {
                // Taken whole (the connection's buffer is unbounded); a broken connection
                // leaves its records, and the sender thread's flush finds the breakage.
                if s.conn.writer().write_all(&frame).is_err()
                    || !tls_stream::flush_no_wait(&mut s.conn, &s.sock)
                {
                    Left::Flush
                } else {
                    Left::Nothing
                }
            }
        }
    }
}

/// The connection to one peer, shared by its sender thread and the event loop.
struct Link {
    /// `None` while disconnected. The sender thread holds the lock while it writes (blocking,
    /// with a timeout); the event loop only ever tries the lock, and never blocks on it.
    stream: Mutex<Option<PeerStream>>,
    /// Items queued for the sender thread and not yet written (or dropped). The event loop is
    /// the only one that adds to it, and writes directly only when it is zero: every frame
    /// queued before is out, so the order holds.
    queued: AtomicUsize,
}

/// The event loop's handle on one peer: direct non-blocking sends, or the sender's queue.
pub(crate) struct PeerLink {
    queue: mpsc::Sender<Outbound>,
    link: Arc<Link>,
    me: NodeId,
    peer: NodeId,
}

impl PeerLink {
    /// Sends `msg` to the peer: written at once when the connection is idle and takes it
    /// whole, otherwise (and always for a snapshot, streamed in chunks) by the sender thread.
    pub(crate) fn send(&self, msg: Message<Command>) {
        if matches!(msg, Message::InstallSnapshot(_)) || self.link.queued.load(Ordering::SeqCst) > 0
        {
            return self.enqueue(Outbound::Msg(msg));
        }
        let mut guard = match self.link.stream.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            // The sender thread is writing.
            Err(TryLockError::WouldBlock) => return self.enqueue(Outbound::Msg(msg)),
        };
        let Some(stream) = guard.as_mut() else {
            // Disconnected: the thread drops it, or reconnects first (after its backoff).
            drop(guard);
            return self.enqueue(Outbound::Msg(msg));
        };
        let frame = match encode_frame(&PeerWire::Raft(PeerFrame { from: self.me, msg })) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(peer = %self.peer, error = %e, "cannot encode message");
                return;
            }
        };
        // Queued while the lock is held: the thread writes the rest before anything else.
        match stream.send_no_wait(frame) {
            Left::Nothing => {}
            Left::Rest(rest) => self.enqueue(Outbound::Rest(rest)),
            Left::Flush => self.enqueue(Outbound::Flush),
        }
    }

    /// Whether the connection is up, for the metrics; `None` while the sender thread holds
    /// it (writing, or checking it): the event loop never waits for that lock.
    pub(crate) fn is_connected(&self) -> Option<bool> {
        match self.link.stream.try_lock() {
            Ok(guard) => Some(guard.is_some()),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner().is_some()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Tells the peer, which streams this node a snapshot, how far this node got in it
    /// (queued behind the messages before it).
    pub(crate) fn send_progress(&self, term: Term, index: Index, offset: u64) {
        self.enqueue(Outbound::Wire(PeerWire::SnapshotProgress {
            from: self.me,
            term,
            index,
            offset,
        }));
    }

    /// The peer holds the first `offset` bytes of the snapshot this node streams it: the
    /// sender thread continues from there, if it still streams that snapshot.
    pub(crate) fn resume_snapshot(&self, term: Term, index: Index, offset: u64) {
        self.enqueue(Outbound::Resume {
            term,
            index,
            offset,
        });
    }

    fn enqueue(&self, item: Outbound) {
        self.link.queued.fetch_add(1, Ordering::SeqCst);
        if self.queue.send(item).is_err() {
            self.link.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Starts the sender thread for `peer`; returns the event loop's handle on it.
pub(crate) fn spawn_sender(
    me: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    secret: Option<Arc<ClusterSecret>>,
    tls: Option<Arc<NodeTls>>,
    events: mpsc::Sender<Input>,
) -> PeerLink {
    let (tx, rx) = mpsc::channel();
    let link = Arc::new(Link {
        stream: Mutex::new(None),
        queued: AtomicUsize::new(0),
    });
    let sender = PeerSender::new(me, peer, addr, secret, events, Arc::clone(&link));
    let sender = PeerSender { tls, ..sender };
    let spawned = thread::Builder::new()
        .name(format!("raft-send-{peer}"))
        .spawn(move || sender.run(rx));
    if let Err(e) = spawned {
        tracing::error!(%peer, error = %e, "cannot start peer sender thread");
    }
    PeerLink {
        queue: tx,
        link,
        me,
        peer,
    }
}

struct PeerSender {
    me: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    secret: Option<Arc<ClusterSecret>>,
    /// With TLS: each connection is mutual TLS (and the secret is not used).
    tls: Option<Arc<NodeTls>>,
    events: mpsc::Sender<Input>,
    /// The connection (shared with the event loop's direct sends).
    link: Arc<Link>,
    backoff: Duration,
    retry_at: Instant,
    auth_log: RateLimitedLog,
    /// The snapshot being streamed to the peer.
    snapshot: Outgoing,
}

impl PeerSender {
    fn new(
        me: NodeId,
        peer: NodeId,
        addr: SocketAddr,
        secret: Option<Arc<ClusterSecret>>,
        events: mpsc::Sender<Input>,
        link: Arc<Link>,
    ) -> Self {
        PeerSender {
            me,
            peer,
            addr,
            secret,
            tls: None,
            events,
            link,
            backoff: MIN_BACKOFF,
            retry_at: Instant::now(),
            auth_log: RateLimitedLog::new(LOG_EVERY),
            snapshot: Outgoing::new(),
        }
    }

    fn fail(&mut self) {
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn stream(&self) -> std::sync::MutexGuard<'_, Option<PeerStream>> {
        super::shared::lock(&self.link.stream)
    }

    fn run(mut self, queue: mpsc::Receiver<Outbound>) {
        loop {
            // While a snapshot is streaming, the queue is only looked at between chunks.
            let mut batch = Vec::new();
            if self.snapshot.busy() {
                match queue.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(mpsc::TryRecvError::Empty) => {}
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            } else {
                match queue.recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => return,
                }
            }
            batch.extend(queue.try_iter());
            let taken = batch.len();
            if !self.connected() {
                self.snapshot.reset();
                self.link.queued.fetch_sub(taken, Ordering::SeqCst);
                continue;
            }
            let now = Instant::now();
            let mut bytes = Vec::new();
            for item in batch {
                let frame = match item {
                    Outbound::Rest(rest) => Ok(rest),
                    // Written below, with every write.
                    Outbound::Flush => continue,
                    Outbound::Msg(Message::InstallSnapshot(m)) => {
                        let (index, len) = (m.snapshot.last_included_index, m.snapshot.data.len());
                        if self.snapshot.offer(m, now) {
                            tracing::info!(peer = %self.peer, index, bytes = len, "sending a snapshot");
                        } else {
                            tracing::trace!(peer = %self.peer, index, "a copy of the snapshot in flight dropped");
                        }
                        continue;
                    }
                    Outbound::Msg(msg) => {
                        encode_frame(&PeerWire::Raft(PeerFrame { from: self.me, msg }))
                    }
                    Outbound::Wire(wire) => encode_frame(&wire),
                    Outbound::Resume {
                        term,
                        index,
                        offset,
                    } => {
                        match self.snapshot.resume(term, index, offset) {
                            Ok(()) => {
                                tracing::info!(peer = %self.peer, index, offset, "snapshot stream resumed where the peer is")
                            }
                            Err(why) => {
                                tracing::info!(peer = %self.peer, index, offset, "snapshot progress ignored: {why}")
                            }
                        }
                        continue;
                    }
                };
                match frame {
                    Ok(frame) => bytes.extend_from_slice(&frame),
                    Err(e) => {
                        tracing::error!(peer = %self.peer, error = %e, "cannot encode message")
                    }
                }
            }
            if let Some(chunk) = self.snapshot.next_chunk(now) {
                let done = chunk.done();
                match encode_frame(&PeerWire::SnapshotChunk {
                    from: self.me,
                    chunk,
                }) {
                    Ok(frame) => bytes.extend_from_slice(&frame),
                    Err(e) => {
                        tracing::error!(peer = %self.peer, error = %e, "cannot encode a snapshot chunk");
                        self.snapshot.reset();
                    }
                }
                if done {
                    tracing::info!(peer = %self.peer, "snapshot sent");
                }
            }
            let mut stream = self.stream();
            let failed = match stream.as_mut() {
                Some(s) if !bytes.is_empty() => s.write_all(&bytes).err(),
                Some(s) => s.flush().err(),
                None => None,
            };
            if let Some(e) = &failed {
                tracing::debug!(peer = %self.peer, error = %e, "send failed; reconnecting");
                *stream = None;
            }
            // Written (or dropped with the connection) before the lock is released: the event
            // loop writes directly only after this.
            self.link.queued.fetch_sub(taken, Ordering::SeqCst);
            drop(stream);
            if failed.is_some() {
                self.snapshot.reset();
                self.retry_at = Instant::now() + self.backoff;
            }
        }
    }

    /// The TLS handshake of a new connection: the peer's certificate must be signed by the
    /// cluster's CA and name the peer (`node-<peer>.cluster-<id>.raft`). `None`: refused
    /// (logged, rate-limited).
    fn tls_connect(
        &self,
        tls: &NodeTls,
        stream: TcpStream,
    ) -> Option<StreamOwned<ClientConnection, TcpStream>> {
        let (peer, addr) = (self.peer, self.addr);
        let result = tls.peer_server_name(peer).and_then(|name| {
            tls_stream::connect(
                tls.peer_client.clone(),
                name,
                stream,
                auth::HANDSHAKE_TIMEOUT,
            )
            .map_err(|e| e.to_string())
        });
        let result = result.and_then(|mut s| {
            // The listener's word that it accepts this node's certificate (see
            // `tls::PEER_ACCEPTED`); a refusal is its alert, or the connection closed.
            let mut byte = [0u8];
            s.sock
                .set_read_timeout(Some(auth::HANDSHAKE_TIMEOUT))
                .and_then(|()| s.read_exact(&mut byte))
                .map_err(|e| {
                    format!(
                        "the peer did not accept this node's certificate (its log says why): {e}"
                    )
                })?;
            if byte[0] != crate::tls::PEER_ACCEPTED {
                return Err(format!(
                    "the peer sent {:#04x} instead of accepting",
                    byte[0]
                ));
            }
            Ok(s)
        });
        match result {
            Ok(mut s) => {
                tls_stream::unbounded(&mut s.conn);
                Some(s)
            }
            Err(e) => {
                self.auth_log.log(|suppressed| {
                    tracing::warn!(%peer, %addr, error = %e, suppressed, "peer TLS handshake failed; retrying")
                });
                None
            }
        }
    }

    /// Ensures a connection, unless the backoff since the last failure has not elapsed.
    fn connected(&mut self) -> bool {
        if self.stream().is_some() {
            return true;
        }
        let now = Instant::now();
        if now < self.retry_at {
            return false;
        }
        match TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let stream = match &self.tls {
                    Some(tls) => match self.tls_connect(tls, stream) {
                        Some(s) => PeerStream::Tls(Box::new(s)),
                        None => {
                            self.fail();
                            return false;
                        }
                    },
                    None => PeerStream::Plain(stream),
                };
                if let (PeerStream::Plain(stream), Some(secret)) = (&stream, &self.secret) {
                    if let Err(e) = auth::connect(stream, secret, self.me, self.peer) {
                        let (peer, addr) = (self.peer, self.addr);
                        self.auth_log.log(|suppressed| {
                            tracing::warn!(%peer, %addr, error = %e, suppressed, "peer handshake failed; retrying")
                        });
                        self.fail();
                        return false;
                    }
                    let _ = stream.set_read_timeout(None);
                }
                let socket = match &stream {
                    PeerStream::Plain(s) => s,
                    PeerStream::Tls(s) => &s.sock,
                };
                let _ = socket.set_read_timeout(None);
                let _ = socket.set_write_timeout(Some(WRITE_TIMEOUT));
                tracing::debug!(peer = %self.peer, addr = %self.addr, "connected");
                *self.stream() = Some(stream);
                // A new connection: the core resends what the peer needs, a snapshot from
                // its start.
                self.snapshot.reset();
                self.backoff = MIN_BACKOFF;
                let _ = self.events.send(Input::PeerConnected(self.peer));
                true
            }
            Err(e) => {
                tracing::debug!(peer = %self.peer, addr = %self.addr, error = %e, backoff_ms = self.backoff.as_millis() as u64, "connect failed");
                self.fail();
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Op;
    use crate::node::shared::tcp_pair;
    use crate::wire::read_frame;
    use raft_core::{AppendEntries, Entry};

    fn append(i: u64, value_bytes: usize) -> Message<Command> {
        Message::AppendEntries(AppendEntries {
            term: 1,
            prev_log_index: i,
            prev_log_term: 1,
            entries: vec![Entry {
                term: 1,
                command: Command {
                    client_id: 1,
                    seq: i,
                    op: Op::Put {
                        key: format!("k{i}"),
                        value: "v".repeat(value_bytes),
                    },
                },
            }],
            leader_commit: 0,
            read_round: 0,
        })
    }

    /// Direct sends and the sender thread's writes share one connection: with a reader too
    /// slow for the socket's buffer (partial direct writes, messages queued behind them), every
    /// frame still arrives whole and in the order sent.
    #[test]
    fn direct_and_queued_sends_arrive_whole_and_in_order() {
        let (sent, received) = tcp_pair();
        // A broken stream of frames fails the test instead of hanging it.
        received
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let addr = received.local_addr().unwrap();
        arrive_whole_and_in_order(PeerStream::Plain(sent), &received, addr);
    }

    /// The same over TLS: a direct send leaves records in the connection (`Outbound::Flush`)
    /// that the thread writes before what was queued after them.
    #[test]
    fn direct_and_queued_sends_arrive_whole_and_in_order_over_tls() {
        use crate::config::ClusterConfig;
        use crate::tls::{self, NodeTls, NodeTlsFiles};
        let dir = tempfile::tempdir().unwrap();
        let cluster = ClusterConfig::parse(
            "cluster_id = 3\n[[node]]\nid = 0\npeer_addr = \"127.0.0.1:1\"\nclient_addr = \"127.0.0.1:2\"\n\
             [[node]]\nid = 1\npeer_addr = \"127.0.0.1:3\"\nclient_addr = \"127.0.0.1:4\"\n",
        )
        .unwrap();
        crate::certs::write_cluster(dir.path(), &cluster, false).unwrap();
        let node = |id| {
            let files = NodeTlsFiles {
                ca: tls::ca_file(dir.path()),
                identity: tls::node_identity(dir.path(), id),
                client_cert_auth: false,
            };
            NodeTls::load(&files, id, 3).unwrap()
        };
        let (me, peer) = (node(0), node(1));
        let (sent, received) = tcp_pair();
        let addr = received.local_addr().unwrap();
        let config = peer.peer_server.clone();
        let accepting =
            thread::spawn(move || tls_stream::accept(config, received, Duration::from_secs(10)));
        let name = me.peer_server_name(NodeId(1)).unwrap();
        let mut sent =
            tls_stream::connect(me.peer_client.clone(), name, sent, Duration::from_secs(10))
                .unwrap();
        tls_stream::unbounded(&mut sent.conn);
        let mut received = accepting.join().unwrap().unwrap();
        received
            .sock
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        arrive_whole_and_in_order(PeerStream::Tls(Box::new(sent)), &mut received, addr);
    }

    fn arrive_whole_and_in_order(
        sent: PeerStream,
        mut reader: impl std::io::Read,
        addr: SocketAddr,
    ) {
        let (events, _inputs) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        let link = Arc::new(Link {
            stream: Mutex::new(Some(sent)),
            queued: AtomicUsize::new(0),
        });
        let sender = PeerSender::new(NodeId(0), NodeId(1), addr, None, events, Arc::clone(&link));
        let thread = thread::spawn(move || sender.run(rx));
        let handle = PeerLink {
            queue: tx,
            link,
            me: NodeId(0),
            peer: NodeId(1),
        };
        let count = 400;
        for i in 0..count {
            // Small and large (64 KiB) messages: the socket's buffer fills up.
            handle.send(append(i, if i % 3 == 0 { 64 * 1024 } else { 10 }));
        }
        for i in 0..count {
            let frame: PeerWire = read_frame(&mut reader).unwrap().expect("a frame");
            match frame {
                PeerWire::Raft(PeerFrame {
                    from,
                    msg: Message::AppendEntries(m),
                }) => {
                    assert_eq!(from, NodeId(0));
                    assert_eq!(m.prev_log_index, i, "in the order sent");
                }
                other => panic!("unexpected frame {other:?}"),
            }
        }
        // The thread counts a batch out after its last byte is written, so the reader can
        // see the last frame a moment before the count reaches 0: wait for it, bounded.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while handle.link.queued.load(Ordering::SeqCst) != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{} items still counted as queued after every frame arrived",
                handle.link.queued.load(Ordering::SeqCst)
            );
            thread::sleep(Duration::from_millis(1));
        }
        drop(handle);
        thread.join().unwrap();
    }
}
