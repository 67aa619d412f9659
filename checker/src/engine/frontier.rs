//! One level of a breadth-first search (`bfs.rs`), held compactly: each state as a row of
//! small integers naming its parts, each distinct part held once.
//!
//! A step changes one actor, the network and perhaps the history; every other part of a
//! successor is its parent's. stateright's BFS keeps every pending state whole (a vector of
//! actors, a network, a history: 1.5–2 KB a state on the large bound). Here a state is
//! `actors + 3` 32-bit words (each actor's slot, the crash bits, the network, the history) and
//! its 64-bit key; the parts are interned per level, so parts shared by many states of the
//! level (most actor slots, many networks) are held once. A state is rebuilt by cloning its
//! parts (reference counts, and one copy of the network).

use raft_model::model::{History, Network, RaftState, Slot};
use std::collections::HashMap;
use std::hash::Hash;

/// Distinct values, each with a 32-bit id (ids in order of first appearance).
struct Interner<T> {
    values: Vec<T>,
    /// Per id: the id of the previous value with the same hash (`NONE`: none).
    same_hash: Vec<u32>,
    /// Hash → the latest id with that hash.
    index: HashMap<u64, u32>,
    hasher: ahash::RandomState,
}

const NONE: u32 = u32::MAX;

impl<T: Hash + PartialEq + Clone> Interner<T> {
    fn new() -> Self {
        Interner {
            values: Vec::new(),
            same_hash: Vec::new(),
            index: HashMap::new(),
            hasher: ahash::RandomState::with_seeds(1, 2, 3, 4),
        }
    }

    /// The id of `value`, interning it if it is new.
    fn id(&mut self, value: &T) -> u32 {
        let h = self.hasher.hash_one(value);
        let head = self.index.get(&h).copied().unwrap_or(NONE);
        let mut at = head;
        while at != NONE {
            if self.values[at as usize] == *value {
                return at;
            }
            at = self.same_hash[at as usize];
        }
        let id = u32::try_from(self.values.len())
            .ok()
            .filter(|&id| id != NONE)
            .expect("fewer than 2^32 - 1 distinct parts in one BFS level");
        self.values.push(value.clone());
        self.same_hash.push(head);
        self.index.insert(h, id);
        id
    }

    fn get(&self, id: u32) -> &T {
        &self.values[id as usize]
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.values.len()
    }
}

/// The states of one BFS level, in the order they were pushed, each with its key.
pub struct Frontier {
    slots: Interner<Slot>,
    networks: Interner<Network>,
    histories: Interner<History>,
    /// Words per state: its actors' slot ids, then the crash bits, the network, the history.
    width: usize,
    rows: Vec<u32>,
    keys: Vec<u64>,
}

impl Frontier {
    /// An empty level of states with `actors` actors each.
    pub fn new(actors: usize) -> Frontier {
        Frontier {
            slots: Interner::new(),
            networks: Interner::new(),
            histories: Interner::new(),
            width: actors + 3,
            rows: Vec::new(),
            keys: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Add `state`, whose key is `key`.
    pub fn push(&mut self, state: &RaftState, key: u64) {
        assert_eq!(
            state.actors.len() + 3,
            self.width,
            "every state of a bound has the same actors"
        );
        for slot in &state.actors {
            let id = self.slots.id(slot);
            self.rows.push(id);
        }
        self.rows.push(state.crashed);
        let network = self.networks.id(&state.network);
        self.rows.push(network);
        let history = self.histories.id(&state.history);
        self.rows.push(history);
        self.keys.push(key);
    }

    /// State `i` and its key.
    pub fn get(&self, i: usize) -> (RaftState, u64) {
        let row = &self.rows[i * self.width..(i + 1) * self.width];
        let actors = self.width - 3;
        let state = RaftState {
            actors: row[..actors]
                .iter()
                .map(|&id| self.slots.get(id).clone())
                .collect(),
            crashed: row[actors],
            network: self.networks.get(row[actors + 1]).clone(),
            history: self.histories.get(row[actors + 2]).clone(),
        };
        (state, self.keys[i])
    }

    /// Distinct actor slots, networks and histories held.
    #[cfg(test)]
    pub fn parts(&self) -> (usize, usize, usize) {
        (self.slots.len(), self.networks.len(), self.histories.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_model::model::ModelConfig;
    use stateright::Model;

    /// Every state pushed comes back equal, with its key, in order; parts repeated across
    /// states are held once.
    #[test]
    fn states_come_back_whole_and_shared_parts_are_held_once() {
        let model = ModelConfig {
            servers: 3,
            max_term: 2,
            ..ModelConfig::default()
        }
        .into_model();
        let mut states = model.init_states();
        // Two levels of successors.
        for _ in 0..2 {
            let next: Vec<RaftState> = states.iter().flat_map(|s| model.next_states(s)).collect();
            states.extend(next);
        }
        let actors = states[0].actors.len();
        let mut frontier = Frontier::new(actors);
        for (i, s) in states.iter().enumerate() {
            frontier.push(s, i as u64 * 7);
        }
        assert_eq!(frontier.len(), states.len());
        for (i, s) in states.iter().enumerate() {
            let (back, key) = frontier.get(i);
            assert!(back == *s, "state {i} comes back equal");
            assert_eq!(key, i as u64 * 7);
        }
        let (slots, networks, histories) = frontier.parts();
        assert!(slots < states.len() * actors, "{slots} slots");
        assert!(networks < states.len(), "{networks} networks");
        assert!(histories < states.len(), "{histories} histories");
        assert!(slots >= actors && networks >= 1 && histories >= 1);
    }
}
