//! Whether a state is a property's discovery, the one test every search here makes (the
//! compact engines' `Properties`, the level-order searches of `shortest` and a shard's prefix).

use stateright::{Expectation, Model, Property};

/// True when `state` is a discovery of `p`: it violates an Always property or witnesses a
/// Sometimes one. Never for an Eventually property (which needs paths; the model states none).
pub fn discovers<M: Model>(p: &Property<M>, model: &M, state: &M::State) -> bool {
    match p.expectation {
        Expectation::Always => !(p.condition)(model, state),
        Expectation::Sometimes => (p.condition)(model, state),
        Expectation::Eventually => false,
    }
}
