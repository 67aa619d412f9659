//! Unit tests of membership changes (thesis ch. 4, `membership.rs`).

use super::*;

/// A command of these tests: a client's value, or a configuration entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Op {
    Put(u8),
    Config(Membership),
}

impl Payload for Op {
    fn payload_bytes(&self) -> usize {
        2
    }
    fn configuration(&self) -> Option<Membership> {
        match self {
            Op::Config(m) => Some(m.clone()),
            Op::Put(_) => None,
        }
    }
}

/// Propose the configuration entry for `change`.
fn propose_change(s: &mut S, c: &Config, which: ConfigChange) -> Option<ProposeResult> {
    match s.configuration_after(c, which) {
        Ok(m) => propose(s, c, Op::Config(m)),
        Err(why) => Some(ProposeResult::ConfigRefused(why)),
    }
}

/// The configuration entry `s` would append for `change`.
fn change(s: &S, c: &Config, change: ConfigChange) -> Op {
    Op::Config(s.membership(c).changed(change))
}

type S = Server<Op>;

fn n(id: u64) -> NodeId {
    NodeId(id)
}

fn cfg(id: u64) -> Config {
    Config::new(n(id), [0, 1, 2].map(n))
}

fn step(s: &mut S, c: &Config, event: Event<Op>) -> Output<Op> {
    s.handle(c, event).expect("a step of the correct protocol")
}

fn receive(from: u64, msg: Message<Op>) -> Event<Op> {
    Event::Receive { from: n(from), msg }
}

fn ack(from: u64, term: Term, match_index: Index) -> Event<Op> {
    receive(
        from,
        Message::AppendEntriesResponse(AppendEntriesResponse {
            term,
            success: true,
            match_index,
            read_round: 0,
        }),
    )
}

fn propose(s: &mut S, c: &Config, op: Op) -> Option<ProposeResult> {
    let out = step(s, c, Event::Propose(op));
    if let Some(ProposeResult::Accepted { term, index }) = out.propose {
        step(s, c, Event::Persisted { term, index });
    }
    out.propose
}

/// Server 0, leader of term 1 in {0, 1, 2}, its log empty.
fn new_leader(c: &Config) -> S {
    let mut s = S::new();
    step(&mut s, c, Event::ElectionTimeout);
    let granted = Message::RequestVoteResponse(RequestVoteResponse {
        term: 1,
        vote_granted: true,
    });
    step(&mut s, c, receive(1, granted));
    assert_eq!(s.role, Role::Leader);
    s
}

/// `new_leader`, with one value of its term committed (by server 1).
fn settled_leader(c: &Config) -> S {
    let mut s = new_leader(c);
    assert!(matches!(
        propose(&mut s, c, Op::Put(1)),
        Some(ProposeResult::Accepted { .. })
    ));
    step(&mut s, c, ack(1, 1, 1));
    assert_eq!(s.commit_index, 1);
    s
}

fn refused(r: ConfigRefusal) -> Option<ProposeResult> {
    Some(ProposeResult::ConfigRefused(r))
}

#[test]
fn a_change_waits_for_an_entry_of_the_leaders_own_term() {
    let c = cfg(0);
    let mut s = new_leader(&c);
    let add = change(&s, &c, ConfigChange::AddLearner(n(3)));
    assert_eq!(
        propose(&mut s, &c, add.clone()),
        refused(ConfigRefusal::NotCommittedInTerm)
    );
    assert_eq!(s.last_log_index(), 0, "nothing was appended");
    let mut s = settled_leader(&c);
    assert!(matches!(
        propose(&mut s, &c, add),
        Some(ProposeResult::Accepted { index: 2, .. })
    ));
}

#[test]
fn one_change_at_a_time() {
    let c = cfg(0);
    let mut s = settled_leader(&c);
    propose_change(&mut s, &c, ConfigChange::AddLearner(n(3)));
    let second = change(&s, &c, ConfigChange::AddLearner(n(4)));
    assert_eq!(
        propose(&mut s, &c, second.clone()),
        refused(ConfigRefusal::ChangePending)
    );
    step(&mut s, &c, ack(1, 1, 2));
    assert_eq!(s.commit_index, 2);
    assert!(matches!(
        propose(&mut s, &c, second),
        Some(ProposeResult::Accepted { .. })
    ));
}

