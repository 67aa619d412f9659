//! Which steps commute: the independence relation behind partial-order reduction (sleep sets).
//!
//! Two steps `a` and `b` enabled in a state are *independent* there when taking one leaves
//! the other enabled and both orders reach the same state. A checker may then skip `b` after
//! `a` when it has already explored `b` before `a` (a sleep set): the state it would reach is
//! reached the other way round. Sleep sets skip transitions, never states: every reachable
//! state is still visited, so every state property keeps its verdict.
//!
//! The relation here is structural and deliberately small:
//! - only on the unordered non-duplicating network (a multiset: sending and taking copies of
//!   different envelopes commute; the duplicating network's "last delivered" and the ordered
//!   network's channels are left out);
//! - a step of one actor (a delivery to it, or its timeout) and a step of another actor
//!   commute: each reads and writes only its own state, timers and storage, takes its own
//!   message and adds messages to the multiset; except two client steps, which both append to
//!   the one linearizability history (servers never touch it: only clients send requests and
//!   receive replies);
//! - losing a message commutes with every step that does not take the same envelope, and with
//!   losing another envelope;
//! - a crash or restart of one server commutes with every step of another actor and with
//!   losses (the crash keeps the messages in flight; a message to a crashed server waits),
//!   but not with another crash or restart (the crash bound couples them).
//!
//! The bounds are the one coupling the structure misses: the number of messages in flight and
//! the operator requests (transfers, configuration changes, snapshots) are bounded over all
//! servers, so `b` can fit after `a` in one order and not in the other. A checker therefore
//! records each explored step's [`Delta`] on those counters (a step's effect on them depends
//! only on its own actor's state and message, which an independent step leaves alone) and
//! keeps `b` asleep after `a` only while [`Counters::fits`] says `b` still fits.

use crate::model::adapter::state::RaftState;
use crate::model::config::ModelConfig;
use crate::model::NetworkKind;
use crate::model::RaftAction;
use stateright::actor::ActorModelAction;

/// Whether sleep sets apply to this bound (see the module comment).
pub fn applies(cfg: &ModelConfig) -> bool {
    cfg.network == NetworkKind::UnorderedNonDuplicating
}

/// What a step touches besides the network's multiset.
enum Touch {
    /// A delivery to, or a timeout of, this actor: its state, timers and storage (and, for a
    /// client, the history).
    Step(usize),
    /// A crash or restart of this server: its state, timers and crash bit; the number of
    /// crashed servers, which enables or disables every other crash.
    CrashBit(usize),
    /// Nothing but the network (a lost message).
    Network,
    /// Anything (the never offered random choices).
    All,
}

fn touch(action: &RaftAction) -> Touch {
    match action {
        ActorModelAction::Deliver { dst, .. } => Touch::Step(usize::from(*dst)),
        ActorModelAction::Timeout(id, _) => Touch::Step(usize::from(*id)),
        ActorModelAction::Crash(id) | ActorModelAction::Recover(id) => {
            Touch::CrashBit(usize::from(*id))
        }
        ActorModelAction::Drop(_) => Touch::Network,
        ActorModelAction::SelectRandom { .. } => Touch::All,
    }
}

/// Whether `a` and `b` commute in every state where both are enabled and both orders stay
/// within the bounds (the caller checks the bounds with [`Counters::fits`]).
pub fn independent(cfg: &ModelConfig, a: &RaftAction, b: &RaftAction) -> bool {
    use ActorModelAction::{Deliver, Drop};
    match (a, b) {
        // Two losses, or a loss and a delivery, of the same envelope take the same copy.
        (Drop(x), Drop(y)) => x != y,
        (Drop(x), Deliver { src, dst, msg }) | (Deliver { src, dst, msg }, Drop(x)) => {
            !(x.src == *src && x.dst == *dst && x.msg == *msg)
        }
        _ => match (touch(a), touch(b)) {
            (Touch::All, _) | (_, Touch::All) => false,
            (Touch::Network, _) | (_, Touch::Network) => true,
            // Two clients append to the one history.
            (Touch::Step(x), Touch::Step(y)) => x != y && (cfg.is_server(x) || cfg.is_server(y)),
            // A crash or restart and another actor's step: the step neither reads nor writes
            // the crashed server (a message to it stays in flight), and the crash does not
            // depend on the step.
            (Touch::Step(x), Touch::CrashBit(y)) | (Touch::CrashBit(y), Touch::Step(x)) => x != y,
            // The crash bound couples every crash and restart.
            (Touch::CrashBit(_), Touch::CrashBit(_)) => false,
        },
    }
}

/// The counters the bounds limit over the whole system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    in_flight: i64,
    transfers: i64,
    config_changes: i64,
    snapshots: i64,
}

/// A step's change of the [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Delta {
    in_flight: i8,
    transfers: i8,
    config_changes: i8,
    snapshots: i8,
}

impl Counters {
    pub fn of(state: &RaftState) -> Counters {
        let mut c = Counters {
            in_flight: state.network.len() as i64,
            ..Counters::default()
        };
        for s in state.servers() {
            c.transfers += i64::from(s.ghost.transfers);
            c.config_changes += i64::from(s.ghost.config_changes);
            c.snapshots += i64::from(s.ghost.snapshots);
        }
        c
    }

    /// The change from `self` to `after`, or None if it does not fit in a `Delta` (then the
    /// step is not put to sleep).
    pub fn delta(&self, after: &Counters) -> Option<Delta> {
        let d = |x: i64, y: i64| i8::try_from(y - x).ok();
        Some(Delta {
            in_flight: d(self.in_flight, after.in_flight)?,
            transfers: d(self.transfers, after.transfers)?,
            config_changes: d(self.config_changes, after.config_changes)?,
            snapshots: d(self.snapshots, after.snapshots)?,
        })
    }

    /// Whether a step changing the counters by `delta` from here stays within `cfg`'s bounds.
    pub fn fits(&self, cfg: &ModelConfig, delta: Delta) -> bool {
        let within = |now: i64, d: i8, max: usize| now + i64::from(d) <= max as i64;
        within(self.in_flight, delta.in_flight, cfg.max_in_flight)
            && within(self.transfers, delta.transfers, cfg.max_transfers)
            && within(
                self.config_changes,
                delta.config_changes,
                cfg.max_config_changes,
            )
            && within(self.snapshots, delta.snapshots, cfg.max_snapshots)
    }
}
