//! The event loop: the real-world driver of a [`Replica`]. It owns the only replica of this
//! node (and through it the Raft server, the WAL and the state machine), and supplies what the
//! replica does not do itself: the clock (`Instant`), waiting for inputs (`recv_timeout` until
//! the replica's next deadline), and delivery of what a batch returns: the Raft messages to
//! the peers first (written directly when a peer's connection is idle, else through its
//! sender's queue: `peers.rs`), then the client replies (`client_reply.rs`). See
//! "Durability contract" in README.md; the batching and its order live in `replica.rs`.

use super::client_reply::ReplyTo;
use super::input::Input;
use super::peers::PeerLink;
use super::replica::{Effects, Replica, ReplicaInput};
use super::snapshot_transfer::{Accepted, Reassembly};
use super::snapshot_writer::SnapshotWriter;
use crate::kv::Command;
use crate::storage::Wal;
use raft_core::{Message, NodeId};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Instant;

/// Most inputs handled in one batch (one fsync).
const MAX_BATCH: usize = 4096;

/// A batch that takes this long is logged (a stall every client of the node waited out).
const SLOW_TURN: std::time::Duration = std::time::Duration::from_millis(100);

pub(crate) struct EventLoop {
    replica: Replica<Wal<Command>, ReplyTo>,
    peers: BTreeMap<NodeId, PeerLink>,
    /// Time zero of the replica's clock.
    start: Instant,
    /// The snapshot each peer is sending, in reassembly (at most one per peer).
    reassembly: BTreeMap<NodeId, Reassembly>,
    /// Writes the snapshots the replica takes, off this loop (`snapshot_writer.rs`).
    writer: SnapshotWriter,
}

impl EventLoop {
    pub(crate) fn new(
        replica: Replica<Wal<Command>, ReplyTo>,
        start: Instant,
        peers: Vec<(NodeId, PeerLink)>,
        writer: SnapshotWriter,
    ) -> Self {
        EventLoop {
            replica,
            peers: peers.into_iter().collect(),
            start,
            reassembly: BTreeMap::new(),
            writer,
        }
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
                            if let Some(link) = self.peers.get(&from) {
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
                    if let Some(link) = self.peers.get(&from) {
                        link.resume_snapshot(term, index, offset);
                    }
                }
                Input::Client { command, reply } => {
                    batch.push(ReplicaInput::Client { command, reply })
                }
                Input::TransferLeadership { to, reply } => {
                    batch.push(ReplicaInput::TransferLeadership {
                        to,
                        reply: ReplyTo::Waiting(reply),
                    })
                }
                Input::Leader { reply } => batch.push(ReplicaInput::Leader {
                    reply: ReplyTo::Waiting(reply),
                }),
                Input::Member { request, reply } => batch.push(ReplicaInput::Member {
                    request,
                    reply: ReplyTo::Waiting(reply),
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
        Ok(shutdown)
    }

    /// Send, then answer clients (a command's answer is written to its connection here:
    /// `client_reply.rs`); a snapshot to write goes to the writer thread.
    fn deliver(&mut self, effects: Effects<ReplyTo>) -> anyhow::Result<()> {
        if let Some(snapshot) = effects.snapshot {
            self.writer.start(snapshot)?;
        }
        for (to, msg) in effects.messages {
            if let Some(link) = self.peers.get(&to) {
                link.send(msg);
            }
        }
        for (to, reply) in effects.replies {
            to.send(reply);
        }
        Ok(())
    }
}
