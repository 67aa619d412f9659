//! Unit tests of the core: hand-written scenarios for the rules, and a proptest that drives one
//! server with random event sequences and checks its local invariants after every step.

use super::*;
use proptest::prelude::*;

pub(super) type S = Server<u8>;

pub(super) fn cfg(id: u64, n: u64) -> Config {
    Config::new(NodeId(id), (0..n).map(NodeId))
}

pub(super) fn entry(term: Term, command: u8) -> Entry<u8> {
    Entry { term, command }
}

pub(super) fn receive(from: u64, msg: Message<u8>) -> Event<u8> {
    Event::Receive {
        from: NodeId(from),
        msg,
    }
}

pub(super) fn append(
    term: Term,
    prev: (Index, Term),
    entries: Vec<Entry<u8>>,
    commit: Index,
) -> Message<u8> {
    Message::AppendEntries(AppendEntries {
        term,
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entries,
        leader_commit: commit,
        read_round: 0,
    })
}

pub(super) fn vote_reply(term: Term, vote_granted: bool) -> Message<u8> {
    Message::RequestVoteResponse(RequestVoteResponse { term, vote_granted })
}

pub(super) fn append_reply(term: Term, success: bool, match_index: Index) -> Message<u8> {
    Message::AppendEntriesResponse(AppendEntriesResponse {
        term,
        success,
        match_index,
        read_round: 0,
    })
}

/// Server 0 restarted in term 1 with `log`, then elected leader of term 2 by server 1's vote.
fn leader_of_term_2(c: &Config, log: Vec<Entry<u8>>) -> S {
    let hard = HardState {
        snapshot: Default::default(),
        current_term: 1,
        voted_for: None,
        log: log.into(),
    };
    let mut s = S::restart(c, hard);
    step(&mut s, c, Event::ElectionTimeout);
    step(&mut s, c, receive(1, vote_reply(2, true)));
    assert_eq!(s.role, Role::Leader);
    s
}

/// One step that must succeed.
pub(super) fn step(s: &mut S, c: &Config, event: Event<u8>) -> Output<u8> {
    s.handle(c, event).expect("a step of the correct protocol")
}

#[test]
fn election_timeout_starts_an_election() {
    let c = cfg(0, 3);
    let mut s = S::new();
    let out = step(&mut s, &c, Event::ElectionTimeout);
    assert_eq!(s.role, Role::Candidate);
    assert_eq!(s.current_term(), 1);
    assert_eq!(s.voted_for(), Some(NodeId(0)));
    assert!(out.persist.term_or_vote);
    assert_eq!(out.messages.len(), 2);
}

#[test]
fn majority_of_votes_makes_a_leader_that_sends_heartbeats() {
    let c = cfg(0, 3);
    let mut s = S::new();
    step(&mut s, &c, Event::ElectionTimeout);
    let out = step(&mut s, &c, receive(1, vote_reply(1, true)));
    assert_eq!(s.role, Role::Leader);
    assert_eq!(out.messages.len(), 2, "heartbeats to both peers at once");
}

#[test]
fn stale_vote_is_not_counted() {
    let c = cfg(0, 3);
    let mut s = S::new();
    step(&mut s, &c, Event::ElectionTimeout);
    step(&mut s, &c, Event::ElectionTimeout); // term 2
    step(&mut s, &c, receive(1, vote_reply(1, true)));
    assert_eq!(s.role, Role::Candidate);
}

#[test]
fn vote_requires_up_to_date_log_and_is_given_once_per_term() {
    let c = cfg(0, 3);
    let mut s = S::new();
    step(
        &mut s,
        &c,
        receive(1, append(1, (0, 0), vec![entry(1, 7)], 0)),
    );
    // Candidate 2 in term 2 with an empty log: not up to date.
    let rv = |last_index, last_term| {
        Message::RequestVote(RequestVote {
            term: 2,
            last_log_index: last_index,
            last_log_term: last_term,
            transfer: false,
        })
    };
    let mut vote =
        |from: u64, msg: Message<u8>| match step(&mut s, &c, receive(from, msg)).messages[..] {
            [(_, Message::RequestVoteResponse(r))] => (r.term, r.vote_granted),
            ref other => panic!("expected one vote reply, got {other:?}"),
        };
    assert_eq!(vote(2, rv(0, 0)), (2, false), "candidate's log is behind");
    assert_eq!(vote(2, rv(1, 1)), (2, true));
    assert_eq!(
        vote(1, rv(1, 1)),
        (2, false),
        "already voted for 2 in term 2"
    );
}

#[test]
fn conflicting_entries_are_truncated_but_matching_ones_never() {
    let c = cfg(0, 3);
    let mut s = S::new();
    step(
        &mut s,
        &c,
        receive(1, append(1, (0, 0), vec![entry(1, 1), entry(1, 2)], 0)),
    );
    // A stale, shorter copy of the same request must not delete entry 2.
    let out = step(
        &mut s,
        &c,
        receive(1, append(1, (0, 0), vec![entry(1, 1)], 0)),
    );
    assert_eq!(s.log().len(), 2);
    assert!(out.persist.is_empty());
    // A leader of term 2 overwrites index 2.
    let out = step(
        &mut s,
        &c,
        receive(2, append(2, (1, 1), vec![entry(2, 9)], 0)),
    );
    assert_eq!(s.log(), &[entry(1, 1), entry(2, 9)]);
    assert_eq!(out.persist.truncated_after, Some(1));
    assert_eq!(out.persist.appended_from, Some(2));
}

