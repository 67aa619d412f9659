//! The properties are wired to the right states: each Always property is shown a state built by
//! hand that breaks exactly what it states, and must reject it (and accept the unbroken twin).

use super::*;
use raft_core::{Entry, Progress, Role, Server};
use stateright::semantics::register::{RegisterOp, RegisterRet};
use stateright::semantics::ConsistencyTester;
use stateright::Model;

fn model() -> RaftModel {
    ModelConfig::default().into_model()
}

fn init(m: &RaftModel) -> RaftState {
    m.init_states().remove(0)
}

fn holds(m: &RaftModel, state: &RaftState, name: &str) -> bool {
    let p = m
        .properties()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no property named {name}"));
    (p.condition)(m, state)
}

fn server_mut(state: &mut RaftState, i: usize) -> &mut ServerState {
    match state.actor_mut(i) {
        NodeState::Server(s) => s,
        NodeState::Client(_) => panic!("actor {i} is a client"),
    }
}

fn ghost_mut(state: &mut RaftState, i: usize) -> &mut Ghost {
    shared::Shared::make_mut(&mut server_mut(state, i).ghost)
}

fn e(term: u64, value: u8) -> Entry<Cmd> {
    Entry {
        term,
        command: Cmd {
            client: 0,
            seq: value,
            op: ClientOp::Put(value),
        },
    }
}

fn make_leader(s: &mut Server<Cmd>, term: u64) {
    s.role = Role::Leader;
    s.hard.current_term = term;
}

#[test]
fn property_names_are_the_contract() {
    let names: Vec<_> = model().properties().iter().map(|p| p.name).collect();
    for required in [
        "Election Safety",
        "Log Matching",
        "Leader Completeness",
        "State Machine Safety",
        "Leader Append-Only",
        "Linearizability",
        "Leader Elected",
        "Value Committed",
        "Leaders In Two Terms",
        "Log Conflict Truncated",
        "Committed Then Crashed And Recovered",
        "Read Returned A Value",
    ] {
        assert!(names.contains(&required), "missing property {required}");
    }
}

#[test]
fn every_always_property_holds_initially() {
    let m = model();
    let s = init(&m);
    for name in always_names() {
        assert!(holds(&m, &s, name), "{name} fails on the initial state");
    }
}

#[test]
fn election_safety_rejects_two_leaders_in_one_term() {
    let m = model();
    let mut s = init(&m);
    ghost_mut(&mut s, 0).led_terms.insert(1);
    ghost_mut(&mut s, 1).led_terms.insert(2);
    assert!(holds(&m, &s, "Election Safety"));
    ghost_mut(&mut s, 2).led_terms.insert(1);
    assert!(!holds(&m, &s, "Election Safety"));
}

#[test]
fn log_matching_rejects_same_index_and_term_with_different_prefix() {
    let m = model();
    let mut s = init(&m);
    server_mut(&mut s, 0).server.hard.log = vec![e(1, 1), e(2, 2)].into();
    server_mut(&mut s, 1).server.hard.log = vec![e(1, 1), e(2, 2), e(2, 3)].into();
    assert!(holds(&m, &s, "Log Matching"));
    server_mut(&mut s, 1).server.hard.log = vec![e(1, 9), e(2, 2)].into();
    assert!(!holds(&m, &s, "Log Matching"));
}

#[test]
fn leader_completeness_rejects_a_later_leader_missing_a_committed_entry() {
    let m = model();
    let mut s = init(&m);
    ghost_mut(&mut s, 0).committed.insert((1, e(1, 1)), 1);
    let leader = &mut server_mut(&mut s, 1).server;
    make_leader(leader, 2);
    leader.hard.log = vec![e(1, 1)].into();
    assert!(holds(&m, &s, "Leader Completeness"));
    server_mut(&mut s, 1).server.hard.log = vec![e(2, 5)].into();
    assert!(!holds(&m, &s, "Leader Completeness"));
    // A leader of the commit term itself (or older) is not constrained.
    make_leader(&mut server_mut(&mut s, 1).server, 1);
    assert!(holds(&m, &s, "Leader Completeness"));
}

#[test]
fn state_machine_safety_rejects_different_entries_applied_at_one_index() {
    let m = model();
    let mut s = init(&m);
    ghost_mut(&mut s, 0).applied = vec![e(1, 1)];
    ghost_mut(&mut s, 1).applied = vec![e(1, 1), e(1, 2)];
    assert!(holds(&m, &s, "State Machine Safety"));
    ghost_mut(&mut s, 2).applied = vec![e(1, 3)];
    assert!(!holds(&m, &s, "State Machine Safety"));
}

