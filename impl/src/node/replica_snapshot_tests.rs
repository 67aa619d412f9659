//! Log compaction in the replica (§7): the policy takes snapshots, a restarted replica starts
//! from its snapshot's image, a follower the leader's log no longer reaches installs the
//! leader's snapshot and then serves its data, and a snapshot that does not restore stops
//! the node.

use super::*;
use crate::kv::{Op, OpResult};
use raft_core::{AppendEntriesResponse, HardState, InstallSnapshot, Persist, Snapshot};

/// A disk that remembers whether it was asked to write a snapshot, and syncs.
#[derive(Default)]
struct Disk {
    snapshots_staged: usize,
    syncs: usize,
    /// The snapshots announced as written by the driver.
    written: Vec<Index>,
}

impl Durable<Command> for Disk {
    type Error = std::io::Error;
    fn stage(&mut self, _: &HardState<Command>, persist: &Persist) -> Result<(), Self::Error> {
        if persist.snapshot {
            self.snapshots_staged += 1;
        }
        Ok(())
    }
    fn sync(&mut self) -> Result<(), Self::Error> {
        self.syncs += 1;
        Ok(())
    }
    fn snapshot_written(&mut self, index: Index) {
        self.written.push(index);
    }
}

fn options(snapshot: SnapshotPolicy) -> ReplicaOptions {
    ReplicaOptions {
        election_timeout_min: Duration::from_secs(10),
        election_timeout_max: Duration::from_secs(10),
        heartbeat_interval: Duration::from_secs(1),
        addresses: BTreeMap::new(),
        cluster_id: 1,
        snapshot,
    }
}

fn every(entries: u64) -> SnapshotPolicy {
    SnapshotPolicy { entries, bytes: 0 }
}

fn put(seq: u64, key: &str, value: &str) -> ReplicaInput<u64> {
    ReplicaInput::Client {
        command: Command {
            client_id: 1,
            seq,
            op: Op::Put {
                key: key.into(),
                value: value.into(),
            },
        },
        reply: seq,
    }
}

fn ack(from: u64, term: u64, match_index: u64) -> ReplicaInput<u64> {
    ReplicaInput::Peer {
        from: NodeId(from),
        msg: Message::AppendEntriesResponse(AppendEntriesResponse {
            term,
            success: true,
            match_index,
            read_round: 0,
        }),
    }
}

/// Server 0 of three, leader of term 1 with an empty log, compacting as `policy` says.
fn leader(policy: SnapshotPolicy) -> Replica<Disk, u64> {
    let (cfg, server) = super::tests::leader_server();
    Replica::new(
        cfg,
        server,
        Disk::default(),
        options(policy),
        7,
        Duration::ZERO,
    )
    .unwrap()
}

/// The leader commits `n` puts (k1=v1 …) with follower 1's help; follower 2 hears nothing.
fn commit_puts(r: &mut Replica<Disk, u64>, first: u64, n: u64) {
    let now = Duration::from_millis(1);
    for seq in first..first + n {
        r.turn(now, [put(seq, &format!("k{seq}"), &format!("v{seq}"))])
            .unwrap();
        r.flush(now).unwrap();
        let effects = r.turn(now, [ack(1, 1, seq)]).unwrap();
        assert!(
            matches!(effects.replies[..], [(s, ClientReply::Ok(_))] if s == seq),
            "{:?}",
            effects.replies
        );
    }
}

#[test]
fn the_policy_compacts_every_n_applied_entries() {
    let mut r = leader(every(3));
    commit_puts(&mut r, 1, 2);
    assert_eq!((r.compactions(), r.server().snapshot_index()), (0, 0));
    commit_puts(&mut r, 3, 1);
    assert_eq!(r.compactions(), 1);
    let s = r.server();
    assert_eq!((s.snapshot_index(), s.last_applied), (3, 3));
    assert!(s.log().is_empty(), "the snapshot replaced the applied log");
    assert_eq!(r.durable().snapshots_staged, 1);
    // The image is the store's.
    let mut image = KvStore::new();
    image.restore(&s.snapshot().data).unwrap();
    assert_eq!(&image, r.kv());
    commit_puts(&mut r, 4, 5);
    assert_eq!((r.compactions(), r.server().snapshot_index()), (2, 6));
    assert_eq!(r.server().log().len(), 2);
}

