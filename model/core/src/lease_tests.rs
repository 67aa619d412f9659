//! Unit tests of PreVote, CheckQuorum and the lease on votes (thesis §9.6, `lease.rs`).

use super::*;

pub(super) type S = Server<u8>;

pub(super) fn cfg(id: u64, n: u64) -> Config {
    Config::new(NodeId(id), (0..n).map(NodeId))
        .with_pre_vote(true)
        .with_check_quorum(true)
}

pub(super) fn step(s: &mut S, c: &Config, event: Event<u8>) -> Output<u8> {
    s.handle(c, event).expect("a step of the correct protocol")
}

pub(super) fn receive(from: u64, msg: Message<u8>) -> Event<u8> {
    Event::Receive {
        from: NodeId(from),
        msg,
    }
}

fn pre_vote(term: Term, last_log_index: Index, last_log_term: Term) -> Message<u8> {
    Message::PreVote(RequestVote {
        term,
        last_log_index,
        last_log_term,
        transfer: false,
    })
}

fn heartbeat(term: Term) -> Message<u8> {
    Message::AppendEntries(AppendEntries {
        term,
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![],
        leader_commit: 0,
        read_round: 0,
    })
}

fn ack(term: Term) -> Message<u8> {
    Message::AppendEntriesResponse(AppendEntriesResponse {
        term,
        success: true,
        match_index: 0,
        read_round: 0,
    })
}

fn pre_vote_grant(term: Term) -> Message<u8> {
    Message::PreVoteResponse(RequestVoteResponse {
        term,
        vote_granted: true,
    })
}

/// Server 0 of three, leader of term 1 by pre-vote and vote of server 1.
fn leader() -> (S, Config) {
    let c = cfg(0, 3);
    let mut s = S::new();
    step(&mut s, &c, Event::ElectionTimeout);
    step(&mut s, &c, receive(1, pre_vote_grant(1)));
    assert_eq!(s.role, Role::Candidate);
    let granted = Message::RequestVoteResponse(RequestVoteResponse {
        term: 1,
        vote_granted: true,
    });
    step(&mut s, &c, receive(1, granted));
    assert_eq!(s.role, Role::Leader);
    (s, c)
}

#[test]
fn a_pre_vote_round_raises_no_term_and_records_no_vote() {
    let c = cfg(0, 3);
    let mut s = S::new();
    let out = step(&mut s, &c, Event::ElectionTimeout);
    assert_eq!(s.role, Role::PreCandidate);
    assert_eq!(s.current_term(), 0);
    assert_eq!(s.voted_for(), None);
    assert!(out.persist.is_empty(), "a pre-vote persists nothing");
    let sent: Vec<_> = out
        .messages
        .iter()
        .map(|(to, m)| (to.0, m.clone()))
        .collect();
    assert_eq!(sent, vec![(1, pre_vote(1, 0, 0)), (2, pre_vote(1, 0, 0))]);
}

#[test]
fn a_majority_of_pre_votes_starts_the_election() {
    let (s, _) = leader();
    assert_eq!(s.current_term(), 1);
    assert_eq!(s.voted_for(), Some(NodeId(0)));
}

#[test]
fn a_grant_for_another_term_is_not_counted() {
    let c = cfg(0, 3);
    let mut s = S::new();
    step(&mut s, &c, Event::ElectionTimeout);
    step(&mut s, &c, receive(1, pre_vote_grant(2)));
    assert_eq!(s.role, Role::PreCandidate);
    assert_eq!(s.current_term(), 0);
}

#[test]
fn a_refusal_of_a_later_term_is_adopted() {
    let c = cfg(0, 3);
    let mut s = S::new();
    step(&mut s, &c, Event::ElectionTimeout);
    let refusal = Message::PreVoteResponse(RequestVoteResponse {
        term: 5,
        vote_granted: false,
    });
    let out = step(&mut s, &c, receive(1, refusal));
    assert_eq!((s.role, s.current_term()), (Role::Follower, 5));
    assert!(out.persist.term_or_vote);
}

#[test]
fn a_pre_vote_is_granted_without_changing_term_or_vote() {
    let c = cfg(1, 3);
    let mut s = S::new();
    let out = step(&mut s, &c, receive(0, pre_vote(1, 0, 0)));
    assert_eq!((s.current_term(), s.voted_for()), (0, None));
    assert!(out.persist.is_empty() && !out.reset_election_timer);
    assert_eq!(out.messages, vec![(NodeId(0), pre_vote_grant(1))]);
}

