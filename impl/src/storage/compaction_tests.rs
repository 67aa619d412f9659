//! Snapshot files and WAL segments: the snapshot format, restart from a snapshot and the WAL
//! after it, compaction deleting whole segments (the directory stays bounded), a corrupt
//! newest snapshot (fallback or a clear error), leftover temporary files, segment rolling and
//! preallocation, the vote across deleted segments, an old single-file WAL.

use super::record::{encode_batch, encode_persist, WalHeader};
use super::snapshot::{decode_snapshot, encode_snapshot, snapshot_file_name, SnapshotProblem};
use super::wal::{segment_file_name, WAL_FILE_NAME};
use super::{write_snapshot, DirFs, Wal, WalError, WalIdentity, WalOptions};
use raft_core::{Entry, HardState, Index, Membership, NodeId, Persist, Snapshot};
use std::fs;
use std::path::Path;

type Hard = HardState<String>;

const ID: WalIdentity = WalIdentity {
    cluster_id: 77,
    node_id: 3,
};

fn options(segment_bytes: u64) -> WalOptions {
    WalOptions {
        segment_bytes,
        preallocate: segment_bytes / 4,
    }
}

fn open(dir: &Path, segment_bytes: u64) -> Result<(Wal<String>, Hard), WalError> {
    Wal::open_with_options(dir, ID, options(segment_bytes))
}

fn last_index(hard: &Hard) -> Index {
    hard.snapshot.last_included_index + hard.log.len() as Index
}

/// Appends `n` entries of about 100 bytes, one sync each.
fn append(wal: &mut Wal<String>, hard: &mut Hard, n: u64) {
    for _ in 0..n {
        let index = last_index(hard) + 1;
        hard.log.push(Entry {
            term: hard.current_term,
            command: format!("{index:>100}"),
        });
        let persist = Persist {
            appended_from: Some(index),
            ..Persist::default()
        };
        wal.stage(hard, &persist).unwrap();
        assert!(wal.sync().unwrap());
    }
}

/// The snapshot of `hard` up to `index` that [`compact`] makes.
fn snapshot_at(hard: &Hard, index: Index) -> Snapshot {
    let base = hard.snapshot.last_included_index;
    Snapshot {
        last_included_index: index,
        last_included_term: hard.log[(index - base - 1) as usize].term,
        config: Some((1, Membership::voters([NodeId(1), NodeId(3)]))),
        data: format!("state machine up to {index}").into_bytes(),
    }
}

/// Compacts `hard` up to `index` (as raft-core's Event::Compact does) and persists it.
fn compact(wal: &mut Wal<String>, hard: &mut Hard, index: Index) {
    let base = hard.snapshot.last_included_index;
    let snapshot = snapshot_at(hard, index);
    hard.log.drain(..(index - base) as usize);
    hard.snapshot = snapshot;
    let persist = Persist {
        snapshot: true,
        ..Persist::default()
    };
    wal.stage(hard, &persist).unwrap();
    wal.sync().unwrap();
}

fn vote(wal: &mut Wal<String>, hard: &mut Hard, term: u64, vote: u64) {
    hard.current_term = term;
    hard.voted_for = Some(NodeId(vote));
    let persist = Persist {
        term_or_vote: true,
        ..Persist::default()
    };
    wal.stage(hard, &persist).unwrap();
    wal.sync().unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "LOCK")
        .collect();
    names.sort();
    names
}

fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn sample_snapshot() -> Snapshot {
    Snapshot {
        last_included_index: 41,
        last_included_term: 7,
        config: Some((12, Membership::voters([NodeId(0), NodeId(2)]))),
        data: b"the image".to_vec(),
    }
}

