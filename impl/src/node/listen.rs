//! Inbound connections: a listener thread per port, a reader thread per connection. A
//! malformed frame closes the connection with a logged reason.
//!
//! Peers (at most [`MAX_PEER_CONNECTIONS`] at once): with a cluster secret, a connection must
//! first pass the handshake of [`crate::auth`] (within [`crate::auth::HANDSHAKE_TIMEOUT`]);
//! a frame on a connection that did not authenticate is dropped, logged (rate-limited) and
//! the connection closed, as is a frame that names another sender than the authenticated one.
//!
//! Clients (at most `max_client_connections`): a connection is closed after `client_idle`
//! without a request, or when a request's frame is not complete within `frame_timeout` of its
//! first byte; its buffer holds at most one request of [`MAX_REQUEST_BYTES`]. A larger
//! request is answered with one `Error` frame and the connection closed. When every slot is
//! taken, a new connection closes the connection that has been idle the longest (no request
//! in progress); only when every connection has a request waiting for the log is the new one
//! refused, with one `Error` frame ("busy").

use super::client_reply::{DirectReply, ReplyTo};
use super::Input;
use crate::auth::{self, ClusterSecret, RateLimitedLog};
use crate::wire::{
    read_frame_timed, write_frame, ClientReply, ClientRequest, PeerFrame, PeerWire, WireError,
    MAX_FRAME_LEN, MAX_REQUEST_BYTES,
};
use raft_core::NodeId;
use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

pub const MAX_PEER_CONNECTIONS: usize = 64;
pub const DEFAULT_MAX_CLIENT_CONNECTIONS: usize = 256;
/// How long a client connection may stay without a request.
pub const DEFAULT_CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one frame may take from its first byte to its last (client and peer ports).
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client connection waits for an operator's request to be answered (a leadership
/// transfer to end, a membership change to commit) before answering `Error`, and how long a
/// second command sent before the first one's answer waits for that answer.
const CLIENT_REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// At most one warning per this interval for events a remote party can cause at will.
const LOG_EVERY: Duration = Duration::from_secs(5);
/// How long an oversized request's remaining bytes are read (and discarded) before closing.
const DRAIN_TIME: Duration = Duration::from_millis(500);
/// How long a refused connection gets to take its one-frame answer.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_millis(200);

/// What the listeners need to know.
#[derive(Clone, Debug)]
pub(crate) struct ListenOptions {
    pub me: NodeId,
    pub peers: Vec<NodeId>,
    pub secret: Option<Arc<ClusterSecret>>,
    pub client_idle_timeout: Duration,
    pub frame_timeout: Duration,
    pub max_client_connections: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
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

/// Accepts connections and hands each accepted one to `admit`, which returns the function to
/// run on the connection's own thread, or `None` when it refused the connection.
fn accept_loop<F>(
    listener: TcpListener,
    kind: &'static str,
    mut admit: impl FnMut(TcpStream) -> Option<F> + Send + 'static,
) where
    F: FnOnce() + Send + 'static,
{
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
                let Some(serve) = admit(stream) else {
                    continue;
                };
                let spawned = thread::Builder::new()
                    .name(format!("raft-conn-{kind}"))
                    .spawn(serve);
                if let Err(e) = spawned {
                    tracing::warn!(kind, error = %e, "cannot start a connection thread");
                }
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
            return None;
        };
        let options = options.clone();
        let events = events.clone();
        let auth_log = auth_log.clone();
        Some(move || {
            let _slot = slot;
            serve_peer(stream, &options, &events, &auth_log);
        })
    });
}

