//! The WAL's file format and its decoder.
//!
//! A WAL segment file (wal.rs: the WAL is a sequence of them) is a header, then one frame per
//! sync (a batch of records):
//!
//! ```text
//! header (40 bytes): magic "RAFTWAL\n" | version u32 | cluster_id u64 | node_id u64
//!                    | salt u64 | crc u32 (CRC-32C of the 36 bytes before it)
//! frame:             magic "RFRM" | len u32 | hcrc u32 | pcrc u32 | payload (len bytes)
//!     hcrc = CRC-32C(salt ‖ offset ‖ magic ‖ len)    offset: the frame's own byte offset
//!     pcrc = CRC-32C(payload), seeded with hcrc
//!     payload: one or more postcard-encoded [`Record`]s, back to back
//! ```
//!
//! Records: `HardState(term, vote)`, `Entries(from, entries)` (replacing the log from `from`),
//! `Truncate(after)`, `Snapshot(index, term)` (the log now starts after `index`: a snapshot
//! file holds what it replaced). A segment's records are replayed onto the hard state that the
//! snapshot and the segments before it describe ([`decode_records_from`]); entries at or below
//! the snapshot are skipped.
//!
//! All integers are little-endian. `salt` is random per file, and a frame header is valid only
//! at the offset it was written at, in the file it was written to. So bytes that a client put
//! in a value (which it cannot know the salt of, nor the offset they land at) are never taken
//! for a frame, and the header of a frame can be checked in O(1) without reading its payload.
//!
//! Recovery ([`decode_records`]) reads the frames in order. The first bad frame is a torn tail
//! (the last sync, interrupted) only if no valid frame header starts anywhere after it (one
//! O(1) probe per byte offset after it, so decoding is linear in the file's length whatever the
//! bytes are) and the write visibly did not finish: the frame runs past the end of the file,
//! or some [`SECTOR`]-aligned part of it is all zeros. Because a sync writes exactly one frame,
//! a torn sync is always the last frame, however the disk reordered the pages of that write.
//! A disk writes a sector whole or not at all, and space never written reads as zeros
//! (preallocated, or past the old end of the file), so an interrupted write always leaves a
//! sector of its frame zero. A last frame that is all there, with no zero sector, was synced:
//! a bad checksum there is damage to acknowledged data (a vote, entries a leader counted), and
//! recovery refuses it as it refuses damage in the middle (issue 38, finding 1). What is left
//! undetected: damage to a last frame that also holds a whole sector of legitimate zeros.
//!
//! A file may end in zero bytes: space [`crate::storage::Wal`] preallocated (fdatasync of a
//! write into allocated space does not wait for a block allocation) and has not written yet.
//! Frames start with a non-zero magic, so a run of zeros from the end of the last frame to the
//! end of the file is neither a frame nor damage: the log ends there ([`DecodedWal::preallocated`]).
//! A sync torn inside that space leaves non-zero bytes, and is a torn tail as above.
//!
//! Decoding is a pure function over bytes so that it can be tested on arbitrary input; recovery
//! runs the very same decoder over the file, frame by frame ([`decode_stream_from`]), so that
//! its memory is one frame, not one segment.

use raft_core::{Entry, HardState, Index, NodeId, Persist, Term};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io;

/// Which node of which cluster a WAL belongs to; written into every segment's and snapshot's
/// header and checked against existing ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalIdentity {
    pub cluster_id: u64,
    pub node_id: u64,
}

/// The first bytes of every WAL file.
pub const WAL_MAGIC: [u8; 8] = *b"RAFTWAL\n";
/// The format version this code writes and reads (2: configuration entries carry the
/// members' addresses).
pub const WAL_VERSION: u32 = 2;
/// Bytes of the file header.
pub const FILE_HEADER_LEN: usize = 40;
/// The first bytes of every frame.
pub const FRAME_MAGIC: [u8; 4] = *b"RFRM";
/// Bytes of a frame header, before its payload.
pub const FRAME_HEADER_LEN: usize = 16;
/// The unit a disk writes whole or not at all (the smallest in use; a disk with larger atomic
/// writes leaves larger zero runs, which hold a zero sector of this size too).
pub const SECTOR: usize = 512;