#[test]
fn a_configuration_takes_effect_when_appended_and_is_undone_by_truncation() {
    // The leader replicates to a learner as soon as it appends it.
    let c = cfg(0);
    let mut s = settled_leader(&c);
    propose_change(&mut s, &c, ConfigChange::AddLearner(n(3)));
    assert_eq!(s.config_index(), 2);
    assert!(s.membership(&c).learners.contains(&n(3)));
    let out = step(&mut s, &c, Event::Heartbeat);
    assert!(out.messages.iter().any(|(to, _)| *to == n(3)));

    // A follower uses the configuration of its log before it is committed, and drops it with
    // the entry.
    let c1 = cfg(1);
    let mut f = S::new();
    let entries = vec![
        Entry {
            term: 1,
            command: Op::Put(1),
        },
        Entry {
            term: 1,
            command: Op::Config(c1.initial.changed(ConfigChange::Remove(n(2)))),
        },
    ];
    let append = |term, entries, commit| {
        Message::AppendEntries(AppendEntries {
            term,
            prev_log_index: 0,
            prev_log_term: 0,
            entries,
            leader_commit: commit,
            read_round: 0,
        })
    };
    step(&mut f, &c1, receive(0, append(1, entries, 0)));
    assert_eq!(f.membership(&c1).voters, [0, 1].map(n).into());
    let replaced = vec![Entry {
        term: 2,
        command: Op::Put(2),
    }];
    step(&mut f, &c1, receive(2, append(2, replaced, 0)));
    assert_eq!(f.config_index(), 0);
    assert_eq!(f.membership(&c1), &c1.initial);
}

#[test]
fn learners_neither_campaign_nor_count() {
    let c = cfg(0);
    let mut s = settled_leader(&c);
    propose_change(&mut s, &c, ConfigChange::AddLearner(n(3)));
    // The learner's acknowledgement alone commits nothing: 0 and 3 are not a majority of
    // the voters {0, 1, 2}.
    step(&mut s, &c, ack(3, 1, 2));
    assert_eq!(s.commit_index, 1);
    step(&mut s, &c, ack(2, 1, 2));
    assert_eq!(s.commit_index, 2);

    // The learner, holding that log, does not campaign.
    let c3 = Config::joining(n(3));
    let mut learner = S::restart(
        &c3,
        HardState {
            snapshot: Default::default(),
            current_term: 1,
            voted_for: None,
            log: s.log().to_vec().into(),
        },
    );
    assert!(learner.membership(&c3).learners.contains(&n(3)));
    let out = step(&mut learner, &c3, Event::ElectionTimeout);
    assert_eq!(learner.role, Role::Follower);
    assert!(out.messages.is_empty());
    assert_eq!(learner.current_term(), 1);
}

#[test]
fn a_learner_is_promoted_only_once_caught_up() {
    let c = cfg(0);
    let mut s = settled_leader(&c);
    propose_change(&mut s, &c, ConfigChange::AddLearner(n(3)));
    step(&mut s, &c, ack(1, 1, 2));
    let promote = change(&s, &c, ConfigChange::Promote(n(3)));
    assert_eq!(
        propose(&mut s, &c, promote.clone()),
        refused(ConfigRefusal::LearnerBehind)
    );
    step(&mut s, &c, ack(3, 1, 2));
    assert!(matches!(
        propose(&mut s, &c, promote),
        Some(ProposeResult::Accepted { index: 3, .. })
    ));
    // Four voters now: a commit needs three of them.
    assert_eq!(s.membership(&c).voters.len(), 4);
    step(&mut s, &c, ack(1, 1, 3));
    assert_eq!(s.commit_index, 2);
    step(&mut s, &c, ack(3, 1, 3));
    assert_eq!(s.commit_index, 3);
}

