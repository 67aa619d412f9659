//! The simulator's disk: raft-impl's own [`Wal`] (segments, snapshot files, recovery) running
//! on an in-memory directory ([`SimFs`], raft-impl's [`Fs`] trait), so a node writes and a
//! restarted node recovers through exactly the code a real node runs.
//!
//! The directory models what survives a crash: a file's bytes are durable once it is fsynced
//! (`sync_data`/`sync_all`), a name (create, rename, remove) once the directory is fsynced; a
//! crash keeps only what is durable. A writer that forgets an fsync loses data here as it
//! would on a real disk.
//!
//! The faults ([`DiskFaults`]) deliberately break the durability contract (the switches live
//! here, in the fake, never in raft-impl):
//! - `ack_before_fsync`: every fsync returns `Ok` at once but the data only sits in a "page
//!   cache" that reaches the disk every [`LAZY_WRITEBACK`]-th fsync; a crash loses the cache
//!   except for a random prefix of each file's unwritten bytes, in whole sectors (a torn tail).
//! - `stale_restore`: recovery sees the disk as it was before the last WAL sync.
//! - `snapshot_rename_before_fsync`: a broken snapshot writer, whose rename reaches the disk
//!   before the file's contents: the snapshot's fsync is skipped (its bytes reach the disk only
//!   after [`LAZY_WRITEBACK`] more WAL syncs), while its rename and the directory's fsync, and
//!   the deletion of the segments it covers, go on as usual. A crash in that window leaves an
//!   empty (or torn) snapshot file and no WAL to rebuild it from.

use raft_impl::core::{HardState, Persist};
use raft_impl::kv::Command;
use raft_impl::storage::{Durable, Fs, Wal, WalIdentity, WalOptions, SECTOR};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;

/// How many acknowledged syncs the broken disk lets pile up before writing them back.
pub const LAZY_WRITEBACK: u64 = 8;

/// The simulated WAL's segment size: small, so that a run rolls segments and compaction
/// deletes them.
pub const SIM_SEGMENT_BYTES: u64 = 16 << 10;

/// Deliberate durability bugs of the fake disk (all off: a correct disk).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskFaults {
    /// `sync` acknowledges before the data is durable (a runtime that skips or defers fsync).
    pub ack_before_fsync: bool,
    /// Recovery restores the state of the sync before the last one (a runtime that restores a
    /// stale snapshot on restart).
    pub stale_restore: bool,
    /// A snapshot writer that renames its file into place before the contents are durable
    /// (no fsync before the rename): a crash soon after leaves an empty snapshot file.
    pub snapshot_rename_before_fsync: bool,
}

/// The identity of every simulated node's files.
const SIM_IDENTITY: WalIdentity = WalIdentity {
    cluster_id: 1,
    node_id: 0,
};

/// One file's contents: what the writer sees, and what survives a crash.
#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// The range of `data` changed since the last write-back (lengths included).
    dirty: Option<(usize, usize)>,
    /// Its fsync was skipped (the broken snapshot writer) at this count of WAL fsyncs: written
    /// back [`LAZY_WRITEBACK`] WAL fsyncs later.
    lazy: Option<u64>,
}

impl Inode {
    fn touch(&mut self, lo: usize, hi: usize) {
        self.dirty = Some(match self.dirty {
            Some((a, b)) => (a.min(lo), b.max(hi)),
            None => (lo, hi),
        });
    }

    /// The changed bytes reach the disk; returns what they replaced (for `stale_restore`).
    fn write_back(&mut self) -> Option<Undo> {
        let (lo, hi) = self.dirty.take()?;
        let undo = Undo {
            inode: 0,
            lo,
            old: self.durable[lo.min(self.durable.len())..hi.min(self.durable.len())].to_vec(),
            old_len: self.durable.len(),
        };
        self.durable.resize(self.data.len(), 0);
        let hi = hi.min(self.data.len());
        if lo < hi {
            self.durable[lo..hi].copy_from_slice(&self.data[lo..hi]);
        }
        self.lazy = None;
        Some(undo)
    }

