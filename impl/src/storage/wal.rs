//! The write-ahead log in segments, and the snapshot files beside it: staging records for a
//! batch, one frame and one fsync per batch, compaction, recovery. The data directory is
//! locked ([`DirLock`]) before anything in it is read, for as long as the [`Wal`] lives.
//!
//! Layout of a data directory:
//!
//! ```text
//! LOCK                                   the lock (lock.rs)
//! wal-<seq, 16 digits>.log               WAL segments, oldest first (record.rs: one header,
//!                                        then one frame per sync)
//! snap-<last included index, 20 digits>.snap   snapshot files (snapshot.rs), the newest two
//! raft.wal                               the single-file WAL of earlier versions: read as
//!                                        segment 0, then treated like any other segment
//! ```
//!
//! **Segments.** Frames are appended to the newest segment until the next one would take it
//! past [`WalOptions::segment_bytes`]; then a new segment starts (its header and first frame
//! written, fsynced, and the directory fsynced). Every segment is self-sufficient for the
//! term and vote: its first frame starts with the term and vote as they are (unless both are
//! still the initial ones), so deleting older segments never loses them. A segment is
//! preallocated ([`WalOptions::preallocate`] bytes ahead of its end, up to the segment size):
//! an append with fdatasync into space already allocated does not wait for a block allocation
//! and a size change, which on this machine's ext4 makes it about 1.6 times as fast
//! (impl/README.md, "Preallocation"). The decoder takes the zeros after the last frame for
//! what they are (record.rs).
//!
//! **Snapshots** (a step's [`Persist::snapshot`]). [`Wal::stage`] writes the snapshot file at
//! once and durably (snapshot.rs: tmp file, fsync, rename, fsync of the directory), then stages
//! a `Snapshot(index, term)` record; when the step also discarded the log after the snapshot
//! (`truncated_after`, an installed snapshot that did not match the log), that truncation is
//! synced first, so that no crash can leave the new snapshot followed by the old, conflicting
//! entries. Then the older snapshots but the newest two are deleted, and so is every segment
//! (oldest first, never the newest) whose entries all lie at or below the snapshot. The node
//! writes the files of the snapshots it takes itself off its event loop
//! (`node/snapshot_writer.rs`) and announces them ([`Wal::snapshot_written`]): staging such a
//! snapshot adopts its file instead of writing it, and the deletions above follow as before.
//!
//! **Recovery.** The newest snapshot file whose checks hold, then the segments replayed in
//! order on top of it (entries at or below it skipped), give the hard state: the snapshot and
//! the log after it. Only the newest segment may end in a torn tail (its last sync,
//! interrupted), which is cut off. A corrupt newest snapshot is set aside (renamed
//! `NAME.corrupt`, with a warning) when the previous snapshot and the WAL after it cover what
//! it held (the log reaches its index); otherwise opening fails naming the file. Leftover
//! `.tmp` files (a snapshot write interrupted before its rename) are removed.

use super::fs::{DirFs, Fs};
use super::lock::{DirLock, LockError};
use super::record::{
    decode_stream_from, encode_batch, encode_persist, encode_snapshot_mark, Record, ScanError,
    ScanProblem, WalHeader, WalIdentity, FILE_HEADER_LEN, FRAME_HEADER_LEN,
};
use super::snapshot::{
    parse_snapshot_file_name, read_snapshot, snapshot_file_name, write_snapshot, SnapshotProblem,
    TMP_SUFFIX,
};
use super::Durable;
use raft_core::{HardState, Index, NodeId, Persist, Term};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// The single-file WAL of earlier versions; a data directory holding one opens it as its
/// first segment (sequence number 0).
pub const WAL_FILE_NAME: &str = "raft.wal";

/// Bytes allocated ahead of the end of the log each time a sync would write past the
/// allocated space (at most up to the segment's size).
pub const PREALLOCATE_BYTES: u64 = 16 << 20;

/// The default size at which the WAL starts a new segment (etcd's).
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// The file name of the WAL segment with sequence number `seq`.
pub fn segment_file_name(seq: u64) -> String {
    if seq == 0 {
        WAL_FILE_NAME.to_string()
    } else {
        format!("wal-{seq:016}.log")
    }
}

/// The sequence number a segment's file name stands for (`None`: not a segment).
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    if name == WAL_FILE_NAME {
        return Some(0);
    }
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|seq| *seq > 0)
}

