//! Liveness, bounded: "Progress When Faults Stop".
//!
//! From a reachable state, let every fault stop: no crash, no loss, no duplicate, every crashed
//! server restarted from storage (the model already shows a crashed server with the state it
//! restarts with). Then run one fixed, fair schedule — the *continuation* — in rounds:
//!
//! 1. deliver every message in flight between servers, and every message those deliveries send,
//!    until the network is empty (client traffic is left out: clients are observers); a
//!    leader's disk completes its written-behind entries right after the step that wrote them;
//! 2. if every server has converged, stop: the property holds in this state;
//! 3. otherwise, if a leader of the highest term exists, it sends AppendEntries to every peer
//!    (its heartbeat) — the first time, if it holds no entry of its own term, after the
//!    clients still waiting for a reply have retried their requests with it; if none does, the server with the most up-to-date log (§5.4.1; the
//!    highest term, then the lowest id, among equals) has its election timeout (or, if it is
//!    the leader of an earlier term, which has no election timer, its heartbeat, which meets
//!    the higher term); with CheckQuorum, every other server still in a lease (it knows a
//!    leader, so it would ignore the requests for votes) first has its election timeout, or,
//!    a leader of an earlier term, its heartbeat: time passes for every server.
//!
//! With membership changes, the cluster is what an operator sees in the most up-to-date log
//! (§5.4.1): the members of its latest configuration, and, while that configuration is not
//! known committed there, those of the one before (they may still be needed to commit it).
//! A server outside the cluster has been removed, and its operator stops it: it neither
//! sends nor receives, and "every server" below means every server of the cluster (convergence
//! asks it of the members of the leader's configuration). Only a server that may campaign
//! (`Server::may_campaign`) is chosen to time out.
//!
//! Converged: one server is leader of the highest term, every other server is its follower
//! (role follower, leader_id the leader: §5.2, a candidate that hears from the leader of its
//! term steps down), every server is in that term, holds the
//! leader's log (followed, possibly, by uncommitted entries of earlier terms that only a new
//! entry of the leader would overwrite: an empty AppendEntries deletes nothing, §5.3), and has
//! at least the leader's commit_index (a new leader learns what is committed only with an entry
//! of its own, §5.4.2), all of it applied; and if the leader holds an entry of its own term,
//! everything up to its last entry is committed.
//!
//! Why this is sound as a liveness check. *No false alarm*: with the correct rules the schedule
//! always converges within the round limit. The chosen candidate's log is at least as
//! up-to-date as every other (so no vote is refused for its log); a first election can fail
//! only because some server is in a higher term or already voted in the new one, and the
//! candidate then adopts that term, so a second or third election wins; the leader's heartbeat
//! rounds repair each follower (a rejection moves next_index back and probes again at once) and
//! carry at least one entry per round; commitment follows one round after replication. The
//! round limit, [`round_limit`], is that count with room to spare. *A real bug*: if the
//! continuation does not converge, then in a run with the bound's own faults followed by
//! none, with a scheduler as fair as one can be, the cluster makes no progress within that
//! many rounds; that is the paper's liveness claim failing ("available as long as a majority of
//! the servers are operational and can communicate", §5.6), shown on one concrete schedule.
//! The check looks at a continuation, never at a cycle of the explored graph, so stateright's
//! documented limit of `eventually` properties (no verdict on cycles) does not apply.
//!
//! The continuation runs outside the model's bounds (terms and log lengths may grow past them):
//! it asks what the protocol does next, not what the bounded search explores.

use crate::model::adapter::actor::RaftActor;
use crate::model::adapter::node::NodeState;
use crate::model::judge::register::{Cmd, Msg};
use crate::model::presentation::display::{actor_name, LogDisplay};
use crate::model::{RaftModel, RaftState};
use raft_core::{Event, Message, NodeId, Role, Server};
use std::collections::VecDeque;
use std::fmt::Write as _;

/// Deliveries allowed in one continuation (a mutant can make servers answer each other
/// forever; the correct protocol needs a few dozen).
const MAX_DELIVERIES: usize = 10_000;

/// What the continuation from one state did.
#[derive(Clone, Debug)]
pub struct Continuation {
    /// It converged (the property holds).
    pub converged: bool,
    /// The continuation's steps, in the counterexample's words, then the verdict.
    pub steps: Vec<String>,
}

pub use crate::model::config::round_limit;

