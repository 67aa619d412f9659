//! A client of the replicated KV service: finds the leader by following hints, and retries a
//! request (with the same seq, so it is applied at most once) until a deadline. Its commands
//! are marked not to be forwarded (`ClientRequest::NoForward`): it finds the leader itself, and
//! [`Client::leader`] is the leader; [`Client::without_hints`] instead lets the node it talks
//! to forward them. Also the
//! operators' requests: which node leads ([`Client::leader_info`]), and a leadership transfer
//! ([`Client::transfer_leadership`]).
//!
//! With TLS ([`Client::with_tls`]), each connection verifies the node's certificate for the
//! address it connects to (the CA's node certificates carry their ports' IP addresses), and
//! presents a client certificate when the configuration has one.

use crate::kv::{Command, Op, OpResult};
use crate::tls;
use crate::wire::{
    read_frame, request_size, write_frame, ClientReply, ClientRequest, MemberRequest, WireError,
    MAX_REQUEST_BYTES,
};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Longer than the server's own wait for an operator's request (2 s), so the server answers
/// those first; a command has no server-side wait, and this is when its client retries.
const READ_TIMEOUT: Duration = Duration::from_secs(3);
const RETRY_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no leader with a quorum answered within {timeout:?} (last problem: {last})")]
    NoQuorum { timeout: Duration, last: String },
    #[error("the cluster has no nodes")]
    NoNodes,
    /// Refused before sending: the server would refuse it too.
    #[error("request of {size} bytes exceeds the maximum request size of {max} bytes ; the key and value together must be smaller")]
    TooLarge { size: usize, max: usize },
    /// A server refused an admin request that cannot succeed as asked (not retried).
    #[error("refused by {addr}: {reason}")]
    Refused { addr: SocketAddr, reason: String },
    /// A leadership transfer that did not end within the timeout (abandoned by the leader each
    /// time it was asked, or no leader reached).
    #[error("leadership transfer to node {to} not done within {timeout:?} (last problem: {last})")]
    TransferNotDone {
        to: u64,
        timeout: Duration,
        last: String,
    },
}

/// Who leads, as an admin request's answer says ([`ClientReply::Leader`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderInfo {
    pub id: u64,
    pub term: u64,
}

/// A connection to a node: plain, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

struct Connection {
    addr: SocketAddr,
    reader: BufReader<Stream>,
    /// The socket (its timeouts).
    writer: TcpStream,
    /// The read and write timeout the socket has (set again only when it changes: two
    /// system calls per request otherwise).
    timeout: Option<Duration>,
}

/// A configuration, as the leader answers a membership request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Members {
    pub cluster_id: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// The addresses the configuration carries (members listed only in the cluster file
    /// have none here).
    pub addresses: Vec<(u64, raft_core::Address)>,
}

pub struct Client {
    nodes: Vec<SocketAddr>,
    client_id: u64,
    seq: u64,
    target: usize,
    hinted: Option<SocketAddr>,
    conn: Option<Connection>,
    /// The address that answered the last successful request.
    leader: Option<SocketAddr>,
    /// Follow `NotLeader` hints, and ask nodes not to forward commands (the default).
    follow_hints: bool,
    /// TLS to the nodes (`None`: plain TCP).
    tls: Option<Arc<ClientConfig>>,
}

impl Client {
    /// A client with a random id (so that sessions of different clients do not collide).
    pub fn new(nodes: Vec<SocketAddr>) -> Self {
        Client {
            target: fastrand::usize(0..nodes.len().max(1)),
            nodes,
            client_id: fastrand::u64(..),
            seq: 0,
            hinted: None,
            conn: None,
            leader: None,
            follow_hints: true,
            tls: None,
        }
    }

    /// A client that sends its commands to the nodes it was given, never following a
    /// `NotLeader` hint: a follower forwards each command to the leader and relays its answer
    /// (`node/forward.rs`), so [`Client::leader`] is whichever node answered. The operators'
    /// requests are not forwarded: this client gets them answered only by the leader.
    pub fn without_hints(mut self) -> Self {
        self.follow_hints = false;
        self
    }

