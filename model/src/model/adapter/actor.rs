//! The stateright `Actor` adapter: it feeds stateright's events into the core and carries out
//! the core's output (save storage, send messages, apply, answer clients, set timers).

use crate::model::adapter::actors::Actors;
use crate::model::adapter::client;
use crate::model::adapter::node::{NodeState, ServerState, ServerStorage, Timer};
use crate::model::config::ModelConfig;
use crate::model::judge::ghost::Ghost;
use crate::model::judge::received::{self, Received};
use crate::model::judge::register::{
    self, ClientOp, ClientReply, Cmd, Image, Msg, Register, RegisterMachine,
};
use crate::model::shared::Shared;
use crate::mutant::ModelRules;
use raft_core::{
    Config, ConfigChange, Event, Message, NodeId, ProposeResult, ReadResult, Role, Rules, Server,
};
use stateright::actor::{model_timeout, Actor, ActorModelAction, Id, Out};
use std::borrow::Cow;

/// One step of the system.
pub type RaftAction = ActorModelAction<Msg, Timer, ()>;

/// A server's configuration in the model: the core's, with the model's rules (the correct
/// protocol, or one mutant).
pub type ServerConfig = Config<ModelRules>;

#[derive(Clone, Debug)]
pub enum RaftActor {
    Server {
        cfg: ServerConfig,
        actors: Actors,
        driver: Driver,
    },
    Client {
        /// This client's index among clients (its identity in commands).
        index: u8,
        ops: Vec<ClientOp>,
        servers: Vec<Id>,
    },
}

/// How the model drives one server, besides the core's configuration.
#[derive(Clone, Copy, Debug)]
pub struct Driver {
    /// `ModelConfig::write_behind`.
    write_behind: bool,
    /// `ModelConfig::read_index`.
    read_index: bool,
    /// `ModelConfig::partial_partition`: the peer whose link to this server is cut.
    cut: Option<NodeId>,
    /// `ModelConfig::partial_partition`: a follower's election timer does not fire while it
    /// knows a leader, and the ghost records stable leaderships.
    partial_partition: bool,
    /// `ModelConfig::pre_vote`: the ghost records terms raised without a pre-vote majority.
    pre_vote: bool,
    /// Number of servers.
    servers: usize,
    /// `ModelConfig::max_transfers` is not 0: leaders have `Timer::Transfer` armed.
    transfers: bool,
    /// `ModelConfig::max_config_changes` is not 0: leaders have `Timer::Reconfigure` armed.
    reconfigures: bool,
    /// `ModelConfig::max_snapshots` is not 0: every server has `Timer::Compact` armed.
    snapshots: bool,
    /// `ModelConfig::max_forged` is not 0: every server has `Timer::Forge` armed.
    forged: bool,
    /// `ModelConfig::max_term`: a step past it is refused (`RaftModel::leaves_bound`), so its
    /// effects beyond the server's own state are not worked out.
    max_term: raft_core::Term,
}

impl RaftActor {
    pub(crate) fn server(i: usize, model: &ModelConfig) -> Self {
        let mut cfg = Config::with_initial(NodeId(i as u64), model.initial_membership())
            .with_rules(ModelRules(model.mutant))
            .with_fast_backup(model.fast_backup)
            .with_pipeline(model.pipeline)
            .with_pre_vote(model.pre_vote)
            .with_check_quorum(model.check_quorum);
        if let Some(n) = model.max_entries_per_append {
            cfg = cfg.with_max_entries_per_append(n);
        }
        if model.max_forged > 0 {
            // The node's cap scaled to the bound: the first refused term lies past every term
            // the bound's search and the liveness continuation's elections (one per round at
            // most) reach, and no correct message is refused for its distance.
            let rounds = crate::model::config::round_limit(model.effective_max_log_len());
            cfg.max_term = model.max_term + rounds as raft_core::Term + 1;
            cfg.max_term_jump = cfg.max_term - 1;
        }
        RaftActor::Server {
            cfg,
            actors: Actors::new(model.servers),
            driver: Driver {
                write_behind: model.write_behind,
                read_index: model.read_index,
                cut: (0..model.servers)
                    .find(|&j| model.link_cut(i, j))
                    .map(|j| NodeId(j as u64)),
                partial_partition: model.partial_partition,
                pre_vote: model.pre_vote,
                servers: model.servers,
                transfers: model.max_transfers > 0,
                reconfigures: model.max_config_changes > 0,
                snapshots: model.max_snapshots > 0,
                forged: model.max_forged > 0,
                max_term: model.max_term,
            },
        }
    }

