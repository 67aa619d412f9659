//! The fuzz targets: one per decoder (two for the WAL: raw bytes, and structure-aware files
//! whose checksums hold). Each `run` must never panic on any input; the assertions in it are
//! properties of the decoder (a decoded value re-encodes and decodes to itself, a truncated WAL
//! is a torn tail, decoding work is linear), so a violated one is a finding like a panic.

use raft_core::{
    AppendEntries, AppendEntriesResponse, Config, Entry, HardState, InstallSnapshot, Membership,
    Message, NodeId, Persist, RequestVote, RequestVoteResponse, Server, Snapshot,
};
use raft_impl::auth::{ClusterSecret, Handshake, HANDSHAKE_MAGIC, MAX_HANDSHAKE_FRAME};
use raft_impl::config::{ClusterConfig, NodeSpec};
use raft_impl::kv::{Command, Op, OpResult};
use raft_impl::node::snapshot_transfer::{self, chunk_at, chunks, Accepted, Reassembly};
use raft_impl::storage::{
    decode_records, encode_batch, encode_persist, DecodedWal, ScanProblem, WalHeader,
    FILE_HEADER_LEN,
};
use raft_impl::trace_log::{TraceLog, TraceSink};
use raft_impl::wire::{
    decode_frame, encode_frame, read_frame, read_frame_limited, request_size, ClientReply,
    ClientRequest, MemberRequest, PeerFrame, PeerWire, SnapshotChunk, MAX_FRAME_LEN,
    MAX_REQUEST_BYTES, MAX_SNAPSHOT_BYTES,
};
use raft_model::conform::{parse_jsonl, Opaque, TraceRecord};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

/// One fuzz target.
pub struct Target {
    /// The libFuzzer binary's name (`fuzz_targets/NAME.rs`).
    pub name: &'static str,
    /// What it decodes, for the report.
    pub decoder: &'static str,
    /// Decodes one input; panics only on a finding.
    pub run: fn(&[u8]),
    /// Valid inputs to start from.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// libFuzzer's `-max_len` for it.
    pub max_len: usize,
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "peer_frame",
        decoder: "wire: PeerWire (Raft messages and InstallSnapshot chunks) by decode_frame, and a stream of them by read_frame (read_frame_limited at MAX_FRAME_LEN), each chunk checked and reassembled per sender as the event loop does",
        run: peer_frame,
        seeds: peer_frame_seeds,
        max_len: 8192,
    },
    Target {
        name: "snapshot_chunks",
        decoder: "snapshot_transfer: Reassembly::accept on scripted chunk sequences of two snapshots (in order, out of order, repeated, restarted, malformed), against a reference",
        run: snapshot_chunks,
        seeds: snapshot_chunks_seeds,
        max_len: 4096,
    },
    Target {
        name: "client_request",
        decoder: "wire: ClientRequest by decode_frame and read_frame_limited at MAX_REQUEST_BYTES (the client port)",
        run: client_request,
        seeds: client_request_seeds,
        max_len: 8192,
    },
    Target {
        name: "client_reply",
        decoder: "wire: ClientReply by decode_frame and read_frame (the client library)",
        run: client_reply,
        seeds: client_reply_seeds,
        max_len: 8192,
    },
    Target {
        name: "auth",
        decoder: "auth: Handshake frames by read_frame_limited at MAX_HANDSHAKE_FRAME, and the secret file (ClusterSecret::parse)",
        run: auth,
        seeds: auth_seeds,
        max_len: 1024,
    },
    Target {
        name: "wal_bytes",
        decoder: "storage: decode_records on raw bytes (file header, frame headers, torn-tail scan)",
        run: wal_bytes,
        seeds: wal_bytes_seeds,
        max_len: 8192,
    },
    Target {
        name: "wal_frames",
        decoder: "storage: decode_records on WAL files with valid checksums built from the input, then truncated, zeroed or bit-flipped (records, replay, torn tails)",
        run: wal_frames,
        seeds: wal_frames_seeds,
        max_len: 8192,
    },
    Target {
        name: "trace_jsonl",
        decoder: "conform: parse_jsonl, trace JSON lines, as raft-check conform reads them (Opaque commands) and as raft-impl writes them (Command)",
        run: trace_jsonl,
        seeds: trace_jsonl_seeds,
        max_len: 16384,
    },
    Target {
        name: "cluster_toml",
        decoder: "config: ClusterConfig::parse (cluster.toml)",
        run: cluster_toml,
        seeds: cluster_toml_seeds,
        max_len: 4096,
    },
];

