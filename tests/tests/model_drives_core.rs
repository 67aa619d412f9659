//! Cross-crate: the checked model and the runnable node share one protocol core, and the model
//! explores it exhaustively through stateright.

use raft_impl::core::{Config, Event, NodeId, Role, Server};
use raft_model::model::ModelConfig;
use raft_model::Mutant;
use stateright::{Checker, Expectation, HasDiscoveries, Model};
use std::collections::BTreeSet;

fn small() -> ModelConfig {
    ModelConfig {
        max_term: 1,
        max_crashes: 0,
        ..ModelConfig::default()
    }
}

#[test]
fn the_runtime_reexports_the_very_core_the_model_checks() {
    // raft-impl drives raft-core, and so does the model; the types are the same (this would
    // not compile if raft-impl had a copy of its own).
    let cfg: raft_impl::core::Config = Config::new(NodeId(0), [NodeId(0)]);
    let mut s: raft_impl::core::Server<u8> = Server::new();
    s.handle(&cfg, Event::ElectionTimeout).unwrap();
    assert_eq!(s.role, Role::Leader);
}

#[test]
fn the_correct_protocol_violates_nothing_on_a_small_bound() {
    let checker = small().into_model().checker().spawn_bfs().join();
    let model = checker.model();
    for p in model.properties() {
        if p.expectation == Expectation::Always {
            assert!(
                checker.discovery(p.name).is_none(),
                "{} violated on a small bound",
                p.name
            );
        }
    }
    assert!(checker.discovery("Leader Elected").is_some());
    assert!(checker.unique_state_count() > 1000);
}

#[test]
fn a_minority_quorum_breaks_election_safety_and_the_path_replays() {
    let cfg = ModelConfig {
        mutant: Some(Mutant::MinorityQuorum),
        ..small()
    };
    // Level-order search, stopped at the first violation of the property under test (the
    // mutant violates others too; exploring on would only cost time).
    let checker = cfg
        .into_model()
        .checker()
        .finish_when(HasDiscoveries::AnyOf(BTreeSet::from(["Election Safety"])))
        .spawn_bfs()
        .join();
    let path = checker
        .discovery("Election Safety")
        .expect("two leaders in one term are found");
    let last = path.last_state();
    let leaders = last
        .servers()
        .filter(|s| !s.ghost.led_terms.is_empty())
        .count();
    assert!(
        leaders >= 2,
        "the counterexample ends with two servers that led"
    );
}
