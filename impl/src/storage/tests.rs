//! WAL tests: round trip, torn tails at every byte offset, mid-file corruption, fuzzed input.

use super::record::{decode_records, HEADER_LEN};
use super::{Wal, WalError, WAL_FILE_NAME};
use raft_core::{Entry, HardState, NodeId, Persist};
use std::fs;

type Hard = HardState<String>;

fn entry(term: u64, s: &str) -> Entry<String> {
    Entry {
        term,
        command: s.to_string(),
    }
}

/// Drives a WAL through a sequence of changes (one sync each) and returns the hard state after
/// each step together with the file length after it.
fn write_history(dir: &std::path::Path) -> Vec<(Hard, u64)> {
    let (mut wal, mut hard) = Wal::<String>::open(dir).expect("open fresh WAL");
    let path = dir.join(WAL_FILE_NAME);
    let mut history = vec![(hard.clone(), 0)];
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
    // A new term replaces entry 3 by a conflicting one.
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
    let (_, recovered) = Wal::<String>::open(dir.path()).unwrap();
    assert_eq!(recovered, history.last().unwrap().0);
    assert_eq!(recovered.log.len(), 4);
    assert_eq!(recovered.log[2], entry(2, "d"));
}

#[test]
fn truncation_at_every_byte_of_the_last_record_recovers_the_previous_records() {
    let dir = tempfile::tempdir().unwrap();
    let history = write_history(dir.path());
    let bytes = fs::read(dir.path().join(WAL_FILE_NAME)).unwrap();
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
    fs::write(dir.path().join(WAL_FILE_NAME), &bytes[..torn]).unwrap();
    let (mut wal, mut hard) = Wal::<String>::open(dir.path()).unwrap();
    assert_eq!(hard, before);
    let len = fs::metadata(dir.path().join(WAL_FILE_NAME)).unwrap().len();
    assert_eq!(len, start);
    hard.log.push(entry(2, "after"));
    let from = hard.log.len() as u64;
    wal.stage(
        &hard,
        &Persist {
            appended_from: Some(from),
            ..Persist::default()
        },
    )
    .unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, again) = Wal::<String>::open(dir.path()).unwrap();
    assert_eq!(again, hard);
}

#[test]
fn a_flipped_bit_in_a_middle_record_is_refused_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let history = write_history(dir.path());
    let path = dir.path().join(WAL_FILE_NAME);
    let bytes = fs::read(&path).unwrap();
    // The second record starts where the first step's file ended.
    let offset = history[1].1 as usize;
    for flip_at in [offset, offset + 4, offset + HEADER_LEN + 1] {
        let mut bad = bytes.clone();
        bad[flip_at] ^= 0x10;
        let err = decode_records::<String>(&bad).expect_err("corruption must be refused");
        assert_eq!(err.offset, offset as u64, "flip at {flip_at}");
        fs::write(&path, &bad).unwrap();
        let err = match Wal::<String>::open(dir.path()) {
            Err(e @ WalError::Corrupt { .. }) => e.to_string(),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("corrupt WAL accepted"),
        };
        assert!(err.contains(&format!("byte offset {offset}")), "{err}");
        assert!(err.contains(WAL_FILE_NAME), "{err}");
        // The file was not modified by the refused open.
        assert_eq!(fs::read(&path).unwrap(), bad);
    }
}

#[test]
fn a_bad_last_record_checksum_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let history = write_history(dir.path());
    let mut bytes = fs::read(dir.path().join(WAL_FILE_NAME)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let decoded = decode_records::<String>(&bytes).unwrap();
    assert_eq!(decoded.hard, history[history.len() - 2].0);
}

#[test]
fn entries_past_the_end_of_the_log_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::<String>::open(dir.path()).unwrap();
    // Claims the entries start at index 5 of an empty log.
    let gap = Hard {
        log: vec![entry(1, "a"); 5],
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
    let err = Wal::<String>::open(dir.path()).err().expect("refused");
    assert!(err.to_string().contains("byte offset 0"), "{err}");
}

proptest::proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let _ = decode_records::<String>(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_valid_records_never_panic(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
        let dir = tempfile::tempdir().unwrap();
        write_history(dir.path());
        let mut bytes = fs::read(dir.path().join(WAL_FILE_NAME)).unwrap();
        bytes.extend_from_slice(&tail);
        let _ = decode_records::<String>(&bytes);
    }
}
