//! The checker's own depth-first engine (`--engine compact`): one thread, a compact visited
//! set, and (`--sleep-sets`) partial-order reduction where it is sound.
//!
//! stateright's DFS keeps every pending state whole with its own copy of the path of action
//! indices that leads to it, and looks each property up in a shared map for every state. Here
//! the search keeps one stack of frames (the path itself: a state, its actions, which of them
//! are still to explore), the visited set is one table of fingerprints (`visited.rs`), and a
//! property is evaluated until it has its discovery. The states told apart and the
//! fingerprints are stateright's (`fingerprint.rs`), so a complete run visits the same states
//! and reaches the same verdicts as stateright's DFS.
//!
//! **Sleep sets** (Godefroid, "Partial-Order Methods for the Verification of Concurrent
//! Systems", ch. 5): after a frame has explored step `t`, a later sibling step `a` that is
//! independent of `t` (`raft_model::model::independence`) passes `t` down asleep: from
//! `a`'s state, `t` reaches the state `a` reaches from `t`'s, which is explored from there.
//! A step stays asleep while the steps taken are independent of it and it still fits the
//! bounds. Sleep sets skip transitions, never states: every reachable state is visited, so
//! the state count and every state property's verdict are unchanged (tested below against a
//! plain search and stateright's DFS on small bounds, and by `raft-check gate --engine
//! compact` against every standard configuration's baseline).
//!
//! With a visited set, a state may be reached again with a smaller sleep set than on its first
//! visit; then the steps its first visit left asleep and this visit does not are explored now
//! (Godefroid's combination of sleep sets with state matching). So the table keeps, per state,
//! the mask of its first visit's sleeping steps (by index into the state's actions, the first
//! 32; later ones are never put to sleep). With symmetry reduction the table holds one entry
//! per renaming class but the search walks concrete states, whose actions are numbered
//! differently; the entry remembers which concrete state the mask is about (32 bits of its
//! fingerprint), and another member of the class, reached while steps are still asleep on the
//! first, is expanded in full once and the mask cleared: sound, if less reduced. Every
//! revisit that expands anything shrinks the mask, so the search terminates. (Two members of
//! a class whose fingerprints share those 32 bits would be taken for one: a collision risk of
//! the kind every fingerprinting checker takes, at 32 bits rather than 64.)
//!
//! Sleep sets apply only where the relation is sound: the unordered non-duplicating network,
//! and a model whose boundary is the bound's own.

use crate::engine::compact::{Deadline, Limits, Progress, Properties, Spawned, Stopped};
use crate::engine::fingerprint::{fingerprint, key};
use raft_model::model::independence::{self, Counters, Delta};
use raft_model::model::{ModelConfig, RaftAction, RaftState};
use stateright::Model;
use std::sync::atomic::Ordering;

use crate::engine::visited::Visited;

/// How to run the engine.
#[derive(Clone, Debug)]
pub struct Options {
    pub symmetry: bool,
    /// Apply sleep sets with this bound's independence (None: explore every step).
    pub sleep_sets: Option<ModelConfig>,
    pub limits: Limits,
}

/// Start checking `model` on a thread of its own.
pub fn spawn<M>(model: M, options: Options) -> Spawned<M>
where
    M: Model<State = RaftState, Action = RaftAction> + Send + Sync + 'static,
{
    Spawned::spawn("checker-dfs", model, move |model, progress| {
        Search::new(model, &options, progress).run()
    })
}

/// One state on the search's path. Frames above the path's top are kept for their buffers.
struct Frame {
    state: RaftState,
    counters: Counters,
    /// The index, in the frame below's `actions`, of the step that led here (unused for an
    /// initial state).
    via: usize,
    actions: Vec<RaftAction>,
    /// Indices into `actions` to explore, in order; `next` is the first not yet taken.
    todo: Vec<usize>,
    next: usize,
    /// The sleep set: steps not to take from here, each with its change of the counters.
    /// Grows with the steps this frame has explored (their later siblings pass them down).
    sleep: Vec<(RaftAction, Delta)>,
}

/// Mask bits: the first 32 actions of a state may sleep; the upper word is the tag.
const MASK_BITS: usize = 32;

