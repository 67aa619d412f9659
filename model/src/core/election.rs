//! Leader election (§5.2, §5.4.1): election timeouts, RequestVote and its replies.

use super::message::Message;
use super::mutant::Mutant;
use super::server::{Config, Output, Server};
use super::types::{Index, NodeId, Role, Term};

impl<C: Clone> Server<C> {
    /// Followers and candidates: on election timeout, start an election: increment current_term,
    /// vote for self, and send RequestVote to every other server (§5.2).
    pub(crate) fn on_election_timeout(&mut self, cfg: &Config, out: &mut Output<C>) {
        if self.role == Role::Leader {
            return;
        }
        self.hard.current_term += 1;
        self.hard.voted_for = Some(cfg.id);
        out.persist.term_or_vote = true;
        out.reset_election_timer = true;
        self.role = Role::Candidate;
        self.leader_id = None;
        self.votes_granted.clear();
        self.votes_granted.insert(cfg.id);
        let request = self.request_vote();
        for peer in &cfg.peers {
            out.send(*peer, request.clone());
        }
        // A single-server cluster (or a broken quorum) may already have a majority.
        self.become_leader_if_elected(cfg, out);
    }

    pub(crate) fn request_vote(&self) -> Message<C> {
        Message::RequestVote {
            term: self.hard.current_term,
            last_log_index: self.last_log_index(),
            last_log_term: self.last_log_term(),
        }
    }

    /// RequestVote receiver (Figure 2): reply false if term < current_term; grant if voted_for is
    /// none or the candidate, and the candidate's log is at least as up-to-date as ours (§5.4.1).
    pub(crate) fn on_request_vote(
        &mut self,
        cfg: &Config,
        candidate: NodeId,
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
        out: &mut Output<C>,
    ) {
        let current = self.hard.current_term;
        let vote_free = match self.hard.voted_for {
            None => true,
            Some(v) => v == candidate || cfg.is(Mutant::VoteTwice),
        };
        // §5.4.1: the candidate's last term is higher, or equal with an index at least as long.
        let up_to_date = last_log_term > self.last_log_term()
            || (last_log_term == self.last_log_term() && last_log_index >= self.last_log_index());
        let grant =
            term == current && vote_free && (up_to_date || cfg.is(Mutant::VoteWithoutLogCheck));
        if grant {
            if self.hard.voted_for != Some(candidate) {
                self.hard.voted_for = Some(candidate);
                out.persist.term_or_vote = true;
            }
            out.reset_election_timer = true;
        }
        out.send(
            candidate,
            Message::RequestVoteResponse {
                term: current,
                vote_granted: grant,
            },
        );
    }

    /// Candidates: count votes of the current term; with a majority, become leader (§5.2).
    pub(crate) fn on_vote_response(
        &mut self,
        cfg: &Config,
        voter: NodeId,
        term: Term,
        vote_granted: bool,
        out: &mut Output<C>,
    ) {
        if self.role != Role::Candidate || !vote_granted || !cfg.peers.contains(&voter) {
            return;
        }
        let stale = term != self.hard.current_term;
        if stale && !(cfg.is(Mutant::CountStaleVotes) && term < self.hard.current_term) {
            return;
        }
        self.votes_granted.insert(voter);
        self.become_leader_if_elected(cfg, out);
    }

    fn become_leader_if_elected(&mut self, cfg: &Config, out: &mut Output<C>) {
        if self.role != Role::Candidate || self.votes_granted.len() < cfg.quorum() {
            return;
        }
        // Leaders: reinitialize next_index to last log index + 1 and match_index to 0, then send
        // initial empty AppendEntries (heartbeats) to every server at once (Figure 2).
        self.role = Role::Leader;
        self.leader_id = Some(cfg.id);
        self.votes_granted.clear();
        let next = self.last_log_index() + 1;
        self.next_index = cfg.peers.iter().map(|p| (*p, next)).collect();
        self.match_index = cfg.peers.iter().map(|p| (*p, 0)).collect();
        self.on_heartbeat(cfg, out);
        self.advance_commit_index(cfg, out);
    }
}
