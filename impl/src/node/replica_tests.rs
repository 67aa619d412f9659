//! The replica's durability order with a leader's entries written behind: its AppendEntries
//! leave before its own sync, nothing it counts on its own copy is answered before that sync,
//! and a follower's reply still waits for the follower's sync. Also: a leader's election
//! timer under CheckQuorum (the node's configuration). And the answers to an operator's
//! leadership transfer.

use super::*;
use crate::kv::{Op, OpResult};
use raft_core::{
    AppendEntries, AppendEntriesResponse, HardState, Persist, Progress, RequestVoteResponse,
};

/// A disk that counts what was staged and what was synced.
#[derive(Default)]
struct CountingDisk {
    staged: usize,
    synced: usize,
}

impl Durable<Command> for CountingDisk {
    type Error = std::io::Error;
    fn stage(&mut self, _: &HardState<Command>, persist: &Persist) -> Result<(), Self::Error> {
        if !persist.is_empty() {
            self.staged += 1;
        }
        Ok(())
    }
    fn sync(&mut self) -> Result<(), Self::Error> {
        self.synced = self.staged;
        Ok(())
    }
}

impl CountingDisk {
    fn unsynced(&self) -> usize {
        self.staged - self.synced
    }
}

fn options() -> ReplicaOptions {
    ReplicaOptions {
        election_timeout_min: Duration::from_secs(10),
        election_timeout_max: Duration::from_secs(10),
        heartbeat_interval: Duration::from_secs(1),
        addresses: BTreeMap::new(),
        cluster_id: 1,
        snapshot: SnapshotPolicy::NEVER,
    }
}

fn put(seq: u64) -> ReplicaInput<u64> {
    ReplicaInput::Client {
        command: Command {
            client_id: 1,
            seq,
            op: Op::Put {
                key: "k".into(),
                value: "v".into(),
            },
        },
        reply: seq,
    }
}

/// Server 0 of three, leader of term 1 with an empty log (as elected: all durable): its
/// configuration and core state.
pub(super) fn leader_server() -> (Config, Server<Command>) {
    let cfg = Config::new(NodeId(0), [NodeId(1), NodeId(2)]);
    let mut server = Server::new();
    server.hard.current_term = 1;
    server.hard.voted_for = Some(NodeId(0));
    server.role = Role::Leader;
    server.leader_id = Some(NodeId(0));
    for p in [NodeId(1), NodeId(2)] {
        server.leader.progress.insert(p, Progress::new(1, false));
    }
    (cfg, server)
}

/// Server 0 of three, leader of term 1 with an empty log (as elected: all durable).
fn leader() -> Replica<CountingDisk, u64> {
    let (cfg, server) = leader_server();
    Replica::new(
        cfg,
        server,
        CountingDisk::default(),
        options(),
        7,
        Duration::ZERO,
    )
    .unwrap()
}

/// Follower `from`'s successful reply of term 1 acknowledging `match_index`.
fn ack_from(from: u64, match_index: u64) -> ReplicaInput<u64> {
    ack_of_round(from, match_index, 0)
}

/// The same, answering an AppendEntries of read round `read_round`.
fn ack_of_round(from: u64, match_index: u64, read_round: u64) -> ReplicaInput<u64> {
    ReplicaInput::Peer {
        from: NodeId(from),
        msg: Message::AppendEntriesResponse(AppendEntriesResponse {
            term: 1,
            success: true,
            match_index,
            read_round,
        }),
    }
}

fn get(seq: u64) -> ReplicaInput<u64> {
    ReplicaInput::Client {
        command: Command {
            client_id: 2,
            seq,
            op: Op::Get { key: "k".into() },
        },
        reply: 100 + seq,
    }
}