#[test]
fn invalid_changes_are_refused() {
    let c = cfg(0);
    let mut s = settled_leader(&c);
    for (op, why) in [
        (ConfigChange::AddLearner(n(1)), ConfigRefusal::AlreadyMember),
        (ConfigChange::Promote(n(1)), ConfigRefusal::NotALearner),
        (ConfigChange::Remove(n(7)), ConfigRefusal::NotAMember),
    ] {
        assert_eq!(propose_change(&mut s, &c, op), refused(why), "{op}");
    }
    // The leader itself refuses any entry that is not one single-server change.
    let mut straight_in = s.membership(&c).clone();
    straight_in.voters.insert(n(3));
    let mut two = s.membership(&c).clone();
    two.voters.remove(&n(1));
    two.voters.remove(&n(2));
    let mut demoted = s.membership(&c).clone();
    demoted.voters.remove(&n(1));
    demoted.learners.insert(n(1));
    for m in [straight_in, two, demoted, c.initial.clone()] {
        assert_eq!(
            propose(&mut s, &c, Op::Config(m)),
            refused(ConfigRefusal::NotASingleChange)
        );
    }
    assert_eq!(s.last_log_index(), 1);
    // A single voter cannot remove itself.
    let solo = Config::new(n(0), []);
    let mut s = S::new();
    step(&mut s, &solo, Event::ElectionTimeout);
    propose(&mut s, &solo, Op::Put(1));
    assert_eq!(s.commit_index, 1);
    assert_eq!(
        propose_change(&mut s, &solo, ConfigChange::Remove(n(0))),
        refused(ConfigRefusal::LastVoter)
    );
}

#[test]
fn a_removed_leader_does_not_count_itself_and_steps_down_once_committed() {
    let c = cfg(0);
    let mut s = settled_leader(&c);
    propose_change(&mut s, &c, ConfigChange::Remove(n(0)));
    // Voters {1, 2}: server 1's acknowledgement alone is not a majority of them.
    step(&mut s, &c, ack(1, 1, 2));
    assert_eq!(s.commit_index, 1);
    assert_eq!(s.role, Role::Leader);
    step(&mut s, &c, ack(2, 1, 2));
    assert_eq!(s.commit_index, 2);
    assert_eq!(
        s.role,
        Role::Follower,
        "steps down once its removal is committed"
    );
    assert_eq!(s.current_term(), 1);
    // Outside the configuration, it never campaigns again.
    let out = step(&mut s, &c, Event::ElectionTimeout);
    assert!(out.messages.is_empty());
    assert_eq!(s.current_term(), 1);
}

#[test]
fn a_leader_that_removed_itself_campaigns_until_its_removal_is_committed() {
    // Server 0 appended its own removal and lost its leadership before committing it;
    // server 1 lacks the entry, so only server 0 can win, counting 1's vote alone.
    let c = cfg(0);
    let mut s = settled_leader(&c);
    propose_change(&mut s, &c, ConfigChange::Remove(n(0)));
    let later = Message::AppendEntriesResponse(AppendEntriesResponse {
        term: 2,
        success: false,
        match_index: 0,
        read_round: 0,
    });
    step(&mut s, &c, receive(2, later));
    assert_eq!(s.role, Role::Follower);
    assert!(!s.is_voter(&c) && s.may_campaign(&c));
    let out = step(&mut s, &c, Event::ElectionTimeout);
    assert_eq!(s.role, Role::Candidate);
    let asked: Vec<u64> = out.messages.iter().map(|(to, _)| to.0).collect();
    assert_eq!(
        asked,
        vec![1, 2],
        "it asks the voters of its latest configuration"
    );
    let granted = Message::RequestVoteResponse(RequestVoteResponse {
        term: 3,
        vote_granted: true,
    });
    step(&mut s, &c, receive(1, granted.clone()));
    assert_eq!(s.role, Role::Candidate, "its own vote does not count");
    step(&mut s, &c, receive(2, granted));
    assert_eq!(s.role, Role::Leader);
}

