//! Symmetry reduction is sound only if renaming servers maps reachable states to reachable
//! states with the same verdicts; these tests check that on whole (small) state spaces.

use super::judge::register::Msg;
use super::reductions::symmetry::{
    continuation_order, rename_servers, rename_to_order, representative, representative_hash,
};
use super::shared::hash_of;
use super::{ModelConfig, RaftModel, RaftState};
use stateright::Model;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

fn fp<T: Hash>(s: &T) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Every reachable state of `m` (breadth-first; the bound keeps it small).
fn reachable(m: &RaftModel) -> HashMap<u64, RaftState> {
    let mut seen = HashMap::new();
    let mut frontier: Vec<RaftState> = m.init_states();
    for s in &frontier {
        seen.insert(fp(s), s.clone());
    }
    let mut actions = Vec::new();
    while let Some(s) = frontier.pop() {
        m.actions(&s, &mut actions);
        for a in actions.drain(..) {
            if let Some(n) = m.next_state(&s, a) {
                if m.within_boundary(&n) && !seen.contains_key(&fp(&n)) {
                    seen.insert(fp(&n), n.clone());
                    frontier.push(n);
                }
            }
        }
    }
    seen
}

const PERMUTATIONS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

fn small_bound() -> ModelConfig {
    ModelConfig {
        max_term: 1,
        reads: 0,
        max_crashes: 1,
        ..ModelConfig::default()
    }
}

#[test]
fn renaming_maps_reachable_states_to_reachable_states_with_the_same_verdicts() {
    renaming_keeps_reachability_and_verdicts(small_bound());
}

/// Snapshots (§7) carry no server ids (the model refuses symmetry with configurations), and
/// their images name clients, not servers: renaming servers keeps them as they are.
#[test]
fn renaming_keeps_reachability_and_verdicts_with_snapshots() {
    let bound = ModelConfig {
        max_snapshots: 1,
        max_crashes: 0,
        ..small_bound()
    };
    let states = renaming_keeps_reachability_and_verdicts(bound);
    assert!(
        states
            .values()
            .any(|s| s.servers().any(|s| s.ghost.snapshot_installed)),
        "the bound reaches an installed snapshot"
    );
}

fn renaming_keeps_reachability_and_verdicts(bound: ModelConfig) -> HashMap<u64, RaftState> {
    let m = bound.into_model();
    let states = reachable(&m);
    assert!(states.len() > 1_000, "the bound explores something");
    let properties = m.properties();
    for s in states.values() {
        for to in PERMUTATIONS {
            let renamed = rename_servers(s, &to);
            assert!(
                states.contains_key(&fp(&renamed)),
                "renaming {to:?} leaves the reachable states:\n{s:#?}"
            );
            for p in &properties {
                assert_eq!(
                    (p.condition)(&m, s),
                    (p.condition)(&m, &renamed),
                    "{}",
                    p.name
                );
            }
        }
    }
    states
}

#[test]
fn the_representative_is_a_renaming_shared_by_the_whole_class() {
    representative_is_shared_by_the_whole_class(small_bound());
}

/// The duplicating network keeps the last delivered message in the state (ids included): the
/// representative must rename it canonically too, or the class count depends on which member
/// of a class the search meets first (it varied from run to run before).
#[test]
fn the_representative_is_shared_by_the_whole_class_on_a_duplicating_network() {
    representative_is_shared_by_the_whole_class(ModelConfig {
        network: super::NetworkKind::UnorderedDuplicating,
        max_in_flight: 2,
        max_crashes: 0,
        ..small_bound()
    });
}

fn representative_is_shared_by_the_whole_class(bound: ModelConfig) {
    let m = bound.into_model();
    let states = reachable(&m);
    let mut classes = HashSet::new();
    let mut exact = 0;
    for s in states.values() {
        let r = representative(s);
        // A member of the class ...
        assert!(
            PERMUTATIONS.iter().any(|to| rename_servers(s, to) == r),
            "the representative is not a renaming"
        );
        // ... that does not move again.
        assert!(representative(&r) == r, "the representative is not stable");
        // Hashing it without building it gives its hash (with the checker's hasher too, and
        // from every renaming: the slots' kept renamed hashes must be those of the renaming).
        assert_eq!(fp(&representative_hash(s)), fp(&r));
        assert_eq!(hash_of(&representative_hash(s)), hash_of(&r));
        for to in PERMUTATIONS {
            assert_eq!(fp(&representative_hash(&rename_servers(s, &to))), fp(&r));
        }
        classes.insert(fp(&r));
        if PERMUTATIONS
            .iter()
            .all(|to| representative(&rename_servers(s, to)) == r)
        {
            exact += 1;
        }
    }
    // Servers that look alike but differ in relations (who voted for whom) may leave a class
    // split in two; require the reduction to stay close to the ideal 3! = 6.
    let ratio = states.len() as f64 / classes.len() as f64;
    assert!(ratio > 4.5, "only {ratio:.2}x fewer states");
    // Canonical: every renaming of every state has the same representative (the class count
    // then does not depend on the order of the search; the gate compares it with a baseline).
    assert_eq!(
        exact,
        states.len(),
        "{exact} of {} states share their class's representative",
        states.len()
    );
    eprintln!(
        "{} states, {} classes, {ratio:.2}x, {exact} exact",
        states.len(),
        classes.len()
    );
}

/// "Progress When Faults Stop" memoizes its verdict on what the continuation reads, before
/// renaming; that is sound only if the renaming it runs on (`continuation_order`) is canonical
/// for what it reads: every renaming of a state must give the continuation the same input.
#[test]
fn the_continuation_runs_on_one_renaming_for_the_whole_class() {
    for bound in [
        small_bound(),
        ModelConfig {
            network: super::NetworkKind::UnorderedDuplicating,
            max_in_flight: 2,
            max_crashes: 0,
            ..small_bound()
        },
    ] {
        let m = bound.into_model();
        let n = m.cfg.servers;
        // What the continuation reads: each server's core state and whether it stopped, the
        // deliverable Raft messages between servers, the clients' progress.
        let input = |s: &RaftState| {
            let c = rename_to_order(s, &continuation_order(s));
            let servers: Vec<_> = c
                .servers()
                .map(|x| (x.server.clone(), x.fault.is_some()))
                .collect();
            let mut messages: Vec<_> = c
                .network
                .iter_deliverable()
                .filter(|e| usize::from(e.src) < n && usize::from(e.dst) < n)
                .filter(|e| matches!(e.msg, Msg::Raft(_)))
                .map(|e| (usize::from(e.src), usize::from(e.dst), e.msg.clone()))
                .collect();
            messages.sort();
            let clients: Vec<_> = c.actor_states().skip(n).cloned().collect();
            (servers, messages, clients)
        };
        let mut ties = 0;
        for s in reachable(&m).values() {
            let own = input(s);
            for to in PERMUTATIONS {
                assert!(
                    input(&rename_servers(s, &to)) == own,
                    "renaming {to:?} changes the continuation's input:\n{s:#?}"
                );
            }
            // Servers that look alike: the order among them comes from the signature.
            let o = continuation_order(s);
            ties += usize::from(o.windows(2).any(|w| {
                let (a, b) = (s.server(w[0]), s.server(w[1]));
                a.map(|x| (&x.server.hard, x.server.role))
                    == b.map(|x| (&x.server.hard, x.server.role))
            }));
        }
        assert!(ties > 0, "the bound has servers that look alike");
    }
}
