//! Per-step traces of a node, for trace conformance (`raft-check conform`).
//!
//! A driver that wants a trace gives its [`Replica`](crate::node::replica::Replica) a
//! [`TraceSink`]; without one, tracing costs one branch per step. Each record
//! ([`raft_model::conform::TraceRecord`]) is one step: the event, the node's Raft state after it
//! and the messages it sent. The replica hands a batch's records to the sink only after the
//! batch's `sync` returned: a step whose effects never became durable and were never sent
//! (the process died between the step and the sync) leaves no record, as it left no trace in
//! the world. Crash and restart records are the driver's ([`TraceLog::crash`],
//! [`TraceLog::restart`]).

use crate::kv::Command;
use raft_model::conform::{TraceEvent, TraceRecord};
use raft_model::core::{Message, NodeId, Server};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where a replica's trace records go.
pub trait TraceSink: Send {
    /// One step at `time`: the event, the state after it, the messages it sent.
    fn record(
        &mut self,
        time: Duration,
        event: TraceEvent<Command>,
        state_after: Option<&Server<Command>>,
        sent: &[(NodeId, Message<Command>)],
    );
}

/// One node's trace as JSON Lines, numbered from `seq`; each record is one `write` call (a
/// killed process leaves whole lines behind).
pub struct TraceLog<W: Write + Send> {
    node: NodeId,
    seq: u64,
    out: W,
    /// The first write error; later records are skipped (the trace is then incomplete, and
    /// `conform` will say so).
    pub error: Option<std::io::Error>,
}

impl<W: Write + Send> TraceLog<W> {
    pub fn new(node: NodeId, first_seq: u64, out: W) -> Self {
        TraceLog {
            node,
            seq: first_seq,
            out,
            error: None,
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// What was written so far.
    pub fn peek(&self) -> &W {
        &self.out
    }

    pub fn crash(&mut self, time: Duration) {
        self.record(time, TraceEvent::Crash, None, &[]);
    }

    pub fn restart(&mut self, time: Duration, server: &Server<Command>) {
        self.record(time, TraceEvent::Restart, Some(server), &[]);
    }
}

impl<W: Write + Send> TraceSink for TraceLog<W> {
    fn record(
        &mut self,
        time: Duration,
        event: TraceEvent<Command>,
        state_after: Option<&Server<Command>>,
        sent: &[(NodeId, Message<Command>)],
    ) {
        if self.error.is_some() {
            return;
        }
        let record = TraceRecord {
            node: self.node,
            seq: self.seq,
            time_us: time.as_micros() as u64,
            event,
            state_after: state_after.cloned(),
            sent: sent.to_vec(),
        };
        self.seq += 1;
        let mut line = match serde_json::to_vec(&record) {
            Ok(l) => l,
            Err(e) => {
                self.error = Some(std::io::Error::other(e));
                return;
            }
        };
        line.push(b'\n');
        if let Err(e) = self.out.write_all(&line) {
            self.error = Some(e);
        }
    }
}

/// A trace shared between a replica and its driver (which records crashes and restarts).
impl<S: TraceSink> TraceSink for Arc<Mutex<S>> {
    fn record(
        &mut self,
        time: Duration,
        event: TraceEvent<Command>,
        state_after: Option<&Server<Command>>,
        sent: &[(NodeId, Message<Command>)],
    ) {
        if let Ok(mut sink) = self.lock() {
            sink.record(time, event, state_after, sent);
        }
    }
}
