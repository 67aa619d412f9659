//! WAL tests: round trip, torn tails at every byte offset, mid-file corruption, payloads that
//! embed frames, linear recovery, the header, the directory lock, fuzzed input.

use super::lock::DirLock;
use super::record::{
    decode_records, decode_stream_from, encode_batch, Record, WalHeader, FILE_HEADER_LEN,
    FRAME_HEADER_LEN, FRAME_MAGIC, SECTOR, WAL_VERSION,
};
use super::{Wal, WalError, WalIdentity};
use raft_core::{Entry, HardState, NodeId, Persist};
use std::fs;
use std::path::Path;

type Hard = HardState<String>;

/// The first WAL segment of a new data directory.
const SEG1: &str = "wal-0000000000000001.log";

const ID: WalIdentity = WalIdentity {
    cluster_id: 77,
    node_id: 3,
};

fn entry(term: u64, s: &str) -> Entry<String> {
    Entry {
        term,
        command: s.to_string(),
    }
}

/// Opens without preallocation, so that the file is exactly the log's frames: the tests of the
/// format below cut and flip its bytes by offset. Preallocation has tests of its own.
fn open(dir: &Path) -> Result<(Wal<String>, Hard), WalError> {
    Wal::<String>::open_with(dir, ID, 0)
}

fn append<C: serde::Serialize + serde::de::DeserializeOwned + Clone>(
    wal: &mut Wal<C>,
    hard: &mut HardState<C>,
    entry: Entry<C>,
) {
    hard.log.push(entry);
    let from = hard.log.len() as u64;
    let persist = Persist {
        appended_from: Some(from),
        ..Persist::default()
    };
    wal.stage(hard, &persist).expect("stage");
    assert!(wal.sync().expect("sync"));
}

/// Drives a WAL through a sequence of changes (one sync each) and returns the hard state after
/// each step together with the file length after it.
fn write_history(dir: &Path) -> Vec<(Hard, u64)> {
    let (mut wal, mut hard) = open(dir).expect("open fresh WAL");
    let path = dir.join(SEG1);
    let mut history = vec![(hard.clone(), FILE_HEADER_LEN as u64)];
    assert_eq!(fs::metadata(&path).unwrap().len(), FILE_HEADER_LEN as u64);
    let step = |hard: &Hard, persist: Persist, wal: &mut Wal<String>| {
        wal.stage(hard, &persist).expect("stage");
        assert!(wal.sync().expect("sync"));
        (hard.clone(), fs::metadata(&path).expect("stat").len())
    };
    hard.current_term = 1;
    hard.voted_for = Some(NodeId(2));
    history.push(step(
        &hard,
        Persist {
            term_or_vote: true,
            ..Persist::default()
        },
        &mut wal,
    ));
    hard.log.push(entry(1, "a"));
    hard.log.push(entry(1, "b"));
    hard.log.push(entry(1, "c"));
    history.push(step(
        &hard,
        Persist {
            appended_from: Some(1),
            ..Persist::default()
        },
        &mut wal,
    ));
    // A new term replaces entry 3 by a conflicting one: three records in one frame.
    hard.current_term = 2;
    hard.voted_for = None;
    hard.log.truncate(2);
    hard.log.push(entry(2, "d"));
    history.push(step(
        &hard,
        Persist {
            term_or_vote: true,
            truncated_after: Some(2),
            appended_from: Some(3),
            write_behind: false,
            snapshot: false,
        },
        &mut wal,
    ));
    hard.log.push(entry(
        2,
        "a longer command so that the last record has some bytes",
    ));
    history.push(step(
        &hard,
        Persist {
            appended_from: Some(4),
            ..Persist::default()
        },
        &mut wal,
    ));
    history
}

