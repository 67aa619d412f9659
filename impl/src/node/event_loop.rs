//! The event loop: the only owner of the Raft server, the WAL and the state machine.
//!
//! Each turn handles a batch: it drains every queued input (and due timers) through
//! `Server::handle`, staging the WAL records each step asks for; then, in this order, it
//! (1) writes and fsyncs the WAL once for the whole batch, (2) sends the batch's messages,
//! (3) applies committed entries and answers clients. See "Durability contract" in README.md.

use super::{Input, NodeOptions};
use crate::kv::{Command, KvStore};
use crate::storage::Wal;
use crate::wire::ClientReply;
use raft_model::core::{
    Config, Entry, Event, Index, Message, NodeId, ProposeResult, Role, Server, Term,
};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Most inputs handled in one batch (one fsync).
const MAX_BATCH: usize = 4096;

/// A client waiting for its proposal at some index to be applied.
struct Pending {
    term: Term,
    reply: mpsc::Sender<ClientReply>,
}

/// What one batch must do after its steps.
#[derive(Default)]
struct Batch {
    messages: Vec<(NodeId, Message<Command>)>,
    apply: Vec<(Index, Entry<Command>)>,
    replies: Vec<(mpsc::Sender<ClientReply>, ClientReply)>,
    proposed: bool,
    shutdown: bool,
}

pub(crate) struct EventLoop {
    cfg: Config,
    server: Server<Command>,
    wal: Wal<Command>,
    kv: KvStore,
    pending: BTreeMap<Index, Pending>,
    peers: BTreeMap<NodeId, mpsc::Sender<Message<Command>>>,
    client_addrs: BTreeMap<NodeId, String>,
    election_timeout: (Duration, Duration),
    heartbeat_interval: Duration,
    election_deadline: Instant,
    heartbeat_deadline: Instant,
}

impl EventLoop {
    pub(crate) fn new(
        options: &NodeOptions,
        cfg: Config,
        server: Server<Command>,
        wal: Wal<Command>,
        peers: Vec<(NodeId, mpsc::Sender<Message<Command>>)>,
    ) -> Self {
        let min = options.election_timeout_min;
        let max = options.election_timeout_max.max(min);
        let mut event_loop = EventLoop {
            cfg,
            server,
            wal,
            kv: KvStore::new(),
            pending: BTreeMap::new(),
            peers: peers.into_iter().collect(),
            client_addrs: options
                .cluster
                .nodes
                .iter()
                .map(|n| (NodeId(n.id), n.client_addr.to_string()))
                .collect(),
            election_timeout: (min, max),
            heartbeat_interval: options.heartbeat_interval,
            election_deadline: Instant::now(),
            heartbeat_deadline: Instant::now(),
        };
        event_loop.reset_election_timer();
        event_loop
    }

    fn reset_election_timer(&mut self) {
        let (min, max) = self.election_timeout;
        let spread = (max - min).as_millis() as u64;
        let jitter = Duration::from_millis(fastrand::u64(0..=spread));
        self.election_deadline = Instant::now() + min + jitter;
    }

    /// Runs until a shutdown request (Ok) or a storage failure (Err: the node must stop, as it
    /// can no longer promise durability).
    pub(crate) fn run(mut self, inputs: mpsc::Receiver<Input>) -> anyhow::Result<()> {
        loop {
            let deadline = if self.server.role == Role::Leader {
                self.heartbeat_deadline
            } else {
                self.election_deadline
            };
            let wait = deadline.saturating_duration_since(Instant::now());
            let mut queued = Vec::new();
            match inputs.recv_timeout(wait) {
                Ok(input) => queued.push(input),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            }
            queued.extend(inputs.try_iter().take(MAX_BATCH));
            if self.turn(queued)? {
                tracing::info!(id = %self.cfg.id, "shut down");
                return Ok(());
            }
        }
    }