/// Whether `state` makes progress when faults stop (the property's condition). A server that
/// the core refused (`fault`) is reported by "Core Invariant" instead: such states pass here.
///
/// The continuation breaks ties by server id (which candidate times out, in which order
/// messages are delivered), so it runs on a canonical renaming of what it reads
/// (`symmetry::continuation_order`): the verdict is then the same for every renaming of a
/// state, as symmetry reduction requires of a property, and a function of what the
/// continuation reads alone.
///
/// So it is memoized on that (`memo.rs`): most distinct states differ only in what it does not
/// read. First by a key that needs no renaming (cheap: cached hashes), then by the renamed
/// input itself (renamings of one input share it).
pub(crate) fn progress_when_faults_stop(model: &RaftModel, state: &RaftState) -> bool {
    let outer = (input_hash(model, state, 1), input_hash(model, state, 2));
    if let Some(verdict) = model.liveness_memo.get(outer) {
        return verdict;
    }
    let canonical = crate::model::reductions::symmetry::rename_to_order(
        state,
        &continuation_order(model, state),
    );
    let inner = (
        renamed_input_hash(model, &canonical, 3),
        renamed_input_hash(model, &canonical, 4),
    );
    let verdict = match model.liveness_memo.get(inner) {
        Some(verdict) => verdict,
        None => {
            let verdict = continuation_of(model, &canonical, false).converged;
            model.liveness_memo.put(inner, verdict);
            verdict
        }
    };
    model.liveness_memo.put(outer, verdict);
    verdict
}

/// A hash (seeded by `seed`) of everything [`continuation_of`] reads from `state`: each
/// server's core state and whether it stopped, the Raft messages in flight between servers,
/// and how far each client got.
fn renamed_input_hash(model: &RaftModel, state: &RaftState, seed: u64) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = ahash::RandomState::with_seeds(seed, 0x5eed, 17, 4242).build_hasher();
    for actor in state.actor_states() {
        match actor {
            NodeState::Server(s) => {
                s.fault.is_some().hash(&mut h);
                s.server.hash(&mut h);
            }
            NodeState::Client(c) => c.seq.hash(&mut h),
        }
    }
    hash_raft_messages(model, state, &mut h);
    h.finish()
}

/// Hash the Raft messages in flight between servers, in the network's order.
fn hash_raft_messages(model: &RaftModel, state: &RaftState, h: &mut impl std::hash::Hasher) {
    use std::hash::Hash;
    let n = model.cfg.servers;
    for env in state.network.iter_deliverable() {
        let (src, dst) = (usize::from(env.src), usize::from(env.dst));
        if let Msg::Raft(m) = env.msg {
            if src < n && dst < n {
                (src, dst, m).hash(h);
            }
        }
    }
}

/// The order of the servers in the state the continuation runs from (see
/// [`progress_when_faults_stop`]).
fn continuation_order(model: &RaftModel, state: &RaftState) -> Vec<usize> {
    // Configurations tell servers apart: no renaming then (symmetry is refused with them).
    if model.cfg.max_config_changes > 0 {
        (0..model.cfg.servers).collect()
    } else {
        crate::model::reductions::symmetry::continuation_order(state)
    }
}

/// A hash (seeded by `seed`) that determines what [`continuation_of`] reads, before renaming:
/// every actor's state (by its cached hash: the server's core state, whether it stopped, and
/// more; a client's progress) and the Raft messages in flight between servers. The
/// continuation's order is a function of these too.
fn input_hash(model: &RaftModel, state: &RaftState, seed: u64) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = ahash::RandomState::with_seeds(seed, 0x5eed, 17, 4242).build_hasher();
    for slot in &state.actors {
        slot.state.hash(&mut h);
    }
    hash_raft_messages(model, state, &mut h);
    h.finish()
}

/// Run the continuation from `state` (in its canonical renaming); `explain` records its steps.
pub fn continuation(model: &RaftModel, state: &RaftState, explain: bool) -> Continuation {
    let canonical = crate::model::reductions::symmetry::rename_to_order(
        state,
        &continuation_order(model, state),
    );
    let mut c = continuation_of(model, &canonical, explain);
    if explain && canonical != *state {
        c.steps.insert(
            0,
            "(shown for the state with its servers renamed to the canonical order, whose \
             verdict every renaming shares)"
                .into(),
        );
    }
    c
}

