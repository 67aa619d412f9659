//! The checker's own breadth-first engine (`--engine compact --strategy bfs`): all `--threads`,
//! a compact visited set and a compact frontier; symmetry reduction too (stateright 0.31's BFS
//! ignores it).
//!
//! stateright's BFS keeps every pending state whole, with its path. Here the search goes level
//! by level, each level split into a few tasks per thread: the level being expanded and the
//! next one are `Frontier`s (`frontier.rs`: rows of part ids, parts held once per task), and
//! the visited set is one table of fingerprints (`visited.rs`, in shards behind locks) whose
//! word per state is its parent's fingerprint (0 for an initial state). A discovery's path is read back from the table: the
//! chain of parent fingerprints, replayed from the initial state by taking, at each state, the
//! first step whose successor has the next fingerprint. That is the step the search took
//! (the search also takes the first such step of the first such state), so the path replays
//! the very states the search visited, symmetric or not. Levels are finished before the next
//! starts and a property's first discovery is kept, so every discovery's path is a shortest
//! one (stateright's BFS keeps each property's last discovery, which need not be).

use crate::engine::compact::{Deadline, Limits, Progress, Properties, Spawned, Stopped};
use crate::engine::fingerprint::key;
use crate::engine::frontier::Frontier;
use crate::engine::visited::Visited;
use raft_model::model::{RaftAction, RaftState};
use rayon::prelude::*;
use stateright::Model;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// How to run the engine.
#[derive(Clone, Debug)]
pub struct Options {
    pub symmetry: bool,
    /// Threads expanding each level.
    pub threads: usize,
    pub limits: Limits,
}

/// Start checking `model` on a thread of its own (and `options.threads` workers).
pub fn spawn<M>(model: M, options: Options) -> Spawned<M>
where
    M: Model<State = RaftState, Action = RaftAction> + Send + Sync + 'static,
{
    Spawned::spawn("checker-bfs", model, move |model, progress| {
        Search::new(model, &options, progress).run()
    })
}

/// Parts of the visited table, each behind its own lock, picked by a key's top bits: threads
/// inserting different keys rarely wait for each other.
const SHARD_BITS: u32 = 6;

/// Tasks per thread a level is split into: a few, so that a thread that finishes early finds
/// work, and no more, since each task interns its successors' parts on its own (`frontier.rs`)
/// and a part common to many tasks is held once per task.
const TASKS_PER_THREAD: usize = 4;

struct Search<'a, M: Model> {
    model: &'a M,
    options: &'a Options,
    progress: &'a Progress,
    properties: Properties<M>,
    /// Every state's key, with its parent's (stored form; 0 for an initial state).
    visited: Vec<Mutex<Visited>>,
    deadline: Deadline,
    /// Set when the search must stop (a violation, the deadline, the cap).
    stop: AtomicBool,
}

