//! The checked model: stateright's actor system of Raft servers and clients, wrapped to add one
//! reduction and the properties.
//!
//! Reduction (crash canonicalization): when a server crashes, its volatile state is gone for
//! good: nothing can read it again except properties, and on restart it is replaced by the state
//! rebuilt from storage. So a crashed server is shown with the state it will restart with
//! (`on_start(storage)`). Every property that looks at crashed servers reads only what survives a
//! crash (the log, the term, the ghost records, all saved with storage), so no verdict changes,
//! but all the pre-crash states that share one storage collapse into one.

use super::actor::{RaftAction, RaftActor, RaftState};
use super::config::ModelConfig;
use super::display::StateDisplay;
use super::history::History;
use stateright::actor::{Actor, ActorModel, ActorModelAction, Id, Out};
use stateright::{Expectation, Model, Path, Property};
use std::fmt::Write as _;
use std::sync::Arc;

/// The Raft model that the checker explores.
#[derive(Clone)]
pub struct RaftModel {
    pub cfg: ModelConfig,
    pub inner: ActorModel<RaftActor, ModelConfig, History>,
    pub properties: Vec<Property<RaftModel>>,
}

impl Model for RaftModel {
    type State = RaftState;
    type Action = RaftAction;

    fn init_states(&self) -> Vec<RaftState> {
        self.inner.init_states()
    }

    fn actions(&self, state: &RaftState, actions: &mut Vec<RaftAction>) {
        Model::actions(&self.inner, state, actions);
        // stateright's actor model offers every actor's crash while crashes remain; only
        // servers crash here (clients are the observers of linearizability), and a client's
        // crash lands outside the boundary, so the checker never explores it: the Explorer must
        // not offer it either.
        actions.retain(
            |a| !matches!(a, ActorModelAction::Crash(id) if !self.cfg.is_server(usize::from(*id))),
        );
    }

    fn next_state(&self, state: &RaftState, action: RaftAction) -> Option<RaftState> {
        let crashed = match action {
            ActorModelAction::Crash(id) => Some(id),
            _ => None,
        };
        let mut next = self.inner.next_state(state, action)?;
        if let Some(id) = crashed {
            let i = usize::from(id);
            let mut discarded = Out::new();
            let restarted =
                self.inner.actors[i].on_start(id, &next.actor_storages[i], &mut discarded);
            next.actor_states[i] = Arc::new(restarted);
        }
        Some(next)
    }

    fn format_action(&self, action: &RaftAction) -> String {
        super::display::format_action(self.cfg.servers, action)
    }

    /// The Explorer's view of a step: the state it reaches, readable (see `display.rs`).
    fn format_step(&self, last_state: &RaftState, action: RaftAction) -> Option<String> {
        let next = self.next_state(last_state, action)?;
        Some(self.step_view(&next))
    }

    fn as_svg(&self, path: Path<RaftState, RaftAction>) -> Option<String> {
        self.inner.as_svg(path)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        self.properties.clone()
    }

    fn within_boundary(&self, state: &RaftState) -> bool {
        Model::within_boundary(&self.inner, state)
    }
}

impl RaftModel {
    /// The Always properties `state` violates.
    pub fn violated(&self, state: &RaftState) -> Vec<&'static str> {
        self.properties
            .iter()
            .filter(|p| p.expectation == Expectation::Always && !(p.condition)(self, state))
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

    /// The actor index of server `i` or client `c` (servers first).
    pub fn actor_id(&self, index: usize) -> Id {
        Id::from(index)
    }
}
