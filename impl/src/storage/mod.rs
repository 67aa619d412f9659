//! Stable storage for the Raft hard state: an append-only write-ahead log.

mod record;
mod wal;

pub use record::{decode_records, DecodedWal, Record, ScanError, ScanProblem};
pub use wal::{Wal, WalError, WAL_FILE_NAME};

#[cfg(test)]
mod tests;
