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
