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

use super::snapshot_transfer::Outgoing;
use super::Input;
use crate::auth::{self, ClusterSecret, RateLimitedLog};
use crate::kv::Command;
use crate::wire::{encode_frame, PeerFrame, PeerWire};
use raft_core::{Message, NodeId};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
const MIN_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Starts the sender thread for `peer`; returns the queue feeding it.
pub(crate) fn spawn_sender(
    me: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    secret: Option<Arc<ClusterSecret>>,
    events: mpsc::Sender<Input>,
) -> mpsc::Sender<Message<Command>> {
    let (tx, rx) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name(format!("raft-send-{peer}"))
        .spawn(move || PeerSender::new(me, peer, addr, secret, events).run(rx));
    if let Err(e) = spawned {
        tracing::error!(%peer, error = %e, "cannot start peer sender thread");
    }
    tx
}

struct PeerSender {
    me: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    secret: Option<Arc<ClusterSecret>>,
    events: mpsc::Sender<Input>,
    stream: Option<TcpStream>,
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
    ) -> Self {
        PeerSender {
            me,
            peer,
            addr,
            secret,
            events,
            stream: None,
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

    fn run(mut self, queue: mpsc::Receiver<Message<Command>>) {
        loop {
            // While a snapshot is streaming, the queue is only looked at between chunks.
            let mut batch = Vec::new();
            if self.snapshot.busy() {
                match queue.try_recv() {
                    Ok(msg) => batch.push(msg),
                    Err(mpsc::TryRecvError::Empty) => {}
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            } else {
                match queue.recv() {
                    Ok(msg) => batch.push(msg),
                    Err(_) => return,
                }
            }
            batch.extend(queue.try_iter());
            if !self.connected() {
                self.snapshot.reset();
                continue;
            }
            let now = Instant::now();
            let mut bytes = Vec::new();
            for msg in batch {
                let frame = match msg {
                    Message::InstallSnapshot(m) => {
                        let (index, len) = (m.snapshot.last_included_index, m.snapshot.data.len());
                        if self.snapshot.offer(m, now) {
                            tracing::info!(peer = %self.peer, index, bytes = len, "sending a snapshot");
                        } else {
                            tracing::trace!(peer = %self.peer, index, "a copy of the snapshot in flight dropped");
                        }
                        continue;
                    }
                    msg => encode_frame(&PeerWire::Raft(PeerFrame { from: self.me, msg })),
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
            if let Some(stream) = &mut self.stream {
                if let Err(e) = stream.write_all(&bytes) {
                    tracing::debug!(peer = %self.peer, error = %e, "send failed; reconnecting");
                    self.stream = None;
                    self.snapshot.reset();
                    self.retry_at = Instant::now() + self.backoff;
                }
            }
        }
    }

    /// Ensures a connection, unless the backoff since the last failure has not elapsed.
    fn connected(&mut self) -> bool {
        if self.stream.is_some() {
            return true;
        }
        let now = Instant::now();
        if now < self.retry_at {
            return false;
        }
        match TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                if let Some(secret) = &self.secret {
                    if let Err(e) = auth::connect(&stream, secret, self.me, self.peer) {
                        let (peer, addr) = (self.peer, self.addr);
                        self.auth_log.log(|suppressed| {
                            tracing::warn!(%peer, %addr, error = %e, suppressed, "peer handshake failed; retrying")
                        });
                        self.fail();
                        return false;
                    }
                    let _ = stream.set_read_timeout(None);
                }
                let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
                tracing::debug!(peer = %self.peer, addr = %self.addr, "connected");
                self.stream = Some(stream);
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
