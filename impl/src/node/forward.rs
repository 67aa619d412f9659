//! Forwarding: a follower that knows the leader sends a client's key-value command (a write, or
//! a linearizable read) to the leader's client port and relays the leader's one answer, so a
//! client connected to any node is served without following hints (as etcd's followers do).
//!
//! The rules, and why:
//! - what is forwarded: a [`ClientRequest::Command`] reaching a node that is not the leader
//!   and knows who leads ([`route`]); the operators' requests (leader, transfer, membership)
//!   are not: an operator's tool follows hints, and a membership answer must be the leader's
//!   own;
//! - one hop: the follower sends it as [`ClientRequest::NoForward`], which a node that is not
//!   the leader answers `NotLeader` instead of forwarding again (no loops between nodes with
//!   stale views of who leads);
//! - the same deadline as an operator's request ([`FORWARD_TIMEOUT`], shorter than the client
//!   library's read timeout): no answer from the leader in time, or the leader unreachable, is
//!   answered `Error`, and the client retries with the same seq;
//! - exactly once: the command keeps its client id and seq, so the leader's session table
//!   applies a retried command once, whichever node relayed each try.
//!
//! Never on the event loop: a small pool of threads (at most [`MAX_CONNECTIONS`], started as
//! requests wait), each with one connection to the leader's client port, reused, one request at
//! a time (the client port serves one request per connection at a time anyway).

use super::client_reply::ReplyTo;
use super::shared::lock;
use crate::kv::Command;
use crate::wire::{read_frame, write_frame, ClientReply, ClientRequest, WireError};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a forwarded request may take, from the follower's receiving it to the leader's
/// answer: an operator's request's wait ([`super::client_poll::CLIENT_REPLY_TIMEOUT`]), so the
/// client (whose read timeout is longer) hears `Error` and retries rather than timing out.
pub(crate) const FORWARD_TIMEOUT: Duration = super::client_poll::CLIENT_REPLY_TIMEOUT;
/// Most connections (and threads) one node forwards through at once.
pub(crate) const MAX_CONNECTIONS: usize = 4;
/// The longest wait for a connection to the leader.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);

/// A connection to another node's client port: the socket (for its timeouts) and, in a TLS
/// cluster, the TLS stream over it.
pub(crate) struct Transport {
    socket: TcpStream,
    tls: Option<Box<StreamOwned<ClientConnection, TcpStream>>>,
}

impl Read for &mut Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.tls {
            Some(tls) => tls.read(buf),
            None => (&self.socket).read(buf),
        }
    }
}

impl Write for &mut Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            Some(tls) => tls.write(buf),
            None => (&self.socket).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.tls {
            Some(tls) => tls.flush(),
            None => Ok(()),
        }
    }
}

/// Opens a connection to the client port at `addr` (the leader's client address from the
/// address book): the one place such connections are made. With `tls` (the node's own
/// connector configuration: the cluster's CA, and the node's certificate, which a port that
/// requires client certificates accepts), the leader's certificate is checked for the
/// address's IP, as any client checks it.
pub(crate) fn connect(
    addr: &str,
    timeout: Duration,
    tls: Option<&Arc<ClientConfig>>,
) -> io::Result<Transport> {
    let addr: SocketAddr = addr.parse().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad client address {addr:?}: {e}"),
        )
    })?;
    let timeout = timeout.max(Duration::from_millis(1));
    let socket = TcpStream::connect_timeout(&addr, timeout)?;
    socket.set_nodelay(true)?;
    let tls = match tls {
        Some(config) => {
            let name = crate::tls::server_name_of(addr);
            let stream = socket.try_clone()?;
            let connected = crate::tls_stream::connect(Arc::clone(config), name, stream, timeout)
                .map_err(|e| io::Error::new(e.kind(), format!("TLS: {e}")))?;
            Some(Box::new(connected))
        }
        None => None,
    };
    Ok(Transport { socket, tls })
}

/// Where a client's command goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// To this node's replica: the leader serves it, any other node answers `NotLeader`.
    Local,
    /// To the leader, at this client address.
    Forward(String),
}

