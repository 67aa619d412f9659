//! Tests of the swarm search: it catches catalogue mutants, finds nothing on the correct
//! model and then says incomplete, replays a walk from its seed, and shortens soundly.

use crate::catalogue::catalogue;
use crate::engine::swarm::{search, Options};
use crate::engine::swarm_shrink::{path, replay, shorten};
use raft_model::model::{discovers, ModelConfig};
use raft_model::Mutant;
use stateright::Model;
use std::time::{Duration, Instant};

fn options(walks: u64, budget: f64) -> Options {
    Options {
        seed: 0,
        first_walk: 0,
        walks,
        max_depth: 200,
        budget: Some(Duration::from_secs_f64(budget)),
        threads: 2,
        max_fingerprints: 1_000_000,
        progress: 0.0,
    }
}

fn bound(m: Mutant) -> ModelConfig {
    catalogue()
        .into_iter()
        .find(|c| c.mutant == m)
        .expect("in the catalogue")
        .bound
}

/// (a) and (d): three catalogue mutants caught on their catalogue bound with the property the
/// catalogue's exhaustive search reports; the shortened path is no longer than the walk and
/// still ends in a violation of that property.
#[test]
fn catches_catalogue_mutants_and_shortens_soundly() {
    for (m, expected) in [
        (Mutant::ForgetVoteOnRestart, "Election Safety"),
        (Mutant::AcceptStaleAppend, "Stale Messages Ignored"),
        // Liveness: through the continuation check of "Progress When Faults Stop".
        (Mutant::NoBackupOnReject, "Progress When Faults Stop"),
    ] {
        let cfg = bound(m);
        let model = cfg.clone().into_model();
        let outcome = search(&model, &options(1_000_000, 15.0));
        let v = outcome
            .violation
            .unwrap_or_else(|| panic!("{} not caught", m.name()));
        assert_eq!(v.property, expected, "{}", m.name());
        let deadline = Instant::now() + Duration::from_secs(5);
        let short = shorten(&model, v.property, &v.init, &v.actions, deadline);
        assert!(short.len() <= v.actions.len());
        let p = model
            .properties()
            .into_iter()
            .find(|p| p.name == v.property)
            .expect("the property");
        assert_eq!(replay(&model, &p, &v.init, &short), Some(short.clone()));
        let path = path(&model, &v.init, &short).expect("the shortened path replays");
        assert!(discovers(&p, &model, path.last_state()));
        // The reported walk replays alone to the same actions (--walk K).
        let alone = Options {
            first_walk: v.walk,
            walks: 1,
            ..options(1, 15.0)
        };
        let again = search(&model, &alone).violation.expect("the walk replays");
        assert_eq!(again.actions, v.actions);
    }
}

/// (b): on the correct model nothing is found, and the search says it did not finish
/// everything it was asked (never a verdict of "holds").
#[test]
fn correct_model_finds_nothing_and_stays_incomplete() {
    let model = ModelConfig::default().into_model();
    let outcome = search(&model, &options(1_000_000, 3.0));
    assert!(outcome.violation.is_none());
    assert!(outcome.out_of_budget, "a budget-bound search must say so");
    assert!(outcome.walks > 0 && outcome.distinct > 0);
}

/// (c): the same seed and number of walks give the same walks, with any number of threads.
#[test]
fn same_seed_same_walks() {
    let model = ModelConfig::default().into_model();
    let one = search(
        &model,
        &Options {
            threads: 1,
            ..options(300, 600.0)
        },
    );
    let two = search(&model, &options(300, 600.0));
    assert_eq!(
        (one.walks, one.steps, one.distinct),
        (two.walks, two.steps, two.distinct)
    );
    assert!(!one.out_of_budget);
    let other = search(
        &model,
        &Options {
            seed: 1,
            ..options(300, 600.0)
        },
    );
    assert_ne!((one.steps, one.distinct), (other.steps, other.distinct));
}