#[test]
fn reopen_recovers_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let history = write_history(dir.path());
    let (wal, recovered) = open(dir.path()).unwrap();
    assert_eq!(recovered, history.last().unwrap().0);
    assert_eq!(recovered.log.len(), 4);
    assert_eq!(recovered.log[2], entry(2, "d"));
    assert_eq!(wal.header().cluster_id, ID.cluster_id);
    assert_eq!(wal.header().node_id, ID.node_id);
    let bytes = fs::read(dir.path().join(SEG1)).unwrap();
    let decoded = decode_records::<String>(&bytes).unwrap();
    assert_eq!(decoded.frames, 4, "one frame per sync");
    assert_eq!(decoded.records, 6);
}

#[test]
fn truncation_at_every_byte_of_the_last_frame_recovers_the_previous_frames() {
    let dir = tempfile::tempdir().unwrap();
    let history = write_history(dir.path());
    let bytes = fs::read(dir.path().join(SEG1)).unwrap();
    let (before, start) = history[history.len() - 2].clone();
    let end = history.last().unwrap().1 as usize;
    assert_eq!(end, bytes.len());
    for cut in start as usize..end {
        let decoded = decode_records::<String>(&bytes[..cut])
            .unwrap_or_else(|e| panic!("cut at {cut}: refused: {e}"));
        assert_eq!(decoded.hard, before, "cut at {cut}");
        assert_eq!(decoded.valid_len, start, "cut at {cut}");
        assert_eq!(
            decoded.torn_tail.is_some(),
            cut > start as usize,
            "cut at {cut}"
        );
    }
    // Through the file API: the torn tail is cut off the file, and appends continue after it.
    let torn = (start as usize + end) / 2;
    fs::write(dir.path().join(SEG1), &bytes[..torn]).unwrap();
    let (mut wal, mut hard) = open(dir.path()).unwrap();
    assert_eq!(hard, before);
    let len = fs::metadata(dir.path().join(SEG1)).unwrap().len();
    assert_eq!(len, start);
    append(&mut wal, &mut hard, entry(2, "after"));
    drop(wal);
    let (_, again) = open(dir.path()).unwrap();
    assert_eq!(again, hard);
}

#[test]
fn a_torn_tail_of_reordered_pages_within_the_last_sync_is_still_a_torn_tail() {
    // The last sync's bytes reached the disk out of order: its end but not its start.
    let dir = tempfile::tempdir().unwrap();
    let history = write_history(dir.path());
    let mut bytes = fs::read(dir.path().join(SEG1)).unwrap();
    let (before, start) = history[history.len() - 2].clone();
    for b in &mut bytes[start as usize..start as usize + FRAME_HEADER_LEN + 3] {
        *b = 0;
    }
    let decoded = decode_records::<String>(&bytes).unwrap();
    assert_eq!(decoded.hard, before);
    assert_eq!(decoded.valid_len, start);
}

#[test]
fn a_flipped_bit_in_a_middle_frame_is_refused_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let history = write_history(dir.path());
    let path = dir.path().join(SEG1);
    let bytes = fs::read(&path).unwrap();
    // The second frame starts where the first step's file ended; the third after it.
    let offset = history[1].1 as usize;
    let next = history[2].1;
    // In the magic, the length, the header CRC, the payload CRC and the payload.
    for flip_at in [
        offset,
        offset + 4,
        offset + 8,
        offset + 12,
        offset + FRAME_HEADER_LEN + 1,
    ] {
        let mut bad = bytes.clone();
        bad[flip_at] ^= 0x10;
        let err = decode_records::<String>(&bad).expect_err("corruption must be refused");
        assert_eq!(err.offset, offset as u64, "flip at {flip_at}");
        assert_eq!(err.valid_frame_at, Some(next), "flip at {flip_at}");
        fs::write(&path, &bad).unwrap();
        let err = match open(dir.path()) {
            Err(e @ WalError::Corrupt { .. }) => e.to_string(),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("corrupt WAL accepted"),
        };
        assert!(err.contains(&format!("byte offset {offset}")), "{err}");
        assert!(err.contains(SEG1), "{err}");
        // The file was not modified by the refused open.
        assert_eq!(fs::read(&path).unwrap(), bad);
    }
}

