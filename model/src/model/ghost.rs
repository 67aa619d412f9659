//! Ghost records: model-only bookkeeping that lets state properties speak about history.
//!
//! They are kept per server in the model adapter (never in the core) and saved with the
//! server's storage, so a crash does not erase them. They only grow, and every step of every
//! server is observed, so a property stated over them at every reachable state sees every event
//! the paper's history-based property speaks of.

use super::register::Cmd;
use super::shared::Shared;
use raft_core::{Entry, Index, Output, Role, Server, Term};
use std::collections::{BTreeMap, BTreeSet};

/// An entry a leader marked committed: the entry at `index` was committed while the leader was in
/// `commit_term`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Committed {
    pub index: Index,
    pub entry: Entry<Cmd>,
    pub commit_term: Term,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ghost {
    /// Every term in which this server was leader at the end of some step.
    pub led_terms: BTreeSet<Term>,
    /// Entries this server committed as leader, with the earliest term it did so in.
    pub committed: BTreeMap<(Index, Entry<Cmd>), Term>,
    /// `applied[i - 1]` is the entry this server applied at index `i` (the first time).
    pub applied: Vec<Entry<Cmd>>,
    /// This server once applied, at the same index, an entry different from an earlier one
    /// (possible only across a restart).
    pub applied_conflict: bool,
    /// A leader step removed or changed an entry of its own log (Leader Append-Only broken).
    pub append_only_violated: bool,
    /// Witness: a follower truncated conflicting entries.
    pub truncated_conflict: bool,
    /// A step on a Raft message of an earlier term than this server's changed the server
    /// (Stale Messages Ignored broken).
    pub stale_message_acted_on: bool,
    /// Witness: as leader, this server answered a read from its register without a log entry
    /// (ReadIndex), and the read returned a written value.
    pub read_served_by_index: bool,
}

impl Ghost {
    /// Record what one step of the core did: `before` and `after` are the server around the step.
    /// Copy-on-write: the shared record is copied only when the step changes it.
    pub fn record(
        this: &mut Shared<Ghost>,
        before: &Server<Cmd>,
        after: &Server<Cmd>,
        out: &Output<Cmd>,
    ) {
        if after.role == Role::Leader {
            if !this.led_terms.contains(&after.current_term()) {
                Shared::make_mut(this)
                    .led_terms
                    .insert(after.current_term());
            }
            // Leader Append-Only: within one leadership, the log only grows.
            if before.role == Role::Leader
                && before.current_term() == after.current_term()
                && !after.log().starts_with(before.log())
                && !this.append_only_violated
            {
                Shared::make_mut(this).append_only_violated = true;
            }
            for index in before.commit_index + 1..=after.commit_index {
                if let Some(entry) = after.entry(index) {
                    if !this.committed.contains_key(&(index, entry.clone())) {
                        Shared::make_mut(this)
                            .committed
                            .insert((index, entry.clone()), after.current_term());
                    }
                }
            }
        }
        if let Some(after_index) = out.persist.truncated_after {
            if after_index < before.last_log_index() && !this.truncated_conflict {
                Shared::make_mut(this).truncated_conflict = true;
            }
        }
        if !out.apply.is_empty() {
            Shared::make_mut(this).observe_applied(&out.apply);
        }
    }

    /// Record that a step on a message of an earlier term than `before`'s changed the server
    /// into `after` (§5.1: a stale request is refused with the current term, a stale reply is
    /// dropped; neither may change the receiver).
    pub fn record_stale_step(this: &mut Shared<Ghost>, before: &Server<Cmd>, after: &Server<Cmd>) {
        if before != after && !this.stale_message_acted_on {
            Shared::make_mut(this).stale_message_acted_on = true;
        }
    }

    fn observe_applied(&mut self, apply: &[(Index, Entry<Cmd>)]) {
        for (index, entry) in apply {
            let i = *index as usize;
            if i <= self.applied.len() {
                if self.applied[i - 1] != *entry {
                    self.applied_conflict = true;
                }
            } else if i == self.applied.len() + 1 {
                self.applied.push(entry.clone());
            } else {
                // Applied out of order: record it as a conflict, it can never be right.
                self.applied_conflict = true;
            }
        }
    }

    /// Entries committed as recorded by this server, as (index, entry, commit term).
    pub fn committed(&self) -> impl Iterator<Item = Committed> + '_ {
        self.committed
            .iter()
            .map(|((index, entry), term)| Committed {
                index: *index,
                entry: entry.clone(),
                commit_term: *term,
            })
    }
}