/// The forwarding decision for a command: `forwardable` is false for one that was forwarded
/// already (or whose client follows hints itself), `leads` whether this node leads, `leader`
/// the client address of the leader it knows of (never its own).
pub(crate) fn route(forwardable: bool, leads: bool, leader: Option<String>) -> Route {
    match leader {
        Some(addr) if forwardable && !leads => Route::Forward(addr),
        _ => Route::Local,
    }
}

/// One command to forward, and where its answer goes.
struct Job {
    addr: String,
    command: Command,
    reply: ReplyTo,
    deadline: Instant,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job.
    idle: usize,
    /// Threads started and not stopped.
    workers: usize,
    /// The forwarder was dropped: the threads stop once the queue is empty.
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
    timeout: Duration,
    /// The connector configuration in a TLS cluster.
    tls: Option<Arc<ClientConfig>>,
}

/// The event loop's handle on the forwarding threads.
pub(crate) struct Forwarder {
    shared: Arc<Shared>,
}

impl Forwarder {
    /// A forwarder whose requests are answered within `timeout` of being handed over, over
    /// TLS with `tls` (see [`connect`]).
    pub(crate) fn new(timeout: Duration, tls: Option<Arc<ClientConfig>>) -> Self {
        Forwarder {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                ready: Condvar::new(),
                timeout,
                tls,
            }),
        }
    }

    /// Sends `command` to the leader at `addr` (as [`ClientRequest::NoForward`]) and its
    /// answer to `reply`, from a forwarding thread; returns at once.
    pub(crate) fn forward(&self, addr: String, command: Command, reply: ReplyTo) {
        let deadline = Instant::now() + self.shared.timeout;
        let mut state = lock(&self.shared.state);
        state.jobs.push_back(Job {
            addr,
            command,
            reply,
            deadline,
        });
        if state.idle < state.jobs.len() && state.workers < MAX_CONNECTIONS {
            let shared = Arc::clone(&self.shared);
            let spawned = thread::Builder::new()
                .name("raft-forward".into())
                .spawn(move || work(&shared));
            match spawned {
                Ok(_) => state.workers += 1,
                Err(e) if state.workers == 0 => {
                    tracing::warn!(error = %e, "cannot start a forwarding thread");
                    let stranded: Vec<Job> = state.jobs.drain(..).collect();
                    drop(state);
                    for job in stranded {
                        let why = format!("cannot forward to the leader at {}; retry", job.addr);
                        job.reply.send(ClientReply::Error(why));
                    }
                    return;
                }
                // The running threads take it.
                Err(e) => tracing::debug!(error = %e, "cannot start another forwarding thread"),
            }
        }
        drop(state);
        self.shared.ready.notify_one();
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        lock(&self.shared.state).closed = true;
        self.shared.ready.notify_all();
    }
}

/// A forwarding thread: takes jobs until the forwarder is dropped and the queue is empty.
fn work(shared: &Shared) {
    let mut link: Option<Link> = None;
    loop {
        let job = {
            let mut state = lock(&shared.state);
            loop {
                if let Some(job) = state.jobs.pop_front() {
                    break job;
                }
                if state.closed {
                    state.workers -= 1;
                    return;
                }
                state.idle += 1;
                state = shared
                    .ready
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                state.idle -= 1;
            }
        };
        let request = ClientRequest::NoForward(job.command);
        let tls = shared.tls.as_ref();
        let answer = exchange(&mut link, &job.addr, &request, job.deadline, tls);
        job.reply.send(answer);
    }
}

/// A forwarding thread's connection to the leader.
struct Link {
    addr: String,
    stream: Transport,
}

