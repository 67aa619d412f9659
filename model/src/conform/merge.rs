//! Merging the per-node traces of one run into one global order consistent with causality: a
//! record that receives a message comes after some record that sent it.

use super::record::{TraceEvent, TraceRecord};
use raft_core::NodeId;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};

/// A message on the wire, as the model's network knows it: sender, receiver and content.
/// (Identical messages are indistinguishable, in the model's network too.)
pub(crate) type WireKey = (NodeId, NodeId, String);

pub(crate) fn wire_key<M: Serialize>(from: NodeId, to: NodeId, msg: &M) -> WireKey {
    (
        from,
        to,
        serde_json::to_string(msg).unwrap_or_else(|e| format!("<unserializable: {e}>")),
    )
}

/// The global order, and for each step the sends whose last use it is.
pub(crate) struct Merged {
    /// `(trace index, record index)` in replay order.
    pub order: Vec<(usize, usize)>,
    /// For each position of `order`, the sends `(position of the sending step, index in its
    /// sent list)` that nothing after it receives, and whether anything received them: after
    /// this position they may be dropped from the network.
    pub release_after: Vec<Vec<((usize, usize), bool)>>,
}

/// Merges `traces` (each one node's records, in seq order). Among the nodes whose next record
/// may go next (it receives nothing, or a message some earlier step sent and nothing received
/// yet), the one with the smallest time goes first (ties: the smaller node id). A receive is matched to the earliest
/// send of the same message not yet received; a message received more often than it was sent
/// is matched to its last send (the replay then decides whether the network allows that).
pub(crate) fn merge<C: Serialize>(traces: &[Vec<TraceRecord<C>>]) -> Result<Merged, String> {
    let receive_keys: Vec<Vec<Option<WireKey>>> = traces
        .iter()
        .map(|t| {
            t.iter()
                .map(|r| match &r.event {
                    TraceEvent::Receive { from, msg } => Some(wire_key(*from, r.node, msg)),
                    _ => None,
                })
                .collect()
        })
        .collect();
    let total: usize = traces.iter().map(Vec::len).sum();
    let mut heads = vec![0usize; traces.len()];
    let mut order = Vec::with_capacity(total);
    // Per message: sends not yet received (FIFO), and the last send of it.
    let mut unreceived: HashMap<WireKey, VecDeque<(usize, usize)>> = HashMap::new();
    let mut last_send: HashMap<WireKey, (usize, usize)> = HashMap::new();
    // Per send: the position of its last receive.
    let mut last_use: HashMap<(usize, usize), usize> = HashMap::new();
    let mut sends: Vec<(usize, usize)> = Vec::new();
    while order.len() < total {
        // Level 0: the next record receives nothing, or a message sent and not yet received;
        // level 1 (only when no record is at level 0): a message received before (sent once,
        // received again: the replay decides whether the network allows it).
        let mut best: Option<(u8, u64, NodeId, usize)> = None;
        for (t, trace) in traces.iter().enumerate() {
            let Some(record) = trace.get(heads[t]) else {
                continue;
            };
            let level = match &receive_keys[t][heads[t]] {
                Some(key) if unreceived.get(key).is_some_and(|q| !q.is_empty()) => 0,
                Some(key) if last_send.contains_key(key) => 1,
                Some(_) => continue,
                None => 0,
            };
            let candidate = (level, record.time_us, record.node, t);
            if best.is_none_or(|b| candidate < b) {
                best = Some(candidate);
            }
        }
        let Some((_, _, _, t)) = best else {
            let waiting: Vec<String> = traces
                .iter()
                .enumerate()
                .filter_map(|(t, trace)| {
                    trace.get(heads[t]).map(|r| {
                        format!(
                            "node {} seq {} ({})",
                            r.node,
                            r.seq,
                            super::describe_event(&r.event)
                        )
                    })
                })
                .collect();
            return Err(format!(
                "no causal order: after {} steps every node waits for a message nobody sent: {}",
                order.len(),
                waiting.join("; ")
            ));
        };
        let position = order.len();
        let record = &traces[t][heads[t]];
        if let Some(key) = &receive_keys[t][heads[t]] {
            let send = match unreceived.get_mut(key).and_then(VecDeque::pop_front) {
                Some(send) => send,
                None => last_send[key],
            };
            last_use.insert(send, position);
        }
        for (k, (to, msg)) in record.sent.iter().enumerate() {
            let key = wire_key(record.node, *to, msg);
            unreceived
                .entry(key.clone())
                .or_default()
                .push_back((position, k));
            last_send.insert(key, (position, k));
            sends.push((position, k));
        }
        order.push((t, heads[t]));
        heads[t] += 1;
    }
    let mut release_after = vec![Vec::new(); order.len()];
    for send in sends {
        match last_use.get(&send) {
            Some(&at) => release_after[at].push((send, true)),
            None => release_after[send.0].push((send, false)),
        }
    }
    Ok(Merged {
        order,
        release_after,
    })
}
