//! Process tests of the data directory: its lock, the WAL header, torn tails that a client's
//! value cannot turn into fatal corruption, and corruption that is refused. Every test spawns
//! the built raft-node (and raft-cluster) binaries on loopback.

mod common;

use common::*;
use raft_impl::core::Entry;
use raft_impl::kv::{Command as KvCommand, Op, OpResult};
use raft_impl::storage::{
    decode_records, encode_batch, segment_file_name, Record, WalHeader, FILE_HEADER_LEN,
    FRAME_HEADER_LEN, WAL_FILE_NAME,
};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const START: Duration = Duration::from_secs(20);

/// Starts node `id` and waits until it holds its data directory's lock (its pid in LOCK).
fn start_locked(id: u64, cluster_file: &Path, data_dir: &Path, log: &Path) -> Node {
    let mut node = Node::start(id, cluster_file, data_dir, log);
    let pid = node.child.id();
    let locked = wait_until(START, || lock_pid(data_dir) == Some(pid));
    assert!(
        locked && node.is_running(),
        "node {id} did not start: {}",
        node.log_text()
    );
    node
}

#[test]
fn a_second_node_on_a_locked_data_dir_exits_at_once_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cluster_file) = write_cluster(dir.path(), 2);
    let data = dir.path().join("data");
    let mut first = start_locked(0, &cluster_file, &data, &dir.path().join("node-0.log"));
    let holder = first.child.id();
    // The same id and another id of the cluster, on the same directory.
    for id in [0, 1] {
        let out = output_within(
            node_command(id, &cluster_file, &data).env("RUST_LOG", "debug"),
            Duration::from_secs(20),
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "id {id}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "data directory {} is in use by another process (pid {holder};",
                data.display()
            )),
            "id {id}: {stderr}"
        );
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "id {id}: not one line: {stderr}"
        );
        // Refused before the WAL was opened or replayed.
        assert!(!stderr.contains("WAL recovered"), "id {id}: {stderr}");
        assert!(!stderr.contains("panicked"), "id {id}: {stderr}");
        assert!(first.is_running(), "the first node stopped");
    }
    assert_eq!(lock_pid(&data), Some(holder));
    // Once the holder is gone, the directory is free again (no stale lock).
    first.kill9();
    let mut again = start_locked(0, &cluster_file, &data, &dir.path().join("again.log"));
    assert!(again.is_running());
}

#[test]
fn raft_cluster_up_twice_on_one_dir_the_second_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let up = || {
        let mut command = Command::new(CLUSTER);
        command
            .args(["up", "--nodes", "3", "--dir"])
            .arg(dir.path())
            .arg("--node-bin")
            .arg(NODE);
        command
    };
    let mut first = up()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn raft-cluster");
    let nodes_up = wait_until(START, || {
        (0..3).all(|id| lock_pid(&dir.path().join(format!("node-{id}"))).is_some())
    });
    assert!(nodes_up, "the first cluster did not start");
    let cluster_file = dir.path().join("cluster.toml");
    let before = fs::read_to_string(&cluster_file).unwrap();
    let out = output_within(&mut up(), Duration::from_secs(20));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cluster directory {} is in use by another process (pid {};",
            dir.path().display(),
            first.id()
        )),
        "{stderr}"
    );
    assert_eq!(
        fs::read_to_string(&cluster_file).unwrap(),
        before,
        "the second up rewrote the cluster file"
    );
    assert!(matches!(first.try_wait(), Ok(None)), "the first up stopped");
    let put = kv(&cluster_file, &["put", "k", "v"]);
    assert!(put.status.success(), "{put:?}");
    let _ = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status();
    let status = wait_exit(&mut first, Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

/// A frame of the WAL format before version 1 (`len`, CRC-32C of length and payload,
/// payload), which that format's decoder accepted at any offset.
fn old_format_frame(record: &Record<KvCommand>) -> Vec<u8> {
    let payload = postcard::to_allocvec(record).unwrap();
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &payload);
    [&len[..], &crc.to_le_bytes(), &payload].concat()
}

