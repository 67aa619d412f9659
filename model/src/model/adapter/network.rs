//! The messages in flight, as one sorted vector.
//!
//! The same three delivery semantics as stateright's `actor::Network`, and the same states
//! told apart (so a bound explores exactly the states it explored under `ActorModel`), in a
//! canonical form that clones with one allocation and hashes in order:
//! - unordered, non-duplicating: a multiset; each distinct envelope once, with its count;
//! - unordered, duplicating: a set (a delivered message stays), plus the last delivered
//!   envelope (a delivery that changes no actor still yields a new state, as in stateright);
//! - ordered: one FIFO queue per (source, destination) channel; only a queue's head is
//!   deliverable.
//!
//! Unordered envelopes are sorted by (source, destination, message); ordered ones by channel,
//! in sending order within a channel.

use crate::model::config::NetworkKind;
use crate::model::judge::register::Msg;
use stateright::actor::{Envelope, Id};

/// The messages in flight.
///
/// Invariant: `envelopes` is sorted as the module says, every count is at least 1, and a
/// count above 1 occurs only on the non-duplicating network.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Network {
    kind: NetworkKind,
    #[serde(with = "wire::envelopes")]
    envelopes: Vec<(Envelope<Msg>, u32)>,
    /// Duplicating network only: the last delivered envelope.
    #[serde(with = "wire::last")]
    last_delivered: Option<Envelope<Msg>>,
}

/// The network as the distributed engine sends it between processes: stateright 0.31's
/// `Envelope` serializes but does not deserialize, so an envelope travels as its fields.
mod wire {
    use super::Msg;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use stateright::actor::{Envelope, Id};

    type Fields = (Id, Id, Msg);

    fn fields(e: &Envelope<Msg>) -> Fields {
        (e.src, e.dst, e.msg.clone())
    }

    fn envelope((src, dst, msg): Fields) -> Envelope<Msg> {
        Envelope { src, dst, msg }
    }

    pub mod envelopes {
        use super::*;

        pub fn serialize<S: Serializer>(
            v: &[(Envelope<Msg>, u32)],
            s: S,
        ) -> Result<S::Ok, S::Error> {
            let v: Vec<(Fields, u32)> = v.iter().map(|(e, n)| (fields(e), *n)).collect();
            v.serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<(Envelope<Msg>, u32)>, D::Error> {
            let v: Vec<(Fields, u32)> = Vec::deserialize(d)?;
            Ok(v.into_iter().map(|(f, n)| (envelope(f), n)).collect())
        }
    }

    pub mod last {
        use super::*;

        pub fn serialize<S: Serializer>(
            v: &Option<Envelope<Msg>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            v.as_ref().map(fields).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Envelope<Msg>>, D::Error> {
            Ok(Option::<Fields>::deserialize(d)?.map(envelope))
        }
    }
}

fn borrowed(e: &Envelope<Msg>) -> Envelope<&Msg> {
    Envelope {
        src: e.src,
        dst: e.dst,
        msg: &e.msg,
    }
}

impl Network {
    pub fn new(kind: NetworkKind) -> Self {
        Network {
            kind,
            envelopes: Vec::new(),
            last_delivered: None,
        }
    }

    pub fn kind(&self) -> NetworkKind {
        self.kind
    }

    pub fn is_ordered(&self) -> bool {
        self.kind == NetworkKind::Ordered
    }

    /// Messages in flight, each copy counted.
    pub fn len(&self) -> usize {
        self.envelopes.iter().map(|(_, c)| *c as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.envelopes.is_empty()
    }

    /// Every message in flight, each copy once, in the network's order.
    pub fn iter_all(&self) -> impl Iterator<Item = Envelope<&Msg>> + '_ {
        self.envelopes
            .iter()
            .flat_map(|(e, c)| std::iter::repeat_n(borrowed(e), *c as usize))
    }

    /// The messages that may be delivered (or lost) next: every distinct envelope, or on the
    /// ordered network the head of each channel. Sorted by (source, destination, message).
    pub fn iter_deliverable(&self) -> impl Iterator<Item = Envelope<&Msg>> + '_ {
        let ordered = self.is_ordered();
        self.envelopes
            .iter()
            .enumerate()
            .filter(move |(k, (e, _))| {
                !ordered
                    || *k == 0
                    || (self.envelopes[k - 1].0.src, self.envelopes[k - 1].0.dst) != (e.src, e.dst)
            })
            .map(|(_, (e, _))| borrowed(e))
    }