/// The WAL segments of a data directory, oldest first (for tools and tests that look at the
/// files themselves).
pub fn segment_paths(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut segments: Vec<(u64, String)> = DirFs::new(dir)
        .list()?
        .into_iter()
        .filter_map(|name| parse_segment_file_name(&name).map(|seq| (seq, name)))
        .collect();
    segments.sort();
    Ok(segments.into_iter().map(|(_, n)| dir.join(n)).collect())
}

/// How the WAL lays out its segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// A new segment starts when the next frame would take the current one past this size (a
    /// frame larger than a segment gets a segment of its own).
    pub segment_bytes: u64,
    /// Bytes to allocate ahead of a segment's end (0: none, a segment grows with each sync).
    pub preallocate: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            preallocate: PREALLOCATE_BYTES,
        }
    }
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
        "snapshot file {path} is corrupt ({problem}), and no older snapshot can replace it: \
         {fallback}"
    )]
    CorruptSnapshot {
        path: PathBuf,
        problem: SnapshotProblem,
        fallback: String,
    },
    #[error(
        "{path} belongs to node {found} of this cluster, not to node {expected} \
         (was the data directory moved or its --id changed?)"
    )]
    WrongNode {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error(
        "{path} belongs to cluster {found}, not to cluster {expected} of the cluster file \
         (a data directory of another cluster?)"
    )]
    WrongCluster {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("data directory {path}: {problem}")]
    Inconsistent { path: PathBuf, problem: String },
    #[error("WAL {path}: cannot encode record: {error}")]
    Encode { path: PathBuf, error: String },
}

/// A segment of the WAL.
#[derive(Clone, Debug)]
struct Segment {
    seq: u64,
    name: String,
    /// The greatest index of an entry written into it (0: none).
    last_index: Index,
}

/// An open WAL: the directory lock, the segments, the snapshot files, and the records staged
/// since the last [`Wal::sync`]. It holds no log entry: memory is the staged records, one
/// frame, and a few numbers per segment and snapshot.
pub struct Wal<C, F: Fs = DirFs> {
    fs: F,
    identity: WalIdentity,
    options: WalOptions,
    /// Oldest first; the last one is written to.
    segments: Vec<Segment>,
    file: F::File,
    header: WalHeader,
    /// Where the next frame of the current segment starts: the end of its last valid frame.
    len: u64,
    /// The current segment's length: `len` plus the preallocated zeros after it.
    /// Invariant: len <= allocated.
    allocated: u64,
    /// Bytes to allocate ahead; 0 when preallocation is off (or the file system refused it).
    preallocate: u64,
    /// The current segment is new: its first sync fsyncs the directory too.
    new_segment: bool,
    /// The term and vote as staged last (a new segment starts with them).
    term: Term,
    vote: Option<NodeId>,
    /// The greatest index of an entry in the staged records.
    staged_last_index: Index,
    /// Snapshot files present, oldest first (the newest is the log's start).
    snapshots: Vec<Index>,
    /// A snapshot file written durably by the node's writer thread and not yet staged
    /// ([`Wal::snapshot_written`]): staging its snapshot adopts it.
    written: Option<Index>,
    staged: Vec<u8>,
    frame: Vec<u8>,
    _lock: Option<DirLock>,
    _command: PhantomData<fn() -> C>,
}

/// What recovery found in one segment (its bytes are not kept).
struct Scanned {
    segment: Segment,
    header: Option<WalHeader>,
    frames: usize,
    valid_len: u64,
    file_len: u64,
    torn_tail: Option<ScanProblem>,
}

impl<C: Serialize + DeserializeOwned + Clone> Wal<C> {
    /// Locks `dir` (creating it if needed), then recovers the newest valid snapshot and the
    /// WAL segments after it ([`WalOptions::default`]). A directory locked by another process
    /// is refused before anything in it is read. Files of another node or cluster are
    /// refused; a torn tail of the newest segment is cut off (with a warning); any other
    /// damage is an error, and a refused directory is never modified.
    pub fn open(dir: &Path, identity: WalIdentity) -> Result<(Self, HardState<C>), WalError> {
        Self::open_with_options(dir, identity, WalOptions::default())
    }

