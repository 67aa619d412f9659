//! The level-order (breadth-first) search over the model that shortest counterexamples
//! (`shortest`) walks: one level of states at a time,
//! deduplicated on their key (`fingerprint::key`: with symmetry, the renaming class's), each
//! state recorded with its parent's key and the index of the action from it, so that the path
//! to any state it reached replays from an initial state. The caller looks at each level
//! before asking for the next. (The compact engine's BFS, `bfs`, goes level by level too, on
//! many threads with compact levels; it reads paths back from its visited table instead.)

use crate::engine::fingerprint::key;
use raft_model::model::{RaftAction, RaftModel, RaftState};
use stateright::Model;
use std::collections::hash_map::Entry;
use std::collections::HashMap;

/// Each state's key → its parent's key and the index of the action from it (none for an
/// initial state).
pub type Links = HashMap<u64, Option<(u64, u32)>>;

pub struct LevelOrder<'m> {
    model: &'m RaftModel,
    symmetry: bool,
    /// Every state reached so far (the current level's too).
    pub seen: Links,
    /// The current level: the states first reached at `depth`, with their keys, in the order
    /// they were reached.
    pub level: Vec<(RaftState, u64)>,
    /// Steps from an initial state to the current level.
    pub depth: usize,
    actions: Vec<RaftAction>,
}

impl<'m> LevelOrder<'m> {
    /// The search at depth 0: the initial states within the bound.
    pub fn new(model: &'m RaftModel, symmetry: bool) -> Self {
        let mut seen = Links::new();
        let mut level = Vec::new();
        for s in model.init_states() {
            let k = key(&s, symmetry);
            if model.within_boundary(&s) && seen.insert(k, None).is_none() {
                level.push((s, k));
            }
        }
        LevelOrder {
            model,
            symmetry,
            seen,
            level,
            depth: 0,
            actions: Vec::new(),
        }
    }

    /// Replace the level by the next one: the successors within the bound not reached before.
    pub fn expand(&mut self) {
        let mut next = Vec::new();
        for (s, k) in &self.level {
            self.actions.clear();
            self.model.actions(s, &mut self.actions);
            for (i, a) in self.actions.drain(..).enumerate() {
                let Some(n) = self.model.next_state(s, a) else {
                    continue;
                };
                if !self.model.within_boundary(&n) {
                    continue;
                }
                let nk = key(&n, self.symmetry);
                if let Entry::Vacant(e) = self.seen.entry(nk) {
                    e.insert(Some((*k, i as u32)));
                    next.push((n, nk));
                }
            }
        }
        self.level = next;
        self.depth += 1;
    }
}

/// The initial state and the actions that lead from it to the state whose key is `target`,
/// replayed from a level-order search's `links` with its `symmetry`.
pub fn replay(
    model: &RaftModel,
    links: &Links,
    target: u64,
    symmetry: bool,
) -> (RaftState, Vec<RaftAction>) {
    let mut indices = Vec::new();
    let mut at = target;
    while let Some(Some((parent, i))) = links.get(&at) {
        indices.push(*i as usize);
        at = *parent;
    }
    indices.reverse();
    let root = model
        .init_states()
        .into_iter()
        .find(|s| key(s, symmetry) == at)
        .expect("the path starts at an initial state");
    let mut state = root.clone();
    let mut taken = Vec::new();
    let mut actions = Vec::new();
    for i in indices {
        actions.clear();
        model.actions(&state, &mut actions);
        let a = actions[i].clone();
        state = model
            .next_state(&state, a.clone())
            .expect("a recorded step replays");
        taken.push(a);
    }
    (root, taken)
}