#[test]
fn follower_commit_is_bounded_by_last_new_entry() {
    let c = cfg(0, 3);
    let mut s = S::new();
    step(
        &mut s,
        &c,
        receive(1, append(1, (0, 0), vec![entry(1, 1), entry(1, 2)], 0)),
    );
    // Leader of term 2 knows commit 2 but only sends up to index 1 (whose term matches).
    step(
        &mut s,
        &c,
        receive(2, append(2, (0, 0), vec![entry(1, 1)], 2)),
    );
    assert_eq!(s.commit_index, 1);
}

#[test]
fn follower_commit_never_goes_down() {
    let c = cfg(0, 3);
    let mut s = S::new();
    step(
        &mut s,
        &c,
        receive(1, append(1, (0, 0), vec![entry(1, 1), entry(1, 2)], 1)),
    );
    assert_eq!(s.commit_index, 1);
    // A request that covers no entry (prev 0, none sent) but names a higher commit index.
    step(&mut s, &c, receive(1, append(1, (0, 0), vec![], 2)));
    assert_eq!(s.commit_index, 1, "commit_index went down");
}

#[test]
fn leader_never_commits_earlier_term_entries_by_counting() {
    // Figure 8: leader of term 3 holds an entry of term 2 replicated on a majority.
    let c = cfg(0, 3);
    let mut s = S::restart(
        &c,
        HardState {
            snapshot: Default::default(),
            current_term: 2,
            voted_for: None,
            log: vec![entry(1, 1), entry(2, 2)].into(),
        },
    );
    step(&mut s, &c, Event::ElectionTimeout); // term 3
    step(&mut s, &c, receive(1, vote_reply(3, true)));
    assert_eq!(s.role, Role::Leader);
    step(&mut s, &c, receive(1, append_reply(3, true, 2)));
    assert_eq!(
        s.commit_index, 0,
        "term-2 entry must not commit by counting"
    );
    step(&mut s, &c, Event::Propose(3));
    step(&mut s, &c, receive(1, append_reply(3, true, 3)));
    assert_eq!(
        s.commit_index, 0,
        "the leader's own copy is not durable yet"
    );
    step(&mut s, &c, persisted(3, 3));
    assert_eq!(s.commit_index, 3, "commits indirectly with a term-3 entry");
}

fn persisted(term: Term, index: Index) -> Event<u8> {
    Event::Persisted { term, index }
}

#[test]
fn a_leader_writes_its_own_entries_behind_and_counts_them_once_durable() {
    let c = cfg(0, 3);
    let mut s = leader_of_term_2(&c, vec![]);
    let out = step(&mut s, &c, Event::Propose(7));
    assert!(out.persist.write_behind && !out.persist.must_precede_messages());
    assert_eq!(out.persist.appended_from, Some(1));
    // Replicated before it is durable here.
    let out = step(&mut s, &c, Event::Heartbeat);
    assert!(out.messages.iter().all(|(_, m)| matches!(
        m,
        Message::AppendEntries(ae) if ae.entries.len() == 1
    )));
    step(&mut s, &c, receive(1, append_reply(2, true, 1)));
    assert_eq!(
        s.commit_index, 0,
        "one follower and an undurable leader are no majority"
    );
    let out = step(&mut s, &c, persisted(2, 1));
    assert_eq!((s.leader.persisted_index, s.commit_index), (1, 1));
    assert_eq!(out.apply.len(), 1);
}

#[test]
fn followers_alone_commit_what_the_leader_has_not_yet_made_durable() {
    let c = cfg(0, 3);
    let mut s = leader_of_term_2(&c, vec![]);
    step(&mut s, &c, Event::Propose(7));
    step(&mut s, &c, receive(1, append_reply(2, true, 1)));
    step(&mut s, &c, receive(2, append_reply(2, true, 1)));
    assert_eq!((s.leader.persisted_index, s.commit_index), (0, 1));
    assert_eq!(
        *s.durable_hard_state().log,
        vec![],
        "a crash may lose the leader's copy"
    );
}

#[test]
fn a_followers_append_is_durable_before_its_reply() {
    let c = cfg(0, 3);
    let mut s = S::new();
    let out = step(
        &mut s,
        &c,
        receive(1, append(1, (0, 0), vec![entry(1, 1)], 0)),
    );
    assert!(!out.persist.write_behind && out.persist.must_precede_messages());
    assert_eq!(s.durable_hard_state(), s.hard);
}

#[test]
fn a_stale_persisted_report_changes_nothing_and_one_past_the_log_is_refused() {
    let c = cfg(0, 3);
    let mut s = leader_of_term_2(&c, vec![entry(1, 1)]);
    assert_eq!(s.leader.persisted_index, 1, "a new leader's log is durable");
    step(&mut s, &c, Event::Propose(7));
    let before = s.clone();
    step(&mut s, &c, persisted(1, 2)); // the entry at 2 is of term 2
    assert_eq!(s, before);
    assert!(matches!(
        s.handle(&c, persisted(2, 3)),
        Err(CoreError::PersistedBeyondLog {
            index: 3,
            last_log_index: 2
        })
    ));
}

