//! One client connection's transport: the plain socket, or TLS over it. The poller reads it
//! without waiting, the event loop writes an answer without waiting, and short-lived threads
//! finish slow writes within a timeout; all go through this one type.
//!
//! The socket stays blocking (the poller's reads and the no-wait writes pass `MSG_DONTWAIT`).
//! With TLS, the rustls connection is shared under a lock held only for non-blocking work: a
//! slow write waits for the socket to be writable *outside* the lock, so the poller never
//! waits on a client. Decrypted bytes may stay in the connection after the socket is drained
//! (the poller's buffer was full): [`ClientConn::is_tls`] tells the poller to read such a
//! connection again when it has room, instead of waiting for the socket.

use super::shared::lock;
use crate::tls_stream::flush_no_wait;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustls::{ServerConfig, ServerConnection};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A client connection.
pub(crate) struct ClientConn {
    sock: TcpStream,
    tls: Option<Mutex<ServerConnection>>,
}

/// What a no-wait send left to write.
pub(crate) enum Sent {
    All,
    /// Plain: the bytes the socket did not take.
    Rest(Vec<u8>),
    /// TLS: records waiting in the connection.
    Pending,
}

/// The socket's reads that never wait.
struct NoWaitRead<'a>(&'a TcpStream);

impl Read for NoWaitRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        rustix::net::recv(self.0, buf, rustix::net::RecvFlags::DONTWAIT)
            .map(|(n, _)| n)
            .map_err(io::Error::from)
    }
}

impl ClientConn {
    /// `sock` as it is (no TLS config) or as the server side of a TLS connection.
    pub(crate) fn new(sock: TcpStream, tls: Option<&Arc<ServerConfig>>) -> io::Result<Self> {
        let tls = match tls {
            Some(config) => {
                let mut conn =
                    ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
                // One answer at a time per connection: what it buffers is one frame.
                conn.set_buffer_limit(None);
                Some(Mutex::new(conn))
            }
            None => None,
        };
        Ok(ClientConn { sock, tls })
    }

    pub(crate) fn socket(&self) -> &TcpStream {
        &self.sock
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Reads what is there without waiting: `Ok(0)` when the client has finished,
    /// `WouldBlock` when nothing is there now. A TLS handshake advances here; a TLS error
    /// (garbage, a certificate refused) is an `InvalidData` error, after the alert is sent.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &self.tls else {
            return NoWaitRead(&self.sock).read(buf);
        };
        let mut conn = lock(tls);
        loop {
            match conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                // Closed without close_notify: for the poller, an end like any other.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match conn.read_tls(&mut NoWaitRead(&self.sock)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = conn.process_new_packets() {
                let _ = flush_no_wait(&mut conn, &self.sock);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // The handshake's answers; a client that does not read them stalls only itself
            // (the records wait in the connection, and it is closed when idle).
            let _ = flush_no_wait(&mut conn, &self.sock);
        }
    }

    /// Sends `frame` without waiting.
    pub(crate) fn send_no_wait(&self, frame: &[u8]) -> io::Result<Sent> {
        match &self.tls {
            None => {
                let flags = rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL;
                let written = match rustix::net::send(&self.sock, frame, flags) {
                    Ok(n) => n,
                    Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::INTR => 0,
                    Err(e) => return Err(e.into()),
                };
                Ok(if written == frame.len() {
                    Sent::All
                } else {
                    Sent::Rest(frame[written..].to_vec())
                })
            }
            Some(tls) => {
                let mut conn = lock(tls);
                conn.writer().write_all(frame)?;
                Ok(if flush_no_wait(&mut conn, &self.sock) {
                    Sent::All
                } else {
                    Sent::Pending
                })
            }
        }
    }

    /// Writes what `left` says is left, within `timeout`.
    pub(crate) fn finish(&self, left: Sent, timeout: Duration) -> io::Result<()> {
        match (left, &self.tls) {
            (Sent::All, _) => Ok(()),
            (Sent::Rest(rest), _) => {
                let mut s = &self.sock;
                s.set_write_timeout(Some(timeout))?;
                s.write_all(&rest)
            }
            (Sent::Pending, None) => Ok(()),
            (Sent::Pending, Some(tls)) => {
                let deadline = Instant::now() + timeout;
                loop {
                    if flush_no_wait(&mut lock(tls), &self.sock) {
                        return Ok(());
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    // Waits for room without the lock.
                    let mut fds = [PollFd::new(&self.sock, PollFlags::OUT)];
                    let wait = Timespec {
                        tv_sec: left.as_secs() as i64,
                        tv_nsec: i64::from(left.subsec_nanos()),
                    };
                    match poll(&mut fds, Some(&wait)) {
                        Ok(_) => {}
                        Err(e) if e == rustix::io::Errno::INTR => {}
                        Err(e) => return Err(e.into()),
                    }
                    let revents = fds[0].revents();
                    if revents.intersects(PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL) {
                        return Err(io::ErrorKind::BrokenPipe.into());
                    }
                }
            }
        }
    }

    /// Writes `frame` whole within `timeout`.
    pub(crate) fn send_within(&self, frame: &[u8], timeout: Duration) -> io::Result<()> {
        let left = self.send_no_wait(frame)?;
        self.finish(left, timeout)
    }

    pub(crate) fn shutdown(&self, how: Shutdown) {
        let _ = self.sock.shutdown(how);
    }
}
