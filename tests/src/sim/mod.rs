//! A deterministic simulator of a Raft cluster: N replicas of the real runtime
//! (`raft_impl::node::replica::Replica`, the same batching and durability logic as the real
//! event loop) on one thread, in virtual time, over an in-memory network and fake disks.
//!
//! Everything random comes from one seeded RNG, and every queue is ordered by (virtual time,
//! insertion number), so a seed replays the same run exactly. Faults: per-message delay, loss,
//! duplication and long reordering ([`network`]), per-server disconnects and per-link cuts,
//! crashes (volatile state gone, the disk keeps what was synced: [`disk`]) and restarts.
//!
//! The simulator watches every turn of every replica and records the first safety violation:
//! Election Safety (two leaders in one term, Raft paper Figure 3) and State Machine Safety
//! (two servers applying different commands at one index: the lab's applier check "commit
//! index=… server=… != server=…").

pub mod capture;
pub mod clients;
pub mod disk;
pub mod network;
pub mod workload;

use crate::linearizability::History;
use disk::{DiskFaults, SimDisk};
use network::{is_reply, ClientToken, Delivery, NetParams, Network};
use raft_impl::core::{Config, Index, Message, NodeId, Role, Server, Term};
use raft_impl::kv::Command;
use raft_impl::node::replica::{
    AppliedRecord, Effects, Replica, ReplicaInput, ReplicaOptions, SnapshotPolicy,
};
use raft_impl::trace_log::TraceLog;
use raft_impl::wire::ClientReply;
use raft_model::conform::{parse_jsonl, Opaque, RunInfo, TraceRecord};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use workload::KvClient;

/// With this environment variable set to a directory, every simulated run records traces and
/// writes them to a fresh subdirectory of it when it ends (e.g. the whole lab suite:
/// `RAFT_SIM_TRACE_DIR=/tmp/t cargo test -p raft-tests --test lab`, then
/// `raft-check conform /tmp/t`).
pub const TRACE_DIR_ENV: &str = "RAFT_SIM_TRACE_DIR";

/// One node's trace, kept in memory.
pub type MemTrace = Arc<Mutex<TraceLog<Vec<u8>>>>;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Timing and faults of a simulated cluster.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub servers: usize,
    pub seed: u64,
    pub disk: DiskFaults,
    /// The lab asks for at most 10 heartbeats per second.
    pub heartbeat: Duration,
    pub election_timeout: (Duration, Duration),
    /// Most entries per AppendEntries (the real node's `MAX_ENTRIES_PER_APPEND`).
    pub max_entries_per_append: usize,
    /// Pipelining AppendEntries (the real node's `PIPELINE`; `None`: none).
    pub pipeline: Option<raft_impl::core::Window>,
    /// PreVote (`Config::pre_vote`; on, as in the real node's `node_config`).
    pub pre_vote: bool,
    /// CheckQuorum and the leader's lease on votes (`Config::check_quorum`; on, as in the
    /// real node's `node_config`).
    pub check_quorum: bool,
    /// Most replica turns before the run is declared stuck (a livelock or message storm is a
    /// failure, not a hang).
    pub max_turns: u64,
    /// Record a per-node trace of every step (for trace conformance).
    pub trace: bool,
    /// The initial configuration's voters: servers `0..initial_voters`; the others start
    /// outside the cluster and join when a leader adds them ([`Sim::member`]). `None`: every
    /// server.
    pub initial_voters: Option<usize>,
    /// When the replicas compact their logs (§7; the node's default unless a test sets small
    /// bounds, as the lab's 3D tests do).
    pub snapshot: SnapshotPolicy,
}

impl SimOptions {
    pub fn new(servers: usize, seed: u64) -> Self {
        SimOptions {
            servers,
            seed,
            disk: DiskFaults::default(),
            heartbeat: ms(100),
            election_timeout: (ms(300), ms(600)),
            max_entries_per_append: raft_impl::node::MAX_ENTRIES_PER_APPEND,
            pipeline: Some(raft_impl::node::PIPELINE),
            pre_vote: true,
            check_quorum: true,
            max_turns: 3_000_000,
            trace: std::env::var_os(TRACE_DIR_ENV).is_some(),
            initial_voters: None,
            snapshot: SnapshotPolicy::default(),
        }
    }
}

type SimReplica = Replica<SimDisk, ClientToken>;