/// One change to the hard state, as stored in the WAL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record<C> {
    /// `current_term` and `voted_for` as they now are.
    HardState {
        current_term: Term,
        voted_for: Option<NodeId>,
    },
    /// Entries starting at index `from`; anything at or after `from` before them is replaced.
    Entries { from: Index, entries: Vec<Entry<C>> },
    /// Entries after index `after` were removed.
    Truncate { after: Index },
    /// The log now starts after `index`, whose entry has term `term`: the entries up to it are
    /// in the snapshot file of that index, written (durably) before this record.
    Snapshot { index: Index, term: Term },
}

/// The borrowed twin of [`Record`] used for encoding, so that writing entries does not copy
/// them. It must keep [`Record`]'s variant order: postcard encodes both identically.
#[derive(Serialize)]
pub(crate) enum RecordRef<'a, C> {
    HardState {
        current_term: Term,
        voted_for: Option<NodeId>,
    },
    Entries {
        from: Index,
        entries: &'a [Entry<C>],
    },
    Truncate {
        after: Index,
    },
    Snapshot {
        index: Index,
        term: Term,
    },
}

/// What a WAL file says about itself: which node of which cluster wrote it, and the random
/// salt its frames are keyed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalHeader {
    pub cluster_id: u64,
    pub node_id: u64,
    pub salt: u64,
}

impl WalHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut out = [0u8; FILE_HEADER_LEN];
        out[0..8].copy_from_slice(&WAL_MAGIC);
        out[8..12].copy_from_slice(&WAL_VERSION.to_le_bytes());
        out[12..20].copy_from_slice(&self.cluster_id.to_le_bytes());
        out[20..28].copy_from_slice(&self.node_id.to_le_bytes());
        out[28..36].copy_from_slice(&self.salt.to_le_bytes());
        let crc = crc32c::crc32c(&out[..36]);
        out[36..40].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8; FILE_HEADER_LEN]) -> Result<Self, ScanProblem> {
        if bytes[0..8] != WAL_MAGIC {
            return Err(ScanProblem::NoHeader);
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            u64::from_le_bytes(b)
        };
        // The version before the checksum: another version's header may be laid out otherwise.
        let version = u32_at(8);
        if version != WAL_VERSION {
            return Err(ScanProblem::UnsupportedVersion { version });
        }
        if crc32c::crc32c(&bytes[..36]) != u32_at(36) {
            return Err(ScanProblem::HeaderCrcMismatch);
        }
        Ok(WalHeader {
            cluster_id: u64_at(12),
            node_id: u64_at(20),
            salt: u64_at(28),
        })
    }
}

/// The CRC that makes a frame header valid only at `offset` of a file salted with `salt`.
fn header_crc(salt: u64, offset: u64, len: u32) -> u32 {
    let mut key = [0u8; 24];
    key[0..8].copy_from_slice(&salt.to_le_bytes());
    key[8..16].copy_from_slice(&offset.to_le_bytes());
    key[16..20].copy_from_slice(&FRAME_MAGIC);
    key[20..24].copy_from_slice(&len.to_le_bytes());
    crc32c::crc32c(&key)
}

/// A batch too large for one frame (its length field is a u32).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a batch of {len} bytes does not fit in one WAL frame (at most {} bytes)",
    u32::MAX
)]
pub struct FrameTooLarge {
    pub len: usize,
}