    /// [`Wal::open`], allocating `preallocate` bytes ahead of the log (0: none, a segment
    /// grows with each sync).
    pub fn open_with(
        dir: &Path,
        identity: WalIdentity,
        preallocate: u64,
    ) -> Result<(Self, HardState<C>), WalError> {
        let options = WalOptions {
            preallocate,
            ..WalOptions::default()
        };
        Self::open_with_options(dir, identity, options)
    }

    /// [`Wal::open`] with these segment options.
    pub fn open_with_options(
        dir: &Path,
        identity: WalIdentity,
        options: WalOptions,
    ) -> Result<(Self, HardState<C>), WalError> {
        let lock = DirLock::acquire(dir).map_err(|e| match e {
            LockError::Held { .. } => WalError::Locked(e),
            LockError::Io { path, op, error } => WalError::Io { path, op, error },
        })?;
        let (mut wal, hard) = Wal::open_on(DirFs::new(dir), identity, options)?;
        wal._lock = Some(lock);
        Ok((wal, hard))
    }
}

impl<C: Serialize + DeserializeOwned + Clone, F: Fs> Wal<C, F> {
    /// Recovers the WAL on `fs` (no lock: the caller owns the directory).
    pub fn open_on(
        mut fs: F,
        identity: WalIdentity,
        options: WalOptions,
    ) -> Result<(Self, HardState<C>), WalError> {
        let io_err =
            |path: PathBuf, op: &'static str| move |error| WalError::Io { path, op, error };
        let names = fs
            .list()
            .map_err(io_err(fs.path(""), "list the data directory"))?;
        let mut tmp_files = Vec::new();
        let mut snapshots: Vec<(Index, String)> = Vec::new();
        let mut segment_names: Vec<(u64, String)> = Vec::new();
        for name in names {
            if name.starts_with("snap-") && name.ends_with(TMP_SUFFIX) {
                tmp_files.push(name);
            } else if let Some(index) = parse_snapshot_file_name(&name) {
                snapshots.push((index, name));
            } else if let Some(seq) = parse_segment_file_name(&name) {
                segment_names.push((seq, name));
            }
        }
        snapshots.sort();
        segment_names.sort();

        // The newest snapshot whose checks hold; newer ones that fail them are corrupt.
        let mut corrupt: Vec<(Index, String, SnapshotProblem)> = Vec::new();
        let mut hard: HardState<C> = HardState::default();
        let mut kept_snapshots: Vec<Index> = Vec::new();
        for (position, (index, name)) in snapshots.iter().enumerate().rev() {
            let decoded = read_snapshot(&mut fs, name).map_err(io_err(fs.path(name), "read"))?;
            match decoded {
                Ok(decoded) => {
                    check_identity(fs.path(name), decoded.identity, identity)?;
                    hard.snapshot = decoded.snapshot;
                    kept_snapshots = snapshots[..=position].iter().map(|(i, _)| *i).collect();
                    break;
                }
                Err(problem) => corrupt.push((*index, name.clone(), problem)),
            }
        }
        let base = hard.snapshot.last_included_index;
        // Fails naming the newest corrupt snapshot, if one was passed over.
        let fallback_failed = |fs: &F, reason: String, default: WalError| match corrupt.first() {
            Some((_, name, problem)) => WalError::CorruptSnapshot {
                path: fs.path(name),
                problem: problem.clone(),
                fallback: reason,
            },
            None => default,
        };

        // Replay the segments, oldest first, on top of the snapshot.
        let mut scanned: Vec<Scanned> = Vec::new();
        let mut records = 0;
        let last = segment_names.len().saturating_sub(1);
        for (i, (seq, name)) in segment_names.iter().enumerate() {
            let path = fs.path(name);
            let (mut file, file_len) = fs
                .read_stream(name)
                .map_err(io_err(path.clone(), "open to read"))?;
            let decoded = decode_stream_from(&mut file, file_len, hard)
                .map_err(io_err(path.clone(), "read"))?;
            drop(file);
            let decoded = match decoded {
                Ok(decoded) => decoded,
                Err(error) => {
                    let reason = format!(
                        "the WAL after the previous snapshot (index {base}) does not cover it \
                         ({}: {error})",
                        path.display()
                    );
                    return Err(fallback_failed(
                        &fs,
                        reason,
                        WalError::Corrupt { path, error },
                    ));
                }
            };
            if let Some(found) = decoded.header {
                check_identity(
                    path.clone(),
                    WalIdentity {
                        cluster_id: found.cluster_id,
                        node_id: found.node_id,
                    },
                    identity,
                )?;
            }
            if i != last {
                // Only the newest segment was being written: an older one is whole.
                let problem = match (&decoded.header, &decoded.torn_tail) {
                    (None, _) => Some(ScanProblem::ShortHeader),
                    (_, Some(problem)) => Some(problem.clone()),
                    _ => None,
                };
                if let Some(problem) = problem {
                    let error = ScanError {
                        offset: decoded.valid_len,
                        problem,
                        valid_frame_at: None,
                        whole: false,
                    };
                    return Err(WalError::Corrupt { path, error });
                }
            }
            records += decoded.records;
            hard = decoded.hard;
            scanned.push(Scanned {
                segment: Segment {
                    seq: *seq,
                    name: name.clone(),
                    last_index: decoded.last_entry_index,
                },
                header: decoded.header,
                frames: decoded.frames,
                valid_len: decoded.valid_len,
                file_len,
                torn_tail: decoded.torn_tail,
            });
        }
        let last_index = hard.snapshot.last_included_index + hard.log.len() as Index;
        if let Some((index, name, problem)) = corrupt.first() {
            // The older snapshot and the log after it must hold what the corrupt one did.
            if last_index < *index {
                return Err(WalError::CorruptSnapshot {
                    path: fs.path(name),
                    problem: problem.clone(),
                    fallback: format!(
                        "the previous snapshot is at index {base} and the WAL after it ends at \
                         index {last_index}"
                    ),
                });
            }
        }
        if segment_names.is_empty() && !snapshots.is_empty() {
            // A correct writer never deletes the segment it writes to: the term and vote are
            // gone.
            return Err(WalError::Inconsistent {
                path: fs.path(""),
                problem: "snapshot files but no WAL segment (the term and vote are lost)".into(),
            });
        }

        // Accepted: from here on the directory may be changed.
        for (_, name, problem) in &corrupt {
            let aside = format!("{name}.corrupt");
            tracing::warn!(
                path = %fs.path(name).display(),
                %problem,
                fallback = base,
                "corrupt snapshot file set aside; recovering from the previous snapshot and the WAL"
            );
            fs.rename(name, &aside)
                .map_err(io_err(fs.path(name), "rename a corrupt snapshot aside"))?;
        }
        for name in &tmp_files {
            // A snapshot write interrupted before its rename.
            fs.remove(name)
                .map_err(io_err(fs.path(name), "remove an unfinished snapshot"))?;
        }
        if !corrupt.is_empty() || !tmp_files.is_empty() {
            fs.sync_dir()
                .map_err(io_err(fs.path(""), "fsync the data directory"))?;
        }

        let mut wal_segments: Vec<Segment> = scanned.iter().map(|s| s.segment.clone()).collect();
        let current = scanned.pop();
        let (file, header, len, allocated, frames, new_segment) = match current {
            None => {
                let seq = 1;
                let name = segment_file_name(seq);
                let file = fs.create(&name).map_err(io_err(fs.path(&name), "create"))?;
                wal_segments.push(Segment {
                    seq,
                    name,
                    last_index: 0,
                });
                (file, None, 0, 0, 0, true)
            }
            Some(s) => {
                let path = fs.path(&s.segment.name);
                let file = fs
                    .open(&s.segment.name)
                    .map_err(io_err(path.clone(), "open"))?;
                let mut allocated = s.file_len;
                if let Some(problem) = &s.torn_tail {
                    tracing::warn!(
                        path = %path.display(),
                        offset = s.valid_len,
                        cut_bytes = s.file_len - s.valid_len,
                        %problem,
                        "cutting off a torn WAL tail"
                    );
                    fs.set_len(&file, s.valid_len)
                        .map_err(io_err(path.clone(), "truncate torn tail"))?;
                    fs.sync_all(&file).map_err(io_err(path.clone(), "fsync"))?;
                    allocated = s.valid_len;
                }
                (file, s.header, s.valid_len, allocated, s.frames, false)
            }
        };
        let name = wal_segments.last().expect("a segment").name.clone();
        let path = fs.path(&name);
        let header = match header {
            Some(header) => header,
            None => {
                // A new segment (or one whose creation was interrupted): its header first,
                // durable before any record.
                let header = WalHeader {
                    cluster_id: identity.cluster_id,
                    node_id: identity.node_id,
                    salt: fs.salt(),
                };
                fs.write_at(&file, 0, &header.encode())
                    .map_err(io_err(path.clone(), "write header"))?;
                fs.sync_all(&file).map_err(io_err(path.clone(), "fsync"))?;
                if new_segment {
                    // Make the new file's directory entry durable.
                    fs.sync_dir()
                        .map_err(io_err(path.clone(), "fsync data directory"))?;
                }
                header
            }
        };
        let len = len.max(FILE_HEADER_LEN as u64);
        let allocated = allocated.max(len);
        tracing::info!(
            path = %path.display(),
            segments = wal_segments.len(),
            snapshot = base,
            records,
            term = hard.current_term,
            log_len = hard.log.len(),
            "WAL recovered"
        );
        let mut wal = Wal {
            fs,
            identity,
            options,
            segments: wal_segments,
            file,
            header,
            len,
            allocated,
            preallocate: options.preallocate,
            new_segment: false,
            term: hard.current_term,
            vote: hard.voted_for,
            staged_last_index: 0,
            snapshots: kept_snapshots,
            written: None,
            staged: Vec::new(),
            frame: Vec::new(),
            _lock: None,
            _command: PhantomData,
        };
        if frames == 0 && wal.has_start() {
            // A segment without frames must still hold the term and vote before older
            // segments may be deleted: a frame with them now.
            wal.sync_with_start()?;
        }
        Ok((wal, hard))
    }

