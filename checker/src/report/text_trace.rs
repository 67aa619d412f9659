//! Counterexamples as numbered, readable traces: one line per step with the action, then the
//! servers whose state it changed.

use raft_model::model::display::{self, actor_name, ActorDisplay};
use raft_model::model::liveness;
use raft_model::model::{ModelConfig, RaftAction, RaftState};
use stateright::Path;
use std::fmt::Write as _;

pub type Action = RaftAction;

/// One action in the paper's words.
pub fn format_action(cfg: &ModelConfig, action: &Action) -> String {
    display::format_action(cfg.servers, action)
}

/// The actions of a path, formatted.
pub fn actions(cfg: &ModelConfig, path: &Path<RaftState, Action>) -> Vec<String> {
    path.clone()
        .into_actions()
        .iter()
        .map(|a| format_action(cfg, a))
        .collect()
}

/// With `--liveness`, when the path's last state makes no progress once faults stop: the
/// fault-free continuation from it, step by step, ending with why it did not converge.
pub fn continuation(cfg: &ModelConfig, path: &Path<RaftState, Action>) -> Option<Vec<String>> {
    if !cfg.liveness {
        return None;
    }
    let last = path.last_state();
    let model = cfg.clone().into_model();
    let c = liveness::continuation(&model, last, true);
    (!c.converged).then_some(c.steps)
}

/// The whole trace: the initial state, then each step with the actors it changed (and, for a
/// liveness failure, the continuation that makes no progress).
pub fn render(cfg: &ModelConfig, path: &Path<RaftState, Action>) -> String {
    let mut out = String::new();
    let steps = path.clone().into_vec();
    let describe = |state: &RaftState, i: usize| ActorDisplay(state, i).to_string();
    if let Some((init, _)) = steps.first() {
        let _ = writeln!(out, "   0. initial state");
        for i in 0..init.actor_count() {
            let _ = writeln!(out, "        {}", describe(init, i));
        }
    }
    for k in 1..steps.len() {
        let (prev, action) = &steps[k - 1];
        let (next, _) = &steps[k];
        let action = action
            .as_ref()
            .map(|a| format_action(cfg, a))
            .unwrap_or_default();
        let _ = writeln!(out, "{k:>4}. {action}");
        for i in 0..next.actor_count() {
            if next.actor(i) != prev.actor(i) || next.is_crashed(i) != prev.is_crashed(i) {
                let _ = writeln!(out, "        {}", describe(next, i));
            }
        }
        // Messages this step put into the network.
        let before: Vec<_> = prev.network.iter_all().collect();
        for env in next.network.iter_all() {
            if !before.contains(&env) {
                let _ = writeln!(
                    out,
                    "        sent {} → {}: {}",
                    actor_name(cfg.servers, usize::from(env.src)),
                    actor_name(cfg.servers, usize::from(env.dst)),
                    env.msg
                );
            }
        }
    }
    if let Some(steps) = continuation(cfg, path) {
        for (k, step) in steps.iter().enumerate() {
            let _ = writeln!(out, "      {}{step}", if k == 0 { "" } else { "  " });
        }
    }
    out
}
