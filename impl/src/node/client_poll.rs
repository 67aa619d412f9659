//! The client connections of one node, read by one thread with epoll(7).
//!
//! A thread per connection cost a scheduler wake-up for every request (measured: the
//! connection threads were a third of a loaded node's CPU, 64 clients doing gets). One poller
//! thread reads every connection that has bytes, as many as arrived together, and hands the
//! requests to the event loop; the event loop writes a command's answer itself
//! (`client_reply.rs`).
//!
//! Per connection, as before:
//! - one request in flight: the next request is handed over only once the previous one's
//!   answer is out (answers in order); a request that waits so for longer than
//!   [`CLIENT_REPLY_TIMEOUT`] closes the connection;
//! - its buffer holds at most one request of [`MAX_REQUEST_BYTES`] (and what arrived with it);
//!   reading pauses while it is full. A larger request is answered with one `Error` frame and
//!   the connection closed (after reading, bounded, what the client still sends);
//! - a connection is closed after `idle` without a request, and when a frame is not complete
//!   within `frame_timeout` of its first byte (a slowloris defence);
//! - an operator's request (leader, transfer, membership) is answered by a short-lived thread
//!   that waits for the event loop's answer, at most [`CLIENT_REPLY_TIMEOUT`].
//!
//! Sockets stay blocking (the reads here pass `MSG_DONTWAIT`), for the threads that write a
//! slow reader's answer or an operator's answer with a write timeout. With TLS, each
//! connection is the server side of a TLS connection (`client_conn.rs`): its handshake runs
//! as its bytes arrive, and a connection whose TLS fails (plaintext, garbage, a refused
//! certificate) is closed with a rate-limited warning.

use super::client_conn::ClientConn;
use super::client_reply::{DirectReply, ReplyTo};
use super::client_table::ClientTable;
use super::input::Input;
use super::shared::lock;
use crate::auth::RateLimitedLog;
use crate::wire::{
    decode_payload, encode_frame, ClientReply, ClientRequest, MAX_FRAME_LEN, MAX_REQUEST_BYTES,
};
use raft_core::NodeId;
use rustix::buffer::spare_capacity;
use rustix::event::{epoll, eventfd, EventfdFlags, Timespec};
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustls::ServerConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a client connection waits for an operator's request to be answered (a leadership
/// transfer to end, a membership change to commit) before answering `Error`, and how long a
/// request sent before the previous one's answer waits for that answer.
pub(crate) const CLIENT_REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an oversized request's remaining bytes are read (and discarded) before closing.
const DRAIN_TIME: Duration = Duration::from_millis(500);
/// How often idle connections and slow frames are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// How soon a request waiting for the previous one's answer is looked at again.
const HELD_RECHECK: Duration = Duration::from_millis(1);
/// Bytes read from a connection per `recv`.
const READ_CHUNK: usize = 16 * 1024;
/// A connection's buffer: one request of the largest size, and what arrived with it.
const BUFFER_CAP: usize = 4 + MAX_REQUEST_BYTES + READ_CHUNK;
/// The epoll token of the wake-up (a new connection); connections use their table id.
const WAKE: u64 = u64::MAX;
/// At most one warning per this interval about failed TLS connections (a remote party can
/// cause them at will).
const TLS_LOG_EVERY: Duration = Duration::from_secs(5);

/// The poller's side that the accept thread holds: hands admitted connections over.
pub(crate) struct ClientPoller {
    new: mpsc::Sender<(u64, TcpStream)>,
    wake: Arc<OwnedFd>,
}

impl ClientPoller {
    /// Starts the poller thread. `table` is the accept thread's connection table; a
    /// connection the poller closes leaves it.
    pub(crate) fn spawn(
        table: Arc<Mutex<ClientTable>>,
        events: mpsc::Sender<Input>,
        idle: Duration,
        frame_timeout: Duration,
        tls: Option<Arc<ServerConfig>>,
    ) -> io::Result<Self> {
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let wake = Arc::new(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?);
        epoll::add(
            &ep,
            &*wake,
            epoll::EventData::new_u64(WAKE),
            epoll::EventFlags::IN,
        )?;
        let (new_tx, new_rx) = mpsc::channel();
        let poller = Poller {
            ep,
            wake: Arc::clone(&wake),
            new: new_rx,
            conns: BTreeMap::new(),
            held: BTreeSet::new(),
            reread: BTreeSet::new(),
            tls,
            tls_log: RateLimitedLog::new(TLS_LOG_EVERY),
            table,
            events,
            idle,
            frame_timeout,
            stopped: false,
        };
        thread::Builder::new()
            .name("raft-clients".into())
            .spawn(move || poller.run())?;
        Ok(ClientPoller { new: new_tx, wake })
    }

