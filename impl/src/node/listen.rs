//! Inbound connections: a listener thread per port, a reader thread per connection (at most
//! [`MAX_PEER_CONNECTIONS`] / [`MAX_CLIENT_CONNECTIONS`] at once). A malformed frame closes the
//! connection with a logged reason.

use super::Input;
use crate::wire::{read_frame, write_frame, ClientReply, ClientRequest, PeerFrame};
use raft_core::NodeId;
use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

pub const MAX_PEER_CONNECTIONS: usize = 64;
pub const MAX_CLIENT_CONNECTIONS: usize = 256;
/// How long a client connection waits for its command to be committed before answering
/// `Error` (the client then retries with the same seq).
const CLIENT_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

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

fn accept_loop(
    listener: TcpListener,
    kind: &'static str,
    max: usize,
    serve: impl Fn(TcpStream) + Clone + Send + 'static,
) {
    let open = Arc::new(AtomicUsize::new(0));
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
                let Some(slot) = Slot::take(&open, max) else {
                    tracing::warn!(kind, max, "too many connections; closing a new one");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let serve = serve.clone();
                let spawned = thread::Builder::new()
                    .name(format!("raft-conn-{kind}"))
                    .spawn(move || {
                        let _slot = slot;
                        serve(stream);
                    });
                if let Err(e) = spawned {
                    tracing::warn!(kind, error = %e, "cannot start a connection thread");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(kind, error = %e, "cannot start the accept thread");
    }
}

/// Raft messages from peers. The frame names its sender, which must be a cluster member.
pub(crate) fn spawn_peer_listener(
    listener: TcpListener,
    peers: Vec<NodeId>,
    events: mpsc::Sender<Input>,
) {
    accept_loop(listener, "peer", MAX_PEER_CONNECTIONS, move |stream| {
        let remote = stream.peer_addr().ok();
        let mut reader = BufReader::new(stream);
        loop {
            match read_frame::<PeerFrame>(&mut reader) {
                Ok(Some(PeerFrame { from, msg })) => {
                    if !peers.contains(&from) {
                        tracing::warn!(?remote, %from, "message from a non-member; closing");
                        return;
                    }
                    if events.send(Input::Peer { from, msg }).is_err() {
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
    });
}

/// Client requests: each is handed to the event loop and answered once it is applied.
pub(crate) fn spawn_client_listener(listener: TcpListener, events: mpsc::Sender<Input>) {
    accept_loop(listener, "client", MAX_CLIENT_CONNECTIONS, move |stream| {
        let remote = stream.peer_addr().ok();
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        loop {
            let request = match read_frame::<ClientRequest>(&mut reader) {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(?remote, error = %e, "bad client frame; closing connection");
                    return;
                }
            };
            let (reply_tx, reply_rx) = mpsc::channel();
            let input = Input::Client {
                command: request.command,
                reply: reply_tx,
            };
            if events.send(input).is_err() {
                return;
            }
            let reply = reply_rx
                .recv_timeout(CLIENT_REPLY_TIMEOUT)
                .unwrap_or_else(|_| {
                    ClientReply::Error("not committed in time; retry with the same seq".into())
                });
            if let Err(e) = write_frame(&mut writer, &reply) {
                tracing::debug!(?remote, error = %e, "cannot answer client");
                return;
            }
        }
    });
}
