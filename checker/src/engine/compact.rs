//! What the checker's own searches (`dfs.rs`, `bfs.rs`) share: the search runs on a thread of
//! its own and publishes its counts and discoveries in `Progress`; `Spawned` is the running
//! search as a `stateright::Checker`, so `check`'s report, shortening, traces and `--json` work
//! unchanged on it.

use raft_model::model::discovers;
use raft_model::model::{RaftAction, RaftState};
use stateright::{Checker, Expectation, Model, Path, Property};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A search stopped early: a violation, the timeout, the state cap or an interrupt (the caller
/// tells the cases apart from the counts, the discoveries and the interrupt flag).
pub struct Stopped;

/// Where a search stops on its own, complete or not.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    pub timeout: Option<Duration>,
    /// Stop after generating this many states.
    pub max_states: Option<usize>,
    /// Stop once this is set (`interrupt.rs`: the user pressed Ctrl-C).
    pub stop: Option<&'static AtomicBool>,
}

/// `Limits` from the moment a search starts.
pub struct Deadline {
    at: Option<Instant>,
    max_states: Option<usize>,
    stop: Option<&'static AtomicBool>,
}

impl Limits {
    pub fn start(&self) -> Deadline {
        Deadline {
            at: self.timeout.map(|t| Instant::now() + t),
            max_states: self.max_states,
            stop: self.stop,
        }
    }
}

impl Deadline {
    /// Whether the clock has run out or the user asked to stop (read now).
    pub fn late(&self) -> bool {
        self.at.is_some_and(|d| Instant::now() >= d)
            || self.stop.is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// Whether the search stops after its `count`th generated state (the clock and the stop
    /// flag are read every 4096 states).
    pub fn reached(&self, count: usize) -> bool {
        let now = count.is_multiple_of(4096);
        let late = now && self.at.is_some_and(|d| Instant::now() >= d);
        let stopped = now && self.stop.is_some_and(|s| s.load(Ordering::Relaxed));
        late || stopped || self.max_states.is_some_and(|m| count >= m)
    }
}

/// What the search thread shares with the caller.
#[derive(Default)]
pub struct Progress {
    pub state_count: AtomicUsize,
    pub unique: AtomicUsize,
    pub max_depth: AtomicUsize,
    /// DFS with sleep sets: steps first visits left asleep, and steps later visits explored
    /// after all.
    pub slept: AtomicUsize,
    pub woken: AtomicUsize,
    /// BFS: the most states one level held.
    pub frontier_states: AtomicUsize,
    /// The distributed engine: every process of the search is connected.
    pub connected: AtomicBool,
    done: AtomicBool,
    /// Property name → the initial state and the steps of its discovery.
    discoveries: Mutex<HashMap<&'static str, (RaftState, Vec<RaftAction>)>>,
}

impl Progress {
    /// Record a property's discovery: the path from `init` by `steps`.
    pub fn discovered(&self, name: &'static str, init: RaftState, steps: Vec<RaftAction>) {
        self.discoveries
            .lock()
            .expect("discoveries lock")
            .insert(name, (init, steps));
    }

    /// The names of the properties discovered so far.
    #[cfg(test)]
    pub fn discovered_names(&self) -> std::collections::BTreeSet<&'static str> {
        let found = self.discoveries.lock().expect("discoveries lock");
        found.keys().copied().collect()
    }
}

/// What the engine measured besides stateright's counts (readable during and after the run).
#[derive(Clone)]
pub struct Stats(Arc<Progress>);

impl Stats {
    /// Steps first visits left asleep.
    pub fn slept_steps(&self) -> usize {
        self.0.slept.load(Ordering::Relaxed)
    }

    /// Steps later visits explored after all: those a first visit left asleep and a later one
    /// did not, and with symmetry every step of another member of a class reached while steps
    /// were still asleep on the first.
    pub fn woken_steps(&self) -> usize {
        self.0.woken.load(Ordering::Relaxed)
    }

    /// BFS: the most states one level held.
    pub fn widest_level(&self) -> usize {
        self.0.frontier_states.load(Ordering::Relaxed)
    }
}

/// A running (or finished) search by one of the checker's own engines.
pub struct Spawned<M> {
    model: Arc<M>,
    progress: Arc<Progress>,
    handles: Vec<JoinHandle<()>>,
}

