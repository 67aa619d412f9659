//! The node's WAL, timed: each sync that wrote a frame is one observation of the fsync
//! histogram (`raft_wal_fsync_duration_seconds`). A wrapper, so that the storage code and the
//! replica (which the simulator drives with a fake disk) know nothing of metrics.

use crate::kv::Command;
use crate::metrics::NodeMetrics;
use crate::storage::{Durable, Wal, WalError};
use raft_core::{HardState, Persist};
use std::sync::Arc;
use std::time::Instant;

pub(crate) struct MeteredWal {
    wal: Wal<Command>,
    metrics: Arc<NodeMetrics>,
}

impl MeteredWal {
    pub(crate) fn new(wal: Wal<Command>, metrics: Arc<NodeMetrics>) -> Self {
        MeteredWal { wal, metrics }
    }

    /// The WAL's directory (where the snapshot writer writes).
    pub(crate) fn dir(&self) -> &std::path::Path {
        self.wal.dir()
    }

    /// The cluster and node ids the WAL's files carry.
    pub(crate) fn identity(&self) -> crate::storage::WalIdentity {
        self.wal.identity()
    }
}

impl Durable<Command> for MeteredWal {
    type Error = WalError;

    fn stage(&mut self, hard: &HardState<Command>, persist: &Persist) -> Result<(), WalError> {
        self.wal.stage(hard, persist)
    }

    fn snapshot_written(&mut self, index: raft_core::Index) {
        self.wal.snapshot_written(index)
    }

    /// A sync with nothing staged writes nothing, and is not an observation.
    fn sync(&mut self) -> Result<(), WalError> {
        let started = Instant::now();
        if self.wal.sync()? {
            self.metrics.fsync.observe(started.elapsed());
        }
        Ok(())
    }
}
