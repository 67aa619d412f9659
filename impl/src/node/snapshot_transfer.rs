//! InstallSnapshot over the wire (§7, Figure 13's offset and done): a snapshot's image may be
//! larger than a frame, so the sender ([`Outgoing`], in the peer sender thread) streams it in
//! [`SnapshotChunk`]s of at most [`SNAPSHOT_CHUNK_BYTES`], one per write, between the other
//! messages to that peer; the receiver ([`Reassembly`], in the event loop, one per peer)
//! puts them back together and hands the whole `Message::InstallSnapshot` to the core.
//!
//! - Bounded memory: a receiver keeps at most one snapshot in reassembly per peer, in a spool
//!   file of the data directory ([`Reassembly::new`]: `snap-from-<peer>.tmp`), never in
//!   memory: each chunk is appended to the file as it arrives, so a receiver holds one chunk
//!   at a time, and the image is read back once, when complete (the core holds it in memory
//!   from then on). A chunk announcing more than [`MAX_SNAPSHOT_BYTES`] is refused. The spool
//!   is removed when the snapshot completes, when a broken chunk ends it, and at start (the
//!   WAL's recovery removes every `snap-*.tmp`); a newer snapshot's first chunk overwrites
//!   it.
//! - Resumable: the sender starts again at offset 0 after a reconnect (the core resends the
//!   snapshot when the connection comes back). A receiver that holds part of that very
//!   snapshot keeps it and answers [`Accepted::Resume`]: the event loop sends the sender a
//!   `PeerWire::SnapshotProgress` with the offset it holds, on its own connection to it, and
//!   the sender's stream jumps there ([`Outgoing::resume`]) if it still streams that snapshot
//!   and the offset lies inside its image ([`ResumeRefused`] otherwise, logged, nothing
//!   changed). Meanwhile the chunks the sender sent past offset 0 are dropped as out of order.
//!   A second restart at offset 0 while the receiver still stands where it said (its progress
//!   never arrived, or the sender had finished the stream) starts the reassembly afresh, so a
//!   lost progress message costs one pass, never a stuck transfer. A chunk at offset 0 of
//!   another snapshot replaces an unfinished one; a chunk out of order or of another snapshot
//!   than the one in reassembly is dropped (logged by the caller).
//! - Malformed chunks (data past the announced length, an empty chunk of a non-empty image,
//!   an oversized length) are a [`ChunkError`], never a panic.
//! - Coalescing: the core resends its InstallSnapshot on every heartbeat until the follower
//!   acknowledges it. The sender drops a copy of the snapshot it is streaming, and of the one
//!   it finished streaming recently (the follower is installing it), instead of starting over.

use crate::wire::{SnapshotChunk, MAX_SNAPSHOT_BYTES, SNAPSHOT_CHUNK_BYTES};
use raft_core::{Index, InstallSnapshot, Membership, NodeId, Snapshot, Term};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What names one snapshot stream: the fields every chunk carries besides its piece.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamId {
    pub term: Term,
    pub last_included_index: Index,
    pub last_included_term: Term,
    pub config: Option<(Index, Membership)>,
    pub total_len: u64,
}

impl StreamId {
    pub fn of_chunk(c: &SnapshotChunk) -> Self {
        StreamId {
            term: c.term,
            last_included_index: c.last_included_index,
            last_included_term: c.last_included_term,
            config: c.config.clone(),
            total_len: c.total_len,
        }
    }

    pub fn of_message(m: &InstallSnapshot) -> Self {
        StreamId {
            term: m.term,
            last_included_index: m.snapshot.last_included_index,
            last_included_term: m.snapshot.last_included_term,
            config: m.snapshot.config.clone(),
            total_len: m.snapshot.data.len() as u64,
        }
    }
}

