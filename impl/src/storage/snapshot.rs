//! Snapshot files (§7): one file per snapshot, `snap-<last included index, 20 digits>.snap`,
//! written atomically and checked by a CRC on recovery.
//!
//! ```text
//! magic "RAFTSNP\n" | version u32 | cluster_id u64 | node_id u64
//! | last_included_index u64 | last_included_term u64 | config_len u32 | data_len u64
//! | config (config_len bytes: postcard of Option<(Index, Membership)>)
//! | data (data_len bytes: the state machine's image, opaque)
//! | crc u32 (CRC-32C of every byte before it)
//! ```
//!
//! All integers little-endian. A snapshot is written as `NAME.tmp` (write, fsync), renamed to
//! `NAME`, and the directory fsynced ([`write_snapshot`]): a crash leaves either no file of
//! that name or the whole file, and a `.tmp` left over is ignored (and removed) on recovery.

use super::fs::Fs;
use super::record::WalIdentity;
use raft_core::{Index, Membership, Snapshot};
use std::io;

/// The first bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"RAFTSNP\n";
/// The snapshot format version this code writes and reads (2: the configuration carries the
/// members' addresses).
pub const SNAPSHOT_VERSION: u32 = 2;
/// Bytes before the config: magic, version, ids, index, term and the two lengths.
pub const SNAPSHOT_HEADER_LEN: usize = 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8;
/// Bytes of a snapshot's image written between two fsyncs of its file ([`write_snapshot`]).
pub const SNAPSHOT_SYNC_BYTES: usize = 4 << 20;
/// What a temporary snapshot file's name ends with.
pub const TMP_SUFFIX: &str = ".tmp";

/// The file name of the snapshot whose last included index is `index`.
pub fn snapshot_file_name(index: Index) -> String {
    format!("snap-{index:020}.snap")
}

/// The last included index a snapshot file's name stands for (`None`: not a snapshot file).
pub fn parse_snapshot_file_name(name: &str) -> Option<Index> {
    let digits = name.strip_prefix("snap-")?.strip_suffix(".snap")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The bytes of a snapshot file before its image: the header and the configuration.
fn snapshot_head(identity: WalIdentity, snapshot: &Snapshot) -> Vec<u8> {
    let config = postcard::to_allocvec(&snapshot.config).expect("a configuration encodes");
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER_LEN + config.len());
    out.extend_from_slice(&SNAPSHOT_MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    out.extend_from_slice(&identity.cluster_id.to_le_bytes());
    out.extend_from_slice(&identity.node_id.to_le_bytes());
    out.extend_from_slice(&snapshot.last_included_index.to_le_bytes());
    out.extend_from_slice(&snapshot.last_included_term.to_le_bytes());
    out.extend_from_slice(&(config.len() as u32).to_le_bytes());
    out.extend_from_slice(&(snapshot.data.len() as u64).to_le_bytes());
    out.extend_from_slice(&config);
    out
}

/// The bytes of a snapshot file.
pub fn encode_snapshot(identity: WalIdentity, snapshot: &Snapshot) -> Vec<u8> {
    let mut out = snapshot_head(identity, snapshot);
    out.extend_from_slice(&snapshot.data);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Why a snapshot file's bytes are not a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotProblem {
    #[error("empty file (its contents never reached the disk)")]
    Empty,
    #[error("{len} bytes, shorter than a snapshot header")]
    Short { len: usize },
    #[error("no snapshot magic")]
    BadMagic,
    #[error("snapshot format version {version}; this build reads only version {SNAPSHOT_VERSION}")]
    UnsupportedVersion { version: u32 },
    #[error("the file is {len} bytes, its header announces {expected}")]
    LengthMismatch { len: usize, expected: u128 },
    #[error("CRC-32C mismatch")]
    CrcMismatch,
    #[error("undecodable configuration: {0}")]
    Undecodable(String),
    #[error("holds the snapshot at index {found}, its name says {named}")]
    WrongIndex { found: Index, named: Index },
}

/// Why the node's snapshot writer thread could not write a snapshot file
/// (`node/snapshot_writer.rs`): the node must stop.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the snapshot at index {index}: {op} {path}: {error}")]
pub struct SnapshotWriteError {
    pub index: Index,
    pub path: std::path::PathBuf,
    pub op: &'static str,
    pub error: io::Error,
}

/// A decoded snapshot file: whose it is and the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedSnapshot {
    pub identity: WalIdentity,
    pub snapshot: Snapshot,
}

/// Decodes a snapshot file's bytes, checking its length and CRC.
pub fn decode_snapshot(bytes: &[u8]) -> Result<DecodedSnapshot, SnapshotProblem> {
    decode_snapshot_vec(bytes.to_vec())
}