fn continuation_of(model: &RaftModel, state: &RaftState, explain: bool) -> Continuation {
    let n = model.cfg.servers;
    let mut servers: Vec<Server<Cmd>> = Vec::with_capacity(n);
    for actor in state.actor_states().take(n) {
        match actor {
            NodeState::Server(s) if s.fault.is_none() => servers.push(s.server.clone()),
            _ => {
                return Continuation {
                    converged: true,
                    steps: vec!["a server stopped on a core error (see Core Invariant)".into()],
                }
            }
        }
    }
    let cfgs: Vec<_> = model.actors[..n]
        .iter()
        .map(|a| match a {
            RaftActor::Server { cfg, .. } => cfg,
            RaftActor::Client { .. } => unreachable!("actors are numbered servers first"),
        })
        .collect();
    let mut run = Run {
        servers,
        outside: vec![false; n],
        network: VecDeque::new(),
        steps: Vec::new(),
        explain,
        deliveries: 0,
    };
    // In a fixed order: stateright's unordered network iterates in an order that depends on
    // how the state was reached (and on a per-process hasher), and a mutant's verdict may
    // depend on the order of delivery; sorted, the verdict is a function of the state alone
    // (symmetry reduction, which keeps one state per renaming class, requires it).
    let mut in_flight: Vec<(NodeId, NodeId, &Message<Cmd>)> = state
        .network
        .iter_deliverable()
        .filter_map(|env| {
            let (src, dst) = (usize::from(env.src), usize::from(env.dst));
            match env.msg {
                Msg::Raft(m) if src < n && dst < n => {
                    Some((NodeId(src as u64), NodeId(dst as u64), m))
                }
                _ => None,
            }
        })
        .collect();
    in_flight.sort();
    for (src, dst, m) in in_flight {
        run.network.push_back((src, dst, m.clone()));
    }
    if explain {
        run.steps
            .push("then every fault stops (no crash, no loss; a crashed server restarts):".into());
    }
    // The operation each waiting client has in progress.
    let pending: Vec<Cmd> = model.actors[n..]
        .iter()
        .zip(state.actor_states().skip(n))
        .filter_map(|(actor, s)| match (actor, s.as_client()) {
            (RaftActor::Client { index, ops, .. }, Some(c)) => {
                ops.get(usize::from(c.seq)).map(|op| Cmd {
                    client: *index,
                    seq: c.seq,
                    op: *op,
                })
            }
            _ => None,
        })
        .collect();
    let mut proposed = false;
    let longest = run
        .servers
        .iter()
        .map(|s| usize::try_from(s.last_log_index()).unwrap_or(usize::MAX))
        .max()
        .unwrap_or(0)
        + pending.len();
    for round in 0..round_limit(longest) {
        run.outside = run.outside_the_cluster(&cfgs);
        if let Err(why) = run.deliver_all(&cfgs) {
            return run.verdict(false, why);
        }
        if let Some(why) = run.divergence(&cfgs) {
            if round + 1 == round_limit(longest) {
                return run.verdict(false, format!("no progress: {why}"));
            }
        } else {
            return run.verdict(true, "converged".into());
        }
        let top = run.top_term(&cfgs);
        let leader = (0..n).find(|&i| {
            run.servers[i].role == Role::Leader && Some(run.servers[i].current_term()) == top
        });
        let result = match leader {
            Some(l) if !proposed && !pending.is_empty() && !run.holds_own_term_entry(l) => {
                // A leader commits earlier-term entries only with one of its own (§5.4.2):
                // the clients still waiting retry their requests with it, as they would.
                proposed = true;
                pending
                    .iter()
                    .try_for_each(|cmd| {
                        run.step(
                            &cfgs,
                            l,
                            Event::Propose(*cmd),
                            &format!("client retries {cmd}"),
                        )
                    })
                    .and_then(|()| run.step(&cfgs, l, Event::Heartbeat, "heartbeat"))
            }
            Some(l) => run.step(&cfgs, l, Event::Heartbeat, "heartbeat"),
            None => {
                let c = (0..n)
                    .filter(|&i| !run.outside[i] && run.servers[i].may_campaign(cfgs[i]))
                    .max_by_key(|&i| {
                        let s = &run.servers[i];
                        (
                            s.last_log_term(),
                            s.last_log_index(),
                            s.current_term(),
                            std::cmp::Reverse(i),
                        )
                    })
                    .unwrap_or(0);
                // With CheckQuorum, a server that still knows a leader ignores requests for
                // votes (§9.6): time passes for it too. A follower's lease ends with its own
                // election timeout; a leader of an earlier term sends its heartbeat, which
                // meets the higher term.
                let in_lease: Vec<usize> = (0..n)
                    .filter(|&j| j != c && cfgs[j].check_quorum && !run.outside[j])
                    .filter(|&j| run.servers[j].leader_id.is_some())
                    .collect();
                let ended = in_lease.into_iter().try_for_each(|j| {
                    if run.servers[j].role == Role::Leader {
                        run.step(&cfgs, j, Event::Heartbeat, "heartbeat")
                    } else {
                        run.step(&cfgs, j, Event::ElectionTimeout, "election timeout")
                    }
                });
                ended.and_then(|()| {
                    if run.servers[c].role == Role::Leader {
                        // A leader of an earlier term has no election timer: its heartbeat
                        // meets the higher term and it steps down (§5.1).
                        run.step(&cfgs, c, Event::Heartbeat, "heartbeat")
                    } else {
                        run.step(&cfgs, c, Event::ElectionTimeout, "election timeout")
                    }
                })
            }
        };
        if let Err(why) = result {
            return run.verdict(false, why);
        }
    }
    run.verdict(false, "no progress".into())
}