/// Sends `request` to `addr` and returns its answer, or an `Error` answer by `deadline`. A
/// reused connection that fails before answering (the leader closed it while idle) gets one
/// more try on a fresh connection: the same command, so the leader's session applies it once.
fn exchange(
    link: &mut Option<Link>,
    addr: &str,
    request: &ClientRequest,
    deadline: Instant,
    tls: Option<&Arc<ClientConfig>>,
) -> ClientReply {
    let mut last = String::from("no time left");
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let reused = link.as_ref().is_some_and(|l| l.addr == addr);
        if !reused {
            match connect(addr, left.min(CONNECT_TIMEOUT), tls) {
                Ok(stream) => {
                    *link = Some(Link {
                        addr: addr.to_string(),
                        stream,
                    })
                }
                Err(e) => {
                    *link = None;
                    return ClientReply::Error(format!(
                        "cannot reach the leader at {addr} to forward the request: {e}; retry"
                    ));
                }
            }
        }
        let Some(l) = link.as_mut() else {
            unreachable!("a connection was just made or reused");
        };
        match round_trip(&mut l.stream, request, deadline) {
            Ok(answer) => return answer,
            Err(e) => {
                // Its answer may still come: the connection cannot be reused.
                *link = None;
                let timed_out = matches!(&e, WireError::Io(io) if is_timeout(io));
                last = e.to_string();
                if timed_out || !reused {
                    break;
                }
            }
        }
    }
    ClientReply::Error(format!(
        "the leader at {addr} did not answer the forwarded request in time ({last}); retry"
    ))
}

/// One request and its answer on `stream`, all by `deadline`.
fn round_trip(
    stream: &mut Transport,
    request: &ClientRequest,
    deadline: Instant,
) -> Result<ClientReply, WireError> {
    let left = deadline.saturating_duration_since(Instant::now());
    let mut writer = &mut *stream;
    writer
        .socket
        .set_write_timeout(Some(left.max(Duration::from_millis(1))))?;
    write_frame(&mut writer, request)?;
    writer.flush()?;
    let mut reader = Until { stream, deadline };
    read_frame(&mut reader)?.ok_or_else(|| WireError::Malformed("connection closed".into()))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads from a connection until a deadline, however the bytes trickle in.
struct Until<'a> {
    stream: &'a mut Transport,
    deadline: Instant,
}

