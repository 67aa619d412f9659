//! The replicated key-value state machine: commands applied in log order, with exactly-once
//! writes through per-client sessions (each command carries `client_id` and `seq`). The
//! sessions are raft-core's [`Service`]; only the map is the node's own.

use imbl::OrdMap;
use raft_core::service::{Applied, Service, SessionsImage, StateMachine};
use raft_core::{Address, Membership, NodeId};
use serde::{Deserialize, Serialize};

/// One operation on the map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Put {
        key: String,
        value: String,
    },
    /// A read: the leader answers it without a log entry once a majority confirmed its
    /// leadership (ReadIndex, raft-core's `read`), or proposes it while it has committed no
    /// entry of its term; either way it sees every write committed before it.
    Get {
        key: String,
    },
    Delete {
        key: String,
    },
    /// Sets `key` to `new` if its current value is `expected` (`None`: the key is absent).
    Cas {
        key: String,
        expected: Option<String>,
        new: String,
    },
    /// Not a client's: a configuration entry (raft-core's membership.rs), the whole
    /// membership after one change an operator asked for (`raft-kv member`). It changes the
    /// cluster, never the map.
    Reconfigure {
        voters: Vec<u64>,
        learners: Vec<u64>,
        /// The members' addresses the configuration carries (raft-core's `Address`).
        addresses: Vec<MemberAddress>,
    },
}

/// A member's peer and client addresses in a configuration entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddress {
    pub id: u64,
    pub peer: String,
    pub client: String,
}

/// The command stored in the Raft log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub client_id: u64,
    /// Per-client sequence number; a client retries a request with the same `seq`.
    pub seq: u64,
    pub op: Op,
}

/// An upper bound on a command's postcard encoding: two varints of at most 10 bytes, the
/// operation's tag, and each string with a length prefix of at most 10 bytes.
impl raft_core::Payload for Command {
    fn payload_bytes(&self) -> usize {
        let strings: usize = match &self.op {
            Op::Put { key, value } => 20 + key.len() + value.len(),
            Op::Get { key } | Op::Delete { key } => 10 + key.len(),
            Op::Cas { key, expected, new } => {
                31 + key.len() + expected.as_ref().map_or(0, |e| 10 + e.len()) + new.len()
            }
            Op::Reconfigure {
                voters,
                learners,
                addresses,
            } => {
                let each = |a: &MemberAddress| 30 + a.peer.len() + a.client.len();
                30 + 10 * (voters.len() + learners.len())
                    + addresses.iter().map(each).sum::<usize>()
            }
        };
        21 + strings
    }

    fn configuration(&self) -> Option<Membership> {
        match &self.op {
            Op::Reconfigure {
                voters,
                learners,
                addresses,
            } => Some(Membership {
                voters: voters.iter().map(|id| NodeId(*id)).collect(),
                learners: learners.iter().map(|id| NodeId(*id)).collect(),
                addresses: addresses
                    .iter()
                    .map(|a| {
                        let address = Address {
                            peer: a.peer.clone(),
                            client: a.client.clone(),
                        };
                        (NodeId(a.id), address)
                    })
                    .collect(),
            }),
            _ => None,
        }
    }
}

impl Command {
    /// The configuration entry installing `m` (an operator's, not a client's: its session
    /// fields are 0 and never reach the sessions).
    pub fn reconfigure(m: &Membership) -> Self {
        Command {
            client_id: 0,
            seq: 0,
            op: Op::Reconfigure {
                voters: m.voters.iter().map(|id| id.0).collect(),
                learners: m.learners.iter().map(|id| id.0).collect(),
                addresses: m
                    .addresses
                    .iter()
                    .map(|(id, a)| MemberAddress {
                        id: id.0,
                        peer: a.peer.clone(),
                        client: a.client.clone(),
                    })
                    .collect(),
            },
        }
    }
}

/// What applying an operation produced.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OpResult {
    /// Put, Delete and a successful Cas: the previous value. Get: the current value.
    Value(Option<String>),
    /// A Cas whose expected value did not match; nothing changed.
    CasMismatch { current: Option<String> },
    /// A request older than the client's latest applied one; its result is no longer kept.
    StaleRequest { last_seq: u64 },
}

