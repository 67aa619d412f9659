//! The bench's clients on one thread: every client's connection driven with epoll(7), the way
//! Go's netpoller drives the goroutines of etcd's load generator.
//!
//! The load generator shares the machine's cores with the servers it measures. With a thread
//! per client, every operation wakes the client's thread (measured: a third of a core at 64
//! clients on this 2-core machine, taken from the servers); here one wake-up of the thread
//! serves every answer that arrived meanwhile. The workload is the same: each client keeps one
//! operation in flight, with its own session, and sends the next one when the answer came.
//!
//! Each client talks to the leader found before the run. After an answer other than `Ok` (a
//! `NotLeader` after an election, say) or a broken connection, the client asks who leads now,
//! reconnects there and sends the same request again (the same seq: applied at most once), as
//! the client library does; its latency counts from the first send. Only an operation without
//! an answer within the operation timeout counts as an error.

use crate::client::Client;
use crate::kv::{Command, Op, OpResult};
use crate::wire::{decode_payload, encode_frame, ClientReply, ClientRequest, MAX_FRAME_LEN};
use rustix::buffer::spare_capacity;
use rustix::event::{epoll, Timespec};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What the clients measured: the latencies of the operations that completed inside the
/// window, and the failures inside it, by kind.
#[derive(Debug, Default)]
pub struct Outcome {
    pub latencies: Vec<Duration>,
    pub errors: BTreeMap<String, u64>,
}

/// The run to drive.
pub struct Load<'a> {
    /// Where every client connects first.
    pub leader: SocketAddr,
    /// Every node, for a client that went on through the client library.
    pub nodes: Vec<SocketAddr>,
    pub clients: usize,
    pub window_start: Instant,
    pub window_end: Instant,
    pub op_timeout: Duration,
    /// Client `c`'s `i`-th operation.
    pub next_op: &'a dyn Fn(usize, u64) -> Op,
}

/// One client: its connection and its session.
struct Conn {
    stream: Option<TcpStream>,
    client_id: u64,
    seq: u64,
    /// Operations started.
    i: u64,
    /// When the operation in flight was first sent.
    sent_at: Instant,
    /// The request in flight, whole (sent again after a reconnection).
    request: Vec<u8>,
    /// How much of `request` the current connection has taken.
    written: usize,
    inbuf: Vec<u8>,
    /// Set while the client has no connection: when it tries to reconnect.
    retry_at: Option<Instant>,
}

/// Pause before a client reconnects (as the client library's).
const RETRY_PAUSE: Duration = Duration::from_millis(50);

impl Conn {
    fn start(&mut self, op: Op, now: Instant) -> io::Result<()> {
        self.seq += 1;
        self.i += 1;
        let request = ClientRequest::Command(Command {
            client_id: self.client_id,
            seq: self.seq,
            op,
        });
        self.request = encode_frame(&request).map_err(io::Error::other)?;
        self.written = 0;
        self.sent_at = now;
        self.flush()
    }

    fn pending(&self) -> bool {
        self.stream.is_some() && self.written < self.request.len()
    }

