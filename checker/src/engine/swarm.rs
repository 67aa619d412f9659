//! Swarm search (Holzmann's swarm verification): many independent, depth-bounded random walks
//! from the initial state, each with its own seed and its own action weights
//! (`swarm_choice.rs`), spread over threads. Every state a walk reaches is judged by every
//! property with the one discovery test every search uses (`discovers`). It is never
//! exhaustive: finding nothing proves nothing.
//!
//! Deterministic: walk K of seed S is a function of (S, K, the bound) alone. Walks are handed
//! out in order of their number; a violation in walk K stops the handing out, the walks
//! numbered below K still finish, and the violation of the lowest-numbered walk is the one
//! reported, so a run of a fixed number of walks reports the same violation with any number
//! of threads (coverage figures of a run stopped at a violation depend on the threads).

use crate::engine::fingerprint::fingerprint;
use crate::engine::interrupt;
use crate::engine::swarm_choice::{pick, walk_seed, SplitMix64, Weights};
use raft_model::model::{discovers, RaftAction, RaftModel, RaftState};
use stateright::{Expectation, Model, Property};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How a swarm search runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    /// Walks numbered `first_walk..first_walk + walks`.
    pub first_walk: u64,
    pub walks: u64,
    /// Steps per walk at most.
    pub max_depth: usize,
    /// Wall-clock budget: no walk starts after it, and running walks stop.
    pub budget: Option<Duration>,
    pub threads: usize,
    /// Most distinct fingerprints kept (the distinct count is "at least" past it).
    pub max_fingerprints: usize,
    /// Seconds between progress lines on stderr (0: none).
    pub progress: f64,
}

/// The first violation found (the lowest-numbered walk's).
#[derive(Clone, Debug)]
pub struct Violation {
    pub property: &'static str,
    pub walk: u64,
    pub walk_seed: u64,
    /// The kinds of action the walk had switched off.
    pub off: Vec<&'static str>,
    pub init: RaftState,
    /// The walk's actions, up to the violating state.
    pub actions: Vec<RaftAction>,
    pub seconds: f64,
}

/// A Sometimes property's witness: the lowest-numbered walk that reached it, and when it was
/// first reached.
#[derive(Clone, Debug)]
pub struct Witness {
    pub walk: u64,
    pub seconds: f64,
}

/// What a swarm search covered and found.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub walks: u64,
    pub steps: u64,
    pub distinct: usize,
    pub distinct_capped: bool,
    pub max_depth: usize,
    pub seconds: f64,
    pub interrupted: bool,
    pub out_of_budget: bool,
    pub violation: Option<Violation>,
    /// Every Sometimes property of the model, in its order.
    pub witnesses: Vec<(&'static str, Option<Witness>)>,
}

/// The distinct states seen, by fingerprint, in shards (for threads), capped.
struct Seen {
    shards: Vec<Mutex<HashSet<u64>>>,
    count: AtomicUsize,
    cap: usize,
    capped: AtomicBool,
}

impl Seen {
    fn new(cap: usize) -> Self {
        Seen {
            shards: (0..64).map(|_| Mutex::new(HashSet::new())).collect(),
            count: AtomicUsize::new(0),
            cap,
            capped: AtomicBool::new(false),
        }
    }

    fn insert(&self, fp: u64) {
        if self.count.load(Ordering::Relaxed) >= self.cap {
            self.capped.store(true, Ordering::Relaxed);
            return;
        }
        let shard = &self.shards[(fp >> 58) as usize];
        if shard.lock().expect("seen shard").insert(fp) {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What the workers share.
struct Shared<'a> {
    model: &'a RaftModel,
    options: &'a Options,
    start: Instant,
    deadline: Option<Instant>,
    /// The next walk to hand out.
    next: AtomicU64,
    /// Walks at or past this number are not run (a violation was found in it).
    stop_at: AtomicU64,
    seen: Seen,
    walks: AtomicU64,
    steps: AtomicU64,
    max_depth: AtomicUsize,
    /// A walk was stopped before its end by the budget or Ctrl-C.
    cut: AtomicBool,
    violation: Mutex<Option<Violation>>,
    witnesses: Mutex<Vec<Option<Witness>>>,
}

impl Shared<'_> {
    fn out_of_time(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d) || interrupt::requested()
    }
}