    /// Stages the records that make `persist` durable, reading the new entries from `hard`.
    /// Costs O(new entries), not O(log). Nothing is written until [`Wal::sync`], except a new
    /// snapshot ([`Persist::snapshot`]), which is durable when this returns (see the module's
    /// documentation).
    pub fn stage(&mut self, hard: &HardState<C>, persist: &Persist) -> Result<(), WalError> {
        let plain = Persist {
            snapshot: false,
            ..*persist
        };
        encode_persist(hard, &plain, &mut self.staged).map_err(|e| self.encode_error(e))?;
        if persist.term_or_vote {
            self.term = hard.current_term;
            self.vote = hard.voted_for;
        }
        if persist.appended_from.is_some() {
            let last = hard.snapshot.last_included_index + hard.log.len() as Index;
            self.staged_last_index = self.staged_last_index.max(last);
        }
        if persist.snapshot {
            self.save_snapshot(hard, persist.truncated_after.is_some())?;
        }
        Ok(())
    }

    /// The snapshot file at `index` was written durably (tmp file, fsync, rename, fsync of the
    /// directory) by someone else, the node's snapshot writer thread: the next
    /// [`Wal::stage`] of that snapshot adopts it instead of writing it. A file at or below
    /// the newest snapshot kept is obsolete already (a snapshot installed from the leader
    /// overtook it) and is removed.
    pub fn snapshot_written(&mut self, index: Index) {
        if self.snapshots.contains(&index) {
            // The file of a snapshot kept already, at the same committed index: kept.
            return;
        }
        if self.snapshots.last().is_some_and(|last| index <= *last) {
            self.remove_file(&snapshot_file_name(index));
            return;
        }
        if let Some(old) = self.written.replace(index) {
            // Never with one write in flight at a time; harmless anyway (a snapshot file the
            // WAL covers), so removed rather than kept unlisted.
            self.remove_file(&snapshot_file_name(old));
        }
    }

