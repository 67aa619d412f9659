//! The event loop: the real-world driver of a [`Replica`]. It owns the only replica of this
//! node (and through it the Raft server, the WAL and the state machine), and supplies what the
//! replica does not do itself: the clock (`Instant`), waiting for inputs (`recv_timeout` until
//! the replica's next deadline), and delivery of what a batch returns: the Raft messages to
//! the peers first (written directly when a peer's connection is idle, else through its
//! sender's queue: `peers.rs`), then the client replies (`client_reply.rs`). A follower that
//! knows the leader hands a client's command to the forwarding threads instead of its replica
//! (`forward.rs`). See
//! "Durability contract" in README.md; the batching and its order live in `replica.rs`.
//! After each batch it records the replica's state in the node's metrics (`crate::metrics`).

use super::client_reply::ReplyTo;
use super::forward::{route, Forwarder, Route};
use super::input::Input;
use super::metered_reply::MeteredReply;
use super::metered_wal::MeteredWal;
use super::peer_book::PeerBook;
use super::replica::{Effects, Replica, ReplicaInput};
use super::snapshot_transfer::{Accepted, Reassembly};
use super::snapshot_writer::SnapshotWriter;
use crate::kv::Op;
use crate::metrics::node_metrics::{CommandKind, Observed};
use crate::metrics::NodeMetrics;
use raft_core::{Message, NodeId, Role};
use std::collections::BTreeMap;
use std::sync::{mpsc, Arc};
use std::time::Instant;

/// Most inputs handled in one batch (one fsync).
const MAX_BATCH: usize = 4096;

/// A batch that takes this long is logged (a stall every client of the node waited out).
const SLOW_TURN: std::time::Duration = std::time::Duration::from_millis(100);

pub(crate) struct EventLoop {
    replica: Replica<MeteredWal, MeteredReply>,
    /// A sender per node of the address book, following the configuration's addresses.
    peers: PeerBook,
    metrics: Arc<NodeMetrics>,
    /// Time zero of the replica's clock.
    start: Instant,
    /// The snapshot each peer is sending, in reassembly (at most one per peer).
    reassembly: BTreeMap<NodeId, Reassembly>,
    /// Sends the commands of a follower's clients to the leader.
    forwarder: Forwarder,
    /// Writes the snapshots the replica takes, off this loop (`snapshot_writer.rs`).
    writer: SnapshotWriter,
}

impl EventLoop {
    pub(crate) fn new(
        replica: Replica<MeteredWal, MeteredReply>,
        start: Instant,
        peers: PeerBook,
        forwarder: Forwarder,
        metrics: Arc<NodeMetrics>,
        writer: SnapshotWriter,
    ) -> Self {
        metrics.start_from(&observe(&replica));
        let mut event_loop = EventLoop {
            replica,
            peers,
            metrics,
            start,
            reassembly: BTreeMap::new(),
            forwarder,
            writer,
        };
        event_loop.follow_addresses();
        event_loop
    }

    /// Senders for the nodes of the address book, at the configuration's addresses
    /// (`peer_book.rs`).
    fn follow_addresses(&mut self) {
        let replica = &self.replica;
        let m = replica.server().membership(replica.config());
        self.peers.follow(m, || replica.address_book());
    }

    /// Runs until a shutdown request (Ok) or a storage failure (Err: the node must stop, as it
    /// can no longer promise durability).
    pub(crate) fn run(mut self, inputs: mpsc::Receiver<Input>) -> anyhow::Result<()> {
        loop {
            let deadline = self.start + self.replica.next_deadline();
            let wait = deadline.saturating_duration_since(Instant::now());
            let mut queued = Vec::new();
            match inputs.recv_timeout(wait) {
                Ok(input) => queued.push(input),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            }
            queued.extend(inputs.try_iter().take(MAX_BATCH));
            let shutdown = self.turn(queued);
            if !matches!(shutdown, Ok(false)) {
                // No snapshot write outlives the loop (and the WAL's lock on the directory).
                self.writer.finish();
            }
            if shutdown? {
                tracing::info!(id = %self.replica.config().id, "shut down");
                return Ok(());
            }
        }
    }

