//! Diagnoses a leader and a follower stuck on the same AppendEntries. In the correct protocol a
//! rejection moves the leader's next_index back, so the same rejection does not repeat; it
//! repeats when a follower's log lost entries it had acknowledged (disk damage to its last
//! synced records), because next_index never goes to or below match_index. Nothing in the
//! protocol can repair that; an operator must. So both sides say so, loudly and at a bounded
//! rate, with the indices involved. Pure bookkeeping: no protocol decision lives here.

use raft_core::{Index, NodeId, Term};
use std::collections::BTreeMap;
use std::time::Duration;

/// Rejections in a row that make a diagnosis.
pub(crate) const STREAK: u32 = 3;
/// At most one line per side and peer in this time.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(crate) struct RejectionWatch {
    /// Leader side: per follower, rejections in a row that could not move next_index.
    stuck: BTreeMap<NodeId, u32>,
    /// Follower side: the last rejected request (leader, term, prev_log_index) and how many
    /// times in a row it was rejected.
    rejected: Option<((NodeId, Term, Index), u32)>,
    last_logged: BTreeMap<(NodeId, bool), Duration>,
    /// Diagnoses logged so far.
    pub(crate) reported: u64,
}

impl RejectionWatch {
    fn due(&mut self, now: Duration, peer: NodeId, leader_side: bool) -> bool {
        let key = (peer, leader_side);
        let due = self
            .last_logged
            .get(&key)
            .is_none_or(|t| now.saturating_sub(*t) >= LOG_INTERVAL);
        if due {
            self.last_logged.insert(key, now);
            self.reported += 1;
        }
        due
    }

    /// Leader side: `follower` answered an AppendEntries of this term. `moved`: the answer
    /// changed next_index.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn leader_got(
        &mut self,
        now: Duration,
        me: NodeId,
        follower: NodeId,
        success: bool,
        moved: bool,
        match_index: Index,
        reply_index: Index,
    ) {
        if success || moved {
            self.stuck.remove(&follower);
            return;
        }
        let streak = self.stuck.entry(follower).or_default();
        *streak += 1;
        if *streak >= STREAK && self.due(now, follower, true) {
            tracing::error!(
                id = %me,
                follower = %follower,
                match_index,
                follower_last_index = reply_index,
                "follower {follower} keeps rejecting AppendEntries after index {match_index}, which it \
                 acknowledged in this term (its reply: last index {reply_index}): its log lost \
                 acknowledged entries (disk damage?); it cannot catch up without repair"
            );
        }
    }

    /// Follower side: this server answered `leader`'s AppendEntries of `term` whose
    /// prev_log_index was `prev_log_index`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn follower_answered(
        &mut self,
        now: Duration,
        me: NodeId,
        leader: NodeId,
        term: Term,
        prev_log_index: Index,
        success: bool,
        last_log_index: Index,
    ) {
        if success {
            self.rejected = None;
            return;
        }
        let request = (leader, term, prev_log_index);
        let streak = match &mut self.rejected {
            Some((last, n)) if *last == request => {
                *n += 1;
                *n
            }
            _ => {
                self.rejected = Some((request, 1));
                1
            }
        };
        if streak >= STREAK && self.due(now, leader, false) {
            tracing::error!(
                id = %me,
                leader = %leader,
                prev_log_index,
                last_log_index,
                "rejected AppendEntries from leader {leader} after index {prev_log_index} {streak} \
                 times in a row (this log ends at {last_log_index}): the leader holds this server \
                 to entries it no longer has (lost acknowledged entries?); repair needed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_rejection_repeated_is_reported_at_a_bounded_rate_on_both_sides() {
        let mut w = RejectionWatch::default();
        let (me, peer) = (NodeId(0), NodeId(1));
        let t = |s| Duration::from_secs(s);
        // Leader side: two stuck rejections say nothing, the third reports; a success resets.
        w.leader_got(t(0), me, peer, false, false, 5, 3);
        w.leader_got(t(0), me, peer, false, false, 5, 3);
        assert_eq!(w.reported, 0);
        w.leader_got(t(0), me, peer, false, false, 5, 3);
        assert_eq!(w.reported, 1);
        // More within LOG_INTERVAL: not logged again.
        w.leader_got(t(1), me, peer, false, false, 5, 3);
        assert_eq!(w.reported, 1);
        w.leader_got(t(11), me, peer, false, false, 5, 3);
        assert_eq!(w.reported, 2);
        // A rejection that moved next_index is ordinary catching up.
        w.leader_got(t(30), me, peer, false, true, 5, 3);
        w.leader_got(t(30), me, peer, false, false, 5, 3);
        w.leader_got(t(30), me, peer, false, false, 5, 3);
        assert_eq!(w.reported, 2);
        // Follower side: the same request rejected three times reports; a new one resets.
        w.follower_answered(t(0), peer, me, 2, 5, false, 3);
        w.follower_answered(t(0), peer, me, 2, 4, false, 3);
        w.follower_answered(t(0), peer, me, 2, 5, false, 3);
        w.follower_answered(t(0), peer, me, 2, 5, false, 3);
        assert_eq!(w.reported, 2);
        w.follower_answered(t(0), peer, me, 2, 5, false, 3);
        assert_eq!(w.reported, 3);
    }
}