    pub(crate) fn client(c: usize, reads: usize, servers: &[Id]) -> Self {
        let mut ops = vec![ClientOp::Put(c as u8 + 1)];
        ops.extend(std::iter::repeat_n(ClientOp::Get, reads));
        RaftActor::Client {
            index: c as u8,
            ops,
            servers: servers.to_vec(),
        }
    }
}

fn set_role_timers(cfg: &ServerConfig, driver: Driver, role: Role, o: &mut Out<RaftActor>) {
    if !cfg.election_timer_runs(role) {
        o.cancel_timer(Timer::Election);
    } else {
        o.set_timer(Timer::Election, model_timeout());
    }
    // Every other server: the core sends only to the members of its configuration.
    let peers = (0..driver.servers as u64)
        .map(NodeId)
        .filter(|p| *p != cfg.id);
    for peer in peers {
        if role == Role::Follower {
            o.cancel_timer(Timer::Send(peer));
        } else {
            o.set_timer(Timer::Send(peer), model_timeout());
        }
        // An operator may ask a leader to hand over to any peer at any moment.
        if driver.transfers && role == Role::Leader {
            o.set_timer(Timer::Transfer(peer), model_timeout());
        } else if driver.transfers {
            o.cancel_timer(Timer::Transfer(peer));
        }
    }
    // An operator may ask a leader for any membership change at any moment (the core refuses
    // those that make no sense, or come too early).
    if driver.reconfigures {
        for id in (0..driver.servers as u64).map(NodeId) {
            for change in [
                ConfigChange::AddLearner(id),
                ConfigChange::Promote(id),
                ConfigChange::Remove(id),
            ] {
                if role == Role::Leader {
                    o.set_timer(Timer::Reconfigure(change), model_timeout());
                } else {
                    o.cancel_timer(Timer::Reconfigure(change));
                }
            }
        }
    }
}

/// Requests (RequestVote, AppendEntries) are sent in the model one peer at a time, by the
/// `Timer::Send(peer)` action, which asks the core for exactly the message it would broadcast
/// (`Event::Resend`). The broadcast copies produced by an election timeout or by winning an
/// election are therefore treated as lost at once. This adds no behaviour (the network is lossy
/// and the core resends the same request from the same state) and loses none (the per-peer send
/// is enabled in the very state the broadcast left, before anything else happens), while a
/// burst of n - 1 messages no longer has to fit into the in-flight bound at once. (The same
/// holds for the core's immediate probe after a rejection that moved next_index back.) The
/// exception is a pipelining leader's entries to a peer it is not probing
/// (`Server::sends_move_next_index`): sending them moved next_index, so they are sent where
/// the step sends them.
///
/// The core's tag for client `client`'s read with sequence number `seq`.
fn read_id(client: u8, seq: u8) -> u64 {
    u64::from(client) << 8 | u64::from(seq)
}

/// The client and sequence number a read tag names.
fn read_client(id: u64) -> (u8, u8) {
    ((id >> 8) as u8, id as u8)
}

/// `Timer::Compact`: the snapshot the server's state machine takes, up to the highest index
/// the rules let it compact (what it has applied); `None` if that adds nothing to its
/// snapshot.
fn compaction(cfg: &ServerConfig, s: &ServerState) -> Option<Event<Cmd>> {
    let server = &s.server;
    let index = cfg
        .rules
        .compact_limit(server.last_applied, server.last_log_index());
    if index <= server.snapshot_index() {
        return None;
    }
    Some(Event::Compact {
        index,
        data: image_at(s, index)?.encode(),
    })
}

/// The image of the server's state machine with the log applied up to `index` (beyond
/// last_applied only under a mutant that compacts more than it applied).
fn image_at(s: &ServerState, index: u64) -> Option<Image> {
    let server = &s.server;
    let applied = usize::try_from(server.last_applied.min(index)).ok()?;
    let mut entries = s.ghost.applied.get(..applied)?.to_vec();
    let mut machine = (*s.machine).clone();
    for i in server.last_applied + 1..=index {
        let entry = server.entry(i)?;
        if !entry.command.is_config() {
            register::apply(&mut machine, &entry.command);
        }
        entries.push(entry.clone());
    }
    Some(Image::of(&machine, entries))
}