    /// Hands connection `id` of the table to the poller; `false` when the poller is gone.
    pub(crate) fn add(&self, id: u64, stream: TcpStream) -> bool {
        if self.new.send((id, stream)).is_err() {
            return false;
        }
        rustix::io::write(&*self.wake, &1u64.to_ne_bytes()).is_ok()
    }
}

/// One connection, as the poller reads it.
struct Conn {
    stream: Arc<ClientConn>,
    remote: Option<SocketAddr>,
    /// Bytes received and not yet handed over: frames, the last possibly incomplete.
    buf: Vec<u8>,
    /// When the first byte of the frame at the start of `buf` arrived.
    frame_started: Instant,
    /// When bytes last arrived.
    last_active: Instant,
    /// Set while the request handed over last waits for its answer (the table's flag).
    busy: Option<Arc<AtomicBool>>,
    /// Since when a complete request waits for the previous one's answer.
    held_since: Option<Instant>,
    /// Reading paused: the buffer is full.
    paused: bool,
    /// The client sent its last byte (or the connection broke).
    eof: bool,
}

impl Conn {
    fn in_flight(&self) -> bool {
        self.busy.as_ref().is_some_and(|b| b.load(Ordering::SeqCst))
    }
}

/// What to do with a connection after serving it.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Keep,
    Close,
}

struct Poller {
    ep: OwnedFd,
    wake: Arc<OwnedFd>,
    new: mpsc::Receiver<(u64, TcpStream)>,
    conns: BTreeMap<u64, Conn>,
    /// Connections with a complete request waiting for the previous one's answer.
    held: BTreeSet<u64>,
    /// TLS connections to read again without waiting for their socket: reading paused with
    /// decrypted bytes possibly left in the connection.
    reread: BTreeSet<u64>,
    /// The client port's TLS configuration (none: plain TCP).
    tls: Option<Arc<ServerConfig>>,
    tls_log: RateLimitedLog,
    table: Arc<Mutex<ClientTable>>,
    events: mpsc::Sender<Input>,
    idle: Duration,
    frame_timeout: Duration,
    /// The event loop is gone (the node is stopping): nothing can be served any more.
    stopped: bool,
}

impl Poller {
    fn run(mut self) {
        let mut ready: Vec<epoll::Event> = Vec::with_capacity(256);
        let mut last_sweep = Instant::now();
        loop {
            let wait = if !self.reread.is_empty() {
                Duration::ZERO
            } else if self.held.is_empty() {
                SWEEP_EVERY
            } else {
                HELD_RECHECK
            };
            let timeout = Timespec {
                tv_sec: 0,
                tv_nsec: wait.as_nanos() as i64,
            };
            ready.clear();
            match epoll::wait(&self.ep, spare_capacity(&mut ready), Some(&timeout)) {
                Ok(_) => {}
                Err(e) if e == Errno::INTR => continue,
                Err(e) => {
                    tracing::error!(error = %e, "epoll failed; client connections are no longer served");
                    return;
                }
            }
            for event in &ready {
                let id = event.data.u64();
                if id == WAKE {
                    if !self.admit_new() {
                        return;
                    }
                    continue;
                }
                let flags = event.flags;
                let hangup = flags.intersects(epoll::EventFlags::HUP | epoll::EventFlags::ERR);
                self.readable(id, hangup);
            }
            for id in std::mem::take(&mut self.held) {
                self.serve(id);
            }
            for id in std::mem::take(&mut self.reread) {
                self.readable(id, false);
            }
            let now = Instant::now();
            if now.duration_since(last_sweep) >= SWEEP_EVERY {
                last_sweep = now;
                self.sweep(now);
            }
            if self.stopped {
                return;
            }
        }
    }

    /// Registers the connections the accept thread handed over. `false`: the accept thread is
    /// gone and so is every connection (the poller stops).
    fn admit_new(&mut self) -> bool {
        let mut counter = [0u8; 8];
        let _ = rustix::io::read(&*self.wake, &mut counter);
        loop {
            match self.new.try_recv() {
                Ok((id, stream)) => self.register(id, stream),
                Err(mpsc::TryRecvError::Empty) => return true,
                Err(mpsc::TryRecvError::Disconnected) => return !self.conns.is_empty(),
            }
        }
    }

