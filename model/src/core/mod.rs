//! The Raft protocol core (Ongaro & Ousterhout 2014, Figure 2).
//!
//! Everything here is deterministic: no I/O, no clock, no randomness. A driver (the stateright
//! adapter in [`crate::model`], or the runtime in raft-impl) feeds [`Event`]s into
//! [`Server::handle`] and carries out the returned [`Output`] in this order:
//!
//! 1. make durable what [`Output::persist`] names (hard state and log changes),
//! 2. send [`Output::messages`],
//! 3. apply [`Output::apply`] to the state machine, in order.
//!
//! The rules are split by concern: [`election`] (RequestVote), [`replication`] (AppendEntries and
//! commitment), and [`server`] (state, term rules, restart).

mod election;
mod message;
mod mutant;
mod replication;
mod server;
mod types;

pub use message::Message;
pub use mutant::Mutant;
pub use server::{Config, Event, Output, Persist, ProposeResult, Server};
pub use types::{Entry, HardState, Index, NodeId, Role, Term};

#[cfg(test)]
mod tests;