#[test]
fn leader_append_only_rejects_a_leader_step_that_drops_an_entry() {
    let m = model();
    let mut s = init(&m);
    let mut before = Server::<Cmd>::new();
    make_leader(&mut before, 1);
    before.hard.log = vec![e(1, 1), e(1, 2)].into();
    let mut after = before.clone();
    after.hard.log.push(e(1, 3));
    let mut ghost = shared::Shared::new(Ghost::default());
    Ghost::record(&mut ghost, &before, &after, &Default::default());
    server_mut(&mut s, 0).ghost = ghost.clone();
    assert!(holds(&m, &s, "Leader Append-Only"));
    after.hard.log = vec![e(1, 1)].into();
    Ghost::record(&mut ghost, &before, &after, &Default::default());
    server_mut(&mut s, 0).ghost = ghost;
    assert!(!holds(&m, &s, "Leader Append-Only"));
}

#[test]
fn linearizability_rejects_a_stale_read() {
    let m = model();
    let mut s = init(&m);
    let (c0, c1) = (
        stateright::actor::Id::from(3usize),
        stateright::actor::Id::from(4usize),
    );
    let mut r = Recorded::default();
    r.tester.on_invoke(c0, RegisterOp::Write(Some(1))).unwrap();
    r.tester.on_return(c0, RegisterRet::WriteOk).unwrap();
    r.tester.on_invoke(c1, RegisterOp::Read).unwrap();
    let mut ok = r.clone();
    ok.tester
        .on_return(c1, RegisterRet::ReadOk(Some(1)))
        .unwrap();
    s.history = ok.into();
    assert!(holds(&m, &s, "Linearizability"));
    r.tester.on_return(c1, RegisterRet::ReadOk(None)).unwrap();
    s.history = r.into();
    assert!(!holds(&m, &s, "Linearizability"));
}

#[test]
fn commit_index_must_stay_within_the_log() {
    let m = model();
    let mut s = init(&m);
    let srv = &mut server_mut(&mut s, 0).server;
    srv.hard.log = vec![e(1, 1)].into();
    srv.commit_index = 1;
    assert!(holds(&m, &s, "Commit Index Within Log"));
    server_mut(&mut s, 0).server.commit_index = 2;
    assert!(!holds(&m, &s, "Commit Index Within Log"));
}

#[test]
fn applied_entries_must_have_been_committed() {
    let m = model();
    let mut s = init(&m);
    ghost_mut(&mut s, 1).applied = vec![e(1, 1)];
    assert!(!holds(&m, &s, "Applied Entries Were Committed"));
    ghost_mut(&mut s, 0).committed.insert((1, e(1, 1)), 1);
    assert!(holds(&m, &s, "Applied Entries Were Committed"));
}

#[test]
fn match_index_sound_rejects_an_acknowledgement_the_follower_does_not_hold() {
    let m = model();
    let mut s = init(&m);
    // n0 leads term 3 with b at index 1; n1, of term 3 too, holds a (an earlier leader's entry).
    let leader = &mut server_mut(&mut s, 0).server;
    make_leader(leader, 3);
    leader.hard.log = vec![e(2, 2)].into();
    leader.leader.progress = [
        (raft_core::NodeId(1), Progress::new(1, false)),
        (raft_core::NodeId(2), Progress::new(1, false)),
    ]
    .into();
    let follower = &mut server_mut(&mut s, 1).server;
    follower.hard.current_term = 3;
    follower.hard.log = vec![e(1, 1)].into();
    assert!(holds(&m, &s, "Match Index Sound"));
    // A reply of term 1 taken as an acknowledgement of index 1.
    let leader = &mut server_mut(&mut s, 0).server;
    leader.leader.progress.insert(
        raft_core::NodeId(1),
        Progress {
            match_index: 1,
            ..Progress::new(2, false)
        },
    );
    assert!(!holds(&m, &s, "Match Index Sound"));
    // Once n1 moved on to a later term a newer leader may have rewritten it: not constrained.
    server_mut(&mut s, 1).server.hard.current_term = 4;
    assert!(holds(&m, &s, "Match Index Sound"));
    // The same acknowledgement of an entry n1 does hold is sound.
    let follower = &mut server_mut(&mut s, 1).server;
    follower.hard.current_term = 3;
    follower.hard.log = vec![e(2, 2)].into();
    assert!(holds(&m, &s, "Match Index Sound"));
}

