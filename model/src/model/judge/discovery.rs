//! Whether a state is a property's discovery: the one test every search makes (the model's
//! Explorer view, and the checker's compact and distributed engines and shortest paths).

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
