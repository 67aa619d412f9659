//! The replica's durability order with a leader's entries written behind: its AppendEntries
//! leave before its own sync, nothing it counts on its own copy is answered before that sync,
//! and a follower's reply still waits for the follower's sync.

use super::*;
use crate::kv::{Op, OpResult};
use raft_core::{AppendEntries, AppendEntriesResponse, HardState, Persist};

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
        client_addrs: BTreeMap::new(),
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

/// Server 0 of three, leader of term 1 with an empty log (as elected: all durable).
fn leader() -> Replica<CountingDisk, u64> {
    let cfg = Config::new(NodeId(0), [NodeId(1), NodeId(2)]);
    let mut server = Server::new();
    server.hard.current_term = 1;
    server.hard.voted_for = Some(NodeId(0));
    server.role = Role::Leader;
    server.leader_id = Some(NodeId(0));
    for p in [NodeId(1), NodeId(2)] {
        server.next_index.insert(p, 1);
        server.match_index.insert(p, 0);
    }
    Replica::new(
        cfg,
        server,
        CountingDisk::default(),
        options(),
        7,
        Duration::ZERO,
    )
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
        (r.server().persisted_index, r.server().commit_index),
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
    );
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