    /// One batch. Returns whether a shutdown was requested.
    fn turn(&mut self, inputs: Vec<Input>) -> anyhow::Result<bool> {
        let mut batch = Batch::default();
        for input in inputs {
            match input {
                Input::Peer { from, msg } => {
                    self.step(Event::Receive { from, msg }, &mut batch)?;
                }
                Input::PeerConnected(to) => {
                    self.step(Event::Resend { to }, &mut batch)?;
                }
                Input::Client { command, reply } => self.propose(command, reply, &mut batch)?,
                Input::Shutdown => batch.shutdown = true,
            }
        }
        self.fire_timers(&mut batch)?;

        // (1) Durable before anything that depends on it leaves this node.
        self.wal.sync()?;
        // (2) Send.
        for (to, msg) in batch.messages.drain(..) {
            if let Some(queue) = self.peers.get(&to) {
                let _ = queue.send(msg);
            }
        }
        // (3) Apply, and answer the clients whose proposals were applied.
        for (index, entry) in std::mem::take(&mut batch.apply) {
            let result = self.kv.apply(&entry.command);
            if let Some(pending) = self.pending.remove(&index) {
                let reply = if pending.term == entry.term {
                    ClientReply::Ok(result)
                } else {
                    ClientReply::Error(format!(
                        "proposal at index {index} was replaced by an entry of term {}; retry",
                        entry.term
                    ))
                };
                batch.replies.push((pending.reply, reply));
            }
        }
        if self.server.role != Role::Leader && !self.pending.is_empty() {
            // Lost leadership: the proposals may still commit, but this node will not learn of
            // it soon. The client retries elsewhere with the same seq (applied at most once).
            let hint = self.leader_hint();
            for (_, pending) in std::mem::take(&mut self.pending) {
                let reply = ClientReply::NotLeader {
                    leader_hint: hint.clone(),
                };
                batch.replies.push((pending.reply, reply));
            }
        }
        for (to, reply) in batch.replies {
            let _ = to.send(reply);
        }
        Ok(batch.shutdown)
    }

    /// Feeds one event to the server and stages what it must persist.
    fn step(
        &mut self,
        event: Event<Command>,
        batch: &mut Batch,
    ) -> anyhow::Result<Option<ProposeResult>> {
        let was_leader = self.server.role == Role::Leader;
        let out = self.server.handle(&self.cfg, event);
        self.wal.stage(&self.server.hard, &out.persist)?;
        if out.reset_election_timer {
            self.reset_election_timer();
        }
        if !was_leader && self.server.role == Role::Leader {
            tracing::info!(id = %self.cfg.id, term = self.server.current_term(), "became leader");
            self.heartbeat_deadline = Instant::now() + self.heartbeat_interval;
        }
        batch.messages.extend(out.messages);
        batch.apply.extend(out.apply);
        Ok(out.propose)
    }

    fn propose(
        &mut self,
        command: Command,
        reply: mpsc::Sender<ClientReply>,
        batch: &mut Batch,
    ) -> anyhow::Result<()> {
        match self.step(Event::Propose(command), batch)? {
            Some(ProposeResult::Accepted { index, term }) => {
                batch.proposed = true;
                if let Some(old) = self.pending.insert(index, Pending { term, reply }) {
                    // An older proposal at this index was truncated away.
                    let msg = format!("proposal at index {index} was overwritten; retry");
                    batch.replies.push((old.reply, ClientReply::Error(msg)));
                }
            }
            Some(ProposeResult::NotLeader { leader_hint }) => {
                let hint = leader_hint.and_then(|id| self.client_addrs.get(&id).cloned());
                batch
                    .replies
                    .push((reply, ClientReply::NotLeader { leader_hint: hint }));
            }
            None => {
                let msg = "the server gave no answer to a proposal".to_string();
                batch.replies.push((reply, ClientReply::Error(msg)));
            }
        }
        Ok(())
    }

    fn leader_hint(&self) -> Option<String> {
        self.server
            .leader_id
            .filter(|id| *id != self.cfg.id)
            .and_then(|id| self.client_addrs.get(&id).cloned())
    }

    /// Election timeout (followers, candidates); heartbeat (leaders, also right after new
    /// proposals so that they replicate at once).
    fn fire_timers(&mut self, batch: &mut Batch) -> anyhow::Result<()> {
        let now = Instant::now();
        if self.server.role != Role::Leader && now >= self.election_deadline {
            tracing::debug!(id = %self.cfg.id, term = self.server.current_term(), "election timeout");
            self.step(Event::ElectionTimeout, batch)?;
            self.reset_election_timer();
        }
        if self.server.role == Role::Leader && (batch.proposed || now >= self.heartbeat_deadline) {
            self.step(Event::Heartbeat, batch)?;
            self.heartbeat_deadline = Instant::now() + self.heartbeat_interval;
        }
        Ok(())
    }
}
