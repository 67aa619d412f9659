//! The trace record: one per step of a node, written by the runtime (raft-impl's `trace`
//! module) as one JSON line, read back here.

use crate::core::{Event, Message, NodeId, Server};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

/// A command the checker does not look into: any JSON value, kept as its canonical JSON text,
/// interned (every record repeats the whole log, so one run holds each command thousands of
/// times; interned, each repetition is a pointer).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Opaque(pub Arc<str>);

thread_local! {
    static INTERNED: RefCell<HashSet<Arc<str>>> = RefCell::new(HashSet::new());
}

impl Opaque {
    pub fn new(json: String) -> Self {
        INTERNED.with(|set| {
            let mut set = set.borrow_mut();
            if let Some(s) = set.get(json.as_str()) {
                return Opaque(s.clone());
            }
            let s: Arc<str> = Arc::from(json);
            set.insert(s.clone());
            Opaque(s)
        })
    }
}

impl fmt::Debug for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Opaque {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Opaque {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(Opaque::new(value.to_string()))
    }
}

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
}

impl Default for RunInfo {
    /// The runnable node: fast backup, 256 entries per AppendEntries, no duplication.
    fn default() -> Self {
        RunInfo {
            duplicating: false,
            fast_backup: true,
            max_entries_per_append: Some(256),
        }
    }
}

/// Parses one node's JSON Lines trace; `origin` names it in errors. Checks that every record
/// is of one node and that `seq` counts from 0 without gaps.
pub fn parse_jsonl<C: DeserializeOwned>(
    text: &str,
    origin: &str,
) -> Result<Vec<TraceRecord<C>>, String> {
    let mut records: Vec<TraceRecord<C>> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: TraceRecord<C> = serde_json::from_str(line)
            .map_err(|e| format!("{origin}:{}: not a trace record: {e}", n + 1))?;
        if let Some(first) = records.first() {
            if record.node != first.node {
                return Err(format!(
                    "{origin}:{}: record of node {} in the trace of node {}",
                    n + 1,
                    record.node,
                    first.node
                ));
            }
        }
        if record.seq != records.len() as u64 {
            return Err(format!(
                "{origin}:{}: seq {} where {} was expected (a gap or reordering)",
                n + 1,
                record.seq,
                records.len()
            ));
        }
        records.push(record);
    }
    Ok(records)
}
