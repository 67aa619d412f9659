//! Stable storage for the Raft hard state: a write-ahead log in segments and snapshot files,
//! in a locked data directory (the layout: wal.rs).

mod fs;
mod lock;
mod record;
mod snapshot;
mod wal;

pub use fs::{DirFs, Fs, ReadSeek};
pub use lock::{DirLock, LockError, LOCK_FILE_NAME};
pub use record::{
    decode_records, decode_records_from, decode_stream_from, encode_batch, encode_persist,
    encode_snapshot_mark, DecodedWal, FrameTooLarge, Record, ScanError, ScanProblem, WalHeader,
    WalIdentity, FILE_HEADER_LEN, FRAME_HEADER_LEN, FRAME_MAGIC, SECTOR, WAL_MAGIC, WAL_VERSION,
};
pub use snapshot::{
    decode_snapshot, encode_snapshot, parse_snapshot_file_name, snapshot_file_name, write_snapshot,
    DecodedSnapshot, SnapshotProblem, SnapshotWriteError, SNAPSHOT_MAGIC, SNAPSHOT_VERSION,
    TMP_SUFFIX,
};
pub use wal::{
    parse_segment_file_name, segment_file_name, segment_paths, Wal, WalError, WalOptions,
    DEFAULT_SEGMENT_BYTES, PREALLOCATE_BYTES, WAL_FILE_NAME,
};

use raft_core::{HardState, Index, Persist};

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
    /// The file of the snapshot at `index` was made durable away from [`Durable::stage`] (by
    /// the node's snapshot writer thread, `node/snapshot_writer.rs`): staging that snapshot
    /// takes the file as it is instead of writing it again, and a file a newer snapshot
    /// already superseded is removed. Only a driver that writes snapshot files itself calls
    /// it; the default (a disk whose snapshots are all written by `stage`) ignores it.
    fn snapshot_written(&mut self, _index: Index) {}
}

#[cfg(test)]
mod compaction_tests;
#[cfg(test)]
mod tests;