#[test]
fn a_get_is_answered_after_a_heartbeat_round_without_writing_the_log() {
    let mut r = leader();
    let now = Duration::from_millis(1);
    r.turn(now, [put(1)]).unwrap();
    r.flush(now).unwrap();
    r.turn(now, [ack_from(1, 1)]).unwrap();
    assert_eq!(r.server().commit_index, 1);
    let staged = r.durable().staged;

    // The read: nothing staged, no reply yet, a heartbeat round carrying read round 1.
    let effects = r.turn(now, [get(1)]).unwrap();
    assert_eq!(r.durable().staged, staged, "a read writes nothing");
    assert!(!r.flush_due());
    assert!(effects.replies.is_empty());
    let rounds: Vec<u64> = effects
        .messages
        .iter()
        .filter_map(|(_, m)| match m {
            Message::AppendEntries(ae) => Some(ae.read_round),
            _ => None,
        })
        .collect();
    assert_eq!(rounds, vec![1, 1]);
    assert_eq!(r.server().last_log_index(), 1);

    // An echo of round 0 confirms nothing; one of round 1 makes a majority with the leader.
    let effects = r.turn(now, [ack_of_round(2, 1, 0)]).unwrap();
    assert!(effects.replies.is_empty());
    let effects = r.turn(now, [ack_of_round(2, 1, 1)]).unwrap();
    match &effects.replies[..] {
        [(101, ClientReply::Ok(OpResult::Value(Some(v))))] => assert_eq!(v, "v"),
        other => panic!("expected the read's value, got {other:?}"),
    }
    assert_eq!(r.durable().staged, staged);
}

#[test]
fn a_get_before_the_leader_commits_an_entry_of_its_term_goes_through_the_log() {
    let mut r = leader();
    let now = Duration::from_millis(1);
    let effects = r.turn(now, [get(1)]).unwrap();
    assert!(effects.replies.is_empty());
    assert_eq!(r.server().last_log_index(), 1, "the read was proposed");
    r.flush(now).unwrap();
    let effects = r.turn(now, [ack_from(1, 1)]).unwrap();
    assert!(matches!(
        effects.replies[..],
        [(101, ClientReply::Ok(OpResult::Value(None)))]
    ));
}

/// Server 1 of three, a follower that has never run.
fn follower() -> Replica<CountingDisk, u64> {
    let cfg = Config::new(NodeId(1), [NodeId(0), NodeId(2)]);
    Replica::new(
        cfg,
        Server::new(),
        CountingDisk::default(),
        options(),
        7,
        Duration::ZERO,
    )
    .unwrap()
}

#[test]
fn a_follower_redirects_a_get() {
    let mut r = follower();
    let effects = r.turn(Duration::from_millis(1), [get(1)]).unwrap();
    assert!(matches!(
        effects.replies[..],
        [(101, ClientReply::NotLeader { .. })]
    ));
    assert_eq!(r.durable().staged, 0);
}

#[test]
fn a_leader_sends_its_new_entries_before_its_own_sync_and_counts_them_after() {
    let mut r = leader();
    let now = Duration::from_millis(1);
    let effects = r.turn(now, [put(1)]).unwrap();
    let carried = effects
        .messages
        .iter()
        .filter(|(_, m)| matches!(m, Message::AppendEntries(ae) if ae.entries.len() == 1))
        .count();
    assert_eq!(carried, 2, "both followers get the entry at once");
    assert!(effects.replies.is_empty());
    assert_eq!(r.durable().unsynced(), 1, "returned before its own sync");
    assert!(r.flush_due());

    // The flush: one sync, then the leader counts its own copy; one copy is no majority.
    let effects = r.flush(now).unwrap();
    assert!(effects.replies.is_empty());
    assert_eq!(r.durable().unsynced(), 0);
    assert_eq!(
        (r.server().leader.persisted_index, r.server().commit_index),
        (1, 0)
    );
    // With one follower's acknowledgement, two durable copies: committed and answered.
    let effects = r.turn(now, [ack_from(1, 1)]).unwrap();
    assert_eq!(r.server().commit_index, 1);
    assert!(matches!(effects.replies[..], [(1, ClientReply::Ok(_))]));
}

#[test]
fn a_turn_after_a_missed_flush_flushes_first() {
    let mut r = leader();
    let now = Duration::from_millis(1);
    r.turn(now, [put(1)]).unwrap();
    let effects = r.turn(now, [ack_from(1, 1)]).unwrap();
    assert_eq!(r.durable().unsynced(), 0);
    assert!(!r.flush_due());
    assert!(matches!(effects.replies[..], [(1, ClientReply::Ok(_))]));
}