fn serve_peer(
    stream: TcpStream,
    options: &ListenOptions,
    events: &mpsc::Sender<Input>,
    auth_log: &RateLimitedLog,
) {
    let remote = stream.peer_addr().ok();
    let authenticated = match &options.secret {
        Some(secret) => match auth::accept(&stream, secret, options.me, &options.peers) {
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
    let mut reader = BufReader::new(stream);
    loop {
        match read_frame_timed::<PeerWire>(&mut reader, MAX_FRAME_LEN, None, options.frame_timeout)
        {
            Ok(Some(wire)) => {
                let from = match &wire {
                    PeerWire::Raft(PeerFrame { from, .. })
                    | PeerWire::SnapshotChunk { from, .. } => *from,
                };
                let allowed = match authenticated {
                    Some(peer) => from == peer,
                    None => options.peers.contains(&from) && from != options.me,
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

/// The client connections of one node: for each, whether a request of it waits for the log
/// and when it was last active.
struct ClientTable {
    max: usize,
    next: u64,
    conns: BTreeMap<u64, ClientConn>,
}

struct ClientConn {
    /// A handle to close the connection from the accept thread.
    stream: TcpStream,
    since: Instant,
    /// A request of it waits for the log (cleared by whoever writes its answer: the
    /// connection's thread, or the event loop for a command, `client_reply.rs`).
    busy: Arc<AtomicBool>,
}

/// What to do with a new client connection.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    /// Admitted under this id, after closing the connection with the id in `evicted`.
    Admit { id: u64, evicted: Option<u64> },
    /// Every connection has a request in progress.
    Busy,
}

impl ClientTable {
    fn new(max: usize) -> Self {
        ClientTable {
            max,
            next: 0,
            conns: BTreeMap::new(),
        }
    }

    /// Admits `stream`, closing the longest-idle connection when the table is full.
    fn admit(&mut self, stream: TcpStream, now: Instant) -> Admission {
        let mut evicted = None;
        if self.conns.len() >= self.max {
            let oldest = self
                .conns
                .iter()
                .filter(|(_, c)| !c.busy.load(Ordering::SeqCst))
                .min_by_key(|(id, c)| (c.since, **id))
                .map(|(id, _)| *id);
            let Some(victim) = oldest else {
                return Admission::Busy;
            };
            if let Some(conn) = self.conns.remove(&victim) {
                let _ = conn.stream.shutdown(Shutdown::Both);
            }
            evicted = Some(victim);
        }
        let id = self.next;
        self.next += 1;
        self.conns.insert(
            id,
            ClientConn {
                stream,
                since: now,
                busy: Arc::new(AtomicBool::new(false)),
            },
        );
        Admission::Admit { id, evicted }
    }

    /// Marks a connection busy (a request of it waits for the log) or idle again, and returns
    /// its busy flag (for whoever writes the answer). `None`: the connection was closed to make
    /// room for another.
    fn set_busy(&mut self, id: u64, busy: bool, now: Instant) -> Option<Arc<AtomicBool>> {
        let c = self.conns.get_mut(&id)?;
        c.busy.store(busy, Ordering::SeqCst);
        c.since = now;
        Some(Arc::clone(&c.busy))
    }

    fn remove(&mut self, id: u64) {
        self.conns.remove(&id);
    }
}

/// Answers a connection with one frame and closes it, without waiting long for a slow reader.
fn refuse(stream: &TcpStream, message: String) {
    let _ = stream.set_write_timeout(Some(REFUSAL_WRITE_TIMEOUT));
    let mut s = stream;
    let _ = write_frame(&mut s, &ClientReply::Error(message));
    let _ = stream.shutdown(Shutdown::Write);
}

/// Client requests: each is handed to the event loop and answered once it is applied (an
/// operator's leadership transfer: once it is over; see `ClientRequest`).
pub(crate) fn spawn_client_listener(
    listener: TcpListener,
    options: ListenOptions,
    events: mpsc::Sender<Input>,
) {
    let table = Arc::new(Mutex::new(ClientTable::new(
        options.max_client_connections.max(1),
    )));
    let busy_log = Arc::new(RateLimitedLog::new(LOG_EVERY));
    let evict_log = Arc::new(RateLimitedLog::new(LOG_EVERY));
    accept_loop(listener, "client", move |stream| {
        let handle = match stream.try_clone() {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "cannot register a client connection");
                return None;
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
                refuse(
                    &stream,
                    format!(
                        "server busy: all {} client connections have a request in progress; retry",
                        options.max_client_connections
                    ),
                );
                return None;
            }
        };
        let table = table.clone();
        let events = events.clone();
        let idle = options.client_idle_timeout;
        let frame_timeout = options.frame_timeout;
        Some(move || {
            serve_client(stream, id, &table, &events, idle, frame_timeout);
            lock(&table).remove(id);
        })
    });
}

/// Reads and discards at most `len` bytes (and at most [`MAX_FRAME_LEN`]) for at most `time`.
fn drain(reader: &mut BufReader<TcpStream>, len: usize, time: Duration) {
    let deadline = Instant::now() + time;
    let mut left = len.min(MAX_FRAME_LEN);
    let mut buf = [0u8; 16 * 1024];
    while left > 0 {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() || reader.get_ref().set_read_timeout(Some(wait)).is_err() {
            return;
        }
        match reader.read(&mut buf[..left.min(16 * 1024)]) {
            Ok(0) | Err(_) => return,
            Ok(n) => left -= n,
        }
    }
}

fn serve_client(
    stream: TcpStream,
    id: u64,
    table: &Mutex<ClientTable>,
    events: &mpsc::Sender<Input>,
    idle: Duration,
    frame_timeout: Duration,
) {
    let remote = stream.peer_addr().ok();
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    // The event loop answers commands on this handle (`client_reply.rs`); `done` gets one
    // token per answered command, and a command is handed over only after the previous one's
    // token came: one command in flight per connection.
    let Ok(direct) = stream.try_clone().map(Arc::new) else {
        return;
    };
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let mut answer_pending = false;
    let mut reader = BufReader::new(stream);
    loop {
        let request = match read_frame_timed::<ClientRequest>(
            &mut reader,
            MAX_REQUEST_BYTES,
            Some(idle),
            frame_timeout,
        ) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(WireError::TooLarge { len, max }) => {
                tracing::warn!(?remote, len, max, "client request too large; refused");
                let _ = write_frame(
                    &mut writer,
                    &ClientReply::Error(format!(
                        "request of {len} bytes exceeds the maximum request size of {max} bytes"
                    )),
                );
                // Read what the client is still sending (bounded in bytes and time), so that
                // closing does not reset the connection before it reads the answer.
                let _ = writer.shutdown(Shutdown::Write);
                drain(&mut reader, len, DRAIN_TIME);
                return;
            }
            Err(WireError::Idle(after)) => {
                tracing::debug!(?remote, ?after, "idle client connection closed");
                return;
            }
            Err(e) => {
                tracing::warn!(?remote, error = %e, "bad client frame; closing connection");
                return;
            }
        };
        // A client that sent this before it read the previous answer waits for that answer
        // to be out (a client that reads first finds the token there already).
        if std::mem::take(&mut answer_pending)
            && done_rx.recv_timeout(CLIENT_REPLY_TIMEOUT).is_err()
        {
            tracing::debug!(
                ?remote,
                "a second request while the first is not committed; closing the connection"
            );
            return;
        }
        let Some(busy) = lock(table).set_busy(id, true, Instant::now()) else {
            tracing::debug!(
                ?remote,
                "client connection closed to make room; request dropped"
            );
            return;
        };
        let (reply_tx, reply_rx) = mpsc::channel();
        let (input, too_late) = match request {
            ClientRequest::Command(command) => {
                // Answered by the event loop, once applied (no timeout here: a client that
                // hears nothing retries with the same seq after its own read timeout).
                let reply = DirectReply::new(Arc::clone(&direct), busy, done_tx.clone());
                let input = Input::Client {
                    command,
                    reply: ReplyTo::Direct(reply),
                };
                if events.send(input).is_err() {
                    return;
                }
                answer_pending = true;
                continue;
            }
            ClientRequest::TransferLeadership { to } => (
                Input::TransferLeadership {
                    to: NodeId(to),
                    reply: reply_tx,
                },
                "the leadership transfer did not end in time; ask for the leader, or retry",
            ),
            ClientRequest::Leader => (Input::Leader { reply: reply_tx }, "no answer in time"),
            ClientRequest::Member(request) => (
                Input::Member {
                    request,
                    reply: reply_tx,
                },
                "the membership change was not committed in time; list the members, or retry",
            ),
        };
        if events.send(input).is_err() {
            return;
        }
        let reply = reply_rx
            .recv_timeout(CLIENT_REPLY_TIMEOUT)
            .unwrap_or_else(|_| ClientReply::Error(too_late.into()));
        if let Err(e) = write_frame(&mut writer, &reply) {
            tracing::debug!(?remote, error = %e, "cannot answer client");
            return;
        }
        if lock(table).set_busy(id, false, Instant::now()).is_none() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::node::tcp_pair as pair;

    #[test]
    fn a_full_table_closes_the_longest_idle_connection_and_never_a_busy_one() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut table = ClientTable::new(2);
        let (remote0, s0) = pair();
        let (_r1, s1) = pair();
        let (_r2, s2) = pair();
        let (_r3, s3) = pair();
        assert_eq!(
            table.admit(s0, at(0)),
            Admission::Admit {
                id: 0,
                evicted: None
            }
        );
        assert_eq!(
            table.admit(s1, at(1)),
            Admission::Admit {
                id: 1,
                evicted: None
            }
        );
        // 0 is the older, but it has a request in progress: 1 goes.
        assert!(table.set_busy(0, true, at(2)).is_some());
        assert_eq!(
            table.admit(s2, at(3)),
            Admission::Admit {
                id: 2,
                evicted: Some(1)
            }
        );
        assert!(table.set_busy(1, true, at(4)).is_none(), "1 was closed");
        assert!(table.set_busy(2, true, at(4)).is_some());
        assert_eq!(table.admit(s3, at(5)), Admission::Busy);
        // 0's request ends: it is idle again, and it is the one closed next (really closed).
        assert!(table.set_busy(0, false, at(6)).is_some());
        let (_r4, s4) = pair();
        assert_eq!(
            table.admit(s4, at(7)),
            Admission::Admit {
                id: 3,
                evicted: Some(0)
            }
        );
        let mut buf = [0u8; 1];
        assert_eq!((&remote0).read(&mut buf).unwrap(), 0, "evicted: closed");
    }

    /// One command in flight per connection: a second command sent before the first's answer
    /// is handed to the event loop only once that answer is out, and the answers arrive in order.
    #[test]
    fn a_second_command_waits_for_the_first_answer() {
        use crate::kv::{Command, Op, OpResult};
        use crate::wire::{encode_frame, read_frame};
        use std::io::Write;
        let (mut client, server) = pair();
        let table = Arc::new(Mutex::new(ClientTable::new(4)));
        let id = match lock(&table).admit(server.try_clone().unwrap(), Instant::now()) {
            Admission::Admit { id, .. } => id,
            Admission::Busy => panic!("an empty table admits"),
        };
        let (events, inputs) = mpsc::channel();
        let served = {
            let table = Arc::clone(&table);
            thread::spawn(move || {
                let timeout = Duration::from_secs(10);
                serve_client(server, id, &table, &events, timeout, timeout)
            })
        };
        let command = |seq| {
            ClientRequest::Command(Command {
                client_id: 1,
                seq,
                op: Op::Get { key: "k".into() },
            })
        };
        let mut both = encode_frame(&command(1)).unwrap();
        both.extend(encode_frame(&command(2)).unwrap());
        client.write_all(&both).unwrap();
        let first = inputs.recv_timeout(Duration::from_secs(10)).expect("first");
        assert!(
            inputs.recv_timeout(Duration::from_millis(300)).is_err(),
            "the second command waits while the first is unanswered"
        );
        let answer = |input: Input, value: &str| match input {
            Input::Client { reply, .. } => {
                reply.send(ClientReply::Ok(OpResult::Value(Some(value.into()))))
            }
            _ => panic!("a command"),
        };
        answer(first, "one");
        let second = inputs
            .recv_timeout(Duration::from_secs(10))
            .expect("second");
        answer(second, "two");
        for want in ["one", "two"] {
            let got: ClientReply = read_frame(&mut client).unwrap().unwrap();
            assert_eq!(got, ClientReply::Ok(OpResult::Value(Some(want.into()))));
        }
        drop(client);
        served.join().unwrap();
    }
}
