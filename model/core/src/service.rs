//! The replicated service: a deterministic state machine behind exactly-once client sessions
//! (Ongaro's thesis §6.3). One implementation, used by the runnable node (the key-value store)
//! and by the model checker (its register), so the deduplication the node relies on is the one
//! the checker explores.
//!
//! Every command carries its client's id and a per-client sequence number; a client retries a
//! request with the same number. Retries are proposed to the log again like any command, so one
//! request may sit in the log several times: applying the first executes it, applying a later
//! copy returns the recorded result ([`Applied::Duplicate`]), and a copy older than the client's
//! latest request returns [`Applied::Stale`] (its result is no longer kept).

use crate::rules::{Protocol, Rules};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

/// A deterministic state machine: the same operations in the same order give the same results
/// on every replica.
pub trait StateMachine {
    type Op;
    type Output: Clone + Debug + PartialEq + Eq + PartialOrd + Ord + Hash;
    fn execute(&mut self, op: &Self::Op) -> Self::Output;
}

/// What applying one command came to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Applied<R> {
    /// Executed now, for the first time.
    Executed(R),
    /// The client's latest request again: not executed, the recorded result.
    Duplicate(R),
    /// A request older than the client's latest one: not executed; its result is gone.
    Stale { last_seq: u64 },
}

impl<R> Applied<R> {
    /// The result the client gets, if it is still known.
    pub fn result(&self) -> Option<&R> {
        match self {
            Applied::Executed(r) | Applied::Duplicate(r) => Some(r),
            Applied::Stale { .. } => None,
        }
    }
}

/// A client's session: its latest applied request and that request's result.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
struct Session<R> {
    /// Invariant: the highest sequence number applied for this client.
    last_seq: u64,
    result: R,
    /// When the session was last used, counted in commands applied (with a session limit).
    last_used: u64,
}

/// A state machine with its client sessions (volatile: rebuilt by re-applying the log).
///
/// Sessions expire the thesis's §6.3 way, by a count replicated through the log: with a limit
/// ([`Service::with_max_sessions`]), applying a command of a new client when the limit is
/// reached drops the session used least recently, counted in applied commands, the same on
/// every replica. A client whose session expired is a new client to the service: a retry of
/// its last request would run again, so the limit must be far above the number of clients that
/// retry at once (the node's default: [`DEFAULT_MAX_SESSIONS`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(bound(
    serialize = "M: Serialize, M::Output: Serialize, R: Serialize",
    deserialize = "M: Deserialize<'de>, M::Output: Deserialize<'de>, R: Deserialize<'de>"
))]
pub struct Service<M: StateMachine, R: Rules = Protocol> {
    pub machine: M,
    /// The session rule ([`Rules::is_late_copy`]); a node's is always [`Protocol`].
    rules: R,
    sessions: BTreeMap<u64, Session<M::Output>>,
    /// With a limit: at most this many sessions. `None`: sessions never expire.
    max_sessions: Option<usize>,
    /// With a limit: commands applied so far, and each session's client by its `last_used`.
    applied: u64,
    by_use: BTreeMap<u64, u64>,
}

/// What a snapshot (§7) holds of a service besides its state machine: the client sessions, so
/// that a replica restored from it deduplicates exactly as the one that took it (thesis §6.3).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionsImage<O> {
    /// Per client: (client, last_seq, result, last_used), by client.
    pub sessions: Vec<(u64, u64, O, u64)>,
    /// Commands applied so far (with a session limit).
    pub applied: u64,
}

/// The session limit the node uses.
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;

impl<M: StateMachine + Default, R: Rules + Default> Default for Service<M, R> {
    fn default() -> Self {
        Service::with_rules(M::default(), R::default())
    }
}

impl<M: StateMachine> Service<M> {
    pub fn new(machine: M) -> Self {
        Service::with_rules(machine, Protocol)
    }
}

impl<M: StateMachine, R: Rules> Service<M, R> {
    /// The service deciding late copies by `rules` (the model checker's, with its mutants).
    pub fn with_rules(machine: M, rules: R) -> Self {
        Service {
            machine,
            rules,
            sessions: BTreeMap::new(),
            max_sessions: None,
            applied: 0,
            by_use: BTreeMap::new(),
        }
    }