/// Every report the drivers make (the model's disk, the node's sync) is a leader's whole log,
/// at its last index and term; the rules for any other report are pinned here.
#[test]
fn a_persisted_report_counts_only_for_a_leader_and_its_own_log() {
    let c = cfg(0, 3);
    let mut s = leader_of_term_2(&c, vec![]);
    for k in 1..=3 {
        step(&mut s, &c, Event::Propose(k));
    }
    step(&mut s, &c, receive(1, append_reply(2, true, 3)));
    assert_eq!((s.leader.persisted_index, s.commit_index), (0, 0));
    // A report below the end of the log (the disk caught up with part of it) counts as far as
    // it goes: the leader and follower 1 are a majority holding 2 entries.
    let out = step(&mut s, &c, persisted(2, 2));
    assert_eq!((s.leader.persisted_index, s.commit_index), (2, 2));
    assert_eq!(out.apply.len(), 2);
    // A report at or below persisted_index, or for an entry of another term, changes nothing.
    for (term, index) in [(2, 2), (2, 1), (0, 0), (1, 3)] {
        let before = s.clone();
        let out = step(&mut s, &c, persisted(term, index));
        assert_eq!(s, before, "Persisted {{ term: {term}, index: {index} }}");
        assert!(out.apply.is_empty());
    }
    // One past the end of the log is refused and changes nothing.
    let before = s.clone();
    assert_eq!(
        s.handle(&c, persisted(2, 4)).unwrap_err(),
        CoreError::PersistedBeyondLog {
            index: 4,
            last_log_index: 3
        }
    );
    assert_eq!(s, before);
    // A follower's log is durable before it replies: a report changes nothing there either.
    let mut f = S::new();
    step(
        &mut f,
        &c,
        receive(1, append(1, (0, 0), vec![entry(1, 1), entry(1, 2)], 0)),
    );
    let before = f.clone();
    step(&mut f, &c, persisted(1, 2));
    assert_eq!(f, before);
    assert_eq!(f.leader.persisted_index, 0);
}

#[test]
fn higher_term_makes_a_leader_step_down() {
    let c = cfg(0, 1);
    let mut s = S::new();
    step(&mut s, &c, Event::ElectionTimeout);
    assert_eq!(s.role, Role::Leader, "a single server elects itself");
    let out = step(&mut s, &c, receive(5, vote_reply(4, false)));
    assert_eq!(s.role, Role::Follower);
    assert_eq!(s.current_term(), 4);
    assert!(out.persist.term_or_vote);
}

#[test]
fn restart_keeps_hard_state_and_resets_volatile_state() {
    let c = cfg(0, 1);
    let mut s = S::new();
    step(&mut s, &c, Event::ElectionTimeout);
    step(&mut s, &c, Event::Propose(1));
    assert_eq!(
        s.commit_index, 0,
        "a single server commits once its disk holds the entry"
    );
    step(&mut s, &c, persisted(1, 1));
    assert_eq!(s.commit_index, 1);
    let r = S::restart(&c, s.hard.clone());
    assert_eq!(r.hard, s.hard);
    assert_eq!(
        (r.role, r.commit_index, r.last_applied),
        (Role::Follower, 0, 0)
    );
}

// ---- proptest: random events through one server ------------------------------------------

fn arb_entries(min_term: Term, max_term: Term) -> impl Strategy<Value = Vec<Entry<u8>>> {
    prop::collection::vec((0..=max_term.saturating_sub(min_term), 0u8..4), 0..3).prop_map(
        move |mut v| {
            v.sort();
            v.into_iter()
                .map(|(dt, c)| entry(min_term + dt, c))
                .collect()
        },
    )
}

fn arb_message() -> impl Strategy<Value = Message<u8>> {
    prop_oneof![
        (0u64..5, 0u64..5, 0u64..5).prop_map(|(term, i, t)| {
            Message::RequestVote(RequestVote {
                term,
                last_log_index: i,
                last_log_term: t.min(term),
                transfer: false,
            })
        }),
        (0u64..5, any::<bool>()).prop_map(|(term, granted)| vote_reply(term, granted)),
        (1u64..5, 0u64..4, 0u64..5, 0u64..6).prop_flat_map(|(term, prev, pt, commit)| {
            let pt = if prev == 0 { 0 } else { pt.min(term) };
            arb_entries(pt.max(1), term)
                .prop_map(move |entries| append(term, (prev, pt), entries, commit))
        }),
        (0u64..5, any::<bool>(), 0u64..6)
            .prop_map(|(term, success, m)| append_reply(term, success, m)),
    ]
}

fn arb_event() -> impl Strategy<Value = Event<u8>> {
    prop_oneof![
        Just(Event::ElectionTimeout),
        Just(Event::Heartbeat),
        (1u64..3).prop_map(|to| Event::Resend { to: NodeId(to) }),
        (0u8..4).prop_map(Event::Propose),
        // The driver's report, made valid in the loop (the log's last entry, as drivers send).
        Just(Event::Persisted { term: 0, index: 0 }),
        (1u64..3, arb_message()).prop_map(|(from, msg)| Event::Receive {
            from: NodeId(from),
            msg
        }),
    ]
}

