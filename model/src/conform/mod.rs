//! Trace conformance: replaying real runs against the model.
//!
//! The runtime (raft-impl's `Replica`, driven by the real event loop or by the simulator) can
//! write one [`TraceRecord`] per step of each node. [`conform`] merges the per-node traces of
//! one run into a global order consistent with causality ([`merge`]) and replays it against
//! the real [`crate::model::RaftModel`]: every step must be an action the model allows from the
//! previous state, producing the same server state and the same messages, and every Always
//! property must hold on every replayed state. See `replay.rs` for how runtime steps map to
//! model actions.

mod merge;
mod record;
mod replay;

pub use record::{parse_jsonl, Opaque, RunInfo, TraceEvent, TraceRecord};
pub use replay::{conform, ConformError, Mismatch, Summary};

use raft_core::Message;

/// A short, readable description of a trace event (for reports).
pub fn describe_event<C>(event: &TraceEvent<C>) -> String {
    match event {
        TraceEvent::Receive { from, msg } => format!("receive from {from}: {}", describe_msg(msg)),
        TraceEvent::ElectionTimeout => "election timeout".into(),
        TraceEvent::Heartbeat => "heartbeat".into(),
        TraceEvent::Resend { to } => format!("resend to {to}"),
        TraceEvent::Propose { .. } => "client proposal".into(),
        TraceEvent::ReadIndex { id, .. } => format!("client read {id}"),
        TraceEvent::Persisted { term, index } => format!("disk durable up to {index}/t{term}"),
        TraceEvent::TransferLeadership { to } => format!("leadership transfer to {to}"),
        TraceEvent::Compact { index, .. } => format!("compaction up to {index}"),
        TraceEvent::Crash => "crash".into(),
        TraceEvent::Restart => "restart".into(),
    }
}

/// A short description of a Raft message (entries are counted, not shown).
pub fn describe_msg<C>(msg: &Message<C>) -> String {
    msg.summary()
}

#[cfg(test)]
mod tests;