/// Valid frames a client can put into a string value: an old-format frame, and a frame of the
/// current format for another file's salt (found by trying until every byte is ASCII).
fn embeddable_frames() -> String {
    let mut out = String::new();
    for seq in 0.. {
        let record = Record::Entries {
            from: 1,
            entries: vec![Entry {
                term: 1,
                command: KvCommand {
                    client_id: 1,
                    seq,
                    op: Op::Delete { key: "k".into() },
                },
            }],
        };
        if let Ok(s) = String::from_utf8(old_format_frame(&record)) {
            out.push_str(&s);
            break;
        }
    }
    let payload = postcard::to_allocvec(&Record::<KvCommand>::Truncate { after: 0 }).unwrap();
    'forge: for salt in 0u64.. {
        for offset in 1..64 {
            let header = WalHeader {
                cluster_id: 0,
                node_id: 0,
                salt,
            };
            let mut frame = Vec::new();
            encode_batch(&header, offset, &payload, &mut frame).unwrap();
            if let Ok(s) = String::from_utf8(frame) {
                out.push_str(&s);
                break 'forge;
            }
        }
    }
    out
}

#[test]
fn a_value_that_embeds_valid_frames_then_a_torn_tail_the_node_restarts_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, cluster_file) = write_cluster(dir.path(), 1);
    let data = dir.path().join("node-0");
    let log = dir.path().join("node-0.log");
    let mut node = start_locked(0, &cluster_file, &data, &log);
    let put = |key: &str, value: String| {
        let op = Op::Put {
            key: key.into(),
            value,
        };
        assert_eq!(execute(&cluster, op, START), OpResult::Value(None));
    };
    put("k1", "v1".into());
    // The last write: a value with valid frames inside and 64 bytes after them.
    let evil = format!("{}{}", embeddable_frames(), "z".repeat(64));
    put("evil", evil);
    node.kill9();
    // The last sync torn: its last 20 bytes never reached the disk (the embedded frames did).
    let wal = data.join(segment_file_name(1));
    let bytes = fs::read(&wal).unwrap();
    // The log's frames end where the preallocated zeros begin.
    let end = decode_records::<KvCommand>(&bytes).unwrap().valid_len as usize;
    assert!(bytes[end..].iter().all(|b| *b == 0));
    fs::write(&wal, &bytes[..end - 20]).unwrap();
    let _node = start_locked(0, &cluster_file, &data, &log);
    let get = |key: &str| execute(&cluster, Op::Get { key: key.into() }, START);
    assert_eq!(
        get("k1"),
        OpResult::Value(Some("v1".into())),
        "{}",
        node.log_text()
    );
    assert_eq!(get("evil"), OpResult::Value(None));
    let log_text = fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("cutting off a torn WAL tail"),
        "{log_text}"
    );
    assert!(!log_text.contains('\x1b'), "ANSI codes in a log file");
}

/// Runs node 0 of a one-node cluster on `data` until it has synced `k=v`, then kills it.
fn write_some(data: &Path, dir: &Path) -> std::path::PathBuf {
    let (cluster, cluster_file) = write_cluster(dir, 1);
    let mut node = start_locked(0, &cluster_file, data, &dir.join("writer.log"));
    for i in 0..3 {
        let op = Op::Put {
            key: format!("k{i}"),
            value: "v".into(),
        };
        execute(&cluster, op, START);
    }
    node.kill9();
    cluster_file
}

#[test]
fn a_corrupt_wal_before_the_last_sync_is_refused_naming_the_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cluster_file = write_some(&data, dir.path());
    let wal = data.join(segment_file_name(1));
    let mut bytes = fs::read(&wal).unwrap();
    let flip = FILE_HEADER_LEN + FRAME_HEADER_LEN; // the first frame's first payload byte
    bytes[flip] ^= 0x40;
    fs::write(&wal, &bytes).unwrap();
    let out = output_within(
        &mut node_command(0, &cluster_file, &data),
        Duration::from_secs(20),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&wal.display().to_string()), "{stderr}");
    assert!(
        stderr.contains(&format!("byte offset {FILE_HEADER_LEN}: CRC-32C mismatch")),
        "{stderr}"
    );
    assert!(stderr.contains("not a torn tail"), "{stderr}");
    assert_eq!(stderr.matches("CRC-32C mismatch").count(), 1, "{stderr}");
    assert_eq!(fs::read(&wal).unwrap(), bytes, "a refused WAL was modified");
}

