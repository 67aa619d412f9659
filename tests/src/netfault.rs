//! A loopback TCP proxy with network faults, for the process-level soak.
//!
//! One [`Proxy`] stands for one direction of the cluster's network, the ordered pair i → j: it
//! listens on `127.0.0.1:0`, and node i's cluster file names that listener as j's peer
//! address, so every connection i opens to j goes through it. The node's peer connections
//! carry Raft messages one way only (a node writes on the connections it opened and reads on
//! the ones it accepted; replies go back on the other node's own connections), so what the
//! proxy i → j does to its bytes is what the network does to i's messages for j. The bytes
//! are forwarded unchanged both ways (the HMAC handshake's replies come back on the same
//! connection and pass through like everything else).
//!
//! The faults, changed at any time through the proxy's [`LinkControl`]:
//!
//! - **delay**: every chunk read is written on no earlier than `delay` after it was read (order
//!   kept);
//! - **stall**: nothing is forwarded (the bytes wait in the proxy's bounded queue and then in
//!   the kernel's buffers, as in a partition that TCP outlives); a one-way partition i ↛ j.
//!   Healing forwards what waited;
//! - **cut**: every open connection is closed at once, mid-frame or not (the receiver discards
//!   a partial frame; the sender reconnects); with `cut_per_mille`, each chunk closes its
//!   connection with that probability instead of being forwarded (a flaky link).
//!
//! Frames a cut loses are lost as on a lossy network, which the model allows; the proxy never
//! duplicates, corrupts or reorders bytes within a connection.
//!
//! Bounds: only loopback addresses (listener and target); at most [`MAX_CONNECTIONS`] open
//! connections per proxy (more are closed at once); each connection's queue holds at most
//! [`QUEUE_CHUNKS`] chunks of at most [`CHUNK`] bytes; every blocking call has a timeout of at
//! most [`POLL`] or [`IO_TIMEOUT`], and every loop checks the stop flag between them; a proxy
//! stops by itself after [`MAX_LIFETIME`]. Dropping a [`Proxy`] stops and joins all its
//! threads.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Most bytes read (and forwarded) at once.
pub const CHUNK: usize = 16 * 1024;
/// Chunks a connection's direction may hold (then reading waits: backpressure).
pub const QUEUE_CHUNKS: usize = 256;
/// Open connections per proxy.
pub const MAX_CONNECTIONS: usize = 16;
/// How often blocked threads look at the stop flag and the link's settings.
pub const POLL: Duration = Duration::from_millis(10);
/// Connect and write timeout.
pub const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// A proxy stops by itself after this long (a soak trial takes seconds).
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The faults of one direction; shared by the proxy's threads and the soak.
#[derive(Debug, Default)]
pub struct LinkControl {
    delay_us: AtomicU64,
    stalled: AtomicBool,
    cut_per_mille: AtomicU64,
    /// Bumped by [`LinkControl::cut`]: connections of an older generation close.
    generation: AtomicU64,
}

impl LinkControl {
    pub fn set_delay(&self, delay: Duration) {
        self.delay_us.store(
            delay.as_micros().min(u64::MAX as u128) as u64,
            Ordering::SeqCst,
        );
    }

    pub fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_us.load(Ordering::SeqCst))
    }

    /// Stops forwarding (true) or resumes (false).
    pub fn set_stalled(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }

    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::SeqCst)
    }

    /// Each forwarded chunk closes its connection with probability `per_mille / 1000`.
    pub fn set_cut_per_mille(&self, per_mille: u64) {
        self.cut_per_mille
            .store(per_mille.min(1000), Ordering::SeqCst);
    }

    /// Closes every connection open now.
    pub fn cut(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// No delay, no stall, no flaky cuts (open connections stay open).
    pub fn heal(&self) {
        self.set_delay(Duration::ZERO);
        self.set_stalled(false);
        self.set_cut_per_mille(0);
    }
}

/// What a proxy did.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Connections accepted and connected through.
    pub connections: AtomicU64,
    /// Connections the proxy closed because of a cut (not because an end closed).
    pub cuts: AtomicU64,
    /// Bytes forwarded from the connecting side to the target.
    pub bytes_forward: AtomicU64,
    /// Bytes forwarded back.
    pub bytes_back: AtomicU64,
}

struct Shared {
    control: Arc<LinkControl>,
    stats: ProxyStats,
    stop: AtomicBool,
    deadline: Instant,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || Instant::now() >= self.deadline
    }
}

