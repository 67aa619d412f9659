//! The write-ahead log file: staging records for a batch, one frame and one fsync per batch,
//! and recovery. The data directory is locked ([`DirLock`]) before the file is opened, for as
//! long as the [`Wal`] lives.
//!
//! Compaction/rotation is not implemented: the file grows with the log.

use super::lock::{DirLock, LockError};
use super::record::{decode_records, encode_batch, encode_persist, ScanError, WalHeader};
use super::Durable;
use raft_core::{HardState, Persist};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// The WAL's file name inside the data directory.
pub const WAL_FILE_NAME: &str = "raft.wal";

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
    /// The file's length: where the next frame starts.
    len: u64,
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
            .append(true)
            .create(true)
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
        if decoded.header.is_none() {
            // A new file (or one whose creation was interrupted): its header first, durable
            // before any record.
            (&file)
                .write_all(&header.encode())
                .map_err(io_err("write header"))?;
            len = header.encode().len() as u64;
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
            term = decoded.hard.current_term,
            log_len = decoded.hard.log.len(),
            "WAL recovered"
        );
        let wal = Wal {
            path,
            file,
            header,
            len,
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
        let io_err = |op: &'static str, error| WalError::Io {
            path: self.path.clone(),
            op,
            error,
        };
        self.file
            .write_all(&self.frame)
            .map_err(|e| io_err("write", e))?;
        self.file.sync_data().map_err(|e| io_err("fsync", e))?;
        self.len += self.frame.len() as u64;
        self.staged.clear();
        Ok(true)
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