/// Run the swarm search on `model`.
pub fn search(model: &RaftModel, options: &Options) -> Outcome {
    let start = Instant::now();
    let properties = model.properties();
    let sometimes: Vec<&'static str> = properties
        .iter()
        .filter(|p| p.expectation == Expectation::Sometimes)
        .map(|p| p.name)
        .collect();
    let shared = Shared {
        model,
        options,
        start,
        deadline: options.budget.map(|b| start + b),
        next: AtomicU64::new(options.first_walk),
        stop_at: AtomicU64::new(options.first_walk.saturating_add(options.walks)),
        seen: Seen::new(options.max_fingerprints),
        walks: AtomicU64::new(0),
        steps: AtomicU64::new(0),
        max_depth: AtomicUsize::new(0),
        cut: AtomicBool::new(false),
        violation: Mutex::new(None),
        witnesses: Mutex::new(vec![None; properties.len()]),
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..options.threads.max(1))
            .map(|_| scope.spawn(|| worker(&shared)))
            .collect();
        let mut last = Instant::now();
        while !workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
            if options.progress > 0.0 && last.elapsed().as_secs_f64() >= options.progress {
                last = Instant::now();
                let reached = shared
                    .witnesses
                    .lock()
                    .expect("witnesses")
                    .iter()
                    .filter(|w| w.is_some())
                    .count();
                eprintln!(
                    "progress: {} walks, {} steps, {} distinct, depth {}, {reached} of {} \
                     witnesses, {:.0} s",
                    shared.walks.load(Ordering::Relaxed),
                    shared.steps.load(Ordering::Relaxed),
                    shared.seen.count.load(Ordering::Relaxed),
                    shared.max_depth.load(Ordering::Relaxed),
                    sometimes.len(),
                    start.elapsed().as_secs_f64()
                );
            }
        }
    });
    let violation = shared.violation.into_inner().expect("violation");
    let found = shared.witnesses.into_inner().expect("witnesses");
    let witnesses = properties
        .iter()
        .zip(found)
        .filter(|(p, _)| p.expectation == Expectation::Sometimes)
        .map(|(p, w)| (p.name, w))
        .collect();
    let walks = shared.walks.load(Ordering::Relaxed);
    Outcome {
        walks,
        steps: shared.steps.load(Ordering::Relaxed),
        distinct: shared.seen.count.load(Ordering::Relaxed),
        distinct_capped: shared.seen.capped.load(Ordering::Relaxed),
        max_depth: shared.max_depth.load(Ordering::Relaxed),
        seconds: start.elapsed().as_secs_f64(),
        interrupted: interrupt::requested(),
        out_of_budget: violation.is_none()
            && (walks < options.walks || shared.cut.load(Ordering::Relaxed)),
        violation,
        witnesses,
    }
}

/// One thread: take the next walk number until the walks, the budget or a violation end it.
fn worker(shared: &Shared) {
    let properties = shared.model.properties();
    // Witnesses this worker has reached: it records each once (its first walk to reach it is
    // its lowest-numbered one) and stops evaluating it.
    let mut reached = vec![false; properties.len()];
    loop {
        if shared.out_of_time() {
            return;
        }
        let walk = shared.next.fetch_add(1, Ordering::SeqCst);
        if walk >= shared.stop_at.load(Ordering::SeqCst) {
            return;
        }
        shared.walks.fetch_add(1, Ordering::Relaxed);
        if let Some(v) = run_walk(shared, &properties, &mut reached, walk) {
            shared.stop_at.fetch_min(walk, Ordering::SeqCst);
            let mut slot = shared.violation.lock().expect("violation");
            if slot.as_ref().is_none_or(|old| old.walk > v.walk) {
                *slot = Some(v);
            }
        }
    }
}