/// Appends to `out` the frame holding `payload` (the records of one sync, as
/// [`encode_persist`] stages them), for a WAL file that is now `file_len` bytes long. A file
/// still empty gets `header` first. An empty payload writes nothing.
pub fn encode_batch(
    header: &WalHeader,
    file_len: u64,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), FrameTooLarge> {
    if payload.is_empty() {
        return Ok(());
    }
    let len = u32::try_from(payload.len()).map_err(|_| FrameTooLarge { len: payload.len() })?;
    let mut offset = file_len;
    if file_len == 0 {
        out.extend_from_slice(&header.encode());
        offset = FILE_HEADER_LEN as u64;
    }
    let hcrc = header_crc(header.salt, offset, len);
    let pcrc = crc32c::crc32c_append(hcrc, payload);
    out.extend_from_slice(&FRAME_MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&hcrc.to_le_bytes());
    out.extend_from_slice(&pcrc.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

fn encode_record<C: Serialize>(
    record: &RecordRef<'_, C>,
    buf: &mut Vec<u8>,
) -> Result<(), postcard::Error> {
    let bytes = postcard::to_allocvec(record)?;
    buf.extend_from_slice(&bytes);
    Ok(())
}

/// Appends to `buf` the records that make `persist` durable, reading the new entries from
/// `hard`: `Truncate(after)`, then `HardState(term, vote)`, then `Entries(from, from..end)`,
/// then, for a new snapshot, `Snapshot(index, term)` ([`encode_snapshot_mark`]; the snapshot
/// file itself is written by [`crate::storage::Wal`] before that record).
/// Costs O(new entries), not O(log). What a batch stages this way becomes the payload of one
/// frame at sync ([`encode_batch`]). Shared by the WAL file and any other [`super::Durable`]
/// that stores WAL bytes (the deterministic simulator's fake disk), so that both recover
/// through [`decode_records`].
pub fn encode_persist<C: Serialize>(
    hard: &HardState<C>,
    persist: &Persist,
    buf: &mut Vec<u8>,
) -> Result<(), postcard::Error> {
    if let Some(after) = persist.truncated_after {
        let record: RecordRef<'_, C> = RecordRef::Truncate { after };
        encode_record(&record, buf)?;
    }
    if persist.term_or_vote {
        let record: RecordRef<'_, C> = RecordRef::HardState {
            current_term: hard.current_term,
            voted_for: hard.voted_for,
        };
        encode_record(&record, buf)?;
    }
    if let Some(from) = persist.appended_from {
        // log[i] is the entry at index snapshot + 1 + i.
        let base = hard.snapshot.last_included_index;
        let from = from.max(base.saturating_add(1));
        let start = (from - base).saturating_sub(1).min(hard.log.len() as Index) as usize;
        let record = RecordRef::Entries {
            from,
            entries: &hard.log[start..],
        };
        encode_record(&record, buf)?;
    }
    if persist.snapshot {
        encode_snapshot_mark(hard, buf)?;
    }
    Ok(())
}

/// Appends to `buf` the record saying that the log now starts after `hard`'s snapshot.
pub fn encode_snapshot_mark<C: Serialize>(
    hard: &HardState<C>,
    buf: &mut Vec<u8>,
) -> Result<(), postcard::Error> {
    let record: RecordRef<'_, C> = RecordRef::Snapshot {
        index: hard.snapshot.last_included_index,
        term: hard.snapshot.last_included_term,
    };
    encode_record(&record, buf)
}

/// What was wrong at some offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanProblem {
    /// The file does not start with [`WAL_MAGIC`]: not a WAL, or one written before the
    /// format had a header.
    NoHeader,
    /// The file header's checksum does not match.
    HeaderCrcMismatch,
    /// A format version this code does not read.
    UnsupportedVersion { version: u32 },
    /// Fewer than [`FRAME_HEADER_LEN`] bytes remain (or, at offset 0, fewer than a file
    /// header: a crash while the file was being created).
    ShortHeader,
    /// No [`FRAME_MAGIC`] where a frame should start.
    BadMagic,
    /// The frame header's checksum does not match (for this file and this offset).
    FrameHeaderCrcMismatch,
    /// The frame's payload extends past the end of the file.
    ShortPayload { len: u32 },
    /// The length field is zero.
    BadLength { len: u32 },
    /// The payload's checksum does not match.
    CrcMismatch,
    /// The checksum matches but the payload is not a record (or not one this version writes).
    Undecodable(String),
    /// The record does not fit the log built so far (e.g. entries starting past its end).
    Inconsistent(String),
}