#[test]
fn damage_to_a_whole_last_frame_is_refused_not_cut_as_a_torn_tail() {
    // Issue 38, finding 1: the last frame was synced (all its bytes are there, no sector of it
    // is unwritten zeros); a flipped bit in it is damage to acknowledged data (here the new
    // term's vote and entry), never a torn write to cut off.
    let dir = tempfile::tempdir().unwrap();
    let history = write_history(dir.path());
    let path = dir.path().join(SEG1);
    let bytes = fs::read(&path).unwrap();
    let start = history[history.len() - 2].1 as usize;
    // In the magic, the length, the header CRC, the payload CRC, the payload, its last byte.
    for flip_at in [
        start,
        start + 4,
        start + 8,
        start + 12,
        start + FRAME_HEADER_LEN + 1,
        bytes.len() - 1,
    ] {
        let mut bad = bytes.clone();
        bad[flip_at] ^= 0x04;
        let err = decode_records::<String>(&bad).expect_err("a damaged synced frame is refused");
        assert_eq!(err.offset, start as u64, "flip at {flip_at}");
        assert!(err.whole, "flip at {flip_at}: {err}");
        fs::write(&path, &bad).unwrap();
        let err = match open(dir.path()) {
            Err(e @ WalError::Corrupt { .. }) => e.to_string(),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("flip at {flip_at}: a damaged synced frame was cut as a torn tail"),
        };
        assert!(err.contains(&format!("byte offset {start}")), "{err}");
        assert!(err.contains(SEG1) && err.contains("synced data"), "{err}");
        // The refused open left the file as it was: nothing was cut.
        assert_eq!(fs::read(&path).unwrap(), bad);
    }
}

#[test]
fn a_last_frame_with_an_unwritten_sector_is_a_torn_tail() {
    // A last frame over several sectors, its write interrupted: one sector's part of it still
    // zeros (the header's, a middle one, the last one), the others written.
    let dir = tempfile::tempdir().unwrap();
    let history = write_history(dir.path());
    let (mut wal, mut hard) = open(dir.path()).unwrap();
    assert_eq!(hard, history.last().unwrap().0);
    let before = hard.clone();
    let start = fs::metadata(dir.path().join(SEG1)).unwrap().len() as usize;
    append(&mut wal, &mut hard, entry(2, &"x".repeat(3 * SECTOR)));
    drop(wal);
    let bytes = fs::read(dir.path().join(SEG1)).unwrap();
    let first_end = (start / SECTOR + 1) * SECTOR;
    let last_start = (bytes.len() - 1) / SECTOR * SECTOR;
    for zeroed in [
        start..first_end,
        first_end..first_end + SECTOR,
        last_start..bytes.len(),
    ] {
        let mut torn = bytes.clone();
        torn[zeroed.clone()].fill(0);
        let decoded = decode_records::<String>(&torn)
            .unwrap_or_else(|e| panic!("zeroed {zeroed:?}: refused: {e}"));
        assert_eq!(decoded.hard, before, "zeroed {zeroed:?}");
        assert_eq!(decoded.valid_len, start as u64);
        assert!(decoded.torn_tail.is_some());
        // A bit flipped in the same frame, all of it written, is refused.
        let mut flipped = bytes.clone();
        flipped[zeroed.start + 1] ^= 0x20;
        assert!(decode_records::<String>(&flipped).unwrap_err().whole);
    }
}

#[test]
fn entries_past_the_end_of_the_log_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path()).unwrap();
    // Claims the entries start at index 5 of an empty log.
    let gap = Hard {
        log: vec![entry(1, "a"); 5].into(),
        ..Hard::default()
    };
    wal.stage(
        &gap,
        &Persist {
            appended_from: Some(5),
            ..Persist::default()
        },
    )
    .unwrap();
    wal.sync().unwrap();
    drop(wal);
    let err = open(dir.path()).err().expect("refused");
    assert!(
        err.to_string()
            .contains(&format!("byte offset {FILE_HEADER_LEN}")),
        "{err}"
    );
}