struct Node {
    replica: Option<SimReplica>,
    disk: SimDisk,
    /// Every command this server has applied, by index (kept across its crashes, as the lab
    /// keeps `cfg.logs`).
    applied: BTreeMap<Index, Command>,
    /// Highest index applied by the current incarnation.
    seen_applied: Index,
    /// Snapshots taken and installed by this server's earlier incarnations (its current
    /// replica counts its own).
    compactions: u64,
    installs: u64,
    /// The snapshot index of the current incarnation when last observed.
    seen_snapshot: Index,
}

pub struct Sim {
    pub now: Duration,
    pub rng: fastrand::Rng,
    pub net: Network,
    nodes: Vec<Node>,
    cfgs: Vec<Config>,
    options: ReplicaOptions,
    leaders: BTreeMap<Term, usize>,
    committed: BTreeMap<Index, (usize, Command)>,
    /// The first snapshot image seen at each index, and whose: every server's snapshot at an
    /// index must be the same (State Machine Safety for snapshots).
    images: BTreeMap<Index, (usize, Vec<u8>)>,
    violation: Option<String>,
    /// Count the encoded bytes of every request (RPCBytes).
    pub count_bytes: bool,
    pub clients: Vec<KvClient>,
    pub history: History,
    /// Replica turns taken (a measure of the work simulated).
    pub turns: u64,
    max_turns: u64,
    history_threads: u64,
    /// Per-node traces (with `SimOptions::trace`).
    traces: Vec<MemTrace>,
    /// Some message may have been delivered twice by the network (a duplicating run).
    duplicated: bool,
    /// The answers to the harness's admin requests ([`Sim::transfer_leadership`]): when, from
    /// which server, what.
    pub admin_replies: Vec<(Duration, usize, ClientReply)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    Net,
    Node(usize),
    Client(usize),
}

impl Sim {
    pub fn new(opts: &SimOptions) -> Self {
        let n = opts.servers;
        let ids: Vec<NodeId> = (0..n as u64).map(NodeId).collect();
        let voters = opts.initial_voters.unwrap_or(n) as u64;
        let initial = raft_impl::core::Membership::voters((0..voters).map(NodeId));
        let cfgs = ids
            .iter()
            .map(|id| {
                Config::with_initial(*id, initial.clone())
                    .with_max_entries_per_append(opts.max_entries_per_append)
                    .with_fast_backup(true)
                    .with_pipeline(opts.pipeline)
                    .with_pre_vote(opts.pre_vote)
                    .with_check_quorum(opts.check_quorum)
            })
            .collect();
        let options = ReplicaOptions {
            election_timeout_min: opts.election_timeout.0,
            election_timeout_max: opts.election_timeout.1,
            heartbeat_interval: opts.heartbeat,
            // An "address" in the simulator is the server's index.
            addresses: ids
                .iter()
                .map(|id| {
                    let index = id.0.to_string();
                    let address = raft_impl::core::Address {
                        peer: index.clone(),
                        client: index,
                    };
                    (*id, address)
                })
                .collect(),
            cluster_id: 1,
            snapshot: opts.snapshot,
        };
        let mut sim = Sim {
            now: Duration::ZERO,
            rng: fastrand::Rng::with_seed(opts.seed),
            net: Network::new(n),
            nodes: Vec::new(),
            cfgs,
            options,
            leaders: BTreeMap::new(),
            committed: BTreeMap::new(),
            images: BTreeMap::new(),
            violation: None,
            count_bytes: false,
            clients: Vec::new(),
            history: History::default(),
            turns: 0,
            max_turns: opts.max_turns,
            history_threads: 0,
            traces: Vec::new(),
            duplicated: false,
            admin_replies: Vec::new(),
        };
        if opts.trace {
            sim.traces = ids
                .iter()
                .map(|id| Arc::new(Mutex::new(TraceLog::new(*id, 0, Vec::new()))))
                .collect();
        }
        for _ in 0..n {
            let disk = SimDisk::default();
            disk.0.borrow_mut().faults = opts.disk;
            sim.nodes.push(Node {
                replica: None,
                disk,
                applied: BTreeMap::new(),
                seen_applied: 0,
                compactions: 0,
                installs: 0,
                seen_snapshot: 0,
            });
        }
        for i in 0..n {
            sim.restart(i);
        }
        sim
    }

    pub fn servers(&self) -> usize {
        self.nodes.len()
    }

