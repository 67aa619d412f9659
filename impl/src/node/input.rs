//! What the node's threads send its event loop (one channel, read by event_loop.rs).

use super::client_reply;
use crate::kv::Command;
use crate::wire::ClientReply;
use raft_core::{Message, NodeId};
use std::sync::mpsc;

/// What the event loop consumes.
pub(crate) enum Input {
    /// A Raft message from a peer.
    Peer { from: NodeId, msg: Message<Command> },
    /// An outbound connection to a peer was (re)established: retransmit to it at once.
    PeerConnected(NodeId),
    /// A piece of an InstallSnapshot from a peer (well formed: `snapshot_transfer::check`).
    SnapshotChunk {
        from: NodeId,
        chunk: crate::wire::SnapshotChunk,
    },
    /// How far a peer got in the snapshot this node streams to it (`PeerWire::SnapshotProgress`):
    /// the peer's sender thread continues there.
    SnapshotProgress {
        from: NodeId,
        term: raft_core::Term,
        index: raft_core::Index,
        offset: u64,
    },
    /// A client's command, and where to send the answer; `forwardable`: a follower may send
    /// it on to the leader (`forward.rs`), false for a `ClientRequest::NoForward`.
    Client {
        command: Command,
        reply: client_reply::ReplyTo,
        forwardable: bool,
    },
    /// An operator's request to hand the leadership to `to` (`ClientRequest::TransferLeadership`).
    TransferLeadership {
        to: NodeId,
        reply: mpsc::Sender<ClientReply>,
    },
    /// An operator's question: which node leads? (`ClientRequest::Leader`).
    Leader { reply: mpsc::Sender<ClientReply> },
    /// An operator's membership request (`ClientRequest::Member`).
    Member {
        request: crate::wire::MemberRequest,
        reply: mpsc::Sender<ClientReply>,
    },
    /// The snapshot writer thread's end: the snapshot, durable in its file, or why not
    /// (`snapshot_writer.rs`).
    SnapshotWritten(Result<raft_core::Snapshot, crate::storage::SnapshotWriteError>),
    /// Stop after the current batch is durable.
    Shutdown,
}