#[test]
fn a_pre_vote_with_a_stale_log_or_term_is_refused() {
    let c = cfg(1, 3);
    let mut s = S::new();
    s.hard.current_term = 2;
    s.hard.log.push(Entry {
        term: 2,
        command: 9,
    });
    let refused = Message::PreVoteResponse(RequestVoteResponse {
        term: 2,
        vote_granted: false,
    });
    // A log behind ours (§5.4.1).
    let out = step(&mut s, &c, receive(0, pre_vote(3, 1, 1)));
    assert_eq!(out.messages, vec![(NodeId(0), refused.clone())]);
    // A proposed term not after ours.
    let out = step(&mut s, &c, receive(0, pre_vote(2, 1, 2)));
    assert_eq!(out.messages, vec![(NodeId(0), refused)]);
    assert_eq!(s.current_term(), 2);
}

#[test]
fn a_follower_in_a_lease_ignores_pre_votes_and_votes() {
    let c = cfg(1, 3);
    let mut s = S::new();
    step(&mut s, &c, receive(0, heartbeat(1)));
    assert_eq!(s.leader_id, Some(NodeId(0)));
    let out = step(&mut s, &c, receive(2, pre_vote(2, 0, 0)));
    assert!(out.messages.is_empty());
    let vote = Message::RequestVote(RequestVote {
        term: 2,
        last_log_index: 0,
        last_log_term: 0,
        transfer: false,
    });
    let out = step(&mut s, &c, receive(2, vote.clone()));
    assert!(out.messages.is_empty() && out.persist.is_empty());
    assert_eq!(s.current_term(), 1, "the lease keeps the term");
    // Its own election timeout ends the lease: it then grants.
    step(&mut s, &c, Event::ElectionTimeout);
    assert_eq!(s.leader_id, None);
    let out = step(&mut s, &c, receive(2, vote));
    assert_eq!(s.current_term(), 2);
    assert_eq!(s.voted_for(), Some(NodeId(2)));
    assert_eq!(out.messages.len(), 1);
}

#[test]
fn without_check_quorum_there_is_no_lease() {
    let c = cfg(1, 3).with_check_quorum(false);
    let mut s = S::new();
    step(&mut s, &c, receive(0, heartbeat(1)));
    let out = step(&mut s, &c, receive(2, pre_vote(2, 0, 0)));
    assert_eq!(out.messages, vec![(NodeId(2), pre_vote_grant(2))]);
}

#[test]
fn a_leader_in_its_lease_ignores_a_later_vote() {
    let (mut s, c) = leader();
    let vote = Message::RequestVote(RequestVote {
        term: 7,
        last_log_index: 5,
        last_log_term: 5,
        transfer: false,
    });
    let out = step(&mut s, &c, receive(2, vote));
    assert!(out.messages.is_empty());
    assert_eq!((s.role, s.current_term()), (Role::Leader, 1));
}

#[test]
fn check_quorum_keeps_a_leader_a_majority_answered() {
    let (mut s, c) = leader();
    step(&mut s, &c, receive(1, ack(1)));
    assert_eq!(s.leader.recent_active().count(), 1);
    step(&mut s, &c, Event::ElectionTimeout);
    assert_eq!(s.role, Role::Leader);
    assert!(
        s.leader.recent_active().next().is_none(),
        "each check counts afresh"
    );
    // No answer since: the next check steps down, keeping term and vote.
    step(&mut s, &c, Event::ElectionTimeout);
    assert_eq!(s.role, Role::Follower);
    assert_eq!((s.current_term(), s.voted_for()), (1, Some(NodeId(0))));
    assert_eq!(s.leader_id, None, "stepping down ends its own lease");
}

