//! The checked model: our own `stateright::Model` over the flat [`RaftState`], driving the
//! same actors (`actor.rs`: servers around `raft_core::Server::handle`, and clients) with the
//! semantics of stateright's `ActorModel`: a message in flight may be delivered or (lossy
//! network) lost, an armed timer may fire, a server may crash (while fewer than the bound are
//! down) and restart from its storage. A delivery or timeout that changes nothing is pruned.
//! The same states are told apart as under `ActorModel` (the gate's state counts are
//! unchanged); only the representation is flat.
//!
//! One reduction (crash canonicalization): when a server crashes, its volatile state is gone
//! for good: nothing can read it again except properties, and on restart it is replaced by the
//! state rebuilt from storage. So a crashed server is shown with the state it will restart with
//! (`on_start(storage)`). Every property that looks at crashed servers reads only what survives
//! a crash (the log, the term, the ghost records, all saved with storage), so no verdict
//! changes, but all the pre-crash states that share one storage collapse into one.

use crate::model::adapter::actor::{RaftAction, RaftActor};
use crate::model::adapter::network::Network;
use crate::model::adapter::node::{NodeState, Timer};
use crate::model::adapter::state::{ActorSlot, RaftState};
use crate::model::adapter::timers::TimerSet;
use crate::model::config::ModelConfig;
use crate::model::judge::discovery::discovers;
use crate::model::judge::history;
use crate::model::presentation::display::StateDisplay;
use crate::model::reductions::memo::Memo;
use crate::model::shared::Shared;
use stateright::actor::{
    is_no_op, is_no_op_with_timer, Actor, ActorModelAction, Command, Envelope, Id, Out,
};
use stateright::{Expectation, Model, Path, Property};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

/// The Raft model that the checker explores.
#[derive(Clone)]
pub struct RaftModel {
    pub cfg: ModelConfig,
    /// The servers (`0..servers`), then the clients.
    pub actors: Vec<RaftActor>,
    pub properties: Vec<Property<RaftModel>>,
    /// Verdicts of "Progress When Faults Stop" by their input (`liveness.rs`).
    pub liveness_memo: Arc<Memo>,
}

impl RaftModel {
    /// Carry out actor `index`'s step: its new state (`None`: unchanged), the timer that fired
    /// (a timer fires once; the step re-arms it if it should stay armed), and its output:
    /// messages into the network (and the history), timers, storage. The actor's slot is
    /// copied (if shared) at most once, and only if the step changes it.
    fn process(
        &self,
        index: usize,
        actor: Option<NodeState>,
        fired: Option<Timer>,
        out: Out<RaftActor>,
        state: &mut RaftState,
    ) {
        let id = Id::from(index);
        let old_timers = state.actors[index].timers;
        let mut timers = old_timers;
        if let Some(t) = fired {
            timers.cancel(t);
        }
        let mut saved = None;
        for command in out {
            match command {
                Command::Send(dst, msg) => {
                    let env = Envelope {
                        src: id,
                        dst,
                        msg: &msg,
                    };
                    if let Some(h) = history::record_out(&self.cfg, &state.history, env) {
                        state.history = h;
                    }
                    state.network.send(Envelope { src: id, dst, msg });
                }
                Command::SetTimer(timer, _) => timers.set(timer),
                Command::CancelTimer(timer) => timers.cancel(timer),
                Command::Save(storage) => saved = Some(storage),
                // The model's actors make no random choices (`Actor::Random` is `()`).
                Command::ChooseRandom(..) => {}
            }
        }
        if actor.is_some() || saved.is_some() || timers != old_timers {
            let slot = state.slot_mut(index);
            slot.timers = timers;
            if let Some(storage) = saved {
                slot.storage = Some(storage);
            }
            if let Some(actor) = actor {
                slot.state = Shared::new(actor);
            }
        }
    }

    /// Whether a step of actor `index` from `last`, which left the actor `actor` and output
    /// `out` (after receiving a message in flight, if `delivered`), ends outside the bound
    /// (`within_boundary`) by the last term or the messages in flight. Decided before
    /// the successor is built, since such steps (an election past the last term, a send into
    /// a full network) cost more to build than to refuse: on the default bound they were
    /// more than half of all steps. Refuses only steps the boundary refuses; the rest of the
    /// boundary (log lengths, read rounds, operator requests) is checked on the successor
    /// alone, so that a model with those limits unset (trace conformance replays real runs
    /// through `next_state`) steps as before.
    #[allow(clippy::ptr_arg)] // owned or borrowed tells whether the step changed the actor
    fn leaves_bound(
        &self,
        last: &RaftState,
        index: usize,
        actor: &Cow<NodeState>,
        out: &Out<RaftActor>,
        delivered: bool,
    ) -> bool {
        // A borrowed actor is unchanged: inside the bound, as `last` is.
        if let Cow::Owned(NodeState::Server(s)) = actor {
            if s.server.current_term() > self.cfg.max_term {
                return true;
            }
        }
        let sends = out.iter().filter_map(|c| match c {
            Command::Send(dst, msg) => Some((*dst, msg)),
            _ => None,
        });
        last.network.len_after(Id::from(index), delivered, sends) > self.cfg.max_in_flight
    }