    /// The same client, connecting with TLS (see the module doc).
    pub fn with_tls(mut self, config: Option<Arc<ClientConfig>>) -> Self {
        self.tls = config;
        self
    }

    /// The encoded size the next request would have with `op` (to compare with
    /// [`MAX_REQUEST_BYTES`]).
    pub fn next_request_size(&self, op: &Op) -> usize {
        request_size(&Command {
            client_id: self.client_id,
            seq: self.seq + 1,
            op: op.clone(),
        })
        .unwrap_or(usize::MAX)
    }

    pub fn leader(&self) -> Option<SocketAddr> {
        self.leader
    }

    fn current_addr(&self) -> Option<SocketAddr> {
        self.hinted.or_else(|| self.nodes.get(self.target).copied())
    }

    fn next_node(&mut self) {
        self.hinted = None;
        self.conn = None;
        self.target = (self.target + 1) % self.nodes.len().max(1);
    }

    /// One request and its reply, taking no longer than `budget` (connect, write and read
    /// timeouts are all cut to it).
    fn round_trip(
        &mut self,
        addr: SocketAddr,
        request: &ClientRequest,
        budget: Duration,
    ) -> Result<ClientReply, String> {
        // std refuses zero timeouts.
        let budget = budget.max(Duration::from_millis(1));
        if self.conn.as_ref().map(|c| c.addr) != Some(addr) {
            let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT.min(budget))
                .map_err(|e| format!("connect {addr}: {e}"))?;
            let _ = stream.set_nodelay(true);
            let writer = stream.try_clone().map_err(|e| e.to_string())?;
            let stream = match &self.tls {
                Some(config) => Stream::Tls(Box::new(
                    crate::tls_stream::connect(
                        Arc::clone(config),
                        crate::tls::server_name_of(addr),
                        stream,
                        CONNECT_TIMEOUT.max(READ_TIMEOUT).min(budget),
                    )
                    .map_err(|e| format!("{addr}: TLS: {e}"))?,
                )),
                None => Stream::Plain(stream),
            };
            self.conn = Some(Connection {
                addr,
                reader: BufReader::new(stream),
                writer,
                timeout: None,
            });
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err("no connection".into());
        };
        let timeout = READ_TIMEOUT.min(budget);
        if conn.timeout != Some(timeout) {
            let timeouts = conn
                .writer
                .set_read_timeout(Some(timeout))
                .and_then(|()| conn.writer.set_write_timeout(Some(timeout)));
            if let Err(e) = timeouts {
                self.conn = None;
                return Err(format!("{addr}: cannot set a timeout: {e}"));
            }
            conn.timeout = Some(timeout);
        }
        let result = write_frame(conn.reader.get_mut(), request)
            .and_then(|()| conn.reader.get_mut().flush().map_err(WireError::from))
            .and_then(|()| read_frame::<ClientReply>(&mut conn.reader))
            .and_then(|r| r.ok_or(WireError::Malformed("connection closed".into())));
        result.map_err(|e| {
            self.conn = None;
            format!("{addr}: {e}")
        })
    }

    /// Runs one operation, retrying across nodes until `timeout` has passed: it returns within
    /// about `timeout` (every connect, write and read is cut to the time left), after at least
    /// one attempt even when `timeout` is zero.
    pub fn execute(&mut self, op: Op, timeout: Duration) -> Result<OpResult, ClientError> {
        if self.nodes.is_empty() {
            return Err(ClientError::NoNodes);
        }
        let command = Command {
            client_id: self.client_id,
            seq: self.seq + 1,
            op,
        };
        // Exactly the check the server makes (retries keep the seq, so the size).
        let size = self.next_request_size(&command.op);
        if size > MAX_REQUEST_BYTES {
            return Err(ClientError::TooLarge {
                size,
                max: MAX_REQUEST_BYTES,
            });
        }
        self.seq += 1;
        let request = if self.follow_hints {
            ClientRequest::NoForward(command)
        } else {
            ClientRequest::Command(command)
        };
        match self.call(&request, timeout)? {
            (addr, ClientReply::Ok(result)) => {
                self.leader = Some(addr);
                self.hinted = Some(addr);
                Ok(result)
            }
            (addr, reply) => unreachable!("call returned {reply:?} from {addr} to a command"),
        }
    }

    /// Which node leads: asks any node and follows its hint to the leader, which names itself
    /// (as it believes: a leader cut off from its majority believes it for at most an election
    /// timeout). Retries until `timeout` like [`Client::execute`].
    pub fn leader_info(&mut self, timeout: Duration) -> Result<LeaderInfo, ClientError> {
        match self.call(&ClientRequest::Leader, timeout)? {
            (addr, ClientReply::Leader { id, term }) => {
                self.leader = Some(addr);
                self.hinted = Some(addr);
                Ok(LeaderInfo { id, term })
            }
            (addr, ClientReply::Refused(reason)) => Err(ClientError::Refused { addr, reason }),
            (addr, reply) => unreachable!("call returned {reply:?} from {addr} to a query"),
        }
    }

    /// Asks the leader to hand its leadership to node `to` (Ongaro's thesis §3.10) and waits
    /// for the end of the transfer: the leader answers once it has stepped down and knows the
    /// new leader, which this returns (`to`, unless another server won meanwhile: the caller
    /// checks). A transfer the leader abandoned (the target did not win within its election
    /// timeout) is asked again until `timeout`; a target that is not a member is
    /// [`ClientError::Refused`].
    pub fn transfer_leadership(
        &mut self,
        to: u64,
        timeout: Duration,
    ) -> Result<LeaderInfo, ClientError> {
        let request = ClientRequest::TransferLeadership { to };
        match self.call(&request, timeout) {
            Ok((_, ClientReply::Leader { id, term })) => {
                // The answer comes from the old leader: the next request goes to the new one.
                self.hinted = None;
                self.conn = None;
                Ok(LeaderInfo { id, term })
            }
            Ok((addr, ClientReply::Refused(reason))) => Err(ClientError::Refused { addr, reason }),
            Ok((addr, reply)) => unreachable!("call returned {reply:?} from {addr} to a transfer"),
            Err(ClientError::NoQuorum { timeout, last }) => {
                Err(ClientError::TransferNotDone { to, timeout, last })
            }
            Err(e) => Err(e),
        }
    }

    /// A membership request (`raft-kv member`): the configuration's voters and learners,
    /// once the change is committed (at once for `List`). A change the leader cannot make yet
    /// is asked again until `timeout`: one waiting for the leader's first commit of its term
    /// after a read (which a leader that knows no read index yet proposes through the log,
    /// committing an entry of its term), one waiting for an earlier change or for a learner
    /// to catch up after a pause. Any other refusal is [`ClientError::Refused`].
    pub fn member(
        &mut self,
        request: MemberRequest,
        timeout: Duration,
    ) -> Result<Members, ClientError> {
        let deadline = Instant::now() + timeout;
        let request = ClientRequest::Member(request);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.call(&request, left)? {
                (
                    addr,
                    ClientReply::Members {
                        cluster_id,
                        voters,
                        learners,
                        addresses,
                    },
                ) => {
                    self.leader = Some(addr);
                    self.hinted = Some(addr);
                    return Ok(Members {
                        cluster_id,
                        voters,
                        learners,
                        addresses,
                    });
                }
                (addr, ClientReply::Refused(reason)) => {
                    if !reason.contains("retry shortly") || Instant::now() >= deadline {
                        return Err(ClientError::Refused { addr, reason });
                    }
                    if reason.contains("entry of its term") {
                        let left = deadline.saturating_duration_since(Instant::now());
                        let read = Op::Get { key: String::new() };
                        self.execute(read, left)?;
                    } else {
                        thread::sleep(RETRY_PAUSE);
                    }
                }
                (addr, reply) => {
                    unreachable!("call returned {reply:?} from {addr} to a member request")
                }
            }
        }
    }

    /// Sends `request` to the leader, following hints and retrying across nodes until
    /// `timeout` has passed: it returns within about `timeout` (every connect, write and read
    /// is cut to the time left), after at least one attempt even when `timeout` is zero.
    /// Returns the first answer that is neither `NotLeader` nor `Error` (nor a reply of the
    /// wrong kind for the request), with the address that gave it.
    fn call(
        &mut self,
        request: &ClientRequest,
        timeout: Duration,
    ) -> Result<(SocketAddr, ClientReply), ClientError> {
        if self.nodes.is_empty() {
            return Err(ClientError::NoNodes);
        }
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no attempt");
        let mut first = true;
        while first || Instant::now() < deadline {
            first = false;
            let Some(addr) = self.current_addr() else {
                return Err(ClientError::NoNodes);
            };
            let left = deadline.saturating_duration_since(Instant::now());
            match self.round_trip(addr, request, left) {
                Ok(reply @ ClientReply::Ok(_)) if is_command(request) => {
                    return Ok((addr, reply));
                }
                Ok(
                    reply @ (ClientReply::Leader { .. }
                    | ClientReply::Refused(_)
                    | ClientReply::Members { .. }),
                ) if !is_command(request) => {
                    return Ok((addr, reply));
                }
                Ok(ClientReply::NotLeader {
                    leader_hint: Some(hint),
                }) if self.follow_hints && hint.parse::<SocketAddr>().is_ok_and(|h| h != addr) => {
                    last = format!("{addr}: not the leader, try {hint}");
                    self.hinted = hint.parse().ok();
                    continue;
                }
                Ok(ClientReply::NotLeader { .. }) => {
                    last = format!("{addr}: not the leader, no leader known");
                    self.next_node();
                }
                Ok(ClientReply::Error(e)) => {
                    last = format!("{addr}: {e}");
                    self.next_node();
                }
                Ok(other) => {
                    last = format!("{addr}: an answer of the wrong kind: {other:?}");
                    self.next_node();
                }
                Err(e) => {
                    last = e;
                    self.next_node();
                }
            }
            thread::sleep(RETRY_PAUSE.min(deadline.saturating_duration_since(Instant::now())));
        }
        Err(ClientError::NoQuorum { timeout, last })
    }
}

