//! Blocking TLS over a `TcpStream`, for the peer connections and the client library: a
//! handshake bounded in time, and writes that never read (a peer sender's socket is only
//! written: a read there could block it for ever).

use rustls::{ClientConnection, ConnectionCommon, ServerConnection, SideData, StreamOwned};
use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `conn`'s handshake over `sock` for at most `timeout`; leaves the socket's read and
/// write timeouts at what is left of it. A refusal (a certificate the other side or this side
/// rejects) is an `InvalidData` error saying why.
pub fn handshake<D: SideData>(
    conn: &mut ConnectionCommon<D>,
    sock: &mut TcpStream,
    timeout: Duration,
) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("TLS handshake not done within {timeout:?}"),
            ));
        }
        sock.set_read_timeout(Some(left))?;
        sock.set_write_timeout(Some(left))?;
        match conn.complete_io(sock) {
            Ok((0, 0)) if conn.is_handshaking() => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed during the TLS handshake",
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // An alert for the other side, if the refusal is ours (best effort).
                let _ = conn.write_tls(sock);
                return Err(e);
            }
        }
    }
    flush(conn, sock)
}

/// Writes out every TLS record `conn` holds (blocking, within the socket's write timeout).
pub fn flush<D: SideData>(conn: &mut ConnectionCommon<D>, sock: &mut TcpStream) -> io::Result<()> {
    while conn.wants_write() {
        if conn.write_tls(sock)? == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
    }
    Ok(())
}

/// A client-side TLS connection whose handshake is done.
pub fn connect(
    config: Arc<rustls::ClientConfig>,
    name: rustls_pki_types::ServerName<'static>,
    mut sock: TcpStream,
    timeout: Duration,
) -> io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let mut conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
    handshake(&mut conn, &mut sock, timeout)?;
    Ok(StreamOwned::new(conn, sock))
}

/// A server-side TLS connection whose handshake is done.
pub fn accept(
    config: Arc<rustls::ServerConfig>,
    mut sock: TcpStream,
    timeout: Duration,
) -> io::Result<StreamOwned<ServerConnection, TcpStream>> {
    let mut conn = ServerConnection::new(config).map_err(io::Error::other)?;
    handshake(&mut conn, &mut sock, timeout)?;
    Ok(StreamOwned::new(conn, sock))
}

/// Writes `data` through a client connection without reading: the plaintext is taken whole
/// (the connection's buffer is unbounded: see [`unbounded`]), then its records are written.
pub fn write_all_no_read(
    stream: &mut StreamOwned<ClientConnection, TcpStream>,
    data: &[u8],
) -> io::Result<()> {
    stream.conn.writer().write_all(data)?;
    flush(&mut stream.conn, &mut stream.sock)
}

/// Lets `conn` take any amount of plaintext (rustls' default bound would make a large write
/// partial; what is buffered here is bounded by the callers: one frame, or one batch).
pub fn unbounded<D: SideData>(conn: &mut ConnectionCommon<D>) {
    conn.set_buffer_limit(None);
}

impl crate::wire::TimedStream for StreamOwned<ServerConnection, TcpStream> {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(timeout)
    }
}

/// A socket's writes that never wait (`MSG_DONTWAIT`): `WouldBlock` when its buffer is full.
/// For the writes of the event loop and the client poller, which must not block.
pub struct NoWait<'a>(pub &'a TcpStream);

impl Write for NoWait<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let flags = rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL;
        rustix::net::send(self.0, buf, flags).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes what `conn` holds without waiting; returns whether everything is out (`false`: the
/// socket is full, or broken, and the rest stays in `conn`).
pub fn flush_no_wait<D: SideData>(conn: &mut ConnectionCommon<D>, sock: &TcpStream) -> bool {
    while conn.wants_write() {
        match conn.write_tls(&mut NoWait(sock)) {
            Ok(n) if n > 0 => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => return false,
        }
    }
    true
}
