//! The replay of a merged run against the model.
//!
//! How a runtime step becomes model actions (`RaftModel::next_state`, never a copy of it):
//!
//! * `Receive{from, msg}` → `Deliver{from, node, msg}`; the message must be in the model's
//!   network (on a non-duplicating run a message received twice is not).
//! * `ElectionTimeout` → `Timeout(node, Election)`; `Resend{to}` → `Timeout(node, Send(to))`;
//!   `Persisted` → `Timeout(node, Persist)` (the model's disk makes the whole log durable; the
//!   runtime reports its last index too); `Heartbeat` → nothing by itself.
//! * The model drops the broadcast copies of requests (see `is_reply` in the actor adapter) and
//!   sends requests one peer at a time: after any step but a `Resend`, each request the record
//!   sent is replayed as `Timeout(node, Send(to))` from the state the step left, unless the
//!   model's step sent it itself (a pipelining leader's entries to a peer it is not probing:
//!   `Server::sends_move_next_index`).
//! * `Propose{command}` → the model's client sends `Request` and it is delivered. Each distinct
//!   runtime command becomes one model command (the k-th: client 0, seq k % 256, `Put(k / 256)`;
//!   `ReadIndex{command}`, a read: client 1 + k / 256's `Get`, seq k % 256, which the model,
//!   run with `read_index`, hands to its core as a read as the node does),
//!   and a retry (the same runtime command proposed again) the same one: the model, like the
//!   node, proposes it again and its sessions deduplicate it when applying. Logs and messages
//!   are compared after mapping model commands back to the runtime's.
//! * `Crash` → `Crash(node)`; `Restart` → `Recover(node)` (the first start: the initial state).
//! * Messages nothing will receive are dropped (the network is lossy), and so are the model's
//!   replies to its client, which the runtime has no counterpart of.
//!
//! After each step the node's state is compared field by field with the record, the messages
//! the model sent with the record's (as multisets), and every Always property is evaluated.

use super::merge::merge;
use super::record::{RunInfo, TraceEvent, TraceRecord};
use super::{describe_event, describe_msg};
use crate::model::{
    ClientOp, Cmd, Members, ModelConfig, Msg, NetworkKind, NodeState, RaftAction, RaftModel,
    RaftState, Timer,
};
use raft_core::{Entry, Message, NodeId, Payload, Server};
use serde::Serialize;
use stateright::actor::{ActorModelAction, Envelope, Id};
use stateright::{Expectation, Model, Property};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Debug};

/// What a conforming run amounted to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub nodes: usize,
    /// Trace records replayed.
    pub steps: usize,
    /// Model actions taken (deliveries, timeouts, drops, crashes, recoveries).
    pub actions: usize,
    /// Crash records replayed.
    pub crashes: usize,
}

/// The first step the model does not allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Position in the merged order (from 1).
    pub step: usize,
    pub node: NodeId,
    pub seq: u64,
    pub time_us: u64,
    pub event: String,
    /// One line per difference: what the model expected, what the trace shows.
    pub problems: Vec<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "step {} (node {} seq {}, t={}us): {}",
            self.step, self.node, self.seq, self.time_us, self.event
        )?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConformError {
    /// The traces do not describe one run (ids, seq, missing nodes).
    Invalid(String),
    /// No order of the records puts every receive after its send.
    NoCausalOrder(String),
    Mismatch(Mismatch),
}

impl fmt::Display for ConformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConformError::Invalid(s) => write!(f, "invalid traces: {s}"),
            ConformError::NoCausalOrder(s) => write!(f, "{s}"),
            ConformError::Mismatch(m) => write!(f, "MISMATCH at {m}"),
        }
    }
}

fn is_request<C>(msg: &Message<C>) -> bool {
    !msg.is_reply()
}

/// Model commands ↔ runtime commands.
struct Commands<C> {
    runtime: Vec<C>,
    /// The runtime's configuration entries, by the model's form of their configuration.
    configs: std::collections::BTreeMap<Members, C>,
    /// Each distinct runtime command (by its JSON) → its position in `runtime`.
    known: std::collections::BTreeMap<String, usize>,
}