/// A frame of the format before version 1 (`len`, CRC-32C of length and payload, payload),
/// holding `record`.
fn old_format_frame(record: &Record<String>) -> Vec<u8> {
    let payload = postcard::to_allocvec(record).unwrap();
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &payload);
    [&len[..], &crc.to_le_bytes(), &payload].concat()
}

/// Frames that a client could put into a value, each valid somewhere but not here: a frame of
/// the old format, and a frame of this format for another file's salt. Returned as a UTF-8
/// string (found by trying commands until every checksum byte is ASCII), so that it fits in a
/// `String` command as it would in a client's value.
pub(crate) fn embeddable_frames() -> String {
    let mut out = String::new();
    for i in 0.. {
        let record = Record::Entries {
            from: 1,
            entries: vec![entry(1, &format!("x{i}"))],
        };
        if let Ok(s) = String::from_utf8(old_format_frame(&record)) {
            out.push_str(&s);
            break;
        }
    }
    let payload = postcard::to_allocvec(&Record::<String>::Truncate { after: 0 }).unwrap();
    'forge: for offset in 0u64.. {
        for salt in 0..16u64 {
            let header = WalHeader {
                cluster_id: 0,
                node_id: 0,
                salt,
            };
            let mut frame = Vec::new();
            encode_batch(&header, offset.max(1), &payload, &mut frame).unwrap();
            if let Ok(s) = String::from_utf8(frame) {
                out.push_str(&s);
                break 'forge;
            }
        }
    }
    out
}

#[test]
fn a_value_that_embeds_valid_frames_then_a_torn_tail_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SEG1);
    let (mut wal, mut hard) = Wal::<Vec<u8>>::open_with(dir.path(), ID, 0).unwrap();
    append(
        &mut wal,
        &mut hard,
        Entry {
            term: 1,
            command: b"first".to_vec(),
        },
    );
    let before = hard.clone();
    let start = fs::metadata(&path).unwrap().len() as usize;
    // The value embeds a copy of this very file's first frame (valid, but at another offset),
    // a frame of the old format and one for another salt, with some bytes around them.
    let file = fs::read(&path).unwrap();
    let genuine = file[FILE_HEADER_LEN..start].to_vec();
    let mut value = b"prefix".to_vec();
    value.extend_from_slice(&genuine);
    value.extend_from_slice(embeddable_frames().as_bytes());
    value.extend_from_slice(&[FRAME_MAGIC[0]; 40]);
    value.extend_from_slice(b"suffix");
    append(
        &mut wal,
        &mut hard,
        Entry {
            term: 1,
            command: value,
        },
    );
    drop(wal);
    let bytes = fs::read(&path).unwrap();
    assert_eq!(decode_records::<Vec<u8>>(&bytes).unwrap().hard, hard);
    // The last sync torn at every byte: always the state before it.
    for cut in start + 1..bytes.len() {
        let decoded = decode_records::<Vec<u8>>(&bytes[..cut])
            .unwrap_or_else(|e| panic!("cut at {cut}: refused: {e}"));
        assert_eq!(decoded.hard, before, "cut at {cut}");
        assert_eq!(decoded.valid_len, start as u64, "cut at {cut}");
    }
    // Also when the bytes of the torn sync that reached the disk are not its first ones (its
    // first sector, the frame's header, still unwritten zeros).
    let mut reordered = bytes.clone();
    let first_sector_end = (start / SECTOR + 1) * SECTOR;
    reordered[start..first_sector_end.min(bytes.len())].fill(0);
    assert_eq!(decode_records::<Vec<u8>>(&reordered).unwrap().hard, before);
    fs::write(&path, &bytes[..bytes.len() - 7]).unwrap();
    let (_, recovered) = Wal::<Vec<u8>>::open_with(dir.path(), ID, 0).unwrap();
    assert_eq!(recovered, before);
}

