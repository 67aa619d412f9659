//! The distributed breadth-first engine (`--engine timely`): every state has an owner, chosen by
//! its key, and only its owner decides whether it is new (Stern and Dill's parallel Murphi,
//! PReach, distributed TLC's fingerprint servers), on timely dataflow.
//!
//! Each worker holds the visited table of the states it owns (`visited.rs`: key and parent's
//! key) and the level of them it is expanding (`frontier.rs`). It expands its level and sends
//! every successor to the successor's owner (the key modulo the workers, with symmetry the
//! class representative's key); the owner inserts it, evaluates the properties on it if it is
//! new, and keeps it for the next level. No state is expanded twice and the visited set is the
//! sum of the workers' tables. Transport, framing and progress tracking are timely's: threads
//! of one process exchange states as values, processes as bytes (bincode, over timely's TCP).
//!
//! The search is level-synchronous: a level's successors (timely time `2L`) are all delivered
//! before the workers agree on the level (time `2L + 1`: every worker broadcasts its counts,
//! its discoveries and whether it must stop), so every discovery is made at its shortest depth
//! and all workers take the same decisions from the same messages. A property's discovery is
//! the least key among those discovered at its level. Its path is rebuilt from parent keys,
//! one round per step back, each answered by the key's owner, then replayed from an initial
//! state as `bfs.rs` does.

use crate::engine::bfs::replay;
use crate::engine::compact::{Deadline, Limits, Progress, Properties, Spawned};
use crate::engine::fingerprint::key;
use crate::engine::frontier::Frontier;
use crate::engine::visited::Visited;
use crate::report::check_report::{WorkerStats, EXIT_INCOMPLETE};
use raft_model::model::{RaftAction, RaftState};
use serde::{Deserialize, Serialize};
use stateright::{Expectation, Model};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Input, Probe};
use timely::dataflow::{InputHandleVec, ProbeHandle};

/// Where the workers run: threads of this process, or processes (each with `threads`) joined
/// by timely's cluster configuration.
#[derive(Clone, Debug)]
pub struct Options {
    pub symmetry: bool,
    /// Worker threads in this process.
    pub threads: usize,
    pub cluster: Option<Cluster>,
    pub limits: Limits,
}

/// This process's place among the processes of one search.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub process: usize,
    /// Every process's address (`host:port`), in process order.
    pub addresses: Vec<String>,
}

/// What the engine measured besides the counts, for the report.
#[derive(Default)]
pub struct Measured {
    pub workers: Mutex<Vec<WorkerStats>>,
    /// Why the search could not finish: a worker panicked or a process was lost.
    pub failure: Mutex<Option<String>>,
    /// The search stopped before its last level: the deadline, the state cap, Ctrl-C or a
    /// failure (a violation is not counted here).
    pub incomplete: AtomicBool,
}

/// A successor on its way to its owner: its key, its parent's key, the state.
type Succ = (u64, u64, RaftState);

/// What every worker broadcasts when the workers agree.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Control {
    /// A level's end: this worker's new states and generated states, its discoveries
    /// (property, key, parent key) and whether it must stop (deadline, state cap, Ctrl-C).
    Level {
        new: u64,
        generated: u64,
        discoveries: Vec<(usize, u64, u64)>,
        stop: bool,
    },
    /// A path being rebuilt: the parent of `key` (0: an initial state).
    Parent { key: u64, parent: u64 },
    /// The search is over: this worker's figures.
    Done(WorkerStats),
}

/// The worker that owns `key` among `peers`.
fn owner(key: u64, peers: usize) -> usize {
    // The low bits pick the worker; the visited table's slot comes from the high bits.
    (key % peers as u64) as usize
}

/// Start checking `model` with `options` (the workers run on threads timely starts; this
/// process's are joined on a thread of its own).
pub fn spawn<M>(model: M, options: Options) -> (Spawned<M>, Arc<Measured>)
where
    M: Model<State = RaftState, Action = RaftAction> + Send + Sync + 'static,
{
    let measured = Arc::new(Measured::default());
    let m = Arc::clone(&measured);
    let spawned = Spawned::spawn_shared("checker-timely", model, move |model, progress| {
        run(model, progress, &options, &m)
    });
    (spawned, measured)
}

/// How long a process waits for the others to connect before it gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