    fn register(&mut self, id: u64, stream: TcpStream) {
        let stream = match ClientConn::new(stream, self.tls.as_ref()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start TLS on a client connection; closing it");
                lock(&self.table).remove(id);
                return;
            }
        };
        let flags = epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
        if let Err(e) = epoll::add(
            &self.ep,
            stream.socket(),
            epoll::EventData::new_u64(id),
            flags,
        ) {
            tracing::warn!(error = %e, "cannot watch a client connection; closing it");
            lock(&self.table).remove(id);
            return;
        }
        let now = Instant::now();
        let remote = stream.socket().peer_addr().ok();
        self.conns.insert(
            id,
            Conn {
                stream: Arc::new(stream),
                remote,
                buf: Vec::new(),
                frame_started: now,
                last_active: now,
                busy: None,
                held_since: None,
                paused: false,
                eof: false,
            },
        );
    }

    /// Reads what `id` has (up to its buffer's cap), then serves its complete requests.
    fn readable(&mut self, id: u64, hangup: bool) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            if conn.buf.len() >= BUFFER_CAP {
                if hangup {
                    // Gone, with more requests than it waited answers for.
                    return self.close(id);
                }
                if !conn.paused {
                    conn.paused = true;
                    let _ = epoll::modify(
                        &self.ep,
                        conn.stream.socket(),
                        epoll::EventData::new_u64(id),
                        epoll::EventFlags::empty(),
                    );
                }
                break;
            }
            let room = READ_CHUNK.min(BUFFER_CAP - conn.buf.len());
            match conn.stream.recv(&mut chunk[..room]) {
                Ok(0) => {
                    conn.eof = true;
                    let _ = epoll::delete(&self.ep, conn.stream.socket());
                    break;
                }
                Ok(n) => {
                    let now = Instant::now();
                    if conn.buf.is_empty() {
                        conn.frame_started = now;
                    }
                    conn.last_active = now;
                    conn.buf.extend_from_slice(&chunk[..n]);
                    // A short read drained the socket; TLS may hold more decrypted bytes.
                    if n < room && !conn.stream.is_tls() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    let remote = conn.remote;
                    self.tls_log.log(|suppressed| {
                        tracing::warn!(?remote, error = %e, suppressed, "client TLS failed; closing the connection")
                    });
                    return self.close(id);
                }
                Err(e) => {
                    tracing::debug!(remote = ?conn.remote, error = %e, "client connection broke");
                    return self.close(id);
                }
            }
        }
        self.serve(id);
    }

    /// Hands `id`'s complete requests over, one in flight at a time; closes it when it must.
    fn serve(&mut self, id: u64) {
        if self.serve_conn(id) == Next::Close {
            self.close(id);
        }
    }

    fn serve_conn(&mut self, id: u64) -> Next {
        let Some(conn) = self.conns.get_mut(&id) else {
            return Next::Keep;
        };
        while let Some(header) = conn.buf.get(..4) {
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            if len > MAX_REQUEST_BYTES {
                too_large(conn, len);
                return Next::Close;
            }
            if conn.buf.len() < 4 + len {
                break;
            }
            let now = Instant::now();
            if conn.in_flight() {
                conn.held_since.get_or_insert(now);
                self.held.insert(id);
                return Next::Keep;
            }
            conn.held_since = None;
            let request = match decode_payload::<ClientRequest>(&conn.buf[4..4 + len]) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(remote = ?conn.remote, error = %e, "bad client frame; closing connection");
                    return Next::Close;
                }
            };
            conn.buf.drain(..4 + len);
            conn.frame_started = now;
            if conn.paused {
                conn.paused = false;
                let flags = epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
                let _ = epoll::modify(
                    &self.ep,
                    conn.stream.socket(),
                    epoll::EventData::new_u64(id),
                    flags,
                );
                if conn.stream.is_tls() {
                    self.reread.insert(id);
                }
            }
            let Some(busy) = lock(&self.table).set_busy(id, true, now) else {
                tracing::debug!(remote = ?conn.remote, "client connection closed to make room; request dropped");
                return Next::Close;
            };
            conn.busy = Some(Arc::clone(&busy));
            let (table, events) = (&self.table, &self.events);
            let operator = |input: Box<dyn FnOnce(mpsc::Sender<ClientReply>) -> Input>,
                            too_late: &'static str| {
                operator_request(input, too_late, id, conn, table, events)
            };
            let forwardable = !matches!(request, ClientRequest::NoForward(_));
            let handed = match request {
                // Answered by the event loop, once applied, or by a forwarding thread
                // (`forward.rs`; no timeout here: a client that hears nothing retries with the
                // same seq after its own read timeout).
                ClientRequest::Command(command) | ClientRequest::NoForward(command) => events
                    .send(Input::Client {
                        command,
                        reply: ReplyTo::Direct(DirectReply::new(Arc::clone(&conn.stream), busy)),
                        forwardable,
                    })
                    .is_ok(),
                ClientRequest::TransferLeadership { to } => operator(
                    Box::new(move |reply| Input::TransferLeadership {
                        to: NodeId(to),
                        reply,
                    }),
                    "the leadership transfer did not end in time; ask for the leader, or retry",
                ),
                ClientRequest::Leader => operator(
                    Box::new(|reply| Input::Leader { reply }),
                    "no answer in time",
                ),
                ClientRequest::Member(request) => operator(
                    Box::new(move |reply| Input::Member { request, reply }),
                    "the membership change was not committed in time; list the members, or retry",
                ),
            };
            if !handed {
                // The event loop is gone: the node is stopping.
                self.stopped = true;
                return Next::Close;
            }
        }
        if conn.eof {
            // Nothing more will come; an answer in flight still goes out (its handle keeps
            // the socket open).
            return Next::Close;
        }
        Next::Keep
    }

    /// Closes idle connections, frames that take too long, and requests that waited too long
    /// for the previous one's answer.
    fn sweep(&mut self, now: Instant) {
        let mut closing = Vec::new();
        for (id, conn) in &self.conns {
            if let Some(since) = conn.held_since {
                if now.duration_since(since) >= CLIENT_REPLY_TIMEOUT {
                    tracing::debug!(remote = ?conn.remote, "a second request while the first is not answered; closing the connection");
                    closing.push(*id);
                }
                continue;
            }
            if !conn.buf.is_empty() {
                if now.duration_since(conn.frame_started) >= self.frame_timeout {
                    tracing::warn!(remote = ?conn.remote, timeout = ?self.frame_timeout, "client frame not complete in time; closing connection");
                    closing.push(*id);
                }
                continue;
            }
            if !conn.in_flight() && now.duration_since(conn.last_active) >= self.idle {
                tracing::debug!(remote = ?conn.remote, after = ?self.idle, "idle client connection closed");
                closing.push(*id);
            }
        }
        for id in closing {
            self.close(id);
        }
    }

    fn close(&mut self, id: u64) {
        if let Some(conn) = self.conns.remove(&id) {
            if !conn.eof {
                let _ = epoll::delete(&self.ep, conn.stream.socket());
            }
        }
        self.held.remove(&id);
        self.reread.remove(&id);
        lock(&self.table).remove(id);
    }
}