#[test]
fn a_snapshot_file_round_trips_and_every_flipped_byte_is_caught() {
    let snapshot = sample_snapshot();
    let bytes = encode_snapshot(ID, &snapshot);
    let decoded = decode_snapshot(&bytes).unwrap();
    assert_eq!(decoded.identity, ID);
    assert_eq!(decoded.snapshot, snapshot);
    for i in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[i] ^= 0x10;
        assert!(
            decode_snapshot(&flipped).is_err(),
            "flip at byte {i} accepted"
        );
    }
    for len in 0..bytes.len() {
        assert!(
            decode_snapshot(&bytes[..len]).is_err(),
            "cut at {len} accepted"
        );
    }
    assert_eq!(decode_snapshot(&[]), Err(SnapshotProblem::Empty));
    assert_eq!(snapshot_file_name(41), "snap-00000000000000000041.snap");
    let empty = Snapshot {
        last_included_index: 3,
        last_included_term: 1,
        ..Snapshot::default()
    };
    assert_eq!(
        decode_snapshot(&encode_snapshot(ID, &empty))
            .unwrap()
            .snapshot,
        empty
    );
}

#[test]
fn a_restart_is_the_newest_snapshot_and_the_wal_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut hard) = open(dir.path(), 4096).unwrap();
    vote(&mut wal, &mut hard, 2, 1);
    append(&mut wal, &mut hard, 50);
    compact(&mut wal, &mut hard, 30);
    append(&mut wal, &mut hard, 10);
    compact(&mut wal, &mut hard, 45);
    append(&mut wal, &mut hard, 5);
    drop(wal);
    let (wal, recovered) = open(dir.path(), 4096).unwrap();
    assert_eq!(recovered, hard);
    assert_eq!(recovered.snapshot.last_included_index, 45);
    assert_eq!(
        recovered.log.len(),
        20,
        "only the entries after the snapshot"
    );
    assert_eq!(wal.snapshot_indices(), &[30, 45]);
    let snaps: Vec<String> = names(dir.path())
        .into_iter()
        .filter(|n| n.starts_with("snap-"))
        .collect();
    assert_eq!(
        snaps,
        [snapshot_file_name(30), snapshot_file_name(45)],
        "the newest two snapshots"
    );
}

#[test]
fn compaction_deletes_whole_segments_and_the_directory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let segment = 4096;
    let (mut wal, mut hard) = open(dir.path(), segment).unwrap();
    vote(&mut wal, &mut hard, 1, 3);
    let mut largest = 0;
    for round in 1..=40 {
        append(&mut wal, &mut hard, 50);
        compact(&mut wal, &mut hard, round * 50 - 10);
        largest = largest.max(dir_bytes(dir.path()));
        let segments = wal.segment_names();
        assert!(segments.len() <= 4, "round {round}: {segments:?}");
    }
    // 2000 entries of ~120 bytes were written (~240 KB); the directory holds two snapshots,
    // a few segments and the lock.
    assert!(largest <= 6 * segment, "{largest} bytes");
    assert!(!dir.path().join(segment_file_name(1)).exists());
    drop(wal);
    let (_, recovered) = open(dir.path(), segment).unwrap();
    assert_eq!(recovered, hard);
}

#[test]
fn segments_roll_at_their_size_and_are_preallocated() {
    let dir = tempfile::tempdir().unwrap();
    let segment = 4096;
    let (mut wal, mut hard) = open(dir.path(), segment).unwrap();
    append(&mut wal, &mut hard, 5);
    assert!(
        wal.allocated_bytes() > wal.log_bytes(),
        "preallocated ahead"
    );
    append(&mut wal, &mut hard, 95);
    let segments = wal.segment_names();
    assert!(segments.len() >= 3, "{segments:?}");
    for name in &segments[..segments.len() - 1] {
        let len = fs::metadata(dir.path().join(name)).unwrap().len();
        assert!(len <= segment, "{name}: {len} bytes");
        assert!(len >= segment / 2, "{name}: {len} bytes, rolled early");
    }
    assert!(wal.allocated_bytes() <= segment);
    drop(wal);
    assert_eq!(open(dir.path(), segment).unwrap().1, hard);
    // Reopened with a larger segment size, the newest segment goes on growing.
    let (mut wal, mut again) = open(dir.path(), 1 << 20).unwrap();
    append(&mut wal, &mut again, 100);
    assert_eq!(wal.segment_names(), segments);
}

