//! The write-ahead log file: staging records for a batch, one frame and one fsync per batch,
//! and recovery. The data directory is locked ([`DirLock`]) before the file is opened, for as
//! long as the [`Wal`] lives.
//!
//! The file grows in preallocated steps ([`PREALLOCATE_BYTES`]): an append with fdatasync into
//! space already allocated does not wait for a block allocation and a size change, which on
//! this machine's ext4 makes it about 1.6 times as fast (impl/README.md, "Preallocation"). The decoder takes
//! the zeros after the last frame for what they are (record.rs). Compaction/rotation is not
//! implemented: the file grows with the log.

use super::lock::{DirLock, LockError};
use super::record::{decode_records, encode_batch, encode_persist, ScanError, WalHeader};
use super::Durable;
use raft_core::{HardState, Persist};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The WAL's file name inside the data directory.
pub const WAL_FILE_NAME: &str = "raft.wal";

/// Bytes allocated ahead of the end of the log each time a sync would write past the
/// allocated space.
pub const PREALLOCATE_BYTES: u64 = 16 << 20;

/// Which node of which cluster a WAL belongs to; written into a new WAL's header and checked
/// against an existing one's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalIdentity {
    pub cluster_id: u64,
    pub node_id: u64,
}

// Every variant prints its cause itself and reports no `source()`, so that an error chain
// printed whole (anyhow's `{:#}`) names the cause once.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("data directory {0}")]
    Locked(LockError),
    #[error("WAL {path}: cannot {op}: {error}")]
    Io {
        path: PathBuf,
        op: &'static str,
        error: io::Error,
    },
    #[error("WAL {path}: {error}")]
    Corrupt { path: PathBuf, error: ScanError },
    #[error(
        "WAL {path} belongs to node {found} of this cluster, not to node {expected} \
         (was the data directory moved or its --id changed?)"
    )]
    WrongNode {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error(
        "WAL {path} belongs to cluster {found}, not to cluster {expected} of the cluster file \
         (a data directory of another cluster?)"
    )]
    WrongCluster {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("WAL {path}: cannot encode record: {error}")]
    Encode { path: PathBuf, error: String },
}

/// An open WAL: the directory lock, the file, and the records staged since the last
/// [`Wal::sync`].
pub struct Wal<C> {
    path: PathBuf,
    file: File,
    header: WalHeader,
    /// Where the next frame starts: the end of the last valid frame.
    len: u64,
    /// The file's length: `len` plus the preallocated zeros after it. Invariant: len <= allocated.
    allocated: u64,
    /// Bytes to allocate ahead; 0 when preallocation is off (or the file system refused it).
    preallocate: u64,
    staged: Vec<u8>,
    frame: Vec<u8>,
    _lock: DirLock,
    _command: PhantomData<fn() -> C>,
}

impl<C: Serialize + DeserializeOwned + Clone> Wal<C> {
    /// Locks `dir` (creating it if needed), then opens (or creates) `dir/raft.wal` and replays
    /// it. A directory locked by another process is refused before the file is even opened. A
    /// WAL of another node or cluster is refused; a torn tail is cut off (with a warning) and
    /// the file truncated to its valid prefix; any other damage is an error, and a refused
    /// file is never modified.
    pub fn open(dir: &Path, identity: WalIdentity) -> Result<(Self, HardState<C>), WalError> {
        Self::open_with(dir, identity, PREALLOCATE_BYTES)
    }

