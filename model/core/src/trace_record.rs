//! The trace record: one per step of a node, written by a runtime (raft-impl's `trace_log`
//! module, as JSON Lines) and replayed against the model by the checker (raft-model's
//! `conform`).
//! Only the types live here, next to the events they record; reading and replaying them is the
//! checker's.

use super::message::Message;
use super::server::{Event, Server};
use super::types::{Index, NodeId, Term};
use serde::{Deserialize, Serialize};

/// What happened to a node in one step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TraceEvent<C> {
    /// A Raft message from `from` was handed to the core.
    Receive {
        from: NodeId,
        msg: Message<C>,
    },
    ElectionTimeout,
    Heartbeat,
    Resend {
        to: NodeId,
    },
    /// A client's command was proposed to the core.
    Propose {
        command: C,
    },
    /// The disk made the log durable up to `index` (of term `term`).
    Persisted {
        term: Term,
        index: Index,
    },
    /// A client's read was handed to the core (thesis §6.4, read.rs).
    ReadIndex {
        id: u64,
        command: C,
    },
    /// An operator asked the leader to hand its leadership to `to` (thesis §3.10).
    TransferLeadership {
        to: NodeId,
    },
    /// The state machine's image up to `index` became the snapshot (§7, compaction.rs).
    Compact {
        index: Index,
        data: Vec<u8>,
    },
    /// The process died (volatile state gone).
    Crash,
    /// The process (re)started from what its disk recovered (also the first start).
    Restart,
}

impl<C: Clone> TraceEvent<C> {
    /// The record of a core [`Event`].
    pub fn of(event: &Event<C>) -> Self {
        match event {
            Event::ElectionTimeout => TraceEvent::ElectionTimeout,
            Event::Heartbeat => TraceEvent::Heartbeat,
            Event::Resend { to } => TraceEvent::Resend { to: *to },
            Event::Receive { from, msg } => TraceEvent::Receive {
                from: *from,
                msg: msg.clone(),
            },
            Event::Propose(c) => TraceEvent::Propose { command: c.clone() },
            Event::Persisted { term, index } => TraceEvent::Persisted {
                term: *term,
                index: *index,
            },
            Event::ReadIndex { id, command } => TraceEvent::ReadIndex {
                id: *id,
                command: command.clone(),
            },
            Event::TransferLeadership { to } => TraceEvent::TransferLeadership { to: *to },
            Event::Compact { index, data } => TraceEvent::Compact {
                index: *index,
                data: data.clone(),
            },
        }
    }
}

/// One step of one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceRecord<C> {
    pub node: NodeId,
    /// Per node, from 0, without gaps (across restarts).
    pub seq: u64,
    /// Virtual (simulator) or wall-clock (process) time, in microseconds; only a tie-breaker.
    pub time_us: u64,
    pub event: TraceEvent<C>,
    /// The node's Raft state after the step (`None` after a crash).
    pub state_after: Option<Server<C>>,
    /// The Raft messages the step sent, in order.
    pub sent: Vec<(NodeId, Message<C>)>,
}

/// How the run was made: what the model must allow. Written by the driver as `run.json` next
/// to the node traces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The network may deliver a message more than once.
    pub duplicating: bool,
    /// The runtime's `Config::fast_backup`.
    pub fast_backup: bool,
    /// The runtime's `Config::max_entries_per_append` (`None`: unbounded).
    pub max_entries_per_append: Option<usize>,
    /// The runtime's `Config::pipeline` (absent in traces from before pipelining: none).
    #[serde(default)]
    pub pipeline: Option<crate::Window>,
    /// The runtime serves reads through ReadIndex (`Event::ReadIndex`; absent in traces from
    /// before it: no).
    #[serde(default)]
    pub read_index: bool,
    /// The runtime's `Config::pre_vote` (absent in traces from before it: off).
    #[serde(default)]
    pub pre_vote: bool,
    /// The runtime's `Config::check_quorum` (absent in traces from before it: off).
    #[serde(default)]
    pub check_quorum: bool,
    /// The initial configuration's voters, when they are not every traced node: nodes
    /// `0..initial_voters` (the others started outside the cluster, membership.rs). Absent:
    /// every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_voters: Option<usize>,
}

impl RunInfo {
    /// The run of servers configured as `cfg`, on a network that does or does not duplicate.
    pub fn of<R: crate::Rules>(cfg: &crate::Config<R>, duplicating: bool) -> Self {
        RunInfo {
            duplicating,
            fast_backup: cfg.fast_backup,
            max_entries_per_append: (cfg.max_entries_per_append < usize::MAX)
                .then_some(cfg.max_entries_per_append),
            pipeline: cfg.pipeline,
            read_index: true,
            pre_vote: cfg.pre_vote,
            check_quorum: cfg.check_quorum,
            initial_voters: None,
        }
    }
}

impl Default for RunInfo {
    /// The runnable node (raft-impl's `node::node_config`, which a test there pins to this):
    /// fast backup, 256 entries per AppendEntries, pipelined within 4,096 entries and 16 MiB
    /// per follower, reads through ReadIndex, PreVote and CheckQuorum, no duplication.
    fn default() -> Self {
        RunInfo {
            duplicating: false,
            fast_backup: true,
            max_entries_per_append: Some(256),
            pipeline: Some(crate::Window {
                entries: 4096,
                bytes: 16 << 20,
            }),
            read_index: true,
            pre_vote: true,
            check_quorum: true,
            initial_voters: None,
        }
    }
}