#[test]
fn the_vote_survives_the_deletion_of_the_segments_that_recorded_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut hard) = open(dir.path(), 2048).unwrap();
    vote(&mut wal, &mut hard, 4, 2);
    append(&mut wal, &mut hard, 100);
    compact(&mut wal, &mut hard, 100);
    assert!(
        !dir.path().join(segment_file_name(1)).exists(),
        "the vote's segment was deleted"
    );
    drop(wal);
    let (_, recovered) = open(dir.path(), 2048).unwrap();
    assert_eq!(recovered.current_term, 4);
    assert_eq!(recovered.voted_for, Some(NodeId(2)));
    assert_eq!(recovered, hard);
}

#[test]
fn a_corrupt_newest_snapshot_falls_back_to_the_previous_one_while_the_wal_covers_it() {
    let dir = tempfile::tempdir().unwrap();
    // Segments large enough that nothing is deleted: the WAL covers everything.
    let (mut wal, mut hard) = open(dir.path(), 1 << 20).unwrap();
    vote(&mut wal, &mut hard, 1, 3);
    append(&mut wal, &mut hard, 40);
    compact(&mut wal, &mut hard, 20);
    let at_20 = hard.snapshot.clone();
    append(&mut wal, &mut hard, 20);
    compact(&mut wal, &mut hard, 50);
    append(&mut wal, &mut hard, 3);
    drop(wal);
    let newest = dir.path().join(snapshot_file_name(50));
    let mut bytes = fs::read(&newest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&newest, &bytes).unwrap();
    let (mut wal, recovered) = open(dir.path(), 1 << 20).unwrap();
    assert_eq!(recovered.snapshot, at_20, "the previous snapshot");
    assert_eq!(last_index(&recovered), last_index(&hard));
    assert_eq!(recovered.log.len(), 43, "entries 21..=63");
    assert_eq!(recovered.log[30..], hard.log[..]);
    assert_eq!(recovered.current_term, 1);
    assert!(!newest.exists());
    assert!(dir
        .path()
        .join(format!("{}.corrupt", snapshot_file_name(50)))
        .exists());
    // The next snapshot goes on from there.
    let mut hard = recovered;
    compact(&mut wal, &mut hard, 60);
    drop(wal);
    assert_eq!(open(dir.path(), 1 << 20).unwrap().1, hard);
}

#[test]
fn a_corrupt_newest_snapshot_the_wal_no_longer_covers_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut hard) = open(dir.path(), 2048).unwrap();
    vote(&mut wal, &mut hard, 1, 3);
    append(&mut wal, &mut hard, 60);
    compact(&mut wal, &mut hard, 30);
    append(&mut wal, &mut hard, 60);
    compact(&mut wal, &mut hard, 110);
    drop(wal);
    let newest = dir.path().join(snapshot_file_name(110));
    for damage in ["empty", "flipped"] {
        let good = fs::read(&newest).unwrap();
        let bad = if damage == "empty" {
            Vec::new()
        } else {
            let mut b = good.clone();
            b[60] ^= 4;
            b
        };
        fs::write(&newest, &bad).unwrap();
        let before = names(dir.path());
        let err = open(dir.path(), 2048).err().expect("refused");
        let shown = err.to_string();
        assert!(
            matches!(err, WalError::CorruptSnapshot { .. }),
            "{damage}: {shown}"
        );
        assert!(shown.contains(&newest.display().to_string()), "{shown}");
        assert!(
            shown.contains("empty file") || shown.contains("CRC-32C mismatch"),
            "{shown}"
        );
        assert!(shown.contains("previous snapshot (index 30)"), "{shown}");
        assert_eq!(shown.lines().count(), 1, "{shown}");
        assert_eq!(names(dir.path()), before, "a refused directory is changed");
        assert_eq!(fs::read(&newest).unwrap(), bad);
        fs::write(&newest, &good).unwrap();
    }
    assert_eq!(open(dir.path(), 2048).unwrap().1, hard);
}

