//! Reading trace records: one per step of a node, written by the runtime (raft-impl's `trace`
//! module) as one JSON line. The record types are raft-core's (`raft_core::trace_record`), next to the
//! events they record.

pub use raft_core::trace_record::{RunInfo, TraceEvent, TraceRecord};
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

/// The replay needs of a command only whether it is a configuration entry: the runtime's
/// (raft-impl's `Op::Reconfigure`) is `{"op": {"Reconfigure": {"voters": [..], "learners":
/// [..]}}}` in JSON. Its size never matters to the replay (the runtime's batching is replayed
/// as recorded).
impl raft_core::Payload for Opaque {
    fn payload_bytes(&self) -> usize {
        self.0.len()
    }

    fn configuration(&self) -> Option<raft_core::Membership> {
        if !self.0.contains("\"Reconfigure\"") {
            return None;
        }
        let value: serde_json::Value = serde_json::from_str(&self.0).ok()?;
        let config = value.get("op")?.get("Reconfigure")?;
        let ids = |key: &str| -> Option<std::collections::BTreeSet<raft_core::NodeId>> {
            config
                .get(key)?
                .as_array()?
                .iter()
                .map(|id| id.as_u64().map(raft_core::NodeId))
                .collect()
        };
        // The node's configuration entries carry the members' addresses (absent in traces
        // written before they did).
        let mut addresses = std::collections::BTreeMap::new();
        for a in config
            .get("addresses")
            .and_then(|a| a.as_array())
            .into_iter()
            .flatten()
        {
            let text = |key: &str| a.get(key)?.as_str().map(str::to_string);
            let address = raft_core::Address {
                peer: text("peer")?,
                client: text("client")?,
            };
            addresses.insert(raft_core::NodeId(a.get("id")?.as_u64()?), address);
        }
        Some(raft_core::Membership {
            voters: ids("voters")?,
            learners: ids("learners")?,
            addresses,
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