impl<'a, M> Search<'a, M>
where
    M: Model<State = RaftState, Action = RaftAction> + Sync,
{
    fn new(model: &'a M, options: &'a Options, progress: &'a Progress) -> Self {
        Search {
            model,
            options,
            progress,
            properties: Properties::of(model),
            // Small shards to start with: 64 of them at the table's usual first size would
            // hold 64 MiB before the first state.
            visited: (0..1 << SHARD_BITS)
                .map(|_| Mutex::new(Visited::with_slots(true, 1 << 10)))
                .collect(),
            deadline: options.limits.start(),
            stop: AtomicBool::new(false),
        }
    }

    fn key(&self, state: &RaftState) -> u64 {
        Visited::stored(key(state, self.options.symmetry))
    }

    fn shard(&self, k: u64) -> MutexGuard<'_, Visited> {
        self.visited[(k >> (64 - SHARD_BITS)) as usize]
            .lock()
            .expect("visited lock")
    }

    /// Insert `k` with its parent's key: true if it is new.
    fn insert(&self, k: u64, parent: u64) -> bool {
        let new = self.shard(k).insert(k, parent).is_ok();
        if new {
            self.progress.unique.fetch_add(1, Ordering::Relaxed);
        }
        new
    }

    fn run(&mut self) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.options.threads.max(1))
            .thread_name(|i| format!("checker-bfs-{i}"))
            .build()
            .expect("the BFS worker threads start");
        let _ = pool.install(|| self.levels());
    }

    fn levels(&self) -> Result<(), Stopped> {
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
        let mut frontier = Frontier::new(actors);
        self.progress
            .state_count
            .fetch_add(inits.len(), Ordering::Relaxed);
        for init in &inits {
            let k = self.key(init);
            if self.insert(k, 0) {
                self.check(init, k)?;
                frontier.push(init, k);
            }
        }
        let mut level = vec![frontier];
        let mut depth = 0;
        loop {
            let width: usize = level.iter().map(Frontier::len).sum();
            if width == 0 {
                return Ok(());
            }
            depth += 1;
            let p = self.progress;
            p.max_depth.store(depth, Ordering::Relaxed);
            p.frontier_states.fetch_max(width, Ordering::Relaxed);
            // One thread: the level in one task, in order (the search is deterministic).
            let threads = self.options.threads.max(1);
            let chunk = if threads == 1 {
                width
            } else {
                width.div_ceil(threads * TASKS_PER_THREAD)
            };
            let tasks: Vec<(&Frontier, Range<usize>)> = level
                .iter()
                .flat_map(|f| {
                    (0..f.len())
                        .step_by(chunk)
                        .map(move |at| (f, at..(at + chunk).min(f.len())))
                })
                .collect();
            let next: Result<Vec<Frontier>, Stopped> = if threads == 1 {
                tasks
                    .into_iter()
                    .map(|(f, r)| self.expand(f, r, actors))
                    .collect()
            } else {
                tasks
                    .into_par_iter()
                    .map(|(f, r)| self.expand(f, r, actors))
                    .collect()
            };
            // Tasks that found nothing new leave nothing to hold.
            level = next?.into_iter().filter(|f| !f.is_empty()).collect();
        }
    }

    /// Expand states `range` of `level`: their new successors, as a level of their own.
    fn expand(
        &self,
        level: &Frontier,
        range: Range<usize>,
        actors: usize,
    ) -> Result<Frontier, Stopped> {
        let mut next = Frontier::new(actors);
        let mut actions = Vec::new();
        for i in range {
            if self.stop.load(Ordering::Relaxed) {
                return Err(Stopped);
            }
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
                let k = self.key(&succ);
                if self.insert(k, parent) {
                    self.check(&succ, k)?;
                    next.push(&succ, k);
                }
                self.tick()?;
            }
        }
        Ok(next)
    }

    /// Count a generated state; stop at the deadline or the state cap.
    fn tick(&self) -> Result<(), Stopped> {
        let count = self.progress.state_count.fetch_add(1, Ordering::Relaxed) + 1;
        if self.deadline.reached(count) {
            self.stop.store(true, Ordering::Relaxed);
            return Err(Stopped);
        }
        Ok(())
    }

    /// Evaluate the properties without a discovery on a new state (key `k`); record each
    /// discovery's path. Stops the search on a violated Always property.
    fn check(&self, state: &RaftState, k: u64) -> Result<(), Stopped> {
        let mut names = Vec::new();
        let violated = self
            .properties
            .check(self.model, state, |name| names.push(name));
        if !names.is_empty() {
            let (init, steps) = self.path_to(k);
            for name in names {
                self.progress.discovered(name, init.clone(), steps.clone());
            }
        }
        if violated {
            self.stop.store(true, Ordering::Relaxed);
            return Err(Stopped);
        }
        Ok(())
    }

    /// The path to the state with key `k`: its parents' chain from the table, replayed.
    fn path_to(&self, k: u64) -> (RaftState, Vec<RaftAction>) {
        let mut chain = vec![k];
        loop {
            let at = *chain.last().expect("the chain starts with k");
            let parent = self
                .shard(at)
                .word_of(at)
                .expect("every key on a parent chain was visited");
            if parent == 0 {
                break;
            }
            chain.push(parent);
        }
        chain.reverse();
        replay(self.model, self.options.symmetry, &chain)
    }
}