/// The chunk of `msg` starting at `offset`, at most `chunk_bytes` (at least 1) of its image.
pub fn chunk_at(msg: &InstallSnapshot, offset: u64, chunk_bytes: usize) -> SnapshotChunk {
    let data = &msg.snapshot.data;
    let start = (offset as usize).min(data.len());
    let end = start.saturating_add(chunk_bytes.max(1)).min(data.len());
    SnapshotChunk {
        term: msg.term,
        read_round: msg.read_round,
        last_included_index: msg.snapshot.last_included_index,
        last_included_term: msg.snapshot.last_included_term,
        config: msg.snapshot.config.clone(),
        total_len: data.len() as u64,
        offset: start as u64,
        data: data[start..end].to_vec(),
    }
}

/// Every chunk of `msg`, in order (one, empty, for an empty image).
pub fn chunks(msg: &InstallSnapshot, chunk_bytes: usize) -> Vec<SnapshotChunk> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let chunk = chunk_at(msg, offset, chunk_bytes);
        offset = chunk.offset + chunk.data.len() as u64;
        let done = chunk.done();
        out.push(chunk);
        if done {
            return out;
        }
    }
}

/// A chunk no correct sender makes (a forged or corrupt frame).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("snapshot chunk announces an image of {total} bytes, more than the maximum of {max}")]
    TooLarge { total: u64, max: u64 },
    #[error(
        "snapshot chunk of {len} bytes at offset {offset} extends past the image's {total} bytes"
    )]
    PastEnd { offset: u64, len: usize, total: u64 },
    #[error("empty snapshot chunk at offset {offset} of an image of {total} bytes")]
    Empty { offset: u64, total: u64 },
}

/// Whether `chunk` is one a correct sender could have made (checked before anything is kept).
pub fn check(chunk: &SnapshotChunk) -> Result<(), ChunkError> {
    let total = chunk.total_len;
    if total > MAX_SNAPSHOT_BYTES {
        return Err(ChunkError::TooLarge {
            total,
            max: MAX_SNAPSHOT_BYTES,
        });
    }
    let len = chunk.data.len();
    let end = chunk.offset.checked_add(len as u64);
    if end.is_none_or(|end| end > total) {
        return Err(ChunkError::PastEnd {
            offset: chunk.offset,
            len,
            total,
        });
    }
    if len == 0 && total > 0 {
        return Err(ChunkError::Empty {
            offset: chunk.offset,
            total,
        });
    }
    Ok(())
}

/// Why a sender did not resume its stream where a peer said ([`Outgoing::resume`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResumeRefused {
    #[error("no snapshot is being streamed to the peer")]
    NotStreaming,
    #[error("the stream under way is the snapshot at index {index} of term {term}")]
    OtherSnapshot { term: Term, index: Index },
    #[error("offset {offset} is not inside the image's {total} bytes (1..{total})")]
    OutOfRange { offset: u64, total: u64 },
}

/// What became of a well-formed chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    /// The last chunk: the whole InstallSnapshot, for the core.
    Complete(InstallSnapshot),
    /// Kept; `received` of `total` bytes so far.
    Partial { received: u64, total: u64 },
    /// Dropped, and why (out of order, or of another snapshot than the one in reassembly).
    Dropped(String),
    /// A restart at offset 0 of the snapshot in reassembly, dropped: the receiver holds its
    /// first `offset` bytes, and asks the sender to continue there
    /// (`PeerWire::SnapshotProgress` with these fields).
    Resume {
        term: Term,
        index: Index,
        offset: u64,
    },
    /// The spool file could not be written or read back (the data directory's disk): the
    /// reassembly is abandoned, and why. Nothing durable depends on it; the leader sends the
    /// snapshot again.
    SpoolFailed(String),
}

/// The name of the spool file of the snapshot in reassembly from `peer`: `snap-` and `.tmp`,
/// so that the WAL's recovery removes a leftover one (`storage/wal.rs`), and never a
/// snapshot file's name.
pub fn spool_file_name(peer: NodeId) -> String {
    format!("snap-from-{:020}.tmp", peer.0)
}

/// The snapshot in reassembly from one peer (at most one), in its spool file.
#[derive(Debug)]
pub struct Reassembly {
    path: PathBuf,
    current: Option<Spooled>,
}

