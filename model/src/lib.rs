//! raft-model: the Raft protocol written once, and its stateright model.
//!
//! * The protocol itself is the crate raft-core (`model/core/`): a deterministic state machine
//!   (`Server::handle(Event) -> Result<Output, CoreError>`) with no I/O, no clock and no
//!   randomness. The model checker and the runnable node (raft-impl) both drive that very code;
//!   raft-impl does not depend on this crate.
//! * [`mutant`] is the catalogue of classic Raft bugs, as broken implementations of raft-core's
//!   `Rules`: they exist only here.
//! * [`model`] is the thin stateright `Actor` adapter around the core, the model's clients, the
//!   ghost records the properties need, the bounds, and the properties themselves.
//! * [`conform`] replays traces of real runs (one JSON Lines file per node) against the model:
//!   trace conformance.

pub mod conform;
pub mod model;
pub mod mutant;

pub use mutant::{ModelRules, Mutant};