/// The path along a chain of keys (stored form), from an initial state's: at each state, the
/// first step whose successor has the next key. That is the step a level-order search took
/// (it also takes the first such step of the first such state), so the path replays the very
/// states the search visited, symmetric or not.
pub fn replay<M>(model: &M, symmetry: bool, chain: &[u64]) -> (RaftState, Vec<RaftAction>)
where
    M: Model<State = RaftState, Action = RaftAction>,
{
    let key = |s: &RaftState| Visited::stored(key(s, symmetry));
    let init = model
        .init_states()
        .into_iter()
        .find(|s| model.within_boundary(s) && key(s) == chain[0])
        .expect("the chain starts at an initial state");
    let mut state = init.clone();
    let mut steps = Vec::new();
    let mut actions = Vec::new();
    for &want in &chain[1..] {
        actions.clear();
        model.actions(&state, &mut actions);
        let (action, succ) = actions
            .drain(..)
            .find_map(|a| {
                let succ = model.next_state(&state, a.clone())?;
                (model.within_boundary(&succ) && key(&succ) == want).then_some((a, succ))
            })
            .expect("some step of the parent reaches the next state on the chain");
        steps.push(action);
        state = succ;
    }
    (init, steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::dfs::tests::{bound, reachable};
    use raft_model::model::symmetry::representative;
    use raft_model::model::{ModelConfig, RaftModel};
    use raft_model::mutant::Mutant;
    use stateright::{Checker, Expectation};
    use std::collections::HashSet;

    fn options(symmetry: bool) -> Options {
        Options {
            symmetry,
            threads: 1,
            limits: Limits::default(),
        }
    }

    /// The engine's visited keys (stored form) and its discoveries' names.
    fn engine(
        model: &RaftModel,
        symmetry: bool,
        threads: usize,
    ) -> (HashSet<u64>, Vec<&'static str>) {
        let progress = Progress::default();
        let opts = Options {
            threads,
            ..options(symmetry)
        };
        let mut search = Search::new(model, &opts, &progress);
        search.run();
        let keys: HashSet<u64> = search
            .visited
            .iter()
            .flat_map(|v| v.lock().unwrap().keys().collect::<Vec<_>>())
            .collect();
        assert_eq!(progress.unique.load(Ordering::Relaxed), keys.len());
        (keys, progress.discovered_names().into_iter().collect())
    }

    /// On small bounds, with and without symmetry, on one thread and on three, the engine
    /// visits exactly the states a plain search reaches, and discovers what stateright's BFS
    /// discovers (without symmetry: its BFS ignores symmetry; with it, what stateright's DFS
    /// with symmetry discovers).
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
                let (keys, found) = engine(&model, symmetry, 1);
                assert!(
                    keys == expected,
                    "{cfg:?} symmetry {symmetry}: the same states"
                );
                let (keys3, found3) = engine(&model, symmetry, 3);
                assert!(
                    keys3 == expected,
                    "{cfg:?} symmetry {symmetry}: on 3 threads too"
                );
                assert_eq!(
                    found3, found,
                    "{cfg:?} symmetry {symmetry}: on 3 threads too"
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
        for (symmetry, threads) in [(false, 1), (true, 1), (false, 3)] {
            let opts = Options {
                threads,
                ..options(symmetry)
            };
            let found = spawn(model.clone(), opts).join().discoveries();
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
                    "{} symmetry {symmetry}, {threads} thread(s): a shortest path",
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
