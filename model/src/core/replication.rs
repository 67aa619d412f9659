//! Log replication and commitment (§5.3, §5.4.2): AppendEntries, its replies, and the leader's
//! commit rule.

use super::message::Message;
use super::mutant::Mutant;
use super::server::{Config, Output, Server};
use super::types::{Entry, Index, NodeId, Role, Term};

impl<C: Clone> Server<C> {
    /// Leaders: send AppendEntries to every peer, carrying the entries from next_index on
    /// (an empty one is the heartbeat).
    pub(crate) fn on_heartbeat(&mut self, cfg: &Config, out: &mut Output<C>) {
        if self.role != Role::Leader {
            return;
        }
        for peer in &cfg.peers {
            let msg = self.append_entries_for(cfg, *peer);
            out.send(*peer, msg);
        }
    }

    /// Candidates: RequestVote to a peer that has not granted its vote; leaders: AppendEntries.
    pub(crate) fn on_resend(&mut self, cfg: &Config, to: NodeId, out: &mut Output<C>) {
        if !cfg.peers.contains(&to) {
            return;
        }
        match self.role {
            Role::Leader => {
                let msg = self.append_entries_for(cfg, to);
                out.send(to, msg);
            }
            Role::Candidate if !self.votes_granted.contains(&to) => {
                let msg = self.request_vote();
                out.send(to, msg);
            }
            _ => {}
        }
    }

    fn append_entries_for(&self, cfg: &Config, peer: NodeId) -> Message<C> {
        let next = self
            .next_index
            .get(&peer)
            .copied()
            .unwrap_or(self.last_log_index() + 1)
            .clamp(1, self.last_log_index() + 1);
        let prev_log_index = next - 1;
        Message::AppendEntries {
            term: self.hard.current_term,
            prev_log_index,
            prev_log_term: self.term_at(prev_log_index).unwrap_or(0),
            // At most max_entries_per_append entries (etcd's MaxSizePerMsg, by count), so
            // leader_commit may lie beyond the last entry sent.
            entries: self.hard.log[prev_log_index as usize..]
                .iter()
                .take(cfg.max_entries_per_append)
                .cloned()
                .collect(),
            leader_commit: self.commit_index,
        }
    }

