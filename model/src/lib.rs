//! raft-model: the Raft protocol written once, and its stateright model.
//!
//! * [`core`] is the protocol: a deterministic state machine (`Server::handle(Event) -> Output`)
//!   with no I/O, no clock and no randomness. The model checker and the runnable node (raft-impl)
//!   both drive this very code.
//! * [`model`] is the thin stateright `Actor` adapter around the core, the model's clients, the
//!   ghost records the properties need, the bounds, and the properties themselves.
//! * [`conform`] replays traces of real runs (one JSON Lines file per node) against the model:
//!   trace conformance.

pub mod conform;
pub mod core;
pub mod model;