/// A decoded value encodes to a frame that decodes to the same value.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let frame = encode_frame(value).expect("a decoded value re-encodes");
    let (again, used) = decode_frame::<T>(&frame).expect("a re-encoded value decodes");
    assert_eq!(used, frame.len());
    assert_eq!(&again, value, "re-encoding changed the value");
}

/// Decodes `data` as one frame, then as a stream of frames of at most `max` bytes (the reader
/// a connection uses), round-tripping every value decoded; returns the values of the stream.
fn frames<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8], max: usize) -> Vec<T> {
    if let Ok((value, used)) = decode_frame::<T>(data) {
        assert!(used <= data.len());
        round_trip(&value);
    }
    let mut stream = data;
    let mut values = Vec::new();
    loop {
        let before = stream.len();
        let got = if max == MAX_FRAME_LEN {
            read_frame::<T>(&mut stream)
        } else {
            read_frame_limited::<T>(&mut stream, max)
        };
        match got {
            Ok(Some(value)) => {
                assert!(stream.len() + 4 <= before, "a frame consumed no bytes");
                round_trip(&value);
                values.push(value);
            }
            Ok(None) => {
                assert!(stream.is_empty());
                break;
            }
            Err(_) => break,
        }
    }
    values
}

/// What the listener and the event loop do with a peer connection's frames: a chunk that
/// passes `snapshot_transfer::check` lies within an image of at most `MAX_SNAPSHOT_BYTES`, and
/// is reassembled per sender; a completed snapshot has the announced length.
fn peer_frame(data: &[u8]) {
    let mut reassembly: BTreeMap<NodeId, Reassembly> = BTreeMap::new();
    // The announced length of the snapshot in reassembly from each sender: what its buffer is
    // bounded by (a dropped chunk of another snapshot may announce less).
    let mut in_reassembly: BTreeMap<NodeId, u64> = BTreeMap::new();
    for wire in frames::<PeerWire>(data, MAX_FRAME_LEN) {
        let PeerWire::SnapshotChunk { from, chunk } = wire else {
            continue;
        };
        if snapshot_transfer::check(&chunk).is_err() {
            continue;
        }
        assert!(chunk.total_len <= MAX_SNAPSHOT_BYTES);
        assert!(chunk.offset + chunk.data.len() as u64 <= chunk.total_len);
        let total = chunk.total_len;
        let r = reassembly
            .entry(from)
            .or_insert_with(|| Reassembly::new(&spool_dir(), from));
        match r
            .accept(chunk)
            .expect("a checked chunk is accepted or dropped")
        {
            Accepted::Complete(m) => {
                assert_eq!(m.snapshot.data.len() as u64, total);
                in_reassembly.remove(&from);
            }
            Accepted::Partial { received, total } => {
                assert!(received < total);
                in_reassembly.insert(from, total);
            }
            Accepted::Dropped(_) | Accepted::Resume { .. } => {}
            // The spool directory is this process's own: its disk failed.
            Accepted::SpoolFailed(why) => panic!("snapshot spool failed: {why}"),
        }
        let bound = in_reassembly.get(&from).copied().unwrap_or(0);
        assert!(
            r.buffered() <= bound,
            "a buffer beyond its snapshot's length"
        );
    }
}

/// Where the reassemblies of this process spool their snapshots (the node uses its data
/// directory): a directory of the system's temporary one, made once.
fn spool_dir() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("raft-fuzz-spool-{}", std::process::id()));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create the spool directory {}: {e}", dir.display());
        }
        dir
    })
    .clone()
}

/// One byte after another of a fuzz input, zeros past its end.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }
}

/// The snapshot stream the reference is reassembling: the chunk's fields that name it, and
/// the bytes so far; `clean` while every one of them came from the true image.
struct Expected {
    id: (u64, u64, u64, u64, Option<(u64, Membership)>),
    data: Vec<u8>,
    clean: bool,
    /// The offset the receiver last asked the sender to resume at.
    resume_asked: Option<usize>,
}