    /// A crash: a `torn` fraction of the changed range reached the disk, the rest is lost. A
    /// disk writes a sector whole or not at all, so what reached it ends at a sector boundary
    /// (the WAL's recovery tells a torn write from damage by its unwritten sector).
    fn crash(&mut self, torn: f64) {
        if let Some((lo, hi)) = self.dirty.take() {
            let hi = hi.min(self.data.len());
            if lo < hi {
                let keep = lo + ((hi - lo) as f64 * torn.clamp(0.0, 1.0)) as usize;
                let keep = (keep / SECTOR * SECTOR).max(lo);
                if self.durable.len() < keep {
                    self.durable.resize(keep, 0);
                }
                self.durable[lo..keep].copy_from_slice(&self.data[lo..keep]);
            }
        }
        self.data = self.durable.clone();
        self.lazy = None;
    }
}

/// What one WAL sync changed on the disk, to undo it (`stale_restore`).
#[derive(Clone, Debug)]
struct Undo {
    inode: u64,
    lo: usize,
    old: Vec<u8>,
    old_len: usize,
}

/// An in-memory data directory.
#[derive(Debug, Default)]
pub struct Files {
    inodes: BTreeMap<u64, Inode>,
    /// The names as the writer sees them, and as they survive a crash.
    names: BTreeMap<String, u64>,
    durable_names: BTreeMap<String, u64>,
    next_inode: u64,
    faults: DiskFaults,
    /// Fsyncs acknowledged by the broken disk since it last wrote back.
    acked: u64,
    /// WAL fsyncs (for the lazy write-back of a snapshot whose fsync was skipped).
    data_syncs: u64,
    salts: u64,
    /// The last WAL syncs, undoable.
    undo: Vec<Undo>,
}

impl Files {
    fn name_of(&self, inode: u64) -> Option<&str> {
        self.names
            .iter()
            .find(|(_, i)| **i == inode)
            .map(|(n, _)| n.as_str())
    }

    fn inode(&mut self, inode: u64) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&inode)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "stale handle"))
    }

    fn lookup(&self, name: &str) -> io::Result<u64> {
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no file {name}")))
    }

    /// Drops the files that no name (current or durable) refers to.
    fn collect(&mut self) {
        let names = &self.names;
        let durable = &self.durable_names;
        self.inodes
            .retain(|i, _| names.values().any(|n| n == i) || durable.values().any(|n| n == i));
    }

    /// The broken disk's write-back of everything acknowledged.
    fn write_back_all(&mut self) {
        for inode in self.inodes.values_mut() {
            inode.write_back();
        }
        self.durable_names = self.names.clone();
        self.collect();
    }

    fn fsync(&mut self, inode: u64) -> io::Result<()> {
        self.inode(inode)?;
        if self.faults.ack_before_fsync {
            self.acked += 1;
            if self.acked.is_multiple_of(LAZY_WRITEBACK) {
                self.write_back_all();
            }
            return Ok(());
        }
        let is_snapshot_tmp = self
            .name_of(inode)
            .is_some_and(|n| n.starts_with("snap-") && n.ends_with(".tmp"));
        if is_snapshot_tmp {
            if self.faults.snapshot_rename_before_fsync {
                let now = self.data_syncs;
                self.inode(inode)?.lazy = Some(now);
                return Ok(());
            }
            self.inode(inode)?.write_back();
            return Ok(());
        }
        self.data_syncs += 1;
        let due = self.data_syncs.saturating_sub(LAZY_WRITEBACK);
        for file in self.inodes.values_mut() {
            if file.lazy.is_some_and(|at| at <= due) {
                file.write_back();
            }
        }
        if let Some(mut undo) = self.inode(inode)?.write_back() {
            undo.inode = inode;
            self.undo.push(undo);
            if self.undo.len() > 2 {
                self.undo.remove(0);
            }
        }
        Ok(())
    }

    /// The process died: what was not durable is gone.
    fn crash(&mut self, torn: f64) {
        for inode in self.inodes.values_mut() {
            inode.crash(torn);
        }
        self.names = self.durable_names.clone();
        self.acked = 0;
        self.collect();
    }

    /// `stale_restore`: the disk as it was before the last WAL sync.
    fn undo_last_sync(&mut self) {
        if self.undo.len() < 2 {
            return;
        }
        let undo = self.undo.pop().expect("two syncs");
        if let Some(inode) = self.inodes.get_mut(&undo.inode) {
            let end = undo.lo + undo.old.len();
            if inode.durable.len() < end {
                inode.durable.resize(end, 0);
            }
            inode.durable[undo.lo..end].copy_from_slice(&undo.old);
            inode.durable.resize(undo.old_len, 0);
            inode.data = inode.durable.clone();
            inode.dirty = None;
        }
    }

    /// The file names and their durable sizes.
    pub fn durable_files(&self) -> Vec<(String, usize)> {
        self.durable_names
            .iter()
            .map(|(n, i)| (n.clone(), self.inodes.get(i).map_or(0, |f| f.durable.len())))
            .collect()
    }
}