/// The log a driver would have on disk after carrying out `persist` on `old`.
fn replay_persist(old: &[Entry<u8>], new: &[Entry<u8>], p: &Persist) -> Vec<Entry<u8>> {
    let mut log = old.to_vec();
    if let Some(after) = p.truncated_after {
        log.truncate(after as usize);
    }
    if let Some(from) = p.appended_from {
        log.truncate(from as usize - 1);
        log.extend_from_slice(&new[from as usize - 1..]);
    }
    log
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn local_invariants_hold_under_random_events(
        events in prop::collection::vec(arb_event(), 1..60),
        window in prop::option::of(1usize..4),
    ) {
        let c = cfg(0, 3)
            .with_pipeline(window.map(|entries| Window { entries, bytes: usize::MAX }));
        let mut s = S::new();
        let mut applied = 0;
        for mut event in events {
            if let Event::Persisted { .. } = event {
                event = Event::Persisted { term: s.last_log_term(), index: s.last_log_index() };
            }
            let proposal = matches!(event, Event::Propose(_));
            let before = s.clone();
            let out = match s.handle(&c, event) {
                Ok(out) => out,
                // Random messages include what no correct peer sends (an AppendEntries deleting
                // a committed entry, an acknowledgement past the log): the core refuses them
                // with a typed error, and the node would stop there.
                Err(e) => {
                    prop_assert!(e.is_fatal());
                    prop_assert!(matches!(
                        e,
                        CoreError::DeletesCommittedEntry { .. } | CoreError::AckBeyondLog { .. }
                    ), "unexpected {e}");
                    break;
                }
            };
            // current_term never decreases; the vote changes only with the term or from none.
            prop_assert!(s.current_term() >= before.current_term());
            if s.current_term() == before.current_term() && before.voted_for().is_some() {
                prop_assert_eq!(s.voted_for(), before.voted_for());
            }
            // What changed on "disk" is exactly what the step said to persist.
            let term_vote_changed = (s.current_term(), s.voted_for())
                != (before.current_term(), before.voted_for());
            prop_assert_eq!(term_vote_changed, out.persist.term_or_vote);
            prop_assert_eq!(replay_persist(before.log(), s.log(), &out.persist), s.log().to_vec());
            // Only a leader's own proposal is written behind; its durable index stays in the log.
            prop_assert!(!out.persist.write_behind || (proposal && s.role == Role::Leader));
            prop_assert!(s.leader.persisted_index <= s.last_log_index());
            prop_assert!(s.role == Role::Leader || s.leader.persisted_index == 0);
            // Commit bounds; applies are contiguous and keep up with the commit index.
            prop_assert!(s.commit_index >= before.commit_index);
            prop_assert!(s.commit_index <= s.last_log_index());
            prop_assert_eq!(s.last_applied, s.commit_index);
            for (index, e) in &out.apply {
                applied += 1;
                prop_assert_eq!(*index, applied);
                prop_assert_eq!(Some(e), s.entry(*index));
            }
            // Log terms never decrease along the log, and never exceed current_term.
            prop_assert!(s.log().windows(2).all(|w| w[0].term <= w[1].term));
            prop_assert!(s.last_log_term() <= s.current_term());
            // A leader only appends (Leader Append-Only) and keeps sane replication indices.
            if s.role == Role::Leader {
                prop_assert_eq!(s.voted_for(), Some(c.id));
                if before.role == Role::Leader {
                    prop_assert!(s.log().starts_with(before.log()));
                }
                for p in c.initial.voters.iter().filter(|p| **p != c.id) {
                    let (n, m) = (s.leader.progress[p].next_index, s.leader.progress[p].match_index);
                    prop_assert!(m < n && n <= s.last_log_index() + 1);
                }
                // A pipelining leader sends no entry beyond its window to a peer it does not
                // probe (a probe is one AppendEntries, as without pipelining); only it probes.
                if let Some(w) = c.pipeline {
                    for (to, m) in &out.messages {
                        if let Message::AppendEntries(ae) = m {
                            let last_sent = ae.prev_log_index + ae.entries.len() as Index;
                            prop_assert!(
                                ae.entries.is_empty()
                                    || s.leader.is_probing(*to)
                                    || last_sent - s.leader.progress[to].match_index <= w.entries as Index
                            );
                        }
                    }
                } else {
                    prop_assert!(s.leader.probing().next().is_none());
                }
            } else {
                // A server holds leader state only while it leads (progress.rs).
                prop_assert_eq!(&s.leader, &crate::LeaderState::default());
            }
            // Every reply carries the sender's current term.
            for (_, m) in &out.messages {
                prop_assert_eq!(m.term(), s.current_term());
            }
        }
    }
}

// ---- what the correct protocol never does fails loudly ---------------------------------

#[test]
fn an_append_that_would_delete_a_committed_entry_is_a_typed_error() {
    let c = cfg(0, 3);
    let mut s = S::new();
    step(
        &mut s,
        &c,
        receive(1, append(1, (0, 0), vec![entry(1, 1), entry(1, 2)], 2)),
    );
    assert_eq!(s.commit_index, 2);
    // A "leader" of term 2 replaces the committed entry 2: Leader Completeness says no real
    // leader can.
    let err = s
        .handle(&c, receive(2, append(2, (1, 1), vec![entry(2, 9)], 2)))
        .unwrap_err();
    assert_eq!(
        err,
        CoreError::DeletesCommittedEntry {
            leader: NodeId(2),
            index: 2,
            commit_index: 2
        }
    );
    assert!(err.is_fatal());
    assert_eq!(s.log(), &[entry(1, 1), entry(1, 2)], "nothing was deleted");
}