    /// One batch. Returns whether a shutdown was requested.
    fn turn(&mut self, inputs: Vec<Input>) -> anyhow::Result<bool> {
        let mut shutdown = false;
        let arrived = Instant::now();
        let mut batch = Vec::with_capacity(inputs.len());
        for input in inputs {
            match input {
                Input::Peer { from, msg } => batch.push(ReplicaInput::Peer { from, msg }),
                Input::PeerConnected(to) => batch.push(ReplicaInput::PeerConnected(to)),
                Input::SnapshotChunk { from, chunk } => {
                    let (offset, index) = (chunk.offset, chunk.last_included_index);
                    let dir = self.replica.durable().dir();
                    let reassembly = self
                        .reassembly
                        .entry(from)
                        .or_insert_with(|| Reassembly::new(dir, from));
                    match reassembly.accept(chunk) {
                        Ok(Accepted::Complete(m)) => {
                            tracing::info!(%from, index, bytes = m.snapshot.data.len(), "snapshot received");
                            let msg = Message::InstallSnapshot(m);
                            batch.push(ReplicaInput::Peer { from, msg });
                        }
                        Ok(Accepted::Partial { received, total }) => {
                            tracing::trace!(%from, index, offset, received, total, "snapshot chunk");
                        }
                        Ok(Accepted::Dropped(why)) => {
                            tracing::info!(%from, "snapshot chunk dropped: {why}");
                        }
                        Ok(Accepted::Resume {
                            term,
                            index,
                            offset,
                        }) => {
                            // The sender started again at byte 0 (a reconnect): it continues
                            // where this node is, if it still streams that snapshot.
                            tracing::info!(%from, index, offset, "snapshot stream restarted; asking to resume");
                            if let Some(link) = self.peers.link(from) {
                                link.send_progress(term, index, offset);
                            }
                        }
                        Ok(Accepted::SpoolFailed(why)) => {
                            tracing::warn!(%from, "snapshot reassembly abandoned: {why}");
                        }
                        Err(e) => tracing::warn!(%from, error = %e, "bad snapshot chunk dropped"),
                    }
                }
                Input::SnapshotProgress {
                    from,
                    term,
                    index,
                    offset,
                } => {
                    if let Some(link) = self.peers.link(from) {
                        link.resume_snapshot(term, index, offset);
                    }
                }
                Input::Client {
                    command,
                    reply,
                    forwardable,
                } => {
                    // Decided on the state before this batch: a leader learnt of in it is
                    // forwarded to from the next one. The metrics count what this node
                    // serves; the leader counts what it is forwarded.
                    let leads = self.replica.server().role == Role::Leader;
                    match route(forwardable, leads, self.replica.leader_hint()) {
                        Route::Forward(addr) => self.forwarder.forward(addr, command, reply),
                        Route::Local => {
                            let kind = match command.op {
                                Op::Get { .. } => CommandKind::Read,
                                _ => CommandKind::Write,
                            };
                            self.metrics.received(kind);
                            let reply = MeteredReply::command(reply, kind, arrived);
                            batch.push(ReplicaInput::Client { command, reply })
                        }
                    }
                }
                Input::TransferLeadership { to, reply } => {
                    batch.push(ReplicaInput::TransferLeadership {
                        to,
                        reply: MeteredReply::operator(ReplyTo::Waiting(reply)),
                    })
                }
                Input::Leader { reply } => batch.push(ReplicaInput::Leader {
                    reply: MeteredReply::operator(ReplyTo::Waiting(reply)),
                }),
                Input::Member { request, reply } => batch.push(ReplicaInput::Member {
                    request,
                    reply: MeteredReply::operator(ReplyTo::Waiting(reply)),
                }),
                Input::SnapshotWritten(written) => {
                    self.writer.finish();
                    // A failed write stops the node: its fsync may have lost pages for good.
                    batch.push(ReplicaInput::SnapshotWritten(written?));
                }
                Input::Shutdown => shutdown = true,
            }
        }
        let now = Instant::now().saturating_duration_since(self.start);
        // Staged, synced once, applied: nothing is returned before the batch is durable,
        // except a leader's own entries written behind (then the flush follows the sends, and
        // the fsync runs while the peer threads write to the network).
        let started = Instant::now();
        let effects = self.replica.turn(now, batch)?;
        // A configuration the batch appended or installed may add a member or move one.
        self.follow_addresses();
        let took = started.elapsed();
        if took >= SLOW_TURN {
            tracing::info!(
                ms = took.as_millis() as u64,
                snapshot_handed_out = effects.snapshot.is_some(),
                "slow batch: clients waited this long"
            );
        }
        self.deliver(effects)?;
        if self.replica.flush_due() {
            let effects = self.replica.flush(now)?;
            self.deliver(effects)?;
        }
        self.record();
        Ok(shutdown)
    }

    /// The replica's state and the peer connections, into the metrics.
    fn record(&self) {
        self.metrics.observe(&observe(&self.replica));
        for (id, link) in self.peers.links() {
            // Unknown while the sender thread holds the link: the next batch will tell.
            if let Some(up) = link.is_connected() {
                self.metrics.peer_connected(id.0, up);
            }
        }
    }

    /// Send, then answer clients (a command's answer is written to its connection here:
    /// `client_reply.rs`); a snapshot to write goes to the writer thread.
    fn deliver(&mut self, effects: Effects<MeteredReply>) -> anyhow::Result<()> {
        if let Some(snapshot) = effects.snapshot {
            self.writer.start(snapshot)?;
        }
        for (to, msg) in effects.messages {
            if let Some(link) = self.peers.link(to) {
                link.send(msg);
            }
        }
        for (to, reply) in effects.replies {
            to.send(reply, &self.metrics);
        }
        Ok(())
    }
}

/// What the metrics record of the replica after a batch.
fn observe(replica: &Replica<MeteredWal, MeteredReply>) -> Observed {
    Observed::of(
        replica.server(),
        replica.config().id,
        replica.compactions(),
        replica.installs(),
    )
}