/// Whether `state` violates one of the Always properties: the first one's name. Records the
/// Sometimes properties it witnesses.
fn judge(
    shared: &Shared,
    properties: &[Property<RaftModel>],
    reached: &mut [bool],
    walk: u64,
    state: &RaftState,
) -> Option<&'static str> {
    shared.seen.insert(fingerprint(state));
    let mut violated = None;
    for (i, p) in properties.iter().enumerate() {
        if p.expectation == Expectation::Sometimes && reached[i] {
            continue;
        }
        if !discovers(p, shared.model, state) {
            continue;
        }
        match p.expectation {
            Expectation::Always => {
                violated = Some(p.name);
                break;
            }
            Expectation::Sometimes => {
                reached[i] = true;
                let seconds = shared.start.elapsed().as_secs_f64();
                let mut all = shared.witnesses.lock().expect("witnesses");
                let better = all[i].as_ref().is_none_or(|w| w.walk > walk);
                if better {
                    let seconds = all[i].as_ref().map_or(seconds, |w| w.seconds.min(seconds));
                    all[i] = Some(Witness { walk, seconds });
                }
            }
            Expectation::Eventually => {}
        }
    }
    violated
}

/// The walk's generator after its weights and initial state are drawn, and those.
pub fn start_walk(model: &RaftModel, seed: u64, walk: u64) -> (SplitMix64, Weights, RaftState) {
    let mut rng = SplitMix64::new(walk_seed(seed, walk));
    let weights = Weights::draw(&mut rng, model.actors.len());
    let mut inits = model.init_states();
    let init = inits.swap_remove(rng.below(inits.len() as u64) as usize);
    (rng, weights, init)
}

/// The next step of a walk from `state`: an enabled action chosen by weight (uniformly when
/// every enabled action's kind is off), skipping actions that change nothing or leave the
/// bound (as every search does); `None` when no step is possible.
pub fn step(
    model: &RaftModel,
    rng: &mut SplitMix64,
    weights: &Weights,
    state: &RaftState,
) -> Option<(RaftAction, RaftState)> {
    let mut actions = Vec::new();
    model.actions(state, &mut actions);
    let mut w: Vec<u64> = actions.iter().map(|a| weights.of(a)).collect();
    while !actions.is_empty() {
        let i = match pick(rng, &w) {
            Some(i) => i,
            None => {
                w.iter_mut().for_each(|x| *x = 1);
                continue;
            }
        };
        match model.next_state(state, actions[i].clone()) {
            Some(next) if model.within_boundary(&next) => {
                return Some((actions.swap_remove(i), next));
            }
            _ => {
                actions.swap_remove(i);
                w.swap_remove(i);
            }
        }
    }
    None
}

/// Run walk `walk`; its violation, if it meets one.
fn run_walk(
    shared: &Shared,
    properties: &[Property<RaftModel>],
    reached: &mut [bool],
    walk: u64,
) -> Option<Violation> {
    let (mut rng, weights, init) = start_walk(shared.model, shared.options.seed, walk);
    let mut state = init.clone();
    let mut taken = Vec::new();
    let mut depth = 0;
    let mut result = None;
    let mut property = judge(shared, properties, reached, walk, &state);
    while property.is_none() && depth < shared.options.max_depth {
        // Stop when out of time, or when a lower-numbered walk found a violation.
        if depth % 32 == 31 {
            if shared.out_of_time() {
                shared.cut.store(true, Ordering::Relaxed);
                break;
            }
            if shared.stop_at.load(Ordering::Relaxed) < walk {
                break;
            }
        }
        let Some((action, next)) = step(shared.model, &mut rng, &weights, &state) else {
            break;
        };
        taken.push(action);
        state = next;
        depth += 1;
        property = judge(shared, properties, reached, walk, &state);
    }
    shared.steps.fetch_add(depth as u64, Ordering::Relaxed);
    shared.max_depth.fetch_max(depth, Ordering::Relaxed);
    if let Some(property) = property {
        result = Some(Violation {
            property,
            walk,
            walk_seed: walk_seed(shared.options.seed, walk),
            off: weights.off(),
            init,
            actions: taken,
            seconds: shared.start.elapsed().as_secs_f64(),
        });
    }
    result
}