#[test]
fn a_term_no_election_could_follow_is_refused_and_changes_nothing() {
    // Issue 38, finding 2: one forged frame with term 2^48 (a RequestVote flagged as a
    // transfer, or an AppendEntriesResponse) was adopted, and no election could ever succeed
    // after it. Terms at or past max_term, or more than max_term_jump ahead, are refused.
    let c = cfg(0, 3);
    let mut s = S::new();
    step(&mut s, &c, Event::ElectionTimeout);
    let before = s.clone();
    let forged = |term| {
        [
            Message::RequestVote(RequestVote {
                term,
                last_log_index: 9,
                last_log_term: 9,
                transfer: true,
            }),
            Message::AppendEntriesResponse(AppendEntriesResponse {
                term,
                success: false,
                match_index: 0,
                read_round: 0,
            }),
        ]
    };
    for term in [u64::MAX, MAX_TERM, MAX_TERM - 3, 1 + MAX_TERM_JUMP + 1] {
        for msg in forged(term) {
            let err = s.handle(&c, receive(2, msg)).unwrap_err();
            assert_eq!(
                err,
                CoreError::AbsurdTerm {
                    from: NodeId(2),
                    term,
                    current_term: 1,
                    max_term: MAX_TERM,
                    max_term_jump: MAX_TERM_JUMP,
                }
            );
            assert!(!err.is_fatal());
            assert_eq!(s, before, "term {term}");
        }
    }
    assert!(CoreError::AbsurdTerm {
        from: NodeId(2),
        term: MAX_TERM,
        current_term: 1,
        max_term: MAX_TERM,
        max_term_jump: MAX_TERM_JUMP,
    }
    .to_string()
    .contains("no election could follow"));
    // The furthest term a correct peer can be ahead is still adopted, and so on, step by step,
    // to the last term from which one more election is possible.
    assert!(s
        .handle(&c, receive(2, vote_reply(1 + MAX_TERM_JUMP, false)))
        .is_ok());
    assert_eq!(s.current_term(), 1 + MAX_TERM_JUMP);
    let near = c.clone().with_max_term(10);
    let mut t = S::new();
    assert!(t.handle(&near, receive(2, vote_reply(9, false))).is_ok());
    assert!(t.handle(&near, receive(2, vote_reply(10, false))).is_err());
}

#[test]
fn an_acknowledgement_past_the_leaders_log_is_a_typed_error() {
    let c = cfg(0, 3);
    let mut s = S::new();
    step(&mut s, &c, Event::ElectionTimeout);
    step(&mut s, &c, receive(1, vote_reply(1, true)));
    assert_eq!(s.role, Role::Leader);
    let err = s
        .handle(&c, receive(1, append_reply(1, true, 5)))
        .unwrap_err();
    assert!(matches!(
        err,
        CoreError::AckBeyondLog { match_index: 5, .. }
    ));
}

#[test]
fn a_rejection_that_moves_next_index_back_probes_again_at_once() {
    let c = cfg(0, 3);
    let mut s = leader_of_term_2(&c, vec![entry(1, 1), entry(1, 2), entry(1, 3)]);
    assert_eq!(s.leader.progress[&NodeId(1)].next_index, 4);
    // The follower has only one entry: next_index moves back to 2 and the leader sends the
    // probe in the same step.
    let out = step(&mut s, &c, receive(1, append_reply(2, false, 1)));
    assert_eq!(s.leader.progress[&NodeId(1)].next_index, 2);
    match &out.messages[..] {
        [(to, Message::AppendEntries(ae))] => {
            assert_eq!(
                (*to, ae.prev_log_index, ae.entries.len()),
                (NodeId(1), 1, 2)
            );
        }
        other => panic!("expected one AppendEntries, got {other:?}"),
    }
    // Every rejection moves back one entry at least, down to match_index + 1; one that can move
    // nothing sends nothing (no exchange loops at network speed).
    step(&mut s, &c, receive(1, append_reply(2, false, 1)));
    assert_eq!(s.leader.progress[&NodeId(1)].next_index, 1);
    let out = step(&mut s, &c, receive(1, append_reply(2, false, 1)));
    assert!(out.messages.is_empty());
    // A rejection at or below match_index is stale and never moves next_index to it.
    step(&mut s, &c, receive(1, append_reply(2, true, 3)));
    step(&mut s, &c, receive(1, append_reply(2, false, 0)));
    assert_eq!(s.leader.progress[&NodeId(1)].next_index, 4);
}

#[test]
fn current_term_never_wraps() {
    let c = cfg(0, 3);
    let mut s = S::restart(
        &c,
        HardState {
            snapshot: Default::default(),
            current_term: u64::MAX,
            voted_for: None,
            log: Default::default(),
        },
    );
    assert_eq!(
        s.handle(&c, Event::ElectionTimeout).unwrap_err(),
        CoreError::Overflow {
            what: "current_term"
        }
    );
}