    fn flush(&mut self) -> io::Result<()> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        while self.written < self.request.len() {
            match stream.write(&self.request[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what arrived; the answer once it is complete. It stops reading as soon as an
    /// answer is complete (the poll is level-triggered: whatever is left wakes it again), so
    /// an answer costs one read, not one more that finds the socket empty.
    fn receive(&mut self) -> io::Result<Option<ClientReply>> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(len) = complete_frame(&self.inbuf)? {
                let reply = decode_payload(&self.inbuf[4..4 + len]).map_err(io::Error::other)?;
                self.inbuf.drain(..4 + len);
                return Ok(Some(reply));
            }
            match stream.read(&mut buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Drops the connection; the client reconnects after a pause.
    fn disconnect(&mut self, now: Instant) {
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.inbuf.clear();
        self.retry_at = Some(now + RETRY_PAUSE);
    }
}

/// The payload length of the frame at the start of `buf`, once all of it is there.
fn complete_frame(buf: &[u8]) -> io::Result<Option<usize>> {
    let Some(header) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len > MAX_FRAME_LEN {
        return Err(io::Error::other(format!("an answer of {len} bytes")));
    }
    Ok((buf.len() >= 4 + len).then_some(len))
}

fn count(errors: &mut BTreeMap<String, u64>, kind: String, at: Instant, load: &Load) {
    if at >= load.window_start && at <= load.window_end {
        *errors.entry(kind).or_default() += 1;
    }
}

fn connect(addr: SocketAddr, ep: &impl std::os::fd::AsFd, c: usize) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_millis(300))?;
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    epoll::add(
        ep,
        &s,
        epoll::EventData::new_u64(c as u64),
        epoll::EventFlags::IN,
    )?;
    Ok(s)
}

/// Runs the clients until the window ends.
pub fn drive(load: &Load) -> Result<Outcome, String> {
    let mut out = Outcome::default();
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| format!("epoll: {e}"))?;
    let mut leader = load.leader;
    let mut finder = Client::new(load.nodes.clone());
    let now = Instant::now();
    let mut found_at: Option<Instant> = None;
    let mut conns = Vec::with_capacity(load.clients);
    for c in 0..load.clients {
        let stream =
            connect(leader, &ep, c).map_err(|e| format!("client {c}: connect to {leader}: {e}"))?;
        let mut conn = Conn {
            stream: Some(stream),
            client_id: fastrand::u64(..),
            seq: 0,
            i: 0,
            sent_at: now,
            request: Vec::new(),
            written: 0,
            inbuf: Vec::new(),
            retry_at: None,
        };
        conn.start((load.next_op)(c, 0), now)
            .map_err(|e| format!("client {c}: first request: {e}"))?;
        conns.push(conn);
    }
    let mut events: Vec<epoll::Event> = Vec::with_capacity(conns.len());
    while Instant::now() < load.window_end {
        // A request that did not fit the socket at once (not seen with requests this small),
        // or a client waiting to reconnect: wake up soon.
        let soon = conns.iter().any(|c| c.pending() || c.retry_at.is_some());
        let wait = Timespec {
            tv_sec: 0,
            tv_nsec: if soon { 1_000_000 } else { 20_000_000 },
        };
        events.clear();
        match epoll::wait(&ep, spare_capacity(&mut events), Some(&wait)) {
            Ok(_) => {}
            Err(e) if e == rustix::io::Errno::INTR => continue,
            Err(e) => return Err(format!("epoll: {e}")),
        }
        for event in &events {
            let c = event.data.u64() as usize;
            let conn = &mut conns[c];
            let reply = match conn.receive() {
                Ok(None) => continue,
                Ok(Some(r)) => r,
                Err(_) => {
                    conn.disconnect(Instant::now());
                    continue;
                }
            };
            let done = Instant::now();
            match reply {
                ClientReply::Ok(OpResult::Value(_))
                | ClientReply::Ok(OpResult::CasMismatch { .. }) => {
                    if done >= load.window_start && done <= load.window_end {
                        out.latencies.push(done - conn.sent_at);
                    }
                }
                ClientReply::Ok(OpResult::StaleRequest { .. }) => {
                    count(&mut out.errors, "stale request".into(), done, load)
                }
                // Not (or no longer) the leader, or an error the client library would retry.
                _ => {
                    conn.disconnect(done);
                    continue;
                }
            }
            if done < load.window_end {
                let op = (load.next_op)(c, conn.i);
                if conn.start(op, done).is_err() {
                    conn.disconnect(done);
                }
            }
        }
        let now = Instant::now();
        for (c, conn) in conns.iter_mut().enumerate() {
            if conn.pending() && conn.flush().is_err() {
                conn.disconnect(now);
            }
            // Without an answer for too long: an error, and the next operation.
            if now.duration_since(conn.sent_at) > load.op_timeout {
                count(&mut out.errors, "no answer in time".into(), now, load);
                conn.disconnect(now);
                conn.retry_at = Some(now);
                conn.seq += 1;
                conn.i += 1;
                let next = ClientRequest::Command(Command {
                    client_id: conn.client_id,
                    seq: conn.seq,
                    op: (load.next_op)(c, conn.i),
                });
                conn.request = encode_frame(&next).map_err(|e| e.to_string())?;
                conn.sent_at = now;
            }
            // Reconnect to whoever leads now, and send the request in flight again.
            if conn.retry_at.is_some_and(|t| t <= now) {
                // One question per pause, however many clients reconnect.
                if found_at.is_none_or(|t| now.duration_since(t) >= RETRY_PAUSE) {
                    found_at = Some(now);
                    if finder.leader_info(RETRY_PAUSE * 4).is_ok() {
                        leader = finder.leader().unwrap_or(leader);
                    }
                }
                match connect(leader, &ep, c) {
                    Ok(s) => {
                        conn.stream = Some(s);
                        conn.retry_at = None;
                        conn.written = 0;
                        if conn.flush().is_err() {
                            conn.disconnect(now);
                        }
                    }
                    Err(_) => conn.retry_at = Some(now + RETRY_PAUSE),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_complete_only_with_all_its_bytes() {
        assert_eq!(complete_frame(&[3, 0]).unwrap(), None);
        assert_eq!(complete_frame(&[3, 0, 0, 0, 1, 2]).unwrap(), None);
        assert_eq!(complete_frame(&[3, 0, 0, 0, 1, 2, 3, 9]).unwrap(), Some(3));
        assert!(complete_frame(&[0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
