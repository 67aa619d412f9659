//! The properties judged from the model's own records have teeth: each catches a mutant of the
//! rule it guards (breadth-first, at the first state that breaks any Always property, it is
//! among those broken), and the same bound without the mutant breaks none of them.

use super::reductions::symmetry::representative;
use super::shared::hash_of;
use super::{ModelConfig, RaftModel, RaftState};
use crate::Mutant;
use stateright::{Expectation, Model};
use std::collections::HashSet;

/// The Always properties that `state` breaks.
fn broken(m: &RaftModel, state: &RaftState) -> Vec<&'static str> {
    m.properties()
        .iter()
        .filter(|p| p.expectation == Expectation::Always && !(p.condition)(m, state))
        .map(|p| p.name)
        .collect()
}

/// Breadth-first over the renaming classes of `m`'s states: the Always properties broken at
/// the first state that breaks any (empty if none does), and the number of classes seen.
fn first_broken(m: &RaftModel) -> (Vec<&'static str>, usize) {
    let mut seen = HashSet::new();
    let mut level: Vec<RaftState> = m.init_states();
    for s in &level {
        seen.insert(hash_of(&representative(s)));
    }
    let mut actions = Vec::new();
    while !level.is_empty() {
        let mut next = Vec::new();
        for s in &level {
            let b = broken(m, s);
            if !b.is_empty() {
                return (b, seen.len());
            }
            m.actions(s, &mut actions);
            for a in actions.drain(..) {
                let Some(n) = m.next_state(s, a) else {
                    continue;
                };
                if m.within_boundary(&n) && seen.insert(hash_of(&representative(&n))) {
                    next.push(n);
                }
            }
        }
        level = next;
    }
    (Vec::new(), seen.len())
}

/// `property` catches `mutant` on `bound`, and nothing breaks there without it.
fn catches(property: &str, mutant: Mutant, bound: ModelConfig) {
    let bound = ModelConfig {
        liveness: false,
        ..bound
    };
    let correct = bound.clone().into_model();
    assert!(
        correct.properties().iter().any(|p| p.name == property),
        "{property} is not checked on this bound"
    );
    let (b, states) = first_broken(&correct);
    assert!(b.is_empty(), "the correct rules break {b:?}");
    assert!(
        states > 100,
        "the bound explores something ({states} classes)"
    );
    let broken_model = ModelConfig {
        mutant: Some(mutant),
        ..bound
    }
    .into_model();
    let (b, _) = first_broken(&broken_model);
    assert!(
        b.contains(&property),
        "{mutant}: the first broken state breaks {b:?}, not {property}"
    );
}

fn two_servers() -> ModelConfig {
    ModelConfig {
        servers: 2,
        max_crashes: 0,
        reads: 0,
        ..ModelConfig::default()
    }
}

#[test]
fn commit_index_never_decreases_catches_a_reset_on_a_new_term() {
    catches(
        "Commit Index Never Decreases",
        Mutant::CommitResetOnNewTerm,
        two_servers(),
    );
}

#[test]
fn terms_never_decrease_catches_a_term_forgotten_on_restart() {
    let bound = ModelConfig {
        max_crashes: 1,
        ..two_servers()
    };
    catches("Terms Never Decrease", Mutant::ForgetTermOnRestart, bound);
}

#[test]
fn pre_vote_majority_is_counted_from_the_grants_received() {
    let bound = ModelConfig {
        pre_vote: true,
        check_quorum: true,
        ..two_servers()
    };
    catches(
        "Elections Follow A Pre-Vote Majority",
        Mutant::PreVoteWithoutMajority,
        bound.clone(),
    );
    catches(
        "Elections Follow A Pre-Vote Majority",
        Mutant::PreVoteRaisesTerm,
        bound,
    );
}

#[test]
fn reads_confirmed_by_a_quorum_catches_a_read_answered_without_one() {
    let bound = ModelConfig {
        read_index: true,
        reads: 1,
        write_behind: false,
        ..two_servers()
    };
    catches(
        "Reads Confirmed By A Quorum",
        Mutant::ReadWithoutQuorum,
        bound,
    );
}

#[test]
fn snapshot_image_equals_applied_prefix_catches_a_snapshot_without_sessions() {
    let bound = ModelConfig {
        max_snapshots: 1,
        ..two_servers()
    };
    catches(
        "Snapshot Image Equals Applied Prefix",
        Mutant::SnapshotDropsSessions,
        bound,
    );
}

/// A ghost's pre-vote grants and read records are renamed with the servers; ids are left out
/// of the order between ghosts. (With three voters or fewer no reachable state keeps an id in
/// them: one grant, or one acknowledgement, completes a majority in the step that brings it,
/// and the record is cleared or answered there. So they add no distinct state on the gate's
/// bounds, and this hand-built ghost is where their renaming is shown.)
#[test]
fn renaming_renames_pre_vote_grants() {
    use super::judge::ghost::{Ghost, PendingRead};
    use raft_core::NodeId;
    let mut g = Ghost::default();
    g.volatile.pre_vote_grants.insert(NodeId(1));
    g.volatile.reads.push(PendingRead {
        id: 7,
        acked: [NodeId(2)].into(),
    });
    let g = super::shared::Shared::new(g);
    let swap = |n: NodeId| NodeId([0, 2, 1][n.0 as usize]);
    let r = Ghost::renamed(&g, swap);
    assert_eq!(r.volatile.pre_vote_grants, [NodeId(2)].into());
    assert_eq!(r.volatile.reads[0].acked, [NodeId(1)].into());
    assert_ne!(*r, *g);
    assert_eq!(r.cmp_ignoring_ids(&g), std::cmp::Ordering::Equal);
    assert_ne!(r.ids(|n| n), g.ids(|n| n));
    assert_eq!(r.ids(swap), g.ids(|n| n));
    // Saved with storage: none of it.
    assert_eq!(Ghost::durable(&g).volatile, Default::default());
}