    /// The same service keeping at most `max` (at least 1) client sessions.
    pub fn with_max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = Some(max.max(1));
        self
    }

    /// Applies one committed command of `client` with sequence number `seq`, at most once.
    pub fn apply(&mut self, client: u64, seq: u64, op: &M::Op) -> Applied<M::Output> {
        let now = self.applied;
        if self.max_sessions.is_some() {
            self.applied += 1;
        }
        self.touch(client, now);
        if let Some(session) = self.sessions.get(&client) {
            if seq == session.last_seq {
                return Applied::Duplicate(session.result.clone());
            }
            if self.rules.is_late_copy(seq, session.last_seq) {
                return Applied::Stale {
                    last_seq: session.last_seq,
                };
            }
        }
        let result = self.machine.execute(op);
        self.expire_for(client);
        self.sessions.insert(
            client,
            Session {
                last_seq: seq,
                result: result.clone(),
                last_used: now,
            },
        );
        if self.max_sessions.is_some() {
            self.by_use.insert(now, client);
        }
        Applied::Executed(result)
    }

    /// With a limit: `client`'s session was used at `now`.
    fn touch(&mut self, client: u64, now: u64) {
        if self.max_sessions.is_none() {
            return;
        }
        if let Some(session) = self.sessions.get_mut(&client) {
            self.by_use.remove(&session.last_used);
            session.last_used = now;
            self.by_use.insert(now, client);
        }
    }

    /// With a limit, before a session for a new `client` is made: drop the least recently used
    /// sessions until there is room.
    fn expire_for(&mut self, client: u64) {
        let Some(max) = self.max_sessions else {
            return;
        };
        if self.sessions.contains_key(&client) {
            return;
        }
        while self.sessions.len() >= max {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            self.sessions.remove(&oldest);
        }
    }

    /// The recorded result of `client`'s request `seq`, if it is the latest one applied.
    pub fn recorded(&self, client: u64, seq: u64) -> Option<&M::Output> {
        self.sessions
            .get(&client)
            .filter(|s| s.last_seq == seq)
            .map(|s| &s.result)
    }

    /// The client sessions, for a snapshot.
    pub fn sessions_image(&self) -> SessionsImage<M::Output> {
        SessionsImage {
            sessions: self
                .sessions
                .iter()
                .filter(|_| self.rules.snapshot_holds_sessions())
                .map(|(c, s)| (*c, s.last_seq, s.result.clone(), s.last_used))
                .collect(),
            applied: self.applied,
        }
    }

    /// Replaces the state machine and the sessions with a snapshot's (`Output::restore`, or a
    /// restart from a snapshot); the session limit and the rules stay.
    pub fn restore(&mut self, machine: M, image: SessionsImage<M::Output>) {
        self.machine = machine;
        self.applied = image.applied;
        self.sessions.clear();
        self.by_use.clear();
        for (client, last_seq, result, last_used) in image.sessions {
            if self.max_sessions.is_some() {
                self.by_use.insert(last_used, client);
            }
            self.sessions.insert(
                client,
                Session {
                    last_seq,
                    result,
                    last_used,
                },
            );
        }
    }

    /// Number of client sessions kept.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Debug)]
    struct Counter(u64);

    impl StateMachine for Counter {
        type Op = u64;
        type Output = u64;
        fn execute(&mut self, op: &u64) -> u64 {
            self.0 += op;
            self.0
        }
    }

    #[test]
    fn a_retried_request_executes_once_and_an_older_one_not_at_all() {
        let mut s = Service::new(Counter::default());
        assert_eq!(s.apply(1, 1, &5), Applied::Executed(5));
        assert_eq!(s.apply(2, 1, &1), Applied::Executed(6));
        // The retry of client 1's request, applied from a second log entry.
        assert_eq!(s.apply(1, 1, &5), Applied::Duplicate(5));
        assert_eq!(s.machine.0, 6);
        assert_eq!(s.apply(1, 2, &10), Applied::Executed(16));
        assert_eq!(s.apply(1, 1, &5), Applied::Stale { last_seq: 2 });
        assert_eq!(s.machine.0, 16);
        assert_eq!(s.recorded(1, 2), Some(&16));
        assert_eq!(s.recorded(1, 1), None);
    }

    #[test]
    fn a_restored_service_deduplicates_like_the_one_imaged() {
        let mut s = Service::new(Counter::default()).with_max_sessions(2);
        s.apply(1, 1, &5);
        s.apply(2, 1, &1);
        let image = s.sessions_image();
        let mut r = Service::new(Counter::default()).with_max_sessions(2);
        r.restore(Counter(s.machine.0), image);
        assert_eq!(r.apply(1, 1, &5), Applied::Duplicate(5));
        assert_eq!(r.apply(3, 1, &1), Applied::Executed(7));
        assert_eq!(
            r.recorded(2, 1),
            None,
            "client 2 was the least recently used"
        );
        assert_eq!(r.session_count(), 2);
    }

    #[test]
    fn with_a_limit_the_least_recently_used_session_expires() {
        let mut s = Service::new(Counter::default()).with_max_sessions(2);
        s.apply(1, 1, &1);
        s.apply(2, 1, &1);
        s.apply(1, 2, &1); // client 1 used again: client 2 is now the oldest
        s.apply(3, 1, &1); // a new client at the limit: client 2's session expires
        assert_eq!(s.session_count(), 2);
        assert_eq!(s.recorded(1, 2), Some(&3));
        assert_eq!(s.recorded(2, 1), None);
        assert_eq!(s.recorded(3, 1), Some(&4));
        // An expired client is a new one: its retry runs again (why the limit must be large).
        assert_eq!(s.apply(2, 1, &1), Applied::Executed(5));
        assert_eq!(s.session_count(), 2);
        // Without a limit nothing expires.
        let mut u = Service::new(Counter::default());
        for c in 0..100 {
            u.apply(c, 1, &1);
        }
        assert_eq!(u.session_count(), 100);
    }
}