#[test]
fn append_entries_are_batched_by_bytes_and_always_carry_one_entry() {
    // Each u8 command counts 1 + ENTRY_OVERHEAD_BYTES = 11 bytes.
    let c = cfg(0, 3).with_max_bytes_per_append(25);
    let mut s = leader_of_term_2(&c, (1..=5).map(|k| entry(1, k)).collect());
    // The follower has nothing: next_index goes back to 1 and the probe carries 2 entries (22
    // bytes; a third would make 33 > 25).
    let out = step(&mut s, &c, receive(1, append_reply(2, false, 0)));
    match &out.messages[..] {
        [(_, Message::AppendEntries(ae))] => assert_eq!(ae.entries.len(), 2),
        other => panic!("expected one AppendEntries, got {other:?}"),
    }
    // A limit below one entry still sends one: a follower always catches up.
    let tiny = cfg(0, 3).with_max_bytes_per_append(1);
    let out = step(&mut s, &tiny, Event::Resend { to: NodeId(1) });
    match &out.messages[..] {
        [(_, Message::AppendEntries(ae))] => assert_eq!(ae.entries.len(), 1),
        other => panic!("expected one AppendEntries, got {other:?}"),
    }
}

/// Fast backup (`Config::fast_backup`): a follower that rejects for a conflicting entry hints
/// the index just before its first entry of that entry's term, so the leader skips the whole
/// term in one round trip; with no entry at prev_log_index it hints its last index; without
/// fast backup it always hints its last index. (The model checks that either hint is safe and
/// live; only this says the hint is the one the node is meant to send.)
#[test]
fn fast_backup_hints_the_start_of_the_conflicting_term() {
    let plain = cfg(1, 3);
    let fast = cfg(1, 3).with_fast_backup(true);
    let log = vec![entry(1, 1), entry(2, 2), entry(2, 3), entry(2, 4)];
    let follower = |c: &Config| {
        S::restart(
            c,
            HardState {
                snapshot: Default::default(),
                current_term: 3,
                voted_for: None,
                log: log.clone().into(),
            },
        )
    };
    let hint = |c: &Config, prev: (Index, Term)| {
        let mut s = follower(c);
        let out = step(&mut s, c, receive(0, append(3, prev, vec![], 0)));
        match &out.messages[..] {
            [(_, Message::AppendEntriesResponse(r))] if !r.success => r.match_index,
            other => panic!("expected one rejection, got {other:?}"),
        }
    };
    // Entry 4 is of term 2, the leader's of term 3: the term-2 run starts at index 2.
    assert_eq!(hint(&fast, (4, 3)), 1);
    assert_eq!(hint(&fast, (3, 1)), 1);
    // Entry 1 (term 1) conflicts: its run starts at index 1, so the hint is 0.
    assert_eq!(hint(&fast, (1, 5)), 0);
    // No entry at prev_log_index: the follower's last index.
    assert_eq!(hint(&fast, (9, 3)), 4);
    // Without fast backup: always the last index.
    assert_eq!(hint(&plain, (4, 3)), 4);
    assert_eq!(hint(&plain, (9, 3)), 4);
}

// ---- pipelining (Config::pipeline) --------------------------------------------------------

fn pipelined(entries: usize, bytes: usize) -> Config {
    cfg(0, 3).with_pipeline(Some(Window { entries, bytes }))
}

/// The AppendEntries in `out` to `to`, as (prev_log_index, number of entries).
fn appends_to(out: &Output<u8>, to: u64) -> Vec<(Index, usize)> {
    out.messages
        .iter()
        .filter_map(|(t, m)| match m {
            Message::AppendEntries(ae) if *t == NodeId(to) => {
                Some((ae.prev_log_index, ae.entries.len()))
            }
            _ => None,
        })
        .collect()
}

/// A leader of term 2 with `log`, whose followers acknowledged its first heartbeat (they
/// hold its whole log): it pipelines to both.
fn replicating(c: &Config, log: Vec<Entry<u8>>) -> S {
    let last = log.len() as Index;
    let mut s = leader_of_term_2(c, log);
    assert_eq!(
        s.leader.probing().count(),
        2,
        "a new pipelining leader probes every peer"
    );
    step(&mut s, c, receive(1, append_reply(2, true, last)));
    step(&mut s, c, receive(2, append_reply(2, true, last)));
    assert!(s.leader.probing().next().is_none());
    s
}

#[test]
fn a_pipelining_leader_sends_each_entry_once_within_its_window() {
    let c = pipelined(2, usize::MAX);
    let mut s = replicating(&c, vec![]);
    // Each proposal's heartbeat carries only the new entry: next_index moved past the first.
    step(&mut s, &c, Event::Propose(1));
    assert_eq!(appends_to(&step(&mut s, &c, Event::Heartbeat), 1), [(0, 1)]);
    step(&mut s, &c, Event::Propose(2));
    assert_eq!(appends_to(&step(&mut s, &c, Event::Heartbeat), 1), [(1, 1)]);
    assert_eq!(
        (
            s.leader.progress[&NodeId(1)].next_index,
            s.leader.progress[&NodeId(1)].match_index
        ),
        (3, 0)
    );
    // Two entries in flight fill the window: the heartbeat is empty, at the optimistic
    // next_index.
    step(&mut s, &c, Event::Propose(3));
    assert_eq!(appends_to(&step(&mut s, &c, Event::Heartbeat), 1), [(2, 0)]);
    // The first acknowledgement frees room for one entry, sent at once; match_index is what
    // was acknowledged, never what was sent.
    let out = step(&mut s, &c, receive(1, append_reply(2, true, 1)));
    assert_eq!(appends_to(&out, 1), [(2, 1)]);
    assert_eq!(
        (
            s.leader.progress[&NodeId(1)].next_index,
            s.leader.progress[&NodeId(1)].match_index
        ),
        (4, 1)
    );
    // A reordered, older acknowledgement moves nothing back.
    step(&mut s, &c, receive(1, append_reply(2, true, 0)));
    assert_eq!(
        (
            s.leader.progress[&NodeId(1)].next_index,
            s.leader.progress[&NodeId(1)].match_index
        ),
        (4, 1)
    );
    // Without a pipeline the same leader sends every unacknowledged entry again.
    let plain = cfg(0, 3);
    let mut p = leader_of_term_2(&plain, vec![]);
    assert!(p.leader.probing().next().is_none());
    step(&mut p, &plain, Event::Propose(1));
    step(&mut p, &plain, Event::Heartbeat);
    step(&mut p, &plain, Event::Propose(2));
    assert_eq!(
        appends_to(&step(&mut p, &plain, Event::Heartbeat), 1),
        [(0, 2)]
    );
}