fn chunk_id(c: &SnapshotChunk) -> (u64, u64, u64, u64, Option<(u64, Membership)>) {
    (
        c.term,
        c.last_included_index,
        c.last_included_term,
        c.total_len,
        c.config.clone(),
    )
}

/// An InstallSnapshot of `len` image bytes, its fields set by `tag`. The image is a function of
/// the fields that name a stream (`tag & 7` and `len`): two streams that look the same to the
/// receiver carry the same image, as with a correct leader.
fn snapshot_message(tag: u8, len: usize) -> InstallSnapshot {
    InstallSnapshot {
        term: 2 + u64::from(tag & 1),
        snapshot: Snapshot {
            last_included_index: 10 + u64::from(tag & 2),
            last_included_term: 2,
            config: (tag & 4 != 0).then(|| (3, Membership::voters([NodeId(0), NodeId(1)]))),
            data: (0..len)
                .map(|i| (i as u8).wrapping_mul(31) ^ (tag & 7))
                .collect(),
        },
        read_round: u64::from(tag),
    }
}

/// Reassembly (`Reassembly::accept`, one per peer in the event loop) fed a script of chunks
/// of two snapshots, well-formed (at any offset: in order, repeated, skipping, restarting at
/// 0) or not (a forged length, data past the end, an empty chunk, foreign bytes), against a
/// reference: a malformed chunk is an error and ends the reassembly; a chunk at offset 0
/// of the snapshot in reassembly asks the sender to resume where the receiver stands (once per
/// offset: the next one starts afresh), any other at offset 0 starts afresh; one of another snapshot or out of order is dropped; the last one completes
/// the snapshot, whose image is the bytes received (the true image when they all came from
/// it) and whose other fields are the chunks'.
fn snapshot_chunks(data: &[u8]) {
    let mut script = Script(data);
    let tags = [script.byte(), script.byte()];
    let streams: Vec<InstallSnapshot> = tags
        .iter()
        .map(|&t| snapshot_message(t, usize::from(script.byte() % 96)))
        .collect();
    let mut r = Reassembly::new(&spool_dir(), NodeId(1));
    let mut expected: Option<Expected> = None;
    while !script.0.is_empty() {
        let op = script.byte();
        let msg = &streams[usize::from(op & 1)];
        let image = &msg.snapshot.data;
        let offset = u64::from(script.byte());
        let len = usize::from(script.byte() % 48);
        let mut chunk = chunk_at(msg, offset, len.max(1));
        match (op >> 1) % 8 {
            // A chunk of the true image at exactly that offset (clamped to the image).
            0..=3 => {}
            // A forged length: larger than allowed, or shorter than the image.
            4 => {
                chunk.total_len = if op & 0x80 != 0 {
                    MAX_SNAPSHOT_BYTES + u64::from(script.byte())
                } else {
                    chunk.total_len.saturating_sub(u64::from(script.byte() % 4))
                }
            }
            // Data past the end, or an offset near u64::MAX.
            5 => {
                chunk.offset = if op & 0x80 != 0 {
                    u64::MAX - u64::from(script.byte())
                } else {
                    chunk.offset + u64::from(script.byte() % 4)
                }
            }
            // An empty chunk.
            6 => chunk.data.clear(),
            // Foreign bytes of the same length.
            _ => {
                for b in &mut chunk.data {
                    *b = script.byte();
                }
            }
        }
        // Whether the chunk still carries the true image's bytes at the offset it names (a
        // shifted offset or foreign bytes may leave it well-formed, but not clean).
        let clean = usize::try_from(chunk.offset)
            .ok()
            .and_then(|start| image.get(start..start.checked_add(chunk.data.len())?))
            .is_some_and(|truth| truth == chunk.data.as_slice());
        // A frame on the wire decodes to the same chunk.
        let wire = PeerWire::SnapshotChunk {
            from: NodeId(1),
            chunk: chunk.clone(),
        };
        round_trip(&wire);
        let id = chunk_id(&chunk);
        let len = chunk.data.len() as u64;
        let end = chunk.offset.checked_add(len);
        let malformed = chunk.total_len > MAX_SNAPSHOT_BYTES
            || end.is_none_or(|e| e > chunk.total_len)
            || (len == 0 && chunk.total_len > 0);
        let got = r.accept(chunk.clone());
        if malformed {
            assert!(got.is_err(), "malformed {chunk:?} taken: {got:?}");
            expected = None;
        } else {
            let got = got.expect("a well-formed chunk is taken");
            // A restart of the stream in reassembly asks the sender to resume, once per offset.
            let resume = expected.as_mut().filter(|e| {
                chunk.offset == 0
                    && e.id == id
                    && !e.data.is_empty()
                    && e.resume_asked != Some(e.data.len())
            });
            if let Some(e) = resume {
                e.resume_asked = Some(e.data.len());
                let asked = Accepted::Resume {
                    term: chunk.term,
                    index: chunk.last_included_index,
                    offset: e.data.len() as u64,
                };
                assert_eq!(got, asked, "{chunk:?}");
                let held = expected.as_ref().map_or(0, |e| e.data.len() as u64);
                assert_eq!(r.buffered(), held);
                continue;
            }
            if chunk.offset == 0 {
                expected = Some(Expected {
                    id: id.clone(),
                    data: Vec::new(),
                    clean: true,
                    resume_asked: None,
                });
            }
            match &mut expected {
                Some(e) if e.id == id && e.data.len() as u64 == chunk.offset => {
                    e.data.extend_from_slice(&chunk.data);
                    e.clean &= clean;
                    if chunk.done() {
                        let e = expected.take().expect("a stream");
                        let Accepted::Complete(m) = got else {
                            panic!("{chunk:?} ends the image, got {got:?}")
                        };
                        assert_eq!(m.snapshot.data, e.data);
                        assert_eq!(m.term, chunk.term);
                        assert_eq!(m.read_round, chunk.read_round);
                        assert_eq!(m.snapshot.last_included_index, chunk.last_included_index);
                        assert_eq!(m.snapshot.last_included_term, chunk.last_included_term);
                        assert_eq!(m.snapshot.config, chunk.config);
                        if e.clean && chunk.total_len == image.len() as u64 {
                            assert_eq!(&m.snapshot.data, image);
                        }
                    } else {
                        assert_eq!(
                            got,
                            Accepted::Partial {
                                received: e.data.len() as u64,
                                total: chunk.total_len
                            }
                        );
                    }
                }
                _ => assert!(matches!(got, Accepted::Dropped(_)), "{chunk:?}: {got:?}"),
            }
        }
        let held = expected.as_ref().map_or(0, |e| e.data.len() as u64);
        assert_eq!(r.buffered(), held);
    }
}