/// `Timer::Forge` (issue 38, finding 2): a frame no server sent reaches the server, a
/// RequestVote flagged as a transfer (which passes a lease) from the server after it, with the
/// first term the servers refuse. The core must refuse it and change nothing; the model counts
/// the frame, and where the core took its term, records that ("Forged Terms Refused") and keeps
/// the server as it was (the state after it lies past the bound's terms).
fn forged_step(cfg: &ServerConfig, driver: Driver, state: &mut Cow<NodeState>) {
    let NodeState::Server(before) = state.as_ref() else {
        return;
    };
    if before.fault.is_some() {
        return; // the node stopped
    }
    let from = NodeId((cfg.id.0 + 1) % driver.servers as u64);
    let forged = Message::RequestVote(raft_core::RequestVote {
        term: cfg.max_term,
        last_log_index: before.server.last_log_index(),
        last_log_term: before.server.last_log_term(),
        transfer: true,
    });
    let mut server = before.server.clone();
    let stepped = server.handle(cfg, Event::Receive { from, msg: forged });
    let mut ghost = before.ghost.clone();
    let g = Shared::make_mut(&mut ghost);
    g.forged = g.forged.saturating_add(1);
    let fault = match stepped {
        Err(e) if !e.is_fatal() => None,
        Err(e) => Some(e),
        Ok(_) => {
            g.forged_term_adopted = server.current_term() >= cfg.max_term;
            None
        }
    };
    *state = Cow::Owned(NodeState::Server(ServerState {
        ghost,
        fault,
        ..before.clone()
    }));
}