impl<C: Clone + Serialize> Commands<C> {
    /// The model command of a runtime command: the same one for a retry (the same runtime
    /// command proposed again), so the model's sessions deduplicate it as the node's do.
    fn intern(&mut self, command: C) -> Result<Cmd, String> {
        let k = self.position(command)?;
        Ok(Cmd {
            client: 0,
            seq: (k % 256) as u8,
            op: ClientOp::Put((k / 256) as u8),
        })
    }

    /// The model command of a runtime read (`ReadIndex`): the k-th distinct runtime command
    /// is client `1 + k / 256`'s `Get` with seq `k % 256`, so that a read the leader proposes
    /// instead maps back to the runtime's command like any other entry.
    fn intern_read(&mut self, command: C) -> Result<Cmd, String> {
        let k = self.position(command)?;
        if k >= 255 * 256 {
            return Err("more than 65280 distinct commands in a run with reads".into());
        }
        Ok(Cmd {
            client: (1 + k / 256) as u8,
            seq: (k % 256) as u8,
            op: ClientOp::Get,
        })
    }

    fn position(&mut self, command: C) -> Result<usize, String> {
        let key = serde_json::to_string(&command)
            .map_err(|e| format!("a command that cannot be serialized: {e}"))?;
        let k = match self.known.get(&key) {
            Some(&k) => k,
            None => {
                let k = self.runtime.len();
                if k >= 256 * 256 {
                    return Err("more than 65536 distinct commands in one run".into());
                }
                self.runtime.push(command);
                self.known.insert(key, k);
                k
            }
        };
        Ok(k)
    }

    fn back(&self, cmd: &Cmd) -> Option<&C> {
        match cmd.op {
            ClientOp::Put(v) => self.runtime.get(v as usize * 256 + cmd.seq as usize),
            ClientOp::Get => {
                let client = usize::from(cmd.client.checked_sub(1)?);
                self.runtime.get(client * 256 + cmd.seq as usize)
            }
            ClientOp::Config(m) => self.configs.get(&m),
        }
    }

    fn entries(&self, entries: &[Entry<Cmd>]) -> Option<Vec<Entry<C>>> {
        entries
            .iter()
            .map(|e| {
                self.back(&e.command).map(|c| Entry {
                    term: e.term,
                    command: c.clone(),
                })
            })
            .collect()
    }

    /// The runtime's form of a model message (an InstallSnapshot's image left out: see
    /// [`comparable`]).
    fn message(&self, msg: &Message<Cmd>) -> Option<Message<C>> {
        msg.try_map_entries(|entries| self.entries(entries))
            .map(|m| comparable(&m).into_owned())
    }
}

/// A message as the replay compares it: a snapshot's image is each side's own state machine
/// (the model's register, the node's key-value map), so an InstallSnapshot is compared by
/// everything but its data and its configuration's addresses (see [`members_only`]); every
/// other message whole.
fn comparable<C: Clone>(msg: &Message<C>) -> Cow<'_, Message<C>> {
    let addresses = |m: &raft_core::InstallSnapshot| {
        m.snapshot
            .config
            .as_ref()
            .is_some_and(|(_, c)| !c.addresses.is_empty())
    };
    match msg {
        Message::InstallSnapshot(m) if !m.snapshot.data.is_empty() || addresses(m) => {
            let mut m = m.clone();
            m.snapshot.data = Vec::new();
            if let Some((_, c)) = m.snapshot.config.as_mut() {
                c.addresses.clear();
            }
            Cow::Owned(Message::InstallSnapshot(m))
        }
        _ => Cow::Borrowed(msg),
    }
}

/// A configuration without the addresses the node's entries carry: the model's configurations
/// have none (it routes by id; membership.rs rule 5: no rule reads them).
fn members_only(m: &raft_core::Membership) -> raft_core::Membership {
    raft_core::Membership {
        addresses: Default::default(),
        ..m.clone()
    }
}

struct Replay<'a, C> {
    model: RaftModel,
    always: Vec<Property<RaftModel>>,
    n: usize,
    duplicating: bool,
    state: RaftState,
    commands: Commands<C>,
    /// The model's envelope of each send not yet released, by (position, index in sent).
    in_flight: HashMap<(usize, usize), Envelope<Msg>>,
    /// Duplicating network: sends not yet released per envelope.
    outstanding: HashMap<Envelope<Msg>, usize>,
    actions: usize,
    traces: &'a [Vec<TraceRecord<C>>],
}