#[test]
fn recovery_is_linear_in_the_file_length_whatever_the_torn_tail_holds() {
    // The worst torn tails for a decoder that re-checks frames at every offset: many frame
    // magics with small plausible lengths, and one huge payload cut short.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SEG1);
    let (mut wal, mut hard) = Wal::<Vec<u8>>::open_with(dir.path(), ID, 0).unwrap();
    append(
        &mut wal,
        &mut hard,
        Entry {
            term: 1,
            command: b"first".to_vec(),
        },
    );
    let start = fs::metadata(&path).unwrap().len() as usize;
    let mut pattern = Vec::new();
    for i in 0..(1 << 16) {
        pattern.extend_from_slice(&FRAME_MAGIC);
        pattern.extend_from_slice(&((i % 64) as u32 + 1).to_le_bytes());
    }
    append(
        &mut wal,
        &mut hard,
        Entry {
            term: 1,
            command: pattern,
        },
    );
    drop(wal);
    let bytes = fs::read(&path).unwrap();
    for torn in [bytes.len() - 1, (start + bytes.len()) / 2, start + 3] {
        let decoded = decode_records::<Vec<u8>>(&bytes[..torn]).unwrap();
        assert_eq!(decoded.valid_len, start as u64);
        let len = torn as u64;
        assert!(
            decoded.header_probes <= len,
            "{} header probes for {len} bytes",
            decoded.header_probes
        );
        assert!(
            decoded.payload_bytes_checked <= len,
            "{} payload bytes checksummed for {len} bytes",
            decoded.payload_bytes_checked
        );
    }
    // A whole file: one probe per frame, each payload byte checksummed once.
    let decoded = decode_records::<Vec<u8>>(&bytes).unwrap();
    assert_eq!(decoded.header_probes, 2);
    assert_eq!(
        decoded.payload_bytes_checked as usize,
        bytes.len() - FILE_HEADER_LEN - 2 * FRAME_HEADER_LEN
    );
}

#[test]
fn a_wal_of_another_node_or_cluster_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path());
    let path = dir.path().join(SEG1);
    // With a torn tail, which an accepted open would cut off.
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(b"torn");
    fs::write(&path, &bytes).unwrap();
    let other_node = WalIdentity { node_id: 4, ..ID };
    let err = Wal::<String>::open(dir.path(), other_node)
        .err()
        .expect("refused");
    assert!(
        matches!(
            err,
            WalError::WrongNode {
                found: 3,
                expected: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("node 3"), "{err}");
    let other_cluster = WalIdentity {
        cluster_id: 78,
        ..ID
    };
    let err = Wal::<String>::open(dir.path(), other_cluster)
        .err()
        .expect("refused");
    assert!(
        matches!(
            err,
            WalError::WrongCluster {
                found: 77,
                expected: 78,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("cluster 77"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), bytes);
    open(dir.path()).expect("the right identity opens it");
}

#[test]
fn a_headerless_or_foreign_file_is_a_clear_error_and_a_torn_header_a_fresh_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SEG1);
    // A WAL of the format before the header: old frames from offset 0.
    let old = old_format_frame(&Record::HardState {
        current_term: 1,
        voted_for: None,
    });
    for bytes in [old.clone(), old[..5].to_vec(), b"hello world".repeat(9)] {
        fs::write(&path, &bytes).unwrap();
        let err = open(dir.path()).err().expect("refused");
        let shown = err.to_string();
        assert!(shown.contains("no WAL header"), "{shown}");
        assert!(shown.contains(SEG1), "{shown}");
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }
    // A header with another version, and one with a flipped bit.
    let header = WalHeader {
        cluster_id: ID.cluster_id,
        node_id: ID.node_id,
        salt: 9,
    }
    .encode();
    // (Version 1 is the format before configurations carried addresses.)
    let other = WAL_VERSION - 1;
    let mut older = header;
    older[8..12].copy_from_slice(&other.to_le_bytes());
    let crc = crc32c::crc32c(&older[..36]).to_le_bytes();
    older[36..].copy_from_slice(&crc);
    fs::write(&path, older).unwrap();
    let shown = open(dir.path()).err().expect("refused").to_string();
    assert!(
        shown.contains(&format!("format version {other}")),
        "{shown}"
    );
    let mut flipped = header;
    flipped[25] ^= 4;
    fs::write(&path, flipped).unwrap();
    let shown = open(dir.path()).err().expect("refused").to_string();
    assert!(shown.contains("header checksum"), "{shown}");
    // Cut short while the file was created: nothing was ever synced into it.
    fs::write(&path, &header[..20]).unwrap();
    let (mut wal, mut hard) = open(dir.path()).expect("a torn header is a new WAL");
    assert_eq!(hard, Hard::default());
    append(&mut wal, &mut hard, entry(1, "a"));
    drop(wal);
    assert_eq!(open(dir.path()).unwrap().1, hard);
}

#[test]
fn a_locked_directory_is_refused_before_the_wal_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path());
    let path = dir.path().join(SEG1);
    let mut bytes = fs::read(&path).unwrap();
    // A frame cut short by the end of the file: a torn tail that an open would cut.
    bytes.extend_from_slice(&FRAME_MAGIC);
    bytes.extend_from_slice(b"torn");
    fs::write(&path, &bytes).unwrap();
    let holder = DirLock::acquire(dir.path()).unwrap();
    let err = open(dir.path()).err().expect("refused while locked");
    let shown = err.to_string();
    assert!(matches!(err, WalError::Locked(_)), "{shown}");
    assert!(
        shown.contains(&format!("pid {}", std::process::id())),
        "{shown}"
    );
    assert!(shown.contains(&dir.path().display().to_string()), "{shown}");
    assert_eq!(fs::read(&path).unwrap(), bytes, "the WAL was modified");
    // An open WAL holds the lock itself.
    drop(holder);
    let (wal, _) = open(dir.path()).unwrap();
    assert!(matches!(open(dir.path()), Err(WalError::Locked(_))));
    drop(wal);
    open(dir.path()).expect("released with the WAL");
}

