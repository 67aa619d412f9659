//! Where an answer goes, with what the metrics need to know of it: a client command's kind
//! and arrival time, so that the event loop counts its outcome and times it when it delivers
//! the answer (`raft_proposals_answered_total`, `raft_apply_latency_seconds`). An operator's
//! request (leader, transfer, membership) is not a proposal and is not counted.

use super::client_reply::ReplyTo;
use crate::metrics::node_metrics::CommandKind;
use crate::metrics::NodeMetrics;
use crate::wire::ClientReply;
use std::time::Instant;

pub(crate) struct MeteredReply {
    to: ReplyTo,
    command: Option<(CommandKind, Instant)>,
}

impl MeteredReply {
    /// The answer to a client command of `kind` that arrived at `arrived`.
    pub(crate) fn command(to: ReplyTo, kind: CommandKind, arrived: Instant) -> Self {
        MeteredReply {
            to,
            command: Some((kind, arrived)),
        }
    }

    /// The answer to an operator's request.
    pub(crate) fn operator(to: ReplyTo) -> Self {
        MeteredReply { to, command: None }
    }

    /// Records the answer, then sends it.
    pub(crate) fn send(self, reply: ClientReply, metrics: &NodeMetrics) {
        if let Some((kind, arrived)) = self.command {
            metrics.answered(kind, &reply, arrived.elapsed());
        }
        self.to.send(reply);
    }
}