/// A snapshot in reassembly: its stream, the spool file, and the bytes written to it.
#[derive(Debug)]
struct Spooled {
    id: StreamId,
    file: File,
    received: u64,
    /// The offset this receiver last asked the sender to resume at ([`Accepted::Resume`]).
    resume_asked: Option<u64>,
}

impl Reassembly {
    /// Reassembles snapshots from `peer` in its spool file in the data directory `dir`.
    pub fn new(dir: &Path, peer: NodeId) -> Self {
        Reassembly {
            path: dir.join(spool_file_name(peer)),
            current: None,
        }
    }

    /// Takes one chunk from the peer. A chunk at offset 0 starts the snapshot afresh; any
    /// other must continue the one in reassembly exactly where it stands.
    pub fn accept(&mut self, chunk: SnapshotChunk) -> Result<Accepted, ChunkError> {
        if let Err(e) = check(&chunk) {
            // A broken stream: forget what it sent so far.
            self.discard();
            return Err(e);
        }
        let id = StreamId::of_chunk(&chunk);
        if let Some(current) = self.current.as_mut().filter(|c| {
            chunk.offset == 0 && c.id == id && c.received > 0 && c.resume_asked != Some(c.received)
        }) {
            current.resume_asked = Some(current.received);
            return Ok(Accepted::Resume {
                term: id.term,
                index: id.last_included_index,
                offset: current.received,
            });
        }
        if chunk.offset == 0 {
            self.discard();
            match File::create(&self.path) {
                Ok(file) => {
                    self.current = Some(Spooled {
                        id: id.clone(),
                        file,
                        received: 0,
                        resume_asked: None,
                    })
                }
                Err(e) => return Ok(self.failed("create", e)),
            }
        }
        let Some(current) = &mut self.current else {
            return Ok(Accepted::Dropped(format!(
                "chunk at offset {} of the snapshot at index {} with no snapshot in reassembly",
                chunk.offset, id.last_included_index
            )));
        };
        if current.id != id {
            let current = &current.id;
            return Ok(Accepted::Dropped(format!(
                "chunk of the snapshot at index {} (term {}, {} bytes) while reassembling the \
                 one at index {} (term {}, {} bytes)",
                id.last_included_index,
                id.term,
                id.total_len,
                current.last_included_index,
                current.term,
                current.total_len
            )));
        }
        if chunk.offset != current.received {
            return Ok(Accepted::Dropped(format!(
                "chunk at offset {} of the snapshot at index {}, expected offset {}",
                chunk.offset, id.last_included_index, current.received
            )));
        }
        if let Err(e) = current.file.write_all(&chunk.data) {
            return Ok(self.failed("write", e));
        }
        current.received += chunk.data.len() as u64;
        if !chunk.done() {
            return Ok(Accepted::Partial {
                received: current.received,
                total: id.total_len,
            });
        }
        let Some(done) = self.current.take() else {
            unreachable!("a reassembly is in progress")
        };
        drop(done.file);
        let data = match std::fs::read(&self.path) {
            Ok(data) => data,
            Err(e) => return Ok(self.failed("read back", e)),
        };
        self.remove_spool();
        if data.len() as u64 != done.id.total_len {
            // Written through the file we hold, by nobody else: the disk lost bytes.
            let e = std::io::Error::other(format!(
                "{} bytes read back, {} written",
                data.len(),
                done.id.total_len
            ));
            return Ok(self.failed("read back", e));
        }
        let id = done.id;
        Ok(Accepted::Complete(InstallSnapshot {
            term: id.term,
            snapshot: Snapshot {
                last_included_index: id.last_included_index,
                last_included_term: id.last_included_term,
                config: id.config,
                data,
            },
            read_round: chunk.read_round,
        }))
    }

    /// Bytes received for the snapshot in reassembly (in its spool file).
    pub fn buffered(&self) -> u64 {
        self.current.as_ref().map_or(0, |c| c.received)
    }

    /// Forgets the snapshot in reassembly and removes its spool file.
    fn discard(&mut self) {
        if self.current.take().is_some() {
            self.remove_spool();
        }
    }

