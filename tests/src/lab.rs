//! The 6.5840 Raft lab's test harness (`config.go`), over the simulator: `checkOneLeader`,
//! `checkTerms`, `checkNoLeader`, `nCommitted`, `one`, `wait`, `crash1`, `start1`, `connect`,
//! `disconnect`, `setunreliable`, `setlongreordering`, `rpcTotal`, `bytesTotal`. Time is the
//! simulator's virtual time; every wait is `Sim::run_for`. Every helper returns `Err` with the
//! lab's failure message (or the simulator's safety violation) instead of calling `t.Fatalf`.

use crate::sim::disk::DiskFaults;
use crate::sim::network::NetParams;
use crate::sim::{ms, Sim, SimOptions};
use raft_impl::core::{Index, Term};
use raft_impl::kv::{Command, Op};
use std::collections::BTreeMap;
use std::time::Duration;

/// The lab's `RaftElectionTimeout`: the tests' unit of patience (not the servers' timeout).
pub const ELECTION_TIMEOUT: Duration = Duration::from_millis(1000);

pub type LabResult<T = ()> = Result<T, String>;

/// What a suite test is run with.
#[derive(Clone, Copy, Debug, Default)]
pub struct Params {
    pub seed: u64,
    /// The fake disk's deliberate durability bug (see `sim::disk`).
    pub faults: DiskFaults,
}

/// A lab command: the lab proposes plain values; ours are key-value puts whose value is the
/// lab's value (the KV store applies them, the tests look at the log).
pub fn cmd(value: impl ToString) -> Command {
    Command {
        client_id: 0,
        seq: 0,
        op: Op::Put {
            key: "lab".into(),
            value: value.to_string(),
        },
    }
}

pub struct Lab {
    pub sim: Sim,
    /// The test's own randomness (separate from the simulator's, both from the seed).
    pub rng: fastrand::Rng,
    counter: u64,
}

impl Lab {
    pub fn new(servers: usize, params: &Params) -> Self {
        Self::with_options(SimOptions::new(servers, params.seed), params)
    }

    /// A lab over a simulator configured by `opts` (its seed and disk faults from `params`).
    pub fn with_options(mut opts: SimOptions, params: &Params) -> Self {
        opts.seed = params.seed;
        opts.disk = params.faults;
        Lab {
            sim: Sim::new(&opts),
            rng: fastrand::Rng::with_seed(params.seed ^ 0x5eed_1ab5),
            counter: 0,
        }
    }

    pub fn n(&self) -> usize {
        self.sim.servers()
    }

    /// A fresh value no other command of this test has (the lab uses `rand.Int()`).
    pub fn value(&mut self) -> String {
        self.counter += 1;
        format!("{}-{}", self.counter, self.rng.u32(..))
    }

    pub fn sleep(&mut self, d: Duration) -> LabResult {
        self.sim.run_for(d)
    }

    /// Lets the simulated clients finish (within `limit` of virtual time; `what` says whose
    /// clients, on failure), then the followers learn the last commit index from the next
    /// heartbeat, and the history is checked.
    pub fn finish_clients(
        &mut self,
        limit: Duration,
        what: impl FnOnce(&Self) -> String,
    ) -> LabResult {
        let end = self.sim.now + limit;
        while !self.sim.clients_done() && self.sim.now < end {
            self.sleep(ms(100))?;
        }
        if !self.sim.clients_done() {
            return Err(format!("the clients did not finish: {}", what(self)));
        }
        self.sleep(ms(500))?;
        self.sim.check()
    }

    /// Writes the simulated clients had acknowledged after virtual time `t`.
    pub fn acked_since(&self, t: Duration) -> usize {
        self.sim
            .clients
            .iter()
            .flat_map(|c| &c.acked)
            .filter(|(at, _)| *at > t)
            .count()
    }

    pub fn connect(&mut self, i: usize) {
        self.sim.connect(i);
    }

    pub fn disconnect(&mut self, i: usize) {
        self.sim.disconnect(i);
    }

    /// Lab `crash1`: disconnect and kill; the disk keeps what was synced.
    pub fn crash1(&mut self, i: usize) {
        self.sim.disconnect(i);
        self.sim.crash(i);
    }

    /// Lab `start1`: (re)start server `i` from its disk (still disconnected).
    pub fn start1(&mut self, i: usize) {
        self.sim.restart(i);
    }

    pub fn set_unreliable(&mut self, unreliable: bool) {
        let mut p: NetParams = self.sim.net.params;
        p.unreliable = unreliable;
        self.sim.set_net(p);
    }

    pub fn set_long_reordering(&mut self, long: bool) {
        let mut p: NetParams = self.sim.net.params;
        p.long_reordering = long;
        self.sim.set_net(p);
    }

    pub fn rpc_total(&self) -> u64 {
        self.sim.net.rpcs
    }

    pub fn bytes_total(&self) -> u64 {
        self.sim.net.bytes
    }

    /// Lab `Start` on server `i` (whether or not it is connected).
    pub fn start(&mut self, i: usize, command: Command) -> Option<(Index, Term)> {
        self.sim.start(i, command)
    }

    /// Lab `GetState`.
    pub fn state(&self, i: usize) -> Option<(Term, bool)> {
        self.sim.state(i)
    }