#[test]
fn an_entry_committed_by_the_followers_is_answered_without_waiting_for_newer_syncs() {
    let mut r = leader();
    let now = Duration::from_millis(1);
    r.turn(now, [put(1)]).unwrap();
    // Both followers acknowledge entry 1 while the client's next write arrives: the reply for
    // entry 1 leaves in the same turn, before the sync of entry 2.
    let effects = r
        .turn(now, [ack_from(1, 1), ack_from(2, 1), put(2)])
        .unwrap();
    assert!(matches!(effects.replies[..], [(1, ClientReply::Ok(_))]));
    assert_eq!(r.durable().unsynced(), 1, "entry 2 is still being written");
    assert!(r.flush_due());
}

#[test]
fn a_single_server_commits_at_its_flush() {
    let cfg = Config::new(NodeId(0), []);
    let mut server = Server::new();
    server.hard.current_term = 1;
    server.hard.voted_for = Some(NodeId(0));
    server.role = Role::Leader;
    let mut r = Replica::new(
        cfg,
        server,
        CountingDisk::default(),
        options(),
        7,
        Duration::ZERO,
    )
    .unwrap();
    let now = Duration::from_millis(1);
    let effects = r.turn(now, [put(1), put(2)]).unwrap();
    assert!(effects.replies.is_empty() && r.flush_due());
    let effects = r.flush(now).unwrap();
    assert_eq!(r.durable().unsynced(), 0);
    assert_eq!(effects.replies.len(), 2, "one sync answers the whole group");
}

#[test]
fn a_followers_reply_waits_for_its_sync() {
    let mut r = follower();
    let Some(ReplicaInput::Client { command, .. }) = Some(put(1)) else {
        unreachable!()
    };
    let request = Message::AppendEntries(AppendEntries {
        term: 1,
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![raft_core::Entry { term: 1, command }],
        leader_commit: 0,
        read_round: 0,
    });
    let effects = r
        .turn(
            Duration::from_millis(1),
            [ReplicaInput::Peer {
                from: NodeId(0),
                msg: request,
            }],
        )
        .unwrap();
    assert_eq!(effects.messages.len(), 1);
    assert_eq!(
        r.durable().unsynced(),
        0,
        "synced before the reply was returned"
    );
    assert!(!r.flush_due());
}

/// Server 0 of three in the node's configuration (PreVote, CheckQuorum), leader of term 1
/// since time zero, with an empty log; its election timeout is exactly 10 s.
fn checked_leader() -> Replica<CountingDisk, u64> {
    let cfg = crate::node::node_config(NodeId(0), (0..3).map(NodeId));
    assert!(cfg.check_quorum && cfg.pre_vote);
    let mut r = leader();
    r.cfg = cfg;
    r
}

/// What follower `from` answers to the AppendEntries `effects` sent it (success, at the
/// leader's last index: the log is empty or holds only what was sent), if any.
fn answers(effects: &Effects<u64>, from: u64, last_index: Index) -> Vec<ReplicaInput<u64>> {
    effects
        .messages
        .iter()
        .filter(|(to, m)| *to == NodeId(from) && matches!(m, Message::AppendEntries(_)))
        .map(|_| ack_from(from, last_index))
        .collect()
}

#[test]
fn a_leader_that_hears_from_no_peer_steps_down_after_its_election_timeout() {
    let mut r = checked_leader();
    // The heartbeats go out every second and nobody answers; the leader wakes for its check.
    let mut now = Duration::ZERO;
    while now < Duration::from_secs(10) {
        now = r.next_deadline();
        assert!(now <= Duration::from_secs(10), "the check is a deadline");
        let was = r.server().role;
        r.turn(now, []).unwrap();
        if now < Duration::from_secs(10) {
            assert_eq!(r.server().role, Role::Leader, "still leader at {now:?}");
        } else {
            assert_eq!(was, Role::Leader);
        }
    }
    assert_eq!(now, Duration::from_secs(10));
    assert_eq!(
        r.server().role,
        Role::Follower,
        "stepped down at its timeout"
    );
    assert_eq!(r.server().current_term(), 1, "in the same term");
    assert_eq!(r.server().leader_id, None);
    // Its election timer restarted: the next wake-up is its own pre-vote, 10 s later.
    assert_eq!(r.next_deadline(), Duration::from_secs(20));
    let effects = r.turn(Duration::from_secs(20), []).unwrap();
    assert_eq!(r.server().role, Role::PreCandidate);
    assert_eq!(r.server().current_term(), 1, "a pre-vote raises no term");
    let pre_votes = effects
        .messages
        .iter()
        .filter(|(_, m)| matches!(m, Message::PreVote(_)))
        .count();
    assert_eq!(pre_votes, 2);
}