impl std::fmt::Display for ScanProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanProblem::NoHeader => write!(
                f,
                "no WAL header (not a raft-impl WAL, or one written before format version \
                 {WAL_VERSION}, which cannot be read)"
            ),
            ScanProblem::HeaderCrcMismatch => write!(f, "WAL header checksum mismatch"),
            ScanProblem::UnsupportedVersion { version } => write!(
                f,
                "WAL format version {version}; this build reads only version {WAL_VERSION}"
            ),
            ScanProblem::ShortHeader => write!(f, "incomplete header"),
            ScanProblem::BadMagic => write!(f, "no frame magic"),
            ScanProblem::FrameHeaderCrcMismatch => write!(f, "frame header checksum mismatch"),
            ScanProblem::ShortPayload { len } => {
                write!(f, "frame of {len} bytes extends past the end of the file")
            }
            ScanProblem::BadLength { len } => write!(f, "impossible frame length {len}"),
            ScanProblem::CrcMismatch => write!(f, "CRC-32C mismatch"),
            ScanProblem::Undecodable(e) => write!(f, "undecodable record: {e}"),
            ScanProblem::Inconsistent(e) => write!(f, "inconsistent record: {e}"),
        }
    }
}

/// Damage that is not a torn tail: recovery must stop.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad WAL record at byte offset {offset}: {problem}{}",
    match (.valid_frame_at, .whole) {
        (Some(at), _) => format!(" (a valid frame follows at byte offset {at}, so this is not a torn tail)"),
        (None, true) => " (the last frame is all on disk, with no unwritten sector: synced data \
                          was damaged, this is not a torn write)".to_string(),
        (None, false) => String::new(),
    }
)]
pub struct ScanError {
    pub offset: u64,
    pub problem: ScanProblem,
    /// For a bad frame: where the valid frame after it starts.
    pub valid_frame_at: Option<u64>,
    /// For a bad last frame: it is whole (no part of it is unwritten), so it was synced.
    pub whole: bool,
}

/// The result of decoding a WAL file's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedWal<C> {
    /// The file's header; `None` for an empty file or one cut short while it was created
    /// (nothing was ever synced into it).
    pub header: Option<WalHeader>,
    /// The hard state the valid records describe.
    pub hard: HardState<C>,
    /// Number of valid records.
    pub records: usize,
    /// Number of valid frames (syncs).
    pub frames: usize,
    /// Length of the valid prefix; bytes after it are a torn tail to cut off, or preallocated
    /// zeros.
    pub valid_len: u64,
    /// Why the tail was cut, if it was.
    pub torn_tail: Option<ScanProblem>,
    /// Zero bytes after the valid prefix, to the end of the file: preallocated space, kept.
    /// Zero when there is a torn tail (the bytes after the valid prefix are not all zero).
    pub preallocated: u64,
    /// Work done: frame headers probed (each O(1)) and payload bytes checksummed. Both are at
    /// most the file's length: the decoder is linear whatever the bytes are.
    pub header_probes: u64,
    pub payload_bytes_checked: u64,
    /// The greatest index of an entry any record of the file wrote (0: none): a WAL segment
    /// whose entries all lie at or below a snapshot's index can be deleted.
    pub last_entry_index: Index,
}

/// Whether a valid frame header starts `rest`, which lies at `offset` in its file: O(1), the
/// payload is not read.
fn frame_header_at(rest: &[u8], offset: u64, salt: u64) -> Result<(u32, u32), ScanProblem> {
    if rest.len() < FRAME_HEADER_LEN {
        return Err(ScanProblem::ShortHeader);
    }
    if rest[0..4] != FRAME_MAGIC {
        return Err(ScanProblem::BadMagic);
    }
    let u32_at = |i: usize| u32::from_le_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
    let len = u32_at(4);
    if header_crc(salt, offset, len) != u32_at(8) {
        return Err(ScanProblem::FrameHeaderCrcMismatch);
    }
    if len == 0 {
        return Err(ScanProblem::BadLength { len });
    }
    Ok((len, u32_at(12)))
}

