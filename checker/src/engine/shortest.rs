//! Shortest counterexamples by a level-order search.
//!
//! stateright 0.31's BFS keeps overwriting a discovery while its workers run, so the path it
//! reports is not always a shortest one, and DFS paths are long. This search explores the model
//! one depth level at a time and stops at the end of the first level that contains a violating
//! state, so the path it returns has the minimum number of steps: every state at a smaller depth
//! was checked first. It keeps one fingerprint, parent and action index per state (not the
//! states), and rebuilds the path by replaying the actions from the initial state.

use raft_model::model::symmetry::representative;
use raft_model::model::{RaftAction, RaftModel, RaftState};
use stateright::{Expectation, Model, Path};
use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::Instant;

fn fingerprint(s: &RaftState) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// The key a state is deduplicated on: its own fingerprint, or with symmetry reduction its
/// renaming class's. Renamed states are at the same depth, so levels (and shortest lengths)
/// are unchanged; the search still expands the states it reached, so paths replay.
fn key(s: &RaftState, symmetry: bool) -> u64 {
    if symmetry {
        fingerprint(&representative(s))
    } else {
        fingerprint(s)
    }
}

/// How a level-order search ended.
pub enum Search {
    /// The first violating state found at the smallest depth: its property and path.
    Violated {
        property: &'static str,
        path: Path<RaftState, RaftAction>,
        unique_states: usize,
    },
    /// The whole bounded space was explored and no Always property fails.
    Exhausted { unique_states: usize },
    /// The deadline passed first.
    OutOfTime { unique_states: usize },
}

/// Search for the shortest path to a state violating one of `wanted` (Always properties; all of
/// them when empty), deduplicating renamed states when `symmetry` is on.
pub fn search(
    model: &RaftModel,
    wanted: &[&str],
    deadline: Option<Instant>,
    symmetry: bool,
) -> Search {
    let properties: Vec<_> = model
        .properties()
        .into_iter()
        .filter(|p| p.expectation == Expectation::Always)
        .filter(|p| wanted.is_empty() || wanted.contains(&p.name))
        .collect();
    // fingerprint -> (parent fingerprint, action index); the roots have no parent.
    let mut seen: HashMap<u64, Option<(u64, u32)>> = HashMap::new();
    let mut level: Vec<(RaftState, u64)> = Vec::new();
    for s in model.init_states() {
        let fp = key(&s, symmetry);
        if model.within_boundary(&s) && seen.insert(fp, None).is_none() {
            level.push((s, fp));
        }
    }
    let mut actions = Vec::new();
    while !level.is_empty() {
        // Check the whole level before going deeper.
        for (s, fp) in &level {
            if let Some(p) = properties.iter().find(|p| !(p.condition)(model, s)) {
                let path = rebuild(model, &seen, *fp, symmetry);
                return Search::Violated {
                    property: p.name,
                    path,
                    unique_states: seen.len(),
                };
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Search::OutOfTime {
                unique_states: seen.len(),
            };
        }
        let mut next = Vec::new();
        for (s, fp) in level {
            actions.clear();
            model.actions(&s, &mut actions);
            for (i, a) in actions.drain(..).enumerate() {
                let Some(n) = model.next_state(&s, a) else {
                    continue;
                };
                if !model.within_boundary(&n) {
                    continue;
                }
                let nfp = key(&n, symmetry);
                if let Entry::Vacant(e) = seen.entry(nfp) {
                    e.insert(Some((fp, i as u32)));
                    next.push((n, nfp));
                }
            }
        }
        level = next;
    }
    Search::Exhausted {
        unique_states: seen.len(),
    }
}

fn rebuild(
    model: &RaftModel,
    seen: &HashMap<u64, Option<(u64, u32)>>,
    target: u64,
    symmetry: bool,
) -> Path<RaftState, RaftAction> {
    let (root, taken) = replay_links(model, seen, target, |s| key(s, symmetry));
    Path::from_actions(model, root, taken.iter()).expect("a recorded path replays")
}

/// The initial state and the actions that lead from it to the state whose key is `target`,
/// replayed from a level-order search's links (`seen`: each state's key → its parent's key and
/// the index of the action from the parent; none for an initial state) with the search's `key`.
pub(crate) fn replay_links(
    model: &RaftModel,
    seen: &HashMap<u64, Option<(u64, u32)>>,
    target: u64,
    key: impl Fn(&RaftState) -> u64,
) -> (RaftState, Vec<RaftAction>) {
    let mut indices = Vec::new();
    let mut at = target;
    while let Some(Some((parent, i))) = seen.get(&at) {
        indices.push(*i as usize);
        at = *parent;
    }
    indices.reverse();
    let root = model
        .init_states()
        .into_iter()
        .find(|s| key(s) == at)
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