#[test]
fn a_joining_server_waits_to_be_added_and_a_restart_rebuilds_the_configuration() {
    let c = Config::joining(n(3));
    let mut s = S::new();
    let out = step(&mut s, &c, Event::ElectionTimeout);
    assert!(out.messages.is_empty() && s.current_term() == 0);

    let leader_cfg = cfg(0);
    let mut leader = settled_leader(&leader_cfg);
    let add = change(&leader, &leader_cfg, ConfigChange::AddLearner(n(3)));
    propose(&mut leader, &leader_cfg, add);
    step(&mut leader, &leader_cfg, ack(3, 1, 2));
    step(&mut leader, &leader_cfg, ack(1, 1, 2));
    let promote = change(&leader, &leader_cfg, ConfigChange::Promote(n(3)));
    propose(&mut leader, &leader_cfg, promote);
    let hard = HardState {
        snapshot: Default::default(),
        current_term: 1,
        voted_for: None,
        log: leader.log().to_vec().into(),
    };
    let mut s = S::restart(&c, hard);
    assert_eq!(s.config_index(), 3);
    assert_eq!(s.membership(&c).voters, [0, 1, 2, 3].map(n).into());
    let out = step(&mut s, &c, Event::ElectionTimeout);
    assert_eq!(s.role, Role::Candidate, "a voter now");
    assert_eq!(out.messages.len(), 3);
}

#[test]
fn majorities_overlap_across_one_change_and_not_across_two() {
    let m = |v: &[u64]| Membership::voters(v.iter().map(|i| n(*i)));
    let four = m(&[1, 2, 3, 4]);
    // One change apart: every pair of majorities overlaps.
    assert!(four.majorities_overlap(&m(&[1, 2, 3])));
    assert!(four.majorities_overlap(&m(&[1, 2, 3, 4, 5])));
    assert!(m(&[1]).majorities_overlap(&m(&[1, 2])));
    // Two sibling changes of the same configuration (the July 2015 counterexample's shape).
    assert!(!m(&[2, 3, 4]).majorities_overlap(&m(&[1, 2, 3])));
    // Two changes in a row.
    assert!(!m(&[1, 2, 3]).majorities_overlap(&m(&[1])));
    // Symmetric.
    assert!(!m(&[1]).majorities_overlap(&m(&[1, 2, 3])));
}

/// Thesis §9.6 with ch. 4: a learner's election timeout ends its lease like a voter's, though
/// it does not campaign; after it, the learner answers a PreVote again. (Found by the
/// interplay bound of membership changes and CheckQuorum: a learner promoted in the leader's
/// log but not in its own ignored the deposed leader's campaign forever.)
#[test]
fn a_learners_lease_ends_with_its_election_timeout() {
    let c = cfg(0);
    let mut s = settled_leader(&c);
    propose_change(&mut s, &c, ConfigChange::AddLearner(n(3)));
    let c3 = Config::joining(n(3))
        .with_check_quorum(true)
        .with_pre_vote(true);
    let mut learner = S::restart(
        &c3,
        HardState {
            snapshot: Default::default(),
            current_term: 1,
            voted_for: None,
            log: s.log().to_vec().into(),
        },
    );
    learner.leader_id = Some(n(0));
    let pre_vote = || {
        receive(
            0,
            Message::PreVote(RequestVote {
                term: 2,
                last_log_index: 5,
                last_log_term: 1,
                transfer: false,
            }),
        )
    };
    // In the lease: the pre-vote is ignored.
    assert!(step(&mut learner, &c3, pre_vote()).messages.is_empty());
    let out = step(&mut learner, &c3, Event::ElectionTimeout);
    assert!(out.messages.is_empty(), "a learner does not campaign");
    assert_eq!(learner.leader_id, None);
    // Out of it: granted.
    let out = step(&mut learner, &c3, pre_vote());
    assert!(
        matches!(&out.messages[..], [(to, Message::PreVoteResponse(r))] if *to == n(0) && r.vote_granted),
        "{:?}",
        out.messages
    );
}

fn addr(peer: &str) -> Address {
    Address {
        peer: peer.to_string(),
        client: format!("client of {peer}"),
    }
}