/// The frame that starts `rest` (at `offset` in its file), checked: its payload and its
/// length. `checked` counts the payload bytes checksummed.
fn frame_at<'a>(
    rest: &'a [u8],
    offset: u64,
    salt: u64,
    checked: &mut u64,
) -> Result<(&'a [u8], usize), ScanProblem> {
    let (len, pcrc) = frame_header_at(rest, offset, salt)?;
    let end = FRAME_HEADER_LEN + len as usize;
    let Some(payload) = rest.get(FRAME_HEADER_LEN..end) else {
        return Err(ScanProblem::ShortPayload { len });
    };
    *checked += u64::from(len);
    let hcrc = u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]);
    if crc32c::crc32c_append(hcrc, payload) != pcrc {
        return Err(ScanProblem::CrcMismatch);
    }
    Ok((payload, end))
}

/// Whether the bad last frame starting `rest` (at `offset` in its file) is a write that did
/// not finish: it runs past the end of the file, or one [`SECTOR`]-aligned part of it (its
/// header only, when the header is bad and so its length unknown) is all zeros, never
/// written. Linear in the frame's length.
fn unfinished_write(rest: &[u8], offset: u64, problem: &ScanProblem) -> bool {
    let len = match problem {
        ScanProblem::ShortHeader | ScanProblem::ShortPayload { .. } => return true,
        ScanProblem::CrcMismatch => {
            FRAME_HEADER_LEN + u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize
        }
        _ => FRAME_HEADER_LEN,
    }
    .min(rest.len());
    let sector = SECTOR as u64;
    let mut start = 0;
    while start < len {
        // The end of the sector that the byte at `start` lies in, within `rest`.
        let at = offset + start as u64;
        let sector_end = ((at / sector + 1) * sector - offset) as usize;
        let part = &rest[start..len.min(sector_end)];
        if part.iter().all(|b| *b == 0) {
            return true;
        }
        start += part.len();
    }
    false
}

/// Where the log of a file ends, given that the frame at `offset` is bad (`problem`) and
/// `rest` is the file from there to its end: preallocated zeros (the log just ends), a torn
/// tail (cut off), or damage (an error). Linear in `rest`'s length.
fn end_of_log<C>(
    rest: &[u8],
    offset: u64,
    salt: u64,
    problem: ScanProblem,
    mut decoded: DecodedWal<C>,
) -> Result<DecodedWal<C>, ScanError> {
    // Preallocated space that no sync has written into: the log ends here.
    if rest.iter().all(|b| *b == 0) {
        decoded.valid_len = offset;
        decoded.preallocated = rest.len() as u64;
        return Ok(decoded);
    }
    // Torn tail or corruption: is there a valid frame header anywhere after?
    for p in 1..rest.len() {
        decoded.header_probes += 1;
        if frame_header_at(&rest[p..], offset + p as u64, salt).is_ok() {
            return Err(ScanError {
                offset,
                problem,
                valid_frame_at: Some(offset + p as u64),
                whole: false,
            });
        }
    }
    // The last frame: torn only if its write visibly did not finish.
    if !unfinished_write(rest, offset, &problem) {
        return Err(ScanError {
            offset,
            problem,
            valid_frame_at: None,
            whole: true,
        });
    }
    decoded.valid_len = offset;
    decoded.torn_tail = Some(problem);
    Ok(decoded)
}

