//! The Raft RPCs (Figure 2), one struct per RPC, passed whole. The sender's id travels in the
//! envelope ([`crate::Event::Receive`]), not in the message.

use super::types::{Entry, Index, Snapshot, Term};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Invoked by candidates to gather votes (§5.2). The candidate is the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestVote {
    /// The candidate's term.
    pub term: Term,
    /// Index and term of the candidate's last log entry (§5.4.1).
    pub last_log_index: Index,
    pub last_log_term: Term,
    /// The candidate campaigns because the leader of its previous term handed leadership to
    /// it (thesis §3.10, [`TimeoutNow`]): a voter in that leader's lease answers anyway.
    #[serde(default)]
    pub transfer: bool,
}

/// Thesis §3.10, leadership transfer: the leader tells the target, whose log it knows holds
/// everything up to `last_log_index` (of term `last_log_term`), to start an election now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TimeoutNow {
    /// The leader's term.
    pub term: Term,
    /// The leader's last log entry when it sent this, which the target holds.
    pub last_log_index: Index,
    pub last_log_term: Term,
}

/// Reply to [`RequestVote`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestVoteResponse {
    /// The voter's current term, for the candidate to update itself.
    pub term: Term,
    pub vote_granted: bool,
}

/// Invoked by the leader to replicate entries (§5.3); also the heartbeat. The leader is the
/// sender.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AppendEntries<C> {
    /// The leader's term.
    pub term: Term,
    /// Index and term of the entry just before `entries`.
    pub prev_log_index: Index,
    pub prev_log_term: Term,
    /// Entries to store (empty for a heartbeat); the first one goes at `prev_log_index + 1`.
    pub entries: Vec<Entry<C>>,
    /// The leader's commit_index.
    pub leader_commit: Index,
    /// The leader's read round (read.rs): the reply echoes it. 0 before its first read.
    #[serde(default)]
    pub read_round: u64,
}

/// Reply to [`AppendEntries`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AppendEntriesResponse {
    /// The follower's current term, for the leader to update itself.
    pub term: Term,
    pub success: bool,
    /// On success, the last index the request covered (`prev_log_index + entries.len()`),
    /// which is what the leader may trust. On failure, a hint for moving `next_index` back:
    /// the follower's last log index (with `Config::fast_backup`, the index before its first
    /// entry of the conflicting term).
    pub match_index: Index,
    /// The request's read round, echoed: a reply of the leader's term confirms its leadership
    /// for the reads of this round and earlier (read.rs).
    #[serde(default)]
    pub read_round: u64,
}

/// Invoked by the leader to send a follower its snapshot (§7, Figure 13) when the entries the
/// follower needs next are compacted away. The leader is the sender. The snapshot travels
/// whole (Figure 13's offset and done fields are the transport's business: the node splits
/// a large one into chunks and the receiver reassembles it before the core sees it). The
/// follower answers with an [`AppendEntriesResponse`], whose match_index on success is the
/// snapshot's last included index: the leader treats it like any acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstallSnapshot {
    /// The leader's term.
    pub term: Term,
    pub snapshot: Snapshot,
    /// The leader's read round (read.rs), echoed by the reply like an AppendEntries'.
    pub read_round: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Message<C> {
    RequestVote(RequestVote),
    RequestVoteResponse(RequestVoteResponse),
    AppendEntries(AppendEntries<C>),
    AppendEntriesResponse(AppendEntriesResponse),
    /// Thesis §9.6: a pre-candidate asks whether it could win an election in `term` (its
    /// current term + 1) without raising its own; a receiver neither adopts the term nor
    /// records a vote (lease.rs).
    PreVote(RequestVote),
    /// Reply to a [`Message::PreVote`]: granted ones carry the proposed term, which the
    /// pre-candidate does not adopt; a refusal carries the voter's current term.
    PreVoteResponse(RequestVoteResponse),
    /// Thesis §3.10: the leader hands its leadership to the receiver (transfer.rs).
    TimeoutNow(TimeoutNow),
    /// §7: the leader's snapshot, for a follower that needs compacted entries.
    InstallSnapshot(InstallSnapshot),
}

impl<C> Message<C> {
    /// The same message with its entries' commands translated by `f` (the only part that
    /// depends on the command type); `None` when `f` cannot translate them.
    pub fn try_map_entries<D>(
        &self,
        f: impl FnOnce(&[Entry<C>]) -> Option<Vec<Entry<D>>>,
    ) -> Option<Message<D>> {
        Some(match self {
            Message::RequestVote(m) => Message::RequestVote(*m),
            Message::RequestVoteResponse(m) => Message::RequestVoteResponse(*m),
            Message::AppendEntries(m) => Message::AppendEntries(AppendEntries {
                term: m.term,
                prev_log_index: m.prev_log_index,
                prev_log_term: m.prev_log_term,
                entries: f(&m.entries)?,
                leader_commit: m.leader_commit,
                read_round: m.read_round,
            }),
            Message::AppendEntriesResponse(m) => Message::AppendEntriesResponse(*m),
            Message::PreVote(m) => Message::PreVote(*m),
            Message::PreVoteResponse(m) => Message::PreVoteResponse(*m),
            Message::TimeoutNow(m) => Message::TimeoutNow(*m),
            Message::InstallSnapshot(m) => Message::InstallSnapshot(m.clone()),
        })
    }

