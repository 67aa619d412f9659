//! One global state of the model, flat: per actor its state, its armed timers and (servers)
//! its storage, in one vector; crashes as a bit set; the messages in flight as one sorted
//! vector; the clients' history.
//!
//! A step changes one actor, so a successor shares every other actor's slot (`Shared`: a
//! reference count, and a hash computed once per slot, not once per successor). Cloning a
//! state is one allocation for the actors (one reference count each: the atomic increments and
//! decrements of cloning and dropping successors were a tenth of a search thread's time when
//! each slot held three) and one for the network; its fingerprint hashes eight bytes per actor,
//! the crash bits, and the few messages in flight.

use crate::model::adapter::network::Network;
use crate::model::adapter::node::{NodeState, ServerState, ServerStorage, Timer};
use crate::model::adapter::timers::TimerSet;
use crate::model::judge::history::History;
use crate::model::shared::Shared;
use std::sync::atomic::AtomicU64;

/// One actor's part of the global state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ActorSlot {
    pub state: Shared<NodeState>,
    pub timers: TimerSet,
    /// Servers: what they saved (`None` until the first save).
    pub storage: Option<ServerStorage>,
}

/// An actor's slot as states share it, with its hashes under renamings of the servers.
pub type Slot = Shared<ActorSlot, RenamedHashes>;

/// A slot's hash after each renaming of up to three servers (`symmetry.rs`), entry `k` for
/// the renaming of rank `k` (`symmetry::renaming_rank`); 0 until computed. Symmetry reduction
/// hashes every state's representative, whose slots are the state's slots renamed; most slots
/// are shared by many states, so each renaming of a slot is worked out and hashed once.
#[derive(Default)]
pub struct RenamedHashes(pub [AtomicU64; 6]);

/// One global state. Invariant: `actors` holds the servers first, then the clients
/// (`Actors`); bit `i` of `crashed` is set while actor `i` is crashed.
#[derive(Clone, Debug, PartialEq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RaftState {
    pub actors: Vec<Slot>,
    pub crashed: u32,
    pub network: Network,
    pub history: History,
}

impl RaftState {
    /// Number of actors (servers and clients).
    pub fn actor_count(&self) -> usize {
        self.actors.len()
    }

    /// Actor `i`'s state.
    pub fn actor(&self, i: usize) -> &NodeState {
        &self.actors[i].state
    }

    /// Every actor's state, servers first.
    pub fn actor_states(&self) -> impl Iterator<Item = &NodeState> + '_ {
        self.actors.iter().map(|a| &*a.state)
    }

    /// Server `i`'s state (`None` for a client).
    pub fn server(&self, i: usize) -> Option<&ServerState> {
        self.actors.get(i).and_then(|a| a.state.as_server())
    }

    /// Every server's state, in id order.
    pub fn servers(&self) -> impl Iterator<Item = &ServerState> + '_ {
        self.actors.iter().filter_map(|a| a.state.as_server())
    }

    pub fn is_crashed(&self, i: usize) -> bool {
        self.crashed >> i & 1 == 1
    }

    /// Number of crashed actors.
    pub fn crashes(&self) -> usize {
        self.crashed.count_ones() as usize
    }

    /// What server `i` saved, if anything.
    pub fn storage(&self, i: usize) -> Option<&ServerStorage> {
        self.actors.get(i).and_then(|a| a.storage.as_ref())
    }

    /// Actor `i`'s armed timers, in `Timer`'s order.
    pub fn timers(&self, i: usize) -> impl Iterator<Item = Timer> {
        self.actors[i].timers.iter()
    }

    /// Mutable access to actor `i`'s slot (copied if shared).
    pub fn slot_mut(&mut self, i: usize) -> &mut ActorSlot {
        Shared::make_mut(&mut self.actors[i])
    }

    /// Replace actor `i`'s state.
    pub fn set_actor(&mut self, i: usize, state: NodeState) {
        self.slot_mut(i).state = Shared::new(state);
    }

    /// Mutable access to actor `i`'s state (copied if shared).
    pub fn actor_mut(&mut self, i: usize) -> &mut NodeState {
        Shared::make_mut(&mut self.slot_mut(i).state)
    }

    pub fn set_crashed(&mut self, i: usize, crashed: bool) {
        if crashed {
            self.crashed |= 1 << i;
        } else {
            self.crashed &= !(1 << i);
        }
    }
}