#[test]
fn the_policy_compacts_by_bytes_and_never_when_off() {
    let mut r = leader(SnapshotPolicy {
        entries: 0,
        bytes: 200,
    });
    commit_puts(&mut r, 1, 8);
    // Each put of ~4-byte strings counts about 60 bytes: a snapshot every fourth entry.
    assert!(r.compactions() >= 1, "{}", r.compactions());
    let mut never = leader(SnapshotPolicy::NEVER);
    commit_puts(&mut never, 1, 20);
    assert_eq!(never.compactions(), 0);
    assert_eq!(never.server().log().len(), 20);
}

#[test]
fn a_restarted_replica_serves_the_data_of_its_snapshot() {
    let mut r = leader(every(3));
    commit_puts(&mut r, 1, 4);
    assert_eq!(r.server().snapshot_index(), 3);
    let hard = r.server().hard.clone();
    let cfg = r.config().clone();
    let server = Server::restart(&cfg, hard);
    assert_eq!(server.last_applied, 3);
    let mut restarted: Replica<Disk, u64> = Replica::new(
        cfg,
        server,
        Disk::default(),
        options(every(3)),
        9,
        Duration::ZERO,
    )
    .unwrap();
    restarted.record_applied();
    assert_eq!(restarted.take_applied(), vec![AppliedRecord::Snapshot(3)]);
    for k in 1..=3 {
        assert_eq!(
            restarted.kv().get(&format!("k{k}")).map(String::as_str),
            Some(format!("v{k}").as_str())
        );
    }
    assert_eq!(
        restarted.kv().get("k4"),
        None,
        "entry 4 is re-applied once committed"
    );
    // Its sessions came along: client 1's last request is answered from them, not redone.
    let mut kv = restarted.kv().clone();
    let retry = Command {
        client_id: 1,
        seq: 3,
        op: Op::Put {
            key: "k3".into(),
            value: "changed".into(),
        },
    };
    assert_eq!(kv.apply(&retry), OpResult::Value(None));
    assert_eq!(kv.get("k3").map(String::as_str), Some("v3"));
}

#[test]
fn a_snapshot_that_does_not_restore_stops_the_replica() {
    let cfg = Config::new(NodeId(1), [NodeId(0), NodeId(2)]);
    let hard = HardState {
        current_term: 1,
        snapshot: Snapshot {
            last_included_index: 5,
            last_included_term: 1,
            config: None,
            data: vec![1, 0xff, 0xff],
        },
        ..HardState::default()
    };
    let server = Server::restart(&cfg, hard);
    let r: Result<Replica<Disk, u64>, _> = Replica::new(
        cfg,
        server,
        Disk::default(),
        options(every(3)),
        9,
        Duration::ZERO,
    );
    match r {
        Err(ReplicaError::Restore { index: 5, .. }) => {}
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a corrupt snapshot was restored"),
    }
}