    /// [`Wal::open`], allocating `preallocate` bytes ahead of the log (0: none, the file grows
    /// with each sync).
    pub fn open_with(
        dir: &Path,
        identity: WalIdentity,
        preallocate: u64,
    ) -> Result<(Self, HardState<C>), WalError> {
        let lock = DirLock::acquire(dir).map_err(|e| match e {
            LockError::Held { .. } => WalError::Locked(e),
            LockError::Io { path, op, error } => WalError::Io { path, op, error },
        })?;
        let path = dir.join(WAL_FILE_NAME);
        let io_err = |op: &'static str| {
            let path = path.clone();
            move |error| WalError::Io { path, op, error }
        };
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open"))?;
        let bytes = fs::read(&path).map_err(io_err("read"))?;
        let decoded = decode_records::<C>(&bytes).map_err(|error| WalError::Corrupt {
            path: path.clone(),
            error,
        })?;
        let header = match decoded.header {
            Some(found) => {
                if found.cluster_id != identity.cluster_id {
                    return Err(WalError::WrongCluster {
                        path,
                        found: found.cluster_id,
                        expected: identity.cluster_id,
                    });
                }
                if found.node_id != identity.node_id {
                    return Err(WalError::WrongNode {
                        path,
                        found: found.node_id,
                        expected: identity.node_id,
                    });
                }
                found
            }
            None => WalHeader {
                cluster_id: identity.cluster_id,
                node_id: identity.node_id,
                salt: fastrand::u64(..),
            },
        };
        if let Some(problem) = &decoded.torn_tail {
            tracing::warn!(
                path = %path.display(),
                offset = decoded.valid_len,
                cut_bytes = bytes.len() as u64 - decoded.valid_len,
                %problem,
                "cutting off a torn WAL tail"
            );
            file.set_len(decoded.valid_len)
                .map_err(io_err("truncate torn tail"))?;
        }
        let mut len = decoded.valid_len;
        let mut allocated = if decoded.torn_tail.is_some() {
            decoded.valid_len
        } else {
            bytes.len() as u64
        };
        if decoded.header.is_none() {
            // A new file (or one whose creation was interrupted): its header first, durable
            // before any record.
            let encoded = header.encode();
            file.write_all_at(&encoded, 0)
                .map_err(io_err("write header"))?;
            len = encoded.len() as u64;
            allocated = allocated.max(len);
        }
        if decoded.torn_tail.is_some() || decoded.header.is_none() {
            file.sync_all().map_err(io_err("fsync"))?;
        }
        if !existed {
            // Make the new file's directory entry durable.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err("fsync data directory"))?;
        }
        tracing::info!(
            path = %path.display(),
            records = decoded.records,
            frames = decoded.frames,
            preallocated = decoded.preallocated,
            term = decoded.hard.current_term,
            log_len = decoded.hard.log.len(),
            "WAL recovered"
        );
        let wal = Wal {
            path,
            file,
            header,
            len,
            allocated,
            preallocate,
            staged: Vec::new(),
            frame: Vec::new(),
            _lock: lock,
            _command: PhantomData,
        };
        Ok((wal, decoded.hard))
    }

    /// Stages the records that make `persist` durable, reading the new entries from `hard`.
    /// Costs O(new entries), not O(log). Nothing is written until [`Wal::sync`].
    pub fn stage(&mut self, hard: &HardState<C>, persist: &Persist) -> Result<(), WalError> {
        encode_persist(hard, persist, &mut self.staged).map_err(|e| WalError::Encode {
            path: self.path.clone(),
            error: e.to_string(),
        })
    }

    /// Whether records wait to be written.
    pub fn has_staged(&self) -> bool {
        !self.staged.is_empty()
    }

    /// Writes the staged records as one frame and fsyncs the file. Returns whether anything
    /// was written.
    pub fn sync(&mut self) -> Result<bool, WalError> {
        if self.staged.is_empty() {
            return Ok(false);
        }
        self.frame.clear();
        encode_batch(&self.header, self.len, &self.staged, &mut self.frame).map_err(|e| {
            WalError::Encode {
                path: self.path.clone(),
                error: e.to_string(),
            }
        })?;
        let frame_len = self.frame.len() as u64;
        let end = self
            .len
            .checked_add(frame_len)
            .ok_or_else(|| WalError::Io {
                path: self.path.clone(),
                op: "write",
                error: io::Error::new(io::ErrorKind::InvalidInput, "WAL offset overflows u64"),
            })?;
        if end > self.allocated {
            self.preallocate_through(end);
        }
        let io_err = |op: &'static str, error| WalError::Io {
            path: self.path.clone(),
            op,
            error,
        };
        self.file
            .write_all_at(&self.frame, self.len)
            .map_err(|e| io_err("write", e))?;
        self.file.sync_data().map_err(|e| io_err("fsync", e))?;
        self.len = end;
        self.allocated = self.allocated.max(end);
        self.staged.clear();
        Ok(true)
    }

    /// Allocates the file through `end` plus [`PREALLOCATE_BYTES`] (zeros, which the decoder
    /// reads as the end of the log). The size change becomes durable with the fdatasync of the
    /// frame written into it. A file system that refuses (no fallocate support, or no space for
    /// the extra) turns preallocation off with a warning: the write that follows then grows the
    /// file itself, and fails on its own if the disk is really full.
    fn preallocate_through(&mut self, end: u64) {
        if self.preallocate == 0 {
            return;
        }
        let target = end.saturating_add(self.preallocate);
        let from = self.allocated;
        match rustix::fs::fallocate(
            &self.file,
            rustix::fs::FallocateFlags::empty(),
            from,
            target - from,
        ) {
            Ok(()) => self.allocated = target,
            Err(error) => {
                tracing::warn!(
                    path = %self.path.display(),
                    %error,
                    "cannot preallocate WAL space; going on without preallocation"
                );
                self.preallocate = 0;
            }
        }
    }

    /// Where the next frame will start: the length of the log's valid bytes.
    pub fn log_bytes(&self) -> u64 {
        self.len
    }

    /// The file's length on disk, preallocated space included.
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header of the open file.
    pub fn header(&self) -> WalHeader {
        self.header
    }
}

/// The real disk behind a [`crate::node::replica::Replica`].
impl<C: Serialize + DeserializeOwned + Clone> Durable<C> for Wal<C> {
    type Error = WalError;

    fn stage(&mut self, hard: &HardState<C>, persist: &Persist) -> Result<(), WalError> {
        Wal::stage(self, hard, persist)
    }

    fn sync(&mut self) -> Result<(), WalError> {
        Wal::sync(self).map(|_| ())
    }
}