#[test]
fn the_only_snapshot_corrupt_is_an_error_never_an_empty_state() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut hard) = open(dir.path(), 2048).unwrap();
    append(&mut wal, &mut hard, 60);
    compact(&mut wal, &mut hard, 50);
    drop(wal);
    let snap = dir.path().join(snapshot_file_name(50));
    fs::write(&snap, b"RAFTSNP\n").unwrap();
    let shown = open(dir.path(), 2048).err().expect("refused").to_string();
    assert!(shown.contains(&snap.display().to_string()), "{shown}");
    assert!(shown.contains("shorter than a snapshot header"), "{shown}");
    // And with no WAL segment at all, a snapshot is not a whole state either.
    let dir = tempfile::tempdir().unwrap();
    let bytes = encode_snapshot(ID, &sample_snapshot());
    fs::write(dir.path().join(snapshot_file_name(41)), bytes).unwrap();
    let shown = open(dir.path(), 2048).err().expect("refused").to_string();
    assert!(shown.contains("no WAL segment"), "{shown}");
}

#[test]
fn a_torn_temporary_snapshot_is_ignored_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut hard) = open(dir.path(), 4096).unwrap();
    append(&mut wal, &mut hard, 20);
    compact(&mut wal, &mut hard, 10);
    append(&mut wal, &mut hard, 5);
    drop(wal);
    // A snapshot write cut short before its rename.
    let tmp = dir.path().join(format!("{}.tmp", snapshot_file_name(24)));
    let whole = encode_snapshot(ID, &sample_snapshot());
    fs::write(&tmp, &whole[..whole.len() / 2]).unwrap();
    let (_, recovered) = open(dir.path(), 4096).unwrap();
    assert_eq!(recovered, hard);
    assert!(!tmp.exists());
}

#[test]
fn an_installed_snapshot_that_discards_the_log_is_recovered_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut hard) = open(dir.path(), 4096).unwrap();
    vote(&mut wal, &mut hard, 1, 1);
    append(&mut wal, &mut hard, 10);
    // A leader's snapshot at 20 whose term does not match: the whole log goes.
    hard.current_term = 3;
    hard.voted_for = None;
    hard.log.clear();
    hard.snapshot = Snapshot {
        last_included_index: 20,
        last_included_term: 3,
        config: None,
        data: b"leader's image".to_vec(),
    };
    let persist = Persist {
        term_or_vote: true,
        truncated_after: Some(20),
        snapshot: true,
        ..Persist::default()
    };
    wal.stage(&hard, &persist).unwrap();
    wal.sync().unwrap();
    append(&mut wal, &mut hard, 2);
    drop(wal);
    let (_, recovered) = open(dir.path(), 4096).unwrap();
    assert_eq!(recovered, hard);
    assert_eq!(last_index(&recovered), 22);
}

#[test]
fn a_snapshot_of_another_node_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut hard) = open(dir.path(), 4096).unwrap();
    append(&mut wal, &mut hard, 20);
    compact(&mut wal, &mut hard, 10);
    drop(wal);
    let other = WalIdentity { node_id: 9, ..ID };
    let snapshot = Snapshot {
        last_included_index: 10,
        ..hard.snapshot.clone()
    };
    fs::write(
        dir.path().join(snapshot_file_name(10)),
        encode_snapshot(other, &snapshot),
    )
    .unwrap();
    let shown = open(dir.path(), 4096).err().expect("refused").to_string();
    assert!(
        shown.contains("belongs to node 9 of this cluster, not to node 3"),
        "{shown}"
    );
}

