//! Disruptive servers (Ongaro's thesis §9.6): PreVote, CheckQuorum, and the leader's lease on
//! votes.
//!
//! A server that cannot reach the leader, but can reach some other server, would otherwise
//! time out, raise its term and make that server adopt it; the leader then meets the higher
//! term in a reply and steps down, again and again (the 2020 Cloudflare outage). Three rules
//! stop it, as etcd-io/raft and tikv/raft-rs have them:
//!
//! - **PreVote** ([`Config::pre_vote`]): on election timeout a server first asks, at its
//!   current term, whether a majority would vote for it in the next term (its log at least
//!   as up-to-date as theirs, §5.4.1). Nobody changes term or vote for a pre-vote. Only with
//!   a majority of grants does it start the election (`campaign`).
//! - **The lease** (with [`Config::check_quorum`]): a server that knows a leader of its
//!   current term (`leader_id`: it heard from it since its own last election timeout, or is
//!   it) disregards RequestVote and PreVote: it neither adopts their term nor answers.
//! - **CheckQuorum** ([`Config::check_quorum`]): a leader's election timeout checks that a
//!   majority, itself included, answered it since the previous one; otherwise it steps down,
//!   so that its followers' leases do not keep a leader that lost its majority (and the lease
//!   cannot keep the rest of the cluster leaderless).

use super::error::CoreError;
use super::message::{Message, RequestVote, RequestVoteResponse};
use super::rules::Rules;
use super::server::{next_term, Config, Output, Server};
use super::types::{NodeId, Payload, Role};

impl<C: Clone + Payload> Server<C> {
    /// Whether this server is in a leader's lease and disregards requests for votes.
    pub(crate) fn in_lease<R: Rules>(&self, cfg: &Config<R>) -> bool {
        cfg.rules
            .lease_ignores_votes(cfg.check_quorum, self.leader_id.is_some())
    }

    /// The PreVote this pre-candidate sends: the term it would campaign in, and its log.
    pub(crate) fn pre_vote_request(&self) -> Result<RequestVote, CoreError> {
        let term = next_term(self.hard.current_term)?;
        Ok(RequestVote {
            term,
            transfer: false,
            ..self.request_vote()
        })
    }

    /// Followers and candidates, on election timeout with [`Config::pre_vote`]: become a
    /// pre-candidate at the current term, grant itself, and send PreVote to every peer.
    pub(crate) fn start_pre_vote<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        if cfg.rules.pre_vote_raises_own_term() {
            self.hard.current_term = next_term(self.hard.current_term)?;
            self.hard.voted_for = None;
            out.persist.term_or_vote = true;
        }
        out.reset_election_timer = true;
        self.role = Role::PreCandidate;
        self.transfer_campaign = false;
        self.leader_id = None;
        self.votes_granted.clear();
        self.votes_granted.insert(cfg.id);
        let request = self.pre_vote_request()?;
        for peer in self.voting_peers(cfg) {
            out.send(peer, Message::PreVote(request));
        }
        // A single-server cluster needs no one else's grant.
        self.campaign_if_pre_vote_won(cfg, out)
    }

    /// PreVote receiver (thesis §9.6): grant if the proposed term is later than ours and the
    /// candidate's log is at least as up-to-date (§5.4.1). Neither current_term nor voted_for
    /// changes, and the election timer runs on. (A server in a lease never gets here.)
    pub(crate) fn on_pre_vote<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        candidate: NodeId,
        request: RequestVote,
        out: &mut Output<C>,
    ) {
        let current = self.hard.current_term;
        let grant = request.term > current
            && cfg.rules.candidate_up_to_date(
                (request.last_log_term, request.last_log_index),
                (self.last_log_term(), self.last_log_index()),
            );
        // A grant carries the proposed term (the pre-candidate does not adopt it); a refusal
        // carries ours, which a pre-candidate behind us adopts.
        let term = if grant { request.term } else { current };
        out.send(
            candidate,
            Message::PreVoteResponse(RequestVoteResponse {
                term,
                vote_granted: grant,
            }),
        );
    }

    /// Pre-candidates: count the grants for the term they would campaign in; with a majority,
    /// start the election. A refusal of a later term was adopted before (§5.1).
    pub(crate) fn on_pre_vote_response<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        voter: NodeId,
        reply: RequestVoteResponse,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        if self.role != Role::PreCandidate
            || !reply.vote_granted
            || !self.membership(cfg).contains(voter)
            || Some(reply.term) != self.hard.current_term.checked_add(1)
        {
            return Ok(());
        }
        self.votes_granted.insert(voter);
        self.campaign_if_pre_vote_won(cfg, out)
    }

    fn campaign_if_pre_vote_won<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        let grants = self.counted(cfg, self.votes_granted.iter().copied());
        if self.role == Role::PreCandidate && cfg.rules.pre_vote_won(grants, self.quorum(cfg)) {
            self.campaign(cfg, false, out)?;
        }
        Ok(())
    }

    /// Leaders with [`Config::check_quorum`], on election timeout: step down unless a majority,
    /// itself included, answered since the last check; then start counting afresh. The term
    /// and vote stay; pending reads are answered NotLeader at the end of the step.
    pub(crate) fn check_quorum<R: Rules>(&mut self, cfg: &Config<R>) {
        if !cfg.check_quorum {
            return;
        }
        let active = self.counted(cfg, self.leader.recent_active());
        if cfg.rules.quorum_active(active, self.quorum(cfg)) {
            for g in self.leader.progress.values_mut() {
                g.recent_active = false;
            }
        } else {
            self.become_follower();
        }
    }
}
