//! Leader election (§5.2, §5.4.1): election timeouts, RequestVote and its replies.

use super::error::CoreError;
use super::message::{RequestVote, RequestVoteResponse};
use super::progress::LeaderState;
use super::rules::Rules;
use super::server::{Config, Output, Server};
use super::types::{NodeId, Payload, Role};

impl<R> Config<R> {
    /// Whether a server in `role` has its election timer running, the rule both drivers arm
    /// the timer by. §5.2: followers, candidates and pre-candidates time out to start an
    /// election, and a leader has no election timeout; with [`Config::check_quorum`] a leader's
    /// timer runs too, and its timeout is the quorum check (a leader steps down when an
    /// election timeout passes without a majority answering it: thesis §6.2, §9.6; lease.rs).
    pub fn election_timer_runs(&self, role: Role) -> bool {
        role != Role::Leader || self.check_quorum
    }
}

impl<C: Clone + Payload> Server<C> {
    /// On election timeout (§5.2): a leader checks its quorum (CheckQuorum, lease.rs); a
    /// follower or candidate starts an election, with a pre-vote round first under
    /// [`Config::pre_vote`] (lease.rs).
    pub(crate) fn on_election_timeout<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        match self.role {
            Role::Leader => {
                // A transfer not done within an election timeout is abandoned (§3.10).
                self.leader.transferee = None;
                self.check_quorum(cfg);
                Ok(())
            }
            // Only a voter campaigns (membership.rs); a non-voter's lease ends all the same.
            _ if !self.may_campaign(cfg) => {
                if cfg.rules.non_voter_lease_ends_on_timeout() {
                    self.leader_id = None;
                }
                Ok(())
            }
            _ if cfg.pre_vote => self.start_pre_vote(cfg, out),
            _ => self.campaign(cfg, false, out),
        }
    }

    /// Start an election (§5.2): increment current_term, vote for self, and send RequestVote
    /// to every other server. `transfer`: on a leader's TimeoutNow (§3.10), so the
    /// RequestVote passes the voters' leases.
    pub(crate) fn campaign<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        transfer: bool,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        self.hard.current_term = super::server::next_term(self.hard.current_term)?;
        self.hard.voted_for = Some(cfg.id);
        out.persist.term_or_vote = true;
        out.reset_election_timer = true;
        self.role = Role::Candidate;
        self.transfer_campaign = transfer;
        self.leader_id = None;
        self.votes_granted.clear();
        self.votes_granted.insert(cfg.id);
        let request = self.request_vote();
        for peer in self.voting_peers(cfg) {
            out.send(peer, request);
        }
        // A single-server cluster may already have a majority.
        self.become_leader_if_elected(cfg, out)
    }

    pub(crate) fn request_vote(&self) -> RequestVote {
        RequestVote {
            term: self.hard.current_term,
            last_log_index: self.last_log_index(),
            last_log_term: self.last_log_term(),
            transfer: self.role == Role::Candidate && self.transfer_campaign,
        }
    }

    /// RequestVote receiver (Figure 2): reply false if term < current_term; grant if voted_for is
    /// none or the candidate, and the candidate's log is at least as up-to-date as ours (§5.4.1).
    pub(crate) fn on_request_vote<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        candidate: NodeId,
        request: RequestVote,
        out: &mut Output<C>,
    ) {
        let current = self.hard.current_term;
        let grant = request.term == current
            && cfg.rules.vote_available(self.hard.voted_for, candidate)
            && cfg.rules.candidate_up_to_date(
                (request.last_log_term, request.last_log_index),
                (self.last_log_term(), self.last_log_index()),
            );
        if grant {
            if self.hard.voted_for != Some(candidate) {
                self.hard.voted_for = Some(candidate);
                out.persist.term_or_vote = true;
            }
            // Granting a vote restarts the election timer (Figure 2, Followers).
            out.reset_election_timer = true;
        }
        out.send(
            candidate,
            RequestVoteResponse {
                term: current,
                vote_granted: grant,
            },
        );
    }

    /// Candidates: count the votes of the current term; with a majority, become leader (§5.2).
    pub(crate) fn on_vote_response<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        voter: NodeId,
        reply: RequestVoteResponse,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        if self.role != Role::Candidate
            || !reply.vote_granted
            || !self.membership(cfg).contains(voter)
            || !cfg.rules.counts_vote(reply.term, self.hard.current_term)
        {
            return Ok(());
        }
        self.votes_granted.insert(voter);
        self.become_leader_if_elected(cfg, out)
    }

    fn become_leader_if_elected<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        // Only the voters of its configuration count (membership.rs).
        let votes = self.counted(cfg, self.votes_granted.iter().copied());
        if self.role != Role::Candidate || votes < self.quorum(cfg) {
            return Ok(());
        }
        // Leaders: reinitialize next_index to last log index + 1 and match_index to 0, then send
        // initial empty AppendEntries (heartbeats) to every server at once (Figure 2).
        self.role = Role::Leader;
        self.leader_id = Some(cfg.id);
        self.votes_granted.clear();
        self.transfer_campaign = false;
        // Every voter and learner of its configuration (membership.rs); a pipelining leader
        // probes each until it acknowledges (etcd's StateProbe).
        self.leader = LeaderState::default();
        self.track_members(cfg)?;
        // Everything a candidate holds is durable: it persisted before it sent.
        self.leader.persisted_index = self.last_log_index();
        self.on_heartbeat(cfg, out)?;
        self.advance_commit_index(cfg, out)
    }
}
