//! The write-ahead log file: staging records for a batch, one fsync per batch, and recovery.
//!
//! Compaction/rotation is not implemented: the file grows with the log.

use super::record::{decode_records, encode_persist, ScanError};
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

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("WAL {path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    #[error("WAL {path}: {source}")]
    Corrupt { path: PathBuf, source: ScanError },
    #[error("WAL {path}: cannot encode record: {source}")]
    Encode {
        path: PathBuf,
        source: postcard::Error,
    },
}

/// An open WAL: the file, and the records staged since the last [`Wal::sync`].
pub struct Wal<C> {
    path: PathBuf,
    file: File,
    staged: Vec<u8>,
    _command: PhantomData<fn() -> C>,
}

impl<C: Serialize + DeserializeOwned + Clone> Wal<C> {
    /// Opens (or creates) `dir/raft.wal` and replays it. A torn tail is cut off (with a warning)
    /// and the file truncated to its valid prefix; any other damage is an error.
    pub fn open(dir: &Path) -> Result<(Self, HardState<C>), WalError> {
        let path = dir.join(WAL_FILE_NAME);
        let io_err = |op: &'static str| {
            let path = path.clone();
            move |source| WalError::Io { path, op, source }
        };
        fs::create_dir_all(dir).map_err(io_err("create data directory"))?;
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err("open"))?;
        if !existed {
            // Make the new file's directory entry durable.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err("fsync data directory"))?;
        }
        let bytes = fs::read(&path).map_err(io_err("read"))?;
        let decoded = decode_records::<C>(&bytes).map_err(|source| WalError::Corrupt {
            path: path.clone(),
            source,
        })?;
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
            file.sync_all().map_err(io_err("fsync"))?;
        }
        tracing::info!(
            path = %path.display(),
            records = decoded.records,
            term = decoded.hard.current_term,
            log_len = decoded.hard.log.len(),
            "WAL recovered"
        );
        let wal = Wal {
            path,
            file,
            staged: Vec::new(),
            _command: PhantomData,
        };
        Ok((wal, decoded.hard))
    }

    /// Stages the records that make `persist` durable, reading the new entries from `hard`.
    /// Costs O(new entries), not O(log). Nothing is written until [`Wal::sync`].
    pub fn stage(&mut self, hard: &HardState<C>, persist: &Persist) -> Result<(), WalError> {
        encode_persist(hard, persist, &mut self.staged).map_err(|source| WalError::Encode {
            path: self.path.clone(),
            source,
        })
    }

    /// Whether records wait to be written.
    pub fn has_staged(&self) -> bool {
        !self.staged.is_empty()
    }

    /// Writes the staged records and fsyncs the file. Returns whether anything was written.
    pub fn sync(&mut self) -> Result<bool, WalError> {
        if self.staged.is_empty() {
            return Ok(false);
        }
        let io_err = |op: &'static str, source| WalError::Io {
            path: self.path.clone(),
            op,
            source,
        };
        self.file
            .write_all(&self.staged)
            .map_err(|e| io_err("write", e))?;
        self.file.sync_data().map_err(|e| io_err("fsync", e))?;
        self.staged.clear();
        Ok(true)
    }

    pub fn path(&self) -> &Path {
        &self.path
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