/// raft-impl's [`Fs`] on a simulated directory.
#[derive(Clone, Debug, Default)]
pub struct SimFs(pub Rc<RefCell<Files>>);

impl Fs for SimFs {
    type File = u64;

    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from("sim-disk").join(name)
    }

    fn list(&mut self) -> io::Result<Vec<String>> {
        Ok(self.0.borrow().names.keys().cloned().collect())
    }

    fn read(&mut self, name: &str) -> io::Result<Vec<u8>> {
        let mut files = self.0.borrow_mut();
        let inode = files.lookup(name)?;
        Ok(files.inode(inode)?.data.clone())
    }

    fn open(&mut self, name: &str) -> io::Result<u64> {
        self.0.borrow().lookup(name)
    }

    fn create(&mut self, name: &str) -> io::Result<u64> {
        let mut files = self.0.borrow_mut();
        if let Ok(inode) = files.lookup(name) {
            let file = files.inode(inode)?;
            let len = file.data.len();
            file.data.clear();
            file.touch(0, len);
            return Ok(inode);
        }
        files.next_inode += 1;
        let inode = files.next_inode;
        files.inodes.insert(inode, Inode::default());
        files.names.insert(name.to_string(), inode);
        Ok(inode)
    }

    fn write_at(&mut self, file: &u64, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut files = self.0.borrow_mut();
        let inode = files.inode(*file)?;
        let (lo, hi) = (offset as usize, offset as usize + bytes.len());
        if inode.data.len() < hi {
            inode.data.resize(hi, 0);
        }
        inode.data[lo..hi].copy_from_slice(bytes);
        inode.touch(lo, hi);
        Ok(())
    }

    fn set_len(&mut self, file: &u64, len: u64) -> io::Result<()> {
        let mut files = self.0.borrow_mut();
        let inode = files.inode(*file)?;
        let old = inode.data.len();
        inode.data.resize(len as usize, 0);
        inode.touch(old.min(len as usize), old.max(len as usize));
        Ok(())
    }

    fn allocate(&mut self, file: &u64, offset: u64, len: u64) -> io::Result<()> {
        let mut files = self.0.borrow_mut();
        let inode = files.inode(*file)?;
        let end = (offset + len) as usize;
        let old = inode.data.len();
        if old < end {
            inode.data.resize(end, 0);
            inode.touch(old, end);
        }
        Ok(())
    }

    fn sync_data(&mut self, file: &u64) -> io::Result<()> {
        self.0.borrow_mut().fsync(*file)
    }

    fn sync_all(&mut self, file: &u64) -> io::Result<()> {
        self.0.borrow_mut().fsync(*file)
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let mut files = self.0.borrow_mut();
        let inode = files.lookup(from)?;
        files.names.remove(from);
        files.names.insert(to.to_string(), inode);
        Ok(())
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        let mut files = self.0.borrow_mut();
        files.lookup(name)?;
        files.names.remove(name);
        Ok(())
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        let mut files = self.0.borrow_mut();
        if files.faults.ack_before_fsync {
            files.acked += 1;
            if files.acked.is_multiple_of(LAZY_WRITEBACK) {
                files.write_back_all();
            }
            return Ok(());
        }
        files.durable_names = files.names.clone();
        files.collect();
        Ok(())
    }

    fn salt(&mut self) -> u64 {
        let mut files = self.0.borrow_mut();
        files.salts += 1;
        0x5eed_0000 + files.salts
    }
}