#[test]
fn stale_messages_ignored_rejects_a_step_on_an_earlier_term_that_changed_the_server() {
    let m = model();
    let mut s = init(&m);
    let mut before = Server::<Cmd>::new();
    make_leader(&mut before, 2);
    before.leader.progress = [(raft_core::NodeId(1), Progress::new(1, false))].into();
    let mut ghost = shared::Shared::new(Ghost::default());
    Ghost::record_stale_step(&mut ghost, &before, &before.clone());
    server_mut(&mut s, 0).ghost = ghost.clone();
    assert!(holds(&m, &s, "Stale Messages Ignored"));
    let mut after = before.clone();
    after.leader.progress.insert(
        raft_core::NodeId(1),
        Progress {
            match_index: 1,
            ..Progress::new(2, false)
        },
    );
    Ghost::record_stale_step(&mut ghost, &before, &after);
    server_mut(&mut s, 0).ghost = ghost;
    assert!(!holds(&m, &s, "Stale Messages Ignored"));
}

#[test]
fn exactly_once_rejects_a_stale_copy_executed_again() {
    let m = model();
    let mut s = init(&m);
    // Client 0 wrote 1 (seq 0), then read (seq 1); a late copy of the write sits at index 3.
    let cmd = |seq: u8, op| Cmd { client: 0, seq, op };
    let log = vec![
        Entry {
            term: 1,
            command: cmd(0, ClientOp::Put(1)),
        },
        Entry {
            term: 1,
            command: cmd(1, ClientOp::Get),
        },
        Entry {
            term: 1,
            command: cmd(0, ClientOp::Put(1)),
        },
    ];
    let apply_all = |machine: &mut judge::register::RegisterMachine, stale_executes: bool| {
        for (i, entry) in log.iter().enumerate() {
            if i == 2 && stale_executes {
                // What a session that forgot the later command would do.
                let mut fresh = judge::register::RegisterMachine::default();
                judge::register::apply(&mut fresh, &entry.command);
                *machine = fresh;
            } else {
                judge::register::apply(machine, &entry.command);
            }
        }
    };
    let srv = server_mut(&mut s, 0);
    srv.server.hard.log = log.clone().into();
    srv.server.commit_index = 3;
    srv.server.last_applied = 3;
    apply_all(shared::Shared::make_mut(&mut srv.machine), false);
    ghost_mut(&mut s, 0).applied = log.clone();
    assert!(holds(&m, &s, "Exactly Once"));
    let srv = server_mut(&mut s, 0);
    let mut broken = judge::register::RegisterMachine::default();
    apply_all(&mut broken, true);
    srv.machine = shared::Shared::new(broken);
    assert!(!holds(&m, &s, "Exactly Once"));
    // A register that lost the write is caught too.
    let srv = server_mut(&mut s, 0);
    srv.machine = shared::Shared::new(judge::register::RegisterMachine::default());
    assert!(!holds(&m, &s, "Exactly Once"));
}

#[test]
fn crash_shows_the_state_the_server_restarts_with() {
    // The crash canonicalization keeps what survives (log, term, ghost) and drops the rest.
    let m = model();
    let s = init(&m);
    let mut actions = Vec::new();
    m.actions(&s, &mut actions);
    let crash = actions
        .into_iter()
        .find(|a| matches!(a, RaftAction::Crash(id) if usize::from(*id) == 0))
        .expect("servers can crash");
    let next = m.next_state(&s, crash).expect("crash is a step");
    assert!(next.is_crashed(0));
    assert_eq!(next.actor(0), s.actor(0));
}