    /// Writes `hard`'s snapshot file (or adopts the one [`Wal::snapshot_written`] announced),
    /// stages its record, and deletes what it makes obsolete.
    fn save_snapshot(&mut self, hard: &HardState<C>, discards_log: bool) -> Result<(), WalError> {
        let index = hard.snapshot.last_included_index;
        let written = self.written.take();
        if let Some(other) = written.filter(|w| *w != index) {
            // Announced, then superseded before its compaction was staged.
            self.remove_file(&snapshot_file_name(other));
        }
        if self.snapshots.last().is_some_and(|last| index <= *last) || index == 0 {
            return Ok(());
        }
        if discards_log {
            // The log after the snapshot was discarded: durable before the snapshot is, or a
            // crash between the two would recover the new snapshot followed by the old log.
            self.sync()?;
        }
        if written != Some(index) {
            write_snapshot(&mut self.fs, self.identity, &hard.snapshot).map_err(
                |(name, op, error)| WalError::Io {
                    path: self.fs.path(&name),
                    op,
                    error,
                },
            )?;
        }
        encode_snapshot_mark(hard, &mut self.staged).map_err(|e| self.encode_error(e))?;
        self.snapshots.push(index);
        // The newest two snapshots stay (the older one a fallback while the WAL covers it).
        while self.snapshots.len() > 2 {
            let old = self.snapshots.remove(0);
            self.remove_file(&snapshot_file_name(old));
        }
        // Whole segments, oldest first, whose entries the snapshot holds; never the one being
        // written (a segment's first frame holds the term and vote, so a later one has them).
        let mut removed = false;
        while self.segments.len() > 1 && self.segments[0].last_index <= index {
            let segment = self.segments.remove(0);
            self.remove_file(&segment.name);
            removed = true;
        }
        if removed {
            // Not needed for safety (a segment that comes back is replayed and skipped), but
            // it keeps the directory's size bounded across crashes.
            if let Err(error) = self.fs.sync_dir() {
                tracing::warn!(%error, "cannot fsync the data directory after removing segments");
            }
        }
        Ok(())
    }