/// One node's disk: its directory, and the WAL open on it while the node runs.
#[derive(Default)]
pub struct DiskState {
    pub faults: DiskFaults,
    /// Number of syncs that wrote something.
    pub syncs: u64,
    pub files: SimFs,
    wal: Option<Wal<Command, SimFs>>,
}

impl std::fmt::Debug for DiskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskState")
            .field("faults", &self.faults)
            .field("syncs", &self.syncs)
            .field("files", &self.files.0.borrow().durable_files())
            .finish()
    }
}

impl DiskState {
    /// The process died: everything not durable is gone; `torn` (0..=1) says how much of the
    /// broken disk's unwritten bytes reached the platter anyway (a torn tail for recovery to
    /// cut off).
    pub fn crash(&mut self, torn: f64) {
        self.wal = None;
        self.files.0.borrow_mut().crash(torn);
    }

    /// Recovery, as a real node's start does it: [`Wal::open_on`] the directory (the newest
    /// valid snapshot and the WAL after it), which cuts a torn tail off; returns the hard
    /// state.
    pub fn recover(&mut self) -> Result<HardState<Command>, String> {
        self.wal = None;
        {
            let mut files = self.files.0.borrow_mut();
            files.faults = self.faults;
            if self.faults.stale_restore {
                files.undo_last_sync();
            }
        }
        let (wal, hard) = Wal::open_on(self.files.clone(), SIM_IDENTITY, sim_options())
            .map_err(|e| e.to_string())?;
        self.wal = Some(wal);
        Ok(hard)
    }

    /// The WAL, opened on first use (a node's first start finds an empty disk).
    fn wal(&mut self) -> Result<&mut Wal<Command, SimFs>, DiskError> {
        self.files.0.borrow_mut().faults = self.faults;
        if self.wal.is_none() {
            let (wal, _) = Wal::open_on(self.files.clone(), SIM_IDENTITY, sim_options())
                .map_err(|e| DiskError(e.to_string()))?;
            self.wal = Some(wal);
        }
        Ok(self.wal.as_mut().expect("opened"))
    }

    /// The durable files: name and size.
    pub fn durable_files(&self) -> Vec<(String, usize)> {
        self.files.0.borrow().durable_files()
    }
}