#[test]
fn a_lost_pipelined_append_is_sent_again_after_the_rejection_it_causes() {
    let c = pipelined(8, usize::MAX);
    let mut s = replicating(&c, vec![]);
    for k in 1..=3 {
        step(&mut s, &c, Event::Propose(k));
        step(&mut s, &c, Event::Heartbeat);
    }
    assert_eq!(s.leader.progress[&NodeId(1)].next_index, 4);
    // The AppendEntries with entry 1 was lost: the follower rejects the next (prev 1) with
    // its last index 0, and the leader probes from 1 with all three entries, in one message;
    // next_index stays there until that is acknowledged.
    let out = step(&mut s, &c, receive(1, append_reply(2, false, 0)));
    assert_eq!(appends_to(&out, 1), [(0, 3)]);
    assert_eq!(
        (
            s.leader.progress[&NodeId(1)].next_index,
            s.leader.progress[&NodeId(1)].match_index
        ),
        (1, 0)
    );
    assert!(s.leader.is_probing(NodeId(1)));
    // The rejection of the heartbeat that followed (prev 3) is stale: it cannot move
    // next_index below match_index + 1, and sends nothing.
    let out = step(&mut s, &c, receive(1, append_reply(2, false, 0)));
    assert!(appends_to(&out, 1).is_empty());
    step(&mut s, &c, receive(1, append_reply(2, true, 3)));
    assert_eq!(
        (
            s.leader.progress[&NodeId(1)].next_index,
            s.leader.progress[&NodeId(1)].match_index
        ),
        (4, 3)
    );
    assert!(s.leader.probing().next().is_none());
}

#[test]
fn a_probed_next_index_moves_back_one_entry_per_rejection_so_no_exchange_loops() {
    // The follower's entry 2 conflicts (a term-1 entry where the leader has a term-2 one) and
    // it hints its last index, 2: a guess that moved forward with each probe sent would send
    // the same AppendEntries (prev 2) for ever; probing moves back to prev 1.
    let c = pipelined(8, usize::MAX);
    let mut s = replicating(&c, vec![entry(1, 1)]);
    step(&mut s, &c, Event::Propose(2));
    step(&mut s, &c, Event::Propose(3));
    assert_eq!(appends_to(&step(&mut s, &c, Event::Heartbeat), 1), [(1, 2)]);
    let out = step(&mut s, &c, receive(1, append_reply(2, false, 2)));
    assert_eq!(appends_to(&out, 1), [(2, 1)]);
    let out = step(&mut s, &c, receive(1, append_reply(2, false, 2)));
    assert_eq!(appends_to(&out, 1), [(1, 2)]);
    assert_eq!(s.leader.progress[&NodeId(1)].next_index, 2);
}

#[test]
fn a_new_pipelining_leader_probes_before_it_streams() {
    // Elected with 5 entries: it probes at its last index, as without pipelining, and moves
    // next_index on rejections alone until the follower acknowledges.
    let c = pipelined(2, usize::MAX).with_max_entries_per_append(1);
    let mut s = leader_of_term_2(&c, (1..=5).map(|k| entry(1, k)).collect());
    step(&mut s, &c, Event::Propose(6));
    assert_eq!(appends_to(&step(&mut s, &c, Event::Heartbeat), 1), [(5, 1)]);
    assert_eq!(appends_to(&step(&mut s, &c, Event::Heartbeat), 1), [(5, 1)]);
    // The follower holds only entry 1: the probe goes back to 2; its acknowledgement starts
    // the stream, one entry per message, at most two unacknowledged (the window).
    let out = step(&mut s, &c, receive(1, append_reply(2, false, 1)));
    assert_eq!(appends_to(&out, 1), [(1, 1)]);
    let out = step(&mut s, &c, receive(1, append_reply(2, true, 2)));
    assert_eq!(appends_to(&out, 1), [(2, 1), (3, 1)]);
    assert_eq!(s.leader.progress[&NodeId(1)].next_index, 5);
    let out = step(&mut s, &c, receive(1, append_reply(2, true, 4)));
    assert_eq!(appends_to(&out, 1), [(4, 1), (5, 1)]);
    assert_eq!(s.leader.progress[&NodeId(1)].next_index, 7);
}

