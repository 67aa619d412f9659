//! Where a client's answer goes once the event loop has it.
//!
//! A command (a put, a get, a cas) is answered by the event loop itself: it writes the answer
//! frame straight into the client's connection with a non-blocking send, so the connection's
//! thread is not woken to do it (one thread hand-off less per operation: measured, the
//! connection threads' wake-ups were about a third of a loaded node's CPU). A reader too slow
//! to take the answer at once gets the rest from a short-lived thread with a write timeout, so
//! the event loop never blocks on a client. The poller (`client_poll.rs`) hands the connection's
//! next request over only after the previous one's answer is out (its busy flag cleared): one
//! command in flight per connection, answers in order.
//!
//! An operator's request (leader, transfer, membership) is answered by a short-lived thread
//! that waits for the answer on a channel, with a timeout that answers `Error`.

use super::client_conn::{ClientConn, Sent};
use crate::wire::{encode_frame, ClientReply};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

/// How long a slow reader gets to take the rest of one answer before its connection is closed.
const SLOW_REPLY_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where one answer goes.
pub(crate) enum ReplyTo {
    /// A thread waits for it (an operator's request).
    Waiting(mpsc::Sender<ClientReply>),
    /// The event loop writes it to the connection (a command).
    Direct(DirectReply),
}

impl ReplyTo {
    pub(crate) fn send(self, reply: ClientReply) {
        match self {
            ReplyTo::Waiting(tx) => {
                let _ = tx.send(reply);
            }
            ReplyTo::Direct(direct) => direct.send(&reply),
        }
    }
}

/// A command's connection, as the event loop answers it.
pub(crate) struct DirectReply {
    stream: Arc<ClientConn>,
    /// The connection's entry in the node's connection table: set by the poller when it
    /// hands a command over, cleared once the answer is out (the poller then hands over the
    /// next request; a busy connection is never closed to make room for a new one).
    busy: Arc<AtomicBool>,
}

impl DirectReply {
    pub(crate) fn new(stream: Arc<ClientConn>, busy: Arc<AtomicBool>) -> Self {
        DirectReply { stream, busy }
    }

    fn send(self, reply: &ClientReply) {
        let frame = match encode_frame(reply) {
            Ok(f) => f,
            Err(e) => {
                // An answer too large for a frame (a value near the limit and its framing):
                // the client sees the connection close and retries elsewhere.
                tracing::warn!(error = %e, "cannot encode a client answer; closing the connection");
                self.stream.shutdown(Shutdown::Both);
                return self.finish();
            }
        };
        let left = match self.stream.send_no_wait(&frame) {
            Ok(Sent::All) => return self.finish(),
            Ok(left) => left,
            // The client is gone; the poller sees that too.
            Err(_) => return self.finish(),
        };
        let stream = Arc::clone(&self.stream);
        let spawned = thread::Builder::new()
            .name("raft-reply-slow".into())
            .spawn(move || {
                if let Err(e) = self.stream.finish(left, SLOW_REPLY_WRITE_TIMEOUT) {
                    tracing::debug!(error = %e, "a client did not take its answer in time; closing");
                    self.stream.shutdown(Shutdown::Both);
                }
                self.finish();
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a thread for a slow client; closing it");
            stream.shutdown(Shutdown::Both);
        }
    }

    fn finish(self) {
        self.busy.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::OpResult;
    use crate::wire::read_frame;

    use crate::node::shared::tcp_pair as pair;

    fn plain(s: std::net::TcpStream) -> Arc<ClientConn> {
        Arc::new(ClientConn::new(s, None).unwrap())
    }

    /// Waits (at most `within`) for the answer to be out: the busy flag cleared.
    fn released(busy: &AtomicBool, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while busy.load(Ordering::SeqCst) {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
        true
    }

    #[test]
    fn an_answer_is_written_to_the_connection_and_marks_it_done() {
        let (client, server) = pair();
        let busy = Arc::new(AtomicBool::new(true));
        let reply = ClientReply::Ok(OpResult::Value(Some("v".into())));
        ReplyTo::Direct(DirectReply::new(plain(server), busy.clone())).send(reply.clone());
        assert!(
            !busy.load(Ordering::SeqCst),
            "written at once, released at once"
        );
        let got: ClientReply = read_frame(&mut &client).unwrap().unwrap();
        assert_eq!(got, reply);
    }

    #[test]
    fn an_answer_larger_than_the_socket_buffer_still_arrives_whole() {
        // The client reads only after the send returned: the rest goes by the slow path.
        let (client, server) = pair();
        let busy = Arc::new(AtomicBool::new(true));
        let big = "x".repeat(12 * 1024 * 1024);
        let reply = ClientReply::Ok(OpResult::Value(Some(big)));
        ReplyTo::Direct(DirectReply::new(plain(server), busy.clone())).send(reply.clone());
        assert!(
            busy.load(Ordering::SeqCst),
            "12 MiB cannot fit a loopback socket's buffer at once"
        );
        let got: ClientReply = read_frame(&mut &client).unwrap().unwrap();
        assert_eq!(got, reply);
        assert!(released(&busy, Duration::from_secs(5)));
    }

    #[test]
    fn a_reader_that_never_reads_is_closed_and_the_connection_released() {
        let (client, server) = pair();
        let busy = Arc::new(AtomicBool::new(true));
        let reply = ClientReply::Ok(OpResult::Value(Some("y".repeat(12 * 1024 * 1024))));
        ReplyTo::Direct(DirectReply::new(plain(server), busy.clone())).send(reply);
        assert!(
            released(&busy, SLOW_REPLY_WRITE_TIMEOUT * 5),
            "released after the write timeout"
        );
        drop(client);
    }

    #[test]
    fn a_waiting_answer_goes_through_its_channel() {
        let (tx, rx) = mpsc::channel();
        ReplyTo::Waiting(tx).send(ClientReply::Error("e".into()));
        assert_eq!(rx.recv().unwrap(), ClientReply::Error("e".into()));
    }
}
