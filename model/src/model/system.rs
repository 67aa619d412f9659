//! The checked model: stateright's actor system of Raft servers and clients, wrapped to add one
//! reduction and the properties.
//!
//! Reduction (crash canonicalization): when a server crashes, its volatile state is gone for
//! good: nothing can read it again except properties, and on restart it is replaced by the state
//! rebuilt from storage. So a crashed server is shown with the state it will restart with
//! (`on_start(storage)`). Every property that looks at crashed servers reads only what survives a
//! crash (the log, the term, the ghost records, all saved with storage), so no verdict changes,
//! but all the pre-crash states that share one storage collapse into one.

use super::actor::RaftActor;
use super::config::ModelConfig;
use super::history::History;
use super::register::Msg;
use super::Timer;
use stateright::actor::{Actor, ActorModel, ActorModelAction, ActorModelState, Id, Out};
use stateright::{Model, Path, Property};
use std::sync::Arc;

/// One global state: every actor's state, the network, timers, crash flags, storage, history.
pub type RaftState = ActorModelState<RaftActor, History>;
/// One step of the system.
pub type RaftAction = ActorModelAction<Msg, Timer, ()>;

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
        Model::actions(&self.inner, state, actions)
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
        Some(super::display::step_view(self, &next))
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
    /// The actor index of server `i` or client `c` (servers first).
    pub fn actor_id(&self, index: usize) -> Id {
        Id::from(index)
    }
}