#[test]
fn change_to_tells_an_address_change_apart_from_other_differences() {
    let base = Membership::voters([0, 1, 2].map(n)).with_address(n(1), addr("a1"));
    let learner = |m: &Membership| m.changed(ConfigChange::AddLearner(n(3)));
    // Added with its address, or without one; removed with its address.
    let added = learner(&base).with_address(n(3), addr("a3"));
    assert_eq!(base.change_to(&added), Some(ConfigChange::AddLearner(n(3))));
    assert_eq!(
        base.change_to(&learner(&base)),
        Some(ConfigChange::AddLearner(n(3)))
    );
    let removed = base.changed(ConfigChange::Remove(n(1)));
    assert!(
        removed.address(n(1)).is_none(),
        "the address leaves with it"
    );
    assert_eq!(base.change_to(&removed), Some(ConfigChange::Remove(n(1))));
    // An address given or changed, alone: a change of its own.
    let moved = base.clone().with_address(n(1), addr("b1"));
    assert_eq!(base.change_to(&moved), Some(ConfigChange::Readdress(n(1))));
    let given = base.clone().with_address(n(2), addr("a2"));
    assert_eq!(base.change_to(&given), Some(ConfigChange::Readdress(n(2))));
    // Anything else is not one change.
    assert_eq!(base.change_to(&base), None, "no change at all");
    let two_addresses = moved.clone().with_address(n(2), addr("a2"));
    assert_eq!(base.change_to(&two_addresses), None, "two addresses");
    let beside = learner(&base).with_address(n(1), addr("b1"));
    assert_eq!(
        base.change_to(&beside),
        None,
        "an address beside an added learner"
    );
    let mut dropped = base.clone();
    dropped.addresses.remove(&n(1));
    assert_eq!(base.change_to(&dropped), None, "a member's address dropped");
    let stranger = base.clone().with_address(n(7), addr("a7"));
    assert_eq!(
        base.change_to(&stranger),
        None,
        "an address of a non-member"
    );
}

#[test]
fn an_address_change_is_a_configuration_change() {
    let c = cfg(0);
    let mut s = settled_leader(&c);
    let readdress = |s: &S, id: u64, a: &str| {
        s.configuration_after(&c, ConfigChange::Readdress(n(id)))
            .map(|m| Op::Config(m.with_address(n(id), addr(a))))
    };
    assert_eq!(
        readdress(&s, 5, "a5"),
        Err(ConfigRefusal::NotAMember),
        "only a member has an address"
    );
    let first = readdress(&s, 1, "b1").unwrap();
    assert!(matches!(
        propose(&mut s, &c, first),
        Some(ProposeResult::Accepted { index: 2, .. })
    ));
    assert_eq!(s.membership(&c).address(n(1)), Some(&addr("b1")));
    let second = readdress(&s, 2, "b2").unwrap();
    assert_eq!(
        propose(&mut s, &c, second),
        refused(ConfigRefusal::ChangePending),
        "one change at a time, addresses included"
    );
    let both = s
        .configuration_after(&c, ConfigChange::AddLearner(n(3)))
        .unwrap()
        .with_address(n(2), addr("b2"));
    step(&mut s, &c, ack(1, 1, 2));
    assert_eq!(
        propose(&mut s, &c, Op::Config(both)),
        refused(ConfigRefusal::NotASingleChange)
    );
}

#[test]
fn addresses_travel_in_snapshots_and_survive_a_restart() {
    let c = cfg(1);
    let moved = Membership::voters([0, 1, 2].map(n)).with_address(n(2), addr("b2"));
    // A follower that knows nothing installs a snapshot that holds the configuration entry.
    let mut s = S::new();
    let install = Message::InstallSnapshot(InstallSnapshot {
        term: 1,
        snapshot: Snapshot {
            last_included_index: 3,
            last_included_term: 1,
            config: Some((2, moved.clone())),
            data: vec![],
        },
        read_round: 0,
    });
    step(&mut s, &c, receive(0, install));
    assert_eq!(s.membership(&c).address(n(2)), Some(&addr("b2")));
    let restarted = S::restart(&c, s.hard.clone());
    assert_eq!(restarted.membership(&c), &moved);
}
