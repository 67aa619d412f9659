//! Stable storage for the Raft hard state: an append-only write-ahead log in a locked data
//! directory.

mod lock;
mod record;
mod wal;

pub use lock::{DirLock, LockError, LOCK_FILE_NAME};
pub use record::{
    decode_records, encode_batch, encode_persist, DecodedWal, FrameTooLarge, Record, ScanError,
    ScanProblem, WalHeader, FILE_HEADER_LEN, FRAME_HEADER_LEN, FRAME_MAGIC, WAL_MAGIC, WAL_VERSION,
};
pub use wal::{Wal, WalError, WalIdentity, PREALLOCATE_BYTES, WAL_FILE_NAME};

use raft_core::{HardState, Persist};

/// Stable storage for the hard state, as a replica uses it: [`Durable::stage`] after every
/// Raft step, [`Durable::sync`] once per batch. The durability contract (impl/README.md) is
/// that after `sync` returns `Ok` everything staged before it survives a crash; the replica
/// sends nothing and answers no client before that. Implemented by [`Wal`] and, in the
/// simulator (raft-tests), by an in-memory fake disk.
pub trait Durable<C> {
    type Error: std::error::Error + Send + Sync + 'static;
    /// Records (in memory) what `persist` says changed in `hard`; nothing durable yet.
    fn stage(&mut self, hard: &HardState<C>, persist: &Persist) -> Result<(), Self::Error>;
    /// Makes everything staged so far durable (write + fsync).
    fn sync(&mut self) -> Result<(), Self::Error>;
}

#[cfg(test)]
mod tests;