    /// Every distinct envelope in flight with its number of copies, in the network's order
    /// (on the ordered network, one entry per message).
    pub fn entries(&self) -> impl Iterator<Item = (Envelope<&Msg>, usize)> + '_ {
        self.envelopes
            .iter()
            .map(|(e, c)| (borrowed(e), *c as usize))
    }

    /// The duplicating network's last delivered envelope.
    pub fn last_delivered(&self) -> Option<Envelope<&Msg>> {
        self.last_delivered.as_ref().map(borrowed)
    }

    pub fn send(&mut self, env: Envelope<Msg>) {
        if self.is_ordered() {
            // Behind everything already queued on its channel.
            let channel = (env.src, env.dst);
            let at = self
                .envelopes
                .partition_point(|(e, _)| (e.src, e.dst) <= channel);
            self.envelopes.insert(at, (env, 1));
            return;
        }
        match self.envelopes.binary_search_by(|(e, _)| e.cmp(&env)) {
            Ok(k) => {
                if self.kind == NetworkKind::UnorderedNonDuplicating {
                    self.envelopes[k].1 += 1;
                }
            }
            Err(k) => self.envelopes.insert(k, (env, 1)),
        }
    }

    /// Messages in flight (as [`Network::len`] counts them) after one step of actor `src`
    /// that received one of them (`delivered`) and sent `sends` (destination, message), as
    /// `on_deliver` and `send` would leave them: the model's boundary, decided before the
    /// successor state is built.
    pub fn len_after<'a>(
        &self,
        src: Id,
        delivered: bool,
        sends: impl Iterator<Item = (Id, &'a Msg)>,
    ) -> usize {
        if self.kind != NetworkKind::UnorderedDuplicating {
            // A multiset or queues: a delivery takes one copy out, every send adds one.
            return self.len() - usize::from(delivered && !self.is_empty()) + sends.count();
        }
        // A set: a delivered message stays; a send adds an envelope not yet in flight.
        let mut added: Vec<Envelope<&Msg>> = Vec::new();
        for (dst, msg) in sends {
            let env = Envelope { src, dst, msg };
            let present = self
                .envelopes
                .binary_search_by(|(e, _)| borrowed(e).cmp(&env))
                .is_ok();
            if !present && !added.contains(&env) {
                added.push(env);
            }
        }
        self.len() + added.len()
    }

    /// Position of `env` (on the ordered network: its first copy in its channel).
    fn position(&self, env: &Envelope<Msg>) -> Option<usize> {
        if self.is_ordered() {
            self.envelopes.iter().position(|(e, _)| e == env)
        } else {
            self.envelopes.binary_search_by(|(e, _)| e.cmp(env)).ok()
        }
    }

    /// Take one copy of `env` out of flight (it was delivered, or lost). Returns false if
    /// it was not in flight.
    fn take(&mut self, env: &Envelope<Msg>) -> bool {
        let Some(k) = self.position(env) else {
            return false;
        };
        if self.envelopes[k].1 > 1 {
            self.envelopes[k].1 -= 1;
        } else {
            self.envelopes.remove(k);
        }
        true
    }

    /// `env` was delivered. Returns false if it was not in flight.
    pub fn on_deliver(&mut self, env: Envelope<Msg>) -> bool {
        if self.kind == NetworkKind::UnorderedDuplicating {
            let present = self.position(&env).is_some();
            self.last_delivered = Some(env);
            return present;
        }
        self.take(&env)
    }

    /// `env` was lost. Returns false if it was not in flight.
    pub fn on_drop(&mut self, env: &Envelope<Msg>) -> bool {
        self.take(env)
    }

    /// A network holding exactly `entries` (envelope, copies) and `last_delivered`, put in the
    /// canonical order here, without `send` (the engine tests build stateright's networks
    /// with it, so a fault in `send` cannot hide on both sides).
    #[cfg(test)]
    pub(crate) fn from_parts(
        kind: NetworkKind,
        mut entries: Vec<(Envelope<Msg>, u32)>,
        last_delivered: Option<Envelope<Msg>>,
    ) -> Network {
        if kind == NetworkKind::Ordered {
            entries.sort_by_key(|(e, _)| (e.src, e.dst)); // stable: queue order kept
        } else {
            entries.sort();
        }
        Network {
            kind,
            envelopes: entries,
            last_delivered,
        }
    }