fn client_request(data: &[u8]) {
    for request in frames::<ClientRequest>(data, MAX_REQUEST_BYTES) {
        // What the client port accepted is within the request limit (a canonical encoding is
        // never longer than the one received), by the client library's measure too.
        let size = postcard::to_allocvec(&request).unwrap().len();
        assert!(size <= MAX_REQUEST_BYTES);
        if let ClientRequest::Command(command) | ClientRequest::NoForward(command) = &request {
            let measured = request_size(command).expect("a decoded command has a size");
            assert_eq!(measured, size);
        }
    }
}

fn client_reply(data: &[u8]) {
    frames::<ClientReply>(data, MAX_FRAME_LEN);
}

fn auth(data: &[u8]) {
    frames::<Handshake>(data, MAX_HANDSHAKE_FRAME);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(secret) = ClusterSecret::parse(text) {
            assert_eq!(ClusterSecret::parse(&secret.to_hex()).as_ref(), Ok(&secret));
        }
    }
}

/// What holds of every successful decoding of `bytes`.
fn check_decoded(bytes: &[u8], d: &DecodedWal<Command>) {
    let len = bytes.len() as u64;
    assert!(d.valid_len <= len);
    assert!(d.header_probes <= len, "{} probes", d.header_probes);
    assert!(d.payload_bytes_checked <= len);
    // Preallocated space is zeros from the end of the valid frames to the end of the file.
    if d.preallocated > 0 {
        assert_eq!(d.valid_len + d.preallocated, len);
        assert!(d.torn_tail.is_none());
        assert!(bytes[d.valid_len as usize..].iter().all(|b| *b == 0));
    }
    if let Some(h) = d.header {
        assert_eq!(h.encode()[..], bytes[..FILE_HEADER_LEN]);
    }
}

fn wal_bytes(data: &[u8]) {
    if let Ok(d) = decode_records::<Command>(data) {
        check_decoded(data, &d);
    }
}

/// Reads little-endian `u64`s, zero-padded past the end.
fn le_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(b)
}