    /// The term every Raft message carries.
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote(m) => m.term,
            Message::RequestVoteResponse(m) => m.term,
            Message::AppendEntries(m) => m.term,
            Message::AppendEntriesResponse(m) => m.term,
            Message::PreVote(m) => m.term,
            Message::PreVoteResponse(m) => m.term,
            Message::TimeoutNow(m) => m.term,
            Message::InstallSnapshot(m) => m.term,
        }
    }

    /// Whether receiving this message makes a server adopt its term (§5.1). A PreVote's term
    /// is only proposed, and so is a granted PreVoteResponse's (thesis §9.6); a refused one
    /// carries the voter's term, which the pre-candidate adopts.
    pub fn raises_term(&self) -> bool {
        match self {
            Message::PreVote(_) => false,
            Message::PreVoteResponse(m) => !m.vote_granted,
            _ => true,
        }
    }

    /// Whether this is a request for a vote (RequestVote or PreVote) that a server in a
    /// leader's lease ignores (thesis §9.6): all but a transfer's RequestVote (§3.10).
    pub fn asks_for_vote(&self) -> bool {
        match self {
            Message::RequestVote(m) => !m.transfer,
            Message::PreVote(_) => true,
            _ => false,
        }
    }

    /// Whether this is a reply (RequestVoteResponse, AppendEntriesResponse) rather than a
    /// request.
    pub fn is_reply(&self) -> bool {
        matches!(
            self,
            Message::RequestVoteResponse(_)
                | Message::AppendEntriesResponse(_)
                | Message::PreVoteResponse(_)
        )
    }
}

impl<C> From<RequestVote> for Message<C> {
    fn from(m: RequestVote) -> Self {
        Message::RequestVote(m)
    }
}
impl<C> From<RequestVoteResponse> for Message<C> {
    fn from(m: RequestVoteResponse) -> Self {
        Message::RequestVoteResponse(m)
    }
}
impl<C> From<AppendEntries<C>> for Message<C> {
    fn from(m: AppendEntries<C>) -> Self {
        Message::AppendEntries(m)
    }
}
impl<C> From<TimeoutNow> for Message<C> {
    fn from(m: TimeoutNow) -> Self {
        Message::TimeoutNow(m)
    }
}
impl<C> From<InstallSnapshot> for Message<C> {
    fn from(m: InstallSnapshot) -> Self {
        Message::InstallSnapshot(m)
    }
}
impl<C> From<AppendEntriesResponse> for Message<C> {
    fn from(m: AppendEntriesResponse) -> Self {
        Message::AppendEntriesResponse(m)
    }
}

// How messages read in logs, traces and the Explorer: `RequestVote(term 2, last log 1/t1)`.

impl fmt::Display for InstallSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "InstallSnapshot(term {}, last included {}/t{}, {} bytes)",
            self.term,
            self.snapshot.last_included_index,
            self.snapshot.last_included_term,
            self.snapshot.data.len()
        )
    }
}

impl fmt::Display for RequestVote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transfer = if self.transfer { ", transfer" } else { "" };
        write!(
            f,
            "RequestVote(term {}, last log {}/t{}{transfer})",
            self.term, self.last_log_index, self.last_log_term
        )
    }
}

impl fmt::Display for TimeoutNow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TimeoutNow(term {}, last log {}/t{})",
            self.term, self.last_log_index, self.last_log_term
        )
    }
}

impl fmt::Display for RequestVoteResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let granted = if self.vote_granted {
            "granted"
        } else {
            "denied"
        };
        write!(f, "RequestVoteResponse(term {}, {granted})", self.term)
    }
}

impl fmt::Display for AppendEntriesResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (outcome, index) = if self.success {
            ("success", "match")
        } else {
            ("reject", "last index")
        };
        write!(
            f,
            "AppendEntriesResponse(term {}, {outcome}, {index} {})",
            self.term, self.match_index
        )
    }
}

impl<C> AppendEntries<C> {
    /// The request without its commands: `AppendEntries(term 2, prev 1/t1, 3 entries, commit 1)`.
    pub fn summary(&self) -> String {
        format!(
            "AppendEntries(term {}, prev {}/t{}, {} entries, commit {})",
            self.term,
            self.prev_log_index,
            self.prev_log_term,
            self.entries.len(),
            self.leader_commit
        )
    }
}

/// With every entry, numbered from prev_log_index + 1: `[2:t1 put 1, 3:t2 get]`.
impl<C: fmt::Display> fmt::Display for AppendEntries<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AppendEntries(term {}, prev {}/t{}, entries [",
            self.term, self.prev_log_index, self.prev_log_term
        )?;
        for (k, e) in self.entries.iter().enumerate() {
            if k > 0 {
                f.write_str(", ")?;
            }
            let index = self.prev_log_index.saturating_add(k as u64 + 1);
            write!(f, "{index}:t{} {}", e.term, e.command)?;
        }
        write!(f, "], commit {})", self.leader_commit)
    }
}

impl<C> Message<C> {
    /// One line without commands (AppendEntries counts its entries): for logs of any command
    /// type.
    pub fn summary(&self) -> String {
        match self {
            Message::RequestVote(m) => m.to_string(),
            Message::RequestVoteResponse(m) => m.to_string(),
            Message::AppendEntries(m) => m.summary(),
            Message::AppendEntriesResponse(m) => m.to_string(),
            Message::PreVote(m) => format!("Pre{m}"),
            Message::PreVoteResponse(m) => format!("Pre{m}"),
            Message::TimeoutNow(m) => m.to_string(),
            Message::InstallSnapshot(m) => m.to_string(),
        }
    }
}

impl<C: fmt::Display> fmt::Display for Message<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::RequestVote(m) => m.fmt(f),
            Message::RequestVoteResponse(m) => m.fmt(f),
            Message::AppendEntries(m) => m.fmt(f),
            Message::AppendEntriesResponse(m) => m.fmt(f),
            Message::PreVote(m) => write!(f, "Pre{m}"),
            Message::PreVoteResponse(m) => write!(f, "Pre{m}"),
            Message::TimeoutNow(m) => m.fmt(f),
            Message::InstallSnapshot(m) => m.fmt(f),
        }
    }
}