/// "Progress When Faults Stop" on hand-built states: a follower whose log is behind the
/// leader's is repaired by the continuation; with the leader's back-off broken
/// (`no-backup-on-reject`) the same state makes no progress, and the explanation says who lags.
#[test]
fn progress_when_faults_stop_sees_a_follower_left_behind() {
    let name = LIVENESS.0;
    let build = |m: &RaftModel| {
        let mut state = init(m);
        // n0 leads term 1 with two entries; n2 has both, n1 none. next_index for n1 points past
        // n1's log (as after a leader change), so n1 rejects and must be probed back.
        let log = vec![e(1, 1), e(1, 2)];
        for i in 0..3 {
            let s = &mut server_mut(&mut state, i).server;
            s.hard.current_term = 1;
            s.hard.log = match i {
                1 => Default::default(),
                _ => log.clone().into(),
            };
        }
        let leader = &mut server_mut(&mut state, 0).server;
        make_leader(leader, 1);
        leader.hard.voted_for = Some(raft_core::NodeId(0));
        leader.leader.progress = [
            (raft_core::NodeId(1), Progress::new(3, false)),
            (raft_core::NodeId(2), Progress::new(3, false)),
        ]
        .into();
        state
    };
    let m = model();
    let state = build(&m);
    assert!(holds(&m, &state, name), "the correct rules repair n1");
    let c = judge::liveness::continuation(&m, &state, true);
    assert!(c.converged, "{:#?}", c.steps);
    assert!(c.steps.iter().any(|s| s.contains("AppendEntriesResponse")));

    let broken = ModelConfig {
        mutant: Some(crate::Mutant::NoBackupOnReject),
        ..ModelConfig::default()
    }
    .into_model();
    let state = build(&broken);
    assert!(!holds(&broken, &state, name));
    let c = judge::liveness::continuation(&broken, &state, true);
    assert!(!c.converged);
    // (The continuation runs on the canonical renaming, so the laggard may carry another name.)
    let last = c.steps.last().unwrap();
    assert!(last.contains("lags behind: log []"), "{last}");

    // Without the property, the model does not check it.
    let off = ModelConfig {
        liveness: false,
        ..ModelConfig::default()
    }
    .into_model();
    assert!(off.properties().iter().all(|p| p.name != name));
}

fn save(state: &mut RaftState, i: usize, log: Vec<Entry<Cmd>>) {
    let ghost = server_mut(state, i).ghost.clone();
    let hard = raft_core::HardState {
        snapshot: Default::default(),
        current_term: 1,
        voted_for: None,
        log: log.into(),
    };
    state.slot_mut(i).storage = Some(ServerStorage {
        hard: shared::Shared::new(hard),
        ghost,
    });
}

#[test]
fn committed_entries_durable_rejects_a_commit_held_by_a_minority_of_disks() {
    let m = model();
    let mut s = init(&m);
    // n0 leads term 1 with a committed; only n1's disk holds a (n0 wrote it behind).
    let leader = &mut server_mut(&mut s, 0).server;
    make_leader(leader, 1);
    leader.hard.log = vec![e(1, 1)].into();
    leader.commit_index = 1;
    save(&mut s, 1, vec![e(1, 1)]);
    assert!(!holds(&m, &s, "Committed Entries Durable"));
    assert!(holds(&m, &s, "Committed Before The Leader's Disk"));
    // n2's disk holds it too: a majority.
    save(&mut s, 2, vec![e(1, 1)]);
    assert!(holds(&m, &s, "Committed Entries Durable"));
    // Another entry at that index on n2's disk is no copy.
    save(&mut s, 2, vec![e(1, 2)]);
    assert!(!holds(&m, &s, "Committed Entries Durable"));
    // Once the leader's own disk holds it, the witness no longer applies and a majority holds.
    server_mut(&mut s, 0).server.leader.persisted_index = 1;
    save(&mut s, 0, vec![e(1, 1)]);
    assert!(holds(&m, &s, "Committed Entries Durable"));
    assert!(!holds(&m, &s, "Committed Before The Leader's Disk"));
}

/// Every action offered (to the checker and the Explorer alike) leads to a state inside the
/// bound: no client crashes (only servers crash), a server's crash while crashes remain.
#[test]
fn only_actions_inside_the_bound_are_offered() {
    let m = model();
    let state = init(&m);
    let mut actions = Vec::new();
    m.actions(&state, &mut actions);
    let crashed: Vec<usize> = actions
        .iter()
        .filter_map(|a| match a {
            stateright::actor::ActorModelAction::Crash(id) => Some(usize::from(*id)),
            _ => None,
        })
        .collect();
    assert_eq!(
        crashed,
        (0..m.cfg.servers).collect::<Vec<_>>(),
        "{actions:?}"
    );
    for a in actions {
        let next = m
            .next_state(&state, a.clone())
            .expect("an offered action has a next state");
        assert!(m.within_boundary(&next), "{a:?} leaves the bound");
    }
}