impl Read for Until<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.socket.set_read_timeout(Some(left))?;
        (&mut *self.stream).read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Op, OpResult};
    use std::net::TcpListener;
    use std::sync::mpsc;

    fn put(seq: u64) -> Command {
        Command {
            client_id: 9,
            seq,
            op: Op::Put {
                key: "k".into(),
                value: format!("v{seq}"),
            },
        }
    }

    #[test]
    fn a_follower_that_knows_the_leader_forwards() {
        assert_eq!(
            route(true, false, Some("10.0.0.1:7000".into())),
            Route::Forward("10.0.0.1:7000".into())
        );
    }

    #[test]
    fn the_leader_serves_its_commands_itself() {
        assert_eq!(route(true, true, None), Route::Local);
        assert_eq!(route(false, true, None), Route::Local);
    }

    #[test]
    fn a_node_that_knows_no_leader_answers_itself() {
        assert_eq!(route(true, false, None), Route::Local);
    }

    #[test]
    fn a_forwarded_command_is_never_forwarded_again() {
        assert_eq!(
            route(false, false, Some("10.0.0.1:7000".into())),
            Route::Local
        );
    }

    /// A fake leader: answers each request on each connection with `answer(request)`, and
    /// reports the requests it got.
    fn fake_leader(
        answer: impl Fn(&ClientRequest) -> Option<ClientReply> + Send + Sync + 'static,
    ) -> (String, mpsc::Receiver<ClientRequest>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (seen_tx, seen) = mpsc::channel();
        let answer = Arc::new(answer);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (answer, seen_tx) = (Arc::clone(&answer), seen_tx.clone());
                thread::spawn(move || {
                    while let Ok(Some(request)) = read_frame::<ClientRequest>(&mut stream) {
                        let reply = answer(&request);
                        let _ = seen_tx.send(request);
                        match reply {
                            Some(reply) => {
                                if write_frame(&mut stream, &reply).is_err() {
                                    return;
                                }
                            }
                            // Silent: holds the connection without answering.
                            None => thread::sleep(Duration::from_secs(30)),
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    fn waiting() -> (ReplyTo, mpsc::Receiver<ClientReply>) {
        let (tx, rx) = mpsc::channel();
        (ReplyTo::Waiting(tx), rx)
    }

    #[test]
    fn the_leaders_answer_is_relayed_and_the_request_marked_forwarded() {
        let (addr, seen) = fake_leader(|r| match r {
            ClientRequest::NoForward(c) => Some(ClientReply::Ok(OpResult::Value(Some(format!(
                "seq {}",
                c.seq
            ))))),
            _ => Some(ClientReply::Error("not marked".into())),
        });
        let forwarder = Forwarder::new(Duration::from_secs(10), None);
        for seq in 1..=3 {
            let (reply, answers) = waiting();
            forwarder.forward(addr.clone(), put(seq), reply);
            let got = answers.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(
                got,
                ClientReply::Ok(OpResult::Value(Some(format!("seq {seq}"))))
            );
            assert_eq!(
                seen.recv_timeout(Duration::from_secs(10)).unwrap(),
                ClientRequest::NoForward(put(seq)),
                "the command keeps its client id and seq"
            );
        }
    }

    #[test]
    fn a_silent_leader_is_answered_with_an_error_after_the_timeout() {
        let (addr, _seen) = fake_leader(|_| None);
        let timeout = Duration::from_millis(300);
        let forwarder = Forwarder::new(timeout, None);
        let (reply, answers) = waiting();
        let started = Instant::now();
        forwarder.forward(addr, put(1), reply);
        let got = answers.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(matches!(got, ClientReply::Error(_)), "{got:?}");
        assert!(started.elapsed() >= timeout, "not before the deadline");
    }

    #[test]
    fn an_unreachable_leader_is_answered_with_an_error() {
        // A port nobody listens on (bound, then released).
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let forwarder = Forwarder::new(Duration::from_secs(10), None);
        let (reply, answers) = waiting();
        forwarder.forward(addr, put(1), reply);
        let got = answers.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(matches!(got, ClientReply::Error(_)), "{got:?}");
    }

    #[test]
    fn a_connection_the_leader_closed_is_replaced_and_the_command_sent_again() {
        // The leader answers the first request, then closes that connection (an idle
        // timeout); the next request finds it closed and goes again on a new connection.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (seen_tx, seen) = mpsc::channel();
        thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                let Ok(Some(request)) = read_frame::<ClientRequest>(&mut stream) else {
                    return;
                };
                let _ = seen_tx.send((n, request));
                let _ = write_frame(&mut stream, &ClientReply::Ok(OpResult::Value(None)));
                // Dropped: closed after one answer.
            }
        });
        let forwarder = Forwarder::new(Duration::from_secs(10), None);
        for seq in 1..=2 {
            let (reply, answers) = waiting();
            forwarder.forward(addr.clone(), put(seq), reply);
            let got = answers.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(got, ClientReply::Ok(OpResult::Value(None)));
        }
        let got: Vec<(usize, ClientRequest)> = seen.try_iter().collect();
        assert_eq!(
            got,
            vec![
                (0, ClientRequest::NoForward(put(1))),
                (1, ClientRequest::NoForward(put(2)))
            ]
        );
    }

    #[test]
    fn concurrent_requests_use_at_most_the_pool_of_connections() {
        let (accepted_tx, accepted) = mpsc::channel();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let _ = accepted_tx.send(());
                thread::spawn(move || {
                    while let Ok(Some(_)) = read_frame::<ClientRequest>(&mut stream) {
                        thread::sleep(Duration::from_millis(20));
                        let reply = ClientReply::Ok(OpResult::Value(None));
                        if write_frame(&mut stream, &reply).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let forwarder = Forwarder::new(Duration::from_secs(30), None);
        let waits: Vec<_> = (1..=20)
            .map(|seq| {
                let (reply, answers) = waiting();
                forwarder.forward(addr.clone(), put(seq), reply);
                answers
            })
            .collect();
        for answers in waits {
            let got = answers.recv_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(got, ClientReply::Ok(OpResult::Value(None)));
        }
        let connections = accepted.try_iter().count();
        assert!(
            (1..=MAX_CONNECTIONS).contains(&connections),
            "{connections} connections"
        );
    }
}