/// [`decode_snapshot`] of bytes it owns: the image is cut out of them in place, so that
/// recovery holds one copy of a snapshot, not two.
fn decode_snapshot_vec(mut bytes: Vec<u8>) -> Result<DecodedSnapshot, SnapshotProblem> {
    if bytes.is_empty() {
        return Err(SnapshotProblem::Empty);
    }
    let Some(header) = bytes.first_chunk::<SNAPSHOT_HEADER_LEN>() else {
        return Err(SnapshotProblem::Short { len: bytes.len() });
    };
    if header[0..8] != SNAPSHOT_MAGIC {
        return Err(SnapshotProblem::BadMagic);
    }
    let u32_at = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().expect("8 bytes"));
    let version = u32_at(8);
    if version != SNAPSHOT_VERSION {
        return Err(SnapshotProblem::UnsupportedVersion { version });
    }
    let config_len = u32_at(44) as usize;
    let data_len = u64_at(48);
    let expected = SNAPSHOT_HEADER_LEN as u128 + config_len as u128 + u128::from(data_len) + 4;
    if bytes.len() as u128 != expected {
        return Err(SnapshotProblem::LengthMismatch {
            len: bytes.len(),
            expected,
        });
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(SnapshotProblem::CrcMismatch);
    }
    let config_bytes = &body[SNAPSHOT_HEADER_LEN..SNAPSHOT_HEADER_LEN + config_len];
    let config: Option<(Index, Membership)> = postcard::from_bytes(config_bytes)
        .map_err(|e| SnapshotProblem::Undecodable(e.to_string()))?;
    let identity = WalIdentity {
        cluster_id: u64_at(12),
        node_id: u64_at(20),
    };
    let (last_included_index, last_included_term) = (u64_at(28), u64_at(36));
    bytes.truncate(bytes.len() - 4);
    bytes.drain(..SNAPSHOT_HEADER_LEN + config_len);
    Ok(DecodedSnapshot {
        identity,
        snapshot: Snapshot {
            last_included_index,
            last_included_term,
            config,
            data: bytes,
        },
    })
}

/// Reads and checks the snapshot file `name` (whose name gives its index).
pub fn read_snapshot<F: Fs>(
    fs: &mut F,
    name: &str,
) -> io::Result<Result<DecodedSnapshot, SnapshotProblem>> {
    let bytes = fs.read(name)?;
    let named = parse_snapshot_file_name(name);
    Ok(decode_snapshot_vec(bytes).and_then(|d| match named {
        Some(named) if named != d.snapshot.last_included_index => {
            Err(SnapshotProblem::WrongIndex {
                found: d.snapshot.last_included_index,
                named,
            })
        }
        _ => Ok(d),
    }))
}

/// Writes `snapshot` durably and atomically: `NAME.tmp`, write (the image flushed every
/// [`SNAPSHOT_SYNC_BYTES`]), fsync, rename to `NAME`, fsync the directory. Returns the file's name. On an error, the step that failed.
pub fn write_snapshot<F: Fs>(
    fs: &mut F,
    identity: WalIdentity,
    snapshot: &Snapshot,
) -> Result<String, (String, &'static str, io::Error)> {
    let name = snapshot_file_name(snapshot.last_included_index);
    let tmp = format!("{name}{TMP_SUFFIX}");
    // Written in three pieces, the image from where it lies: no second copy of it in memory.
    let head = snapshot_head(identity, snapshot);
    let data = &snapshot.data;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&head), data);
    let fail = |op: &'static str| {
        let tmp = tmp.clone();
        move |e| (tmp, op, e)
    };
    let file = fs.create(&tmp).map_err(fail("create"))?;
    let data_at = head.len() as u64;
    let crc_at = data_at + data.len() as u64;
    fs.write_at(&file, 0, &head).map_err(fail("write"))?;
    // The image in pieces, each flushed before the next is written: the kernel never holds
    // more than a piece of it dirty, so a WAL fsync beside it (whose journal commit may have to
    // write out other files' dirty data first, as ext4's ordered mode does) waits for one
    // piece at most, not the whole image.
    for (i, piece) in data.chunks(SNAPSHOT_SYNC_BYTES).enumerate() {
        let at = data_at + (i * SNAPSHOT_SYNC_BYTES) as u64;
        fs.write_at(&file, at, piece).map_err(fail("write"))?;
        if piece.len() == SNAPSHOT_SYNC_BYTES {
            fs.sync_data(&file).map_err(fail("fsync"))?;
        }
    }
    fs.write_at(&file, crc_at, &crc.to_le_bytes())
        .map_err(fail("write"))?;
    fs.sync_all(&file).map_err(fail("fsync"))?;
    drop(file);
    fs.rename(&tmp, &name).map_err(fail("rename"))?;
    fs.sync_dir()
        .map_err(|e| (name.clone(), "fsync the data directory after writing", e))?;
    Ok(name)
}