    /// Removes an obsolete file. A failure is only a warning: a file left behind (or brought
    /// back by a crash before the directory's next fsync) is ignored or deleted again later.
    fn remove_file(&mut self, name: &str) {
        match self.fs.remove(name) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(
                path = %self.fs.path(name).display(),
                %error,
                "cannot remove an obsolete file"
            ),
        }
    }

    /// Whether a new segment must start with the term and vote (they are not the initial ones).
    fn has_start(&self) -> bool {
        self.term != 0 || self.vote.is_some()
    }

    fn encode_error(&self, e: impl std::fmt::Display) -> WalError {
        WalError::Encode {
            path: self.path(),
            error: e.to_string(),
        }
    }

    /// Writes the staged records as one frame and fsyncs the segment. Returns whether anything
    /// was written.
    pub fn sync(&mut self) -> Result<bool, WalError> {
        if self.staged.is_empty() {
            return Ok(false);
        }
        let frame_len = (FRAME_HEADER_LEN + self.staged.len()) as u64;
        if self.len > FILE_HEADER_LEN as u64
            && self.len.saturating_add(frame_len) > self.options.segment_bytes
        {
            self.roll()?;
        }
        if self.new_segment && self.has_start() {
            self.sync_with_start()?;
        } else {
            let staged = std::mem::take(&mut self.staged);
            let result = self.write_frame(&staged);
            self.staged = staged;
            result?;
        }
        self.staged.clear();
        Ok(true)
    }

    /// Writes the staged records (perhaps none) behind a record of the term and vote.
    fn sync_with_start(&mut self) -> Result<(), WalError> {
        let mut payload = Vec::with_capacity(32 + self.staged.len());
        let start: Record<C> = Record::HardState {
            current_term: self.term,
            voted_for: self.vote,
        };
        let bytes = postcard::to_allocvec(&start).map_err(|e| self.encode_error(e))?;
        payload.extend_from_slice(&bytes);
        payload.extend_from_slice(&self.staged);
        self.write_frame(&payload)?;
        self.staged.clear();
        Ok(())
    }

    /// Starts a new segment (written at its first frame).
    fn roll(&mut self) -> Result<(), WalError> {
        let seq = self.segments.last().map_or(1, |s| s.seq + 1);
        let name = segment_file_name(seq);
        let file = self.fs.create(&name).map_err(|error| WalError::Io {
            path: self.fs.path(&name),
            op: "create",
            error,
        })?;
        self.segments.push(Segment {
            seq,
            name,
            last_index: 0,
        });
        self.file = file;
        self.header = WalHeader {
            cluster_id: self.identity.cluster_id,
            node_id: self.identity.node_id,
            salt: self.fs.salt(),
        };
        self.len = 0;
        self.allocated = 0;
        self.preallocate = self.options.preallocate;
        self.new_segment = true;
        Ok(())
    }

    /// Writes `payload` as one frame (behind the header, in a new segment) and fsyncs it.
    fn write_frame(&mut self, payload: &[u8]) -> Result<(), WalError> {
        self.frame.clear();
        encode_batch(&self.header, self.len, payload, &mut self.frame)
            .map_err(|e| self.encode_error(e))?;
        let path = self.path();
        let io_err = |op: &'static str| {
            let path = path.clone();
            move |error| WalError::Io { path, op, error }
        };
        let end = self
            .len
            .checked_add(self.frame.len() as u64)
            .ok_or_else(|| {
                io_err("write")(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "WAL offset overflows u64",
                ))
            })?;
        if end > self.allocated {
            self.preallocate_through(end);
        }
        self.fs
            .write_at(&self.file, self.len, &self.frame)
            .map_err(io_err("write"))?;
        if self.new_segment {
            self.fs.sync_all(&self.file).map_err(io_err("fsync"))?;
            self.fs.sync_dir().map_err(io_err("fsync data directory"))?;
            self.new_segment = false;
        } else {
            self.fs.sync_data(&self.file).map_err(io_err("fsync"))?;
        }
        self.len = end;
        self.allocated = self.allocated.max(end);
        let segment = self.segments.last_mut().expect("a segment");
        segment.last_index = segment.last_index.max(self.staged_last_index);
        self.staged_last_index = 0;
        Ok(())
    }

    /// Allocates the segment through `end` plus the preallocation (zeros, which the decoder
    /// reads as the end of the log), but not past the segment's size unless `end` is. The
    /// size change becomes durable with the fdatasync of the frame written into it. A file
    /// system that refuses (no fallocate support, or no space for the extra) turns
    /// preallocation off with a warning: the write that follows then grows the file itself,
    /// and fails on its own if the disk is really full.
    fn preallocate_through(&mut self, end: u64) {
        if self.preallocate == 0 {
            return;
        }
        let target = end
            .saturating_add(self.preallocate)
            .min(self.options.segment_bytes)
            .max(end);
        if target <= self.allocated {
            return;
        }
        let from = self.allocated;
        match self.fs.allocate(&self.file, from, target - from) {
            Ok(()) => self.allocated = target,
            Err(error) => {
                tracing::warn!(
                    path = %self.path().display(),
                    %error,
                    "cannot preallocate WAL space; going on without preallocation"
                );
                self.preallocate = 0;
            }
        }
    }

    /// Where the next frame will start in the current segment: the length of its valid bytes.
    pub fn log_bytes(&self) -> u64 {
        self.len
    }

    /// The current segment's length on disk, preallocated space included.
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated
    }

    /// The current segment's path.
    pub fn path(&self) -> PathBuf {
        self.fs.path(&self.segments.last().expect("a segment").name)
    }

    /// The segments' file names, oldest first.
    pub fn segment_names(&self) -> Vec<String> {
        self.segments.iter().map(|s| s.name.clone()).collect()
    }

    /// The last included indices of the snapshot files kept, oldest first.
    pub fn snapshot_indices(&self) -> &[Index] {
        &self.snapshots
    }

    /// The header of the current segment.
    pub fn header(&self) -> WalHeader {
        self.header
    }

    /// Whose files these are (what a snapshot file written beside the WAL must say).
    pub fn identity(&self) -> WalIdentity {
        self.identity
    }
}

impl<C> Wal<C, DirFs> {
    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.fs.dir()
    }
}

fn check_identity(
    path: PathBuf,
    found: WalIdentity,
    expected: WalIdentity,
) -> Result<(), WalError> {
    if found.cluster_id != expected.cluster_id {
        return Err(WalError::WrongCluster {
            path,
            found: found.cluster_id,
            expected: expected.cluster_id,
        });
    }
    if found.node_id != expected.node_id {
        return Err(WalError::WrongNode {
            path,
            found: found.node_id,
            expected: expected.node_id,
        });
    }
    Ok(())
}

/// The real disk behind a [`crate::node::replica::Replica`] (and, on a fake [`Fs`], the
/// simulator's).
impl<C: Serialize + DeserializeOwned + Clone, F: Fs> Durable<C> for Wal<C, F> {
    type Error = WalError;

    fn stage(&mut self, hard: &HardState<C>, persist: &Persist) -> Result<(), WalError> {
        Wal::stage(self, hard, persist)
    }

    fn sync(&mut self) -> Result<(), WalError> {
        Wal::sync(self).map(|_| ())
    }

    fn snapshot_written(&mut self, index: Index) {
        Wal::snapshot_written(self, index)
    }
}
