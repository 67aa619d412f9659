//! The checker's own breadth-first engine (`--engine compact --strategy bfs`): one thread, a
//! compact visited set and a compact frontier; symmetry reduction too (stateright 0.31's BFS
//! ignores it).
//!
//! stateright's BFS keeps every pending state whole, and a map from each visited state's
//! fingerprint to its parent's. Here the search goes level by level: the level being expanded
//! and the next one are `Frontier`s (`frontier.rs`: rows of part ids, parts held once), and the
//! visited set is one table of fingerprints (`visited.rs`) whose word per state is its parent's
//! fingerprint (0 for an initial state). A discovery's path is read back from the table: the
//! chain of parent fingerprints, replayed from the initial state by taking, at each state, the
//! first step whose successor has the next fingerprint. That is the step the search took
//! (the search also takes the first such step of the first such state), so the path replays
//! the very states the search visited, symmetric or not. Level order makes every discovery's
//! path a shortest one, as with stateright's BFS.

use crate::engine::{Progress, Properties, Spawned};
use crate::fingerprint::key;
use crate::frontier::Frontier;
use crate::visited::Visited;
use raft_model::model::{RaftAction, RaftState};
use stateright::Model;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How to run the engine.
#[derive(Clone, Debug)]
pub struct Options {
    pub symmetry: bool,
    pub timeout: Option<Duration>,
    /// Stop after generating this many states.
    pub max_states: Option<usize>,
}

/// Start checking `model` on a thread of its own.
pub fn spawn<M>(model: M, options: Options) -> Spawned<M>
where
    M: Model<State = RaftState, Action = RaftAction> + Send + Sync + 'static,
{
    Spawned::spawn("checker-bfs", model, move |model, progress| {
        Search::new(model, &options, progress).run()
    })
}

/// The search stopped early: a violation, the timeout or the state cap.
struct Stopped;

struct Search<'a, M: Model> {
    model: &'a M,
    options: &'a Options,
    progress: &'a Progress,
    properties: Properties<M>,
    /// Every state's key, with its parent's (stored form; 0 for an initial state).
    visited: Visited,
    deadline: Option<Instant>,
    state_count: usize,
    /// The level being expanded (the initial states' is 1; at the end, the deepest).
    depth: usize,
    widest: usize,
}