#[test]
fn an_io_error_names_the_path_and_operation_and_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, "").unwrap();
    let err = open(&file.join("data")).err().expect("not a directory");
    let chain = format!("{:#}", anyhow::Error::from(err));
    assert!(chain.contains("a-file"), "{chain}");
    assert!(chain.contains("create directory"), "{chain}");
    assert_eq!(chain.matches("os error").count(), 1, "{chain}");
    // A corrupt WAL's chain names the offset once too.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(SEG1), b"not a wal at all, no").unwrap();
    let chain = format!("{:#}", anyhow::Error::from(open(dir.path()).err().unwrap()));
    assert_eq!(chain.matches("no WAL header").count(), 1, "{chain}");
}

proptest::proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let _ = decode_records::<String>(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_valid_frames_never_panic_and_are_cut_only_as_an_unfinished_write(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..64)) {
        let dir = tempfile::tempdir().unwrap();
        let history = write_history(dir.path());
        let mut bytes = fs::read(dir.path().join(SEG1)).unwrap();
        let end = bytes.len();
        proptest::prop_assert!(end + FRAME_HEADER_LEN <= SECTOR);
        bytes.extend_from_slice(&tail);
        let header_zero = tail.len() >= FRAME_HEADER_LEN
            && tail[..FRAME_HEADER_LEN].iter().all(|b| *b == 0);
        if tail.len() >= FRAME_HEADER_LEN && !header_zero {
            // A whole frame header's worth of bytes that are no frame (no sector of it zero,
            // the frames being small): damage, not a write that did not finish.
            let err = decode_records::<String>(&bytes).expect_err("damage after the last frame");
            proptest::prop_assert_eq!(err.offset, end as u64);
            proptest::prop_assert!(err.whole);
            return Ok(());
        }
        let decoded = decode_records::<String>(&bytes).unwrap();
        proptest::prop_assert_eq!(&decoded.hard, &history.last().unwrap().0);
        // All zeros: preallocated space, kept; shorter than a frame header or a zero header:
        // a torn tail, cut.
        if tail.iter().all(|b| *b == 0) {
            proptest::prop_assert_eq!(decoded.preallocated, tail.len() as u64);
            proptest::prop_assert!(decoded.torn_tail.is_none());
        } else {
            proptest::prop_assert!(decoded.torn_tail.is_some());
            proptest::prop_assert_eq!(decoded.preallocated, 0);
        }
        proptest::prop_assert_eq!(decoded.valid_len, history.last().unwrap().1);
    }
}

