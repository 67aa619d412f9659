//! Leadership transfer (Ongaro's thesis §3.10): a leader hands its leadership to another
//! server, for maintenance or to move the leader closer to its clients.
//!
//! 1. The leader stops accepting proposals (it sends clients to the target) and brings the
//!    target's log up to date with ordinary AppendEntries.
//! 2. Once the target's match_index reaches the leader's last log index, the leader sends it
//!    `TimeoutNow` (carrying that last entry's index and term).
//! 3. The target, still in the leader's term, starts an election at once: no pre-vote, and its
//!    RequestVote is marked `transfer`, so voters in the old leader's lease answer it
//!    (lease.rs). Holding the leader's whole log, it wins unless something else happened
//!    meanwhile; its higher term deposes the old leader.
//! 4. A transfer that has not deposed the leader by its next election timeout is abandoned,
//!    and the leader takes proposals again.

use super::error::CoreError;
use super::message::TimeoutNow;
use super::rules::Rules;
use super::server::{Config, Output, Server};
use super::types::{NodeId, Payload, Role, TransferResult};

impl<C: Clone + Payload> Server<C> {
    /// Leaders: start handing leadership to `to` (step 1, and step 2 if it is up to date).
    pub(crate) fn on_transfer_leadership<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        to: NodeId,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        let result = if self.role != Role::Leader {
            TransferResult::NotLeader {
                leader_hint: self.leader_id,
            }
        } else if to == cfg.id {
            TransferResult::AlreadyLeader
        } else if !self.membership(cfg).voters.contains(&to) {
            TransferResult::NotAPeer
        } else {
            self.leader.transferee = Some(to);
            // Catch the target up at once rather than at the next heartbeat.
            self.on_resend(cfg, to, out)?;
            self.send_timeout_now_if_ready(cfg, out);
            TransferResult::Started
        };
        out.transfer = Some(result);
        Ok(())
    }

    /// Leaders handing over: TimeoutNow to the target once its log matches the leader's
    /// (step 2). Sent again on every acknowledgement that finds it ready, in case one is lost.
    pub(crate) fn send_timeout_now_if_ready<R: Rules>(&self, cfg: &Config<R>, out: &mut Output<C>) {
        let Some(target) = self.leader.transferee.filter(|_| self.role == Role::Leader) else {
            return;
        };
        let matched = self
            .leader
            .progress
            .get(&target)
            .map_or(0, |g| g.match_index);
        if cfg.rules.transfer_ready(matched, self.last_log_index()) {
            out.send(
                target,
                TimeoutNow {
                    term: self.hard.current_term,
                    last_log_index: self.last_log_index(),
                    last_log_term: self.last_log_term(),
                },
            );
        }
    }

    /// The target (step 3): a TimeoutNow from the leader of its current term starts an
    /// election at once, without a pre-vote, marked as a transfer. A stale one (an earlier
    /// term, adopted-term handling done by the caller) or one reaching a server that is no
    /// longer a follower changes nothing.
    pub(crate) fn on_timeout_now<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        leader: NodeId,
        request: TimeoutNow,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        if request.term != self.hard.current_term
            || self.role != Role::Follower
            || !self.membership(cfg).contains(leader)
            || !self.is_voter(cfg)
        {
            return Ok(());
        }
        self.campaign(cfg, true, out)
    }
}
