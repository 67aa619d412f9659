//! Unit tests of log compaction and InstallSnapshot (compaction.rs, Figure 13).

use super::*;

use super::tests::{append, cfg, entry, receive, step, vote_reply, S};

fn install(term: Term, index: Index, last_term: Term, data: u8) -> Message<u8> {
    Message::InstallSnapshot(InstallSnapshot {
        term,
        snapshot: Snapshot {
            last_included_index: index,
            last_included_term: last_term,
            config: None,
            data: vec![data],
        },
        read_round: 0,
    })
}

/// Server 0, the follower of `follower(c, 4)`, elected leader of term 2 by server 1's vote,
/// then compacted up to 4.
fn compacted_leader(c: &Config) -> S {
    let mut s = follower(c, 4);
    step(&mut s, c, Event::ElectionTimeout);
    step(&mut s, c, receive(1, vote_reply(2, true)));
    assert_eq!(s.role, Role::Leader);
    step(
        &mut s,
        c,
        Event::Compact {
            index: 4,
            data: vec![1],
        },
    );
    s
}

/// The driver's snapshot of what `s` applied up to `index`, with image `data`.
fn compact(s: &mut S, c: &Config, index: Index, data: Vec<u8>) -> Output<u8> {
    step(s, c, Event::Compact { index, data })
}

/// The one reply a step sent: (success, match_index).
fn reply(out: &Output<u8>) -> (bool, Index) {
    match &out.messages[..] {
        [(_, Message::AppendEntriesResponse(r))] => (r.success, r.match_index),
        other => panic!("expected one AppendEntriesResponse, got {other:?}"),
    }
}

/// A follower of term 1 holding entries 1..=4 (term 1), committed and applied up to `commit`.
fn follower(c: &Config, commit: Index) -> S {
    let mut s = S::new();
    let entries = (1..=4).map(|k| entry(1, k)).collect();
    step(&mut s, c, receive(1, append(1, (0, 0), entries, commit)));
    assert_eq!(s.last_applied, commit);
    s
}

#[test]
fn compaction_replaces_the_applied_prefix_and_keeps_indices() {
    let c = cfg(0, 3);
    let mut s = follower(&c, 3);
    let out = compact(&mut s, &c, 2, vec![9]);
    assert!(out.persist.snapshot && out.persist.must_precede_messages());
    assert_eq!(s.snapshot_index(), 2);
    assert_eq!(s.snapshot().last_included_term, 1);
    assert_eq!(s.log().len(), 2, "entries 3 and 4 stay");
    assert_eq!(s.last_log_index(), 4);
    assert_eq!(s.term_at(2), Some(1), "the snapshot point keeps its term");
    assert_eq!(s.term_at(1), None, "a compacted entry is gone");
    assert_eq!(s.entry(3).map(|e| e.command), Some(3));
    assert_eq!(s.entries_from(1).len(), 2, "only what the log still holds");
    // A stale request changes nothing.
    let before = s.clone();
    let out = compact(&mut s, &c, 1, vec![]);
    assert_eq!(s, before);
    assert!(out.persist.is_empty());
}

#[test]
fn compacting_past_last_applied_is_a_violated_invariant() {
    let c = cfg(0, 3);
    let mut s = follower(&c, 2);
    let err = s
        .handle(
            &c,
            Event::Compact {
                index: 3,
                data: vec![],
            },
        )
        .unwrap_err();
    assert_eq!(
        err,
        CoreError::CompactBeyondApplied {
            index: 3,
            last_applied: 2
        }
    );
    assert!(err.is_fatal());
}

#[test]
fn a_restart_from_a_snapshot_has_applied_it() {
    let c = cfg(0, 3);
    let mut s = follower(&c, 3);
    compact(&mut s, &c, 3, vec![7]);
    let r = S::restart(&c, s.hard.clone());
    assert_eq!((r.commit_index, r.last_applied), (3, 3));
    assert_eq!(r.last_log_index(), 4);
    assert_eq!(r.last_log_term(), 1);
    // A leader's commit index of 4 applies only entry 4.
    let mut r = r;
    let out = step(&mut r, &c, receive(1, append(1, (4, 1), vec![], 4)));
    assert_eq!(out.apply.len(), 1);
    assert_eq!(out.apply[0].0, 4);
}

#[test]
fn append_entries_that_start_inside_the_snapshot_match_there() {
    let c = cfg(0, 3);
    let mut s = follower(&c, 3);
    compact(&mut s, &c, 3, vec![]);
    // A delayed request from prev 1 carrying entries 2..=5: 2 and 3 lie in the snapshot.
    let entries = vec![entry(1, 2), entry(1, 3), entry(1, 4), entry(1, 5)];
    let out = step(&mut s, &c, receive(1, append(1, (1, 1), entries, 3)));
    assert_eq!(reply(&out), (true, 5));
    assert_eq!(s.last_log_index(), 5);
    // Entirely inside: acknowledged without a check.
    let out = step(
        &mut s,
        &c,
        receive(1, append(1, (0, 0), vec![entry(1, 1)], 3)),
    );
    assert_eq!(reply(&out), (true, 1));
    assert_eq!(s.last_log_index(), 5, "nothing removed");
}