/// `next_state` refuses a step that leaves the bound before building its successor
/// (`RaftModel::leaves_bound`), and must refuse no other: from every reachable state of a
/// bound, each step reaches the same successor inside the bound as in a model one term and one
/// message in flight wider, where those steps are built (on each network semantics).
#[test]
fn steps_refused_early_are_exactly_those_that_leave_the_bound() {
    use super::config::NetworkKind;
    use std::collections::HashSet;
    let bounds = [
        ModelConfig {
            max_term: 1,
            reads: 0,
            max_crashes: 1,
            ..ModelConfig::default()
        },
        ModelConfig {
            max_term: 1,
            reads: 0,
            max_crashes: 0,
            network: NetworkKind::UnorderedDuplicating,
            max_in_flight: 2,
            ..ModelConfig::default()
        },
        ModelConfig {
            servers: 2,
            max_term: 2,
            network: NetworkKind::Ordered,
            max_in_flight: 2,
            ..ModelConfig::default()
        },
    ];
    for cfg in bounds {
        let m = cfg.clone().into_model();
        let wide = ModelConfig {
            max_term: cfg.max_term + 1,
            max_in_flight: cfg.max_in_flight + 1,
            ..cfg.clone()
        }
        .into_model();
        let fp = |s: &RaftState| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            s.hash(&mut h);
            h.finish()
        };
        let mut todo: Vec<RaftState> = m.init_states();
        let mut seen: HashSet<u64> = todo.iter().map(fp).collect();
        let (mut refused_early, mut actions) = (0, Vec::new());
        while let Some(s) = todo.pop() {
            m.actions(&s, &mut actions);
            for a in actions.drain(..) {
                let built = wide.next_state(&s, a.clone());
                let inside = built.clone().filter(|n| m.within_boundary(n));
                let ours = m.next_state(&s, a.clone());
                if ours.is_none() && built.is_some() {
                    refused_early += 1;
                }
                assert_eq!(
                    ours.as_ref().filter(|n| m.within_boundary(n)),
                    inside.as_ref(),
                    "{} after {a:?}",
                    cfg.network
                );
                if let Some(n) = inside {
                    if seen.insert(fp(&n)) {
                        todo.push(n);
                    }
                }
            }
        }
        assert!(refused_early > 0, "{}: nothing refused early", cfg.network);
    }
}

#[test]
fn commit_index_and_terms_never_decrease_reject_a_step_that_lowers_them() {
    let m = model();
    let mut s = init(&m);
    let mut before = Server::<Cmd>::new();
    before.hard.current_term = 2;
    before.hard.log = vec![e(1, 1)].into();
    before.commit_index = 1;
    let mut ghost = shared::Shared::new(Ghost::default());
    // Rising is fine.
    let mut after = before.clone();
    after.hard.current_term = 3;
    Ghost::record(&mut ghost, &before, &after, &Default::default());
    server_mut(&mut s, 0).ghost = ghost.clone();
    assert!(holds(&m, &s, "Commit Index Never Decreases"));
    assert!(holds(&m, &s, "Terms Never Decrease"));
    // A commit_index lowered within a life.
    let mut lower = before.clone();
    lower.commit_index = 0;
    let mut g = ghost.clone();
    Ghost::record(&mut g, &before, &lower, &Default::default());
    server_mut(&mut s, 0).ghost = g;
    assert!(!holds(&m, &s, "Commit Index Never Decreases"));
    assert!(holds(&m, &s, "Terms Never Decrease"));
    // A term lowered within a life.
    let mut lower = before.clone();
    lower.hard.current_term = 1;
    let mut g = ghost.clone();
    Ghost::record(&mut g, &before, &lower, &Default::default());
    server_mut(&mut s, 0).ghost = g;
    assert!(!holds(&m, &s, "Terms Never Decrease"));
    // A restart below the term it saved; at it, fine.
    let mut g = ghost.clone();
    Ghost::observe_saved_term(&mut g, 3);
    let mut restarted = g.clone();
    Ghost::observe_restart(&mut restarted, 3);
    server_mut(&mut s, 0).ghost = restarted;
    assert!(holds(&m, &s, "Terms Never Decrease"));
    Ghost::observe_restart(&mut g, 0);
    server_mut(&mut s, 0).ghost = g;
    assert!(!holds(&m, &s, "Terms Never Decrease"));
}

