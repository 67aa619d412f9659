//! The client connections of one node, as the accept thread admits them: for each, whether a
//! request of it waits for the log (busy) and when it was last active. When every slot is
//! taken, a new connection closes the connection that has been idle the longest (no request in
//! progress); only when every connection has a request waiting is the new one refused.

use std::collections::BTreeMap;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The client connections of one node: for each, whether a request of it waits for the log
/// and when it was last active.
pub(crate) struct ClientTable {
    max: usize,
    next: u64,
    conns: BTreeMap<u64, ClientConn>,
}

struct ClientConn {
    /// A handle to close the connection from the accept thread.
    stream: TcpStream,
    since: Instant,
    /// A request of it waits for the log (cleared by whoever writes its answer: the
    /// operator's request's thread, or the event loop for a command, `client_reply.rs`).
    busy: Arc<AtomicBool>,
}

/// What to do with a new client connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Admitted under this id, after closing the connection with the id in `evicted`.
    Admit { id: u64, evicted: Option<u64> },
    /// Every connection has a request in progress.
    Busy,
}

impl ClientTable {
    pub(crate) fn new(max: usize) -> Self {
        ClientTable {
            max,
            next: 0,
            conns: BTreeMap::new(),
        }
    }

    /// Admits `stream`, closing the longest-idle connection when the table is full.
    pub(crate) fn admit(&mut self, stream: TcpStream, now: Instant) -> Admission {
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
    pub(crate) fn set_busy(
        &mut self,
        id: u64,
        busy: bool,
        now: Instant,
    ) -> Option<Arc<AtomicBool>> {
        let c = self.conns.get_mut(&id)?;
        c.busy.store(busy, Ordering::SeqCst);
        c.since = now;
        Some(Arc::clone(&c.busy))
    }

    pub(crate) fn remove(&mut self, id: u64) {
        self.conns.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::shared::tcp_pair as pair;
    use std::io::Read;
    use std::time::Duration;

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
}