fn sim_options() -> WalOptions {
    WalOptions {
        segment_bytes: SIM_SEGMENT_BYTES,
        preallocate: SIM_SEGMENT_BYTES / 4,
    }
}

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
        disk.wal()?
            .stage(hard, persist)
            .map_err(|e| DiskError(e.to_string()))
    }

    fn sync(&mut self) -> Result<(), DiskError> {
        let mut disk = self.0.borrow_mut();
        let wrote = disk.wal()?.sync().map_err(|e| DiskError(e.to_string()))?;
        if wrote {
            disk.syncs += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_impl::core::{Entry, Snapshot};
    use raft_impl::kv::{Command, Op};

    fn put(i: u64) -> Entry<Command> {
        Entry {
            term: 1,
            command: Command {
                client_id: 1,
                seq: i,
                op: Op::Put {
                    key: format!("k{i}"),
                    value: "v".repeat(200),
                },
            },
        }
    }

    fn append(disk: &mut SimDisk, hard: &mut HardState<Command>, n: u64) {
        for _ in 0..n {
            let index = hard.snapshot.last_included_index + hard.log.len() as u64 + 1;
            hard.log.push(put(index));
            let persist = Persist {
                appended_from: Some(index),
                ..Persist::default()
            };
            disk.stage(hard, &persist).unwrap();
            disk.sync().unwrap();
        }
    }

    fn compact(disk: &mut SimDisk, hard: &mut HardState<Command>, upto: u64) {
        let base = hard.snapshot.last_included_index;
        let term = hard.log[(upto - base - 1) as usize].term;
        hard.log.drain(..(upto - base) as usize);
        hard.snapshot = Snapshot {
            last_included_index: upto,
            last_included_term: term,
            config: None,
            data: format!("image at {upto}").into_bytes(),
        };
        let persist = Persist {
            snapshot: true,
            ..Persist::default()
        };
        disk.stage(hard, &persist).unwrap();
        disk.sync().unwrap();
    }

    fn start() -> (SimDisk, HardState<Command>) {
        let disk = SimDisk::default();
        let hard = HardState {
            current_term: 1,
            voted_for: Some(raft_impl::core::NodeId(2)),
            ..HardState::default()
        };
        let persist = Persist {
            term_or_vote: true,
            ..Persist::default()
        };
        let mut d = disk.clone();
        d.stage(&hard, &persist).unwrap();
        d.sync().unwrap();
        (disk, hard)
    }

    #[test]
    fn a_crash_keeps_what_was_synced_snapshots_and_segments_included() {
        let (mut disk, mut hard) = start();
        append(&mut disk, &mut hard, 200);
        compact(&mut disk, &mut hard, 150);
        append(&mut disk, &mut hard, 10);
        // Staged, not synced: lost.
        hard.current_term = 9;
        let lost = Persist {
            term_or_vote: true,
            ..Persist::default()
        };
        disk.stage(&hard, &lost).unwrap();
        hard.current_term = 1;
        disk.0.borrow_mut().crash(1.0);
        let recovered = disk.0.borrow_mut().recover().unwrap();
        assert_eq!(recovered, hard);
        let files = disk.0.borrow().durable_files();
        assert!(
            files
                .iter()
                .any(|(n, _)| n == "snap-00000000000000000150.snap"),
            "{files:?}"
        );
        // Whole segments below the snapshot were deleted.
        let segments = files.iter().filter(|(n, _)| n.starts_with("wal-")).count();
        assert!(segments <= 2, "{files:?}");
    }

    #[test]
    fn the_broken_snapshot_writer_loses_committed_state_on_a_crash() {
        let (mut disk, mut hard) = start();
        disk.0.borrow_mut().faults.snapshot_rename_before_fsync = true;
        // A first snapshot written back (enough syncs after it), then a second one that is not.
        append(&mut disk, &mut hard, 100);
        compact(&mut disk, &mut hard, 90);
        append(&mut disk, &mut hard, 100);
        compact(&mut disk, &mut hard, 190);
        disk.0.borrow_mut().crash(0.0);
        let err = disk.0.borrow_mut().recover().unwrap_err();
        assert!(err.contains("snap-00000000000000000190.snap"), "{err}");
        assert!(err.contains("is corrupt (empty file"), "{err}");
        // The same history on a correct disk recovers.
        let (mut disk, mut hard) = start();
        append(&mut disk, &mut hard, 100);
        compact(&mut disk, &mut hard, 90);
        append(&mut disk, &mut hard, 100);
        compact(&mut disk, &mut hard, 190);
        disk.0.borrow_mut().crash(0.0);
        assert_eq!(disk.0.borrow_mut().recover().unwrap(), hard);
    }

    #[test]
    fn a_stale_restore_undoes_the_last_sync() {
        let (mut disk, mut hard) = start();
        disk.0.borrow_mut().faults.stale_restore = true;
        append(&mut disk, &mut hard, 3);
        disk.0.borrow_mut().crash(0.0);
        let recovered = disk.0.borrow_mut().recover().unwrap();
        assert_eq!(recovered.log.len(), 2);
    }
}