/// The key-value map itself: the deterministic part of the service. A persistent map
/// (`imbl::OrdMap`, shared nodes): a copy costs O(1), so the snapshot writer thread encodes a
/// copy taken on the event loop while the loop goes on changing the map
/// ([`KvStore::image_source`]); the iteration order and the serde encoding are a BTreeMap's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvMap {
    data: OrdMap<String, String>,
}

impl StateMachine for KvMap {
    type Op = Op;
    type Output = OpResult;

    fn execute(&mut self, op: &Op) -> OpResult {
        let data = &mut self.data;
        match op {
            Op::Put { key, value } => OpResult::Value(data.insert(key.clone(), value.clone())),
            Op::Get { key } => OpResult::Value(data.get(key).cloned()),
            Op::Delete { key } => OpResult::Value(data.remove(key)),
            Op::Cas { key, expected, new } => {
                let current = data.get(key).cloned();
                if current == *expected {
                    OpResult::Value(data.insert(key.clone(), new.clone()))
                } else {
                    OpResult::CasMismatch { current }
                }
            }
            // Never reaches the map (`KvStore::apply` stops it).
            Op::Reconfigure { .. } => OpResult::Value(None),
        }
    }
}

/// A snapshot image of the store (§7): the map and the client sessions, postcard-encoded by
/// [`KvStore::image`]. Versioned, so that a node never takes another layout for its own.
#[derive(Clone, Serialize, Deserialize)]
struct Image {
    version: u32,
    data: OrdMap<String, String>,
    sessions: SessionsImage<OpResult>,
}

/// The store as it was when [`KvStore::image_source`] was called, to encode later (elsewhere).
#[derive(Clone)]
pub struct ImageSource(Image);

impl ImageSource {
    /// The snapshot image: what [`KvStore::image`] returned when this was taken.
    pub fn encode(&self) -> Vec<u8> {
        // Encoding strings, integers and vectors into a Vec cannot fail.
        postcard::to_allocvec(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImageSource({} keys)", self.0.data.len())
    }
}

/// The layout of [`Image`] this code writes and reads.
const IMAGE_VERSION: u32 = 1;

/// Why a snapshot image could not be restored (the store is left unchanged).
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("snapshot image does not decode: {0}")]
    Malformed(String),
    #[error("snapshot image of version {found}, this node reads version {IMAGE_VERSION}")]
    Version { found: u32 },
}

/// The replicated key-value store: the map behind raft-core's exactly-once client sessions
/// ([`Service`], the same type the model checker's register uses, so the deduplication path the
/// node relies on is the one the checker explores).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvStore {
    service: Service<KvMap>,
}

impl Default for KvStore {
    /// With raft-core's `DEFAULT_MAX_SESSIONS` client sessions at most (the least recently
    /// used expires).
    fn default() -> Self {
        KvStore {
            service: Service::new(KvMap::default())
                .with_max_sessions(raft_core::service::DEFAULT_MAX_SESSIONS),
        }
    }
}

impl KvStore {
    pub fn new() -> Self {
        KvStore::default()
    }

    /// Client sessions kept (at most `raft_core::service::DEFAULT_MAX_SESSIONS`).
    pub fn session_count(&self) -> usize {
        self.service.session_count()
    }

    /// Applies one committed command. A duplicate of a client's latest request returns the
    /// cached result without executing it again; an older one is refused.
    pub fn apply(&mut self, command: &Command) -> OpResult {
        // A configuration entry took effect when it was appended (raft-core); the map and
        // the sessions have nothing to do with it.
        if matches!(command.op, Op::Reconfigure { .. }) {
            return OpResult::Value(None);
        }
        match self
            .service
            .apply(command.client_id, command.seq, &command.op)
        {
            Applied::Executed(result) | Applied::Duplicate(result) => result,
            Applied::Stale { last_seq } => OpResult::StaleRequest { last_seq },
        }
    }

    /// The store's snapshot image (§7): the map and the exactly-once client sessions, so that
    /// a replica restored from it answers and deduplicates exactly as this one.
    pub fn image(&self) -> Vec<u8> {
        self.image_source().encode()
    }

    /// What [`KvStore::image`] encodes, taken in O(sessions) (the map's copy is O(1)): the
    /// snapshot writer thread encodes it off the event loop.
    pub fn image_source(&self) -> ImageSource {
        ImageSource(Image {
            version: IMAGE_VERSION,
            data: self.service.machine.data.clone(),
            sessions: self.service.sessions_image(),
        })
    }