    /// AppendEntries receiver (Figure 2).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_append_entries(
        &mut self,
        cfg: &Config,
        leader: NodeId,
        term: Term,
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vec<Entry<C>>,
        leader_commit: Index,
        out: &mut Output<C>,
    ) {
        let current = self.hard.current_term;
        // 1. Reply false if term < current_term (§5.1).
        if term < current && !cfg.is(Mutant::AcceptStaleAppend) {
            out.send(leader, self.append_reply(false, self.last_log_index()));
            return;
        }
        // A candidate (or anyone) hearing from the leader of its own term becomes its follower
        // (§5.2).
        if term == current && self.role != Role::Follower {
            self.become_follower();
        }
        self.leader_id = Some(leader);
        out.reset_election_timer = true;

        // 2. Reply false if the log has no entry at prev_log_index whose term is prev_log_term.
        let matches = self.term_at(prev_log_index) == Some(prev_log_term);
        let prev = if matches {
            prev_log_index
        } else if cfg.is(Mutant::SkipPrevLogCheck) {
            prev_log_index.min(self.last_log_index())
        } else {
            let hint = if cfg.fast_backup {
                self.conflict_hint(prev_log_index)
            } else {
                self.last_log_index()
            };
            out.send(leader, self.append_reply(false, hint));
            return;
        };

        // Defence in depth: a request that conflicts with an entry this server knows is
        // committed can only come from a broken or forged leader (Leader Completeness, §5.4).
        // It is dropped, never applied: committed entries are not deleted. Unreachable in the
        // correct protocol (the checker's bounds never take this branch: their state counts
        // are the same with and without it); off under mutants, whose point is to show what a
        // broken rule does.
        if !cfg.has_mutant() && self.conflicts_with_committed(prev, &entries) {
            return;
        }

        // 3. If an existing entry conflicts with a new one (same index, different term), delete it
        //    and all that follow. 4. Append any new entries not already in the log. A matching
        //    entry is never deleted: the request may be stale or duplicated (§5.3).
        if cfg.is(Mutant::TruncateOnAnyAppend) {
            self.truncate_after(prev, out);
        }
        for (k, entry) in entries.iter().enumerate() {
            let index = prev + 1 + k as Index;
            match self.term_at(index) {
                Some(t) if t == entry.term => continue,
                Some(_) => self.truncate_after(index - 1, out),
                None => {}
            }
            self.hard.log.push(entry.clone());
            let first_new = out.persist.appended_from.map_or(index, |f| f.min(index));
            out.persist.appended_from = Some(first_new);
        }
        let last_new = prev + entries.len() as Index;

        // 5. If leader_commit > commit_index, set commit_index = min(leader_commit, index of last
        //    new entry) — but never lower it: a request covering fewer entries than this server
        //    already knows committed (reordered, or sent after next_index moved back) says
        //    nothing new, and commit_index only grows while the server is up.
        if leader_commit > self.commit_index {
            self.commit_index = if cfg.is(Mutant::FollowerCommitPastMatch) {
                leader_commit
            } else {
                leader_commit.min(last_new).max(self.commit_index)
            };
            self.apply_committed(out);
        }
        out.send(leader, self.append_reply(true, last_new));
    }

    /// Whether appending `entries` after `prev` would delete an entry at or below
    /// commit_index.
    fn conflicts_with_committed(&self, prev: Index, entries: &[Entry<C>]) -> bool {
        entries.iter().enumerate().any(|(k, entry)| {
            let index = prev + 1 + k as Index;
            index <= self.commit_index && self.term_at(index).is_some_and(|t| t != entry.term)
        })
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

    fn append_reply(&self, success: bool, match_index: Index) -> Message<C> {
        Message::AppendEntriesResponse {
            term: self.hard.current_term,
            success,
            match_index,
        }
    }

    fn truncate_after(&mut self, index: Index, out: &mut Output<C>) {
        if index >= self.last_log_index() {
            return;
        }
        self.hard.log.truncate(index as usize);
        let after = out.persist.truncated_after.map_or(index, |a| a.min(index));
        out.persist.truncated_after = Some(after);
        if let Some(from) = out.persist.appended_from {
            if from > index {
                out.persist.appended_from = None;
            }
        }
    }

    /// Leaders: on success, update match_index and next_index from the acknowledged request; on
    /// failure, move next_index back (using the follower's last index as a hint) and retry at
    /// the next heartbeat.
    pub(crate) fn on_append_response(
        &mut self,
        cfg: &Config,
        follower: NodeId,
        term: Term,
        success: bool,
        match_index: Index,
        out: &mut Output<C>,
    ) {
        if self.role != Role::Leader
            || term != self.hard.current_term
            || !self.next_index.contains_key(&follower)
        {
            return;
        }
        let matched = self.match_index.get(&follower).copied().unwrap_or(0);
        if success {
            let acknowledged = if cfg.is(Mutant::MatchIndexFromNextIndex) {
                self.last_log_index()
            } else {
                match_index.min(self.last_log_index())
            };
            let m = matched.max(acknowledged);
            self.match_index.insert(follower, m);
            self.next_index.insert(follower, m + 1);
            self.advance_commit_index(cfg, out);
        } else {
            let next = self.next_index[&follower];
            let back = next.saturating_sub(1).min(match_index + 1);
            self.next_index
                .insert(follower, back.max(matched + 1).max(1));
        }
    }

    /// Leaders: commit the largest N > commit_index such that a majority has match_index >= N and
    /// log[N].term == current_term (§5.3, §5.4.2). Entries of earlier terms are never committed by
    /// counting replicas (Figure 8); they commit indirectly with a later entry.
    pub(crate) fn advance_commit_index(&mut self, cfg: &Config, out: &mut Output<C>) {
        if self.role != Role::Leader {
            return;
        }
        let mut n = self.last_log_index();
        while n > self.commit_index {
            let own_term = self.term_at(n) == Some(self.hard.current_term);
            if !own_term && !cfg.is(Mutant::CommitPreviousTerm) {
                // Earlier entries have earlier terms too: nothing below commits by counting.
                if self.term_at(n) < Some(self.hard.current_term) {
                    break;
                }
                n -= 1;
                continue;
            }
            let replicas = 1 + self.match_index.values().filter(|m| **m >= n).count();
            if replicas >= cfg.quorum() {
                self.commit_index = n;
                self.apply_committed(out);
                break;
            }
            n -= 1;
        }
    }
}