/// The structure of a `wal_frames` input: `cluster_id u64 | node_id u64 | salt u64 | mode u8 |
/// pos u32`, then payloads as `len u16 | len bytes` (the last one may be short). Mode (low two
/// bits): 0 intact, 1 truncated at `pos`, 2 one bit flipped at `pos` (bit `mode >> 2 & 7`), 3
/// zeroed from `pos` to the end (a torn write whose pages never reached the disk).
const WAL_INPUT_HEAD: usize = 29;

fn wal_frames(data: &[u8]) {
    let head = &data[..data.len().min(WAL_INPUT_HEAD)];
    let field = |i: usize| le_u64(head.get(i..).unwrap_or(&[]));
    let header = WalHeader {
        cluster_id: field(0),
        node_id: field(8),
        salt: field(16),
    };
    let mode = head.get(24).copied().unwrap_or(0);
    let pos = le_u64(head.get(25..).unwrap_or(&[]));
    let mut file = Vec::new();
    let mut payloads = Vec::new(); // byte ranges of the payloads in `file`
    let mut rest = &data[head.len()..];
    let mut frames = 0;
    while !rest.is_empty() {
        let n = le_u64(&rest[..rest.len().min(2)]) as usize;
        let body = &rest[rest.len().min(2)..];
        let payload = &body[..n.min(body.len())];
        rest = &body[payload.len()..];
        let before = file.len();
        encode_batch(&header, file.len() as u64, payload, &mut file).expect("a small batch");
        if !payload.is_empty() {
            frames += 1;
            payloads.push(file.len() - payload.len()..file.len());
        }
        debug_assert!(payload.is_empty() || file.len() > before);
    }
    if file.is_empty() {
        file.extend_from_slice(&header.encode());
    }
    let intact_len = file.len();
    let at = (pos as usize) % (intact_len + 1);
    let torn = match mode & 3 {
        1 => {
            file.truncate(at);
            true
        }
        2 => {
            if let Some(b) = file.get_mut(at) {
                *b ^= 1 << (mode >> 2 & 7);
            }
            false
        }
        3 => {
            // A write that did not finish leaves whole sectors unwritten (zeros).
            let at = at / raft_impl::storage::SECTOR * raft_impl::storage::SECTOR;
            file[at..].fill(0);
            at >= FILE_HEADER_LEN
        }
        _ => false,
    };
    let result = decode_records::<Command>(&file);
    match &result {
        Ok(d) => {
            check_decoded(&file, d);
            if mode & 3 == 0 {
                assert_eq!(d.header, Some(header));
                assert_eq!(d.frames, frames);
                assert_eq!(d.valid_len, intact_len as u64);
                assert_eq!(d.torn_tail, None);
            }
        }
        Err(e) => {
            let content = matches!(
                e.problem,
                ScanProblem::Undecodable(_) | ScanProblem::Inconsistent(_)
            );
            // Only bytes that sit inside a payload and form a frame header valid for this
            // file's salt at their own offset can make a torn tail look like corruption: a
            // writer must know the salt to do that (the fuzzer reads it from its input).
            let embedded = e
                .valid_frame_at
                .is_some_and(|p| payloads.iter().any(|r| r.contains(&(p as usize))));
            if mode & 3 == 0 || torn {
                assert!(
                    content || embedded,
                    "a {} WAL was refused: {e}",
                    if torn { "torn" } else { "intact" }
                );
            }
        }
    }
}

/// The trace lines as the checker reads them (opaque commands) and as the node writes them.
fn trace_jsonl(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_jsonl::<Opaque>(text, "fuzz.jsonl");
    if let Ok(records) = parse_jsonl::<Command>(text, "fuzz.jsonl") {
        let again: String = records
            .iter()
            .map(|r| serde_json::to_string(r).expect("a record re-encodes") + "\n")
            .collect();
        let reparsed: Vec<TraceRecord<Command>> =
            parse_jsonl(&again, "again.jsonl").expect("a re-encoded trace parses");
        assert_eq!(reparsed, records);
    }
}

