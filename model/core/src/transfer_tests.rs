//! Unit tests of leadership transfer (thesis §3.10, `transfer.rs`).

use super::*;

use super::lease_tests::{receive, step, S};

/// A server of three running PreVote and CheckQuorum, as the node does.
fn cfg(id: u64) -> Config {
    super::lease_tests::cfg(id, 3)
}

fn ack(term: Term, match_index: Index) -> Message<u8> {
    Message::AppendEntriesResponse(AppendEntriesResponse {
        term,
        success: true,
        match_index,
        read_round: 0,
    })
}

/// Server 0, leader of term 1 with one durable entry of its own, acknowledged by server 1 only.
fn leader() -> (S, Config) {
    let c = cfg(0);
    let mut s = S::new();
    s.hard.current_term = 1;
    s.hard.voted_for = Some(NodeId(0));
    s.role = Role::Candidate;
    s.votes_granted.insert(NodeId(0));
    let granted = Message::RequestVoteResponse(RequestVoteResponse {
        term: 1,
        vote_granted: true,
    });
    step(&mut s, &c, receive(1, granted));
    assert_eq!(s.role, Role::Leader);
    step(&mut s, &c, Event::Propose(7));
    step(&mut s, &c, Event::Persisted { term: 1, index: 1 });
    step(&mut s, &c, receive(1, ack(1, 1)));
    (s, c)
}

fn timeout_now(out: &Output<u8>) -> Vec<(u64, TimeoutNow)> {
    out.messages
        .iter()
        .filter_map(|(to, m)| match m {
            Message::TimeoutNow(t) => Some((to.0, *t)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_up_to_date_target_gets_timeout_now_at_once() {
    let (mut s, c) = leader();
    let out = step(&mut s, &c, Event::TransferLeadership { to: NodeId(1) });
    assert_eq!(out.transfer, Some(TransferResult::Started));
    let expected = TimeoutNow {
        term: 1,
        last_log_index: 1,
        last_log_term: 1,
    };
    assert_eq!(timeout_now(&out), vec![(1, expected)]);
}

#[test]
fn a_target_behind_is_caught_up_first() {
    let (mut s, c) = leader();
    let out = step(&mut s, &c, Event::TransferLeadership { to: NodeId(2) });
    assert!(timeout_now(&out).is_empty());
    assert!(
        out.messages
            .iter()
            .any(|(to, m)| to.0 == 2
                && matches!(m, Message::AppendEntries(a) if !a.entries.is_empty())),
        "the target is sent the entries it lacks at once"
    );
    let out = step(&mut s, &c, receive(2, ack(1, 1)));
    assert_eq!(timeout_now(&out).len(), 1);
}

#[test]
fn a_leader_handing_over_sends_clients_to_the_target() {
    let (mut s, c) = leader();
    step(&mut s, &c, Event::TransferLeadership { to: NodeId(2) });
    let out = step(&mut s, &c, Event::Propose(9));
    assert_eq!(
        out.propose,
        Some(ProposeResult::NotLeader {
            leader_hint: Some(NodeId(2))
        })
    );
    assert_eq!(s.last_log_index(), 1);
}

#[test]
fn an_election_timeout_abandons_the_transfer() {
    let (mut s, c) = leader();
    step(&mut s, &c, Event::TransferLeadership { to: NodeId(2) });
    step(&mut s, &c, Event::ElectionTimeout);
    assert_eq!(s.role, Role::Leader, "server 1 answered: the quorum holds");
    assert_eq!(s.leader.transferee, None);
    let out = step(&mut s, &c, Event::Propose(9));
    assert!(matches!(out.propose, Some(ProposeResult::Accepted { .. })));
}

#[test]
fn bad_targets_and_non_leaders_are_refused() {
    let (mut s, c) = leader();
    let out = step(&mut s, &c, Event::TransferLeadership { to: NodeId(0) });
    assert_eq!(out.transfer, Some(TransferResult::AlreadyLeader));
    let out = step(&mut s, &c, Event::TransferLeadership { to: NodeId(9) });
    assert_eq!(out.transfer, Some(TransferResult::NotAPeer));
    assert_eq!(s.leader.transferee, None);
    let mut f = S::new();
    let out = step(&mut f, &cfg(1), Event::TransferLeadership { to: NodeId(2) });
    assert_eq!(
        out.transfer,
        Some(TransferResult::NotLeader { leader_hint: None })
    );
}

#[test]
fn the_target_campaigns_at_once_and_passes_the_lease() {
    let c1 = cfg(1);
    let mut target = S::new();
    let heartbeat = Message::AppendEntries(AppendEntries {
        term: 1,
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![],
        leader_commit: 0,
        read_round: 0,
    });
    step(&mut target, &c1, receive(0, heartbeat.clone()));
    let now = Message::TimeoutNow(TimeoutNow {
        term: 1,
        last_log_index: 0,
        last_log_term: 0,
    });
    let out = step(&mut target, &c1, receive(0, now));
    assert_eq!((target.role, target.current_term()), (Role::Candidate, 2));
    let vote = out
        .messages
        .iter()
        .find_map(|(to, m)| match m {
            Message::RequestVote(v) if to.0 == 2 => Some(*v),
            _ => None,
        })
        .expect("a RequestVote, not a PreVote");
    assert!(vote.transfer);
    // Server 2 follows the old leader (its lease) and still grants this vote.
    let c2 = cfg(2);
    let mut voter = S::new();
    step(&mut voter, &c2, receive(0, heartbeat));
    let out = step(&mut voter, &c2, receive(1, Message::RequestVote(vote)));
    assert_eq!(voter.voted_for(), Some(NodeId(1)));
    assert!(matches!(
        out.messages.as_slice(),
        [(
            _,
            Message::RequestVoteResponse(RequestVoteResponse {
                vote_granted: true,
                ..
            })
        )]
    ));
    // A resent RequestVote is marked too.
    let out = step(&mut target, &c1, Event::Resend { to: NodeId(2) });
    assert!(matches!(out.messages.as_slice(), [(_, Message::RequestVote(v))] if v.transfer));
}

#[test]
fn a_stale_timeout_now_changes_nothing() {
    let c1 = cfg(1);
    let mut s = S::new();
    s.hard.current_term = 3;
    let before = s.clone();
    let now = Message::TimeoutNow(TimeoutNow {
        term: 2,
        last_log_index: 0,
        last_log_term: 0,
    });
    let out = step(&mut s, &c1, receive(0, now));
    assert_eq!(s, before);
    assert!(out.messages.is_empty());
}