struct Search<'a, M: Model> {
    model: &'a M,
    options: &'a Options,
    progress: &'a Progress,
    properties: Properties<M>,
    visited: Visited,
    /// `stack[..depth]` is the path; the frames above are spare.
    stack: Vec<Frame>,
    depth: usize,
    deadline: Deadline,
    state_count: usize,
    slept: usize,
    woken: usize,
    max_depth: usize,
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
            visited: Visited::new(options.sleep_sets.is_some()),
            stack: Vec::new(),
            depth: 0,
            deadline: options.limits.start(),
            state_count: 0,
            slept: 0,
            woken: 0,
            max_depth: 0,
        }
    }

    fn run(&mut self) {
        let inits: Vec<RaftState> = self
            .model
            .init_states()
            .into_iter()
            .filter(|s| self.model.within_boundary(s))
            .collect();
        self.state_count = inits.len();
        for init in inits {
            if let Ok(slot) = self.visited.insert(key(&init, self.options.symmetry), 0) {
                if self.check(&init, None) {
                    break;
                }
                self.open(init, 0, &[], slot, false);
                if self.explore().is_err() {
                    break;
                }
            }
        }
        self.publish();
    }

    fn publish(&self) {
        let p = self.progress;
        p.state_count.store(self.state_count, Ordering::Relaxed);
        p.unique.store(self.visited.len(), Ordering::Relaxed);
        p.max_depth.store(self.max_depth, Ordering::Relaxed);
        p.slept.store(self.slept, Ordering::Relaxed);
        p.woken.store(self.woken, Ordering::Relaxed);
    }

    /// The 32-bit tag of the concrete state a mask is about (with symmetry; else 0).
    fn tag(&self, state: &RaftState) -> u64 {
        if self.options.symmetry {
            fingerprint(state) >> 32
        } else {
            0
        }
    }

    /// Push a frame for `state`, reached by the step at index `via` of the top frame with
    /// sleep set `sleep`. `revisit`: the state was visited before (its table entry is `slot`);
    /// explore only what that visit left asleep and this one does not.
    fn open(
        &mut self,
        state: RaftState,
        via: usize,
        sleep: &[(RaftAction, Delta)],
        slot: crate::engine::visited::Slot,
        revisit: bool,
    ) {
        if self.depth == self.stack.len() {
            self.stack.push(Frame {
                state: state.clone(),
                counters: Counters::default(),
                via: 0,
                actions: Vec::new(),
                todo: Vec::new(),
                next: 0,
                sleep: Vec::new(),
            });
        }
        let tag = self.tag(&state);
        let por = self.options.sleep_sets.is_some();
        let frame = &mut self.stack[self.depth];
        frame.actions.clear();
        frame.todo.clear();
        frame.sleep.clear();
        frame.next = 0;
        frame.via = via;
        self.model.actions(&state, &mut frame.actions);
        let asleep = |a: &RaftAction| sleep.iter().any(|(t, _)| t == a);
        if !por {
            frame.todo.extend(0..frame.actions.len());
        } else {
            let word = self.visited.word(slot);
            let mut mask: u64 = 0;
            if !revisit {
                for (i, a) in frame.actions.iter().enumerate() {
                    if i < MASK_BITS && asleep(a) {
                        mask |= 1 << i;
                    } else {
                        frame.todo.push(i);
                    }
                }
                self.slept += mask.count_ones() as usize;
                self.visited.set_word(slot, mask | tag << 32);
            } else if word >> 32 == tag {
                // The same concrete state: the steps still asleep there and not here.
                let stored = word & 0xFFFF_FFFF;
                for (i, a) in frame.actions.iter().enumerate().take(MASK_BITS) {
                    if stored & (1 << i) != 0 {
                        if asleep(a) {
                            mask |= 1 << i;
                        } else {
                            frame.todo.push(i);
                        }
                    }
                }
                self.woken += frame.todo.len();
                self.visited.set_word(slot, mask | tag << 32);
            } else {
                // Another member of the class, whose steps are numbered differently: expand
                // it in full, once (the mask is cleared, so the search still terminates).
                frame.todo.extend(0..frame.actions.len());
                self.woken += frame.todo.len();
                self.visited.set_word(slot, tag << 32);
            }
            frame.sleep.extend_from_slice(sleep);
            frame.counters = Counters::of(&state);
        }
        if frame.todo.is_empty() && revisit {
            return;
        }
        frame.state = state;
        self.depth += 1;
        self.max_depth = self.max_depth.max(self.depth);
    }

    /// Depth-first from the frames on the stack until it is empty or the search stops.
    fn explore(&mut self) -> Result<(), Stopped> {
        let cfg = self.options.sleep_sets.clone();
        let mut child_sleep = Vec::new();
        while self.depth > 0 {
            let frame = &mut self.stack[self.depth - 1];
            let Some(&i) = frame.todo.get(frame.next) else {
                self.depth -= 1;
                continue;
            };
            frame.next += 1;
            let Some(next) = self
                .model
                .next_state(&frame.state, frame.actions[i].clone())
            else {
                continue;
            };
            if !self.model.within_boundary(&next) {
                continue;
            }
            self.state_count += 1;
            // This step joins the frame's sleep set (for its later siblings).
            let mut after = None;
            let passed = frame.sleep.len();
            if cfg.is_some() {
                let counters = Counters::of(&next);
                if let Some(d) = frame.counters.delta(&counters) {
                    frame.sleep.push((frame.actions[i].clone(), d));
                }
                after = Some(counters);
            }
            let slot = match self.visited.insert(key(&next, self.options.symmetry), 0) {
                Ok(slot) => {
                    if self.check(&next, Some(i)) {
                        return Err(Stopped);
                    }
                    Some((slot, false))
                }
                Err(slot) => (cfg.is_some() && self.visited.word(slot) & 0xFFFF_FFFF != 0)
                    .then_some((slot, true)),
            };
            if let Some((slot, revisit)) = slot {
                // The steps of the sleep set before this one that commute with it and still
                // fit go down with it.
                child_sleep.clear();
                if let (Some(cfg), Some(after)) = (&cfg, after) {
                    let frame = &self.stack[self.depth - 1];
                    let action = &frame.actions[i];
                    child_sleep.extend(
                        frame.sleep[..passed]
                            .iter()
                            .filter(|(t, d)| {
                                independence::independent(cfg, t, action) && after.fits(cfg, *d)
                            })
                            .cloned(),
                    );
                }
                let sleep = std::mem::take(&mut child_sleep);
                self.open(next, i, &sleep, slot, revisit);
                child_sleep = sleep;
            }
            if self.state_count.is_multiple_of(4096) {
                self.publish();
            }
            if self.deadline.reached(self.state_count) {
                return Err(Stopped);
            }
        }
        Ok(())
    }

    /// Evaluate the properties without a discovery on a new state: an initial state (`via`
    /// None) or the one the top frame's step `via` reached. True if an Always property is
    /// violated (the search stops).
    fn check(&mut self, state: &RaftState, via: Option<usize>) -> bool {
        let (model, progress, path) = (self.model, self.progress, &self.stack[..self.depth]);
        self.properties.check(model, state, |name| {
            let (init, steps) = match via {
                None => (state.clone(), Vec::new()),
                Some(last) => {
                    // Each frame's step is the one below's action at its `via`.
                    let mut steps: Vec<RaftAction> = path
                        .windows(2)
                        .map(|w| w[0].actions[w[1].via].clone())
                        .collect();
                    steps.push(path[path.len() - 1].actions[last].clone());
                    (path[0].state.clone(), steps)
                }
            };
            progress.discovered(name, init, steps);
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use raft_model::model::symmetry::representative;
    use raft_model::model::RaftModel;
    use raft_model::mutant::Mutant;
    use stateright::{Checker, Expectation};
    use std::collections::{BTreeSet, HashSet, VecDeque};

    /// Every state's key reachable within the bound, by a plain breadth-first search that
    /// shares nothing with the engine but the model and the key.
    pub(crate) fn reachable(model: &RaftModel, symmetry: bool) -> HashSet<u64> {
        let mut seen = HashSet::new();
        let mut queue = VecDeque::new();
        for s in model.init_states() {
            if model.within_boundary(&s) && seen.insert(key(&s, symmetry)) {
                queue.push_back(s);
            }
        }
        while let Some(s) = queue.pop_front() {
            for (_, n) in model.next_steps(&s) {
                if model.within_boundary(&n) && seen.insert(key(&n, symmetry)) {
                    queue.push_back(n);
                }
            }
        }
        seen
    }

    /// The engine's visited keys, discoveries and generated states (steps computed).
    fn engine(
        model: &RaftModel,
        symmetry: bool,
        sleep_sets: bool,
    ) -> (HashSet<u64>, BTreeSet<&'static str>, usize) {
        let options = Options {
            symmetry,
            sleep_sets: sleep_sets.then(|| model.cfg.clone()),
            limits: Limits::default(),
        };
        let progress = Progress::default();
        let mut search = Search::new(model, &options, &progress);
        search.run();
        let keys = search.visited.keys().collect();
        let found = progress.discovered_names();
        (keys, found, search.state_count)
    }

    /// stateright's DFS on the same model: its discoveries when it has explored everything.
    fn stateright(model: &RaftModel, symmetry: bool) -> (usize, BTreeSet<&'static str>) {
        let mut builder = model.clone().checker().threads(1);
        if symmetry {
            builder = builder.symmetry_fn(representative);
        }
        let checker = builder.spawn_dfs().join();
        (
            checker.unique_state_count(),
            checker.discoveries().keys().copied().collect(),
        )
    }

    pub(crate) fn bound(servers: usize, max_term: u64, crashes: usize, lossy: bool) -> ModelConfig {
        ModelConfig {
            servers,
            max_term,
            reads: 0,
            max_crashes: crashes,
            lossy,
            max_in_flight: 2,
            ..ModelConfig::default()
        }
    }

    /// Sleep sets skip steps, never states: on small bounds the engine, with and without them,
    /// visits exactly the states a plain search reaches (the same keys), and discovers what
    /// stateright's DFS discovers.
    #[test]
    fn sleep_sets_visit_every_state_and_keep_every_verdict() {
        let cases = [
            (bound(2, 1, 1, true), true),
            (bound(2, 1, 1, true), false),
            (bound(2, 2, 0, true), true),
            (bound(2, 2, 1, false), false),
            (bound(3, 1, 0, false), true),
            (bound(3, 1, 0, false), false),
            // Two clients (two histories' worth of interleavings).
            (
                ModelConfig {
                    values: 2,
                    ..bound(2, 1, 0, false)
                },
                false,
            ),
        ];
        for (cfg, symmetry) in cases {
            let model = cfg.clone().into_model();
            let expected = reachable(&model, symmetry);
            let (sr_count, sr_found) = stateright(&model, symmetry);
            assert_eq!(sr_count, expected.len(), "{cfg:?}");
            let mut generated = Vec::new();
            for sleep_sets in [false, true] {
                let (keys, found, count) = engine(&model, symmetry, sleep_sets);
                assert_eq!(
                    keys.len(),
                    expected.len(),
                    "{cfg:?} sleep sets {sleep_sets}"
                );
                assert!(keys == expected, "{cfg:?}: the same states");
                assert_eq!(found, sr_found, "{cfg:?}: the same discoveries");
                generated.push(count);
            }
            if !symmetry {
                assert!(
                    generated[1] < generated[0],
                    "{cfg:?}: sleep sets computed fewer steps ({generated:?})"
                );
            }
        }
    }

    /// A mutant's violation is found with sleep sets too, and its path replays.
    #[test]
    fn sleep_sets_find_a_mutants_violation() {
        let cfg = ModelConfig {
            mutant: Some(Mutant::VoteWithoutLogCheck),
            ..bound(3, 2, 0, false)
        };
        let model = cfg.into_model();
        let (_, sr_found) = stateright(&model, false);
        let options = Options {
            symmetry: false,
            sleep_sets: Some(model.cfg.clone()),
            limits: Limits::default(),
        };
        let dfs = spawn(model.clone(), options).join();
        let found = dfs.discoveries();
        let violated: Vec<_> = model
            .properties()
            .into_iter()
            .filter(|p| p.expectation == Expectation::Always && found.contains_key(p.name))
            .map(|p| p.name)
            .collect();
        assert!(!violated.is_empty(), "the mutant is caught");
        for name in violated {
            assert!(sr_found.contains(name), "{name}: stateright finds it too");
            let path = &found[name];
            let last = path.last_state();
            assert!(
                !model.violated(last).is_empty(),
                "{name}: the path ends in a violation"
            );
        }
    }
}