    /// Lab `checkOneLeader`: within ~5 s, exactly one connected leader in the newest term.
    pub fn check_one_leader(&mut self) -> LabResult<usize> {
        for _ in 0..10 {
            let d = ms(450 + self.rng.u64(0..100));
            self.sleep(d)?;
            let mut leaders: BTreeMap<Term, Vec<usize>> = BTreeMap::new();
            for i in 0..self.n() {
                if self.sim.connected(i) {
                    if let Some((term, true)) = self.state(i) {
                        leaders.entry(term).or_default().push(i);
                    }
                }
            }
            for (term, ls) in &leaders {
                if ls.len() > 1 {
                    return Err(format!("term {term} has {} (>1) leaders", ls.len()));
                }
            }
            if let Some((_, ls)) = leaders.last_key_value() {
                return Ok(ls[0]);
            }
        }
        Err("expected one leader, got none".into())
    }

    /// Lab `checkTerms`: connected servers agree on the term.
    pub fn check_terms(&self) -> LabResult<Term> {
        let mut term = None;
        for i in 0..self.n() {
            if self.sim.connected(i) {
                if let Some((t, _)) = self.state(i) {
                    match term {
                        None => term = Some(t),
                        Some(t0) if t0 != t => return Err("servers disagree on term".into()),
                        _ => {}
                    }
                }
            }
        }
        Ok(term.unwrap_or(0))
    }

    /// Lab `checkNoLeader`: no connected server thinks it leads.
    pub fn check_no_leader(&self) -> LabResult {
        for i in 0..self.n() {
            if self.sim.connected(i) && self.state(i).is_some_and(|(_, l)| l) {
                return Err(format!(
                    "expected no leader among connected servers, but {i} claims to be leader"
                ));
            }
        }
        Ok(())
    }

    /// Lab `nCommitted`.
    pub fn n_committed(&self, index: Index) -> LabResult<(usize, Option<Command>)> {
        self.sim.check()?;
        self.sim.n_committed(index)
    }

    /// Lab `one`: submit `command` to whichever connected server leads, until at least
    /// `expected` servers applied it (10 s; 2 s per attempt; retry with `retry`).
    pub fn one(&mut self, command: Command, expected: usize, retry: bool) -> LabResult<Index> {
        let mut one = One::new(command, expected, retry, self.sim.now);
        loop {
            match one.poll(self)? {
                Poll::Done(index) => return Ok(index),
                Poll::Wait(until) => self.sim.run_until(until)?,
            }
        }
    }

    /// Lab `wait`: until `n` servers applied `index` (or a term passed `start_term`: `None`).
    pub fn wait(
        &mut self,
        index: Index,
        n: usize,
        start_term: Option<Term>,
    ) -> LabResult<Option<Command>> {
        let mut to = ms(10);
        for _ in 0..30 {
            let (nd, _) = self.n_committed(index)?;
            if nd >= n {
                break;
            }
            self.sleep(to)?;
            if to < ELECTION_TIMEOUT {
                to *= 2;
            }
            if let Some(start) = start_term {
                if (0..self.n()).any(|i| self.state(i).is_some_and(|(t, _)| t > start)) {
                    return Ok(None);
                }
            }
        }
        let (nd, cmd) = self.n_committed(index)?;
        if nd < n {
            return Err(format!("only {nd} decided for index {index}; wanted {n}"));
        }
        Ok(cmd)
    }
}

/// What a polled lab activity wants next.
pub enum Poll<T> {
    Done(T),
    /// Call again at this virtual time.
    Wait(Duration),
}

/// Lab `one` as a state machine, so that several can run "concurrently" (UnreliableAgree).
pub struct One {
    command: Command,
    expected: usize,
    retry: bool,
    t0: Duration,
    starts: usize,
    waiting: Option<(Index, Duration)>,
}

impl One {
    pub fn new(command: Command, expected: usize, retry: bool, now: Duration) -> Self {
        One {
            command,
            expected,
            retry,
            t0: now,
            starts: 0,
            waiting: None,
        }
    }

    pub fn poll(&mut self, lab: &mut Lab) -> LabResult<Poll<Index>> {
        let now = lab.sim.now;
        let failed = || {
            let v = match &self.command.op {
                Op::Put { value, .. } => value.chars().take(40).collect::<String>(),
                other => format!("{other:?}"),
            };
            format!("one({v}) failed to reach agreement\n{}", lab.sim.describe())
        };
        if let Some((index, t1)) = self.waiting {
            if now < t1 + ms(2000) {
                let (nd, cmd1) = lab.n_committed(index)?;
                if nd > 0 && nd >= self.expected && cmd1.as_ref() == Some(&self.command) {
                    return Ok(Poll::Done(index));
                }
                return Ok(Poll::Wait(now + ms(20)));
            }
            if !self.retry {
                return Err(failed());
            }
            self.waiting = None;
        }
        if now >= self.t0 + ms(10_000) {
            return Err(failed());
        }
        for _ in 0..lab.n() {
            self.starts = (self.starts + 1) % lab.n();
            if lab.sim.connected(self.starts) {
                if let Some((index, _)) = lab.start(self.starts, self.command.clone()) {
                    self.waiting = Some((index, now));
                    return self.poll(lab);
                }
            }
        }
        Ok(Poll::Wait(now + ms(50)))
    }
}