    fn remove_spool(&self) {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %error, "cannot remove a snapshot spool file")
            }
        }
    }

    /// The spool failed at `op`: the reassembly is abandoned.
    fn failed(&mut self, op: &str, e: std::io::Error) -> Accepted {
        self.discard();
        self.remove_spool();
        Accepted::SpoolFailed(format!("{op} {}: {e}", self.path.display()))
    }
}

/// How long after finishing a stream the sender still drops copies of that snapshot (the
/// follower is installing it and its acknowledgement is on its way): at least this, or twice
/// as long as the stream took.
pub const RECENTLY_SENT: Duration = Duration::from_secs(1);

/// The sender's side, for one peer: the snapshot being streamed, and the one finished last.
#[derive(Debug, Default)]
pub struct Outgoing {
    streaming: Option<Stream>,
    /// The last snapshot streamed to the end, and until when its copies are dropped.
    finished: Option<(StreamId, Instant)>,
    chunk_bytes: usize,
    /// Copies of a snapshot dropped because it was being (or had just been) streamed.
    pub coalesced: u64,
}

#[derive(Debug)]
struct Stream {
    id: StreamId,
    msg: InstallSnapshot,
    offset: u64,
    started: Instant,
}

impl Outgoing {
    pub fn new() -> Self {
        Self::with_chunk_bytes(SNAPSHOT_CHUNK_BYTES)
    }

    /// With chunks of at most `chunk_bytes` (tests use small ones).
    pub fn with_chunk_bytes(chunk_bytes: usize) -> Self {
        Outgoing {
            chunk_bytes: chunk_bytes.max(1),
            ..Default::default()
        }
    }

    /// The core asks to send `msg` at `now`. Returns `false` when it is a copy of the snapshot
    /// being streamed or just streamed (dropped); otherwise it replaces whatever was being
    /// streamed (a newer snapshot, or a new term) and starts at offset 0.
    pub fn offer(&mut self, msg: InstallSnapshot, now: Instant) -> bool {
        let id = StreamId::of_message(&msg);
        let duplicate = self.streaming.as_ref().is_some_and(|s| s.id == id)
            || self
                .finished
                .as_ref()
                .is_some_and(|(f, until)| *f == id && now < *until);
        if duplicate {
            self.coalesced += 1;
            return false;
        }
        self.streaming = Some(Stream {
            id,
            msg,
            offset: 0,
            started: now,
        });
        true
    }

    /// Whether a snapshot is being streamed.
    pub fn busy(&self) -> bool {
        self.streaming.is_some()
    }

    /// The next chunk to write at `now`, if a snapshot is being streamed (the stream advances
    /// past it).
    pub fn next_chunk(&mut self, now: Instant) -> Option<SnapshotChunk> {
        let stream = self.streaming.as_mut()?;
        let chunk = chunk_at(&stream.msg, stream.offset, self.chunk_bytes);
        stream.offset = chunk.offset + chunk.data.len() as u64;
        if chunk.done() {
            if let Some(s) = self.streaming.take() {
                let took = now.saturating_duration_since(s.started);
                self.finished = Some((s.id, now + RECENTLY_SENT.max(took * 2)));
            }
        }
        Some(chunk)
    }

    /// The peer holds the first `offset` bytes of the snapshot at `index` this sender streams
    /// in `term` ([`Accepted::Resume`] on its side): the stream continues there. Refused, and
    /// nothing changed, when no stream is under way, when it is another snapshot's, or when
    /// `offset` is not inside the image (a forged or stale message: a correct receiver asks
    /// only for a partial image it holds).
    pub fn resume(&mut self, term: Term, index: Index, offset: u64) -> Result<(), ResumeRefused> {
        let Some(stream) = self.streaming.as_mut() else {
            return Err(ResumeRefused::NotStreaming);
        };
        let id = &stream.id;
        if id.term != term || id.last_included_index != index {
            return Err(ResumeRefused::OtherSnapshot {
                term: id.term,
                index: id.last_included_index,
            });
        }
        if offset == 0 || offset >= id.total_len {
            return Err(ResumeRefused::OutOfRange {
                offset,
                total: id.total_len,
            });
        }
        stream.offset = offset;
        Ok(())
    }