    /// The same network with every id passed through `id` and every message through `msg`
    /// (symmetry: a renaming of the servers).
    pub fn renamed(&self, id: impl Fn(Id) -> Id, msg: impl Fn(&Msg) -> Msg) -> Network {
        let rename = |e: &Envelope<Msg>| Envelope {
            src: id(e.src),
            dst: id(e.dst),
            msg: msg(&e.msg),
        };
        let mut out = Network::new(self.kind);
        if self.is_ordered() {
            // Channels move whole: their order within is kept.
            let mut renamed: Vec<(Envelope<Msg>, u32)> = self
                .envelopes
                .iter()
                .map(|(e, c)| (rename(e), *c))
                .collect();
            renamed.sort_by_key(|(e, _)| (e.src, e.dst));
            out.envelopes = renamed;
        } else {
            let mut renamed: Vec<(Envelope<Msg>, u32)> = self
                .envelopes
                .iter()
                .map(|(e, c)| (rename(e), *c))
                .collect();
            renamed.sort_unstable();
            out.envelopes = renamed;
        }
        out.last_delivered = self.last_delivered.as_ref().map(rename);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::judge::register::{ClientOp, Msg};

    fn env(src: usize, dst: usize, seq: u8) -> Envelope<Msg> {
        Envelope {
            src: Id::from(src),
            dst: Id::from(dst),
            msg: Msg::Request {
                seq,
                op: ClientOp::Get,
            },
        }
    }

    #[test]
    fn non_duplicating_counts_copies_and_delivers_each_once() {
        let mut n = Network::new(NetworkKind::UnorderedNonDuplicating);
        n.send(env(1, 0, 0));
        n.send(env(0, 1, 0));
        n.send(env(1, 0, 0));
        assert_eq!(n.len(), 3);
        assert_eq!(n.iter_deliverable().count(), 2, "one per distinct envelope");
        let firsts: Vec<_> = n.iter_deliverable().map(|e| usize::from(e.src)).collect();
        assert_eq!(firsts, vec![0, 1], "sorted by source");
        assert!(n.on_deliver(env(1, 0, 0)));
        assert_eq!(n.len(), 2);
        assert!(n.on_drop(&env(1, 0, 0)));
        assert!(!n.on_drop(&env(1, 0, 0)), "no copy left");
        assert_eq!(n.len(), 1);
    }

    #[test]
    fn sending_order_does_not_tell_unordered_states_apart() {
        let mut a = Network::new(NetworkKind::UnorderedNonDuplicating);
        let mut b = a.clone();
        a.send(env(0, 1, 0));
        a.send(env(2, 1, 1));
        b.send(env(2, 1, 1));
        b.send(env(0, 1, 0));
        assert_eq!(a, b);
    }

    #[test]
    fn duplicating_keeps_delivered_messages_and_remembers_the_last() {
        let mut n = Network::new(NetworkKind::UnorderedDuplicating);
        n.send(env(0, 1, 0));
        n.send(env(0, 1, 0));
        assert_eq!(n.len(), 1, "a set");
        assert!(n.on_deliver(env(0, 1, 0)));
        assert_eq!(n.len(), 1, "still deliverable");
        assert_eq!(
            n.last_delivered().map(|e| e.msg.clone()),
            Some(env(0, 1, 0).msg)
        );
        assert!(n.on_drop(&env(0, 1, 0)));
        assert!(n.is_empty());
    }

    #[test]
    fn ordered_delivers_each_channel_head_first() {
        let mut n = Network::new(NetworkKind::Ordered);
        n.send(env(0, 1, 5));
        n.send(env(2, 1, 0));
        n.send(env(0, 1, 3));
        let heads: Vec<_> = n
            .iter_deliverable()
            .map(|e| (usize::from(e.src), e.msg.clone()))
            .collect();
        assert_eq!(heads, vec![(0, env(0, 1, 5).msg), (2, env(2, 1, 0).msg)]);
        assert!(n.on_deliver(env(0, 1, 5)));
        let heads: Vec<_> = n.iter_deliverable().map(|e| e.msg.clone()).collect();
        assert_eq!(heads, vec![env(0, 1, 3).msg, env(2, 1, 0).msg]);
    }
}