#[test]
fn install_snapshot_keeps_the_matching_suffix_and_discards_a_conflicting_log() {
    let c = cfg(0, 3);
    // Rule 6: the log holds the snapshot's last entry: the entries after it stay.
    let mut s = follower(&c, 1);
    let out = step(&mut s, &c, receive(1, install(1, 2, 1, 5)));
    assert_eq!(
        reply(&out),
        (true, 2),
        "acknowledges the snapshot's index only"
    );
    assert!(out.restore && out.persist.snapshot);
    assert_eq!(out.persist.truncated_after, None);
    assert_eq!((s.snapshot_index(), s.last_log_index()), (2, 4));
    assert_eq!((s.commit_index, s.last_applied), (2, 2));
    // Rule 7: a snapshot of another term at that index: the whole log goes.
    let mut s = follower(&c, 1);
    let out = step(&mut s, &c, receive(1, install(2, 3, 2, 5)));
    assert_eq!(reply(&out), (true, 3));
    assert_eq!(out.persist.truncated_after, Some(3));
    assert_eq!((s.snapshot_index(), s.last_log_index()), (3, 3));
    assert_eq!(s.last_log_term(), 2);
    assert_eq!(s.snapshot().data, vec![5]);
}

#[test]
fn an_older_snapshot_is_acknowledged_but_not_installed() {
    let c = cfg(0, 3);
    let mut s = follower(&c, 3);
    let before = s.clone();
    let out = step(&mut s, &c, receive(1, install(1, 2, 1, 5)));
    assert_eq!(reply(&out), (true, 2));
    assert!(!out.restore && !out.persist.snapshot);
    assert_eq!(s.hard, before.hard);
    assert_eq!(s.last_applied, 3);
}

#[test]
fn a_stale_leaders_snapshot_is_refused() {
    let c = cfg(0, 3);
    let mut s = follower(&c, 1);
    step(&mut s, &c, Event::ElectionTimeout); // term 2
    let out = step(&mut s, &c, receive(1, install(1, 4, 1, 5)));
    assert_eq!(reply(&out), (false, 4));
    assert_eq!(s.snapshot_index(), 0);
}

#[test]
fn a_leader_sends_its_snapshot_to_a_follower_that_needs_compacted_entries() {
    let c = cfg(0, 3);
    // Server 0 becomes leader of term 2 and compacts everything it applied.
    let mut s = compacted_leader(&c);
    // Follower 2 rejects with an empty log: next_index falls to 1, inside the snapshot.
    let rejected = Message::AppendEntriesResponse(AppendEntriesResponse {
        term: 2,
        success: false,
        match_index: 0,
        read_round: 0,
    });
    let out = step(&mut s, &c, receive(2, rejected));
    let sent: Vec<_> = out
        .messages
        .iter()
        .filter(|(to, _)| *to == NodeId(2))
        .collect();
    assert!(
        matches!(sent[..], [(_, Message::InstallSnapshot(ref m))] if m.snapshot.last_included_index == 4),
        "{sent:?}"
    );
    // Its acknowledgement moves match_index to the snapshot's index.
    let acked = Message::AppendEntriesResponse(AppendEntriesResponse {
        term: 2,
        success: true,
        match_index: 4,
        read_round: 0,
    });
    step(&mut s, &c, receive(2, acked));
    assert_eq!(s.leader.progress[&NodeId(2)].match_index, 4);
    assert_eq!(s.leader.progress[&NodeId(2)].next_index, 5);
}

#[test]
fn a_snapshot_carries_the_configuration_it_covers() {
    #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
    enum Cmd {
        Op,
        Config(Membership),
    }
    impl Payload for Cmd {
        fn payload_bytes(&self) -> usize {
            1
        }
        fn configuration(&self) -> Option<Membership> {
            match self {
                Cmd::Config(m) => Some(m.clone()),
                Cmd::Op => None,
            }
        }
    }
    let c = cfg(0, 3);
    let two = Membership::voters([NodeId(0), NodeId(1)]);
    let mut s: Server<Cmd> = Server::new();
    let entries = vec![
        Entry {
            term: 1,
            command: Cmd::Op,
        },
        Entry {
            term: 1,
            command: Cmd::Config(two.clone()),
        },
        Entry {
            term: 1,
            command: Cmd::Op,
        },
    ];
    let msg = Message::AppendEntries(AppendEntries {
        term: 1,
        prev_log_index: 0,
        prev_log_term: 0,
        entries,
        leader_commit: 3,
        read_round: 0,
    });
    s.handle(
        &c,
        Event::Receive {
            from: NodeId(1),
            msg,
        },
    )
    .unwrap();
    s.handle(
        &c,
        Event::Compact {
            index: 3,
            data: vec![],
        },
    )
    .unwrap();
    assert_eq!(s.snapshot().config, Some((2, two.clone())));
    let r = Server::restart(&c, s.hard.clone());
    assert_eq!(r.membership(&c), &two);
    assert_eq!(r.config_index(), 2);
}

#[test]
fn a_pipelining_leader_sends_one_snapshot_and_waits_for_its_answer() {
    let c = cfg(0, 3).with_pipeline(Some(Window {
        entries: 4,
        bytes: usize::MAX,
    }));
    let mut s = compacted_leader(&c);
    // Follower 2 acknowledges nothing it lacks: the leader probes from inside the snapshot.
    // (Before the fix, `fill_window` sent InstallSnapshot in a loop that never ended.)
    let rejected = Message::AppendEntriesResponse(AppendEntriesResponse {
        term: 2,
        success: false,
        match_index: 0,
        read_round: 0,
    });
    let out = step(&mut s, &c, receive(2, rejected));
    let snapshots = out
        .messages
        .iter()
        .filter(|(to, m)| *to == NodeId(2) && matches!(m, Message::InstallSnapshot(_)))
        .count();
    assert_eq!(snapshots, 1);
    assert!(s.leader.is_probing(NodeId(2)));
}