impl<M> Spawned<M>
where
    M: Model<State = RaftState, Action = RaftAction> + Send + Sync + 'static,
{
    /// Run `search` on `model` on a thread of its own (named `name`).
    pub fn spawn(
        name: &str,
        model: M,
        search: impl FnOnce(&M, &Progress) + Send + 'static,
    ) -> Spawned<M> {
        Spawned::spawn_shared(name, model, move |model, progress| {
            search(&model, &progress)
        })
    }

    /// Run `search` on `model` on a thread of its own, sharing the model and the progress
    /// (a search whose own threads outlive a borrow: the distributed engine's workers).
    pub fn spawn_shared(
        name: &str,
        model: M,
        search: impl FnOnce(Arc<M>, Arc<Progress>) + Send + 'static,
    ) -> Spawned<M> {
        let model = Arc::new(model);
        let progress = Arc::new(Progress::default());
        let handle = {
            let model = Arc::clone(&model);
            let progress = Arc::clone(&progress);
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    search(model, Arc::clone(&progress));
                    progress.done.store(true, Ordering::Release);
                })
                .expect("spawn the checker thread")
        };
        Spawned {
            model,
            progress,
            handles: vec![handle],
        }
    }

    pub fn stats(&self) -> Stats {
        Stats(Arc::clone(&self.progress))
    }
}

impl<M> Checker<M> for Spawned<M>
where
    M: Model<State = RaftState, Action = RaftAction>,
{
    fn model(&self) -> &M {
        &self.model
    }

    fn state_count(&self) -> usize {
        self.progress.state_count.load(Ordering::Relaxed)
    }

    fn unique_state_count(&self) -> usize {
        self.progress.unique.load(Ordering::Relaxed)
    }

    fn max_depth(&self) -> usize {
        self.progress.max_depth.load(Ordering::Relaxed)
    }

    fn discoveries(&self) -> HashMap<&'static str, Path<RaftState, RaftAction>> {
        let found = self.progress.discoveries.lock().expect("discoveries lock");
        found
            .iter()
            .map(|(name, (init, actions))| {
                let path = Path::from_actions(&*self.model, init.clone(), actions)
                    .expect("a discovery's steps replay from its initial state");
                (*name, path)
            })
            .collect()
    }

    fn handles(&mut self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut self.handles)
    }

    fn is_done(&self) -> bool {
        self.progress.done.load(Ordering::Acquire)
    }
}

/// The properties a search evaluates on each new state until each has its discovery (shared
/// by a search's threads: the first to discover a property records it).
pub struct Properties<M: Model> {
    properties: Vec<Property<M>>,
    /// Whether each property has its discovery.
    found: Vec<AtomicBool>,
}

impl<M: Model> Properties<M> {
    /// The model's properties. The model states Always and Sometimes properties only
    /// (`properties.rs`); an Eventually property would need path-sensitive checking these
    /// engines do not do.
    pub fn of(model: &M) -> Self {
        let properties = model.properties();
        assert!(
            properties
                .iter()
                .all(|p| p.expectation != Expectation::Eventually),
            "the checker's own engines check Always and Sometimes properties only"
        );
        Properties {
            found: properties.iter().map(|_| AtomicBool::new(false)).collect(),
            properties,
        }
    }

    /// Evaluate the properties without a discovery on `state`; each discovered one is marked
    /// found and its index passed to `record`. True if an Always property is violated.
    pub fn check_indexed(
        &self,
        model: &M,
        state: &M::State,
        mut record: impl FnMut(usize),
    ) -> bool {
        let mut violated = false;
        for (k, p) in self.properties.iter().enumerate() {
            if self.found[k].load(Ordering::Relaxed) {
                continue;
            }
            if discovers(p, model, state) && !self.found[k].swap(true, Ordering::Relaxed) {
                violated |= p.expectation == Expectation::Always;
                record(k);
            }
        }
        violated
    }

    /// Property `k` has its discovery (another worker's, say): it is not evaluated again.
    pub fn mark_found(&self, k: usize) {
        self.found[k].store(true, Ordering::Relaxed);
    }

    pub fn expectation(&self, k: usize) -> Expectation {
        self.properties[k].expectation.clone()
    }

    pub fn name(&self, k: usize) -> &'static str {
        self.properties[k].name
    }

    /// Evaluate the properties without a discovery on `state`; each discovered one is marked
    /// found and its name passed to `record`. True if an Always property is violated (the
    /// search stops).
    pub fn check(&self, model: &M, state: &M::State, mut record: impl FnMut(&'static str)) -> bool {
        let mut violated = false;
        for (k, p) in self.properties.iter().enumerate() {
            if self.found[k].load(Ordering::Relaxed) {
                continue;
            }
            let discovered = discovers(p, model, state);
            // Another thread may have discovered it meanwhile: the first records it.
            if discovered && !self.found[k].swap(true, Ordering::Relaxed) {
                violated |= p.expectation == Expectation::Always;
                record(p.name);
            }
        }
        violated
    }
}