#[test]
fn a_lagging_follower_installs_the_leaders_snapshot_and_serves_its_data() {
    let mut l = leader(every(3));
    commit_puts(&mut l, 1, 4);
    // Follower 2 never answered: its next entries are compacted away, the heartbeat sends it
    // the snapshot.
    let effects = l.turn(Duration::from_secs(2), []).unwrap();
    let install: Vec<&InstallSnapshot> = effects
        .messages
        .iter()
        .filter_map(|(to, m)| match m {
            Message::InstallSnapshot(i) if *to == NodeId(2) => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(install.len(), 1, "{:?}", effects.messages);
    let install = install[0].clone();
    assert_eq!(install.snapshot.last_included_index, 3);

    let cfg = Config::new(NodeId(2), [NodeId(0), NodeId(1)]);
    let mut f: Replica<Disk, u64> = Replica::new(
        cfg,
        Server::new(),
        Disk::default(),
        options(SnapshotPolicy::NEVER),
        3,
        Duration::ZERO,
    )
    .unwrap();
    f.record_applied();
    let now = Duration::from_secs(2);
    let msg = Message::InstallSnapshot(install);
    let effects = f
        .turn(
            now,
            [ReplicaInput::Peer {
                from: NodeId(0),
                msg,
            }],
        )
        .unwrap();
    assert_eq!(f.installs(), 1);
    assert_eq!(f.durable().snapshots_staged, 1);
    assert_eq!(f.take_applied(), vec![AppliedRecord::Snapshot(3)]);
    let reply = effects.messages.iter().find_map(|(to, m)| match m {
        Message::AppendEntriesResponse(r) if *to == NodeId(0) => Some(*r),
        _ => None,
    });
    assert!(
        matches!(reply, Some(r) if r.success && r.match_index == 3),
        "{reply:?}"
    );
    assert_eq!(f.kv().get("k2").map(String::as_str), Some("v2"));

    // The leader learns the follower holds 3 and sends it entry 4 with its next heartbeat;
    // the follower then applies it.
    l.turn(now, [ack(2, 1, 3)]).unwrap();
    let effects = l.turn(Duration::from_secs(3), []).unwrap();
    let append: Vec<_> = effects
        .messages
        .into_iter()
        .filter(|(to, m)| *to == NodeId(2) && matches!(m, Message::AppendEntries(_)))
        .map(|(_, msg)| ReplicaInput::Peer {
            from: NodeId(0),
            msg,
        })
        .collect();
    assert!(!append.is_empty());
    f.turn(now, append).unwrap();
    assert_eq!(f.server().last_applied, 4);
    assert_eq!(f.kv().get("k4").map(String::as_str), Some("v4"));
    assert!(matches!(f.take_applied()[..], [AppliedRecord::Entry(4, _)]));

    // Its store is the leader's, sessions included.
    assert_eq!(f.kv(), l.kv());
}

#[test]
fn a_large_snapshot_waits_for_a_log_as_large_as_itself() {
    let policy = SnapshotPolicy::default();
    let big = SnapshotPolicy::AMORTIZED_ABOVE * 4;
    // A small snapshot: the entry bound alone decides.
    assert!(!policy.due(SnapshotPolicy::DEFAULT_ENTRIES - 1, 1_000, 1_000));
    assert!(policy.due(SnapshotPolicy::DEFAULT_ENTRIES, 1_000, 1_000));
    assert!(policy.due(
        SnapshotPolicy::DEFAULT_ENTRIES,
        1_000,
        SnapshotPolicy::AMORTIZED_ABOVE
    ));
    // A large one: the bound is reached, but the log since it is smaller than it.
    assert!(!policy.due(SnapshotPolicy::DEFAULT_ENTRIES, big - 1, big));
    assert!(policy.due(SnapshotPolicy::DEFAULT_ENTRIES, big, big));
    // Nothing applied, or never: no snapshot.
    assert!(!policy.due(0, 0, 0));
    assert!(!SnapshotPolicy::NEVER.due(1 << 40, 1 << 40, 0));
}

/// Commits puts `first..first + n` as `commit_puts` does; returns the snapshots handed to the
/// driver on the way.
fn commit_puts_handing_out(r: &mut Replica<Disk, u64>, first: u64, n: u64) -> Vec<Snapshot> {
    let now = Duration::from_millis(1);
    let mut handed = Vec::new();
    for seq in first..first + n {
        let effects = r
            .turn(now, [put(seq, &format!("k{seq}"), &format!("v{seq}"))])
            .unwrap();
        handed.extend(effects.snapshot.map(SnapshotJob::encode));
        handed.extend(r.flush(now).unwrap().snapshot.map(SnapshotJob::encode));
        let effects = r.turn(now, [ack(1, 1, seq)]).unwrap();
        assert!(
            matches!(effects.replies[..], [(s, ClientReply::Ok(_))] if s == seq),
            "{:?}",
            effects.replies
        );
        handed.extend(effects.snapshot.map(SnapshotJob::encode));
    }
    handed
}

/// With the driver writing snapshot files (the node's writer thread), a due snapshot is handed
/// out, the same the core would make, and the log is compacted only when it comes back
/// written; meanwhile the replica serves and hands out no second one.
#[test]
fn a_deferred_snapshot_compacts_only_once_the_driver_wrote_it() {
    let mut r = leader(every(3));
    r.defer_snapshot_writes();
    assert!(commit_puts_handing_out(&mut r, 1, 2).is_empty());
    let handed = commit_puts_handing_out(&mut r, 3, 1);
    assert_eq!(handed.len(), 1);
    let snapshot = handed.into_iter().next().unwrap();
    assert_eq!(snapshot.last_included_index, 3);
    // The very snapshot a replica compacting in its turn makes.
    let mut in_turn = leader(every(3));
    commit_puts(&mut in_turn, 1, 3);
    assert_eq!(&snapshot, in_turn.server().snapshot());
    assert_eq!(r.snapshot_in_flight(), Some(3));
    assert_eq!((r.compactions(), r.server().snapshot_index()), (0, 0));
    assert_eq!(r.durable().snapshots_staged, 0);

    // Serving goes on; one write at a time: nothing more is handed out.
    assert!(commit_puts_handing_out(&mut r, 4, 4).is_empty());
    assert_eq!(r.server().log().len(), 7);

    let now = Duration::from_millis(2);
    let effects = r
        .turn(now, [ReplicaInput::SnapshotWritten(snapshot)])
        .unwrap();
    assert_eq!(r.durable().written, [3]);
    assert_eq!(r.durable().snapshots_staged, 1);
    assert_eq!((r.compactions(), r.server().snapshot_index()), (1, 3));
    assert_eq!(r.server().log().len(), 4, "entries 4..=7 stay");

    // Four entries applied since 3: the next one is due at once, and it is the store's.
    let next = effects.snapshot.expect("the next snapshot").encode();
    assert_eq!(next.last_included_index, 7);
    assert_eq!(r.snapshot_in_flight(), Some(7));
    let mut image = KvStore::new();
    image.restore(&next.data).unwrap();
    assert_eq!(&image, r.kv());
}

/// A follower writing its own snapshot off the loop installs a newer one from the leader
/// meanwhile: when its write comes back, the compaction is a no-op (the installed snapshot
/// covers more) and the disk is told, so that it removes the superseded file.
#[test]
fn a_deferred_snapshot_an_installed_one_overtook_compacts_nothing() {
    let mut l = leader(SnapshotPolicy::NEVER);
    let cfg = Config::new(NodeId(2), [NodeId(0), NodeId(1)]);
    let mut f: Replica<Disk, u64> = Replica::new(
        cfg,
        Server::new(),
        Disk::default(),
        options(every(3)),
        3,
        Duration::ZERO,
    )
    .unwrap();
    f.defer_snapshot_writes();
    // The follower gets entries 1..=4 and learns 3 of them committed: its own snapshot at 3
    // is handed out.
    let now = Duration::from_millis(1);
    let mut handed = Vec::new();
    for seq in 1..=4 {
        let effects = l
            .turn(now, [put(seq, &format!("k{seq}"), &format!("v{seq}"))])
            .unwrap();
        let mut to_f: Vec<_> = effects.messages;
        to_f.extend(l.flush(now).unwrap().messages);
        to_f.extend(l.turn(now, [ack(1, 1, seq)]).unwrap().messages);
        let inputs: Vec<_> = to_f
            .into_iter()
            .filter(|(to, _)| *to == NodeId(2))
            .map(|(_, msg)| ReplicaInput::Peer {
                from: NodeId(0),
                msg,
            })
            .collect();
        let effects = f.turn(now, inputs).unwrap();
        handed.extend(effects.snapshot);
    }
    assert!(f.server().last_applied >= 3, "{}", f.server().last_applied);
    let job = handed.pop().expect("the follower's own snapshot");
    assert!(handed.is_empty());
    let own = job.last_included_index;
    assert_eq!(f.snapshot_in_flight(), Some(own));

    // The leader, meanwhile further, sends a newer snapshot; the follower installs it.
    commit_puts(&mut l, 5, 3);
    let install = Snapshot {
        last_included_index: l.server().last_applied,
        last_included_term: 1,
        config: None,
        data: l.kv().image(),
    };
    assert!(install.last_included_index > own);
    let msg = Message::InstallSnapshot(InstallSnapshot {
        term: 1,
        snapshot: install.clone(),
        read_round: 0,
    });
    f.turn(
        now,
        [ReplicaInput::Peer {
            from: NodeId(0),
            msg,
        }],
    )
    .unwrap();
    assert_eq!(f.installs(), 1);

    // Its own write comes back: nothing compacts, the disk hears of the file.
    f.turn(now, [ReplicaInput::SnapshotWritten(job.encode())])
        .unwrap();
    assert_eq!(f.compactions(), 0);
    assert_eq!(f.server().snapshot(), &install);
    assert_eq!(f.durable().written, [own]);
    assert_eq!(f.snapshot_in_flight(), None);
    assert_eq!(f.kv(), l.kv());
}