// ---- Preallocation: the file is the log's frames, then zeros up to the allocated length ----

fn open_preallocated(dir: &Path, bytes: u64) -> (Wal<String>, Hard) {
    Wal::<String>::open_with(dir, ID, bytes).expect("open")
}

/// The file's bytes after the log's frames: all zero, and the file is as long as the WAL says.
fn assert_zero_tail(dir: &Path, wal: &Wal<String>) {
    let bytes = fs::read(dir.join(SEG1)).unwrap();
    assert_eq!(bytes.len() as u64, wal.allocated_bytes());
    assert!(wal.log_bytes() <= wal.allocated_bytes());
    let tail = &bytes[wal.log_bytes() as usize..];
    assert!(tail.iter().all(|b| *b == 0), "non-zero byte after the log");
}

#[test]
fn a_preallocated_wal_reopens_with_its_zeros_kept_and_appends_after_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut hard) = open_preallocated(dir.path(), 4096);
    for s in ["a", "b", "c"] {
        append(&mut wal, &mut hard, entry(1, s));
    }
    assert!(wal.allocated_bytes() > wal.log_bytes() + 4000);
    assert_zero_tail(dir.path(), &wal);
    let (log_bytes, allocated) = (wal.log_bytes(), wal.allocated_bytes());
    drop(wal);

    let (mut wal, recovered) = open_preallocated(dir.path(), 4096);
    assert_eq!(recovered, hard);
    // Not a torn tail: nothing was cut, and the next frame goes where the log ends.
    assert_eq!(
        (wal.log_bytes(), wal.allocated_bytes()),
        (log_bytes, allocated)
    );
    let decoded = decode_records::<String>(&fs::read(dir.path().join(SEG1)).unwrap()).unwrap();
    assert_eq!(decoded.torn_tail, None);
    assert_eq!(decoded.preallocated, allocated - log_bytes);
    append(&mut wal, &mut hard, entry(2, "d"));
    assert_eq!(
        wal.allocated_bytes(),
        allocated,
        "the frame fit in the allocated space"
    );
    assert_zero_tail(dir.path(), &wal);
    drop(wal);
    let (_, again) = open_preallocated(dir.path(), 4096);
    assert_eq!(again, hard);
    assert_eq!(again.log.len(), 4);
}

#[test]
fn syncs_past_the_allocated_space_allocate_more_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // 100 bytes ahead, entries of 150: nearly every sync allocates.
    let (mut wal, mut hard) = open_preallocated(dir.path(), 100);
    let mut grew = 0;
    for i in 0..40 {
        let before = wal.allocated_bytes();
        append(&mut wal, &mut hard, entry(1, &format!("{i:0>150}")));
        grew += usize::from(wal.allocated_bytes() > before);
        assert_zero_tail(dir.path(), &wal);
    }
    assert!(grew >= 20, "allocated only {grew} times");
    drop(wal);
    let (_, recovered) = open_preallocated(dir.path(), 100);
    assert_eq!(recovered, hard);
    // And a WAL opened without preallocation reads the same file.
    let (_, plain) = open(dir.path()).unwrap();
    assert_eq!(plain, hard);
}