#[test]
fn an_old_single_file_wal_opens_as_the_first_segment() {
    let dir = tempfile::tempdir().unwrap();
    // A WAL as the single-file version wrote it: DIR/raft.wal, header and frames.
    let header = WalHeader {
        cluster_id: ID.cluster_id,
        node_id: ID.node_id,
        salt: 99,
    };
    let mut hard = Hard {
        current_term: 2,
        voted_for: Some(NodeId(1)),
        ..Hard::default()
    };
    let mut file = Vec::new();
    for i in 1..=3u64 {
        hard.log.push(Entry {
            term: 2,
            command: format!("old {i}"),
        });
        let persist = Persist {
            term_or_vote: i == 1,
            appended_from: Some(i),
            ..Persist::default()
        };
        let mut batch = Vec::new();
        encode_persist(&hard, &persist, &mut batch).unwrap();
        encode_batch(&header, file.len() as u64, &batch, &mut file).unwrap();
    }
    fs::write(dir.path().join(WAL_FILE_NAME), &file).unwrap();
    let (mut wal, recovered) = open(dir.path(), 1024).unwrap();
    assert_eq!(recovered, hard);
    // It goes on as segment 0: appends roll into new segments, compaction deletes it.
    append(&mut wal, &mut hard, 30);
    assert_eq!(wal.segment_names()[0], WAL_FILE_NAME);
    compact(&mut wal, &mut hard, 30);
    assert!(!dir.path().join(WAL_FILE_NAME).exists());
    drop(wal);
    assert_eq!(open(dir.path(), 1024).unwrap().1, hard);
}

/// The node's snapshot writer thread writes the file beside the WAL, then the compaction is
/// staged (`node/snapshot_writer.rs`): a crash between the two recovers from the file, and
/// the staging adopts the file as it is and only then deletes the segments it covers.
#[test]
fn a_snapshot_written_beside_the_wal_is_recovered_and_then_adopted() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut hard) = open(dir.path(), 4096).unwrap();
    vote(&mut wal, &mut hard, 2, 1);
    append(&mut wal, &mut hard, 100);
    let segments = wal.segment_names();
    assert!(segments.len() > 2, "{segments:?}");

    // Written, not yet staged: nothing else changed, and a crash now recovers from it.
    write_snapshot(&mut DirFs::new(dir.path()), ID, &snapshot_at(&hard, 60)).unwrap();
    assert_eq!(wal.segment_names(), segments);
    drop(wal);
    let (mut wal, recovered) = open(dir.path(), 4096).unwrap();
    let mut expected = hard.clone();
    expected.snapshot = snapshot_at(&hard, 60);
    expected.log.drain(..60);
    assert_eq!(
        recovered, expected,
        "the snapshot file and the WAL after it"
    );
    assert_eq!(wal.segment_names(), segments, "no segment deleted yet");
    let mut hard = recovered;

    // Announced, then staged: the file is adopted (the same inode: never rewritten), the
    // segments it covers go.
    append(&mut wal, &mut hard, 20);
    write_snapshot(&mut DirFs::new(dir.path()), ID, &snapshot_at(&hard, 110)).unwrap();
    let file = dir.path().join(snapshot_file_name(110));
    let inode = fs::metadata(&file).unwrap().ino();
    wal.snapshot_written(110);
    compact(&mut wal, &mut hard, 110);
    assert_eq!(fs::metadata(&file).unwrap().ino(), inode);
    assert_eq!(wal.snapshot_indices(), &[60, 110]);
    assert!(!wal.segment_names().contains(&segments[0]));
    drop(wal);
    let (_, recovered) = open(dir.path(), 4096).unwrap();
    assert_eq!(recovered, hard);
}

/// A written snapshot that a newer one (installed from the leader) overtook before its
/// compaction was staged is removed, never kept as the log's start.
#[test]
fn a_written_snapshot_a_newer_one_overtook_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut hard) = open(dir.path(), 4096).unwrap();
    vote(&mut wal, &mut hard, 2, 1);
    append(&mut wal, &mut hard, 50);
    let old = snapshot_at(&hard, 20);
    compact(&mut wal, &mut hard, 40);
    write_snapshot(&mut DirFs::new(dir.path()), ID, &old).unwrap();
    assert!(dir.path().join(snapshot_file_name(20)).exists());
    wal.snapshot_written(20);
    assert!(!dir.path().join(snapshot_file_name(20)).exists());
    assert_eq!(wal.snapshot_indices(), &[40]);
    drop(wal);
    let (_, recovered) = open(dir.path(), 4096).unwrap();
    assert_eq!(recovered, hard);
}