/// Applies one record to the hard state being rebuilt, whose log starts after its snapshot
/// (`hard.log[i]` is the entry at index `snapshot + 1 + i`). Entries at or below the snapshot
/// are skipped: the snapshot holds them.
fn replay<C: Clone>(hard: &mut HardState<C>, record: Record<C>) -> Result<(), ScanProblem> {
    let base = hard.snapshot.last_included_index;
    match record {
        Record::HardState {
            current_term,
            voted_for,
        } => {
            hard.current_term = current_term;
            hard.voted_for = voted_for;
        }
        Record::Entries { from, entries } => {
            let end = base.saturating_add(hard.log.len() as Index);
            if from == 0 || from > end.saturating_add(1) {
                return Err(ScanProblem::Inconsistent(format!(
                    "entries from index {from} but the log ends at {end}"
                )));
            }
            if from <= base {
                // Everything after `from` is replaced: the log after the snapshot too.
                hard.log.clear();
                let skip = (base - from).saturating_add(1).min(entries.len() as Index) as usize;
                hard.log.extend(entries.into_iter().skip(skip));
            } else {
                hard.log.truncate((from - base - 1) as usize);
                hard.log.extend(entries);
            }
        }
        Record::Truncate { after } => {
            if after < base {
                hard.log.clear();
            } else {
                hard.log
                    .truncate((after - base).min(usize::MAX as Index) as usize);
            }
        }
        Record::Snapshot { index, term } => {
            if index == base && term != hard.snapshot.last_included_term {
                return Err(ScanProblem::Inconsistent(format!(
                    "the WAL says the snapshot at index {index} has term {term}, the snapshot \
                     file says term {}",
                    hard.snapshot.last_included_term
                )));
            }
            if index > base {
                // Recovering from an older snapshot: the log must still hold the entries this
                // one covers (then they are the same: the snapshot's term matches its last).
                let own = (index - base - 1) as usize;
                if hard.log.get(own).map(|e| e.term) != Some(term) {
                    return Err(ScanProblem::Inconsistent(format!(
                        "the WAL records a snapshot at index {index} (term {term}) that neither \
                         a readable snapshot file nor the log covers (the log holds indices \
                         {}..={})",
                        base.saturating_add(1),
                        base.saturating_add(hard.log.len() as Index)
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Decodes a whole WAL file. A bad frame with no valid frame header after it is a torn tail
/// (reported in [`DecodedWal::torn_tail`]); a bad frame with one after it, a bad file header,
/// or a frame whose checksums hold but whose records do not decode or do not fit is an error.
pub fn decode_records<C: DeserializeOwned + Clone>(
    bytes: &[u8],
) -> Result<DecodedWal<C>, ScanError> {
    decode_records_from(bytes, HardState::default())
}

/// [`decode_records`] of one WAL segment, replaying its records onto `start`: the hard state
/// that the snapshot and the segments before this one describe (its log starts after its
/// snapshot, and entries at or below the snapshot are skipped).
pub fn decode_records_from<C: DeserializeOwned + Clone>(
    bytes: &[u8],
    start: HardState<C>,
) -> Result<DecodedWal<C>, ScanError> {
    let len = bytes.len() as u64;
    match decode_stream_from(&mut io::Cursor::new(bytes), len, start) {
        Ok(decoded) => decoded,
        // A cursor over bytes in memory reads without error.
        Err(e) => unreachable!("reading bytes in memory failed: {e}"),
    }
}

/// The payload bytes read at a time while looking for the end of preallocated zeros.
const ZERO_SCAN_BYTES: usize = 64 << 10;

/// [`decode_records_from`] of a segment read through `file`, whose length is `file_len`,
/// frame by frame: memory holds the largest frame, not the segment (recovery of a 64 MiB
/// segment held all of it before). Only a damaged end, whose bytes are not all zeros, is read
/// into memory whole to be judged (rare: a sync torn by a crash). The outer `Err` is a read
/// error of the file.
pub fn decode_stream_from<C: DeserializeOwned + Clone, R: io::Read + io::Seek>(
    file: &mut R,
    file_len: u64,
    start: HardState<C>,
) -> io::Result<Result<DecodedWal<C>, ScanError>> {
    let mut decoded = DecodedWal {
        header: None,
        hard: start,
        records: 0,
        frames: 0,
        valid_len: 0,
        torn_tail: None,
        preallocated: 0,
        header_probes: 0,
        payload_bytes_checked: 0,
        last_entry_index: 0,
    };
    let refuse = |offset: u64, problem| ScanError {
        offset,
        problem,
        valid_frame_at: None,
        whole: false,
    };
    file.seek(io::SeekFrom::Start(0))?;
    if file_len < FILE_HEADER_LEN as u64 {
        // Shorter than a header: the file was being created when the process died (the header
        // is synced before any record), unless it is not a WAL at all.
        let mut bytes = vec![0; file_len as usize];
        file.read_exact(&mut bytes)?;
        let n = bytes.len().min(WAL_MAGIC.len());
        if bytes[..n] != WAL_MAGIC[..n] {
            return Ok(Err(refuse(0, ScanProblem::NoHeader)));
        }
        decoded.torn_tail = (!bytes.is_empty()).then_some(ScanProblem::ShortHeader);
        return Ok(Ok(decoded));
    }
    let mut header_bytes = [0; FILE_HEADER_LEN];
    file.read_exact(&mut header_bytes)?;
    let header = match WalHeader::decode(&header_bytes) {
        Ok(header) => header,
        Err(p) => return Ok(Err(refuse(0, p))),
    };
    decoded.header = Some(header);
    let mut offset = FILE_HEADER_LEN as u64;
    let mut frame = Vec::new();
    while offset < file_len {
        decoded.header_probes += 1;
        let remaining = file_len - offset;
        // The whole frame, when its header fits and the length it announces does.
        let mut whole = false;
        if remaining >= FRAME_HEADER_LEN as u64 {
            frame.resize(FRAME_HEADER_LEN, 0);
            file.read_exact(&mut frame)?;
            let len = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
            if frame[0..4] == FRAME_MAGIC && u64::from(len) <= remaining - FRAME_HEADER_LEN as u64 {
                frame.resize(FRAME_HEADER_LEN + len as usize, 0);
                file.read_exact(&mut frame[FRAME_HEADER_LEN..])?;
                whole = true;
            }
        }
        let checked = &mut decoded.payload_bytes_checked;
        let problem = if whole {
            match frame_at(&frame, offset, header.salt, checked) {
                Ok((payload, frame_len)) => {
                    if let Err(e) = replay_payload(payload, offset, &mut decoded) {
                        return Ok(Err(e));
                    }
                    decoded.frames += 1;
                    offset += frame_len as u64;
                    continue;
                }
                Err(problem) => Some(problem),
            }
        } else {
            None
        };
        // The log ends at `offset`; the rest of the file says how.
        file.seek(io::SeekFrom::Start(offset))?;
        if all_zeros(file, remaining)? {
            decoded.valid_len = offset;
            decoded.preallocated = remaining;
            return Ok(Ok(decoded));
        }
        let mut rest = vec![0; remaining as usize];
        file.seek(io::SeekFrom::Start(offset))?;
        file.read_exact(&mut rest)?;
        let problem = match problem {
            Some(problem) => problem,
            None => match frame_at(&rest, offset, header.salt, &mut 0) {
                Err(problem) => problem,
                Ok(_) => unreachable!("a frame that does not fit in the file checked"),
            },
        };
        return Ok(end_of_log(&rest, offset, header.salt, problem, decoded));
    }
    decoded.valid_len = offset;
    Ok(Ok(decoded))
}

/// Whether the next `len` bytes of `file` are all zeros (read a piece at a time).
fn all_zeros(file: &mut impl io::Read, len: u64) -> io::Result<bool> {
    let mut buf = vec![0; ZERO_SCAN_BYTES.min(len as usize)];
    let mut left = len;
    while left > 0 {
        let n = buf.len().min(left as usize);
        file.read_exact(&mut buf[..n])?;
        if buf[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
        left -= n as u64;
    }
    Ok(true)
}

/// Decodes and replays the records of a checked frame's payload (the frame at `offset`).
fn replay_payload<C: DeserializeOwned + Clone>(
    mut payload: &[u8],
    offset: u64,
    decoded: &mut DecodedWal<C>,
) -> Result<(), ScanError> {
    let refuse = |problem| ScanError {
        offset,
        problem,
        valid_frame_at: None,
        whole: false,
    };
    while !payload.is_empty() {
        let record: Record<C> = match postcard::take_from_bytes(payload) {
            Ok((record, rest)) => {
                payload = rest;
                record
            }
            Err(e) => return Err(refuse(ScanProblem::Undecodable(e.to_string()))),
        };
        if let Record::Entries { from, entries } = &record {
            let last = from
                .saturating_add(entries.len() as Index)
                .saturating_sub(1);
            decoded.last_entry_index = decoded.last_entry_index.max(last);
        }
        replay(&mut decoded.hard, record).map_err(refuse)?;
        decoded.records += 1;
    }
    Ok(())
}