struct Run {
    servers: Vec<Server<Cmd>>,
    /// Servers removed from the cluster (see the module's comment): stopped.
    outside: Vec<bool>,
    network: VecDeque<(NodeId, NodeId, Message<Cmd>)>,
    steps: Vec<String>,
    explain: bool,
    deliveries: usize,
}

impl Run {
    fn name(&self, id: NodeId) -> String {
        actor_name(self.servers.len(), id.0 as usize)
    }

    fn verdict(mut self, converged: bool, why: String) -> Continuation {
        if self.explain {
            self.steps.push(why);
        }
        Continuation {
            converged,
            steps: self.steps,
        }
    }

    /// One core step on server `i`; its messages join the network (every copy: nothing is lost).
    fn step(
        &mut self,
        cfgs: &[&crate::model::ServerConfig],
        i: usize,
        event: Event<Cmd>,
        label: &str,
    ) -> Result<(), String> {
        let id = NodeId(i as u64);
        if self.explain && !label.is_empty() {
            self.steps.push(format!("{}: {label}", self.name(id)));
        }
        let out = self.servers[i]
            .handle(cfgs[i], event)
            .map_err(|e| format!("{} refused a step: {e}", self.name(id)))?;
        for (to, msg) in out.messages {
            if (to.0 as usize) < self.servers.len() && !self.outside[to.0 as usize] {
                self.network.push_back((id, to, msg));
            }
        }
        // Faults have stopped, so a leader's disk completes what it writes behind at once.
        let s = &self.servers[i];
        if s.awaits_persisted() {
            let event = Event::Persisted {
                term: s.last_log_term(),
                index: s.last_log_index(),
            };
            self.step(cfgs, i, event, "its disk makes its log durable")?;
        }
        Ok(())
    }

    fn deliver_all(&mut self, cfgs: &[&crate::model::ServerConfig]) -> Result<(), String> {
        while let Some((from, to, msg)) = self.network.pop_front() {
            if self.outside[to.0 as usize] || self.outside[from.0 as usize] {
                continue; // a stopped server
            }
            self.deliveries += 1;
            if self.deliveries > MAX_DELIVERIES {
                return Err(format!(
                    "no progress: more than {MAX_DELIVERIES} messages delivered"
                ));
            }
            if self.explain {
                let line = format!("{} → {}: {msg}", self.name(from), self.name(to));
                self.steps.push(line);
            }
            self.step(cfgs, to.0 as usize, Event::Receive { from, msg }, "")?;
        }
        Ok(())
    }

    fn holds_own_term_entry(&self, i: usize) -> bool {
        // A leader's entries of its term are the last of its log (or in its snapshot).
        let s = &self.servers[i];
        s.last_log_term() == s.current_term()
    }

