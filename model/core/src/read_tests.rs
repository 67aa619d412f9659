//! Unit tests of ReadIndex (thesis §6.4, `read.rs`): when a leader answers a read, and when it
//! must not.

use super::*;

type S = Server<u8>;

fn cfg(id: u64, n: u64) -> Config {
    Config::new(NodeId(id), (0..n).map(NodeId))
}

fn step(s: &mut S, c: &Config, event: Event<u8>) -> Output<u8> {
    s.handle(c, event).expect("a step of the correct protocol")
}

fn reply(from: u64, term: Term, success: bool, match_index: Index, read_round: u64) -> Event<u8> {
    Event::Receive {
        from: NodeId(from),
        msg: Message::AppendEntriesResponse(AppendEntriesResponse {
            term,
            success,
            match_index,
            read_round,
        }),
    }
}

/// Server 0 of three, leader of term 1 (elected by server 1), its log empty.
fn new_leader() -> (S, Config) {
    let c = cfg(0, 3);
    let mut s = S::new();
    step(&mut s, &c, Event::ElectionTimeout);
    step(
        &mut s,
        &c,
        Event::Receive {
            from: NodeId(1),
            msg: Message::RequestVoteResponse(RequestVoteResponse {
                term: 1,
                vote_granted: true,
            }),
        },
    );
    assert_eq!(s.role, Role::Leader);
    (s, c)
}

/// The same leader with one entry of its term proposed, durable and acknowledged by server 1:
/// committed and applied.
fn leader_with_a_committed_entry() -> (S, Config) {
    let (mut s, c) = new_leader();
    step(&mut s, &c, Event::Propose(7));
    step(&mut s, &c, Event::Persisted { term: 1, index: 1 });
    let out = step(&mut s, &c, reply(1, 1, true, 1, 0));
    assert_eq!(s.commit_index, 1);
    assert_eq!(out.apply.len(), 1);
    (s, c)
}

/// An empty AppendEntries (a heartbeat) of `term` from server 0, in read round `read_round`.
fn heartbeat_from_0(term: Term, read_round: u64) -> Event<u8> {
    Event::Receive {
        from: NodeId(0),
        msg: Message::AppendEntries(AppendEntries {
            term,
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![],
            leader_commit: 0,
            read_round,
        }),
    }
}