fn run<M>(model: Arc<M>, progress: Arc<Progress>, options: &Options, measured: &Arc<Measured>)
where
    M: Model<State = RaftState, Action = RaftAction> + Send + Sync + 'static,
{
    let threads = options.threads.max(1);
    let communication = match &options.cluster {
        Some(c) => timely::CommunicationConfig::Cluster {
            threads,
            process: c.process,
            addresses: c.addresses.clone(),
            report: false,
            zerocopy: false,
        },
        None if threads == 1 => timely::CommunicationConfig::Thread,
        None => timely::CommunicationConfig::Process(threads),
    };
    let config = timely::Config {
        communication,
        worker: timely::WorkerConfig::default(),
    };
    if let Some(c) = &options.cluster {
        watch_the_cluster(c, Arc::clone(&progress));
    }
    let symmetry = options.symmetry;
    let limits = options.limits.clone();
    let m = Arc::clone(measured);
    let guards = timely::execute(config, move |worker| {
        progress.connected.store(true, Ordering::Release);
        let mut w = Worker::new(
            Arc::clone(&model),
            &progress,
            &m,
            symmetry,
            threads,
            &limits,
            worker,
        );
        w.search(worker);
    });
    let failure = match guards {
        Err(e) => Some(format!("the workers could not start: {e}")),
        Ok(guards) => guards
            .join()
            .into_iter()
            .find_map(|r| r.err())
            .map(|e| format!("a worker failed: {e}")),
    };
    if failure.is_some() {
        measured.incomplete.store(true, Ordering::Relaxed);
        *measured.failure.lock().expect("failure lock") = failure;
    }
}

/// A process of a cluster whose peers never connect, or whose peer dies (timely's network
/// threads panic on a closed connection, and the workers would wait for it forever), stops
/// with a clear message and exit code 3: the search has no verdict.
fn watch_the_cluster(cluster: &Cluster, progress: Arc<Progress>) {
    let n = cluster.addresses.len();
    let me = cluster.process;
    std::thread::spawn(move || {
        std::thread::sleep(CONNECT_TIMEOUT);
        if !progress.connected.load(Ordering::Acquire) {
            eprintln!(
                "raft-check: process {me} of {n} could not reach every other process within \
                 {} s (is each one started, with the same --hostfile?): no verdict",
                CONNECT_TIMEOUT.as_secs()
            );
            std::process::exit(EXIT_INCOMPLETE);
        }
    });
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let timely = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("timely:"));
        if !timely {
            return previous(info);
        }
        let why = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("a worker panicked");
        eprintln!(
            "raft-check: process {me} of {n} lost a worker or the connection to one ({why}): \
             the search stops with no verdict"
        );
        std::process::exit(EXIT_INCOMPLETE);
    }));
}

/// The states a worker owns and what it found among them (shared with the operator that
/// receives them).
struct Owned<M: Model> {
    model: Arc<M>,
    properties: Properties<M>,
    visited: Visited,
    /// The next level: new states this worker owns.
    next: Frontier,
    new: u64,
    /// This level's discoveries: property, key, parent's key.
    discoveries: Vec<(usize, u64, u64)>,
    /// The time of the level being expanded: successors sent at it are this level's.
    now: u64,
    /// Successors a faster worker sent for the next level while this one was still agreeing
    /// on the last: received when this worker starts the next level (levels never mix).
    early: Vec<(u64, Succ)>,
}

impl<M> Owned<M>
where
    M: Model<State = RaftState, Action = RaftAction>,
{
    /// The successors of the time just started that arrived before it.
    fn start(&mut self, now: u64) {
        self.now = now;
        let early = std::mem::take(&mut self.early);
        for (t, (k, parent, state)) in early {
            assert_eq!(t, now, "only the next level's successors arrive early");
            self.receive(k, parent, state);
        }
    }

    /// A state arrives at its owner: inserted, and if new, judged and kept for the next level.
    fn receive(&mut self, k: u64, parent: u64, state: RaftState) {
        if self.visited.insert(k, parent).is_err() {
            return;
        }
        self.new += 1;
        let mut found = Vec::new();
        // A violation is among the discoveries: the workers stop when they agree on the level.
        let _ = self
            .properties
            .check_indexed(&*self.model, &state, |p| found.push(p));
        self.discoveries
            .extend(found.into_iter().map(|p| (p, k, parent)));
        self.next.push(&state, k);
    }
}

