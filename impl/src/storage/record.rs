//! The WAL's record format and its decoder.
//!
//! A WAL file is a sequence of frames: `length: u32 LE`, `crc: u32 LE` (CRC-32C of the length
//! bytes followed by the payload), then `length` bytes of payload, a postcard-encoded [`Record`].
//! Decoding is a pure function over bytes so that it can be tested on arbitrary input.

use raft_core::{Entry, HardState, Index, NodeId, Persist, Term};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Bytes before each payload: length and checksum.
pub const HEADER_LEN: usize = 8;
/// The largest payload a record may have; anything larger is corruption.
pub const MAX_RECORD_LEN: u32 = 256 * 1024 * 1024;

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
}

/// Appends one framed record to `buf`.
pub(crate) fn encode_record<C: Serialize>(
    record: &RecordRef<'_, C>,
    buf: &mut Vec<u8>,
) -> Result<(), postcard::Error> {
    let payload = postcard::to_allocvec(record)?;
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &payload);
    buf.extend_from_slice(&len);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf.extend_from_slice(&payload);
    Ok(())
}

/// Appends to `buf` the framed records that make `persist` durable, reading the new entries
/// from `hard`: `Truncate(after)`, then `HardState(term, vote)`, then `Entries(from, from..end)`.
/// Costs O(new entries), not O(log). Shared by the WAL file and any other [`super::Durable`]
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
        let start = (from.max(1) as usize - 1).min(hard.log.len());
        let record = RecordRef::Entries {
            from,
            entries: &hard.log[start..],
        };
        encode_record(&record, buf)?;
    }
    Ok(())
}

/// What was wrong with the record at some offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanProblem {
    /// Fewer than [`HEADER_LEN`] bytes remain.
    ShortHeader,
    /// The length field points past the end of the file.
    ShortPayload { len: u32 },
    /// The length field is zero or above [`MAX_RECORD_LEN`].
    BadLength { len: u32 },
    /// The checksum does not match.
    CrcMismatch,
    /// The checksum matches but the payload is not a record (or not one this version writes).
    Undecodable(String),
    /// The record does not fit the log built so far (e.g. entries starting past its end).
    Inconsistent(String),
}

impl std::fmt::Display for ScanProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanProblem::ShortHeader => write!(f, "incomplete record header"),
            ScanProblem::ShortPayload { len } => {
                write!(f, "record of {len} bytes extends past the end of the file")
            }
            ScanProblem::BadLength { len } => write!(f, "impossible record length {len}"),
            ScanProblem::CrcMismatch => write!(f, "CRC-32C mismatch"),
            ScanProblem::Undecodable(e) => write!(f, "undecodable record: {e}"),
            ScanProblem::Inconsistent(e) => write!(f, "inconsistent record: {e}"),
        }
    }
}

/// A bad record that is not a torn tail: recovery must stop.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad WAL record at byte offset {offset}: {problem}")]
pub struct ScanError {
    pub offset: u64,
    pub problem: ScanProblem,
}

/// The result of decoding a WAL file's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedWal<C> {
    /// The hard state the valid records describe.
    pub hard: HardState<C>,
    /// Number of valid records.
    pub records: usize,
    /// Length of the valid prefix; bytes after it are a torn tail to cut off.
    pub valid_len: u64,
    /// Why the tail was cut, if it was.
    pub torn_tail: Option<ScanProblem>,
}

/// Tries to read one frame at `offset`: the record's payload and the frame's total length.
fn frame_at(bytes: &[u8], offset: usize) -> Result<(&[u8], usize), ScanProblem> {
    let rest = &bytes[offset..];
    if rest.len() < HEADER_LEN {
        return Err(ScanProblem::ShortHeader);
    }
    let len_bytes = [rest[0], rest[1], rest[2], rest[3]];
    let len = u32::from_le_bytes(len_bytes);
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if len == 0 || len > MAX_RECORD_LEN {
        return Err(ScanProblem::BadLength { len });
    }
    let end = HEADER_LEN + len as usize;
    if rest.len() < end {
        return Err(ScanProblem::ShortPayload { len });
    }
    let payload = &rest[HEADER_LEN..end];
    if crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload) != crc {
        return Err(ScanProblem::CrcMismatch);
    }
    Ok((payload, end))
}

/// Whether a checksummed frame starts anywhere after `offset`: if so, the bad record at
/// `offset` is in the middle of the file, not a torn tail.
fn valid_frame_after(bytes: &[u8], offset: usize) -> bool {
    (offset + 1..bytes.len()).any(|p| frame_at(bytes, p).is_ok())
}

/// Applies one record to the hard state being rebuilt.
fn replay<C>(hard: &mut HardState<C>, record: Record<C>) -> Result<(), ScanProblem> {
    match record {
        Record::HardState {
            current_term,
            voted_for,
        } => {
            hard.current_term = current_term;
            hard.voted_for = voted_for;
        }
        Record::Entries { from, entries } => {
            let len = hard.log.len() as Index;
            if from == 0 || from > len + 1 {
                return Err(ScanProblem::Inconsistent(format!(
                    "entries from index {from} but the log ends at {len}"
                )));
            }
            hard.log.truncate(from as usize - 1);
            hard.log.extend(entries);
        }
        Record::Truncate { after } => hard.log.truncate(after.min(usize::MAX as Index) as usize),
    }
    Ok(())
}

/// Decodes a whole WAL. A bad record followed by nothing valid is a torn tail (reported in
/// [`DecodedWal::torn_tail`]); a bad record with a valid record after it is an error.
pub fn decode_records<C: DeserializeOwned>(bytes: &[u8]) -> Result<DecodedWal<C>, ScanError> {
    let mut hard = HardState::default();
    let mut offset = 0usize;
    let mut records = 0usize;
    while offset < bytes.len() {
        let (payload, frame_len) = match frame_at(bytes, offset) {
            Ok(frame) => frame,
            Err(problem) => {
                if valid_frame_after(bytes, offset) {
                    return Err(ScanError {
                        offset: offset as u64,
                        problem,
                    });
                }
                return Ok(DecodedWal {
                    hard,
                    records,
                    valid_len: offset as u64,
                    torn_tail: Some(problem),
                });
            }
        };
        let error = |problem| ScanError {
            offset: offset as u64,
            problem,
        };
        let record: Record<C> = match postcard::take_from_bytes(payload) {
            Ok((record, [])) => record,
            Ok((_, rest)) => {
                let why = format!("{} trailing bytes after the record", rest.len());
                return Err(error(ScanProblem::Undecodable(why)));
            }
            Err(e) => return Err(error(ScanProblem::Undecodable(e.to_string()))),
        };
        replay(&mut hard, record).map_err(error)?;
        records += 1;
        offset += frame_len;
    }
    Ok(DecodedWal {
        hard,
        records,
        valid_len: offset as u64,
        torn_tail: None,
    })
}
