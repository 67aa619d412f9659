//! Log compaction (§7, Figure 13): a server replaces the applied prefix of its log with a
//! snapshot of its state machine, and a leader sends its snapshot to a follower that needs
//! entries it no longer has (InstallSnapshot).
//!
//! The snapshot is part of the hard state ([`crate::HardState::snapshot`]); the log holds the
//! entries after it, and [`Server::entry`] and [`Server::term_at`] are the one place that
//! converts indices to positions. Invariant: a snapshot holds only committed state, so every
//! server's copy of the entries it covers is the same, and an AppendEntries that starts inside
//! a follower's snapshot matches there (replication.rs).

use super::error::CoreError;
use super::message::{InstallSnapshot, Message};
use super::rules::Rules;
use super::server::{Config, Output, Server};
use super::types::{Index, NodeId, Payload, Role, Snapshot};

impl<C: Clone + Payload> Server<C> {
    /// §7: the driver's state machine, which has applied the log up to `index`, made the image
    /// `data`; the entries up to `index` become a snapshot of it. A request at or below the
    /// current snapshot is stale and changes nothing; one past what was applied is a violated
    /// invariant (the image would hold entries that may never commit).
    pub(crate) fn on_compact<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        index: Index,
        data: Vec<u8>,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        if index <= self.snapshot_index() {
            return Ok(());
        }
        let limit = cfg
            .rules
            .compact_limit(self.last_applied, self.last_log_index());
        let Some(last_included_term) = self.term_at(index).filter(|_| index <= limit) else {
            return Err(CoreError::CompactBeyondApplied {
                index,
                last_applied: self.last_applied,
            });
        };
        let config = self.config_entry_at(index);
        let covered = self
            .log_position(index)
            .map_or(0, |p| p.saturating_add(1))
            .min(self.hard.log.len());
        self.hard.log.drain(..covered);
        self.hard.snapshot = Snapshot {
            last_included_index: index,
            last_included_term,
            config,
            data,
        };
        // The image holds what was applied up to `index` (the whole of last_applied unless the
        // driver compacted less).
        self.last_applied = self.last_applied.max(index);
        // Writing the snapshot makes the entries it covers durable, a leader's own ones too.
        if self.role == Role::Leader {
            self.leader.persisted_index = self.leader.persisted_index.max(index);
        }
        out.persist.snapshot = true;
        Ok(())
    }

    /// Figure 13, InstallSnapshot receiver. Replies with an AppendEntriesResponse: on success,
    /// its match_index is the snapshot's last included index.
    pub(crate) fn on_install_snapshot<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        leader: NodeId,
        request: InstallSnapshot,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        // 1. Reply immediately if term < current_term; otherwise the sender leads this term.
        if !self.hears_from_leader(cfg, leader, request.term, out) {
            return Ok(());
        }

        let snapshot = request.snapshot;
        let index = snapshot.last_included_index;
        // A snapshot covering no more than this server knows committed says nothing new: its
        // log holds those entries (or its own snapshot does), and they match the leader's.
        if !cfg.rules.installs_snapshot(index, self.commit_index) {
            out.send(leader, self.append_reply(true, index, request.read_round));
            return Ok(());
        }
        // 6. If an existing entry has the same index and term as the snapshot's last included
        //    entry, retain the entries following it; 7. otherwise discard the entire log.
        let own_term = self.term_at(index);
        if cfg
            .rules
            .retains_log_after_snapshot(own_term, snapshot.last_included_term)
        {
            let covered = self
                .log_position(index)
                .map_or(0, |p| p.saturating_add(1))
                .min(self.hard.log.len());
            self.hard.log.drain(..covered);
        } else {
            self.hard.log.clear();
            out.persist.truncated_after = Some(index);
            out.persist.appended_from = None;
        }
        // 8. Reset the state machine from the snapshot (the driver does, on `restore`), and
        //    load the snapshot's cluster configuration unless the kept log has a later one.
        self.hard.snapshot = snapshot;
        self.commit_index = cfg.rules.commit_after_install(index, self.commit_index);
        self.last_applied = index;
        self.rebuild_config();
        out.restore = true;
        out.persist.snapshot = true;
        // The reply acknowledges the snapshot's index only: the entries kept after it were
        // never checked against this leader's.
        out.send(leader, self.append_reply(true, index, request.read_round));
        Ok(())
    }

    /// Leaders: the InstallSnapshot for a follower whose next entries were compacted away.
    pub(crate) fn install_snapshot_request(&self) -> Message<C> {
        Message::InstallSnapshot(InstallSnapshot {
            term: self.hard.current_term,
            snapshot: self.hard.snapshot.clone(),
            read_round: self.leader.read_round,
        })
    }
}
