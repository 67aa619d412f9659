//! The Raft RPCs (Figure 2). The sender's id travels in the envelope, not in the message.

use super::types::{Entry, Index, Term};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Message<C> {
    /// Invoked by candidates to gather votes (§5.2). The candidate is the sender.
    RequestVote {
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
    },
    /// Reply to `RequestVote`.
    RequestVoteResponse { term: Term, vote_granted: bool },
    /// Invoked by the leader to replicate entries (§5.3); also the heartbeat. The leader is the
    /// sender.
    AppendEntries {
        term: Term,
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vec<Entry<C>>,
        leader_commit: Index,
    },
    /// Reply to `AppendEntries`. On success `match_index` is the last index the request covered
    /// (`prev_log_index + entries.len()`), which is what the leader may trust; on failure it is
    /// the follower's last log index (with `Config::fast_backup`, the index before its first
    /// entry of the conflicting term), a hint for moving `next_index` back quickly.
    AppendEntriesResponse {
        term: Term,
        success: bool,
        match_index: Index,
    },
}

impl<C> Message<C> {
    /// The same message with its entries' commands translated by `f` (the only part that
    /// depends on the command type); `None` when `f` cannot translate them.
    pub fn try_map_entries<D>(
        &self,
        f: impl FnOnce(&[Entry<C>]) -> Option<Vec<Entry<D>>>,
    ) -> Option<Message<D>> {
        Some(match self {
            Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
            } => Message::RequestVote {
                term: *term,
                last_log_index: *last_log_index,
                last_log_term: *last_log_term,
            },
            Message::RequestVoteResponse { term, vote_granted } => Message::RequestVoteResponse {
                term: *term,
                vote_granted: *vote_granted,
            },
            Message::AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => Message::AppendEntries {
                term: *term,
                prev_log_index: *prev_log_index,
                prev_log_term: *prev_log_term,
                entries: f(entries)?,
                leader_commit: *leader_commit,
            },
            Message::AppendEntriesResponse {
                term,
                success,
                match_index,
            } => Message::AppendEntriesResponse {
                term: *term,
                success: *success,
                match_index: *match_index,
            },
        })
    }

    /// The term every Raft message carries.
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote { term, .. }
            | Message::RequestVoteResponse { term, .. }
            | Message::AppendEntries { term, .. }
            | Message::AppendEntriesResponse { term, .. } => *term,
        }
    }
}