fn cluster_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = ClusterConfig::parse(text) {
        let again = config.to_toml();
        assert_eq!(
            ClusterConfig::parse(&again).as_ref(),
            Ok(&config),
            "re-encoded as\n{again}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds: valid inputs of every kind, from the project's own encoders.

fn commands() -> Vec<Command> {
    let op = |i: u64| match i % 4 {
        0 => Op::Put {
            key: format!("k{i}"),
            value: "v".repeat(i as usize),
        },
        1 => Op::Get { key: "k".into() },
        2 => Op::Delete { key: "key".into() },
        _ => Op::Cas {
            key: "k".into(),
            expected: (i % 8 == 3).then(|| "old".into()),
            new: "new".into(),
        },
    };
    (0..6)
        .map(|i| Command {
            client_id: 7 + i,
            seq: i,
            op: op(i),
        })
        .collect()
}

fn entries() -> Vec<Entry<Command>> {
    commands()
        .into_iter()
        .enumerate()
        .map(|(i, command)| Entry {
            term: 1 + i as u64 / 2,
            command,
        })
        .collect()
}

fn messages() -> Vec<Message<Command>> {
    vec![
        Message::RequestVote(RequestVote {
            term: 3,
            last_log_index: 2,
            last_log_term: 1,
            transfer: false,
        }),
        Message::RequestVoteResponse(RequestVoteResponse {
            term: 3,
            vote_granted: true,
        }),
        Message::AppendEntries(AppendEntries {
            term: 3,
            prev_log_index: 1,
            prev_log_term: 1,
            entries: entries(),
            leader_commit: 1,
            read_round: 0,
        }),
        Message::AppendEntries(AppendEntries {
            term: u64::MAX,
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![],
            leader_commit: 0,
            read_round: 0,
        }),
        Message::AppendEntriesResponse(AppendEntriesResponse {
            term: 3,
            success: false,
            match_index: 4,
            read_round: 0,
        }),
        // PreVote (thesis §9.6): the term the sender would campaign in, and its log.
        Message::PreVote(RequestVote {
            term: 4,
            last_log_index: 2,
            last_log_term: 1,
            transfer: false,
        }),
        Message::PreVoteResponse(RequestVoteResponse {
            term: 4,
            vote_granted: false,
        }),
        Message::InstallSnapshot(snapshot_message(4, 24)),
    ]
}

fn frame<T: Serialize>(value: &T) -> Vec<u8> {
    encode_frame(value).expect("a seed encodes")
}

/// Each value as a frame, and all of them as one stream.
fn frame_seeds<T: Serialize>(values: &[T]) -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = values.iter().map(frame).collect();
    seeds.push(seeds.concat());
    seeds
}

fn peer_frame_seeds() -> Vec<Vec<u8>> {
    let mut frames: Vec<PeerWire> = messages()
        .into_iter()
        .enumerate()
        .map(|(i, msg)| {
            PeerWire::Raft(PeerFrame {
                from: NodeId(i as u64),
                msg,
            })
        })
        .collect();
    // A snapshot of 40 bytes in chunks of 16, as the sender streams it; after its first
    // chunk, the tail of another, shorter snapshot (12 bytes) from the same sender: dropped,
    // while the buffer holds more than that snapshot's length.
    for (i, chunk) in chunks(&snapshot_message(5, 40), 16).into_iter().enumerate() {
        frames.push(PeerWire::SnapshotChunk {
            from: NodeId(1),
            chunk,
        });
        if i == 0 {
            let other = chunk_at(&snapshot_message(6, 12), 8, 16);
            frames.push(PeerWire::SnapshotChunk {
                from: NodeId(1),
                chunk: other,
            });
        }
    }
    // A receiver's progress in that snapshot (decoded, passed over by the reassembly).
    frames.push(PeerWire::SnapshotProgress {
        from: NodeId(2),
        term: 3,
        index: 10,
        offset: 16,
    });
    frame_seeds(&frames)
}

fn snapshot_chunks_seeds() -> Vec<Vec<u8>> {
    // Tags of the two snapshots, their lengths (40 and 20), then (op, offset, len) per chunk.
    let script = |ops: &[[u8; 3]]| {
        let mut input = vec![0, 7, 40, 20];
        input.extend(ops.iter().flatten());
        input
    };
    let mut seeds = vec![
        script(&[[0, 0, 16], [0, 16, 16], [0, 32, 16]]),
        script(&[[0, 0, 16], [1, 0, 8], [0, 16, 16], [1, 8, 12], [0, 32, 16]]),
        script(&[
            [0, 0, 16],
            [0, 0, 16],
            [0, 32, 16],
            [0, 16, 16],
            [0, 32, 16],
        ]),
    ];
    // Each malformed kind between good chunks.
    for kind in 4..8u8 {
        seeds.push(script(&[
            [0, 0, 16],
            [kind << 1, 16, 16],
            [0, 16, 16],
            [0, 32, 16],
        ]));
    }
    // A chunk whose offset is shifted onto the next expected offset: well-formed and taken,
    // but its bytes are not the image's there (CI's fuzz run found the reference taking it
    // for clean).
    let mut shifted = script(&[[0, 0, 16], [5 << 1, 14, 8]]);
    shifted.push(2);
    shifted.extend([0, 24, 16]);
    seeds.push(shifted);
    seeds
}

fn client_request_seeds() -> Vec<Vec<u8>> {
    let mut requests: Vec<ClientRequest> =
        commands().into_iter().map(ClientRequest::Command).collect();
    let forwarded: Vec<ClientRequest> = commands()
        .into_iter()
        .map(ClientRequest::NoForward)
        .collect();
    requests.extend(forwarded);
    requests.push(ClientRequest::TransferLeadership { to: 2 });
    requests.push(ClientRequest::Leader);
    let address = raft_impl::core::Address {
        peer: "127.0.0.1:7003".into(),
        client: "127.0.0.1:7103".into(),
    };
    requests.push(ClientRequest::Member(MemberRequest::AddLearner {
        id: 3,
        address: Some(address.clone()),
    }));
    requests.push(ClientRequest::Member(MemberRequest::Readdress {
        id: 1,
        address,
    }));
    frame_seeds(&requests)
}

fn client_reply_seeds() -> Vec<Vec<u8>> {
    frame_seeds(&[
        ClientReply::Ok(OpResult::Value(Some("v".into()))),
        ClientReply::Ok(OpResult::Value(None)),
        ClientReply::Ok(OpResult::CasMismatch {
            current: Some("c".into()),
        }),
        ClientReply::Ok(OpResult::StaleRequest { last_seq: 9 }),
        ClientReply::NotLeader {
            leader_hint: Some("127.0.0.1:7101".into()),
        },
        ClientReply::NotLeader { leader_hint: None },
        ClientReply::Error("not applied".into()),
        ClientReply::Leader { id: 2, term: 7 },
        ClientReply::Refused("node 9 is not a member of this cluster".into()),
    ])
}

fn auth_seeds() -> Vec<Vec<u8>> {
    let mut seeds = frame_seeds(&[
        Handshake::Hello {
            magic: HANDSHAKE_MAGIC,
            version: 1,
            from: NodeId(1),
            to: NodeId(2),
            nonce: [7; 32],
        },
        Handshake::Challenge {
            nonce: [8; 32],
            mac: [9; 32],
        },
        Handshake::Proof { mac: [10; 32] },
        Handshake::Welcome,
        Handshake::Rejected {
            reason: "wrong secret".into(),
        },
    ]);
    seeds.push(format!("{}\n", ClusterSecret::from_bytes([0xa5; 32]).to_hex()).into_bytes());
    seeds
}

/// Batches of records as a node's steps stage them: (the hard state after the step, what it
/// persists).
fn wal_batches() -> Vec<Vec<u8>> {
    let all = entries();
    let mut hard: HardState<Command> = HardState {
        snapshot: Default::default(),
        current_term: 1,
        voted_for: Some(NodeId(0)),
        log: Default::default(),
    };
    let mut batches = Vec::new();
    let mut stage = |hard: &HardState<Command>, persist: Persist| {
        let mut buf = Vec::new();
        encode_persist(hard, &persist, &mut buf).expect("a seed record encodes");
        batches.push(buf);
    };
    stage(
        &hard,
        Persist {
            term_or_vote: true,
            truncated_after: None,
            appended_from: None,
            write_behind: false,
            snapshot: false,
        },
    );
    hard.log.extend(all[..4].iter().cloned());
    stage(
        &hard,
        Persist {
            term_or_vote: false,
            truncated_after: None,
            appended_from: Some(1),
            write_behind: false,
            snapshot: false,
        },
    );
    hard.current_term = 3;
    hard.voted_for = None;
    hard.log.truncate(2);
    hard.log.extend(all[4..].iter().cloned());
    stage(
        &hard,
        Persist {
            term_or_vote: true,
            truncated_after: Some(2),
            appended_from: Some(3),
            write_behind: false,
            snapshot: false,
        },
    );
    batches
}

const SEED_HEADER: WalHeader = WalHeader {
    cluster_id: 4242,
    node_id: 1,
    salt: 0x5eed_5a17,
};

fn wal_bytes_seeds() -> Vec<Vec<u8>> {
    let mut file = Vec::new();
    for batch in wal_batches() {
        encode_batch(&SEED_HEADER, file.len() as u64, &batch, &mut file).expect("a seed batch");
    }
    let torn = file[..file.len() - 3].to_vec();
    vec![SEED_HEADER.encode().to_vec(), file, torn]
}

fn wal_frames_seeds() -> Vec<Vec<u8>> {
    let mut input = Vec::new();
    input.extend_from_slice(&SEED_HEADER.cluster_id.to_le_bytes());
    input.extend_from_slice(&SEED_HEADER.node_id.to_le_bytes());
    input.extend_from_slice(&SEED_HEADER.salt.to_le_bytes());
    input.push(0);
    input.extend_from_slice(&0u32.to_le_bytes());
    for batch in wal_batches() {
        input.extend_from_slice(&(batch.len() as u16).to_le_bytes());
        input.extend_from_slice(&batch);
    }
    let mut seeds = vec![input.clone()];
    for (mode, pos) in [(1u8, 100u32), (2 | 5 << 2, 77), (3, 90)] {
        input[24] = mode;
        input[25..29].copy_from_slice(&pos.to_le_bytes());
        seeds.push(input.clone());
    }
    seeds
}

fn trace_jsonl_seeds() -> Vec<Vec<u8>> {
    let me = NodeId(0);
    let cfg = Config::new(me, [NodeId(1), NodeId(2)]);
    let mut log = TraceLog::new(me, 0, Vec::new());
    log.restart(Duration::from_millis(1), &Server::new());
    let msgs = messages();
    let server: Server<Command> = Server::restart(
        &cfg,
        HardState {
            snapshot: Default::default(),
            current_term: 3,
            voted_for: Some(NodeId(1)),
            log: entries().into(),
        },
    );
    log.record(
        Duration::from_millis(2),
        raft_core::trace_record::TraceEvent::Receive {
            from: NodeId(1),
            msg: msgs[2].clone(),
        },
        Some(&server),
        &[(NodeId(1), msgs[4].clone())],
    );
    log.record(
        Duration::from_millis(3),
        raft_core::trace_record::TraceEvent::Propose {
            command: commands()[0].clone(),
        },
        Some(&server),
        &[(NodeId(2), msgs[0].clone())],
    );
    // A pre-candidate's round (thesis §9.6): its PreVote out, a PreVoteResponse in.
    let mut pre_candidate = server.clone();
    pre_candidate.role = raft_core::Role::PreCandidate;
    log.record(
        Duration::from_millis(4),
        raft_core::trace_record::TraceEvent::ElectionTimeout,
        Some(&pre_candidate),
        &[(NodeId(1), msgs[5].clone()), (NodeId(2), msgs[5].clone())],
    );
    log.record(
        Duration::from_millis(5),
        raft_core::trace_record::TraceEvent::Receive {
            from: NodeId(2),
            msg: msgs[6].clone(),
        },
        Some(&pre_candidate),
        &[],
    );
    log.crash(Duration::from_millis(6));
    let text = log.into_inner();
    let first_line = text.split(|&b| b == b'\n').next().unwrap_or(&[]).to_vec();
    vec![text, first_line]
}

fn cluster_toml_seeds() -> Vec<Vec<u8>> {
    let nodes: Vec<NodeSpec> = (0..3)
        .map(|i| NodeSpec {
            id: i,
            peer_addr: format!("127.0.0.1:{}", 7000 + i)
                .parse()
                .expect("an address"),
            client_addr: format!("[::1]:{}", 7100 + i).parse().expect("an address"),
            initial_member: true,
        })
        .collect();
    let mut config = ClusterConfig {
        secret_file: None,
        insecure: false,
        cluster_id: 4242,
        tls: None,
        nodes,
    };
    let plain = config.to_toml();
    config.secret_file = Some("cluster.secret".into());
    vec![plain.into_bytes(), config.to_toml().into_bytes()]
}
