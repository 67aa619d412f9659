//! The snapshot writer: the thread that encodes the image of a snapshot the replica took (from
//! an O(1) copy of the store, `kv::ImageSource`), and writes and fsyncs its file, so that the
//! event loop keeps serving meanwhile (an image of tens of MB took 0.2 to
//! 0.8 s to write and fsync, all of it a stall of every client when it ran on the loop).
//!
//! One write at a time: the replica hands out a snapshot only when none is in flight
//! ([`crate::node::replica::Replica::defer_snapshot_writes`]). The thread writes it with
//! `storage::write_snapshot` and reports to the event loop through its input channel
//! ([`Input::SnapshotWritten`]); the loop then steps the compaction.
//!
//! **Why no acknowledged write is lost, whenever the process dies.** The snapshot holds only
//! applied, hence committed, entries, which the WAL also holds until the compaction; the WAL
//! loses nothing until then.
//!
//! 1. While the thread writes: the file is `snap-N.snap.tmp`, which recovery never takes for
//!    a snapshot (it is removed). The WAL and the older snapshots are untouched: recovery is
//!    what it would have been without this snapshot.
//! 2. After the rename and the directory's fsync, before the loop hears of it: `snap-N.snap`
//!    is whole (fsynced before its rename) and its CRC holds. Recovery starts from it and
//!    replays the segments on top of it, skipping the entries at or below N, which it holds;
//!    nothing after N was removed. Without a WAL record of it, the file is still a snapshot of
//!    committed entries, the same on every server.
//! 3. The loop steps `Event::Compact` at N: the WAL adopts the file
//!    ([`crate::storage::Wal::snapshot_written`]), stages its record, and only now deletes the
//!    segments whose entries all lie at or below N and the snapshots older than the newest
//!    two. Everything those held is in the durable file of step 2.
//!
//! A write that fails (an fsync above all: the kernel may have dropped the dirty pages, and a
//! retry could report success over lost bytes) stops the node, as a failed WAL fsync does.

use super::input::Input;
use super::replica::SnapshotJob;
use crate::storage::{write_snapshot, DirFs, SnapshotWriteError, WalIdentity};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;

/// Where snapshot files go, and the write in flight.
pub(crate) struct SnapshotWriter {
    dir: PathBuf,
    identity: WalIdentity,
    inputs: mpsc::Sender<Input>,
    in_flight: Option<thread::JoinHandle<()>>,
}

impl SnapshotWriter {
    /// A writer into the data directory `dir` of the node `identity`, reporting to the event
    /// loop through `inputs`.
    pub(crate) fn new(dir: PathBuf, identity: WalIdentity, inputs: mpsc::Sender<Input>) -> Self {
        SnapshotWriter {
            dir,
            identity,
            inputs,
            in_flight: None,
        }
    }

    /// Starts encoding and writing `job` on a thread of its own; its end arrives as
    /// [`Input::SnapshotWritten`]. An error if the thread cannot start.
    pub(crate) fn start(&mut self, job: SnapshotJob) -> anyhow::Result<()> {
        self.finish();
        let (dir, identity, inputs) = (self.dir.clone(), self.identity, self.inputs.clone());
        let handle = thread::Builder::new()
            .name("raft-snapshot-writer".into())
            .spawn(move || {
                let index = job.last_included_index;
                // O(store), here rather than on the event loop.
                let snapshot = job.encode();
                let mut fs = DirFs::new(&dir);
                let result = match write_snapshot(&mut fs, identity, &snapshot) {
                    Ok(_) => Ok(snapshot),
                    Err((name, op, error)) => Err(SnapshotWriteError {
                        index,
                        path: dir.join(name),
                        op,
                        error,
                    }),
                };
                // The loop has stopped if this fails; nothing is left to tell.
                let _ = inputs.send(Input::SnapshotWritten(result));
            })?;
        self.in_flight = Some(handle);
        Ok(())
    }

    /// Waits for the write in flight, if any (its report was sent or is being sent): at
    /// shutdown, so that no thread writes into the data directory after the node released
    /// its lock; and once a write reported its end.
    pub(crate) fn finish(&mut self) {
        if let Some(handle) = self.in_flight.take() {
            if handle.join().is_err() {
                tracing::error!("the snapshot writer thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Command, KvStore, Op};
    use crate::storage::{parse_snapshot_file_name, DirFs, Fs};
    use raft_core::Snapshot;
    use std::time::Duration;

    const ID: WalIdentity = WalIdentity {
        cluster_id: 5,
        node_id: 1,
    };

    fn job(index: raft_core::Index) -> SnapshotJob {
        let mut kv = KvStore::new();
        kv.apply(&Command {
            client_id: 1,
            seq: 1,
            op: Op::Put {
                key: "k".into(),
                value: "v".repeat(100),
            },
        });
        SnapshotJob {
            last_included_index: index,
            last_included_term: 2,
            config: None,
            image: kv.image_source(),
        }
    }

    fn report(inputs: &mpsc::Receiver<Input>) -> Result<Snapshot, SnapshotWriteError> {
        match inputs.recv_timeout(Duration::from_secs(30)) {
            Ok(Input::SnapshotWritten(result)) => result,
            Ok(_) => panic!("another input than the writer's report"),
            Err(e) => panic!("no report from the writer: {e}"),
        }
    }

    /// The writer reports the snapshot back once its file is in place, whole.
    #[test]
    fn a_written_snapshot_is_reported_back_with_its_file_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel();
        let mut writer = SnapshotWriter::new(dir.path().to_path_buf(), ID, tx);
        writer.start(job(42)).unwrap();
        let back = report(&rx).unwrap();
        writer.finish();
        assert_eq!(back, job(42).encode());
        let names = DirFs::new(dir.path()).list().unwrap();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(parse_snapshot_file_name(&names[0]), Some(42));
    }

    /// A write that fails is reported as an error naming the file and the operation (the
    /// event loop then stops the node), never as a written snapshot.
    #[test]
    fn a_failed_write_is_reported_as_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("no-such-dir");
        let (tx, rx) = mpsc::channel();
        let mut writer = SnapshotWriter::new(gone.clone(), ID, tx);
        writer.start(job(9)).unwrap();
        let error = report(&rx).expect_err("a write into a missing directory fails");
        writer.finish();
        assert_eq!((error.index, error.op), (9, "create"));
        assert!(error.path.starts_with(&gone), "{}", error.path.display());
        let line = error.to_string();
        assert!(
            line.contains("snapshot at index 9") && line.contains("create"),
            "{line}"
        );
    }
}