    pub fn set_net(&mut self, params: NetParams) {
        self.duplicated |= params.duplicate > 0.0;
        self.net.params = params;
    }

    /// How this run was made, for `conform`.
    pub fn run_info(&self) -> RunInfo {
        let voters = self.cfgs[0].initial.voters.len();
        RunInfo {
            initial_voters: (voters < self.cfgs.len()).then_some(voters),
            ..RunInfo::of(&self.cfgs[0], self.duplicated)
        }
    }

    /// The per-node traces as JSON Lines (empty without `SimOptions::trace`).
    pub fn trace_jsonl(&self) -> Vec<Vec<u8>> {
        self.traces
            .iter()
            .map(|t| t.lock().map(|t| t.peek().to_vec()).unwrap_or_default())
            .collect()
    }

    /// The per-node traces, parsed back (what `raft-check conform` reads from files).
    pub fn traces(&self) -> Result<Vec<Vec<TraceRecord<Opaque>>>, String> {
        self.trace_jsonl()
            .iter()
            .enumerate()
            .map(|(i, bytes)| parse_jsonl(&String::from_utf8_lossy(bytes), &format!("node-{i}")))
            .collect()
    }

    /// Writes `dir/node-<i>.jsonl` per node and `dir/run.json`.
    pub fn write_traces(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (i, bytes) in self.trace_jsonl().iter().enumerate() {
            std::fs::write(dir.join(format!("node-{i}.jsonl")), bytes)?;
        }
        let info = serde_json::to_string_pretty(&self.run_info()).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("run.json"), info)
    }

    /// The first safety violation seen, if any.
    pub fn check(&self) -> Result<(), String> {
        match &self.violation {
            Some(v) => Err(v.clone()),
            None => Ok(()),
        }
    }

    /// Forgets the recorded safety violation (returning it), so that a run can go on past it:
    /// for recording what clients of a broken cluster observe (`history_export`).
    pub fn take_violation(&mut self) -> Option<String> {
        self.violation.take()
    }

    fn violate(&mut self, what: String) {
        if self.violation.is_none() {
            self.violation = Some(format!("at {:?}: {what}", self.now));
        }
    }

    pub fn alive(&self, i: usize) -> bool {
        self.nodes[i].replica.is_some()
    }

    pub fn server(&self, i: usize) -> Option<&Server<Command>> {
        self.nodes[i].replica.as_ref().map(|r| r.server())
    }

    /// Lab `GetState`: (term, is leader) of a live server.
    pub fn state(&self, i: usize) -> Option<(Term, bool)> {
        self.server(i)
            .map(|s| (s.current_term(), s.role == Role::Leader))
    }

    pub fn connect(&mut self, i: usize) {
        self.net.connected[i] = true;
    }

    pub fn disconnect(&mut self, i: usize) {
        self.net.connected[i] = false;
    }

    pub fn connected(&self, i: usize) -> bool {
        self.net.connected[i]
    }

    /// Cuts every link between the two groups, both ways.
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.net.cut.insert((x, y));
                self.net.cut.insert((y, x));
            }
        }
    }

    pub fn heal(&mut self) {
        self.net.cut.clear();
    }

    /// The process dies: volatile state gone; the disk keeps what was synced.
    pub fn crash(&mut self, i: usize) {
        if let Some(replica) = self.nodes[i].replica.take() {
            self.nodes[i].compactions += replica.compactions();
            self.nodes[i].installs += replica.installs();
            if let Some(trace) = self.traces.get(i) {
                if let Ok(mut t) = trace.lock() {
                    t.crash(self.now);
                }
            }
            let torn = self.rng.f64();
            self.nodes[i].disk.0.borrow_mut().crash(torn);
        }
    }

    /// Starts server `i` from its disk, through the real recovery path (`decode_records`, then
    /// `Server::restart`), as `raft_impl::node::start` does.
    pub fn restart(&mut self, i: usize) {
        self.crash(i);
        let recovered = self.nodes[i].disk.0.borrow_mut().recover();
        let hard = match recovered {
            Ok(h) => h,
            Err(e) => {
                self.violate(format!("server {i} cannot recover its WAL: {e}"));
                return;
            }
        };
        let cfg = self.cfgs[i].clone();
        let server = Server::restart(&cfg, hard);
        let seed = self.rng.u64(..);
        let replica = Replica::new(
            cfg,
            server,
            self.nodes[i].disk.clone(),
            self.options.clone(),
            seed,
            self.now,
        );
        let mut replica = match replica {
            Ok(r) => r,
            Err(e) => {
                self.violate(format!("server {i} cannot restart: {e}"));
                return;
            }
        };
        replica.record_applied();
        if let Some(trace) = self.traces.get(i) {
            if let Ok(mut t) = trace.lock() {
                t.restart(self.now, replica.server());
            }
            replica.set_trace(Box::new(trace.clone()));
        }
        self.nodes[i].replica = Some(replica);
        self.nodes[i].seen_applied = 0;
        self.nodes[i].seen_snapshot = 0;
        self.observe(i);
    }

    /// Snapshots server `i` took so far (`Event::Compact`), across its restarts.
    pub fn compactions(&self, i: usize) -> u64 {
        let current = self.nodes[i]
            .replica
            .as_ref()
            .map_or(0, |r| r.compactions());
        self.nodes[i].compactions + current
    }

    /// Snapshots server `i` installed from a leader (InstallSnapshot), across its restarts.
    pub fn installs(&self, i: usize) -> u64 {
        let current = self.nodes[i].replica.as_ref().map_or(0, |r| r.installs());
        self.nodes[i].installs + current
    }

    /// The commands server `i` applied, by index, across its restarts (for indices its
    /// store received in a snapshot: the commands committed there).
    pub fn applied(&self, i: usize) -> &BTreeMap<Index, Command> {
        &self.nodes[i].applied
    }

    /// Lab `Start`: proposes `command` at server `i` if it is a live leader; returns the index
    /// and term it was appended at (`None` also when the leader refused it: a leader handing
    /// over its leadership takes no proposal).
    pub fn start(&mut self, i: usize, command: Command) -> Option<(Index, Term)> {
        let (_, leader) = self.state(i)?;
        if !leader {
            return None;
        }
        let before = self.server(i)?.last_log_index();
        let input = ReplicaInput::Client {
            command: command.clone(),
            reply: ClientToken::LAB,
        };
        self.turn(i, vec![input]);
        let s = self.server(i)?;
        let index = s.last_log_index();
        let appended = index > before && s.entry(index).is_some_and(|e| e.command == command);
        (s.role == Role::Leader && appended).then(|| (index, s.current_term()))
    }

    /// An operator asks server `from` to hand its leadership to server `to` (Ongaro's thesis
    /// §3.10, `ReplicaInput::TransferLeadership`), directly (not over the network). The
    /// answer, at once or when the transfer is over, goes to [`Sim::admin_replies`]; nothing
    /// happens if `from` is down.
    pub fn transfer_leadership(&mut self, from: usize, to: usize) {
        let input = ReplicaInput::TransferLeadership {
            to: NodeId(to as u64),
            reply: ClientToken::ADMIN,
        };
        self.turn(from, vec![input]);
    }

    /// Server `i`'s protocol configuration.
    pub fn config(&self, i: usize) -> &Config {
        &self.cfgs[i]
    }

    /// An operator's membership request to server `at` (`ReplicaInput::Member`), directly
    /// (not over the network). The answer, at once or once the change is applied, goes to
    /// [`Sim::admin_replies`]; nothing happens if `at` is down.
    pub fn member(&mut self, at: usize, request: raft_impl::wire::MemberRequest) {
        let input = ReplicaInput::Member {
            request,
            reply: ClientToken::ADMIN,
        };
        self.turn(at, vec![input]);
    }

    /// Commands applied at `index`: how many servers applied one, and which (lab
    /// `nCommitted`; servers disagreeing is a violation).
    pub fn n_committed(&self, index: Index) -> Result<(usize, Option<Command>), String> {
        let mut count = 0;
        let mut cmd: Option<&Command> = None;
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(c) = node.applied.get(&index) {
                if let Some(prev) = cmd {
                    if prev != c {
                        return Err(format!(
                            "committed values do not match: index {index}, {prev:?}, {c:?} (server {i})"
                        ));
                    }
                }
                count += 1;
                cmd = Some(c);
            }
        }
        Ok((count, cmd.cloned()))
    }

    /// One line per server: alive, connected, term, role, log length, last term, commit
    /// index; for leaders also next_index (for failure messages).
    pub fn describe(&self) -> String {
        let mut lines = vec![format!(
            "at {:?}, {} messages in flight",
            self.now,
            self.net.in_flight()
        )];
        for (i, node) in self.nodes.iter().enumerate() {
            let conn = if self.net.connected[i] {
                "connected"
            } else {
                "disconnected"
            };
            match node.replica.as_ref().map(|r| r.server()) {
                None => lines.push(format!("  server {i}: down, {conn}")),
                Some(s) => lines.push(format!(
                    "  server {i}: {conn}, term {}, {:?}, log {} (last term {}), commit {}{}",
                    s.current_term(),
                    s.role,
                    s.last_log_index(),
                    s.last_log_term(),
                    s.commit_index,
                    if s.role == Role::Leader {
                        format!(", next_index {:?}", s.leader.next_index())
                    } else {
                        String::new()
                    }
                )),
            }
        }
        lines.join("\n")
    }

    /// Runs the cluster for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) -> Result<(), String> {
        let end = self.now + d;
        self.run_until(end)
    }

    /// Processes every delivery, timer and client wake-up due up to `end`, in time order.
    pub fn run_until(&mut self, end: Duration) -> Result<(), String> {
        loop {
            self.check()?;
            let mut best: Option<(Duration, Next)> = None;
            let mut consider = |t: Duration, what: Next| {
                if t <= end && best.is_none_or(|(b, _)| t < b) {
                    best = Some((t, what));
                }
            };
            if let Some(t) = self.net.next_time() {
                consider(t, Next::Net);
            }
            for (i, node) in self.nodes.iter().enumerate() {
                if let Some(r) = &node.replica {
                    consider(r.next_deadline(), Next::Node(i));
                }
            }
            for (c, client) in self.clients.iter().enumerate() {
                if let Some(t) = client.wake {
                    consider(t, Next::Client(c));
                }
            }
            let Some((t, what)) = best else {
                self.now = self.now.max(end);
                return Ok(());
            };
            self.now = self.now.max(t);
            match what {
                Next::Net => {
                    if let Some((_, delivery)) = self.net.pop() {
                        self.deliver(delivery);
                    }
                }
                Next::Node(i) => self.turn(i, Vec::new()),
                Next::Client(c) => self.client_wake(c),
            }
        }
    }

    fn deliver(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Peer { from, to, msg } => {
                let (f, t) = (from.0 as usize, to.0 as usize);
                if self.net.link_up(f, t) {
                    let mut inputs = Vec::new();
                    if self.net.params.replay_frames {
                        let msg = msg.clone();
                        inputs.push(ReplicaInput::Peer { from, msg });
                    }
                    inputs.push(ReplicaInput::Peer { from, msg });
                    self.turn(t, inputs);
                }
            }
            Delivery::Request { to, token, command } => {
                self.turn(
                    to,
                    vec![ReplicaInput::Client {
                        command,
                        reply: token,
                    }],
                );
            }
            Delivery::Reply { token, reply } => self.client_reply(token, reply),
        }
    }

    /// One batch of server `i`, then its effects: messages into the network, then replies.
    fn turn(&mut self, i: usize, inputs: Vec<ReplicaInput<ClientToken>>) {
        let Some(replica) = self.nodes[i].replica.as_mut() else {
            return;
        };
        self.turns += 1;
        if self.turns > self.max_turns {
            let msg = format!(
                "more than {} turns: a livelock or a message storm",
                self.max_turns
            );
            self.violate(msg);
            return;
        }
        let effects = match replica.turn(self.now, inputs) {
            Ok(e) => e,
            Err(e) => {
                self.violate(format!("server {i} stopped: {e}"));
                return;
            }
        };
        self.observe(i);
        self.carry_out(i, effects);
        // A leader's entries written behind: its messages are in the network, now its disk
        // syncs (the real node's order).
        let Some(replica) = self.nodes[i].replica.as_mut() else {
            return;
        };
        if replica.flush_due() {
            match replica.flush(self.now) {
                Ok(effects) => {
                    self.observe(i);
                    self.carry_out(i, effects);
                }
                Err(e) => self.violate(format!("server {i} stopped: {e}")),
            }
        }
    }

    /// A batch's effects: messages into the network, then replies.
    fn carry_out(&mut self, i: usize, effects: Effects<ClientToken>) {
        for (to, msg) in effects.messages {
            self.send_peer(i, to.0 as usize, msg);
        }
        for (token, reply) in effects.replies {
            if token == ClientToken::LAB {
                continue;
            }
            if token == ClientToken::ADMIN {
                self.admin_replies.push((self.now, i, reply));
                continue;
            }
            for delay in self.net.fate(&mut self.rng, true) {
                let reply = reply.clone();
                self.net
                    .push(self.now + delay, Delivery::Reply { token, reply });
            }
        }
    }

    fn send_peer(&mut self, from: usize, to: usize, msg: Message<Command>) {
        let reply = is_reply(&msg);
        if !reply {
            self.net.rpcs += 1;
            if self.count_bytes {
                self.net.bytes += postcard::to_allocvec(&msg).map_or(0, |b| b.len() as u64);
            }
        }
        if !self.net.link_up(from, to) {
            return;
        }
        for delay in self.net.fate(&mut self.rng, reply) {
            let delivery = Delivery::Peer {
                from: NodeId(from as u64),
                to: NodeId(to as u64),
                msg: msg.clone(),
            };
            self.net.push(self.now + delay, delivery);
        }
    }

    /// Election Safety and State Machine Safety, after every turn of server `i`.
    fn observe(&mut self, i: usize) {
        let Some(server) = self.nodes[i].replica.as_ref().map(|r| r.server()) else {
            return;
        };
        let mut problems = Vec::new();
        if server.role == Role::Leader {
            let term = server.current_term();
            match self.leaders.get(&term) {
                Some(&other) if other != i => problems.push(format!(
                    "Election Safety: term {term} has two leaders, servers {other} and {i}"
                )),
                Some(_) => {}
                None => {
                    self.leaders.insert(term, i);
                }
            }
        }
        let snapshot = server.snapshot();
        let (snap_index, last_applied) = (snapshot.last_included_index, server.last_applied);
        let new_snapshot = snap_index != self.nodes[i].seen_snapshot;
        if new_snapshot {
            match self.images.get(&snap_index) {
                Some((j, image)) if *image != snapshot.data => problems.push(format!(
                    "State Machine Safety: the snapshots at index {snap_index} of servers {i} \
                     and {j} differ"
                )),
                Some(_) => {}
                None => {
                    self.images.insert(snap_index, (i, snapshot.data.clone()));
                }
            }
        }
        self.nodes[i].seen_snapshot = snap_index;
        let mut newly = Vec::new();
        let mut seen = self.nodes[i].seen_applied;
        let records = match self.nodes[i].replica.as_mut() {
            Some(replica) => replica.take_applied(),
            None => return,
        };
        for record in records {
            match record {
                AppliedRecord::Entry(index, command) => {
                    if index != seen + 1 {
                        problems.push(format!(
                            "server {i} applied index {index} after index {seen}"
                        ));
                    }
                    seen = index;
                    newly.push((index, command));
                }
                AppliedRecord::Snapshot(index) => {
                    // The store holds every entry up to `index`: they are the committed ones
                    // (the images above are compared), recorded as applied here.
                    for (&k, (_, command)) in self.committed.range(seen + 1..=index) {
                        self.nodes[i].applied.insert(k, command.clone());
                    }
                    seen = index;
                }
            }
        }
        if seen != last_applied {
            problems.push(format!(
                "server {i} reports last_applied {last_applied}, its store applied up to {seen}"
            ));
        }
        self.nodes[i].seen_applied = seen;
        for (index, cmd) in newly {
            match self.committed.get(&index) {
                Some((j, other)) if *other != cmd => problems.push(format!(
                    "State Machine Safety: commit index={index} server={i} {cmd:?} != server={j} {other:?}"
                )),
                Some(_) => {}
                None => {
                    self.committed.insert(index, (i, cmd.clone()));
                }
            }
            self.nodes[i].applied.insert(index, cmd);
        }
        for p in problems {
            self.violate(p);
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        capture::on_sim_end(&self.history);
        use std::sync::atomic::{AtomicU64, Ordering};
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let Some(root) = std::env::var_os(TRACE_DIR_ENV) else {
            return;
        };
        if self.traces.is_empty() {
            return;
        }
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let dir = Path::new(&root).join(format!("run-{}-{n}", std::process::id()));
        if let Err(e) = self.write_traces(&dir) {
            eprintln!(
                "cannot write the simulator's traces to {}: {e}",
                dir.display()
            );
        }
    }
}