    /// Replaces the map and the sessions with those of `image` (from [`KvStore::image`]); the
    /// session limit stays. A corrupt or foreign image is an error and changes nothing.
    pub fn restore(&mut self, image: &[u8]) -> Result<(), ImageError> {
        let found = match postcard::take_from_bytes::<u32>(image) {
            Ok((version, _)) => version,
            Err(e) => return Err(ImageError::Malformed(e.to_string())),
        };
        if found != IMAGE_VERSION {
            return Err(ImageError::Version { found });
        }
        let image: Image = match postcard::take_from_bytes(image) {
            Ok((image, [])) => image,
            Ok((_, rest)) => {
                let msg = format!("{} trailing bytes", rest.len());
                return Err(ImageError::Malformed(msg));
            }
            Err(e) => return Err(ImageError::Malformed(e.to_string())),
        };
        self.service
            .restore(KvMap { data: image.data }, image.sessions);
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.service.machine.data.get(key)
    }

    pub fn len(&self) -> usize {
        self.service.machine.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.service.machine.data.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// The image of the persistent map is byte for byte the image of version 1 as a BTreeMap
    /// wrote it (so snapshots of earlier builds restore, and theirs here), and a source taken
    /// before later changes encodes the store as it was then.
    #[test]
    fn the_image_keeps_its_layout_and_a_source_is_the_store_when_taken() {
        #[derive(Serialize)]
        struct OldImage<'a> {
            version: u32,
            data: &'a BTreeMap<String, String>,
            sessions: SessionsImage<OpResult>,
        }
        let mut kv = KvStore::new();
        for i in 0..50u64 {
            let op = Op::Put {
                key: format!("key-{}", (i * 37) % 50),
                value: format!("value-{i}"),
            };
            kv.apply(&cmd(i % 3, i, op));
        }
        let before = kv.clone();
        let source = kv.image_source();
        let data: BTreeMap<String, String> = kv.service.machine.data.clone().into_iter().collect();
        let old = OldImage {
            version: IMAGE_VERSION,
            data: &data,
            sessions: kv.service.sessions_image(),
        };
        assert_eq!(kv.image(), postcard::to_allocvec(&old).unwrap());
        let put = Op::Put {
            key: "key-1".into(),
            value: "changed".into(),
        };
        kv.apply(&cmd(9, 1, put));
        let mut restored = KvStore::new();
        restored.restore(&source.encode()).unwrap();
        assert_eq!(restored, before);
        assert_ne!(restored, kv);
    }

    fn cmd(client_id: u64, seq: u64, op: Op) -> Command {
        Command { client_id, seq, op }
    }

