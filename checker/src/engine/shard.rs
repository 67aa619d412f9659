//! Checking one bound on many machines: `check --shard I/N` (`merge`, in `cmd/merge.rs`,
//! combines the parts' reports).
//!
//! Every part first explores the same short prefix of the bound: a breadth-first search from
//! the initial states, deduplicated by fingerprint (with `--symmetry`, by the fingerprint of the
//! renaming class's representative, as the checker does), down to the depth where the level
//! holds at least [`MIN_FRONTIER_PER_PART`] × N states (or `--shard-depth D`). Every part
//! evaluates every property on the states above that level (the prefix proper), so all parts
//! agree on them. The states of the last level (the frontier) are split by fingerprint: part I
//! keeps those with `fingerprint % N == I` and explores them exhaustively, as the checker's
//! initial states ([`ShardModel`]). Every reachable state is either in the prefix or reachable
//! from a frontier state (its shortest path crosses the frontier level), so the parts together
//! cover the single run's states; a state reachable from the frontier states of several parts
//! is explored by each of them (the duplication overhead).
//!
//! A discovery in a part starts at a frontier state; it is reported as the prefix path to that
//! state followed by the part's path, so every counterexample starts at an initial state.
//! `merge` combines the parts' reports: an Always property holds only if it holds in every
//! part, a Sometimes property is witnessed if any part witnesses it, and the verdict is
//! "verified" only when all N parts are there and complete.

use crate::engine::fingerprint::{fingerprint, key};
use crate::engine::level_order::{replay, LevelOrder, Links};
use crate::engine::run::Explored;
use crate::report::text_trace::Action;
use raft_model::model::discovers;
use raft_model::model::{RaftModel, RaftState};
use stateright::{Expectation, Model, Path, Property};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Without `--shard-depth`, the prefix goes down until its last level holds at least this many
/// states per part, so that each part gets a fair share.
pub const MIN_FRONTIER_PER_PART: usize = 64;

/// The breadth-first prefix every part explores.
pub struct Prefix {
    symmetry: bool,
    /// The frontier's depth (steps from an initial state).
    pub depth: usize,
    /// Every prefix state's key → its parent's key and the index of the action from it (none
    /// for initial states).
    seen: Links,
    /// The keys of the states above the frontier, where the prefix evaluated the properties.
    pub interior: Vec<u64>,
    /// The frontier: the states first reached at `depth`, with their keys.
    pub frontier: Vec<(RaftState, u64)>,
    /// The first prefix state (in BFS order) that violates an Always property or witnesses a
    /// Sometimes one, per property.
    pub found: Vec<(&'static str, u64)>,
    /// The plain fingerprints (not the representatives') of the states above the frontier.
    interior_states: HashSet<u64>,
}

impl Prefix {
    /// Explore `model` breadth-first down to `depth`, or (without it) until a level holds at
    /// least `min_frontier` states. A violation in the prefix stops it with an empty frontier,
    /// as a single run stops at its first violation.
    pub fn explore(
        model: &RaftModel,
        symmetry: bool,
        depth: Option<usize>,
        min_frontier: usize,
    ) -> Prefix {
        let properties = model.properties();
        let mut search = LevelOrder::new(model, symmetry);
        let mut interior = Vec::new();
        let mut interior_states = HashSet::new();
        let mut found: Vec<(&'static str, u64)> = Vec::new();
        loop {
            let deep_enough = match depth {
                Some(target) => search.depth >= target,
                None => search.level.len() >= min_frontier,
            };
            if deep_enough || search.level.is_empty() {
                break;
            }
            let mut violated = false;
            for (s, k) in &search.level {
                interior.push(*k);
                interior_states.insert(fingerprint(s));
                for p in &properties {
                    if found.iter().any(|(n, _)| *n == p.name) {
                        continue;
                    }
                    if discovers(p, model, s) {
                        found.push((p.name, *k));
                        violated |= p.expectation == Expectation::Always;
                    }
                }
            }
            if violated {
                search.level.clear();
                break;
            }
            search.expand();
        }
        Prefix {
            symmetry,
            depth: search.depth,
            seen: search.seen,
            interior,
            frontier: search.level,
            found,
            interior_states,
        }
    }

    /// The path from an initial state to the prefix state with key `target`, then `tail` (the
    /// actions a part took from there).
    pub fn full_path(
        &self,
        model: &RaftModel,
        target: u64,
        tail: &[Action],
    ) -> Path<RaftState, Action> {
        let symmetry = self.symmetry;
        let (root, mut taken) = replay(model, &self.seen, target, symmetry);
        taken.extend(tail.iter().cloned());
        Path::from_actions(model, root, taken.iter()).expect("a part's path replays")
    }
}

/// One part of a bound: the bound's model with its share of the prefix's frontier as the
/// initial states. Records the fingerprint of every state it generates when asked
/// (`--dump-fingerprints`).
pub struct ShardModel {
    raft: RaftModel,
    starts: Vec<RaftState>,
    prefix: Option<Arc<Prefix>>,
    symmetry: bool,
    recorder: Option<Arc<Mutex<HashSet<u64>>>>,
    /// The plain fingerprints of the prefix's states other than this part's own frontier
    /// states: the part does not enter them (see `within_boundary`).
    prune: HashSet<u64>,
}

impl ShardModel {
    /// Part `index` of `count` of the bound `raft`, after `prefix`.
    pub fn part(
        raft: RaftModel,
        prefix: Arc<Prefix>,
        index: usize,
        count: usize,
        recorder: Option<Arc<Mutex<HashSet<u64>>>>,
    ) -> ShardModel {
        let starts = prefix
            .frontier
            .iter()
            .filter(|(_, k)| (*k % count as u64) as usize == index)
            .map(|(s, _)| s.clone())
            .collect::<Vec<_>>();
        let own: HashSet<u64> = starts.iter().map(fingerprint).collect();
        let prune = prefix
            .interior_states
            .iter()
            .copied()
            .chain(prefix.frontier.iter().map(|(s, _)| fingerprint(s)))
            .filter(|f| !own.contains(f))
            .collect();
        let mut m = ShardModel::new(raft, starts, Some(prefix), recorder);
        m.prune = prune;
        m
    }