    /// The connection broke or was replaced: forget the stream (the core resends the
    /// snapshot when the connection is back, and it starts again at offset 0).
    pub fn reset(&mut self) {
        self.streaming = None;
        self.finished = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_frame, encode_frame, PeerWire, MAX_FRAME_LEN};
    use raft_core::NodeId;

    fn install(term: Term, index: Index, len: usize) -> InstallSnapshot {
        InstallSnapshot {
            term,
            snapshot: Snapshot {
                last_included_index: index,
                last_included_term: term,
                config: Some((3, Membership::voters([NodeId(0), NodeId(1), NodeId(2)]))),
                data: (0..len).map(|i| (i * 7 + index as usize) as u8).collect(),
            },
            read_round: 4,
        }
    }

    /// A reassembly spooling into a fresh temporary directory (kept alive with it).
    fn reassembly() -> (tempfile::TempDir, Reassembly) {
        let dir = tempfile::tempdir().unwrap();
        let r = Reassembly::new(dir.path(), NodeId(4));
        (dir, r)
    }

    fn feed(r: &mut Reassembly, chunks: Vec<SnapshotChunk>) -> Vec<Accepted> {
        chunks.into_iter().map(|c| r.accept(c).unwrap()).collect()
    }

    #[test]
    fn chunks_reassemble_into_the_message() {
        for (len, chunk_bytes) in [(0, 4), (1, 4), (10, 4), (12, 4), (1000, 1), (5, 100)] {
            let msg = install(2, 9, len);
            let parts = chunks(&msg, chunk_bytes);
            assert_eq!(parts.len(), len.div_ceil(chunk_bytes).max(1));
            assert!(parts.iter().all(|c| c.data.len() <= chunk_bytes));
            let (dir, mut r) = reassembly();
            let results = feed(&mut r, parts);
            let (last, rest) = results.split_last().unwrap();
            assert!(rest.iter().all(|a| matches!(a, Accepted::Partial { .. })));
            assert_eq!(*last, Accepted::Complete(msg));
            assert_eq!(r.buffered(), 0, "nothing kept after the last chunk");
            let spool = dir.path().join(spool_file_name(NodeId(4)));
            assert!(!spool.exists(), "the spool file is removed");
        }
    }

    #[test]
    fn chunks_go_to_the_spool_file_and_a_newer_snapshot_or_a_broken_chunk_replaces_it() {
        let (dir, mut r) = reassembly();
        let spool = dir.path().join(spool_file_name(NodeId(4)));
        let msg = install(2, 9, 10);
        let parts = chunks(&msg, 4);
        feed(&mut r, parts[..2].to_vec());
        assert_eq!(std::fs::read(&spool).unwrap(), msg.snapshot.data[..8]);
        assert_eq!(r.buffered(), 8);
        // A newer snapshot's first chunk starts the file afresh.
        let newer = install(3, 12, 10);
        let newer_parts = chunks(&newer, 4);
        feed(&mut r, newer_parts[..1].to_vec());
        assert_eq!(std::fs::read(&spool).unwrap(), newer.snapshot.data[..4]);
        // A broken chunk ends the reassembly and its file.
        let mut broken = newer_parts[1].clone();
        broken.data = vec![0; 9];
        assert!(r.accept(broken).is_err());
        assert!(!spool.exists());
        assert_eq!(r.buffered(), 0);
        // The spool's name is one the WAL's recovery removes, and never a snapshot's.
        let name = spool_file_name(NodeId(4));
        assert!(name.starts_with("snap-") && name.ends_with(crate::storage::TMP_SUFFIX));
        assert_eq!(crate::storage::parse_snapshot_file_name(&name), None);
    }