fn present(state: &RaftState, env: &Envelope<Msg>) -> bool {
    state
        .network
        .iter_all()
        .any(|e| e.src == env.src && e.dst == env.dst && *e.msg == env.msg)
}

impl<C: Clone + PartialEq + Debug + Serialize + Payload> Replay<'_, C> {
    /// Server `i`'s configuration in the model.
    fn server_cfg(&self, i: usize) -> &crate::model::ServerConfig {
        match &self.model.actors[i] {
            crate::model::RaftActor::Server { cfg, .. } => cfg,
            crate::model::RaftActor::Client { .. } => {
                unreachable!("actors are numbered servers first")
            }
        }
    }

    fn apply(&mut self, action: RaftAction) -> bool {
        match self.model.next_state(&self.state, action) {
            Some(next) => {
                self.state = next;
                self.actions += 1;
                true
            }
            None => false,
        }
    }

    fn drop_envelope(&mut self, env: Envelope<Msg>) {
        if present(&self.state, &env) {
            self.apply(ActorModelAction::Drop(env));
        }
    }

    fn server(&self, i: usize) -> &Server<Cmd> {
        match self.state.actor(i) {
            NodeState::Server(s) => &s.server,
            NodeState::Client(_) => unreachable!("actors 0..n are servers"),
        }
    }

    /// Runs one model action of server `i` and returns what it sent (`None`: a no-op the model
    /// prunes).
    fn act(&mut self, i: usize, action: RaftAction) -> Option<Vec<Envelope<Msg>>> {
        debug_assert!(matches!(&action,
            ActorModelAction::Deliver { dst, .. } | ActorModelAction::Timeout(dst, _)
                if usize::from(*dst) == i));
        let sent = self.model.sent_by(&self.state, &action);
        if self.apply(action) {
            Some(sent)
        } else {
            None
        }
    }

    fn inject_request(&mut self, i: usize, cmd: Cmd) -> Envelope<Msg> {
        let env = Envelope {
            src: Id::from(self.n + usize::from(cmd.client)),
            dst: Id::from(i),
            msg: Msg::Request {
                seq: cmd.seq,
                op: cmd.op,
            },
        };
        self.state.network.send(env.clone());
        env
    }

    /// Replays record `r` of trace `t` at merged position `pos`; returns the problems found.
    /// By concern: the event becomes model actions ([`Replay::take_event`]), the messages those
    /// sent are matched with the record's ([`Replay::match_sent`]), sends nothing will receive
    /// leave the network ([`Replay::release`]), and the node's state and every Always property
    /// are checked ([`Replay::check_state`]).
    fn step(
        &mut self,
        pos: usize,
        t: usize,
        r: usize,
        release: &[((usize, usize), bool)],
    ) -> Result<Vec<String>, String> {
        let record = &self.traces[t][r];
        let model_sent = match self.take_event(record, r)? {
            Ok(sent) => sent,
            Err(problems) => return Ok(problems),
        };
        let mut problems = self.match_sent(pos, record, model_sent);
        if !problems.is_empty() {
            // The states after the step too: where they differ is usually why.
            problems.extend(self.check_state(record));
            return Ok(problems);
        }
        self.release(release);
        Ok(self.check_state(record))
    }

    /// The record's event as model actions, from the current state: the messages the model sent
    /// (`Ok(Ok)`), the problems that stop the replay here (`Ok(Err)`), or an error of the run
    /// itself (`Err`).
    fn take_event(
        &mut self,
        record: &TraceRecord<C>,
        r: usize,
    ) -> Result<Result<Vec<Envelope<Msg>>, Vec<String>>, String> {
        let i = record.node.0 as usize;
        let id = Id::from(i);
        let crashed = self.state.is_crashed(i);
        let mut model_sent: Vec<Envelope<Msg>> = Vec::new();
        match &record.event {
            TraceEvent::Crash => {
                if crashed {
                    return Ok(Err(vec!["a crash of a node that is down".into()]));
                }
                self.apply(ActorModelAction::Crash(id));
                return Ok(Ok(model_sent));
            }
            TraceEvent::Restart => {
                if crashed {
                    self.apply(ActorModelAction::Recover(id));
                } else if r != 0 {
                    return Ok(Err(vec!["a restart without a crash before it".into()]));
                }
                return Ok(Ok(model_sent));
            }
            _ if crashed => return Ok(Err(vec!["a step of a node that is down".into()])),
            TraceEvent::Receive { from, msg } => match self.deliver(record, *from, msg) {
                Ok(sent) => model_sent.extend(sent),
                Err(problem) => return Ok(Err(vec![problem])),
            },
            TraceEvent::ElectionTimeout => {
                let action = ActorModelAction::Timeout(id, Timer::Election);
                model_sent.extend(self.act(i, action).unwrap_or_default());
            }
            TraceEvent::Resend { to } => {
                let action = ActorModelAction::Timeout(id, Timer::Send(*to));
                model_sent.extend(self.act(i, action).unwrap_or_default());
            }
            TraceEvent::TransferLeadership { to } => {
                let action = ActorModelAction::Timeout(id, Timer::Transfer(*to));
                model_sent.extend(self.act(i, action).unwrap_or_default());
            }
            TraceEvent::Heartbeat => {}
            // §7: the node's state machine took a snapshot; the model's takes one of what it
            // applied (the images differ, their indices and terms must not).
            TraceEvent::Compact { .. } => {
                let action = ActorModelAction::Timeout(id, Timer::Compact);
                model_sent.extend(self.act(i, action).unwrap_or_default());
            }
            TraceEvent::Persisted { .. } => {
                let action = ActorModelAction::Timeout(id, Timer::Persist);
                model_sent.extend(self.act(i, action).unwrap_or_default());
            }
            // A configuration entry (membership.rs): the operator's change, as the model asks
            // for it (`Timer::Reconfigure`), from the server's configuration.
            TraceEvent::Propose { command } if command.configuration().is_some() => {
                let next = command.configuration().unwrap_or_default();
                let change = match self.state.server(i) {
                    Some(s) => members_only(s.server.membership(self.server_cfg(i)))
                        .change_to(&members_only(&next)),
                    None => None,
                };
                self.commands
                    .configs
                    .insert(Members::of(&next), command.clone());
                if let Some(change) = change {
                    let action = ActorModelAction::Timeout(id, Timer::Reconfigure(change));
                    model_sent.extend(self.act(i, action).unwrap_or_default());
                }
            }
            TraceEvent::Propose { command } | TraceEvent::ReadIndex { command, .. } => {
                let cmd = match &record.event {
                    TraceEvent::ReadIndex { .. } => self.commands.intern_read(command.clone())?,
                    _ => self.commands.intern(command.clone())?,
                };
                let env = self.inject_request(i, cmd);
                let action = ActorModelAction::Deliver {
                    src: env.src,
                    dst: env.dst,
                    msg: env.msg.clone(),
                };
                match self.act(i, action) {
                    Some(sent) => model_sent.extend(sent),
                    None => self.drop_envelope(env),
                }
            }
        }
        // The model sends requests one peer at a time (see the module documentation), but for
        // those the step itself sent (a pipelining leader's entries).
        if !matches!(record.event, TraceEvent::Resend { .. }) {
            let mut sent_by_step: Vec<(usize, Option<Message<C>>)> = model_sent
                .iter()
                .map(|env| {
                    let mapped = match &env.msg {
                        Msg::Raft(m) => self.commands.message(m),
                        _ => None,
                    };
                    (usize::from(env.dst), mapped)
                })
                .collect();
            for (to, msg) in &record.sent {
                if !is_request(msg) {
                    continue;
                }
                let same = sent_by_step.iter().position(|(dst, m)| {
                    *dst == to.0 as usize && m.as_ref() == Some(&*comparable(msg))
                });
                match same {
                    Some(k) => {
                        sent_by_step.swap_remove(k);
                    }
                    None => {
                        let action = ActorModelAction::Timeout(id, Timer::Send(*to));
                        model_sent.extend(self.act(i, action).unwrap_or_default());
                    }
                }
            }
        }
        Ok(Ok(model_sent))
    }

    /// A received message: it must be in the model's network; delivered, it returns what the
    /// model sent.
    fn deliver(
        &mut self,
        record: &TraceRecord<C>,
        from: NodeId,
        msg: &Message<C>,
    ) -> Result<Vec<Envelope<Msg>>, String> {
        let i = record.node.0 as usize;
        let id = Id::from(i);
        let src = Id::from(from.0 as usize);
        let found = self
            .state
            .network
            .iter_all()
            .find(|e| {
                e.src == src
                    && e.dst == id
                    && matches!(e.msg, Msg::Raft(m)
                        if self.commands.message(m).as_ref() == Some(&*comparable(msg)))
            })
            .map(|e| e.to_cloned_msg());
        let Some(env) = found else {
            return Err(format!(
                "message not in flight: the model's network holds no {} from {from} to {}{}",
                describe_msg(msg),
                record.node,
                if self.duplicating {
                    ""
                } else {
                    " (on this non-duplicating network each message is delivered at most once)"
                }
            ));
        };
        let action = ActorModelAction::Deliver {
            src: env.src,
            dst: env.dst,
            msg: env.msg.clone(),
        };
        match self.act(i, action) {
            Some(sent) => Ok(sent),
            // A delivery that changes nothing: the message is consumed all the same.
            None => {
                if !self.duplicating {
                    self.drop_envelope(env);
                }
                Ok(Vec::new())
            }
        }
    }

    /// The model's Raft messages against the record's, as multisets; a matched send is
    /// remembered as in flight for the receive that will consume it.
    fn match_sent(
        &mut self,
        pos: usize,
        record: &TraceRecord<C>,
        model_sent: Vec<Envelope<Msg>>,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let mut raft: Vec<(Envelope<Msg>, Option<Message<C>>)> = Vec::new();
        for env in model_sent {
            if usize::from(env.dst) >= self.n {
                // A reply to the model's client: the runtime's clients are not modelled.
                self.drop_envelope(env);
                continue;
            }
            let mapped = match &env.msg {
                Msg::Raft(m) => self.commands.message(m),
                _ => None,
            };
            raft.push((env, mapped));
        }
        let mut unmatched_model: Vec<bool> = vec![true; raft.len()];
        for (k, (to, msg)) in record.sent.iter().enumerate() {
            let hit = raft.iter().enumerate().position(|(j, (env, m))| {
                unmatched_model[j]
                    && usize::from(env.dst) == to.0 as usize
                    && m.as_ref() == Some(&*comparable(msg))
            });
            match hit {
                Some(j) => {
                    unmatched_model[j] = false;
                    let env = raft[j].0.clone();
                    if self.duplicating {
                        *self.outstanding.entry(env.clone()).or_insert(0) += 1;
                    }
                    self.in_flight.insert((pos, k), env);
                }
                None => problems.push(format!(
                    "sent: the trace sends {} to {to}, the model does not",
                    describe_msg(msg)
                )),
            }
        }
        for (j, (env, m)) in raft.iter().enumerate() {
            if unmatched_model[j] {
                let what = match m {
                    Some(m) => describe_msg(m),
                    None => "a message with a command the run never proposed".into(),
                };
                problems.push(format!(
                    "sent: the model sends {what} to n{}, the trace does not",
                    usize::from(env.dst)
                ));
            }
        }
        problems
    }

    /// Sends nothing later receives leave the network (it is lossy).
    fn release(&mut self, release: &[((usize, usize), bool)]) {
        for (send, used) in release {
            let Some(env) = self.in_flight.remove(send) else {
                continue;
            };
            if self.duplicating {
                let left = self.outstanding.get_mut(&env).map(|c| {
                    *c -= 1;
                    *c
                });
                if left == Some(0) {
                    self.outstanding.remove(&env);
                    self.drop_envelope(env);
                }
            } else if !used {
                self.drop_envelope(env);
            }
        }
    }

    /// The node's state after the step against the record's, and every Always property on the
    /// new state.
    fn check_state(&self, record: &TraceRecord<C>) -> Vec<String> {
        let i = record.node.0 as usize;
        let mut problems = Vec::new();
        if !self.state.is_crashed(i) {
            match &record.state_after {
                Some(actual) => {
                    let diffs = self.compare(i, actual);
                    if !diffs.is_empty() && matches!(record.event, TraceEvent::Restart) {
                        problems.push(
                            "the node restarted with another state than the model restarts it with \
                             (the storage its steps saved before the crash): persistent state lost or stale"
                                .into(),
                        );
                    }
                    problems.extend(diffs);
                }
                None => problems.push("the record has no state after the step".into()),
            }
        }
        // Every Always property on the new state.
        for p in &self.always {
            if !(p.condition)(&self.model, &self.state) {
                problems.push(format!("property violated: {}", p.name));
            }
        }
        problems
    }

    fn compare(&self, i: usize, actual: &Server<C>) -> Vec<String> {
        let model = self.server(i);
        let mut diffs = Vec::new();
        let mut field = |name: &str, expected: String, actual: String| {
            if expected != actual {
                diffs.push(format!("{name}: model {expected}, trace {actual}"));
            }
        };
        field(
            "current_term",
            model.current_term().to_string(),
            actual.current_term().to_string(),
        );
        field(
            "voted_for",
            format!("{:?}", model.voted_for()),
            format!("{:?}", actual.voted_for()),
        );
        field(
            "role",
            format!("{:?}", model.role),
            format!("{:?}", actual.role),
        );
        field(
            "commit_index",
            model.commit_index.to_string(),
            actual.commit_index.to_string(),
        );
        field(
            "last_applied",
            model.last_applied.to_string(),
            actual.last_applied.to_string(),
        );
        field(
            "leader_id",
            format!("{:?}", model.leader_id),
            format!("{:?}", actual.leader_id),
        );
        field(
            "votes_granted",
            format!("{:?}", model.votes_granted),
            format!("{:?}", actual.votes_granted),
        );
        field(
            "next_index",
            format!("{:?}", model.leader.next_index()),
            format!("{:?}", actual.leader.next_index()),
        );
        field(
            "match_index",
            format!("{:?}", model.leader.match_index()),
            format!("{:?}", actual.leader.match_index()),
        );
        field(
            "probing",
            format!("{:?}", model.leader.probing().collect::<BTreeSet<_>>()),
            format!("{:?}", actual.leader.probing().collect::<BTreeSet<_>>()),
        );
        field(
            "read_round",
            model.leader.read_round.to_string(),
            actual.leader.read_round.to_string(),
        );
        field(
            "read_acks",
            format!("{:?}", model.leader.read_acks().collect::<BTreeMap<_, _>>()),
            format!(
                "{:?}",
                actual.leader.read_acks().collect::<BTreeMap<_, _>>()
            ),
        );
        // The reads' ids are each side's own tags: their indices and rounds must agree.
        fn reads<D>(s: &Server<D>) -> Vec<(u64, u64)> {
            s.pending_reads.iter().map(|r| (r.index, r.round)).collect()
        }
        field(
            "pending_reads",
            format!("{:?}", reads(model)),
            format!("{:?}", reads(actual)),
        );
        // The configuration's members; not the addresses the node's entries carry, which the
        // model (routing by id) leaves out of its own (membership.rs rule 5: no rule reads them).
        let point = |s: &raft_core::Snapshot| {
            let config = s
                .config
                .as_ref()
                .map(|(index, m)| (index, &m.voters, &m.learners));
            format!(
                "{}/t{} config {:?}",
                s.last_included_index, s.last_included_term, config
            )
        };
        field(
            "snapshot",
            point(model.snapshot()),
            point(actual.snapshot()),
        );
        match self.commands.entries(model.log()) {
            None => {
                diffs.push("log: the model's log holds a command the run never proposed".into())
            }
            Some(log) if log != actual.log() => {
                let first = log
                    .iter()
                    .zip(actual.log())
                    .position(|(a, b)| a != b)
                    .unwrap_or(log.len().min(actual.log().len()));
                let terms = |l: &[Entry<C>]| {
                    l.iter()
                        .map(|e| e.term.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                diffs.push(format!(
                    "log: model {} entries (terms {}), trace {} entries (terms {}); first difference at index {}",
                    log.len(),
                    terms(&log),
                    actual.log().len(),
                    terms(actual.log()),
                    first + 1
                ));
            }
            Some(_) => {}
        }
        diffs
    }
}

/// Replays one run (the traces of its nodes, any order) against the model.
pub fn conform<C>(
    mut traces: Vec<Vec<TraceRecord<C>>>,
    info: &RunInfo,
) -> Result<Summary, ConformError>
where
    C: Clone + PartialEq + Debug + Serialize + Payload,
{
    traces.retain(|t| !t.is_empty());
    traces.sort_by_key(|t| t[0].node);
    let n = traces.len();
    if n == 0 {
        return Err(ConformError::Invalid("no records".into()));
    }
    for (i, t) in traces.iter().enumerate() {
        if t[0].node != NodeId(i as u64) {
            return Err(ConformError::Invalid(format!(
                "node ids must be 0..{n} with one trace each; found node {} where n{i} was expected (is n{i}'s trace missing or empty?)",
                t[0].node
            )));
        }
        for r in t {
            let mut peers: Vec<NodeId> = r.sent.iter().map(|(to, _)| *to).collect();
            if let TraceEvent::Receive { from, .. } | TraceEvent::Resend { to: from } = &r.event {
                peers.push(*from);
            }
            if let Some(bad) = peers.iter().find(|p| p.0 as usize >= n || **p == r.node) {
                return Err(ConformError::Invalid(format!(
                    "node {} seq {} names {bad}, not a peer in a run of {n} nodes",
                    r.node, r.seq
                )));
            }
        }
    }
    let merged = merge(&traces).map_err(ConformError::NoCausalOrder)?;
    let cfg = ModelConfig {
        servers: n,
        max_term: u64::MAX,
        values: 1,
        reads: 0,
        max_crashes: n,
        network: if info.duplicating {
            NetworkKind::UnorderedDuplicating
        } else {
            NetworkKind::UnorderedNonDuplicating
        },
        lossy: true,
        max_in_flight: usize::MAX,
        max_log_len: Some(usize::MAX),
        max_entries_per_append: info.max_entries_per_append,
        fast_backup: info.fast_backup,
        write_behind: true,
        pipeline: info.pipeline,
        read_index: info.read_index,
        pre_vote: info.pre_vote,
        check_quorum: info.check_quorum,
        max_transfers: usize::MAX,
        max_config_changes: usize::MAX,
        max_snapshots: usize::MAX,
        initial_voters: info.initial_voters,
        liveness: false,
        // A flag the traces say nothing of (no partial partition, no mutant): the standard
        // bound's value.
        ..ModelConfig::default()
    };
    let model = cfg.into_model();
    let always = model
        .properties()
        .into_iter()
        .filter(|p| matches!(p.expectation, Expectation::Always))
        .collect();
    let state = model
        .init_states()
        .into_iter()
        .next()
        .ok_or_else(|| ConformError::Invalid("the model has no initial state".into()))?;
    let mut replay = Replay {
        model,
        always,
        n,
        duplicating: info.duplicating,
        state,
        commands: Commands {
            runtime: Vec::new(),
            configs: Default::default(),
            known: Default::default(),
        },
        in_flight: HashMap::new(),
        outstanding: HashMap::new(),
        actions: 0,
        traces: &traces,
    };
    for (pos, &(t, r)) in merged.order.iter().enumerate() {
        let problems = replay
            .step(pos, t, r, &merged.release_after[pos])
            .map_err(ConformError::Invalid)?;
        if !problems.is_empty() {
            let record = &traces[t][r];
            return Err(ConformError::Mismatch(Mismatch {
                step: pos + 1,
                node: record.node,
                seq: record.seq,
                time_us: record.time_us,
                event: describe_event(&record.event),
                problems,
            }));
        }
    }
    let crashes = traces
        .iter()
        .flatten()
        .filter(|r| matches!(r.event, TraceEvent::Crash))
        .count();
    Ok(Summary {
        crashes,
        nodes: n,
        steps: merged.order.len(),
        actions: replay.actions,
    })
}