#[test]
fn snapshot_image_equals_applied_prefix_rejects_an_image_without_its_sessions() {
    let m = ModelConfig {
        max_snapshots: 1,
        ..ModelConfig::default()
    }
    .into_model();
    let mut s = init(&m);
    // Client 0's write (seq 0), then its retry: committed at 1 and 2.
    let log = vec![e(1, 0), e(1, 0)];
    for (i, entry) in log.iter().enumerate() {
        ghost_mut(&mut s, 0)
            .committed
            .insert((i as u64 + 1, entry.clone()), 1);
    }
    let mut machine = judge::register::RegisterMachine::default();
    for entry in &log {
        judge::register::apply(&mut machine, &entry.command);
    }
    let snapshot = |image: &Image| raft_core::Snapshot {
        last_included_index: 2,
        last_included_term: 1,
        config: None,
        data: image.encode(),
    };
    let good = Image::of(&machine, log.clone());
    server_mut(&mut s, 1).server.hard.snapshot = snapshot(&good);
    assert!(holds(&m, &s, "Snapshot Image Equals Applied Prefix"));
    // Without the sessions.
    let mut bad = good.clone();
    bad.sessions.sessions.clear();
    server_mut(&mut s, 1).server.hard.snapshot = snapshot(&bad);
    assert!(!holds(&m, &s, "Snapshot Image Equals Applied Prefix"));
    // With another value.
    let mut bad = good.clone();
    bad.value = Some(9);
    server_mut(&mut s, 1).server.hard.snapshot = snapshot(&bad);
    assert!(!holds(&m, &s, "Snapshot Image Equals Applied Prefix"));
    // The reference applies the entries the leaders' ghosts recorded committing, not the
    // image's own list (Snapshot Holds Only Committed State judges that list).
    let mut other = good;
    other.entries = vec![e(1, 5), e(1, 5)];
    server_mut(&mut s, 1).server.hard.snapshot = snapshot(&other);
    assert!(holds(&m, &s, "Snapshot Image Equals Applied Prefix"));
}

/// The read record: an acknowledgement counts once it arrives after the read; a read answered
/// before a majority acknowledged breaks "Reads Confirmed By A Quorum".
#[test]
fn reads_confirmed_by_a_quorum_counts_the_acknowledgements_after_the_read() {
    use judge::received::{record_reads, Received};
    use raft_core::{AppendEntries, AppendEntriesResponse, Event, Message, NodeId, Output};
    let m = ModelConfig {
        read_index: true,
        ..ModelConfig::default()
    }
    .into_model();
    let cfg = raft_core::Config::with_initial(NodeId(0), m.cfg.initial_membership())
        .with_rules(crate::mutant::ModelRules(None));
    let mut leader = Server::<Cmd>::new();
    make_leader(&mut leader, 1);
    let get = Cmd {
        client: 0,
        seq: 1,
        op: ClientOp::Get,
    };
    let read = Event::ReadIndex {
        id: 7,
        command: get,
    };
    let ack = Event::Receive {
        from: NodeId(1),
        msg: Message::AppendEntriesResponse(AppendEntriesResponse {
            term: 1,
            success: true,
            match_index: 0,
            read_round: 0,
        }),
    };
    let ask = Output {
        messages: vec![(
            NodeId(1),
            Message::AppendEntries(AppendEntries {
                term: 1,
                prev_log_index: 0,
                prev_log_term: 0,
                entries: vec![],
                leader_commit: 0,
                read_round: 0,
            }),
        )],
        ..Output::default()
    };
    let ready = Output {
        reads: vec![raft_core::ReadResult::Ready { id: 7, index: 0 }],
        ..Output::default()
    };
    let none = Output::default();
    let step = |g: &mut shared::Shared<Ghost>, e: &Event<Cmd>, out: &Output<Cmd>| {
        record_reads(g, &cfg, Received::of(e, &leader), &leader, &leader, out);
    };
    let timeout = Event::ElectionTimeout;
    let verdict = |g: &shared::Shared<Ghost>| {
        let mut s = init(&m);
        server_mut(&mut s, 0).ghost = g.clone();
        holds(&m, &s, "Reads Confirmed By A Quorum")
    };
    // Asked, acknowledged, answered.
    let mut g = shared::Shared::new(Ghost::default());
    step(&mut g, &read, &none);
    step(&mut g, &timeout, &ask);
    step(&mut g, &ack, &ready);
    assert!(verdict(&g));
    assert!(g.volatile.reads.is_empty());
    // Answered with no acknowledgement.
    let mut g = shared::Shared::new(Ghost::default());
    step(&mut g, &read, &none);
    step(&mut g, &timeout, &ready);
    assert!(!verdict(&g));
    // An acknowledgement delivered before the read arrived counts not.
    let mut g = shared::Shared::new(Ghost::default());
    step(&mut g, &ack, &none);
    step(&mut g, &read, &ready);
    assert!(!verdict(&g));
    // One delivered after it does, whatever the leader sent meanwhile.
    let mut g = shared::Shared::new(Ghost::default());
    step(&mut g, &read, &none);
    step(&mut g, &ack, &ready);
    assert!(verdict(&g));
}