#[test]
fn a_pipelining_leaders_window_is_bounded_in_bytes_too() {
    // Each u8 command counts 11 bytes: with 20 bytes, the second entry in flight fills it.
    let c = pipelined(100, 20).with_max_entries_per_append(1);
    let mut s = replicating(&c, vec![]);
    step(&mut s, &c, Event::Propose(1));
    step(&mut s, &c, Event::Propose(2));
    step(&mut s, &c, Event::Propose(3));
    let out = step(&mut s, &c, Event::Heartbeat);
    assert_eq!(appends_to(&out, 1), [(0, 1)]);
    // One entry in flight (11 bytes) leaves room: an acknowledgement of nothing new sends the
    // second, and the 22 bytes then in flight fill the window.
    let out = step(&mut s, &c, receive(1, append_reply(2, true, 0)));
    assert_eq!(appends_to(&out, 1), [(1, 1)]);
    let out = step(&mut s, &c, receive(1, append_reply(2, true, 1)));
    assert_eq!(appends_to(&out, 1), [(2, 1)]);
}

/// What the model's adapter asks before it keeps a step's AppendEntries (rather than leaving
/// it to the per-peer send): whether the send moved next_index past its entries, so that no
/// later step sends them again. True exactly for a pipelining leader not probing the peer.
#[test]
fn sends_move_next_index_exactly_for_a_pipelining_leader_not_probing_the_peer() {
    let c = pipelined(2, usize::MAX);
    let plain = cfg(0, 3);
    // Whether a send of a new entry to `peer` moves its next_index, and what the server says.
    let check = |s: &S, c: &Config, peer: u64, expected: bool| {
        let mut t = s.clone();
        step(&mut t, c, Event::Propose(9));
        let before = t.leader.progress.get(&NodeId(peer)).map(|g| g.next_index);
        let out = step(&mut t, c, Event::Resend { to: NodeId(peer) });
        let moved = t.leader.progress.get(&NodeId(peer)).map(|g| g.next_index) != before;
        assert_eq!(moved, expected, "next_index moved");
        assert_eq!(s.sends_move_next_index(c, NodeId(peer)), expected);
        if s.role == Role::Leader {
            assert!(
                matches!(appends_to(&out, peer)[..], [(_, 1)]),
                "one entry sent"
            );
        }
    };
    // Followers and candidates send no AppendEntries, with or without a pipeline.
    let mut f = S::new();
    check(&f, &c, 1, false);
    check(&f, &plain, 1, false);
    step(&mut f, &c, Event::ElectionTimeout);
    assert_eq!(f.role, Role::Candidate);
    check(&f, &c, 1, false);
    check(&f, &plain, 1, false);
    // A leader without a pipeline moves next_index on replies alone.
    let p = leader_of_term_2(&plain, vec![entry(1, 1)]);
    assert!(p.leader.probing().next().is_none());
    check(&p, &plain, 1, false);
    // A new pipelining leader probes every peer; the first acknowledgement ends the probe of
    // that peer only.
    let mut s = leader_of_term_2(&c, vec![entry(1, 1)]);
    check(&s, &c, 1, false);
    check(&s, &c, 2, false);
    step(&mut s, &c, receive(1, append_reply(2, true, 1)));
    check(&s, &c, 1, true);
    check(&s, &c, 2, false);
}

/// A command as large as an entry can count: with its entry's overhead, usize::MAX bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Huge;

impl Payload for Huge {
    fn payload_bytes(&self) -> usize {
        usize::MAX - ENTRY_OVERHEAD_BYTES
    }
}

#[test]
fn a_window_of_usize_max_bytes_has_no_byte_limit() {
    // A leader sends two entries of usize::MAX bytes each, one heartbeat apart, to a follower
    // it replicates to. The window has room for two entries: with usize::MAX bytes (no byte
    // limit, as for max_bytes_per_append) the second goes out while the first is in flight;
    // with any finite byte limit the first one fills the window.
    let second_heartbeat = |bytes: usize| {
        let c = cfg(0, 3).with_pipeline(Some(Window { entries: 2, bytes }));
        let mut s = Server::<Huge>::restart(
            &c,
            HardState {
                snapshot: Default::default(),
                current_term: 1,
                voted_for: None,
                log: Default::default(),
            },
        );
        let mut step = |event: Event<Huge>| s.handle(&c, event).expect("a correct step");
        // Follower 1's replies (they carry no command).
        let from_1 = |reply: Message<u8>| Event::Receive {
            from: NodeId(1),
            msg: reply
                .try_map_entries(|_| Some(Vec::new()))
                .expect("a reply"),
        };
        step(Event::ElectionTimeout);
        step(from_1(vote_reply(2, true)));
        step(from_1(append_reply(2, true, 0)));
        step(Event::Propose(Huge));
        let first = step(Event::Heartbeat);
        step(Event::Propose(Huge));
        let second = step(Event::Heartbeat);
        [first, second].map(|out| {
            out.messages
                .iter()
                .find_map(|(to, m)| match m {
                    Message::AppendEntries(ae) if *to == NodeId(1) => {
                        Some((ae.prev_log_index, ae.entries.len()))
                    }
                    _ => None,
                })
                .expect("an AppendEntries to follower 1")
        })
    };
    assert_eq!(second_heartbeat(usize::MAX), [(0, 1), (1, 1)]);
    assert_eq!(second_heartbeat(usize::MAX - 1), [(0, 1), (1, 0)]);
}