    /// The state server `index` restarts with from what it saved (its output is discarded:
    /// the restart itself is a separate step).
    fn restarted(&self, state: &RaftState, index: usize) -> NodeState {
        let mut discarded = Out::new();
        let storage = state.actors[index].storage.clone();
        self.actors[index].on_start(Id::from(index), &storage, &mut discarded)
    }
}

impl Model for RaftModel {
    type State = RaftState;
    type Action = RaftAction;

    fn init_states(&self) -> Vec<RaftState> {
        let mut state = RaftState {
            actors: Vec::with_capacity(self.actors.len()),
            crashed: 0,
            network: Network::new(self.cfg.network),
            history: Default::default(),
        };
        for (index, actor) in self.actors.iter().enumerate() {
            let mut out = Out::new();
            let start = actor.on_start(Id::from(index), &None, &mut out);
            state.actors.push(Shared::new(ActorSlot {
                state: Shared::new(start),
                timers: TimerSet::default(),
                storage: None,
            }));
            self.process(index, None, None, out, &mut state);
        }
        vec![state]
    }

    /// In stateright's order: losses, deliveries, timeouts, crashes, restarts; each sorted.
    fn actions(&self, state: &RaftState, actions: &mut Vec<RaftAction>) {
        if self.cfg.lossy {
            for env in state.network.iter_deliverable() {
                actions.push(ActorModelAction::Drop(env.to_cloned_msg()));
            }
        }
        for env in state.network.iter_deliverable() {
            if usize::from(env.dst) < self.actors.len() {
                actions.push(ActorModelAction::Deliver {
                    src: env.src,
                    dst: env.dst,
                    msg: env.msg.clone(),
                });
            }
        }
        for (index, slot) in state.actors.iter().enumerate() {
            for timer in slot.timers.iter() {
                actions.push(ActorModelAction::Timeout(Id::from(index), timer));
            }
        }
        // Only servers crash (clients are the observers of linearizability).
        if state.crashes() < self.cfg.max_crashes {
            for index in (0..self.cfg.servers).filter(|&i| !state.is_crashed(i)) {
                actions.push(ActorModelAction::Crash(Id::from(index)));
            }
        }
        for index in (0..self.actors.len()).filter(|&i| state.is_crashed(i)) {
            actions.push(ActorModelAction::Recover(Id::from(index)));
        }
    }

    fn next_state(&self, last: &RaftState, action: RaftAction) -> Option<RaftState> {
        match action {
            ActorModelAction::Drop(env) => {
                let mut next = last.clone();
                next.network.on_drop(&env).then_some(next)
            }
            ActorModelAction::Deliver { src, dst, msg } => {
                let index = usize::from(dst);
                if index >= last.actors.len() || last.is_crashed(index) {
                    return None;
                }
                let mut actor = Cow::Borrowed(last.actor(index));
                let mut out = Out::new();
                self.actors[index].on_msg(dst, &mut actor, src, msg.clone(), &mut out);
                // A delivery that changes nothing is pruned, except on the ordered network
                // (it still takes the message off its channel).
                if is_no_op(&actor, &out) && !last.network.is_ordered() {
                    return None;
                }
                if self.leaves_bound(last, index, &actor, &out, true) {
                    return None;
                }
                let mut next = last.clone();
                let env = Envelope { src, dst, msg };
                if let Some(h) = history::record_in(&self.cfg, &last.history, env_ref(&env)) {
                    next.history = h;
                }
                if !next.network.on_deliver(env) {
                    return None;
                }
                self.process(index, owned(actor), None, out, &mut next);
                Some(next)
            }
            ActorModelAction::Timeout(id, timer) => {
                let index = usize::from(id);
                let mut actor = Cow::Borrowed(last.actor(index));
                let mut out = Out::new();
                self.actors[index].on_timeout(id, &mut actor, &timer, &mut out);
                if is_no_op_with_timer(&actor, &out, &timer)
                    || self.leaves_bound(last, index, &actor, &out, false)
                {
                    return None;
                }
                let mut next = last.clone();
                self.process(index, owned(actor), Some(timer), out, &mut next);
                Some(next)
            }
            ActorModelAction::Crash(id) => {
                let index = usize::from(id);
                if !self.cfg.is_server(index) || last.is_crashed(index) {
                    return None;
                }
                let mut next = last.clone();
                next.slot_mut(index).timers.cancel_all();
                next.set_crashed(index, true);
                // Crash canonicalization (module comment).
                let restarted = self.restarted(&next, index);
                next.set_actor(index, restarted);
                Some(next)
            }
            ActorModelAction::Recover(id) => {
                let index = usize::from(id);
                if !last.is_crashed(index) {
                    return None;
                }
                let mut out = Out::new();
                let storage = last.actors[index].storage.clone();
                let restarted = self.actors[index].on_start(id, &storage, &mut out);
                let mut next = last.clone();
                next.set_crashed(index, false);
                self.process(index, Some(restarted), None, out, &mut next);
                Some(next)
            }
            // The model's actors make no random choices.
            ActorModelAction::SelectRandom { .. } => None,
        }
    }