/// Whether `request` is a key-value command (answered `Ok`), not an operator's request.
fn is_command(request: &ClientRequest) -> bool {
    matches!(
        request,
        ClientRequest::Command(_) | ClientRequest::NoForward(_)
    )
}

/// A client's TLS configuration for the cluster file `cluster` read from `cluster_file`: the
/// given CA (and client certificate) when there is one, else the `[tls]` table's directory's
/// `ca.pem` (and `client.pem` with `client.key`, when both are there); `None` (plain TCP)
/// without either.
pub fn tls_config_for(
    cluster: &crate::config::ClusterConfig,
    cluster_file: &Path,
    ca: Option<&Path>,
    identity: Option<&tls::Identity>,
) -> Result<Option<Arc<ClientConfig>>, crate::tls::TlsError> {
    if let Some(ca) = ca {
        return tls::client_config(ca, identity).map(Some);
    }
    let Some(dir) = cluster.tls_dir(cluster_file) else {
        return match identity {
            Some(i) => Err(crate::tls::TlsError::File {
                path: i.cert.display().to_string(),
                message: "a client certificate needs a CA (--ca, or a [tls] table in the \
                          cluster file)"
                    .into(),
            }),
            None => Ok(None),
        };
    };
    let found = tls::client_identity(&dir);
    let identity = match identity {
        Some(i) => Some(i.clone()),
        None if found.cert.exists() && found.key.exists() => Some(found),
        None => None,
    };
    tls::client_config(&tls::ca_file(&dir), identity.as_ref()).map(Some)
}
