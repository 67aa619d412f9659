//! Shortest counterexamples by a level-order search.
//!
//! stateright 0.31's BFS keeps overwriting a discovery while its workers run, so the path it
//! reports is not always a shortest one, and DFS paths are long. This search explores the model
//! one depth level at a time and stops at the end of the first level that contains a violating
//! state, so the path it returns has the minimum number of steps: every state at a smaller depth
//! was checked first. It keeps one fingerprint, parent and action index per state (not the
//! states), and rebuilds the path by replaying the actions from the initial state.

use crate::engine::level_order::{replay, LevelOrder};
use raft_model::model::discovers;
use raft_model::model::{RaftAction, RaftModel, RaftState};
use stateright::{Expectation, Model, Path};
use std::time::Instant;

/// How a level-order search ended.
pub enum Search {
    /// The first violating state found at the smallest depth: its property and path.
    Violated {
        property: &'static str,
        path: Path<RaftState, RaftAction>,
        unique_states: usize,
    },
    /// The whole bounded space was explored and no Always property fails.
    Exhausted { unique_states: usize },
    /// The deadline passed first.
    OutOfTime { unique_states: usize },
}

/// Search for the shortest path to a state violating one of `wanted` (Always properties; all of
/// them when empty), deduplicating renamed states when `symmetry` is on.
pub fn search(
    model: &RaftModel,
    wanted: &[&str],
    deadline: Option<Instant>,
    symmetry: bool,
) -> Search {
    let properties: Vec<_> = model
        .properties()
        .into_iter()
        .filter(|p| p.expectation == Expectation::Always)
        .filter(|p| wanted.is_empty() || wanted.contains(&p.name))
        .collect();
    let mut search = LevelOrder::new(model, symmetry);
    while !search.level.is_empty() {
        // Check the whole level before going deeper.
        for (s, k) in &search.level {
            if let Some(p) = properties.iter().find(|p| discovers(p, model, s)) {
                let (root, taken) = replay(model, &search.seen, *k, symmetry);
                let path =
                    Path::from_actions(model, root, taken.iter()).expect("a recorded path replays");
                return Search::Violated {
                    property: p.name,
                    path,
                    unique_states: search.seen.len(),
                };
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Search::OutOfTime {
                unique_states: search.seen.len(),
            };
        }
        search.expand();
    }
    Search::Exhausted {
        unique_states: search.seen.len(),
    }
}