/// Run one core step on a server and carry out its output. Returns without touching `state`
/// when the step changed nothing and produced nothing (stateright then prunes the action).
fn server_step(
    cfg: &ServerConfig,
    actors: Actors,
    driver: Driver,
    state: &mut Cow<NodeState>,
    event: Event<Cmd>,
    client: Option<(Id, u8)>,
    o: &mut Out<RaftActor>,
) {
    let NodeState::Server(before) = state.as_ref() else {
        return;
    };
    if before.fault.is_some() {
        return; // the node stopped
    }
    let mut server = before.server.clone();
    let per_peer = matches!(event, Event::Resend { .. });
    let reconfigure = matches!(&event, Event::Propose(c) if c.is_config());
    let compact = matches!(event, Event::Compact { .. });
    let persisted = matches!(event, Event::Persisted { .. });
    let stale =
        matches!(&event, Event::Receive { msg, .. } if msg.term() < before.server.current_term());
    // Witness "Vote Ignored In A Lease": the server that asks for a vote (the core answers
    // every such request, except in a lease, where it drops it without a trace).
    let asks_for_vote = match &event {
        Event::Receive { from, msg } if msg.asks_for_vote() => Some(*from),
        _ => None,
    };
    // "Stable Leader Not Deposed": the peer that acknowledged an AppendEntries of this
    // leader's term.
    let acknowledged_by = match &event {
        Event::Receive {
            from,
            msg: Message::AppendEntriesResponse(r),
        } if driver.partial_partition
            && before.server.role == Role::Leader
            && r.success
            && r.term == before.server.current_term() =>
        {
            Some(*from)
        }
        _ => None,
    };
    // What the event brings that the model's records of received messages care about.
    let received = Received::of(&event, &before.server);
    let adopted_term = match &event {
        Event::Receive { msg, .. } if msg.raises_term() => Some(msg.term()),
        _ => None,
    };
    // A campaign on a leader's TimeoutNow skips the pre-vote (thesis §3.10).
    let handed_term = match &event {
        Event::Receive {
            msg: Message::TimeoutNow(t),
            ..
        } => t.term.checked_add(1),
        _ => None,
    };
    let stepped = server.handle(cfg, event).and_then(|mut output| {
        if !driver.write_behind && server.awaits_persisted() {
            // The bound's synchronous leader disk: durable in the step that appended it.
            let event = Event::Persisted {
                term: server.last_log_term(),
                index: server.last_log_index(),
            };
            let more = server.handle(cfg, event)?;
            output.messages.extend(more.messages);
            output.apply.extend(more.apply);
        }
        Ok(output)
    });
    let mut output = match stepped {
        Ok(output) => output,
        Err(fault) => {
            *state = Cow::Owned(NodeState::Server(ServerState {
                server,
                fault: Some(fault),
                ..before.clone()
            }));
            return;
        }
    };
    // The vote request got no answer (looked at before the partial partition drops any).
    let ignored_in_lease =
        asks_for_vote.is_some_and(|p| !output.messages.iter().any(|(to, _)| *to == p));
    if server.current_term() > driver.max_term {
        // Past the bound's last term: the model refuses this step before building its
        // successor (`RaftModel::leaves_bound` reads the term), so nothing else of it is
        // worked out.
        *state = Cow::Owned(NodeState::Server(ServerState {
            server,
            ..before.clone()
        }));
        return;
    }
    if let Some(cut) = driver.cut {
        // The partial partition: what this server sends the peer across the cut is lost.
        output.messages.retain(|(to, _)| *to != cut);
    }
    if !per_peer {
        // Requests go one peer at a time, except a pipelining leader's entries to a peer it
        // replicates to: that send moved next_index past them, so `Event::Resend` would not
        // send them again (dropping them here would lose every one, in every behaviour).
        // A TimeoutNow goes where the step sends it too: no resend repeats it.
        output.messages.retain(|(to, m)| {
            m.is_reply()
                || matches!(m, Message::TimeoutNow(_))
                || matches!(m, Message::AppendEntries(a)
                    if !a.entries.is_empty() && server.sends_move_next_index(cfg, *to))
        });
    }
    // A step that only teaches the ghost something new still counts as a step.
    let ghost_news = (ignored_in_lease && !before.ghost.vote_ignored_in_lease)
        || acknowledged_by.is_some_and(|p| {
            !before
                .ghost
                .stable_acks
                .contains(&(server.current_term(), p))
        });
    // (The server, the costliest to compare, last.)
    let unchanged = !ghost_news
        && output.messages.is_empty()
        && output.apply.is_empty()
        && output.reads.is_empty()
        && !matches!(output.propose, Some(ProposeResult::NotLeader { .. }))
        && server == before.server;
    if unchanged {
        return;
    }
    let mut ghost = before.ghost.clone();
    Ghost::record(&mut ghost, &before.server, &server, &output);
    if stale {
        Ghost::record_stale_step(&mut ghost, &before.server, &server);
    }
    if ignored_in_lease && !ghost.vote_ignored_in_lease {
        Shared::make_mut(&mut ghost).vote_ignored_in_lease = true;
    }
    if driver.partial_partition {
        let reachable = (0..driver.servers as u64)
            .map(NodeId)
            .filter(|p| *p != cfg.id && Some(*p) != driver.cut)
            .count();
        Ghost::record_stability(
            &mut ghost,
            &before.server,
            &server,
            acknowledged_by,
            reachable,
        );
    }
    if driver.pre_vote {
        received::record_pre_vote(
            &mut ghost,
            cfg,
            received,
            &before.server,
            &server,
            adopted_term,
            handed_term,
        );
    }
    if driver.transfers {
        received::record_transfer_campaign(&mut ghost, &before.server, &server, handed_term);
    }
    if driver.read_index {
        received::record_reads(&mut ghost, cfg, received, &before.server, &server, &output);
    }
    if reconfigure && matches!(output.propose, Some(ProposeResult::Accepted { .. })) {
        let g = Shared::make_mut(&mut ghost);
        g.config_changes = g.config_changes.saturating_add(1);
    }
    if before.server.role == Role::Leader
        && server.role == Role::Follower
        && server.current_term() == before.server.current_term()
        && !server.is_voter(cfg)
        && !ghost.removed_leader_stepped_down
    {
        Shared::make_mut(&mut ghost).removed_leader_stepped_down = true;
    }
    // The state machine takes a snapshot's image: one installed from the leader, or (under a
    // mutant only) one compacted past what it had applied.
    let compacted = server.snapshot_index() > before.server.snapshot_index();
    let image =
        if output.restore || (compacted && server.snapshot_index() > before.server.last_applied) {
            Image::decode(&server.snapshot().data)
        } else {
            None
        };
    if let Some(image) = &image {
        Ghost::observe_image(&mut ghost, &image.entries);
    }
    if output.restore && !ghost.snapshot_installed {
        Shared::make_mut(&mut ghost).snapshot_installed = true;
    }
    if compact && compacted {
        let g = Shared::make_mut(&mut ghost);
        g.snapshots = g.snapshots.saturating_add(1);
    }
    let ghost_changed = !Shared::ptr_eq(&ghost, &before.ghost) && *ghost != *before.ghost;
    let mut machine = match &image {
        Some(image) => Shared::new(image.machine(cfg.rules)),
        None => before.machine.clone(),
    };
    let role_changed = server.role != before.server.role;

    // 1. Persist: what the step made durable, and the ghost, are saved before anything produced
    //    by this step is sent. A leader's own new entries are written behind: storage gets
    //    them when `Timer::Persist` fires (`Server::durable_hard_state`).
    let durable_changed = role_changed
        || persisted
        || server.leader.persisted_index != before.server.leader.persisted_index;
    if !output.persist.is_empty() || ghost_changed || durable_changed {
        let hard = server.durable_hard_state();
        Ghost::observe_saved_term(&mut ghost, hard.current_term);
        o.save(ServerStorage {
            hard: Shared::new(hard),
            ghost: Ghost::durable(&ghost),
        });
    }
    // 2. Send.
    for (to, msg) in output.messages {
        o.send(Actors::server(to), Msg::Raft(msg));
    }
    // 3. Apply; the leader answers the client whose command it applied.
    for (_, entry) in &output.apply {
        if entry.command.is_config() {
            continue; // a configuration entry: nothing to apply, no client to answer
        }
        let reply = register::apply(Shared::make_mut(&mut machine), &entry.command);
        if server.role == Role::Leader {
            let cmd = entry.command;
            o.send(
                actors.client(cmd.client),
                Msg::Reply {
                    seq: cmd.seq,
                    reply,
                },
            );
        }
    }
    // 4. Reads (ReadIndex): a ready one is answered from the register as applied above.
    for read in &output.reads {
        match *read {
            ReadResult::Ready { id, .. } => {
                let (client, seq) = read_client(id);
                let value = machine.machine.value;
                if value.is_some() && !ghost.read_served_by_index {
                    Shared::make_mut(&mut ghost).read_served_by_index = true;
                }
                let reply = ClientReply::GetOk(value);
                o.send(actors.client(client), Msg::Reply { seq, reply });
            }
            ReadResult::NotLeader { id, leader_hint } => {
                let (client, seq) = read_client(id);
                let reply = ClientReply::NotLeader(leader_hint);
                o.send(actors.client(client), Msg::Reply { seq, reply });
            }
            // Proposed: answered when its entry is applied, like any command.
            ReadResult::ThroughLog { .. } => {}
        }
    }
    if let (Some(ProposeResult::NotLeader { leader_hint }), Some((client, seq))) =
        (output.propose, client)
    {
        o.send(
            client,
            Msg::Reply {
                seq,
                reply: ClientReply::NotLeader(leader_hint),
            },
        );
    }
    if role_changed {
        set_role_timers(cfg, driver, server.role, o);
    }
    if server.awaits_persisted() {
        o.set_timer(Timer::Persist, model_timeout());
    } else if before.server.awaits_persisted() {
        o.cancel_timer(Timer::Persist);
    }
    *state = Cow::Owned(NodeState::Server(ServerState {
        server,
        machine,
        ghost,
        fault: None,
    }));
}