    #[test]
    fn a_snapshot_larger_than_a_frame_travels_in_frames_that_fit() {
        let msg = install(1, 5, MAX_FRAME_LEN + MAX_FRAME_LEN / 2);
        let mut out = Outgoing::new();
        let now = Instant::now();
        assert!(out.offer(msg.clone(), now));
        let (_dir, mut r) = reassembly();
        let mut frames = 0;
        while let Some(chunk) = out.next_chunk(now) {
            let frame = encode_frame(&PeerWire::SnapshotChunk {
                from: NodeId(0),
                chunk,
            })
            .unwrap();
            assert!(frame.len() <= 4 + MAX_FRAME_LEN);
            frames += 1;
            let (wire, _) = decode_frame::<PeerWire>(&frame).unwrap();
            let PeerWire::SnapshotChunk { chunk, .. } = wire else {
                panic!("a chunk")
            };
            if let Accepted::Complete(got) = r.accept(chunk).unwrap() {
                assert_eq!(got, msg);
                assert_eq!(frames, 24);
                return;
            }
        }
        panic!("the snapshot never completed");
    }

    #[test]
    fn out_of_order_and_foreign_chunks_are_dropped_and_offset_zero_restarts() {
        let msg = install(2, 9, 10);
        let parts = chunks(&msg, 4);
        let (_dir, mut r) = reassembly();
        // A middle chunk with nothing in reassembly.
        assert!(matches!(
            r.accept(parts[1].clone()).unwrap(),
            Accepted::Dropped(_)
        ));
        r.accept(parts[0].clone()).unwrap();
        // The third before the second; another snapshot's second chunk.
        assert!(matches!(
            r.accept(parts[2].clone()).unwrap(),
            Accepted::Dropped(_)
        ));
        let other = chunks(&install(2, 11, 10), 4);
        assert!(matches!(
            r.accept(other[1].clone()).unwrap(),
            Accepted::Dropped(_)
        ));
        assert_eq!(r.buffered(), 4, "what was kept is intact");
        // The sender restarted (a reconnect): offset 0 is answered with where the receiver
        // stands, and the stream completes from there.
        let results = feed(&mut r, parts.clone());
        assert_eq!(
            results[0],
            Accepted::Resume {
                term: 2,
                index: 9,
                offset: 4
            }
        );
        assert_eq!(results.last(), Some(&Accepted::Complete(msg.clone())));
        // A newer snapshot's first chunk replaces an unfinished one.
        r.accept(parts[0].clone()).unwrap();
        let results = feed(&mut r, other);
        assert_eq!(
            results.last(),
            Some(&Accepted::Complete(install(2, 11, 10)))
        );
    }

    #[test]
    fn malformed_chunks_are_errors_and_end_the_reassembly() {
        let msg = install(2, 9, 10);
        let parts = chunks(&msg, 4);
        let (_dir, mut r) = reassembly();
        r.accept(parts[0].clone()).unwrap();
        let mut past_end = parts[1].clone();
        past_end.data = vec![0; 7];
        assert!(matches!(
            r.accept(past_end),
            Err(ChunkError::PastEnd { .. })
        ));
        assert_eq!(r.buffered(), 0);
        let mut huge = parts[0].clone();
        huge.total_len = MAX_SNAPSHOT_BYTES + 1;
        assert!(matches!(r.accept(huge), Err(ChunkError::TooLarge { .. })));
        let mut overflow = parts[1].clone();
        overflow.offset = u64::MAX;
        assert!(matches!(
            r.accept(overflow),
            Err(ChunkError::PastEnd { .. })
        ));
        let mut empty = parts[1].clone();
        empty.data.clear();
        assert!(matches!(r.accept(empty), Err(ChunkError::Empty { .. })));
        // Garbage frames decode to an error, never a panic.
        for bytes in [&[1u8, 0, 0, 0, 1][..], &[3, 0, 0, 0, 1, 0, 0xff]] {
            assert!(decode_frame::<PeerWire>(bytes).is_err());
        }
    }