/// What the workers agreed on at a level's end.
struct Agreed {
    new: u64,
    generated: u64,
    /// Per property discovered at this level: the least key (and its parent) discovered.
    discoveries: BTreeMap<usize, (u64, u64)>,
    stop: bool,
}

struct Worker<'p, M: Model> {
    model: Arc<M>,
    progress: &'p Progress,
    measured: &'p Measured,
    symmetry: bool,
    deadline: Deadline,
    max_states: Option<usize>,
    index: usize,
    peers: usize,
    /// The workers of this process (the others receive states as bytes).
    local: std::ops::Range<usize>,
    owned: Rc<RefCell<Owned<M>>>,
    stats: WorkerStats,
    time: u64,
}

impl<'p, M> Worker<'p, M>
where
    M: Model<State = RaftState, Action = RaftAction> + 'static,
{
    fn new(
        model: Arc<M>,
        progress: &'p Progress,
        measured: &'p Measured,
        symmetry: bool,
        threads: usize,
        limits: &Limits,
        worker: &timely::worker::Worker,
    ) -> Self {
        let index = worker.index();
        let first = index - index % threads;
        let owned = Owned {
            properties: Properties::of(&*model),
            model: Arc::clone(&model),
            visited: Visited::with_slots(true, 1 << 10),
            next: Frontier::new(0),
            new: 0,
            discoveries: Vec::new(),
            now: 0,
            early: Vec::new(),
        };
        Worker {
            model,
            progress,
            measured,
            symmetry,
            deadline: limits.start(),
            max_states: limits.max_states,
            index,
            peers: worker.peers(),
            local: first..first + threads,
            owned: Rc::new(RefCell::new(owned)),
            stats: WorkerStats {
                worker: index,
                ..WorkerStats::default()
            },
            time: 0,
        }
    }

    fn key(&self, state: &RaftState) -> u64 {
        Visited::stored(key(state, self.symmetry))
    }

    /// The first worker of each process publishes the counts and the discoveries.
    fn lead(&self) -> bool {
        self.index == self.local.start
    }

    fn search(&mut self, worker: &mut timely::worker::Worker) {
        let mut succ_in: InputHandleVec<u64, Succ> = InputHandleVec::new();
        let mut ctl_in: InputHandleVec<u64, Control> = InputHandleVec::new();
        let probe = ProbeHandle::new();
        let inbox: Rc<RefCell<Vec<(u64, Control)>>> = Rc::default();
        let peers = self.peers;
        let owned = Rc::clone(&self.owned);
        let received = Rc::clone(&inbox);
        worker.dataflow::<u64, _, _>(|scope| {
            scope
                .input_from(&mut succ_in)
                .unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
                    Exchange::new(move |s: &Succ| owner(s.0, peers) as u64),
                    "Owner",
                    move |_, _| {
                        move |input, _| {
                            input.for_each(|time, data| {
                                let t = time.least().copied().unwrap_or_default();
                                let mut o = owned.borrow_mut();
                                if t == o.now {
                                    for (k, parent, state) in data.drain(..) {
                                        o.receive(k, parent, state);
                                    }
                                } else {
                                    o.early.extend(data.drain(..).map(|s| (t, s)));
                                }
                            })
                        }
                    },
                )
                .probe_with(&probe);
            scope
                .input_from(&mut ctl_in)
                .broadcast()
                .unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
                    Pipeline,
                    "Agree",
                    move |_, _| {
                        move |input, _| {
                            input.for_each(|time, data| {
                                // A faster worker may already send the next time's: kept apart.
                                let t = time.least().copied().unwrap_or_default();
                                received.borrow_mut().extend(data.drain(..).map(|c| (t, c)))
                            })
                        }
                    },
                )
                .probe_with(&probe);
        });
        let mut exchange = Handles {
            worker,
            succ_in: &mut succ_in,
            ctl_in: &mut ctl_in,
            probe: &probe,
            inbox: &inbox,
        };
        let found = self.levels(&mut exchange);
        let chains = self.chains(&mut exchange, &found);
        if self.lead() {
            for (p, chain) in chains {
                let (init, steps) = replay(&*self.model, self.symmetry, &chain);
                let name = self.owned.borrow().properties.name(p);
                self.progress.discovered(name, init, steps);
            }
        }
        self.finish(&mut exchange);
    }

    /// The levels, until none is left, a property is violated or the search must stop. The
    /// discoveries: property, key, parent's key.
    fn levels(&mut self, x: &mut Handles<'_>) -> Vec<(usize, u64, u64)> {
        let model = Arc::clone(&self.model);
        let inits: Vec<RaftState> = model
            .init_states()
            .into_iter()
            .filter(|s| model.within_boundary(s))
            .collect();
        let actors = inits.first().map_or(0, |s| s.actors.len());
        self.owned.borrow_mut().next = Frontier::new(actors);
        let mut generated = if self.index == 0 {
            inits.len() as u64
        } else {
            0
        };
        for init in inits {
            let k = self.key(&init);
            if owner(k, self.peers) == self.index {
                self.owned.borrow_mut().receive(k, 0, init);
            }
        }
        let mut found = Vec::new();
        let (mut total_new, mut total_generated) = (0u64, 0u64);
        let mut depth = 0;
        let mut stop = false;
        loop {
            let agreed = self.agree(x, generated, stop);
            total_new += agreed.new;
            total_generated += agreed.generated;
            if self.lead() {
                let p = self.progress;
                p.unique.store(total_new as usize, Ordering::Relaxed);
                p.state_count
                    .store(total_generated as usize, Ordering::Relaxed);
                p.max_depth.store(depth, Ordering::Relaxed);
                p.frontier_states
                    .fetch_max(agreed.new as usize, Ordering::Relaxed);
            }
            let mut violated = false;
            {
                let o = self.owned.borrow();
                for (&p, &(k, parent)) in &agreed.discoveries {
                    o.properties.mark_found(p);
                    violated |= o.properties.expectation(p) == Expectation::Always;
                    found.push((p, k, parent));
                }
            }
            if violated {
                return found;
            }
            if agreed.stop {
                self.measured.incomplete.store(true, Ordering::Relaxed);
                return found;
            }
            if agreed.new == 0 {
                return found;
            }
            depth += 1;
            let level = std::mem::replace(&mut self.owned.borrow_mut().next, Frontier::new(actors));
            generated = 0;
            stop = self.expand(x, &level, &mut generated, total_generated);
        }
    }

    /// Expand this worker's level: every successor to its owner. True if this worker must
    /// stop (the deadline, the state cap, Ctrl-C); a violation stops the search when the
    /// workers agree on the level.
    fn expand(
        &mut self,
        x: &mut Handles<'_>,
        level: &Frontier,
        generated: &mut u64,
        before: u64,
    ) -> bool {
        let model = Arc::clone(&self.model);
        self.owned.borrow_mut().start(self.time);
        let mut actions = Vec::new();
        let mut stop = false;
        // A violation found in this level does not cut it short: the level is finished, so
        // every property violated at this depth is found (and with it its shortest path).
        for i in 0..level.len() {
            let (state, parent) = level.get(i);
            actions.clear();
            model.actions(&state, &mut actions);
            for action in actions.drain(..) {
                let Some(succ) = model.next_state(&state, action) else {
                    continue;
                };
                if !model.within_boundary(&succ) {
                    continue;
                }
                *generated += 1;
                let k = self.key(&succ);
                let to = owner(k, self.peers);
                if to == self.index {
                    self.owned.borrow_mut().receive(k, parent, succ);
                } else {
                    self.stats.sent += 1;
                    if !self.local.contains(&to) {
                        self.stats.bytes_sent += bincode::serialized_size(&succ).unwrap_or(0);
                    }
                    x.succ_in.send((k, parent, succ));
                }
            }
            if i % 64 == 63 {
                // Let the successors flow to their owners while the level is expanded.
                x.worker.step();
                let all = before + *generated * self.peers as u64;
                if self.max_states.is_some_and(|m| all >= m as u64) || self.deadline.late() {
                    stop = true;
                    break;
                }
            }
        }
        self.settle(x);
        stop || self.deadline.late()
    }

    /// Broadcast this worker's level and read every worker's.
    fn agree(&mut self, x: &mut Handles<'_>, generated: u64, stop: bool) -> Agreed {
        let (new, discoveries) = {
            let mut o = self.owned.borrow_mut();
            (
                std::mem::take(&mut o.new),
                std::mem::take(&mut o.discoveries),
            )
        };
        x.ctl_in.send(Control::Level {
            new,
            generated,
            discoveries,
            stop,
        });
        self.settle(x);
        let mut agreed = Agreed {
            new: 0,
            generated: 0,
            discoveries: BTreeMap::new(),
            stop: false,
        };
        for c in self.received(x) {
            let Control::Level {
                new,
                generated,
                discoveries,
                stop,
            } = c
            else {
                unreachable!("only level ends are sent while the levels are agreed")
            };
            agreed.new += new;
            agreed.generated += generated;
            agreed.stop |= stop;
            for (p, k, parent) in discoveries {
                let least = agreed.discoveries.entry(p).or_insert((k, parent));
                if k < least.0 {
                    *least = (k, parent);
                }
            }
        }
        agreed
    }

    /// The chain of keys from an initial state to each discovery, one round per step back:
    /// every worker answers for the keys it owns.
    fn chains(
        &mut self,
        x: &mut Handles<'_>,
        found: &[(usize, u64, u64)],
    ) -> Vec<(usize, Vec<u64>)> {
        let mut chains: Vec<(usize, Vec<u64>)> = found
            .iter()
            .map(|&(p, k, parent)| (p, vec![parent, k]))
            .collect();
        loop {
            let wanted: std::collections::BTreeSet<u64> = chains
                .iter()
                .map(|(_, c)| c[0])
                .filter(|&k| k != 0)
                .collect();
            if wanted.is_empty() {
                break;
            }
            {
                let o = self.owned.borrow();
                for &k in wanted
                    .iter()
                    .filter(|&&k| owner(k, self.peers) == self.index)
                {
                    let parent = o
                        .visited
                        .word_of(k)
                        .expect("every key on a parent chain was visited by its owner");
                    x.ctl_in.send(Control::Parent { key: k, parent });
                }
            }
            self.settle(x);
            let answers: BTreeMap<u64, u64> = self
                .received(x)
                .into_iter()
                .filter_map(|c| match c {
                    Control::Parent { key, parent } => Some((key, parent)),
                    _ => None,
                })
                .collect();
            for (_, chain) in &mut chains {
                if chain[0] != 0 {
                    let parent = answers[&chain[0]];
                    chain.insert(0, parent);
                }
            }
        }
        for (_, chain) in &mut chains {
            chain.remove(0);
        }
        chains
    }

    /// Every worker's figures to every process's lead.
    fn finish(&mut self, x: &mut Handles<'_>) {
        {
            let o = self.owned.borrow();
            self.stats.distinct = o.visited.len();
            self.stats.table_bytes = o.visited.bytes();
        }
        x.ctl_in.send(Control::Done(self.stats.clone()));
        self.settle(x);
        let mut all: Vec<WorkerStats> = self
            .received(x)
            .into_iter()
            .filter_map(|c| match c {
                Control::Done(s) => Some(s),
                _ => None,
            })
            .collect();
        all.sort_by_key(|s| s.worker);
        if self.lead() {
            *self.measured.workers.lock().expect("workers lock") = all;
        }
    }

    /// The control messages of the time just settled (a later time's stay in the inbox).
    fn received(&self, x: &Handles<'_>) -> Vec<Control> {
        let mut inbox = x.inbox.borrow_mut();
        let (now, later): (Vec<_>, Vec<_>) =
            inbox.drain(..).partition(|(t, _)| *t + 1 == self.time);
        *inbox = later;
        now.into_iter().map(|(_, c)| c).collect()
    }

    /// Close the current time and wait until every worker has received all of it.
    fn settle(&mut self, x: &mut Handles<'_>) {
        self.time += 1;
        x.succ_in.advance_to(self.time);
        x.ctl_in.advance_to(self.time);
        let waiting = Instant::now();
        while x.probe.less_than(&self.time) {
            x.worker.step_or_park(Some(Duration::from_millis(1)));
        }
        self.stats.waiting_seconds += waiting.elapsed().as_secs_f64();
    }
}