impl Actor for RaftActor {
    type Msg = Msg;
    type State = NodeState;
    type Timer = Timer;
    type Storage = ServerStorage;
    type Random = ();

    fn on_start(&self, _id: Id, storage: &Option<ServerStorage>, o: &mut Out<Self>) -> NodeState {
        match self {
            RaftActor::Server { cfg, driver, .. } => {
                let (server, mut ghost) = match storage {
                    Some(saved) => (
                        Server::restart(cfg, (*saved.hard).clone()),
                        saved.ghost.clone(),
                    ),
                    None => (Server::new(), Shared::new(Ghost::default())),
                };
                // "Terms Never Decrease": at least the term it saved.
                Ghost::observe_restart(&mut ghost, server.current_term());
                set_role_timers(cfg, *driver, server.role, o);
                if driver.snapshots {
                    o.set_timer(Timer::Compact, model_timeout());
                }
                if driver.forged {
                    o.set_timer(Timer::Forge, model_timeout());
                }
                // §7: a server restarting from a snapshot restores its state machine from it.
                let image = (server.snapshot_index() > 0)
                    .then(|| Image::decode(&server.snapshot().data))
                    .flatten();
                let machine = match &image {
                    Some(image) => {
                        if !ghost.restarted_from_snapshot {
                            Shared::make_mut(&mut ghost).restarted_from_snapshot = true;
                        }
                        image.machine(cfg.rules)
                    }
                    None => RegisterMachine::with_rules(Register::default(), cfg.rules),
                };
                NodeState::Server(ServerState {
                    server,
                    machine: Shared::new(machine),
                    ghost,
                    fault: None,
                })
            }
            RaftActor::Client { ops, servers, .. } => {
                NodeState::Client(client::start(ops, servers, o))
            }
        }
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<NodeState>, src: Id, msg: Msg, o: &mut Out<Self>) {
        match self {
            RaftActor::Server {
                cfg,
                actors,
                driver,
            } => match msg {
                Msg::Raft(msg) => {
                    let event = Event::Receive {
                        from: Actors::node(src),
                        msg,
                    };
                    server_step(cfg, *actors, *driver, state, event, None, o)
                }
                // The node's retry policy: every request is proposed, a retried one again (it
                // may then sit in the log twice), and the service's sessions deduplicate it
                // when applying (`raft_core::service`). The log bound (`--max-log-len`) keeps
                // retries finite.
                Msg::Request { seq, op } => {
                    let Some(index) = actors.client_of(src) else {
                        return;
                    };
                    let command = Cmd {
                        client: index,
                        seq,
                        op,
                    };
                    // With ReadIndex, a read is the node's read: no log entry unless the
                    // leader knows no read index yet.
                    let event = match op {
                        ClientOp::Get if driver.read_index => Event::ReadIndex {
                            id: read_id(index, seq),
                            command,
                        },
                        _ => Event::Propose(command),
                    };
                    server_step(cfg, *actors, *driver, state, event, Some((src, seq)), o)
                }
                Msg::Reply { .. } => {}
            },
            RaftActor::Client { ops, servers, .. } => {
                if let Msg::Reply { seq, reply } = msg {
                    client::on_reply(state, ops, servers, seq, reply, o);
                }
            }
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<NodeState>, timer: &Timer, o: &mut Out<Self>) {
        if let RaftActor::Client { ops, .. } = self {
            if let Timer::Request(server) = timer {
                client::on_request_timer(state.as_ref(), ops, *server, o);
            }
            return;
        }
        if let RaftActor::Server {
            cfg,
            actors,
            driver,
        } = self
        {
            let event = match timer {
                // The partial partition's timing assumption: a follower hears from the leader
                // it follows before its election timer fires.
                Timer::Election
                    if driver.partial_partition
                        && matches!(state.as_ref(), NodeState::Server(s)
                            if s.server.role == Role::Follower && s.server.leader_id.is_some()) =>
                {
                    return
                }
                Timer::Election => Event::ElectionTimeout,
                Timer::Send(to) => Event::Resend { to: *to },
                // The disk completes every write issued so far.
                Timer::Persist => match state.as_ref() {
                    NodeState::Server(s) => Event::Persisted {
                        term: s.server.last_log_term(),
                        index: s.server.last_log_index(),
                    },
                    NodeState::Client(_) => return,
                },
                Timer::Transfer(to) => Event::TransferLeadership { to: *to },
                // The operator's tool builds the entry from the leader's configuration.
                Timer::Reconfigure(change) => match state.as_ref() {
                    NodeState::Server(s) if s.server.role == Role::Leader => {
                        match s.server.configuration_after(cfg, *change) {
                            Ok(m) => Event::Propose(Cmd::config(&m)),
                            Err(_) => return,
                        }
                    }
                    _ => return,
                },
                Timer::Compact => match state.as_ref() {
                    NodeState::Server(s) if s.fault.is_none() => match compaction(cfg, s) {
                        Some(event) => event,
                        None => {
                            o.set_timer(Timer::Compact, model_timeout());
                            return;
                        }
                    },
                    _ => return,
                },
                Timer::Request(_) => return,
                Timer::Forge => {
                    forged_step(cfg, *driver, state);
                    o.set_timer(Timer::Forge, model_timeout());
                    return;
                }
            };
            server_step(cfg, *actors, *driver, state, event, None, o);
            // A timer that fired stays armed for its role (stateright cancels it on firing).
            if let NodeState::Server(s) = state.as_ref() {
                let keep = match timer {
                    Timer::Election => cfg.election_timer_runs(s.server.role),
                    Timer::Send(_) => s.server.role != Role::Follower,
                    Timer::Persist => s.server.awaits_persisted(),
                    Timer::Transfer(_) | Timer::Reconfigure(_) => s.server.role == Role::Leader,
                    Timer::Compact | Timer::Forge => true,
                    Timer::Request(_) => false,
                };
                if keep {
                    o.set_timer(*timer, model_timeout());
                }
            }
        }
    }

    fn name(&self) -> String {
        match self {
            RaftActor::Server { cfg, .. } => format!("server {}", cfg.id),
            RaftActor::Client { index, .. } => format!("client {index}"),
        }
    }
}