impl<'a, M> Search<'a, M>
where
    M: Model<State = RaftState, Action = RaftAction>,
{
    fn new(model: &'a M, options: &'a Options, progress: &'a Progress) -> Self {
        Search {
            model,
            options,
            progress,
            properties: Properties::of(model),
            visited: Visited::new(true),
            deadline: options.timeout.map(|t| Instant::now() + t),
            state_count: 0,
            depth: 0,
            widest: 0,
        }
    }

    fn key(&self, state: &RaftState) -> u64 {
        Visited::stored(key(state, self.options.symmetry))
    }

    fn run(&mut self) {
        let _ = self.levels();
        self.publish();
    }

    fn levels(&mut self) -> Result<(), Stopped> {
        let inits: Vec<RaftState> = self
            .model
            .init_states()
            .into_iter()
            .filter(|s| self.model.within_boundary(s))
            .collect();
        let Some(first) = inits.first() else {
            return Ok(());
        };
        let actors = first.actors.len();
        let mut level = Frontier::new(actors);
        self.state_count = inits.len();
        for init in &inits {
            let k = self.key(init);
            if self.visited.insert(k, 0).is_ok() {
                self.check(init, k)?;
                level.push(init, k);
            }
        }
        let mut actions = Vec::new();
        while !level.is_empty() {
            self.depth += 1;
            self.widest = self.widest.max(level.len());
            let mut next = Frontier::new(actors);
            for i in 0..level.len() {
                let (state, parent) = level.get(i);
                actions.clear();
                self.model.actions(&state, &mut actions);
                for action in actions.drain(..) {
                    let Some(succ) = self.model.next_state(&state, action) else {
                        continue;
                    };
                    if !self.model.within_boundary(&succ) {
                        continue;
                    }
                    self.state_count += 1;
                    let k = self.key(&succ);
                    if self.visited.insert(k, parent).is_ok() {
                        self.check(&succ, k)?;
                        next.push(&succ, k);
                    }
                    self.tick()?;
                }
            }
            level = next;
        }
        Ok(())
    }

    /// Publish the counts now and then; stop at the deadline or the state cap.
    fn tick(&mut self) -> Result<(), Stopped> {
        if self.state_count.is_multiple_of(4096) {
            self.publish();
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Stopped);
            }
        }
        if self
            .options
            .max_states
            .is_some_and(|m| self.state_count >= m)
        {
            return Err(Stopped);
        }
        Ok(())
    }

    fn publish(&self) {
        let p = self.progress;
        p.state_count.store(self.state_count, Ordering::Relaxed);
        p.unique.store(self.visited.len(), Ordering::Relaxed);
        p.max_depth.store(self.depth, Ordering::Relaxed);
        p.frontier_states.store(self.widest, Ordering::Relaxed);
    }

    /// Evaluate the properties without a discovery on a new state (key `k`); record each
    /// discovery's path. Stops the search on a violated Always property.
    fn check(&mut self, state: &RaftState, k: u64) -> Result<(), Stopped> {
        let mut names = Vec::new();
        if self
            .properties
            .check(self.model, state, |name| names.push(name))
        {
            self.record(&names, k);
            return Err(Stopped);
        }
        self.record(&names, k);
        Ok(())
    }

    fn record(&self, names: &[&'static str], k: u64) {
        if names.is_empty() {
            return;
        }
        let (init, steps) = self.path_to(k);
        for name in names {
            self.progress.discovered(name, init.clone(), steps.clone());
        }
    }

    /// The path to the state with key `k`: its parents' chain from the table, replayed.
    fn path_to(&self, k: u64) -> (RaftState, Vec<RaftAction>) {
        let mut chain = vec![k];
        loop {
            let at = *chain.last().expect("the chain starts with k");
            let parent = self
                .visited
                .word_of(at)
                .expect("every key on a parent chain was visited");
            if parent == 0 {
                break;
            }
            chain.push(parent);
        }
        chain.reverse();
        let init = self
            .model
            .init_states()
            .into_iter()
            .find(|s| self.model.within_boundary(s) && self.key(s) == chain[0])
            .expect("the chain starts at an initial state");
        let mut state = init.clone();
        let mut steps = Vec::new();
        let mut actions = Vec::new();
        for &want in &chain[1..] {
            actions.clear();
            self.model.actions(&state, &mut actions);
            let (action, succ) = actions
                .drain(..)
                .find_map(|a| {
                    let succ = self.model.next_state(&state, a.clone())?;
                    (self.model.within_boundary(&succ) && self.key(&succ) == want)
                        .then_some((a, succ))
                })
                .expect("some step of the parent reaches the next state on the chain");
            steps.push(action);
            state = succ;
        }
        (init, steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dfs::tests::{bound, reachable};
    use raft_model::model::symmetry::representative;
    use raft_model::model::{ModelConfig, RaftModel};
    use raft_model::mutant::Mutant;
    use stateright::{Checker, Expectation};
    use std::collections::HashSet;

    fn options(symmetry: bool) -> Options {
        Options {
            symmetry,
            timeout: None,
            max_states: None,
        }
    }

    /// The engine's visited keys (raw form) and its discoveries' names.
    fn engine(model: &RaftModel, symmetry: bool) -> (HashSet<u64>, Vec<&'static str>) {
        let progress = Progress::default();
        let opts = options(symmetry);
        let mut search = Search::new(model, &opts, &progress);
        search.run();
        let keys = search.visited.keys().collect();
        (keys, progress.discovered_names().into_iter().collect())
    }

    /// On small bounds, with and without symmetry, the engine visits exactly the states a plain
    /// search reaches, and discovers what stateright's BFS discovers (without symmetry: its
    /// BFS ignores symmetry; with it, what stateright's DFS with symmetry discovers).
    #[test]
    fn visits_every_state_and_discovers_what_stateright_does() {
        let cases = [
            bound(2, 1, 1, true),
            bound(2, 2, 0, true),
            bound(2, 2, 1, false),
            bound(3, 1, 0, false),
            ModelConfig {
                values: 2,
                ..bound(2, 1, 0, false)
            },
        ];
        for cfg in cases {
            let model = cfg.clone().into_model();
            for symmetry in [false, true] {
                let expected: HashSet<u64> = reachable(&model, symmetry)
                    .into_iter()
                    .map(Visited::stored)
                    .collect();
                let (keys, found) = engine(&model, symmetry);
                assert!(
                    keys == expected,
                    "{cfg:?} symmetry {symmetry}: the same states"
                );
                let builder = model.clone().checker().threads(1);
                let sr_found = if symmetry {
                    let sr = builder.symmetry_fn(representative).spawn_dfs().join();
                    sr.discoveries()
                } else {
                    builder.spawn_bfs().join().discoveries()
                };
                let mut sr_found: Vec<_> = sr_found.keys().copied().collect();
                sr_found.sort_unstable();
                assert_eq!(found, sr_found, "{cfg:?} symmetry {symmetry}");
            }
        }
    }

    /// The fewest steps to a state where `p` is discovered, by a plain level-order search
    /// that shares nothing with the engine but the model.
    fn fewest_steps(model: &RaftModel, p: &stateright::Property<RaftModel>) -> Option<usize> {
        let discovered = |s: &RaftState| match p.expectation {
            Expectation::Always => !(p.condition)(model, s),
            _ => (p.condition)(model, s),
        };
        let mut seen = HashSet::new();
        let mut level: Vec<RaftState> = model
            .init_states()
            .into_iter()
            .filter(|s| model.within_boundary(s) && seen.insert(key(s, false)))
            .collect();
        let mut steps = 0;
        while !level.is_empty() {
            if level.iter().any(discovered) {
                return Some(steps);
            }
            let mut next = Vec::new();
            for s in &level {
                for (_, n) in model.next_steps(s) {
                    if model.within_boundary(&n) && seen.insert(key(&n, false)) {
                        next.push(n);
                    }
                }
            }
            level = next;
            steps += 1;
        }
        None
    }

    /// A mutant's violations are found, each path replays, ends where its property fails, and
    /// is a shortest one (level order), with and without symmetry. (stateright's BFS keeps the
    /// last discovery of each property, not the first: no reference for lengths.)
    #[test]
    fn finds_a_mutants_violations_by_shortest_paths() {
        let cfg = ModelConfig {
            mutant: Some(Mutant::VoteWithoutLogCheck),
            ..bound(3, 2, 0, false)
        };
        let model = cfg.into_model();
        for symmetry in [false, true] {
            let found = spawn(model.clone(), options(symmetry)).join().discoveries();
            let violated: Vec<_> = model
                .properties()
                .into_iter()
                .filter(|p| p.expectation == Expectation::Always && found.contains_key(p.name))
                .collect();
            assert!(!violated.is_empty(), "the mutant is caught");
            for p in violated {
                let path = &found[p.name];
                assert!(
                    !(p.condition)(&model, path.last_state()),
                    "{}: the path ends where it fails",
                    p.name
                );
                assert_eq!(
                    Some(path.clone().into_actions().len()),
                    fewest_steps(&model, &p),
                    "{} symmetry {symmetry}: a shortest path",
                    p.name
                );
            }
        }
    }

    /// A discovery deep in the search replays from the table: every witness's path ends in a
    /// state where the witness holds.
    #[test]
    fn witnesses_paths_replay_to_where_they_hold() {
        let model = bound(3, 2, 0, false).into_model();
        for symmetry in [false, true] {
            let checker = spawn(model.clone(), options(symmetry)).join();
            let found = checker.discoveries();
            let mut witnesses = 0;
            for p in model.properties() {
                if p.expectation != Expectation::Sometimes {
                    continue;
                }
                if let Some(path) = found.get(p.name) {
                    witnesses += 1;
                    assert!((p.condition)(&model, path.last_state()), "{}", p.name);
                }
            }
            assert!(witnesses > 0, "some witness is found");
        }
    }
}