#[test]
fn a_leader_that_hears_from_one_peer_stays_leader() {
    let mut r = checked_leader();
    // Peer 1 answers every AppendEntries at once; peer 2 is gone. Leader and peer 1 are a
    // majority of three, through many election timeouts.
    let mut inputs = Vec::new();
    let mut now = Duration::ZERO;
    while now < Duration::from_secs(60) {
        now = r.next_deadline();
        let effects = r.turn(now, std::mem::take(&mut inputs)).unwrap();
        assert_eq!(r.server().role, Role::Leader, "still leader at {now:?}");
        inputs = answers(&effects, 1, r.server().last_log_index());
    }
    assert_eq!(r.server().current_term(), 1);
}

#[test]
fn a_leader_whose_peer_falls_silent_steps_down_at_the_next_check() {
    let mut r = checked_leader();
    // Peer 1 answers the heartbeats until the one of 8 s (its answer arrives at 9 s): the
    // check at 10 s passes, the one at 20 s does not.
    let mut inputs = Vec::new();
    let mut now = Duration::ZERO;
    while r.server().role == Role::Leader {
        now = r.next_deadline();
        let effects = r.turn(now, std::mem::take(&mut inputs)).unwrap();
        if now < Duration::from_secs(9) {
            inputs = answers(&effects, 1, r.server().last_log_index());
        }
    }
    assert_eq!(now, Duration::from_secs(20));
    assert_eq!(r.server().current_term(), 1);
}

#[test]
fn without_check_quorum_a_lone_leader_stays_leader() {
    let mut r = leader();
    assert!(!r.config().check_quorum);
    let mut now = Duration::ZERO;
    while now < Duration::from_secs(60) {
        now = r.next_deadline();
        r.turn(now, []).unwrap();
        assert_eq!(r.server().role, Role::Leader);
    }
}

#[test]
fn a_new_leader_checks_its_quorum_a_full_election_timeout_after_it_won() {
    let cfg = crate::node::node_config(NodeId(0), (0..3).map(NodeId));
    let mut r: Replica<CountingDisk, u64> = Replica::new(
        cfg,
        Server::new(),
        CountingDisk::default(),
        options(),
        7,
        Duration::ZERO,
    )
    .unwrap();
    let secs = Duration::from_secs;
    // 10 s: the election timeout, a pre-vote round; 11 s: peer 1 grants it, the election
    // (its timer restarts: 21 s); 12 s: peer 1 votes, a leader.
    assert_eq!(r.next_deadline(), secs(10));
    r.turn(secs(10), []).unwrap();
    assert_eq!(r.server().role, Role::PreCandidate);
    let grant = |term, pre: bool| {
        let reply = RequestVoteResponse {
            term,
            vote_granted: true,
        };
        ReplicaInput::Peer {
            from: NodeId(1),
            msg: if pre {
                Message::PreVoteResponse(reply)
            } else {
                Message::RequestVoteResponse(reply)
            },
        }
    };
    r.turn(secs(11), [grant(1, true)]).unwrap();
    assert_eq!(r.server().role, Role::Candidate);
    r.turn(secs(12), [grant(1, false)]).unwrap();
    assert_eq!(r.server().role, Role::Leader);
    // Nobody answers its heartbeats: its first check is at 22 s, not at the candidate's 21 s.
    let mut now = secs(12);
    while r.server().role == Role::Leader {
        now = r.next_deadline();
        r.turn(now, []).unwrap();
    }
    assert_eq!(now, secs(22));
    assert_eq!(r.server().current_term(), 1);
}

/// An operator's transfer request, answered to `reply`.
fn transfer(to: u64, reply: u64) -> ReplicaInput<u64> {
    ReplicaInput::TransferLeadership {
        to: NodeId(to),
        reply,
    }
}

fn timeouts_now(effects: &Effects<u64>) -> Vec<NodeId> {
    effects
        .messages
        .iter()
        .filter(|(_, m)| matches!(m, Message::TimeoutNow(_)))
        .map(|(to, _)| *to)
        .collect()
}

