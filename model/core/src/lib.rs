//! raft-core: the Raft protocol (Ongaro & Ousterhout 2014, Figure 2), written once.
//!
//! Everything here is deterministic: no I/O, no clock, no randomness. A driver (the stateright
//! model in raft-model, or the runnable node in raft-impl) feeds [`Event`]s into
//! [`Server::handle`] and carries out the returned [`Output`] in this order:
//!
//! 1. make durable what [`Output::persist`] names (hard state and log changes; a leader's own
//!    new entries may instead be written behind, reported with [`Event::Persisted`]: see
//!    [`Persist::write_behind`]),
//! 2. send [`Output::messages`],
//! 3. replace the state machine with the snapshot's image if [`Output::restore`] is set, then
//!    apply [`Output::apply`] to it ([`service::Service`]), in order,
//! 4. answer the reads of [`Output::reads`] (read.rs: linearizable reads without the log).
//!
//! A state the correct protocol can never reach is a [`CoreError`], never a silent drop or
//! clamp: the node logs it and stops, the model reports it as a violated property.
//!
//! The rules are split by concern: [`election`] (RequestVote), [`lease`] (PreVote,
//! CheckQuorum and the leader's lease on votes), [`replication`] (AppendEntries and
//! commitment), [`read`] (ReadIndex), [`transfer`] (leadership transfer), [`membership`] (configuration changes), [`compaction`] (snapshots and InstallSnapshot), [`server`] (state, the higher-term rule, restart); [`rules`] names each
//! decision point of the paper once, with the correct rule as its only implementation in this
//! crate ([`Protocol`]). The model checker supplies broken implementations of its own (the
//! mutant catalogue) to show that its properties have teeth; nothing here can name one.

mod compaction;
mod election;
mod error;
mod lease;
mod log;
mod membership;
mod message;
mod progress;
mod read;
mod replication;
pub mod rules;
mod server;
pub mod service;
pub mod trace_record;
mod transfer;
mod types;

pub use error::CoreError;
pub use log::Log;
pub use message::{
    AppendEntries, AppendEntriesResponse, InstallSnapshot, Message, RequestVote,
    RequestVoteResponse, TimeoutNow,
};
pub use progress::{LeaderState, Progress};
pub use rules::{Protocol, Rules};
pub use server::{Config, Event, Output, Persist, ProposeResult, Server, Window};
pub use types::{
    Address, ConfigChange, ConfigRefusal, Entry, HardState, Index, Membership, NodeId, Payload,
    PendingRead, ReadResult, Role, Snapshot, Term, TransferResult, ENTRY_OVERHEAD_BYTES, MAX_TERM,
    MAX_TERM_JUMP,
};

#[cfg(test)]
mod compaction_tests;
#[cfg(test)]
mod lease_tests;
#[cfg(test)]
mod membership_tests;
#[cfg(test)]
mod read_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod transfer_tests;
