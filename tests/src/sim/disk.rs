//! The simulator's disk: an in-memory WAL behind raft-impl's own [`Durable`] trait.
//!
//! It stores the very bytes the real WAL would write (`raft_impl::storage::encode_persist`) and
//! recovers through the real decoder (`decode_records`, the function `Wal::open` uses), so a
//! restarted node goes through the same recovery code path as a real one. It keeps `durable`
//! bytes (what survived the last fsync) apart from `staged` bytes (not yet synced); a crash
//! keeps only the durable part.
//!
//! [`DiskFaults::ack_before_fsync`] deliberately breaks the durability contract (the switch
//! lives here, in the fake, never in raft-impl): `sync` returns `Ok` at once but the bytes only
//! sit in a "page cache" that reaches the disk every [`LAZY_WRITEBACK`]-th sync; a crash loses
//! the cache except for a random prefix of it (a torn tail).

use raft_impl::core::{HardState, Persist};
use raft_impl::kv::Command;
use raft_impl::storage::{decode_records, encode_batch, encode_persist, Durable, WalHeader};
use std::cell::RefCell;
use std::rc::Rc;

/// How many acknowledged syncs the broken disk lets pile up before writing them back.
pub const LAZY_WRITEBACK: u64 = 8;

/// Deliberate durability bugs of the fake disk (all off: a correct disk).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskFaults {
    /// `sync` acknowledges before the data is durable (a runtime that skips or defers fsync).
    pub ack_before_fsync: bool,
    /// Recovery restores the state of the sync before the last one (a runtime that restores a
    /// stale snapshot on restart).
    pub stale_restore: bool,
}

#[derive(Debug, Default)]
pub struct DiskState {
    /// What survives a crash.
    pub durable: Vec<u8>,
    /// Staged since the last sync (lost on a crash).
    staged: Vec<u8>,
    /// Broken disk only: acknowledged by `sync` but not yet durable.
    cache: Vec<u8>,
    acked_syncs: u64,
    pub faults: DiskFaults,
    /// Number of syncs that wrote something.
    pub syncs: u64,
    /// Length of `durable` after each sync that wrote something (for `stale_restore`).
    sync_points: Vec<usize>,
}

impl DiskState {
    /// The process died: everything not durable is gone; `torn` (0..=1) says how much of the
    /// broken disk's cache reached the platter anyway (a torn tail for recovery to cut off).
    pub fn crash(&mut self, torn: f64) {
        self.staged.clear();
        let keep = ((self.cache.len() as f64) * torn.clamp(0.0, 1.0)) as usize;
        self.durable.extend_from_slice(&self.cache[..keep]);
        self.cache.clear();
    }

    /// Recovery, as `Wal::open` does it: decode, cut a torn tail off, return the hard state.
    pub fn recover(&mut self) -> Result<HardState<Command>, String> {
        if self.faults.stale_restore && self.sync_points.len() >= 2 {
            let stale = self.sync_points[self.sync_points.len() - 2];
            self.sync_points.pop();
            self.durable.truncate(stale);
        }
        let decoded = decode_records::<Command>(&self.durable).map_err(|e| e.to_string())?;
        self.durable.truncate(decoded.valid_len as usize);
        Ok(decoded.hard)
    }
}

/// The header of every simulated WAL (a fixed salt keeps runs reproducible byte for byte).
const SIM_WAL_HEADER: WalHeader = WalHeader {
    cluster_id: 1,
    node_id: 0,
    salt: 0x5eed,
};

/// A replica's handle on its node's disk (the disk outlives the replica across crashes).
#[derive(Clone, Debug, Default)]
pub struct SimDisk(pub Rc<RefCell<DiskState>>);

#[derive(Debug, thiserror::Error)]
#[error("fake disk: {0}")]
pub struct DiskError(String);

impl Durable<Command> for SimDisk {
    type Error = DiskError;

    fn stage(&mut self, hard: &HardState<Command>, persist: &Persist) -> Result<(), DiskError> {
        let mut disk = self.0.borrow_mut();
        encode_persist(hard, persist, &mut disk.staged).map_err(|e| DiskError(e.to_string()))
    }

    fn sync(&mut self) -> Result<(), DiskError> {
        let mut disk = self.0.borrow_mut();
        if disk.staged.is_empty() {
            return Ok(());
        }
        disk.syncs += 1;
        // One frame per sync, as `Wal::sync` writes it (the header before the first).
        let written = (disk.durable.len() + disk.cache.len()) as u64;
        let mut staged = Vec::new();
        encode_batch(&SIM_WAL_HEADER, written, &disk.staged, &mut staged)
            .map_err(|e| DiskError(e.to_string()))?;
        disk.staged.clear();
        if disk.faults.ack_before_fsync {
            disk.cache.extend_from_slice(&staged);
            disk.acked_syncs += 1;
            if disk.acked_syncs.is_multiple_of(LAZY_WRITEBACK) {
                let cache = std::mem::take(&mut disk.cache);
                disk.durable.extend_from_slice(&cache);
            }
        } else {
            disk.durable.extend_from_slice(&staged);
        }
        let len = disk.durable.len();
        disk.sync_points.push(len);
        Ok(())
    }
}
