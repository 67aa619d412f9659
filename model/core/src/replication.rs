//! Log replication and commitment (§5.3, §5.4.2): AppendEntries, its replies, and the leader's
//! commit rule.

use super::error::CoreError;
use super::message::{AppendEntries, AppendEntriesResponse, Message};
use super::progress::Progress;
use super::rules::Rules;
use super::server::{next_index_after, Config, Output, Server, Window};
use super::types::{Entry, Term};
use super::types::{Index, NodeId, Payload, Role, ENTRY_OVERHEAD_BYTES};

impl<C: Clone + Payload> Server<C> {
    /// Leaders: send AppendEntries to every peer, carrying the entries from next_index on
    /// (an empty one is the heartbeat; a pipelining leader's is empty too while its window is
    /// full).
    pub(crate) fn on_heartbeat<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        if self.role != Role::Leader {
            return Ok(());
        }
        for peer in self.replication_peers(cfg) {
            self.send_append(cfg, peer, out)?;
        }
        Ok(())
    }

    /// Candidates: RequestVote to a peer that has not granted its vote; leaders: AppendEntries.
    pub(crate) fn on_resend<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        to: NodeId,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        // A leader sends to the members it tracks, a (pre-)candidate to the voters.
        let voter = to != cfg.id && self.membership(cfg).voters.contains(&to);
        match self.role {
            Role::Leader if self.leader.progress.contains_key(&to) => {
                self.send_append(cfg, to, out)?
            }
            Role::Candidate if voter && !self.votes_granted.contains(&to) => {
                out.send(to, self.request_vote());
            }
            Role::PreCandidate if voter && !self.votes_granted.contains(&to) => {
                out.send(to, Message::PreVote(self.pre_vote_request()?));
            }
            _ => {}
        }
        Ok(())
    }

    /// Sends `peer` its AppendEntries from next_index[peer]: at most max_entries_per_append
    /// entries and max_bytes_per_append bytes of them, but always one (etcd's MaxSizePerMsg),
    /// so leader_commit may lie beyond the last entry sent. A pipelining leader that is not
    /// probing the peer sends no more than its window has room for (none while it is full: a
    /// heartbeat) and moves next_index past what it sent.
    fn send_append<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        peer: NodeId,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        let pipeline = cfg.pipeline.filter(|_| !self.leader.is_probing(peer));
        let (max_entries, max_bytes) = match pipeline {
            None => (cfg.max_entries_per_append, cfg.max_bytes_per_append),
            Some(window) => match self.window_room(peer, window) {
                Some(room) => (
                    cfg.max_entries_per_append.min(room),
                    cfg.max_bytes_per_append,
                ),
                None => (0, 0),
            },
        };
        let request = self.append_entries_for(cfg, peer, max_entries, max_bytes)?;
        match &request {
            Message::AppendEntries(r) if pipeline.is_some() && !r.entries.is_empty() => {
                let last_sent = r.prev_log_index + r.entries.len() as Index;
                let next = next_index_after(last_sent)?;
                if let Some(g) = self.leader.progress.get_mut(&peer) {
                    g.next_index = next;
                    g.match_index = cfg.rules.match_after_send(g.match_index, last_sent);
                }
            }
            // A pipelining leader sends nothing more to a follower that gets its snapshot until
            // the follower acknowledges it (etcd's StateSnapshot): it probes from there.
            Message::InstallSnapshot(_) if cfg.pipeline.is_some() => {
                if let Some(g) = self.leader.progress.get_mut(&peer) {
                    g.probing = true;
                }
            }
            _ => {}
        }
        out.send(peer, request);
        Ok(())
    }

    /// Pipelining leaders, not probing `peer`: while its window has room, send it the entries
    /// from next_index (after an acknowledgement, so a follower that is behind catches up at
    /// network speed rather than one AppendEntries per heartbeat).
    fn fill_window<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        peer: NodeId,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        let Some(window) = cfg.pipeline.filter(|_| !self.leader.is_probing(peer)) else {
            return Ok(());
        };
        // (A peer sent the snapshot is probing again: nothing more until it answers.)
        while self
            .leader
            .progress
            .get(&peer)
            .is_some_and(|g| g.next_index <= self.last_log_index())
            && self.window_room(peer, window).is_some()
            && !self.leader.is_probing(peer)
        {
            self.send_append(cfg, peer, out)?;
        }
        Ok(())
    }

    /// How many more entries `window` lets the leader send to `peer` (`None`: it is full).
    /// The entries in flight are those sent and not acknowledged, from match_index + 1 to
    /// next_index - 1 (after a rejection they may include entries the follower holds but has
    /// not acknowledged; the window is then smaller than it could be, never larger).
    fn window_room(&self, peer: NodeId, window: Window) -> Option<usize> {
        let g = self.leader.progress.get(&peer);
        let next = g.map_or(0, |g| g.next_index);
        let matched = g.map_or(0, |g| g.match_index);
        let in_flight =
            usize::try_from(next.saturating_sub(matched).saturating_sub(1)).unwrap_or(usize::MAX);
        let room = window.entries.saturating_sub(in_flight);
        if room == 0 {
            return None;
        }
        if window.bytes < usize::MAX {
            let in_flight_bytes: usize = self
                .entries_from(matched.saturating_add(1))
                .iter()
                .take(in_flight)
                .map(|e| ENTRY_OVERHEAD_BYTES.saturating_add(e.command.payload_bytes()))
                .fold(0, usize::saturating_add);
            if in_flight_bytes >= window.bytes {
                return None;
            }
        }
        Some(room)
    }

    /// The AppendEntries for `peer` from next_index[peer], with at most `max_entries` entries
    /// and `max_bytes` bytes of them (but one, if `max_entries` is not 0); the leader's
    /// snapshot instead if the entry before next_index was compacted away (§7).
    fn append_entries_for<R: Rules>(
        &self,
        cfg: &Config<R>,
        peer: NodeId,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Message<C>, CoreError> {
        let g = self.leader.progress.get(&peer);
        let next = g.map(|g| g.next_index);
        let matched = g.map_or(0, |g| g.match_index);
        // Invariant (Figure 2, leaders): match_index < next_index <= last log index + 1.
        let prev_log_index = match next {
            Some(n) if n > matched && n <= next_index_after(self.last_log_index())? => n - 1,
            _ => {
                return Err(CoreError::NextIndexOutOfRange {
                    peer,
                    next_index: next,
                    last_log_index: self.last_log_index(),
                })
            }
        };
        let Some(prev_log_term) = cfg.rules.prev_log_term(
            self.term_at(prev_log_index),
            self.snapshot().last_included_term,
        ) else {
            return Ok(self.install_snapshot_request());
        };
        Ok(Message::AppendEntries(AppendEntries {
            term: self.hard.current_term,
            prev_log_index,
            prev_log_term,
            entries: batch(
                self.entries_from(prev_log_index + 1),
                max_entries,
                max_bytes,
            ),
            leader_commit: self.commit_index,
            read_round: self.leader.read_round,
        }))
    }

    /// §7: the part of `request` this server's snapshot covers is committed, so it matches
    /// the leader's log; a request that starts inside the snapshot is checked from the
    /// snapshot's index on. Returns the request's prev_log_index and prev_log_term and
    /// entries after skipping that part (if all of it lies inside, a prev_log_index below the
    /// snapshot's index and no entries: nothing to check).
    fn skip_compacted<'a>(&self, request: &'a AppendEntries<C>) -> (Index, Term, &'a [Entry<C>]) {
        let snapshot_index = self.snapshot_index();
        if request.prev_log_index >= snapshot_index {
            return (
                request.prev_log_index,
                request.prev_log_term,
                &request.entries,
            );
        }
        let inside = usize::try_from(snapshot_index - request.prev_log_index)
            .unwrap_or(usize::MAX)
            .min(request.entries.len());
        let prev_log_term = match inside {
            0 => request.prev_log_term,
            k => request.entries[k - 1].term,
        };
        (
            request.prev_log_index + inside as Index,
            prev_log_term,
            &request.entries[inside..],
        )
    }

    /// A leader's request (AppendEntries, InstallSnapshot) of `term`, step 1 of both
    /// receivers: one of an earlier term is refused (§5.1) with this server's later term and
    /// no read round (a leader of that later term may be the same server, whose rounds
    /// started afresh; found by the simulator's partition tests, and by the gate's
    /// quick-read-index-three-terms); otherwise its sender leads this term, and a candidate
    /// (or anyone) hearing from it becomes its follower (§5.2). Returns whether the request
    /// is to be acted on.
    pub(crate) fn hears_from_leader<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        leader: NodeId,
        term: Term,
        out: &mut Output<C>,
    ) -> bool {
        let current = self.hard.current_term;
        if !cfg.rules.accepts_append_term(term, current) {
            out.send(leader, self.append_reply(false, self.last_log_index(), 0));
            return false;
        }
        if term == current && self.role != Role::Follower && cfg.rules.recognizes_leader() {
            self.become_follower();
        }
        self.leader_id = Some(leader);
        out.reset_election_timer = true;
        true
    }

    /// AppendEntries receiver (Figure 2).
    pub(crate) fn on_append_entries<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        leader: NodeId,
        request: AppendEntries<C>,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        // 1. Reply false if term < current_term (§5.1).
        if !self.hears_from_leader(cfg, leader, request.term, out) {
            return Ok(());
        }

        // 2. Reply false if the log has no entry at prev_log_index whose term is prev_log_term
        //    (entries inside the snapshot match: `skip_compacted`).
        let (prev_log_index, prev_log_term, entries) = self.skip_compacted(&request);
        let prev = if prev_log_index < self.snapshot_index()
            || self.term_at(prev_log_index) == Some(prev_log_term)
        {
            prev_log_index
        } else {
            match cfg
                .rules
                .on_prev_log_mismatch(prev_log_index, self.last_log_index())
            {
                Some(prev) => prev,
                None => {
                    let hint = if cfg.fast_backup {
                        self.conflict_hint(prev_log_index)
                    } else {
                        self.last_log_index()
                    };
                    out.send(leader, self.append_reply(false, hint, request.read_round));
                    return Ok(());
                }
            }
        };

        // 3. If an existing entry conflicts with a new one (same index, different term), delete it
        //    and all that follow. 4. Append any new entries not already in the log. A matching
        //    entry is never deleted: the request may be stale or duplicated (§5.3).
        if cfg.rules.truncates_matching_suffix() {
            self.truncate_after(leader, prev, out)?;
        }
        let mut index = prev;
        for entry in entries {
            index = next_index_after(index)?;
            match self.term_at(index) {
                Some(t) if t == entry.term => continue,
                Some(_) => self.truncate_after(leader, index - 1, out)?,
                None => {}
            }
            self.hard.log.push(entry.clone());
            // A configuration takes effect once appended (thesis §4.1).
            self.config_appended(cfg, index)?;
            let first_new = out.persist.appended_from.map_or(index, |f| f.min(index));
            out.persist.appended_from = Some(first_new);
        }
        let last_new = index;

        // 5. If leader_commit > commit_index, set commit_index = min(leader_commit, index of last
        //    new entry) — but never lower it: a request covering fewer entries than this server
        //    already knows committed (reordered, or sent after next_index moved back) says
        //    nothing new, and commit_index only grows while the server is up.
        if request.leader_commit > self.commit_index {
            self.commit_index =
                cfg.rules
                    .follower_commit(request.leader_commit, last_new, self.commit_index);
            self.apply_committed(out)?;
        }
        out.send(
            leader,
            self.append_reply(true, last_new, request.read_round),
        );
        Ok(())
    }

    /// [`Config::fast_backup`]'s rejection hint: if the log holds an entry of another term at
    /// `prev_log_index`, the index just before this log's first entry of that term (so the
    /// leader skips the whole conflicting term at once); otherwise the last log index.
    fn conflict_hint(&self, prev_log_index: Index) -> Index {
        match self.term_at(prev_log_index) {
            Some(t) if prev_log_index > 0 => {
                let mut first = prev_log_index;
                while first > 1 && self.term_at(first - 1) == Some(t) {
                    first -= 1;
                }
                first - 1
            }
            _ => self.last_log_index(),
        }
    }

    pub(crate) fn append_reply(
        &self,
        success: bool,
        match_index: Index,
        read_round: u64,
    ) -> AppendEntriesResponse {
        AppendEntriesResponse {
            term: self.hard.current_term,
            success,
            match_index,
            read_round,
        }
    }

    /// Deletes the entries after `index`. Deleting a committed entry is a violated invariant
    /// (Leader Completeness, §5.4: no leader of a later term lacks it), never carried out.
    fn truncate_after(
        &mut self,
        leader: NodeId,
        index: Index,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        if index >= self.last_log_index() {
            return Ok(());
        }
        if index < self.commit_index {
            return Err(CoreError::DeletesCommittedEntry {
                leader,
                index: index + 1,
                commit_index: self.commit_index,
            });
        }
        let keep =
            self.log_position(next_index_after(index)?)
                .ok_or(CoreError::CompactedEntry {
                    index: index + 1,
                    snapshot_index: self.snapshot_index(),
                })?;
        self.hard.log.truncate(keep);
        self.config_truncated(index);
        let after = out.persist.truncated_after.map_or(index, |a| a.min(index));
        out.persist.truncated_after = Some(after);
        if let Some(from) = out.persist.appended_from {
            if from > index {
                out.persist.appended_from = None;
            }
        }
        Ok(())
    }

    /// Leaders: on success, update match_index and next_index from the acknowledged request; on
    /// failure, move next_index back (the follower's reply is a hint) and probe again at once.
    pub(crate) fn on_append_response<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        follower: NodeId,
        reply: AppendEntriesResponse,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        if !self.leads_the_term_of(cfg, reply.term) {
            return Ok(());
        }
        let Some(&Progress {
            next_index: next,
            match_index: matched,
            ..
        }) = self.leader.progress.get(&follower)
        else {
            return Ok(()); // not a peer of this server
        };
        // Any reply of this term, success or not, confirms the leadership for its read round
        // (read.rs).
        self.note_read_ack(follower, reply.read_round)?;
        // CheckQuorum (lease.rs): a success shows the follower active, and so does a rejection
        // that moves next_index back; one that moves nothing is stale, or comes from a follower
        // that lost entries it acknowledged and can never accept this leader's appends (issue
        // 38, finding 3): counted, it would keep the leader in office, without a majority that
        // can commit, for ever.
        let back = cfg
            .rules
            .next_index_after_rejection(next, reply.match_index, matched);
        if cfg.check_quorum && cfg.rules.reply_shows_activity(reply.success, back < next) {
            if let Some(g) = self.leader.progress.get_mut(&follower) {
                g.recent_active = true;
            }
        }
        if reply.success {
            // The reply covers entries of this leader's own log (it sent them in its term, and
            // its log only grows while it leads).
            if reply.match_index > self.last_log_index() {
                return Err(CoreError::AckBeyondLog {
                    follower,
                    match_index: reply.match_index,
                    last_log_index: self.last_log_index(),
                });
            }
            let acknowledged = cfg
                .rules
                .acknowledged(reply.match_index, self.last_log_index());
            // A reordered, older acknowledgement never moves match_index back, nor a
            // pipelining leader's next_index (its entries may still be in flight); the
            // first acknowledgement ends a probe.
            let m = matched.max(acknowledged);
            let after = next_index_after(m)?;
            let pipelined = cfg.pipeline.is_some();
            if let Some(g) = self.leader.progress.get_mut(&follower) {
                g.match_index = m;
                g.next_index = if pipelined {
                    g.probing = false;
                    next.max(after)
                } else {
                    after
                };
            }
            self.fill_window(cfg, follower, out)?;
            self.advance_commit_index(cfg, out)?;
            // A transfer waits for the target to catch up (§3.10).
            self.send_timeout_now_if_ready(cfg, out);
            Ok(())
        } else {
            // A pipelining leader's next_index was a guess past what the follower holds: it
            // probes from here on (the rule below moves a probed next_index back at least one
            // entry per rejection; a guess that kept moving forward could loop).
            if cfg.pipeline.is_some() {
                if let Some(g) = self.leader.progress.get_mut(&follower) {
                    g.probing = true;
                }
            }
            if back < next {
                if let Some(g) = self.leader.progress.get_mut(&follower) {
                    g.next_index = back;
                }
                // Probe again at once rather than at the next heartbeat, so that a divergent log
                // is repaired at one step per round trip. Only when next_index moved: a rejection
                // that changes nothing waits for the heartbeat, so no exchange loops at network
                // speed.
                self.on_resend(cfg, follower, out)?;
            }
            Ok(())
        }
    }

    /// Leaders: commit the largest N > commit_index such that a majority has match_index >= N and
    /// log[N].term == current_term (§5.3, §5.4.2). The largest N a majority holds is the
    /// quorum-th highest match index (the leader's own durable log counts as its match). Entries of
    /// earlier terms are never committed by counting replicas (Figure 8): they commit
    /// indirectly with a later entry (and below an earlier-term N no entry is of this term).
    pub(crate) fn advance_commit_index<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        if self.role != Role::Leader {
            return Ok(());
        }
        // The voters of its latest configuration (thesis §4.1, membership.rs).
        let old;
        let m = if cfg.rules.counts_latest_config() {
            self.membership(cfg)
        } else {
            old = self.config_at(cfg, self.commit_index);
            &old
        };
        let counts = |p: &NodeId| {
            cfg.rules
                .counts_toward_quorum(m.voters.contains(p), m.learners.contains(p))
        };
        let mut matches: Vec<Index> = self
            .leader
            .progress
            .iter()
            .filter(|(p, _)| counts(p))
            .map(|(_, g)| g.match_index)
            .collect();
        if cfg.rules.counts_itself(m.voters.contains(&cfg.id)) {
            matches.push(
                cfg.rules
                    .own_match(self.leader.persisted_index, self.last_log_index()),
            );
        }
        matches.sort_unstable_by(|a, b| b.cmp(a));
        let quorum = cfg.rules.quorum(m.voters.len());
        let Some(&n) = matches.get(quorum.saturating_sub(1)) else {
            return Ok(()); // fewer voters than a quorum
        };
        if n <= self.commit_index {
            return Ok(());
        }
        let term = self.term_at(n).ok_or(CoreError::CommitBeyondLog {
            commit_index: n,
            last_log_index: self.last_log_index(),
        })?;
        if cfg.rules.commits_by_counting(term, self.hard.current_term) {
            self.commit_index = n;
            self.apply_committed(out)?;
            // A leader whose removal is now committed steps down (§4.2.2).
            self.step_down_if_removed(cfg);
        }
        Ok(())
    }
}

/// The longest prefix of `entries` within both limits, and never empty when `entries` is not.
fn batch<C: Clone + Payload>(
    entries: &[super::types::Entry<C>],
    max_entries: usize,
    max_bytes: usize,
) -> Vec<super::types::Entry<C>> {
    let mut bytes = 0usize;
    let mut taken = Vec::new();
    for entry in entries.iter().take(max_entries) {
        bytes = bytes
            .saturating_add(ENTRY_OVERHEAD_BYTES.saturating_add(entry.command.payload_bytes()));
        if !taken.is_empty() && bytes > max_bytes {
            break;
        }
        taken.push(entry.clone());
    }
    taken
}