/// A worker's handles on the dataflow.
struct Handles<'a> {
    worker: &'a mut timely::worker::Worker,
    succ_in: &'a mut InputHandleVec<u64, Succ>,
    ctl_in: &'a mut InputHandleVec<u64, Control>,
    probe: &'a ProbeHandle<u64>,
    inbox: &'a Rc<RefCell<Vec<(u64, Control)>>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::dfs::tests::bound;
    use raft_model::model::{ModelConfig, RaftModel};
    use std::collections::HashSet;

    /// The engine on `cfg` with `threads` workers in this process: distinct states,
    /// violated properties with their path lengths, witnesses, and whether it completed.
    fn owned_run(
        cfg: &ModelConfig,
        symmetry: bool,
        threads: usize,
    ) -> (usize, BTreeMap<&'static str, usize>, bool) {
        use stateright::Checker;
        let options = Options {
            symmetry,
            threads,
            cluster: None,
            limits: Limits::default(),
        };
        let (checker, measured) = spawn(cfg.clone().into_model(), options);
        let checker = checker.join();
        let workers = measured.workers.lock().unwrap().clone();
        assert_eq!(workers.len(), threads, "every worker reports");
        assert_eq!(
            workers.iter().map(|w| w.distinct).sum::<usize>(),
            checker.unique_state_count(),
            "the workers' distinct states add up to the run's: nothing is explored twice"
        );
        let found = checker
            .discoveries()
            .into_iter()
            .map(|(n, p)| (n, p.into_actions().len()))
            .collect();
        (
            checker.unique_state_count(),
            found,
            !measured.incomplete.load(Ordering::Relaxed),
        )
    }

    /// On small bounds and mutants, at 1 and 2 workers, with symmetry and without: the compact
    /// BFS's distinct states (when it completes), and discoveries at the same depths.
    #[test]
    fn the_same_states_and_discoveries_as_the_compact_bfs() {
        use raft_model::mutant::Mutant;
        use stateright::Checker;
        let cases = [
            (bound(2, 2, 1, true), false),
            (bound(2, 2, 1, true), true),
            (bound(3, 1, 0, false), true),
            (
                ModelConfig {
                    mutant: Some(Mutant::VoteWithoutLogCheck),
                    ..bound(3, 2, 0, false)
                },
                false,
            ),
            (
                ModelConfig {
                    mutant: Some(Mutant::VoteTwice),
                    ..bound(3, 2, 0, false)
                },
                true,
            ),
        ];
        for (cfg, symmetry) in cases {
            let bfs = crate::engine::bfs::spawn(
                cfg.clone().into_model(),
                crate::engine::bfs::Options {
                    symmetry,
                    threads: 1,
                    limits: Limits::default(),
                },
            )
            .join();
            let expected: BTreeMap<&str, usize> = bfs
                .discoveries()
                .into_iter()
                .map(|(n, p)| (n, p.into_actions().len()))
                .collect();
            let mutant = cfg.mutant.is_some();
            for threads in [1, 2] {
                let (distinct, found, complete) = owned_run(&cfg, symmetry, threads);
                let tag = format!("{cfg:?} symmetry {symmetry}, {threads} worker(s)");
                assert!(complete, "{tag}");
                if mutant {
                    // Both stop at the first level with a violation (the compact BFS may stop
                    // it part-way): what both found was found at the same depth.
                    let depth = violation(&cfg, &expected);
                    assert!(depth.is_some(), "{tag}: the mutant is caught");
                    assert_eq!(violation(&cfg, &found), depth, "{tag}");
                    for (name, len) in &expected {
                        if let Some(l) = found.get(name) {
                            assert_eq!(l, len, "{tag}: {name}");
                        }
                    }
                } else {
                    assert_eq!(distinct, bfs.unique_state_count(), "{tag}");
                    assert_eq!(found, expected, "{tag}");
                }
            }
        }
    }

    /// The compact BFS on `cfg` (one thread): distinct states and discoveries' lengths.
    /// The shortest violation's length among `found` (the Always properties of `cfg`).
    fn violation(cfg: &ModelConfig, found: &BTreeMap<&'static str, usize>) -> Option<usize> {
        use stateright::Model;
        cfg.clone()
            .into_model()
            .properties()
            .iter()
            .filter(|p| p.expectation == Expectation::Always)
            .filter_map(|p| found.get(p.name).copied())
            .min()
    }

    fn bfs_run(cfg: &ModelConfig, symmetry: bool) -> (usize, BTreeMap<&'static str, usize>) {
        use stateright::Checker;
        let bfs = crate::engine::bfs::spawn(
            cfg.clone().into_model(),
            crate::engine::bfs::Options {
                symmetry,
                threads: 1,
                limits: Limits::default(),
            },
        )
        .join();
        let found = bfs
            .discoveries()
            .into_iter()
            .map(|(n, p)| (n, p.into_actions().len()))
            .collect();
        (bfs.unique_state_count(), found)
    }

    /// The gate's quick configurations of up to 700,000 classes (14 of 18), with the gate's
    /// symmetry: at 1 and 2 workers, exactly the compact BFS's distinct states, and every
    /// witness at the same depth.
    #[test]
    fn the_quick_configurations_as_the_compact_bfs_explores_them() {
        let mut checked = 0;
        for q in crate::standard::quick() {
            let baseline = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../results")
                .join(format!("{}.json", q.name));
            let text = std::fs::read_to_string(&baseline).expect("the gate's baseline");
            let report: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            if report["unique_states"].as_u64().expect("a count") > 700_000 {
                continue;
            }
            let (distinct, found) = bfs_run(&q.bound, q.symmetry);
            for threads in [1, 2] {
                let (d, f, complete) = owned_run(&q.bound, q.symmetry, threads);
                assert!(complete, "{}", q.name);
                assert_eq!(d, distinct, "{} at {threads} worker(s)", q.name);
                assert_eq!(f, found, "{} at {threads} worker(s)", q.name);
            }
            checked += 1;
        }
        assert_eq!(
            checked, 14,
            "the quick configurations of up to 700,000 classes"
        );
    }

    /// Every mutant of the catalogue on its bound, at 2 workers: caught, first at the depth
    /// the compact BFS first catches it, and every property both found violated at the same
    /// depth.
    #[test]
    fn the_catalogue_is_caught_at_the_compact_bfs_depths() {
        for case in crate::catalogue::catalogue() {
            let (_, expected) = bfs_run(&case.bound, false);
            let (_, found, _) = owned_run(&case.bound, false, 2);
            let tag = format!("{:?}", case.mutant);
            let depth = violation(&case.bound, &expected);
            assert!(depth.is_some(), "{tag}: the compact BFS catches it");
            assert_eq!(violation(&case.bound, &found), depth, "{tag}");
            for (name, len) in &expected {
                if let Some(l) = found.get(name) {
                    assert_eq!(l, len, "{tag}: {name}");
                }
            }
        }
    }

    fn roundtrip(s: &RaftState) -> RaftState {
        bincode::deserialize(&bincode::serialize(s).expect("serializes")).expect("deserializes")
    }

    /// The states of `model` in level order, each once (the first 300,000 or so).
    fn states(model: &RaftModel) -> Vec<RaftState> {
        let mut seen = HashSet::new();
        let mut all: Vec<RaftState> = model
            .init_states()
            .into_iter()
            .filter(|s| model.within_boundary(s) && seen.insert(key(s, false)))
            .collect();
        let mut at = 0;
        while at < all.len() && all.len() < 300_000 {
            for (_, n) in model.next_steps(&all[at]) {
                if model.within_boundary(&n) && seen.insert(key(&n, false)) {
                    all.push(n);
                }
            }
            at += 1;
        }
        all
    }

    /// A state sent to a worker of another process arrives as the same state: equal, the
    /// same key with symmetry or not, and the same successors (a history arrives as its
    /// tester's calls, replayed).
    #[test]
    fn a_state_arrives_as_it_was_sent() {
        let featured = ModelConfig {
            values: 2,
            read_index: true,
            max_snapshots: 1,
            max_transfers: 1,
            ..bound(2, 1, 1, true)
        };
        let membership = ModelConfig {
            max_config_changes: 1,
            ..bound(2, 1, 0, false)
        };
        for cfg in [bound(2, 2, 0, true), featured, membership] {
            let model = cfg.clone().into_model();
            let all = states(&model);
            assert!(all.len() > 1000, "{cfg:?}: {} states", all.len());
            // Every 7th state (the whole check takes minutes): every depth, every feature.
            for s in all.iter().step_by(7) {
                let r = roundtrip(s);
                assert!(r == *s, "{cfg:?}: the state arrives equal");
                for symmetry in [false, true] {
                    assert_eq!(key(&r, symmetry), key(s, symmetry), "{cfg:?}");
                }
                let next = |s: &RaftState| -> Vec<u64> {
                    model
                        .next_steps(s)
                        .iter()
                        .map(|(_, n)| key(n, false))
                        .collect()
                };
                assert_eq!(next(&r), next(s), "{cfg:?}: the same successors");
            }
        }
    }
}
