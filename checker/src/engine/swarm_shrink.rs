//! Shortening a swarm walk's counterexample before it is shown: first cut the cycles (a state
//! met twice: the steps between are dropped), then greedy delta debugging: drop chunks of
//! steps, halving their size down to one step, and keep a candidate when its remaining actions,
//! replayed from the initial state, still reach a violation of the same property. Bounded by a
//! deadline; the result is never longer than the walk and always a valid path of the bound.

use crate::engine::fingerprint::fingerprint;
use crate::engine::swarm_choice::message_kind;
use raft_model::model::{discovers, RaftAction, RaftModel, RaftState};
use stateright::actor::ActorModelAction;
use stateright::{Model, Path, Property};
use std::time::Instant;

/// An action's shape: its kind and the actors it joins (a message's type and link); `None`
/// for actions matched only exactly (timers, crashes, restarts carry no content of their own).
fn shape(action: &RaftAction) -> Option<(usize, usize, usize)> {
    match action {
        ActorModelAction::Deliver { src, dst, msg } => {
            Some((message_kind(msg), usize::from(*src), usize::from(*dst)))
        }
        ActorModelAction::Drop(env) => Some((
            100 + message_kind(&env.msg),
            usize::from(env.src),
            usize::from(env.dst),
        )),
        _ => None,
    }
}

/// The step `action` stands for among the `enabled` ones: itself, or the first of its shape.
fn resolve(enabled: &[RaftAction], action: &RaftAction) -> Option<RaftAction> {
    if enabled.contains(action) {
        return Some(action.clone());
    }
    let want = shape(action)?;
    enabled.iter().find(|a| shape(a) == Some(want)).cloned()
}

/// Replay `actions` from `init` (each resolved among the enabled ones, or skipped: see the
/// module's comment): the actions taken up to the first state that violates `property`, or
/// `None` when no state violates it.
pub fn replay(
    model: &RaftModel,
    property: &Property<RaftModel>,
    init: &RaftState,
    actions: &[RaftAction],
) -> Option<Vec<RaftAction>> {
    let mut state = init.clone();
    let mut taken = Vec::new();
    if discovers(property, model, &state) {
        return Some(taken);
    }
    let mut enabled = Vec::new();
    for action in actions {
        enabled.clear();
        model.actions(&state, &mut enabled);
        let Some(action) = resolve(&enabled, action) else {
            continue;
        };
        let Some(next) = model.next_state(&state, action.clone()) else {
            continue;
        };
        if !model.within_boundary(&next) {
            continue;
        }
        state = next;
        taken.push(action);
        if discovers(property, model, &state) {
            return Some(taken);
        }
    }
    None
}

/// `actions` with every cycle cut: when a state recurs, the steps since its first visit go.
pub fn cut_cycles(model: &RaftModel, init: &RaftState, actions: &[RaftAction]) -> Vec<RaftAction> {
    let mut kept: Vec<RaftAction> = Vec::new();
    // The state after each kept prefix, and its fingerprint (walks are short: a scan will do).
    let mut states = vec![init.clone()];
    let mut keys = vec![fingerprint(init)];
    for action in actions {
        let last = states.last().expect("the initial state");
        let Some(next) = model.next_state(last, action.clone()) else {
            break;
        };
        let key = fingerprint(&next);
        match (0..states.len()).find(|&k| keys[k] == key && states[k] == next) {
            // The same state again: the steps since position k lead nowhere.
            Some(k) => {
                kept.truncate(k);
                states.truncate(k + 1);
                keys.truncate(k + 1);
            }
            None => {
                kept.push(action.clone());
                states.push(next);
                keys.push(key);
            }
        }
    }
    kept
}

/// The shortened actions of a counterexample to `property` from `init` (the walk's `actions`,
/// ending at a violating state), within `deadline`.
pub fn shorten(
    model: &RaftModel,
    property: &str,
    init: &RaftState,
    actions: &[RaftAction],
    deadline: Instant,
) -> Vec<RaftAction> {
    let Some(p) = model.properties().into_iter().find(|p| p.name == property) else {
        return actions.to_vec();
    };
    let mut best = actions.to_vec();
    let cut = cut_cycles(model, init, actions);
    if let Some(taken) = replay(model, &p, init, &cut) {
        best = taken;
    }
    let mut chunk = best.len().div_ceil(2).max(1);
    loop {
        let mut changed = false;
        let mut i = 0;
        while i < best.len() {
            if Instant::now() >= deadline {
                return best;
            }
            let end = (i + chunk).min(best.len());
            let candidate: Vec<RaftAction> =
                best[..i].iter().chain(&best[end..]).cloned().collect();
            match replay(model, &p, init, &candidate) {
                // Never longer: a resolved step may reach the violation later than before.
                Some(taken) if taken.len() < best.len() => {
                    best = taken;
                    changed = true;
                }
                _ => i += chunk,
            }
        }
        if chunk == 1 && !changed {
            return best;
        }
        chunk = (chunk / 2).max(1);
    }
}

/// The counterexample as a stateright path (for the trace, the exports and the Explorer's
/// link); `None` if it does not replay (a defect).
pub fn path(
    model: &RaftModel,
    init: &RaftState,
    actions: &[RaftAction],
) -> Option<Path<RaftState, RaftAction>> {
    Path::from_actions(model, init.clone(), actions.iter())
}