    fn put(k: &str, v: &str) -> Op {
        Op::Put {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn a_duplicate_request_returns_the_cached_result_without_executing_again() {
        let mut kv = KvStore::new();
        assert_eq!(kv.apply(&cmd(1, 1, put("k", "a"))), OpResult::Value(None));
        // Another client changes the key; then client 1's request is re-delivered.
        kv.apply(&cmd(2, 1, put("k", "b")));
        assert_eq!(kv.apply(&cmd(1, 1, put("k", "a"))), OpResult::Value(None));
        assert_eq!(kv.get("k").map(String::as_str), Some("b"));
        // An older request is refused, not executed.
        kv.apply(&cmd(1, 2, put("k", "c")));
        assert_eq!(
            kv.apply(&cmd(1, 1, put("k", "a"))),
            OpResult::StaleRequest { last_seq: 2 }
        );
        assert_eq!(kv.get("k").map(String::as_str), Some("c"));
    }

    #[test]
    fn client_sessions_are_bounded() {
        let mut kv = KvStore::new();
        let max = raft_core::service::DEFAULT_MAX_SESSIONS as u64;
        for client in 0..max + 100 {
            kv.apply(&cmd(client, 1, put("k", "v")));
        }
        assert_eq!(kv.session_count() as u64, max);
    }

    #[test]
    fn cas_only_changes_a_matching_value() {
        let mut kv = KvStore::new();
        let cas = |expected: Option<&str>, new: &str| Op::Cas {
            key: "k".into(),
            expected: expected.map(String::from),
            new: new.into(),
        };
        assert_eq!(kv.apply(&cmd(1, 1, cas(None, "x"))), OpResult::Value(None));
        assert_eq!(
            kv.apply(&cmd(1, 2, cas(Some("y"), "z"))),
            OpResult::CasMismatch {
                current: Some("x".into())
            }
        );
        assert_eq!(
            kv.apply(&cmd(1, 3, cas(Some("x"), "z"))),
            OpResult::Value(Some("x".into()))
        );
        assert_eq!(kv.get("k").map(String::as_str), Some("z"));
    }

    #[test]
    fn an_image_restores_the_map_and_the_sessions() {
        let mut kv = KvStore::new();
        kv.apply(&cmd(1, 1, put("a", "1")));
        kv.apply(&cmd(2, 1, put("b", "2")));
        kv.apply(&cmd(1, 2, Op::Delete { key: "b".into() }));
        let image = kv.image();
        let mut restored = KvStore::new();
        restored.apply(&cmd(9, 1, put("junk", "x")));
        restored.restore(&image).unwrap();
        assert_eq!(restored, kv);
        // The sessions came along: a retry is answered from them, an older request refused.
        assert_eq!(
            restored.apply(&cmd(1, 2, Op::Delete { key: "b".into() })),
            OpResult::Value(Some("2".into()))
        );
        assert_eq!(
            restored.apply(&cmd(1, 1, put("a", "1"))),
            OpResult::StaleRequest { last_seq: 2 }
        );
        assert_eq!(restored.get("a").map(String::as_str), Some("1"));
        assert_eq!(restored.get("b"), None);
    }

    #[test]
    fn a_corrupt_image_is_an_error_and_changes_nothing() {
        let mut kv = KvStore::new();
        kv.apply(&cmd(1, 1, put("a", "1")));
        let image = kv.image();
        let before = kv.clone();
        for bad in [
            Vec::new(),
            image[..image.len() - 1].to_vec(),
            [image.clone(), vec![0]].concat(),
            vec![2, 0, 0],
            vec![0xff; 12],
        ] {
            assert!(kv.restore(&bad).is_err(), "{bad:?} restored");
            assert_eq!(kv, before);
        }
        assert!(matches!(
            kv.restore(&[7]),
            Err(ImageError::Version { found: 7 })
        ));
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        let key = prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from);
        let val = prop::sample::select(vec!["1", "2", "3"]).prop_map(String::from);
        prop_oneof![
            (key.clone(), val.clone()).prop_map(|(key, value)| Op::Put { key, value }),
            key.clone().prop_map(|key| Op::Get { key }),
            key.clone().prop_map(|key| Op::Delete { key }),
            (key, prop::option::of(val.clone()), val).prop_map(|(key, expected, new)| Op::Cas {
                key,
                expected,
                new
            }),
        ]
    }

    proptest! {
        /// Random sequences (with re-delivered duplicates) agree with a plain BTreeMap model.
        #[test]
        fn random_operations_match_a_btreemap_model(
            ops in prop::collection::vec((0u64..3, arb_op(), any::<bool>()), 0..64)
        ) {
            let mut kv = KvStore::new();
            let mut model: BTreeMap<String, String> = BTreeMap::new();
            let mut seqs = [0u64; 3];
            for (client, op, duplicate) in ops {
                seqs[client as usize] += 1;
                let command = cmd(client, seqs[client as usize], op.clone());
                let expected = match &op {
                    Op::Put { key, value } => OpResult::Value(model.insert(key.clone(), value.clone())),
                    Op::Get { key } => OpResult::Value(model.get(key).cloned()),
                    Op::Delete { key } => OpResult::Value(model.remove(key)),
                    Op::Cas { key, expected, new } => {
                        let current = model.get(key).cloned();
                        if current == *expected {
                            OpResult::Value(model.insert(key.clone(), new.clone()))
                        } else {
                            OpResult::CasMismatch { current }
                        }
                    }
                    Op::Reconfigure { .. } => unreachable!("arb_op makes no configuration entry"),
                };
                prop_assert_eq!(kv.apply(&command), expected.clone());
                if duplicate {
                    prop_assert_eq!(kv.apply(&command), expected);
                }
                let data: BTreeMap<String, String> = kv.service.machine.data.clone().into_iter().collect();
                prop_assert_eq!(&data, &model);
            }
        }
    }
}