fn ready(out: &Output<u8>) -> Vec<(u64, Index)> {
    out.reads
        .iter()
        .filter_map(|r| match r {
            ReadResult::Ready { id, index } => Some((*id, *index)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_read_waits_for_a_majority_to_confirm_the_leadership() {
    let (mut s, c) = leader_with_a_committed_entry();
    let out = step(&mut s, &c, Event::ReadIndex { id: 9, command: 0 });
    assert!(out.reads.is_empty(), "answered before any confirmation");
    assert_eq!(s.leader.read_round, 1);
    // The next AppendEntries to every peer carries the round.
    let out = step(&mut s, &c, Event::Heartbeat);
    let rounds: Vec<u64> = out
        .messages
        .iter()
        .filter_map(|(_, m)| match m {
            Message::AppendEntries(a) => Some(a.read_round),
            _ => None,
        })
        .collect();
    assert_eq!(rounds, vec![1, 1]);
    // A reply to a request sent before the read (round 0) confirms nothing.
    let out = step(&mut s, &c, reply(2, 1, true, 1, 0));
    assert!(out.reads.is_empty());
    // A rejection of this term echoing the round confirms the leadership all the same.
    let out = step(&mut s, &c, reply(2, 1, false, 1, 1));
    assert_eq!(ready(&out), vec![(9, 1)]);
    assert!(s.pending_reads.is_empty());
}

#[test]
fn the_read_index_is_the_commit_index_when_the_read_arrived() {
    let (mut s, c) = leader_with_a_committed_entry();
    step(&mut s, &c, Event::Propose(8));
    step(&mut s, &c, Event::Persisted { term: 1, index: 2 });
    let out = step(&mut s, &c, Event::ReadIndex { id: 3, command: 0 });
    assert!(out.reads.is_empty());
    assert_eq!(s.pending_reads[0].index, 1);
    // Entry 2 commits with the confirming reply; the read still names index 1, which the
    // state machine had reached before it arrived.
    let out = step(&mut s, &c, reply(1, 1, true, 2, 1));
    assert_eq!(s.commit_index, 2);
    assert_eq!(ready(&out), vec![(3, 1)]);
}

#[test]
fn a_leader_without_a_committed_entry_of_its_term_sends_the_read_through_the_log() {
    let (mut s, c) = new_leader();
    let out = step(&mut s, &c, Event::ReadIndex { id: 4, command: 5 });
    assert_eq!(out.reads, vec![ReadResult::ThroughLog { id: 4 }]);
    assert_eq!(s.leader.read_round, 0);
    assert_eq!(
        out.propose,
        Some(ProposeResult::Accepted { index: 1, term: 1 })
    );
    assert_eq!(
        s.log(),
        &[Entry {
            term: 1,
            command: 5
        }]
    );
}

#[test]
fn a_follower_redirects_a_read_and_echoes_the_read_round() {
    let c = cfg(1, 3);
    let mut s = S::new();
    let out = step(&mut s, &c, heartbeat_from_0(1, 5));
    match &out.messages[..] {
        [(_, Message::AppendEntriesResponse(r))] => assert_eq!(r.read_round, 5),
        other => panic!("expected one reply, got {other:?}"),
    }
    let out = step(&mut s, &c, Event::ReadIndex { id: 1, command: 0 });
    assert_eq!(
        out.reads,
        vec![ReadResult::NotLeader {
            id: 1,
            leader_hint: Some(NodeId(0))
        }]
    );
}

#[test]
fn a_leader_that_steps_down_answers_its_pending_reads_not_leader() {
    let (mut s, c) = leader_with_a_committed_entry();
    step(&mut s, &c, Event::ReadIndex { id: 2, command: 0 });
    let out = step(&mut s, &c, reply(2, 2, false, 0, 0));
    assert_eq!(s.role, Role::Follower);
    assert_eq!(
        out.reads,
        vec![ReadResult::NotLeader {
            id: 2,
            leader_hint: None
        }]
    );
    assert_eq!((s.leader.read_round, s.leader.read_acks().count()), (0, 0));
}

#[test]
fn a_reply_echoing_a_round_never_started_is_an_invariant_violation() {
    let (mut s, c) = leader_with_a_committed_entry();
    let err = s.handle(&c, reply(1, 1, true, 1, 1)).unwrap_err();
    assert!(matches!(
        err,
        CoreError::ReadAckBeyondRound { round: 1, .. }
    ));
}

#[test]
fn a_single_server_answers_a_read_at_once() {
    let c = cfg(0, 1);
    let mut s = S::new();
    step(&mut s, &c, Event::ElectionTimeout);
    assert_eq!(s.role, Role::Leader);
    step(&mut s, &c, Event::Propose(1));
    step(&mut s, &c, Event::Persisted { term: 1, index: 1 });
    let out = step(&mut s, &c, Event::ReadIndex { id: 6, command: 0 });
    assert_eq!(ready(&out), vec![(6, 1)]);
}

#[test]
fn a_rejection_for_an_earlier_term_echoes_no_read_round() {
    // Server 1 is in term 2; the request of term 1 (round 6, from the same server's earlier
    // leadership, say) is refused with term 2 and round 0: as leader of term 2, server 0's
    // rounds started afresh, and this reply confirms none of them.
    let c = cfg(1, 3);
    let mut s = S::new();
    s.hard.current_term = 2;
    let out = step(&mut s, &c, heartbeat_from_0(1, 6));
    match &out.messages[..] {
        [(_, Message::AppendEntriesResponse(r))] => {
            assert_eq!((r.term, r.success, r.read_round), (2, false, 0))
        }
        other => panic!("expected one rejection, got {other:?}"),
    }
}