    /// The whole bound, state for state as `RaftModel` (to record its fingerprints).
    pub fn whole(raft: RaftModel, symmetry: bool, recorder: Arc<Mutex<HashSet<u64>>>) -> Self {
        let starts = raft.init_states();
        let mut m = ShardModel::new(raft, starts, None, Some(recorder));
        m.symmetry = symmetry;
        m
    }

    fn new(
        raft: RaftModel,
        starts: Vec<RaftState>,
        prefix: Option<Arc<Prefix>>,
        recorder: Option<Arc<Mutex<HashSet<u64>>>>,
    ) -> Self {
        let properties = raft.properties();
        assert!(
            properties.len() <= CONDITIONS.len(),
            "more properties than shard.rs's CONDITIONS table holds"
        );
        assert!(
            properties
                .iter()
                .all(|p| p.expectation != Expectation::Eventually),
            "a sharded check cannot carry an Eventually property across the prefix"
        );
        let symmetry = prefix.as_ref().is_some_and(|p| p.symmetry);
        ShardModel {
            raft,
            starts,
            prefix,
            symmetry,
            recorder,
            prune: HashSet::new(),
        }
    }

    /// How many frontier states this part explores.
    pub fn start_count(&self) -> usize {
        self.starts.len()
    }
}

/// Property conditions of a `ShardModel`: stateright's are plain `fn` pointers, so each one
/// delegates to the bound's property of the same index.
fn condition<const I: usize>(m: &ShardModel, s: &RaftState) -> bool {
    (m.raft.properties[I].condition)(&m.raft, s)
}

macro_rules! conditions {
    ($($i:literal)*) => { [$(condition::<$i> as fn(&ShardModel, &RaftState) -> bool),*] };
}

const CONDITIONS: [fn(&ShardModel, &RaftState) -> bool; 64] = conditions!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
    32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61
    62 63
);

impl Model for ShardModel {
    type State = RaftState;
    type Action = Action;

    fn init_states(&self) -> Vec<RaftState> {
        self.starts.clone()
    }

    fn actions(&self, state: &RaftState, actions: &mut Vec<Action>) {
        self.raft.actions(state, actions)
    }

    fn next_state(&self, state: &RaftState, action: Action) -> Option<RaftState> {
        self.raft.next_state(state, action)
    }

    fn format_action(&self, action: &Action) -> String {
        self.raft.format_action(action)
    }

    fn format_step(&self, last_state: &RaftState, action: Action) -> Option<String> {
        self.raft.format_step(last_state, action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        self.raft
            .properties
            .iter()
            .enumerate()
            .map(|(i, p)| Property {
                expectation: p.expectation.clone(),
                name: p.name,
                condition: CONDITIONS[i],
            })
            .collect()
    }

    /// The bound's boundary, and outside it for a part: the prefix's states other than the
    /// part's own frontier states. Whatever is reachable from such a state is covered without
    /// this part: a state at distance < depth from an initial state is in the prefix, where
    /// every part evaluated it, and any other one is reachable from a frontier state (its
    /// shortest path crosses the frontier level), which its own part explores.
    fn within_boundary(&self, state: &RaftState) -> bool {
        let inside = self.raft.within_boundary(state)
            && (self.prune.is_empty() || !self.prune.contains(&fingerprint(state)));
        if inside {
            if let Some(r) = &self.recorder {
                r.lock()
                    .expect("recorder")
                    .insert(key(state, self.symmetry));
            }
        }
        inside
    }
}

impl Explored for ShardModel {
    fn raft(&self) -> &RaftModel {
        &self.raft
    }

    /// A part prunes the prefix's states (`within_boundary`): a boundary the independence
    /// relation knows nothing of, so no sleep sets.
    fn sleep_sets_apply(&self) -> bool {
        false
    }

    fn full_path(&self, path: Path<RaftState, Action>) -> Path<RaftState, Action> {
        let Some(prefix) = &self.prefix else {
            return path;
        };
        let steps = path.into_vec();
        let start = key(&steps[0].0, prefix.symmetry);
        let tail: Vec<Action> = steps.into_iter().filter_map(|(_, a)| a).collect();
        prefix.full_path(&self.raft, start, &tail)
    }

    fn prior(&self, property: &str) -> Option<Path<RaftState, Action>> {
        let prefix = self.prefix.as_ref()?;
        let (_, k) = prefix.found.iter().find(|(n, _)| *n == property)?;
        Some(prefix.full_path(&self.raft, *k, &[]))
    }
}