    /// Which servers the operator has stopped: those outside the cluster of the most
    /// up-to-date log (see the module's comment). None without membership changes.
    fn outside_the_cluster(&self, cfgs: &[&crate::model::ServerConfig]) -> Vec<bool> {
        let Some(star) = (0..self.servers.len()).max_by_key(|&i| {
            let s = &self.servers[i];
            (
                s.last_log_term(),
                s.last_log_index(),
                s.current_term(),
                std::cmp::Reverse(i),
            )
        }) else {
            return Vec::new();
        };
        let s = &self.servers[star];
        let mut cluster: Vec<NodeId> = s.membership(cfgs[star]).members().collect();
        let latest = s.config_index();
        if latest > s.commit_index {
            cluster.extend(s.config_at(cfgs[star], latest - 1).members());
        }
        (0..self.servers.len())
            .map(|i| !cluster.contains(&NodeId(i as u64)))
            .collect()
    }

    /// The highest term in the cluster.
    fn top_term(&self, _cfgs: &[&crate::model::ServerConfig]) -> Option<raft_core::Term> {
        self.servers
            .iter()
            .zip(&self.outside)
            .filter(|(_, out)| !**out)
            .map(|(s, _)| s.current_term())
            .max()
    }

    /// Why the servers have not converged, or `None` if they have.
    fn divergence(&self, cfgs: &[&crate::model::ServerConfig]) -> Option<String> {
        let top = self.top_term(cfgs)?;
        let Some(l) = self
            .servers
            .iter()
            .position(|s| s.role == Role::Leader && s.current_term() == top)
        else {
            return Some(self.why(|| format!("no leader in term {top}")));
        };
        let leader = &self.servers[l];
        if leader.last_log_term() == top && leader.commit_index < leader.last_log_index() {
            return Some(self.why(|| {
                format!(
                    "leader {} (term {top}) holds an entry of its term but commit_index {} < \
                     last log index {}",
                    self.name(NodeId(l as u64)),
                    leader.commit_index,
                    leader.last_log_index()
                )
            }));
        }
        let members = leader.membership(cfgs[l]);
        for (i, s) in self.servers.iter().enumerate() {
            if !members.contains(NodeId(i as u64)) {
                continue; // outside the cluster
            }
            let not_following =
                i != l && (s.role != Role::Follower || s.leader_id != Some(NodeId(l as u64)));
            let other_term = s.current_term() != top;
            let lacks_log = !holds_log_of(s, leader);
            let behind = s.commit_index < leader.commit_index || s.last_applied != s.commit_index;
            if !(not_following || other_term || lacks_log || behind) {
                continue;
            }
            return Some(self.why(|| {
                let ln = self.name(NodeId(l as u64));
                let mut why = String::new();
                if not_following {
                    let known = s.leader_id.map_or("none".to_string(), |x| x.to_string());
                    let _ = write!(
                        why,
                        "a {:?} that does not follow {ln} (leader_id {known}); ",
                        s.role
                    );
                }
                if other_term {
                    let _ = write!(why, "term {} (leader's {top}); ", s.current_term());
                }
                if lacks_log {
                    let _ = write!(
                        why,
                        "log {} (leader {ln}'s {}); ",
                        LogDisplay(s),
                        LogDisplay(leader)
                    );
                }
                if behind {
                    let _ = write!(
                        why,
                        "commit_index {} / last_applied {} (leader's commit_index {}); ",
                        s.commit_index, s.last_applied, leader.commit_index
                    );
                }
                let why = why.trim_end_matches("; ");
                let next = leader
                    .leader
                    .progress
                    .get(&NodeId(i as u64))
                    .map(|g| format!(", leader's next_index for it {}", g.next_index))
                    .unwrap_or_default();
                format!("{} lags behind: {why}{next}", self.name(NodeId(i as u64)))
            }));
        }
        None
    }

    /// A reason, written out only when the steps are explained (otherwise no one reads it).
    fn why(&self, reason: impl FnOnce() -> String) -> String {
        if self.explain {
            reason()
        } else {
            String::new()
        }
    }
}

/// Whether `s` holds `leader`'s whole log, index by index, where either still holds entries
/// (a snapshot covers committed entries, the same on every server: compaction.rs).
fn holds_log_of(s: &Server<Cmd>, leader: &Server<Cmd>) -> bool {
    let from = s.snapshot_index().max(leader.snapshot_index());
    s.last_log_index() >= leader.last_log_index()
        && (from > leader.last_log_index() || s.term_at(from) == leader.term_at(from))
        && (from + 1..=leader.last_log_index()).all(|i| s.entry(i) == leader.entry(i))
}