#[test]
fn a_transfer_is_answered_once_the_leader_has_stepped_down_and_knows_the_target_leads() {
    let mut r = checked_leader();
    let now = Duration::from_millis(1);
    // Peer 1's log matches the (empty) log: TimeoutNow at once, and no answer yet.
    let effects = r.turn(now, [transfer(1, 7)]).unwrap();
    assert_eq!(timeouts_now(&effects), vec![NodeId(1)]);
    assert!(effects.replies.is_empty());
    assert_eq!(r.server().leader.transferee, Some(NodeId(1)));
    // Meanwhile writes go to the target.
    let mut addrs = BTreeMap::new();
    let node_1 = Address {
        peer: "peer-1".to_string(),
        client: "node-1".to_string(),
    };
    addrs.insert(NodeId(1), node_1);
    r.options.addresses = addrs;
    let effects = r.turn(now, [put(1)]).unwrap();
    assert!(matches!(
        &effects.replies[..],
        [(1, ClientReply::NotLeader { leader_hint: Some(h) })] if h == "node-1"
    ));
    // The target's election deposes the leader, which does not know the new leader yet.
    let vote = ReplicaInput::Peer {
        from: NodeId(1),
        msg: Message::RequestVote(raft_core::RequestVote {
            term: 2,
            last_log_index: 0,
            last_log_term: 0,
            transfer: true,
        }),
    };
    let effects = r.turn(now, [vote]).unwrap();
    assert_eq!(r.server().role, Role::Follower);
    assert!(effects.replies.is_empty(), "{:?}", effects.replies);
    // The new leader's first AppendEntries: the answer names it and its term.
    let heartbeat = ReplicaInput::Peer {
        from: NodeId(1),
        msg: Message::AppendEntries(AppendEntries {
            term: 2,
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![],
            leader_commit: 0,
            read_round: 0,
        }),
    };
    let effects = r.turn(now, [heartbeat]).unwrap();
    assert!(matches!(
        effects.replies[..],
        [(7, ClientReply::Leader { id: 1, term: 2 })]
    ));
    assert!(r.transfer.is_none());
}

#[test]
fn a_transfer_abandoned_at_the_election_timeout_is_answered_with_an_error() {
    let mut r = checked_leader();
    let now = Duration::from_millis(1);
    // Entry 1, acknowledged by peer 1 only: peer 2 is behind.
    r.turn(now, [put(1)]).unwrap();
    r.flush(now).unwrap();
    r.turn(now, [ack_from(1, 1)]).unwrap();
    let effects = r.turn(now, [transfer(2, 7)]).unwrap();
    assert!(
        timeouts_now(&effects).is_empty(),
        "peer 2 must catch up first"
    );
    assert!(effects.replies.is_empty());
    // Peer 2 never answers; at the election timeout (10 s) the leader, which heard from peer
    // 1, stays leader and abandons the transfer.
    let mut replies = Vec::new();
    while replies.is_empty() {
        let at = r.next_deadline();
        assert!(at <= Duration::from_secs(10), "no answer by {at:?}");
        let effects = r.turn(at, []).unwrap();
        replies = effects.replies;
    }
    assert_eq!(r.server().role, Role::Leader);
    match &replies[..] {
        [(7, ClientReply::Error(e))] => assert!(e.contains("abandoned"), "{e}"),
        other => panic!("expected the abandonment, got {other:?}"),
    }
    // Writes are taken again.
    r.turn(Duration::from_secs(10), [put(2)]).unwrap();
    assert_eq!(r.server().last_log_index(), 2);
}

#[test]
fn transfers_that_cannot_start_are_answered_at_once() {
    let mut r = checked_leader();
    let now = Duration::from_millis(1);
    let effects = r
        .turn(
            now,
            [
                transfer(0, 1),
                transfer(9, 2),
                ReplicaInput::Leader { reply: 3 },
            ],
        )
        .unwrap();
    match &effects.replies[..] {
        [(1, ClientReply::Leader { id: 0, term: 1 }), (2, ClientReply::Refused(why)), (3, ClientReply::Leader { id: 0, term: 1 })] =>
        {
            assert!(why.contains("node 9 is not a member"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert!(r.transfer.is_none());
    let mut f = follower();
    let effects = f
        .turn(now, [transfer(2, 1), ReplicaInput::Leader { reply: 2 }])
        .unwrap();
    assert!(matches!(
        effects.replies[..],
        [
            (1, ClientReply::NotLeader { leader_hint: None }),
            (2, ClientReply::NotLeader { leader_hint: None })
        ]
    ));
}
