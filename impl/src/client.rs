//! A client of the replicated KV service: finds the leader by following hints, and retries a
//! request (with the same seq, so it is applied at most once) until a deadline.

use crate::kv::{Command, Op, OpResult};
use crate::wire::{
    read_frame, request_size, write_frame, ClientReply, ClientRequest, WireError, MAX_REQUEST_BYTES,
};
use std::io::BufReader;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Longer than the server's own wait for a commit, so the server answers first.
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
}

struct Connection {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
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
        }
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
        command: &Command,
        budget: Duration,
    ) -> Result<ClientReply, String> {
        // std refuses zero timeouts.
        let budget = budget.max(Duration::from_millis(1));
        if self.conn.as_ref().map(|c| c.addr) != Some(addr) {
            let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT.min(budget))
                .map_err(|e| format!("connect {addr}: {e}"))?;
            let _ = stream.set_nodelay(true);
            let writer = stream.try_clone().map_err(|e| e.to_string())?;
            self.conn = Some(Connection {
                addr,
                reader: BufReader::new(stream),
                writer,
            });
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err("no connection".into());
        };
        let timeouts = conn
            .writer
            .set_read_timeout(Some(READ_TIMEOUT.min(budget)))
            .and_then(|()| {
                conn.writer
                    .set_write_timeout(Some(READ_TIMEOUT.min(budget)))
            });
        if let Err(e) = timeouts {
            self.conn = None;
            return Err(format!("{addr}: cannot set a timeout: {e}"));
        }
        let request = ClientRequest {
            command: command.clone(),
        };
        let result = write_frame(&mut conn.writer, &request)
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
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no attempt");
        let mut first = true;
        while first || Instant::now() < deadline {
            first = false;
            let Some(addr) = self.current_addr() else {
                return Err(ClientError::NoNodes);
            };
            let left = deadline.saturating_duration_since(Instant::now());
            match self.round_trip(addr, &command, left) {
                Ok(ClientReply::Ok(result)) => {
                    self.leader = Some(addr);
                    self.hinted = Some(addr);
                    return Ok(result);
                }
                Ok(ClientReply::NotLeader {
                    leader_hint: Some(hint),
                }) if hint.parse::<SocketAddr>().is_ok_and(|h| h != addr) => {
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