/// A proxy from a listener on loopback to `target` (loopback too).
pub struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards every connection to `target`.
    pub fn start(target: SocketAddr) -> std::io::Result<Proxy> {
        Self::start_with(target, Arc::new(LinkControl::default()))
    }

    /// As [`Proxy::start`], with a control shared with the caller.
    pub fn start_with(target: SocketAddr, control: Arc<LinkControl>) -> std::io::Result<Proxy> {
        if !target.ip().is_loopback() {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                format!("the proxy only forwards to loopback addresses, not {target}"),
            ));
        }
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            control,
            stats: ProxyStats::default(),
            stop: AtomicBool::new(false),
            deadline: Instant::now() + MAX_LIFETIME,
        });
        let s = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn(move || accept_loop(listener, target, s))?;
        Ok(Proxy {
            addr,
            target,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// Where to connect to go through the proxy.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn target(&self) -> SocketAddr {
        self.target
    }

    pub fn control(&self) -> &Arc<LinkControl> {
        &self.shared.control
    }

    pub fn stats(&self) -> &ProxyStats {
        &self.shared.stats
    }

    /// Stops accepting, closes every connection and joins every thread.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stopping() {
        connections.retain(|h| !h.is_finished());
        match listener.accept() {
            Ok((downstream, _)) => {
                if connections.len() >= MAX_CONNECTIONS {
                    let _ = downstream.shutdown(Shutdown::Both);
                    continue;
                }
                let s = Arc::clone(&shared);
                match thread::Builder::new()
                    .name("proxy-conn".into())
                    .spawn(move || connection(downstream, target, s))
                {
                    Ok(h) => connections.push(h),
                    Err(_) => thread::sleep(POLL),
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(_) => thread::sleep(POLL),
        }
    }
    for h in connections {
        let _ = h.join();
    }
}

/// One proxied connection: four threads (a reader and a writer each way), all ended together.
fn connection(downstream: TcpStream, target: SocketAddr, shared: Arc<Shared>) {
    let _ = downstream.set_nonblocking(false);
    let Ok(upstream) = TcpStream::connect_timeout(&target, IO_TIMEOUT) else {
        let _ = downstream.shutdown(Shutdown::Both);
        return;
    };
    let generation = shared.control.generation.load(Ordering::SeqCst);
    shared.stats.connections.fetch_add(1, Ordering::Relaxed);
    let ends = [downstream, upstream];
    let mut setup = true;
    for s in &ends {
        setup &= s.set_nodelay(true).is_ok()
            && s.set_read_timeout(Some(POLL)).is_ok()
            && s.set_write_timeout(Some(IO_TIMEOUT)).is_ok();
    }
    let clones = (|| {
        Some([
            ends[0].try_clone().ok()?,
            ends[0].try_clone().ok()?,
            ends[1].try_clone().ok()?,
            ends[1].try_clone().ok()?,
        ])
    })();
    let Some([down_r, down_w, up_r, up_w]) = clones.filter(|_| setup) else {
        for s in &ends {
            let _ = s.shutdown(Shutdown::Both);
        }
        return;
    };
    let closed = Arc::new(AtomicBool::new(false));
    let cut = Arc::new(AtomicBool::new(false));
    let conn = Conn {
        shared: Arc::clone(&shared),
        generation,
        closed: Arc::clone(&closed),
        cut: Arc::clone(&cut),
        rng: Mutex::new(fastrand::Rng::new()),
    };
    let conn = Arc::new(conn);
    let mut threads = Vec::new();
    for (from, to, forward) in [(down_r, up_w, true), (up_r, down_w, false)] {
        let (tx, rx) = mpsc::sync_channel::<(Instant, Vec<u8>)>(QUEUE_CHUNKS);
        let c = Arc::clone(&conn);
        threads.push(thread::spawn(move || c.read_side(from, tx)));
        let c = Arc::clone(&conn);
        threads.push(thread::spawn(move || c.write_side(rx, to, forward)));
    }
    for h in threads {
        let _ = h.join();
    }
    for s in &ends {
        let _ = s.shutdown(Shutdown::Both);
    }
    if cut.load(Ordering::SeqCst) {
        shared.stats.cuts.fetch_add(1, Ordering::Relaxed);
    }
}

struct Conn {
    shared: Arc<Shared>,
    generation: u64,
    /// Any thread of the connection ended: all end.
    closed: Arc<AtomicBool>,
    /// The connection was closed by a fault.
    cut: Arc<AtomicBool>,
    rng: Mutex<fastrand::Rng>,
}

impl Conn {
    /// Whether the connection must end now (and why is recorded).
    fn over(&self) -> bool {
        if self.closed.load(Ordering::SeqCst) || self.shared.stopping() {
            return true;
        }
        if self.shared.control.generation.load(Ordering::SeqCst) != self.generation {
            self.cut.store(true, Ordering::SeqCst);
            self.close();
            return true;
        }
        false
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn read_side(&self, mut from: TcpStream, tx: mpsc::SyncSender<(Instant, Vec<u8>)>) {
        let mut buf = vec![0u8; CHUNK];
        'reading: while !self.over() {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let mut item = (Instant::now(), buf[..n].to_vec());
                    // A full queue: wait (backpressure), but never past a stop or a cut.
                    loop {
                        match tx.try_send(item) {
                            Ok(()) => break,
                            Err(mpsc::TrySendError::Full(back)) => {
                                item = back;
                                if self.over() {
                                    break 'reading;
                                }
                                thread::sleep(POLL);
                            }
                            Err(mpsc::TrySendError::Disconnected(_)) => break 'reading,
                        }
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        // The writer forwards what was read before the end (unless the end is a cut).
        drop(tx);
    }

    fn write_side(&self, rx: mpsc::Receiver<(Instant, Vec<u8>)>, mut to: TcpStream, forward: bool) {
        let control = &self.shared.control;
        loop {
            let (read_at, bytes) = match rx.recv_timeout(POLL) {
                Ok(item) => item,
                Err(RecvTimeoutError::Timeout) => {
                    if self.over() {
                        break;
                    }
                    continue;
                }
                // The reader ended (its end closed) and everything read was written.
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // Held while stalled and until its delay has passed (both may change meanwhile).
            loop {
                if self.over() {
                    self.close();
                    return;
                }
                let due = read_at + control.delay();
                let now = Instant::now();
                if control.stalled() || now < due {
                    thread::sleep(if control.stalled() {
                        POLL
                    } else {
                        (due - now).min(POLL)
                    });
                    continue;
                }
                break;
            }
            let per_mille = control.cut_per_mille.load(Ordering::SeqCst);
            if per_mille > 0 {
                let roll = self.rng.lock().map(|mut r| r.u64(0..1000)).unwrap_or(1000);
                if roll < per_mille {
                    self.cut.store(true, Ordering::SeqCst);
                    break;
                }
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
            let stat = if forward {
                &self.shared.stats.bytes_forward
            } else {
                &self.shared.stats.bytes_back
            };
            stat.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    /// A loopback server that sends every byte it receives, per connection, into a channel,
    /// and echoes it back.
    fn echo_server() -> (SocketAddr, mpsc::Receiver<Vec<u8>>, Arc<AtomicBool>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let tx = tx.clone();
                        let s = Arc::clone(&s);
                        thread::spawn(move || {
                            stream.set_nonblocking(false).unwrap();
                            stream.set_read_timeout(Some(POLL)).unwrap();
                            let mut buf = [0u8; 1024];
                            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                                match stream.read(&mut buf) {
                                    Ok(0) => {
                                        let _ = tx.send(Vec::new());
                                        return;
                                    }
                                    Ok(n) => {
                                        let _ = tx.send(buf[..n].to_vec());
                                        if stream.write_all(&buf[..n]).is_err() {
                                            return;
                                        }
                                    }
                                    Err(e)
                                        if matches!(
                                            e.kind(),
                                            ErrorKind::WouldBlock | ErrorKind::TimedOut
                                        ) => {}
                                    Err(_) => {
                                        let _ = tx.send(Vec::new());
                                        return;
                                    }
                                }
                            }
                        });
                    }
                    Err(_) => thread::sleep(POLL),
                }
            }
        });
        (addr, rx, stop)
    }

    /// Bytes the server received within `window`, and whether its connection closed.
    fn received_or_closed(
        rx: &mpsc::Receiver<Vec<u8>>,
        want: usize,
        window: Duration,
    ) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + window;
        let mut got = Vec::new();
        while got.len() < want {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) if chunk.is_empty() => return (got, true),
                Ok(chunk) => got.extend(chunk),
                Err(_) => break,
            }
        }
        (got, false)
    }

    fn received(rx: &mpsc::Receiver<Vec<u8>>, want: usize, window: Duration) -> Vec<u8> {
        received_or_closed(rx, want, window).0
    }

    #[test]
    fn bytes_pass_through_both_ways() {
        let (server, rx, stop) = echo_server();
        let proxy = Proxy::start(server).unwrap();
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        c.write_all(b"hello\n").unwrap();
        assert_eq!(received(&rx, 6, Duration::from_secs(2)), b"hello\n");
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut line = String::new();
        std::io::BufReader::new(&c).read_line(&mut line).unwrap();
        assert_eq!(line, "hello\n");
        assert_eq!(proxy.stats().bytes_forward.load(Ordering::Relaxed), 6);
        stop.store(true, Ordering::SeqCst);
    }

    #[test]
    fn a_stalled_link_delivers_nothing_and_a_healed_one_delivers_again() {
        let (server, rx, stop) = echo_server();
        let proxy = Proxy::start(server).unwrap();
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        c.write_all(b"before").unwrap();
        assert_eq!(received(&rx, 6, Duration::from_secs(2)), b"before");
        proxy.control().set_stalled(true);
        c.write_all(b"during").unwrap();
        assert_eq!(
            received(&rx, 1, Duration::from_millis(500)),
            b"",
            "a stalled link forwarded bytes"
        );
        // A new connection made while stalled is stalled too.
        let mut c2 = TcpStream::connect(proxy.addr()).unwrap();
        c2.write_all(b"new").unwrap();
        assert_eq!(received(&rx, 1, Duration::from_millis(300)), b"");
        proxy.control().heal();
        let mut got = received(&rx, 9, Duration::from_secs(2));
        got.sort_unstable();
        let mut want = b"duringnew".to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "a healed link delivers what waited");
        c.write_all(b"after").unwrap();
        assert_eq!(received(&rx, 5, Duration::from_secs(2)), b"after");
        stop.store(true, Ordering::SeqCst);
    }

    #[test]
    fn a_delayed_link_delivers_late_and_in_order() {
        let (server, rx, stop) = echo_server();
        let proxy = Proxy::start(server).unwrap();
        proxy.control().set_delay(Duration::from_millis(300));
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        let t0 = Instant::now();
        c.write_all(b"a").unwrap();
        thread::sleep(Duration::from_millis(20));
        c.write_all(b"b").unwrap();
        assert_eq!(received(&rx, 1, Duration::from_millis(200)), b"");
        let got = received(&rx, 2, Duration::from_secs(2));
        assert!(t0.elapsed() >= Duration::from_millis(300));
        assert_eq!(got, b"ab");
        stop.store(true, Ordering::SeqCst);
    }

    #[test]
    fn a_cut_closes_open_connections_and_new_ones_work() {
        let (server, rx, stop) = echo_server();
        let proxy = Proxy::start(server).unwrap();
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        c.write_all(b"x").unwrap();
        assert_eq!(received(&rx, 1, Duration::from_secs(2)), b"x");
        proxy.control().cut();
        // The server sees its end close.
        assert_eq!(
            received_or_closed(&rx, 1, Duration::from_secs(2)),
            (Vec::new(), true)
        );
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 8];
        // The echo of "x" may still arrive before the close.
        let n = c.read(&mut buf).unwrap_or(0);
        if n > 0 {
            assert_eq!(c.read(&mut buf).unwrap_or(0), 0);
        }
        // The cut is counted once the connection's threads have ended, just after its ends
        // were shut down: wait for it rather than race it.
        let deadline = Instant::now() + Duration::from_secs(2);
        while proxy.stats().cuts.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(proxy.stats().cuts.load(Ordering::Relaxed), 1);
        let mut c2 = TcpStream::connect(proxy.addr()).unwrap();
        c2.write_all(b"y").unwrap();
        assert_eq!(received(&rx, 1, Duration::from_secs(2)), b"y");
        stop.store(true, Ordering::SeqCst);
    }

    #[test]
    fn a_flaky_link_closes_connections() {
        let (server, rx, stop) = echo_server();
        let proxy = Proxy::start(server).unwrap();
        proxy.control().set_cut_per_mille(1000);
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        c.write_all(b"z").unwrap();
        assert_eq!(
            received_or_closed(&rx, 1, Duration::from_secs(2)),
            (Vec::new(), true)
        );
        assert_eq!(proxy.stats().bytes_forward.load(Ordering::Relaxed), 0);
        stop.store(true, Ordering::SeqCst);
    }

    #[test]
    fn only_loopback_targets_and_stopping_joins_every_thread() {
        let far: SocketAddr = "192.0.2.1:7000".parse().unwrap();
        assert!(Proxy::start(far).is_err());
        let (server, _rx, stop) = echo_server();
        let mut proxy = Proxy::start(server).unwrap();
        proxy.control().set_stalled(true);
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        c.write_all(&[0u8; 100_000]).unwrap();
        let t0 = Instant::now();
        let addr = proxy.addr();
        proxy.stop();
        assert!(t0.elapsed() < Duration::from_secs(3), "stop took too long");
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());
        stop.store(true, Ordering::SeqCst);
    }
}
