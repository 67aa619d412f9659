//! What the core refuses to do. Two kinds, told apart by [`CoreError::is_fatal`]:
//!
//! * a refused message: input no correct peer can send (a term at or past
//!   [`crate::Config::max_term`], or too far ahead).
//!   The step changes nothing; the driver logs it and goes on.
//! * a violated invariant: a state the correct protocol never reaches (deleting a committed
//!   entry, committing past the log, an index out of range). The step stops where it found it;
//!   the node logs the error with the offending message and stops (as etcd-io/raft panics in
//!   the same places); the model reports it as the violated property "Core Invariant".

use super::types::{Index, NodeId, Term};
use std::fmt;

#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum CoreError {
    /// A message whose term no correct peer can send: at or past [`crate::Config::max_term`],
    /// or further ahead of this server's term than [`crate::Config::max_term_jump`]; refused,
    /// nothing changed.
    AbsurdTerm {
        from: NodeId,
        term: Term,
        current_term: Term,
        max_term: Term,
        max_term_jump: Term,
    },
    /// An AppendEntries from the leader of the current term would delete the entry at `index`,
    /// which this server knows is committed (Leader Completeness says no leader sends that).
    DeletesCommittedEntry {
        leader: NodeId,
        index: Index,
        commit_index: Index,
    },
    /// commit_index points past the end of the log.
    CommitBeyondLog {
        commit_index: Index,
        last_log_index: Index,
    },
    /// A successful AppendEntries reply acknowledges entries this leader does not have.
    AckBeyondLog {
        follower: NodeId,
        match_index: Index,
        last_log_index: Index,
    },
    /// A leader's next_index for `peer` is missing or outside `match_index + 1 ..= last + 1`.
    NextIndexOutOfRange {
        peer: NodeId,
        next_index: Option<Index>,
        last_log_index: Index,
    },
    /// The driver reported entries durable past the end of the log.
    PersistedBeyondLog { index: Index, last_log_index: Index },
    /// A reply of the leader's term echoes a read round this leader never started.
    ReadAckBeyondRound {
        follower: NodeId,
        round: u64,
        read_round: u64,
    },
    /// The driver asked to compact up to `index`, past what it has applied (§7: a snapshot is
    /// the state machine's image, which holds only applied, committed entries).
    CompactBeyondApplied { index: Index, last_applied: Index },
    /// A step needs the entry at `index`, which a snapshot replaced (its index
    /// `snapshot_index`): applying or deleting it again.
    CompactedEntry { index: Index, snapshot_index: Index },
    /// A term or an index would overflow.
    Overflow {
        #[serde(deserialize_with = "static_text")]
        what: Text,
    },
}

/// A fixed text (named so that serde reads it through `static_text`, not by borrowing).
type Text = &'static str;

/// `Overflow`'s text read back (a model state sent between the distributed checker's
/// processes): each distinct text is kept once, for the life of the process.
fn static_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    static TEXTS: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let text = <String as serde::Deserialize>::deserialize(d)?;
    let mut texts = TEXTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(kept) = texts.get(text.as_str()) {
        return Ok(kept);
    }
    let kept: &'static str = Box::leak(text.into_boxed_str());
    texts.insert(kept);
    Ok(kept)
}

impl CoreError {
    /// Whether the server must stop: everything but a refused message.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, CoreError::AbsurdTerm { .. })
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::AbsurdTerm {
                from,
                term,
                current_term,
                max_term,
                max_term_jump,
            } => {
                write!(f, "refused a message from {from} with term {term}: ")?;
                if term >= max_term {
                    write!(f, "no election could follow a term at or past {max_term}")
                } else {
                    write!(
                        f,
                        "more than {max_term_jump} terms ahead of this server's term \
                         {current_term}, which no correct peer can be"
                    )
                }
            }
            CoreError::DeletesCommittedEntry {
                leader,
                index,
                commit_index,
            } => write!(
                f,
                "AppendEntries from leader {leader} would delete the entry at index {index}, \
                 which is committed (commit_index {commit_index})"
            ),
            CoreError::CommitBeyondLog {
                commit_index,
                last_log_index,
            } => write!(
                f,
                "commit_index {commit_index} is past the end of the log (last index {last_log_index})"
            ),
            CoreError::AckBeyondLog {
                follower,
                match_index,
                last_log_index,
            } => write!(
                f,
                "{follower} acknowledged index {match_index}, past this leader's last index {last_log_index}"
            ),
            CoreError::NextIndexOutOfRange {
                peer,
                next_index,
                last_log_index,
            } => write!(
                f,
                "next_index for {peer} is {next_index:?}, outside 1..={} (last index {last_log_index})",
                last_log_index.saturating_add(1)
            ),
            CoreError::PersistedBeyondLog {
                index,
                last_log_index,
            } => write!(
                f,
                "the disk reported index {index} durable, past the end of the log (last index {last_log_index})"
            ),
            CoreError::ReadAckBeyondRound {
                follower,
                round,
                read_round,
            } => write!(
                f,
                "{follower} echoed read round {round}, past this leader's latest round {read_round}"
            ),
            CoreError::CompactBeyondApplied {
                index,
                last_applied,
            } => write!(
                f,
                "asked to compact the log up to index {index}, past last_applied {last_applied}"
            ),
            CoreError::CompactedEntry {
                index,
                snapshot_index,
            } => write!(
                f,
                "the entry at index {index} is needed, but the snapshot replaced it (up to index {snapshot_index})"
            ),
            CoreError::Overflow { what } => write!(f, "{what} would overflow"),
        }
    }
}

impl std::error::Error for CoreError {}
