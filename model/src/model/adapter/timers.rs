//! The armed timers of one actor, as a bit set.
//!
//! Bit order follows `Timer`'s order (`Election < Send(_) < Request(_) < Persist <
//! Transfer(_) < Reconfigure(_) < Compact < Forge`, ids ascending), so iterating the bits yields the
//! timers sorted, as stateright sorts its timeout actions. The model has at most
//! [`MAX_SERVERS`] servers, so every timer has a bit.

use crate::model::adapter::node::Timer;
use raft_core::{ConfigChange, NodeId};

/// The most servers a timer can name (`ModelConfig::validate` refuses more).
pub const MAX_SERVERS: u64 = 9;

const SEND: u64 = 1;
const REQUEST: u64 = SEND + MAX_SERVERS;
const PERSIST: u64 = REQUEST + MAX_SERVERS;
const TRANSFER: u64 = PERSIST + 1;
const ADD_LEARNER: u64 = TRANSFER + MAX_SERVERS;
const PROMOTE: u64 = ADD_LEARNER + MAX_SERVERS;
const REMOVE: u64 = PROMOTE + MAX_SERVERS;
const COMPACT: u64 = REMOVE + MAX_SERVERS;
const FORGE: u64 = COMPACT + 1;
const _: () = assert!(FORGE < 64);

/// A set of timers. Invariant: only bits that [`bit`] returns are set.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct TimerSet(u64);

/// A timer's bit. Panics on a server id beyond [`MAX_SERVERS`] and on an address change: the
/// model never builds one.
fn bit(t: Timer) -> u64 {
    let id = |n: NodeId| {
        assert!(
            n.0 < MAX_SERVERS,
            "timer names server {n} beyond the model's bound"
        );
        n.0
    };
    match t {
        Timer::Election => 0,
        Timer::Send(n) => SEND + id(n),
        Timer::Request(n) => REQUEST + id(n),
        Timer::Persist => PERSIST,
        Timer::Transfer(n) => TRANSFER + id(n),
        Timer::Reconfigure(ConfigChange::AddLearner(n)) => ADD_LEARNER + id(n),
        Timer::Reconfigure(ConfigChange::Promote(n)) => PROMOTE + id(n),
        Timer::Reconfigure(ConfigChange::Remove(n)) => REMOVE + id(n),
        // Addresses are data no rule reads, and the model routes by id: it proposes every
        // change but this one (whose rules, one change at a time after a commit of the
        // leader's term, are the other changes').
        Timer::Reconfigure(ConfigChange::Readdress(n)) => {
            panic!("the model never proposes an address change (server {n})")
        }
        Timer::Compact => COMPACT,
        Timer::Forge => FORGE,
    }
}

/// The timer of bit `b` (one that [`bit`] returns).
fn timer(b: u64) -> Timer {
    let n = |base: u64| NodeId(b - base);
    match b {
        0 => Timer::Election,
        _ if b < REQUEST => Timer::Send(n(SEND)),
        _ if b < PERSIST => Timer::Request(n(REQUEST)),
        PERSIST => Timer::Persist,
        _ if b < ADD_LEARNER => Timer::Transfer(n(TRANSFER)),
        _ if b < PROMOTE => Timer::Reconfigure(ConfigChange::AddLearner(n(ADD_LEARNER))),
        _ if b < REMOVE => Timer::Reconfigure(ConfigChange::Promote(n(PROMOTE))),
        _ if b < COMPACT => Timer::Reconfigure(ConfigChange::Remove(n(REMOVE))),
        COMPACT => Timer::Compact,
        _ => Timer::Forge,
    }
}

impl TimerSet {
    pub fn set(&mut self, t: Timer) {
        self.0 |= 1 << bit(t);
    }

    pub fn cancel(&mut self, t: Timer) {
        self.0 &= !(1 << bit(t));
    }

    pub fn cancel_all(&mut self) {
        self.0 = 0;
    }

    pub fn contains(self, t: Timer) -> bool {
        self.0 >> bit(t) & 1 == 1
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The armed timers, in `Timer`'s order.
    pub fn iter(self) -> impl Iterator<Item = Timer> {
        (0..64u64).filter(move |b| self.0 >> b & 1 == 1).map(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_timer() -> Vec<Timer> {
        let ids = (0..MAX_SERVERS).map(NodeId);
        let mut all = vec![Timer::Election, Timer::Persist, Timer::Compact];
        for n in ids {
            all.extend([
                Timer::Send(n),
                Timer::Request(n),
                Timer::Transfer(n),
                Timer::Reconfigure(ConfigChange::AddLearner(n)),
                Timer::Reconfigure(ConfigChange::Promote(n)),
                Timer::Reconfigure(ConfigChange::Remove(n)),
            ]);
        }
        all
    }

    #[test]
    fn every_timer_has_its_own_bit_and_iterates_in_timer_order() {
        let mut all = every_timer();
        let mut set = TimerSet::default();
        for t in &all {
            assert!(!set.contains(*t), "{t:?} shares a bit");
            set.set(*t);
            assert!(set.contains(*t));
        }
        all.sort();
        assert_eq!(set.iter().collect::<Vec<_>>(), all);
        for t in &all {
            set.cancel(*t);
        }
        assert!(set.is_empty());
    }
}