#[test]
fn a_data_dir_moved_to_another_node_or_cluster_or_an_old_wal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cluster_file = write_some(&data, dir.path());
    let cluster = raft_impl::config::ClusterConfig::load(&cluster_file).unwrap();
    let run = |cluster_file: &Path, id: u64, data: &Path| {
        let out = output_within(
            &mut node_command(id, cluster_file, data),
            Duration::from_secs(20),
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    };
    // Node 0's directory under id 1 of a two-node cluster with the same id.
    let mut two = cluster.clone();
    // About the data directory, not TLS (node 1 has no certificate): plain TCP.
    two.tls = None;
    two.insecure = true;
    two.nodes.push(raft_impl::config::NodeSpec {
        id: 1,
        peer_addr: free_addr(),
        client_addr: free_addr(),
        initial_member: true,
    });
    let two_file = dir.path().join("two.toml");
    fs::write(&two_file, two.to_toml()).unwrap();
    let stderr = run(&two_file, 1, &data);
    assert!(
        stderr.contains("belongs to node 0 of this cluster, not to node 1"),
        "{stderr}"
    );
    // Under the same id of another cluster.
    let mut other = cluster.clone();
    other.cluster_id = cluster.cluster_id % 1000 + 1;
    other.tls = None;
    other.insecure = true;
    let other_file = dir.path().join("other.toml");
    fs::write(&other_file, other.to_toml()).unwrap();
    let stderr = run(&other_file, 0, &data);
    assert!(
        stderr.contains(&format!(
            "belongs to cluster {}, not to cluster {}",
            cluster.cluster_id, other.cluster_id
        )),
        "{stderr}"
    );
    // A WAL of the format before the header.
    let old = dir.path().join("old");
    fs::create_dir(&old).unwrap();
    let record = Record::<KvCommand>::HardState {
        current_term: 3,
        voted_for: None,
    };
    fs::write(old.join(WAL_FILE_NAME), old_format_frame(&record)).unwrap();
    let stderr = run(&cluster_file, 0, &old);
    assert!(stderr.contains("no WAL header"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn a_wal_error_names_path_and_operation_and_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cluster_file) = write_cluster(dir.path(), 1);
    let file = dir.path().join("a-file");
    fs::write(&file, "").unwrap();
    let data = file.join("data");
    let out = output_within(
        &mut node_command(0, &cluster_file, &data),
        Duration::from_secs(20),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: cannot create directory", data.display())),
        "{stderr}"
    );
    assert_eq!(stderr.matches("(os error 20)").count(), 1, "{stderr}");
}

/// A data directory written through the WAL itself (small segments, two snapshots), whose
/// newest snapshot file is then damaged: the segments it covers are gone, so the node must
/// refuse to start, naming the file, rather than start from an older or empty state.
#[test]
fn a_corrupt_newest_snapshot_the_wal_no_longer_covers_stops_the_node_naming_the_file() {
    use raft_impl::core::{HardState, Persist, Snapshot};
    use raft_impl::storage::{snapshot_file_name, Wal, WalIdentity, WalOptions};
    let dir = tempfile::tempdir().unwrap();
    let (cluster, cluster_file) = write_cluster(dir.path(), 1);
    let data = dir.path().join("data");
    let identity = WalIdentity {
        cluster_id: cluster.cluster_id,
        node_id: 0,
    };
    let options = WalOptions {
        segment_bytes: 2048,
        preallocate: 1024,
    };
    let (mut wal, mut hard): (Wal<KvCommand>, HardState<KvCommand>) =
        Wal::open_with_options(&data, identity, options).unwrap();
    for round in 1..=2u64 {
        for i in 0..40u64 {
            let index = hard.snapshot.last_included_index + hard.log.len() as u64 + 1;
            hard.log.push(Entry {
                term: 1,
                command: KvCommand {
                    client_id: 1,
                    seq: index,
                    op: Op::Put {
                        key: format!("k{i}"),
                        value: "v".repeat(40),
                    },
                },
            });
            let persist = Persist {
                appended_from: Some(index),
                ..Persist::default()
            };
            wal.stage(&hard, &persist).unwrap();
            wal.sync().unwrap();
        }
        let upto = round * 40 - 5;
        let keep = hard
            .log
            .split_off((upto - hard.snapshot.last_included_index) as usize);
        hard.log = keep.into();
        hard.snapshot = Snapshot {
            last_included_index: upto,
            last_included_term: 1,
            config: None,
            data: vec![round as u8; 16],
        };
        let persist = Persist {
            snapshot: true,
            ..Persist::default()
        };
        wal.stage(&hard, &persist).unwrap();
        wal.sync().unwrap();
    }
    drop(wal);
    let newest = data.join(snapshot_file_name(75));
    let mut bytes = fs::read(&newest).unwrap();
    bytes[70] ^= 0x20;
    fs::write(&newest, &bytes).unwrap();
    let out = output_within(
        &mut node_command(0, &cluster_file, &data),
        Duration::from_secs(20),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "snapshot file {} is corrupt (CRC-32C mismatch)",
            newest.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("previous snapshot (index 35)"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(
        fs::read(&newest).unwrap(),
        bytes,
        "a refused file was modified"
    );
}