#[test]
fn a_sync_torn_inside_the_preallocated_space_is_cut_and_appends_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut hard) = open_preallocated(dir.path(), 4096);
    append(&mut wal, &mut hard, entry(1, "a"));
    let before = hard.clone();
    let start = wal.log_bytes();
    append(&mut wal, &mut hard, entry(1, &"b".repeat(3 * SECTOR)));
    let end = wal.log_bytes();
    drop(wal);
    // The last sync reached the disk only in part: its first sector, then zeros.
    let path = dir.path().join(SEG1);
    let mut bytes = fs::read(&path).unwrap();
    let second_sector = (start as usize / SECTOR + 1) * SECTOR;
    for b in &mut bytes[second_sector..end as usize] {
        *b = 0;
    }
    fs::write(&path, &bytes).unwrap();
    let decoded = decode_records::<String>(&bytes).unwrap();
    assert!(decoded.torn_tail.is_some());
    assert_eq!((decoded.valid_len, decoded.preallocated), (start, 0));
    let (mut wal, recovered) = open_preallocated(dir.path(), 4096);
    assert_eq!(recovered, before);
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        start,
        "the torn tail was cut"
    );
    hard = recovered;
    append(&mut wal, &mut hard, entry(2, "c"));
    assert_zero_tail(dir.path(), &wal);
    drop(wal);
    let (_, again) = open_preallocated(dir.path(), 4096);
    assert_eq!(again, hard);
    assert_eq!(*again.log, vec![entry(1, "a"), entry(2, "c")]);
}

#[test]
fn zeros_after_a_corrupt_middle_frame_do_not_hide_it() {
    // Preallocation must not turn corruption into a clean end: a flipped bit in a frame that
    // has valid frames after it is refused, zeros or not after the last one.
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut hard) = open_preallocated(dir.path(), 4096);
    append(&mut wal, &mut hard, entry(1, "a"));
    let second = wal.log_bytes();
    append(&mut wal, &mut hard, entry(1, "b"));
    append(&mut wal, &mut hard, entry(1, "c"));
    drop(wal);
    let mut bytes = fs::read(dir.path().join(SEG1)).unwrap();
    bytes[second as usize + FRAME_HEADER_LEN] ^= 0x10;
    let err = decode_records::<String>(&bytes).expect_err("corruption must be refused");
    assert_eq!(err.offset, second);
}

/// A reader that remembers the largest single read asked of it.
struct LargestRead<R> {
    inner: R,
    largest: usize,
}

impl<R: std::io::Read> std::io::Read for LargestRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.largest = self.largest.max(buf.len());
        self.inner.read(buf)
    }
}

impl<R: std::io::Seek> std::io::Seek for LargestRead<R> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Recovery reads a segment frame by frame: it never asks for more than its largest frame
/// (or a piece of the preallocated zeros after the log) at once, and decodes what the
/// in-memory decoder does.
#[test]
fn recovery_reads_a_segment_a_frame_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SEG1);
    let (mut wal, mut hard) = Wal::<Vec<u8>>::open_with(dir.path(), ID, 4 << 20).unwrap();
    for i in 0..300u32 {
        let command = vec![(i % 251) as u8; 2000];
        append(&mut wal, &mut hard, Entry { term: 1, command });
    }
    drop(wal);
    let bytes = fs::read(&path).unwrap();
    assert!(
        bytes.len() > (4 << 20),
        "preallocated: {} bytes",
        bytes.len()
    );
    let mut reader = LargestRead {
        inner: std::io::BufReader::with_capacity(1, fs::File::open(&path).unwrap()),
        largest: 0,
    };
    let streamed =
        decode_stream_from::<Vec<u8>, _>(&mut reader, bytes.len() as u64, HardState::default())
            .unwrap()
            .unwrap();
    assert!(
        reader.largest <= 64 << 10,
        "a read of {} bytes",
        reader.largest
    );
    let in_memory = decode_records::<Vec<u8>>(&bytes).unwrap();
    assert_eq!(streamed.hard, hard);
    assert_eq!(streamed.hard, in_memory.hard);
    assert_eq!(
        (streamed.valid_len, streamed.preallocated, streamed.frames),
        (in_memory.valid_len, in_memory.preallocated, 300)
    );
}