/// Hands an operator's request over (`input`, given where its answer goes) and answers it from
/// a short-lived thread, or with `too_late` when no answer came in time (see the module doc).
/// `false`: the event loop is gone.
fn operator_request(
    input: Box<dyn FnOnce(mpsc::Sender<ClientReply>) -> Input>,
    too_late: &'static str,
    id: u64,
    conn: &Conn,
    table: &Arc<Mutex<ClientTable>>,
    events: &mpsc::Sender<Input>,
) -> bool {
    let (reply_tx, reply_rx) = mpsc::channel();
    if events.send(input(reply_tx)).is_err() {
        return false;
    }
    let stream = Arc::clone(&conn.stream);
    let remote = conn.remote;
    let table = Arc::clone(table);
    let spawned = thread::Builder::new()
        .name("raft-client-op".into())
        .spawn(move || {
            let reply = reply_rx
                .recv_timeout(CLIENT_REPLY_TIMEOUT)
                .unwrap_or_else(|_| ClientReply::Error(too_late.into()));
            let written = encode_frame(&reply)
                .map_err(|e| e.to_string())
                .and_then(|frame| {
                    stream
                        .send_within(&frame, CLIENT_REPLY_TIMEOUT)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = written {
                tracing::debug!(?remote, error = %e, "cannot answer client; closing");
                stream.shutdown(Shutdown::Both);
            }
            lock(&table).set_busy(id, false, Instant::now());
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a thread for an operator's request; closing");
        return false;
    }
    true
}

/// Answers a request larger than [`MAX_REQUEST_BYTES`] with one `Error` frame, then reads what
/// the client is still sending (bounded in bytes and time) before the connection closes, so
/// that closing does not reset it before the client reads the answer. On its own thread.
fn too_large(conn: &Conn, len: usize) {
    tracing::warn!(remote = ?conn.remote, len, max = MAX_REQUEST_BYTES, "client request too large; refused");
    let stream = Arc::clone(&conn.stream);
    let buffered = conn.buf.len().saturating_sub(4);
    let left = len.saturating_sub(buffered);
    let spawned = thread::Builder::new()
        .name("raft-client-drain".into())
        .spawn(move || {
            let answer = ClientReply::Error(format!(
                "request of {len} bytes exceeds the maximum request size of \
                 {MAX_REQUEST_BYTES} bytes"
            ));
            if let Ok(frame) = encode_frame(&answer) {
                let _ = stream.send_within(&frame, DRAIN_TIME);
            }
            stream.shutdown(Shutdown::Write);
            // Raw bytes, TLS or not: they are discarded.
            drain(stream.socket(), left, DRAIN_TIME);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a thread to refuse a request");
    }
}

/// Reads and discards at most `len` bytes (and at most [`MAX_FRAME_LEN`]) for at most `time`.
fn drain(stream: &TcpStream, len: usize, time: Duration) {
    let deadline = Instant::now() + time;
    let mut left = len.min(MAX_FRAME_LEN);
    let mut buf = [0u8; READ_CHUNK];
    let mut s = stream;
    while left > 0 {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() || stream.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        match s.read(&mut buf[..left.min(READ_CHUNK)]) {
            Ok(0) | Err(_) => return,
            Ok(n) => left -= n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::client_table::Admission;
    use crate::wire::ClientRequest;

    use crate::node::shared::tcp_pair as pair;

    /// A connection admitted to a table and served by a poller: the client's end, the inputs
    /// the poller hands over, and the poller's handle.
    fn served_connection() -> (TcpStream, mpsc::Receiver<Input>, ClientPoller) {
        let (client, server) = pair();
        // A poller that never answers fails the test instead of hanging it.
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let table = Arc::new(Mutex::new(ClientTable::new(4)));
        let id = match lock(&table).admit(server.try_clone().unwrap(), Instant::now()) {
            Admission::Admit { id, .. } => id,
            Admission::Busy => panic!("an empty table admits"),
        };
        let (events, inputs) = mpsc::channel();
        let timeout = Duration::from_secs(10);
        let poller = ClientPoller::spawn(table, events, timeout, timeout, None).unwrap();
        assert!(poller.add(id, server));
        (client, inputs, poller)
    }

    /// One command in flight per connection: a second command sent before the first's answer
    /// is handed to the event loop only once that answer is out, and the answers arrive in order.
    #[test]
    fn a_second_command_waits_for_the_first_answer() {
        use crate::kv::{Command, Op, OpResult};
        use crate::wire::{encode_frame, read_frame};
        use std::io::Write;
        let (mut client, inputs, _poller) = served_connection();
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
    }

    /// An operator's request the event loop never answers gets `Error` after the timeout, and
    /// the connection is free for the next request.
    #[test]
    fn an_unanswered_operator_request_is_answered_with_an_error_in_time() {
        use crate::wire::{encode_frame, read_frame};
        use std::io::Write;
        let (mut client, inputs, _poller) = served_connection();
        let timeout = Duration::from_secs(10);
        let mut two = encode_frame(&ClientRequest::Leader).unwrap();
        two.extend(encode_frame(&ClientRequest::Leader).unwrap());
        client.write_all(&two).unwrap();
        let first = inputs.recv_timeout(timeout).expect("handed over");
        assert!(matches!(first, Input::Leader { .. }));
        let started = Instant::now();
        let got: ClientReply = read_frame(&mut client).unwrap().unwrap();
        assert_eq!(got, ClientReply::Error("no answer in time".into()));
        assert!(started.elapsed() >= CLIENT_REPLY_TIMEOUT - Duration::from_millis(100));
        drop(first);
        // The second, handed over once the first was answered, is answered by the event loop.
        match inputs.recv_timeout(timeout).expect("the second") {
            Input::Leader { reply } => reply.send(ClientReply::Error("second".into())).unwrap(),
            _ => panic!("a leader request"),
        }
        let got: ClientReply = read_frame(&mut client).unwrap().unwrap();
        assert_eq!(got, ClientReply::Error("second".into()));
    }
}