    fn format_action(&self, action: &RaftAction) -> String {
        crate::model::presentation::display::format_action(self.cfg.servers, action)
    }

    /// The Explorer's view of a step: the state it reaches, readable (see `display.rs`).
    fn format_step(&self, last_state: &RaftState, action: RaftAction) -> Option<String> {
        let next = self.next_state(last_state, action)?;
        Some(self.step_view(&next))
    }

    /// The Explorer's sequence diagram (`sequence.rs`).
    fn as_svg(&self, path: Path<RaftState, RaftAction>) -> Option<String> {
        let sent_by = |s: &RaftState, a: &RaftAction| self.sent_by(s, a);
        Some(crate::model::presentation::sequence::svg(
            self.actors.len(),
            self.cfg.servers,
            &path.into_vec(),
            sent_by,
        ))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        self.properties.clone()
    }

    fn within_boundary(&self, state: &RaftState) -> bool {
        within_boundary(&self.cfg, state)
    }
}

/// An actor's state after a step that left it `next`: `None` if unchanged (borrowed).
fn owned(next: Cow<NodeState>) -> Option<NodeState> {
    match next {
        Cow::Owned(next) => Some(next),
        Cow::Borrowed(_) => None,
    }
}

fn env_ref<M>(e: &Envelope<M>) -> Envelope<&M> {
    Envelope {
        src: e.src,
        dst: e.dst,
        msg: &e.msg,
    }
}

impl RaftModel {
    /// The Always properties `state` violates.
    pub fn violated(&self, state: &RaftState) -> Vec<&'static str> {
        self.properties
            .iter()
            .filter(|p| p.expectation == Expectation::Always && discovers(p, self, state))
            .map(|p| p.name)
            .collect()
    }

    /// What the Explorer shows for the state a step reached: the Always properties it
    /// violates, then the state (`display.rs`).
    pub fn step_view(&self, state: &RaftState) -> String {
        let mut out = String::new();
        let bad = self.violated(state);
        if bad.is_empty() {
            out.push_str("Every Always property holds in this state.\n\n");
        }
        for p in bad {
            let _ = writeln!(out, "⚠ VIOLATED: {p}");
        }
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        let _ = write!(out, "{}", StateDisplay(state));
        out
    }

    /// What actor `index`'s step `action` sends (the sequence diagram's arrows, replay).
    pub fn sent_by(
        &self,
        state: &RaftState,
        action: &RaftAction,
    ) -> Vec<Envelope<crate::model::Msg>> {
        let mut out = Out::new();
        let (index, mut actor) = match action {
            ActorModelAction::Deliver { dst, .. } | ActorModelAction::Timeout(dst, _) => {
                let index = usize::from(*dst);
                match state.actors.get(index) {
                    Some(slot) => (index, Cow::Borrowed(&*slot.state)),
                    None => return Vec::new(),
                }
            }
            _ => return Vec::new(),
        };
        let id = Id::from(index);
        match action {
            ActorModelAction::Deliver { src, msg, .. } => {
                self.actors[index].on_msg(id, &mut actor, *src, msg.clone(), &mut out)
            }
            ActorModelAction::Timeout(_, timer) => {
                self.actors[index].on_timeout(id, &mut actor, timer, &mut out)
            }
            _ => {}
        }
        out.into_iter()
            .filter_map(|c| match c {
                Command::Send(dst, msg) => Some(Envelope { src: id, dst, msg }),
                _ => None,
            })
            .collect()
    }
}

/// The boundary of exploration: terms, log lengths, messages in flight, and no crashed clients (clients are
/// the observers of linearizability, not servers; only servers crash).
fn within_boundary(cfg: &ModelConfig, state: &RaftState) -> bool {
    if state.network.len() > cfg.max_in_flight {
        return false;
    }
    if (cfg.servers..state.actor_count()).any(|i| state.is_crashed(i)) {
        return false;
    }
    // Operator requests, counted over all servers' ghosts.
    let requests = |count: fn(&crate::model::Ghost) -> u8| -> usize {
        state.servers().map(|s| usize::from(count(&s.ghost))).sum()
    };
    if requests(|g| g.transfers) > cfg.max_transfers
        || requests(|g| g.config_changes) > cfg.max_config_changes
        || requests(|g| g.snapshots) > cfg.max_snapshots
        || requests(|g| g.forged) > cfg.max_forged
    {
        return false;
    }
    let max_log_len = cfg.effective_max_log_len() as u64;
    let max_read_rounds = cfg.max_read_rounds();
    state.servers().all(|s| {
        s.server.current_term() <= cfg.max_term
            && s.server.last_log_index() <= max_log_len
            && s.server.leader.read_round <= max_read_rounds
    })
}