    /// After a reconnect the sender starts at byte 0; the receiver answers with what it holds
    /// and the sender continues there: the whole image crosses once plus the chunks in flight.
    /// A forged or stale progress changes nothing; a progress that never arrives costs one
    /// pass (the next restart at 0 starts afresh).
    #[test]
    fn a_restarted_stream_resumes_where_the_receiver_stands() {
        let msg = install(2, 9, 40);
        let (_dir, mut r) = reassembly();
        let mut out = Outgoing::with_chunk_bytes(4);
        let t0 = Instant::now();
        out.offer(msg.clone(), t0);
        for _ in 0..5 {
            r.accept(out.next_chunk(t0).unwrap()).unwrap();
        }
        assert_eq!(r.buffered(), 20);
        // The connection breaks; the core resends; the stream starts again at 0.
        out.reset();
        out.offer(msg.clone(), t0);
        let first = out.next_chunk(t0).unwrap();
        let ahead = out.next_chunk(t0).unwrap();
        let Accepted::Resume {
            term,
            index,
            offset,
        } = r.accept(first.clone()).unwrap()
        else {
            panic!("a restart of the snapshot in reassembly is answered with its progress")
        };
        assert_eq!((term, index, offset), (2, 9, 20));
        assert!(matches!(r.accept(ahead).unwrap(), Accepted::Dropped(_)));
        // Forged or stale progress: refused, the stream unchanged.
        assert_eq!(
            out.resume(3, 9, 20),
            Err(ResumeRefused::OtherSnapshot { term: 2, index: 9 })
        );
        assert!(matches!(
            out.resume(2, 9, 40),
            Err(ResumeRefused::OutOfRange { .. })
        ));
        assert!(matches!(
            out.resume(2, 9, u64::MAX),
            Err(ResumeRefused::OutOfRange { .. })
        ));
        out.resume(term, index, offset).unwrap();
        let mut sent = 0;
        let got = loop {
            let chunk = out.next_chunk(t0).unwrap();
            sent += 1;
            if let Accepted::Complete(m) = r.accept(chunk).unwrap() {
                break m;
            }
        };
        assert_eq!(got, msg);
        assert_eq!(sent, 5, "bytes 20..40 only");
        assert_eq!(out.resume(2, 9, 20), Err(ResumeRefused::NotStreaming));

        // The progress is lost: the second restart at 0 starts afresh and completes.
        let (_dir, mut r) = reassembly();
        let parts = chunks(&msg, 4);
        feed(&mut r, parts[..3].to_vec());
        assert!(matches!(
            r.accept(parts[0].clone()).unwrap(),
            Accepted::Resume { offset: 12, .. }
        ));
        let results = feed(&mut r, parts.clone());
        assert_eq!(
            results[0],
            Accepted::Partial {
                received: 4,
                total: 40
            }
        );
        assert_eq!(results.last(), Some(&Accepted::Complete(msg)));
    }

    #[test]
    fn copies_of_the_snapshot_in_flight_are_coalesced() {
        let msg = install(2, 9, 10);
        let mut out = Outgoing::with_chunk_bytes(4);
        let t0 = Instant::now();
        assert!(out.offer(msg.clone(), t0));
        out.next_chunk(t0).unwrap();
        // Heartbeats resend it: dropped, the stream goes on where it was.
        assert!(!out.offer(msg.clone(), t0));
        assert!(!out.offer(msg.clone(), t0));
        assert_eq!(out.next_chunk(t0).unwrap().offset, 4);
        assert!(out.next_chunk(t0).unwrap().done());
        assert!(!out.busy());
        // Just finished: still dropped; after RECENTLY_SENT, sent again.
        assert!(!out.offer(msg.clone(), t0 + Duration::from_millis(10)));
        assert_eq!(out.coalesced, 3);
        assert!(out.offer(msg.clone(), t0 + RECENTLY_SENT));
        assert_eq!(out.next_chunk(t0).unwrap().offset, 0);
        // A newer snapshot replaces the one in flight; a reset forgets everything.
        assert!(out.offer(install(2, 12, 10), t0));
        assert_eq!(
            out.next_chunk(t0).unwrap().last_included_index,
            12,
            "the newer one, from its start"
        );
        out.reset();
        assert!(out.next_chunk(t0).is_none());
        assert!(out.offer(install(2, 12, 10), t0));
    }
}
