//! Outbound peer connections: one thread per peer sends Raft messages, reconnecting with
//! exponential backoff. Messages that arrive while the peer is unreachable are dropped; Raft
//! retransmits (heartbeats, election timeouts, and a resend when the connection comes back).
//! With a cluster secret, each new connection first passes the handshake of [`crate::auth`]
//! (this node proves its id; the peer proves it holds the secret too); a connection that fails
//! it is closed and retried with backoff, with a rate-limited warning.

use super::Input;
use crate::auth::{self, ClusterSecret, RateLimitedLog};
use crate::kv::Command;
use crate::wire::{encode_frame, PeerFrame};
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
        }
    }

    fn fail(&mut self) {
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn run(mut self, queue: mpsc::Receiver<Message<Command>>) {
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            batch.extend(queue.try_iter());
            if !self.connected() {
                continue;
            }
            let mut bytes = Vec::new();
            for msg in batch {
                match encode_frame(&PeerFrame { from: self.me, msg }) {
                    Ok(frame) => bytes.extend_from_slice(&frame),
                    Err(e) => {
                        tracing::error!(peer = %self.peer, error = %e, "cannot encode message")
                    }
                }
            }
            if let Some(stream) = &mut self.stream {
                if let Err(e) = stream.write_all(&bytes) {
                    tracing::debug!(peer = %self.peer, error = %e, "send failed; reconnecting");
                    self.stream = None;
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