#[test]
fn a_rejection_that_moves_nothing_does_not_keep_the_leader_in_office() {
    // Issue 38, finding 3: a follower that lost entries it acknowledged rejects every append
    // at its match_index; counted as activity, its rejections kept the leader in office (with
    // the third server down) and nothing could ever commit.
    let (mut s, c) = leader();
    step(&mut s, &c, Event::Propose(7));
    step(&mut s, &c, Event::Persisted { term: 1, index: 1 });
    let acked = Message::AppendEntriesResponse(AppendEntriesResponse {
        term: 1,
        success: true,
        match_index: 1,
        read_round: 0,
    });
    step(&mut s, &c, receive(1, acked));
    assert_eq!(s.leader.progress[&NodeId(1)].match_index, 1);
    step(&mut s, &c, Event::ElectionTimeout);
    assert_eq!(s.role, Role::Leader);
    // Server 1 lost its entry: it rejects with its last index, 0, below its match_index.
    let lost = Message::AppendEntriesResponse(AppendEntriesResponse {
        term: 1,
        success: false,
        match_index: 0,
        read_round: 0,
    });
    step(&mut s, &c, receive(1, lost.clone()));
    assert!(s.leader.recent_active().next().is_none());
    step(&mut s, &c, Event::ElectionTimeout);
    assert_eq!(
        s.role,
        Role::Follower,
        "steps down: no progress from a majority"
    );
    // A rejection that moves next_index back (a probe answered) does show activity: a leader
    // of term 2 whose log holds two entries of term 1, probing server 1 at next_index 3.
    let c = cfg(0, 3);
    let mut s = S::new();
    let two = Message::AppendEntries(AppendEntries {
        term: 1,
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![
            Entry {
                term: 1,
                command: 1,
            },
            Entry {
                term: 1,
                command: 2,
            },
        ],
        leader_commit: 0,
        read_round: 0,
    });
    step(&mut s, &c, receive(2, two));
    step(&mut s, &c, Event::Persisted { term: 1, index: 2 });
    step(&mut s, &c, Event::ElectionTimeout);
    step(&mut s, &c, Event::ElectionTimeout);
    step(&mut s, &c, receive(1, pre_vote_grant(2)));
    let granted = Message::RequestVoteResponse(RequestVoteResponse {
        term: 2,
        vote_granted: true,
    });
    step(&mut s, &c, receive(1, granted));
    assert_eq!(s.role, Role::Leader);
    assert_eq!(s.leader.progress[&NodeId(1)].next_index, 3);
    let probe_answered = Message::AppendEntriesResponse(AppendEntriesResponse {
        term: 2,
        success: false,
        match_index: 0,
        read_round: 0,
    });
    step(&mut s, &c, receive(1, probe_answered));
    assert!(s.leader.progress[&NodeId(1)].next_index < 3);
    assert_eq!(s.leader.recent_active().count(), 1);
}

#[test]
fn a_reply_of_an_earlier_term_does_not_count_as_active() {
    let (mut s, c) = leader();
    step(&mut s, &c, receive(1, ack(0)));
    assert!(s.leader.recent_active().next().is_none());
}

#[test]
fn a_single_server_elects_itself_through_a_pre_vote_and_keeps_its_quorum() {
    let c = cfg(0, 1);
    let mut s = S::new();
    step(&mut s, &c, Event::ElectionTimeout);
    assert_eq!((s.role, s.current_term()), (Role::Leader, 1));
    step(&mut s, &c, Event::ElectionTimeout);
    assert_eq!(s.role, Role::Leader);
}

#[test]
fn a_pre_candidate_follows_a_leader_of_its_term() {
    let c = cfg(1, 3);
    let mut s = S::new();
    step(&mut s, &c, receive(0, heartbeat(1)));
    step(&mut s, &c, Event::ElectionTimeout);
    assert_eq!(s.role, Role::PreCandidate);
    step(&mut s, &c, receive(0, heartbeat(1)));
    assert_eq!((s.role, s.leader_id), (Role::Follower, Some(NodeId(0))));
}

#[test]
fn a_pre_candidate_resends_its_pre_vote_to_a_peer_that_has_not_granted() {
    let c = cfg(0, 3);
    let mut s = S::new();
    step(&mut s, &c, Event::ElectionTimeout);
    let out = step(&mut s, &c, Event::Resend { to: NodeId(2) });
    assert_eq!(out.messages, vec![(NodeId(2), pre_vote(1, 0, 0))]);
}

#[test]
fn a_leaders_election_timer_runs_only_with_check_quorum() {
    let plain = Config::new(NodeId(0), [NodeId(1), NodeId(2)]);
    let cq = plain.clone().with_check_quorum(true);
    for role in [Role::Follower, Role::PreCandidate, Role::Candidate] {
        assert!(plain.election_timer_runs(role) && cq.election_timer_runs(role));
    }
    assert!(!plain.election_timer_runs(Role::Leader));
    assert!(cq.election_timer_runs(Role::Leader));
}
