//! The node as a sans-I/O state machine: the Raft [`Server`], the key-value state machine, the
//! clients waiting for their proposals, the election and heartbeat deadlines and the RNG that
//! draws election timeouts. It does no I/O of its own and reads no clock: the driver passes the
//! time in, hands it a batch of inputs, and carries out what comes back.
//!
//! Two drivers use it: the real event loop (`event_loop.rs`: `recv_timeout`, `Instant`, mpsc
//! channels, TCP peers, the [`crate::storage::Wal`]), and the deterministic simulator in
//! raft-tests (virtual time, an in-memory network and a fake disk). Both therefore run the very
//! same batching and durability logic.
//!
//! One call to [`Replica::turn`] is one batch, in the order of the durability contract
//! (impl/README.md):
//!
//! 1. every input, then every due timer, goes through [`Replica::step`]: one `Server::handle`
//!    and the staging of what its `Output::persist` names ([`Durable::stage`]);
//! 2. [`Durable::sync`] once for the batch;
//! 3. committed entries are applied to the key-value store, in log order;
//! 4. the batch's Raft messages and then the client replies are returned, and the driver must
//!    send them in that order (messages first, then replies).
//!
//! Nothing leaves the replica before step 2 returned `Ok`, with one exception: a batch in
//! which a leader only appended its own proposals (`Persist::write_behind`) skips step 2 and
//! returns at once, so that its AppendEntries travel and the followers write while the
//! leader's disk does (Ongaro's thesis §10.2.1); the replies it returns are for entries
//! already committed, which a majority holds durably without this batch. The driver then
//! calls [`Replica::flush`] (after sending): one sync, then `Event::Persisted`, which lets the
//! leader count its own copy, then apply and replies as in steps 3 and 4.
//!
//! Log compaction (§7, raft-core's compaction.rs): after a synced batch applied its entries, if
//! the [`SnapshotPolicy`] says a snapshot is due, the replica steps `Event::Compact` with the
//! store's image (traced and staged like any step) and syncs once more before it returns the
//! batch's effects, so a snapshot is durable before anything of the batch leaves. A snapshot
//! installed from the leader (`Output::restore`) replaces the store before the batch's
//! entries are applied, and a replica restarted from a snapshot starts from its image.

use crate::kv::{Command, ImageError, ImageSource, KvStore, Op, OpResult};
use crate::storage::Durable;
use crate::trace_log::TraceSink;
use crate::wire::{ClientReply, MemberRequest};
use raft_core::trace_record::TraceEvent;
use raft_core::{
    Address, Config, ConfigChange, CoreError, Entry, Event, Index, Membership, Message, NodeId,
    Output, Payload, ProposeResult, ReadResult, Role, Server, Snapshot, Term, TransferResult,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// Timing of one replica. The election timeout is drawn uniformly from
/// `election_timeout_min..=election_timeout_max` each time the timer restarts.
#[derive(Clone, Debug)]
pub struct ReplicaOptions {
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    pub heartbeat_interval: Duration,
    /// The addresses of the nodes of the cluster file (or of the members a joining node was
    /// told of): where a node is reached when the configuration carries no address for it
    /// ([`Replica::address`]). A membership change may add a node without an address only if
    /// it is listed here.
    pub addresses: BTreeMap<NodeId, Address>,
    /// The cluster's id (the WAL header's), told to a node that joins by address.
    pub cluster_id: u64,
    /// When to compact the log into a snapshot (§7).
    pub snapshot: SnapshotPolicy,
}

/// When a replica compacts its log (§7): once the entries applied since its snapshot reach
/// `entries` in number, or `bytes` in size (each entry counted by `Payload::payload_bytes`,
/// an upper bound on its encoding, plus its term), whichever comes first; and, once the
/// snapshot is larger than [`SnapshotPolicy::AMORTIZED_ABOVE`], not before those entries take
/// as many bytes as the snapshot itself. The snapshot covers everything applied; the entries
/// after it stay in the log. 0 turns a bound off; both 0: never compact.
///
/// The second rule keeps the cost of snapshots proportional to the writes: a store of 100 MB
/// rewritten every 10,000 entries of 100 bytes would write 100 times more to snapshots than to
/// the log (measured: with distinct keys, snapshots every 10,000 entries took a quarter of a
/// loaded cluster's throughput once the store passed a few MB). With it the log holds at most
/// about as much as the store, and a restart re-applies at most that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    pub entries: u64,
    pub bytes: u64,
}

impl SnapshotPolicy {
    /// The node's default entry bound: a restart re-applies at most this many entries, and a
    /// follower this far behind is sent the snapshot instead of the entries.
    pub const DEFAULT_ENTRIES: u64 = 10_000;
    /// The node's default byte bound, 64 MiB (four pipelining windows of entries).
    pub const DEFAULT_BYTES: u64 = 64 << 20;
    /// Never compact (the log grows with every entry).
    pub const NEVER: SnapshotPolicy = SnapshotPolicy {
        entries: 0,
        bytes: 0,
    };

    /// Snapshots up to this size (1 MiB, about a millisecond to write) are taken by the
    /// bounds alone; a larger one waits until the log since it is as large.
    pub const AMORTIZED_ABOVE: u64 = 1 << 20;

    /// Whether `entries` applied since the snapshot, of `bytes` in all, call for a new one,
    /// when the current snapshot takes `snapshot_bytes`.
    pub fn due(&self, entries: u64, bytes: u64, snapshot_bytes: u64) -> bool {
        entries > 0
            && ((self.entries > 0 && entries >= self.entries)
                || (self.bytes > 0 && bytes >= self.bytes))
            && (snapshot_bytes <= Self::AMORTIZED_ABOVE || bytes >= snapshot_bytes)
    }
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy {
            entries: Self::DEFAULT_ENTRIES,
            bytes: Self::DEFAULT_BYTES,
        }
    }
}

/// What the store applied, as a driver that asked for it ([`Replica::record_applied`]) sees it:
/// the simulator checks State Machine Safety from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppliedRecord {
    /// The committed entry at this index was applied.
    Entry(Index, Command),
    /// The store was replaced by the snapshot covering every entry up to this index (a
    /// snapshot installed from the leader, or the one a restarted replica starts from).
    Snapshot(Index),
}

/// One input of a batch. `T` says where a client's answer goes (an mpsc sender in the real
/// node, a client id in the simulator).
#[derive(Debug)]
pub enum ReplicaInput<T> {
    /// A Raft message from a peer.
    Peer { from: NodeId, msg: Message<Command> },
    /// A connection to a peer was (re)established: retransmit to it at once.
    PeerConnected(NodeId),
    /// A client's command, and where its answer goes.
    Client { command: Command, reply: T },
    /// An operator's request to hand the leadership to `to` (Ongaro's thesis §3.10), and where
    /// its answer goes: at once unless the transfer starts, then once it is over (see
    /// [`Replica`]'s `transfer`).
    TransferLeadership { to: NodeId, reply: T },
    /// An operator's question "which node leads?": the leader answers `Leader` with itself,
    /// any other server `NotLeader` with its hint (no Raft step).
    Leader { reply: T },
    /// An operator's membership request (raft-core's membership.rs): a change is proposed as
    /// a configuration entry and answered with the configuration once applied.
    Member { request: MemberRequest, reply: T },
    /// The snapshot a batch handed the driver ([`Effects::snapshot`], with
    /// [`Replica::defer_snapshot_writes`]) is durable in its file: the log is compacted now.
    SnapshotWritten(Snapshot),
}

/// What a batch asks the driver to do, after the batch was made durable: send `messages`,
/// then deliver `replies`.
#[derive(Debug)]
pub struct Effects<T> {
    pub messages: Vec<(NodeId, Message<Command>)>,
    pub replies: Vec<(T, ClientReply)>,
    /// With [`Replica::defer_snapshot_writes`]: a snapshot to encode and write durably to its
    /// file, off the driver's loop, then to hand back as [`ReplicaInput::SnapshotWritten`].
    pub snapshot: Option<SnapshotJob>,
}

/// A snapshot the replica took, not yet encoded: everything but the image's bytes, and the
/// store as it was ([`ImageSource`], an O(1) copy), so that the encoding (O(store)) runs
/// where the file is written, off the driver's loop.
#[derive(Clone, Debug)]
pub struct SnapshotJob {
    pub last_included_index: Index,
    pub last_included_term: Term,
    pub config: Option<(Index, Membership)>,
    pub image: ImageSource,
}

impl SnapshotJob {
    /// The snapshot, its image encoded now.
    pub fn encode(self) -> Snapshot {
        Snapshot {
            last_included_index: self.last_included_index,
            last_included_term: self.last_included_term,
            config: self.config,
            data: self.image.encode(),
        }
    }
}

impl<T> Default for Effects<T> {
    fn default() -> Self {
        Effects {
            messages: Vec::new(),
            replies: Vec::new(),
            snapshot: None,
        }
    }
}

/// Why a batch could not be completed; either way the node must stop.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError<E: std::error::Error + 'static> {
    /// Stable storage failed: the node can no longer promise durability.
    #[error(transparent)]
    Storage(E),
    /// The core reached a state the correct protocol never reaches (raft-core's `CoreError`):
    /// a corrupt disk, a broken or forged peer, or a bug. Carrying on could lose committed
    /// entries, so the node stops, naming the offending event.
    #[error("protocol invariant violated while handling {event}: {error}")]
    Core { event: String, error: CoreError },
    /// The snapshot's image does not restore (a corrupt disk or a broken peer): the store
    /// cannot be rebuilt, so the node stops.
    #[error("cannot restore the state machine from the snapshot at index {index}: {error}")]
    Restore { index: Index, error: ImageError },
}

/// A client waiting for its proposal at some index to be applied.
struct Pending<T> {
    term: Term,
    reply: T,
}

/// An operator waiting for the leadership transfer this leader started in `term`.
struct PendingTransfer<T> {
    to: NodeId,
    term: Term,
    reply: T,
}

/// What the core answered in one step.
#[derive(Default)]
struct Answers {
    propose: Option<ProposeResult>,
    transfer: Option<TransferResult>,
}

/// What one batch collects from its steps.
struct Batch<T> {
    effects: Effects<T>,
    apply: Vec<(Index, Entry<Command>)>,
    /// What the core said of reads in this batch, answered after `apply`.
    reads: Vec<ReadResult>,
    /// Some step proposed an entry or took a read: a heartbeat goes out at the end of the
    /// batch (it replicates the entries and confirms the reads' round, thesis §6.4).
    proposed: bool,
    /// Some step persisted what must be durable before the batch's messages leave
    /// (`Persist::must_precede_messages`).
    sync_first: bool,
    /// Some step installed a snapshot (`Output::restore`): the store is replaced by its image
    /// before `apply` (which then holds only entries after it).
    restore: bool,
}

impl<T> Batch<T> {
    fn new() -> Self {
        Batch {
            effects: Effects::default(),
            apply: Vec::new(),
            reads: Vec::new(),
            proposed: false,
            sync_first: false,
            restore: false,
        }
    }
}

/// One Raft node without I/O (see the module documentation).
pub struct Replica<D, T> {
    cfg: Config,
    server: Server<Command>,
    durable: D,
    kv: KvStore,
    pending: BTreeMap<Index, Pending<T>>,
    /// Clients waiting for a read (thesis §6.4: answered from the store, no log write), by the
    /// id the core knows the read by, with the key they read.
    reads: BTreeMap<u64, (T, String)>,
    /// The id of the next read.
    next_read_id: u64,
    /// The leadership transfer under way, started by this leader in its current term (the
    /// core's `transferee`), whose requester waits for its end: answered once this server no
    /// longer leads that term and knows who leads (`Leader`), or with `Error` if the core
    /// abandoned it (an election timeout came first) while this server still leads.
    transfer: Option<PendingTransfer<T>>,
    options: ReplicaOptions,
    rng: fastrand::Rng,
    election_deadline: Duration,
    heartbeat_deadline: Duration,
    /// Where trace records go (`None`: no tracing, one branch per step).
    trace: Option<Box<dyn TraceSink>>,
    /// Messages the core refused (absurd terms), for a rate-limited log line.
    refused: Refusals,
    /// Repeated, unmovable AppendEntries rejections, for a rate-limited diagnosis.
    rejections: super::diagnose::RejectionWatch,
    /// The last turn returned before syncing a leader's written-behind entries:
    /// [`Replica::flush`] is due.
    flush_due: bool,
    /// Bytes of the entries applied since the snapshot (for [`SnapshotPolicy::bytes`]).
    applied_bytes: u64,
    /// Snapshots this replica took ([`Replica::compactions`]) and installed from a leader.
    compactions: u64,
    installs: u64,
    /// With [`Replica::record_applied`]: what the store applied since the driver last looked.
    applied_records: Option<Vec<AppliedRecord>>,
    /// How the snapshots this replica takes reach their files.
    snapshot_writes: SnapshotWrites,
}

/// Who writes the file of a snapshot the replica takes (see [`Replica::defer_snapshot_writes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SnapshotWrites {
    /// The disk, in the `Event::Compact` step's [`Durable::stage`], before the batch returns.
    InTurn,
    /// The driver, off its loop; `Some(index)`: the snapshot at `index` is being written (one
    /// at a time).
    Driver(Option<Index>),
}

/// Counts refused messages and logs at most one line per [`REFUSAL_LOG_INTERVAL`].
#[derive(Default)]
struct Refusals {
    last_logged: Option<Duration>,
    suppressed: u64,
}

const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

impl<D: Durable<Command>, T> Replica<D, T> {
    /// A replica around a server restarted from its durable state (`Server::restart`), at time
    /// `now`; `seed` seeds the election-timeout RNG. A server restarted from a snapshot has
    /// applied it (`last_applied` is its index): the store starts from its image, an error if
    /// the image does not restore.
    pub fn new(
        cfg: Config,
        server: Server<Command>,
        durable: D,
        options: ReplicaOptions,
        seed: u64,
        now: Duration,
    ) -> Result<Self, ReplicaError<D::Error>> {
        let mut replica = Replica {
            cfg,
            server,
            durable,
            kv: KvStore::new(),
            pending: BTreeMap::new(),
            reads: BTreeMap::new(),
            next_read_id: 0,
            transfer: None,
            options,
            rng: fastrand::Rng::with_seed(seed),
            election_deadline: now,
            heartbeat_deadline: now,
            trace: None,
            refused: Refusals::default(),
            rejections: Default::default(),
            flush_due: false,
            applied_bytes: 0,
            compactions: 0,
            installs: 0,
            applied_records: None,
            snapshot_writes: SnapshotWrites::InTurn,
        };
        replica.reset_election_timer(now);
        if replica.server.snapshot_index() > 0 {
            replica.restore_store()?;
        }
        Ok(replica)
    }

    /// Keep a record of what the store applies, for [`Replica::take_applied`] (the simulator's
    /// State Machine Safety check; off in the node). The store's snapshot, if it started from
    /// one, is the first record.
    pub fn record_applied(&mut self) {
        let mut records = Vec::new();
        if self.server.snapshot_index() > 0
            && self.server.last_applied >= self.server.snapshot_index()
        {
            records.push(AppliedRecord::Snapshot(self.server.snapshot_index()));
        }
        self.applied_records = Some(records);
    }

    /// What the store applied since the last call (with [`Replica::record_applied`]).
    pub fn take_applied(&mut self) -> Vec<AppliedRecord> {
        self.applied_records
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// From now on the driver writes the snapshots this replica takes, so that its loop keeps
    /// serving while a snapshot file is written and fsynced (the real node:
    /// `snapshot_writer.rs`, which also gives the ordering argument). A batch after which a
    /// snapshot is due returns it in [`Effects::snapshot`] without compacting anything; the
    /// driver writes its file durably and hands it back as [`ReplicaInput::SnapshotWritten`],
    /// and only that input steps `Event::Compact` (the WAL then adopts the file,
    /// [`Durable::snapshot_written`], and deletes the segments it covers). One snapshot is in
    /// flight at a time: none is due while one is.
    pub fn defer_snapshot_writes(&mut self) {
        self.snapshot_writes = SnapshotWrites::Driver(None);
    }

    /// The index of the snapshot the driver is writing (with
    /// [`Replica::defer_snapshot_writes`]).
    pub fn snapshot_in_flight(&self) -> Option<Index> {
        match self.snapshot_writes {
            SnapshotWrites::Driver(in_flight) => in_flight,
            SnapshotWrites::InTurn => None,
        }
    }

    /// Snapshots this replica took (`Event::Compact` steps that compacted its log).
    pub fn compactions(&self) -> u64 {
        self.compactions
    }

    /// Snapshots this replica installed from a leader (`Output::restore`).
    pub fn installs(&self) -> u64 {
        self.installs
    }

    /// Replaces the store with the image of the server's snapshot.
    fn restore_store(&mut self) -> Result<(), ReplicaError<D::Error>> {
        let snapshot = self.server.snapshot();
        let index = snapshot.last_included_index;
        self.kv
            .restore(&snapshot.data)
            .map_err(|error| ReplicaError::Restore { index, error })?;
        self.applied_bytes = 0;
        if let Some(records) = &mut self.applied_records {
            records.push(AppliedRecord::Snapshot(index));
        }
        Ok(())
    }

    /// Trace every step from now on into `sink` (see [`crate::trace_log`]).
    pub fn set_trace(&mut self, sink: Box<dyn TraceSink>) {
        self.trace = Some(sink);
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The protocol state (read-only).
    pub fn server(&self) -> &Server<Command> {
        &self.server
    }

    /// The key-value state machine (read-only).
    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    pub fn durable(&self) -> &D {
        &self.durable
    }

    /// When the replica next wants a (possibly empty) turn: the heartbeat deadline of a
    /// leader (or its election deadline, its CheckQuorum, if that comes first), the election
    /// deadline of anyone else.
    pub fn next_deadline(&self) -> Duration {
        let role = self.server.role;
        match role {
            Role::Leader if self.cfg.election_timer_runs(role) => {
                self.heartbeat_deadline.min(self.election_deadline)
            }
            Role::Leader => self.heartbeat_deadline,
            _ => self.election_deadline,
        }
    }

    fn reset_election_timer(&mut self, now: Duration) {
        let min = self.options.election_timeout_min;
        let max = self.options.election_timeout_max.max(min);
        let spread = (max - min).as_millis() as u64;
        let jitter = Duration::from_millis(self.rng.u64(0..=spread));
        self.election_deadline = now + min + jitter;
    }

    /// One batch at time `now`: every input, then the due timers; one sync; then apply. Returns
    /// what to send and whom to answer, in that order. If the batch only wrote a leader's own
    /// entries behind, it returns before the sync and [`Replica::flush`] is due
    /// ([`Replica::flush_due`]): the driver sends, then calls it. An `Err` is a storage
    /// failure or a violated invariant: the node must stop.
    pub fn turn(
        &mut self,
        now: Duration,
        inputs: impl IntoIterator<Item = ReplicaInput<T>>,
    ) -> Result<Effects<T>, ReplicaError<D::Error>> {
        // A driver that did not flush gets the flush's effects first.
        let mut batch = Batch::new();
        if self.flush_due {
            batch.effects = self.flush(now)?;
        }
        for input in inputs {
            match input {
                ReplicaInput::Peer { from, msg } => self.receive(now, from, msg, &mut batch)?,
                ReplicaInput::PeerConnected(to) => {
                    self.step(now, Event::Resend { to }, &mut batch)?;
                }
                ReplicaInput::Client { command, reply } => match &command.op {
                    Op::Get { key } => {
                        let key = key.clone();
                        self.read(now, command, key, reply, &mut batch)?
                    }
                    _ => self.propose(now, command, reply, &mut batch)?,
                },
                ReplicaInput::TransferLeadership { to, reply } => {
                    self.transfer_leadership(now, to, reply, &mut batch)?
                }
                ReplicaInput::Member { request, reply } => {
                    self.member(now, request, reply, &mut batch)?
                }
                ReplicaInput::SnapshotWritten(snapshot) => {
                    self.snapshot_written(now, snapshot, &mut batch)?
                }
                ReplicaInput::Leader { reply } => {
                    let answer = if self.server.role == Role::Leader {
                        ClientReply::Leader {
                            id: self.cfg.id.0,
                            term: self.server.current_term(),
                        }
                    } else {
                        ClientReply::NotLeader {
                            leader_hint: self.leader_hint(),
                        }
                    };
                    batch.effects.replies.push((reply, answer));
                }
            }
        }
        self.fire_timers(now, &mut batch)?;
        if self.server.awaits_persisted() && !batch.sync_first {
            // Written behind: the messages leave (and committed entries are answered) while
            // the disk writes.
            self.flush_due = true;
            self.release(&mut batch)?;
            return Ok(batch.effects);
        }
        self.sync_and_release(now, batch)
    }

    /// Whether the last [`Replica::turn`] left a leader's written-behind entries unsynced.
    pub fn flush_due(&self) -> bool {
        self.flush_due
    }

    /// The second half of a turn that wrote a leader's entries behind (nothing when none is
    /// due): one sync, `Event::Persisted` (the leader counts its own copy toward commitment),
    /// then apply; returns the replies (and no message: `Persisted` sends none).
    pub fn flush(&mut self, now: Duration) -> Result<Effects<T>, ReplicaError<D::Error>> {
        if !std::mem::take(&mut self.flush_due) {
            return Ok(Effects::default());
        }
        self.sync_and_release(now, Batch::new())
    }

    /// Durable before anything that depends on it leaves this node: the leader's report that
    /// its log is durable is stepped (and traced) before the sync that makes it true, and
    /// nothing it leads to leaves before the sync returned.
    fn sync_and_release(
        &mut self,
        now: Duration,
        mut batch: Batch<T>,
    ) -> Result<Effects<T>, ReplicaError<D::Error>> {
        if self.server.awaits_persisted() {
            let event = Event::Persisted {
                term: self.server.last_log_term(),
                index: self.server.last_log_index(),
            };
            self.step(now, event, &mut batch)?;
        }
        self.durable.sync().map_err(ReplicaError::Storage)?;
        self.release(&mut batch)?;
        if self.compact_if_due(now, &mut batch)? {
            self.durable.sync().map_err(ReplicaError::Storage)?;
        }
        Ok(batch.effects)
    }

    /// After the store applied a synced batch: a snapshot of everything applied, if the policy
    /// says one is due (the caller syncs it before the batch's effects leave). Whether one
    /// was taken.
    fn compact_if_due(
        &mut self,
        now: Duration,
        batch: &mut Batch<T>,
    ) -> Result<bool, ReplicaError<D::Error>> {
        let index = self.server.last_applied;
        let since = index.saturating_sub(self.server.snapshot_index());
        let snapshot_bytes = self.server.snapshot().data.len() as u64;
        if !self
            .options
            .snapshot
            .due(since, self.applied_bytes, snapshot_bytes)
        {
            return Ok(false);
        }
        if let SnapshotWrites::Driver(in_flight) = self.snapshot_writes {
            if in_flight.is_none() {
                let job = self.snapshot_of_applied();
                self.snapshot_writes = SnapshotWrites::Driver(Some(index));
                // The image holds everything applied so far: the byte bound counts afresh.
                self.applied_bytes = 0;
                tracing::debug!(id = %self.cfg.id, index, "snapshot handed to the writer");
                batch.effects.snapshot = Some(job);
            }
            return Ok(false);
        }
        let data = self.kv.image();
        let bytes = data.len();
        self.step(now, Event::Compact { index, data }, batch)?;
        if self.server.snapshot_index() < index {
            return Ok(false);
        }
        self.applied_bytes = 0;
        self.compactions += 1;
        tracing::debug!(id = %self.cfg.id, index, bytes, entries = since, "log compacted into a snapshot");
        Ok(true)
    }

    /// The snapshot `Event::Compact` at `last_applied` would make, built without stepping the
    /// core (raft-core's compaction.rs computes the same from the same committed prefix, which
    /// no step can change: it is applied, hence committed); its image still to encode.
    fn snapshot_of_applied(&self) -> SnapshotJob {
        let s = &self.server;
        let index = s.last_applied;
        let Some(last_included_term) = s.term_at(index) else {
            // compact_if_due runs after apply: last_applied is in the log or is the snapshot.
            panic!(
                "applied index {index} is neither in the log nor the snapshot ({}..={})",
                s.snapshot_index(),
                s.last_log_index()
            );
        };
        let covered = index.saturating_sub(s.snapshot_index()) as usize;
        let in_log = s.log()[..covered.min(s.log().len())]
            .iter()
            .enumerate()
            .rev()
            .find_map(|(p, e)| {
                let m = e.command.configuration()?;
                Some((s.snapshot_index() + p as Index + 1, m))
            });
        SnapshotJob {
            last_included_index: index,
            last_included_term,
            config: in_log.or_else(|| s.snapshot().config.clone()),
            image: self.kv.image_source(),
        }
    }

    /// The driver wrote the snapshot it was handed: the core compacts its log up to it (or
    /// ignores it, when a snapshot installed since covers more), and the disk adopts the file
    /// in that step's `stage`, which is synced with the batch.
    fn snapshot_written(
        &mut self,
        now: Duration,
        snapshot: Snapshot,
        batch: &mut Batch<T>,
    ) -> Result<(), ReplicaError<D::Error>> {
        let index = snapshot.last_included_index;
        if self.snapshot_in_flight() != Some(index) {
            // Only the driver makes this input, and only for the snapshot it was handed.
            panic!(
                "the driver reports the snapshot at index {index} written, but the one in \
                 flight is {:?}",
                self.snapshot_in_flight()
            );
        }
        self.snapshot_writes = SnapshotWrites::Driver(None);
        let config = snapshot.config.clone();
        let term = snapshot.last_included_term;
        self.durable.snapshot_written(index);
        self.step(
            now,
            Event::Compact {
                index,
                data: snapshot.data,
            },
            batch,
        )?;
        let s = self.server.snapshot();
        if s.last_included_index == index {
            // The file holds what the core now holds (see snapshot_of_applied).
            assert_eq!(
                (s.last_included_term, &s.config),
                (term, &config),
                "the snapshot file at index {index} differs from the core's compaction"
            );
            self.compactions += 1;
            tracing::debug!(id = %self.cfg.id, index, "log compacted into the written snapshot");
        }
        Ok(())
    }

    /// Apply the batch's committed entries and answer the clients whose proposals were applied
    /// (the messages are already in `batch.effects`, returned first).
    fn release(&mut self, batch: &mut Batch<T>) -> Result<(), ReplicaError<D::Error>> {
        if std::mem::take(&mut batch.restore) {
            self.restore_store()?;
        }
        for (index, entry) in std::mem::take(&mut batch.apply) {
            let result = self.kv.apply(&entry.command);
            self.applied_bytes +=
                (entry.command.payload_bytes() + raft_core::ENTRY_OVERHEAD_BYTES) as u64;
            if let Some(records) = &mut self.applied_records {
                records.push(AppliedRecord::Entry(index, entry.command.clone()));
            }
            if let Some(pending) = self.pending.remove(&index) {
                let reply = if pending.term == entry.term {
                    match entry.command.configuration() {
                        Some(m) => self.members_reply(&m),
                        None => ClientReply::Ok(result),
                    }
                } else {
                    ClientReply::Error(format!(
                        "proposal at index {index} was replaced by an entry of term {}; retry",
                        entry.term
                    ))
                };
                batch.effects.replies.push((pending.reply, reply));
            }
        }
        // Reads, after the apply: a ready read sees every entry up to its read index.
        for read in std::mem::take(&mut batch.reads) {
            match read {
                ReadResult::Ready { id, .. } => {
                    if let Some((reply, key)) = self.reads.remove(&id) {
                        let value = self.kv.get(&key).cloned();
                        let answer = ClientReply::Ok(OpResult::Value(value));
                        batch.effects.replies.push((reply, answer));
                    }
                }
                ReadResult::NotLeader { id, leader_hint } => {
                    if let Some((reply, _)) = self.reads.remove(&id) {
                        let hint = leader_hint
                            .filter(|l| *l != self.cfg.id)
                            .and_then(|l| self.client_addr(l));
                        let answer = ClientReply::NotLeader { leader_hint: hint };
                        batch.effects.replies.push((reply, answer));
                    }
                }
                // Proposed instead: `read` moved the client to the pending proposals.
                ReadResult::ThroughLog { .. } => {}
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
                batch.effects.replies.push((pending.reply, reply));
            }
        }
        self.settle_transfer(batch);
        Ok(())
    }

    /// Answers the transfer under way once it is over: this server no longer leads the term
    /// it started it in and knows who leads now (normally the target, whose election deposed
    /// it); or it still leads that term but the core dropped the target (its election timeout
    /// abandoned the transfer). A deposed server that knows no leader yet keeps waiting (the
    /// new leader's first AppendEntries names it).
    fn settle_transfer(&mut self, batch: &mut Batch<T>) {
        let Some(transfer) = &self.transfer else {
            return;
        };
        let s = &self.server;
        let answer = if s.role == Role::Leader && s.current_term() == transfer.term {
            if s.leader.transferee == Some(transfer.to) {
                return;
            }
            ClientReply::Error(format!(
                "leadership transfer to node {} abandoned: not done within an election timeout \
                 (node {} still leads term {}); retry",
                transfer.to.0, self.cfg.id.0, transfer.term
            ))
        } else {
            match s.leader_id {
                Some(leader) => ClientReply::Leader {
                    id: leader.0,
                    term: s.current_term(),
                },
                None => return,
            }
        };
        if let Some(transfer) = self.transfer.take() {
            if matches!(answer, ClientReply::Leader { .. }) {
                tracing::info!(id = %self.cfg.id, to = %transfer.to, ?answer, "leadership transfer over");
            } else {
                tracing::info!(id = %self.cfg.id, to = %transfer.to, "leadership transfer abandoned");
            }
            batch.effects.replies.push((transfer.reply, answer));
        }
    }

    /// Every Raft step goes through here: feed one event to the server, stage what it must
    /// persist, follow its timer requests. With a trace sink, the step's record (the event,
    /// the server's state after the step, the messages it sent) goes to the sink right after
    /// `stage`, before the batch's `sync` in [`Replica::turn`]: a process killed before that
    /// sync leaves records of a batch that never became durable and never sent anything,
    /// which its next start cuts off (`trace_log::open_node_trace`).
    ///
    /// A message the core refuses (an absurd term) is dropped with a rate-limited warning and
    /// changes nothing; any other core error stops the node ([`ReplicaError::Core`]).
    fn step(
        &mut self,
        now: Duration,
        event: Event<Command>,
        batch: &mut Batch<T>,
    ) -> Result<Answers, ReplicaError<D::Error>> {
        let was_leader = self.server.role == Role::Leader;
        let traced = self.trace.is_some().then(|| TraceEvent::of(&event));
        let described = describe(&event);
        let out: Output<Command> = match self.server.handle(&self.cfg, event) {
            Ok(out) => out,
            Err(error) if !error.is_fatal() => {
                self.refused.note(now, &self.cfg, &error);
                return Ok(Answers::default());
            }
            Err(error) => {
                return Err(ReplicaError::Core {
                    event: described,
                    error,
                })
            }
        };
        self.durable
            .stage(&self.server.hard, &out.persist)
            .map_err(ReplicaError::Storage)?;
        batch.sync_first |= out.persist.must_precede_messages();
        if let (Some(event), Some(sink)) = (traced, self.trace.as_mut()) {
            sink.record(now, event, Some(&self.server), &out.messages);
        }
        let became_leader = !was_leader && self.server.role == Role::Leader;
        // A new leader whose election timer runs (CheckQuorum) starts it afresh: its first
        // check comes a full election timeout after it won, so its followers have time to
        // answer.
        if out.reset_election_timer || (became_leader && self.cfg.election_timer_runs(Role::Leader))
        {
            self.reset_election_timer(now);
        }
        if became_leader {
            tracing::info!(id = %self.cfg.id, term = self.server.current_term(), "became leader");
            self.heartbeat_deadline = now + self.options.heartbeat_interval;
        }
        batch.effects.messages.extend(out.messages);
        if out.restore {
            // The snapshot replaces the store: the entries this batch was to apply before it
            // are covered by it (they were committed, hence below its index).
            tracing::info!(
                id = %self.cfg.id,
                index = self.server.snapshot_index(),
                bytes = self.server.snapshot().data.len(),
                "installing the leader's snapshot"
            );
            batch.apply.clear();
            batch.restore = true;
            self.installs += 1;
        }
        batch.apply.extend(out.apply);
        batch.reads.extend(out.reads);
        Ok(Answers {
            propose: out.propose,
            transfer: out.transfer,
        })
    }

    /// A peer's message, and what the rejection watch learns from it (both sides).
    fn receive(
        &mut self,
        now: Duration,
        from: NodeId,
        msg: Message<Command>,
        batch: &mut Batch<T>,
    ) -> Result<(), ReplicaError<D::Error>> {
        let me = self.cfg.id;
        let leader_reply = match &msg {
            Message::AppendEntriesResponse(r)
                if self.server.role == Role::Leader && r.term == self.server.current_term() =>
            {
                let progress = self.server.leader.progress.get(&from);
                let next = progress.map(|g| g.next_index);
                let matched = progress.map_or(0, |g| g.match_index);
                Some((r.success, r.match_index, next, matched))
            }
            _ => None,
        };
        let request = match &msg {
            Message::AppendEntries(ae) => Some(ae.prev_log_index),
            _ => None,
        };
        let sent_before = batch.effects.messages.len();
        self.step(now, Event::Receive { from, msg }, batch)?;
        if let Some((success, reply_index, next, matched)) = leader_reply {
            let moved = self.server.leader.progress.get(&from).map(|g| g.next_index) != next;
            self.rejections
                .leader_got(now, me, from, success, moved, matched, reply_index);
        }
        if let Some(prev_log_index) = request {
            let answer = batch.effects.messages[sent_before..]
                .iter()
                .rev()
                .find_map(|(to, m)| match m {
                    Message::AppendEntriesResponse(r) if *to == from => Some(*r),
                    _ => None,
                });
            if let Some(r) = answer {
                let last = self.server.last_log_index();
                self.rejections.follower_answered(
                    now,
                    me,
                    from,
                    r.term,
                    prev_log_index,
                    r.success,
                    last,
                );
            }
        }
        Ok(())
    }

    /// A client's read (thesis §6.4): the leader answers it from the store once a majority has
    /// confirmed its leadership, without writing the log; until the leader has committed an
    /// entry of its term, the core proposes the read instead and it is answered as a proposal.
    fn read(
        &mut self,
        now: Duration,
        command: Command,
        key: String,
        reply: T,
        batch: &mut Batch<T>,
    ) -> Result<(), ReplicaError<D::Error>> {
        let id = self.next_read_id;
        self.next_read_id = id.wrapping_add(1);
        self.reads.insert(id, (reply, key));
        let event = Event::ReadIndex { id, command };
        let proposed = self.step(now, event, batch)?.propose;
        if self.server.role == Role::Leader {
            batch.proposed = true;
        }
        if proposed.is_some() {
            if let Some((reply, _)) = self.reads.remove(&id) {
                self.await_proposal(proposed, reply, batch);
            }
        }
        Ok(())
    }

    fn propose(
        &mut self,
        now: Duration,
        command: Command,
        reply: T,
        batch: &mut Batch<T>,
    ) -> Result<(), ReplicaError<D::Error>> {
        let proposed = self.step(now, Event::Propose(command), batch)?.propose;
        self.await_proposal(proposed, reply, batch);
        Ok(())
    }

    /// An operator's membership request: the leader builds the configuration entry from its
    /// own configuration (raft-core checks the change again when it is proposed) and answers
    /// once the entry is applied; `List` is answered at once.
    fn member(
        &mut self,
        now: Duration,
        request: MemberRequest,
        reply: T,
        batch: &mut Batch<T>,
    ) -> Result<(), ReplicaError<D::Error>> {
        if self.server.role != Role::Leader {
            let answer = ClientReply::NotLeader {
                leader_hint: self.leader_hint(),
            };
            batch.effects.replies.push((reply, answer));
            return Ok(());
        }
        let (change, address) = match request {
            MemberRequest::List => {
                let answer = self.members_reply(self.server.membership(&self.cfg));
                batch.effects.replies.push((reply, answer));
                return Ok(());
            }
            MemberRequest::AddLearner { id, address } => {
                (ConfigChange::AddLearner(NodeId(id)), address)
            }
            MemberRequest::Readdress { id, address } => {
                (ConfigChange::Readdress(NodeId(id)), Some(address))
            }
            MemberRequest::Promote { id } => (ConfigChange::Promote(NodeId(id)), None),
            MemberRequest::Remove { id } => (ConfigChange::Remove(NodeId(id)), None),
        };
        let refusal = match (change, &address) {
            (_, Some(a)) => check_address(a).err(),
            (ConfigChange::AddLearner(id), None) if self.address(id).is_none() => Some(format!(
                "node {} has no address: give its peer and client addresses, or list it \
                     in every member's cluster file",
                id.0
            )),
            _ => None,
        };
        if let Some(msg) = refusal {
            batch
                .effects
                .replies
                .push((reply, ClientReply::Refused(msg)));
            return Ok(());
        }
        let next =
            self.server
                .configuration_after(&self.cfg, change)
                .map(|m| match (change, address) {
                    (ConfigChange::AddLearner(id) | ConfigChange::Readdress(id), Some(a)) => {
                        m.with_address(id, a)
                    }
                    _ => m,
                });
        match next {
            Ok(m) => {
                tracing::info!(id = %self.cfg.id, %change, "membership change proposed");
                self.propose(now, Command::reconfigure(&m), reply, batch)
            }
            Err(why) => {
                let msg = format!("membership change refused: {why}");
                batch
                    .effects
                    .replies
                    .push((reply, ClientReply::Refused(msg)));
                Ok(())
            }
        }
    }

    /// An operator's leadership transfer (thesis §3.10, raft-core's transfer.rs): the core
    /// answers at once; a transfer it starts is answered when it is over
    /// ([`Replica::settle_transfer`], at the end of each batch).
    fn transfer_leadership(
        &mut self,
        now: Duration,
        to: NodeId,
        reply: T,
        batch: &mut Batch<T>,
    ) -> Result<(), ReplicaError<D::Error>> {
        let event = Event::TransferLeadership { to };
        let answer = match self.step(now, event, batch)?.transfer {
            Some(TransferResult::Started) => {
                tracing::info!(id = %self.cfg.id, %to, "leadership transfer started");
                let started = PendingTransfer {
                    to,
                    term: self.server.current_term(),
                    reply,
                };
                if let Some(old) = self.transfer.replace(started) {
                    let msg = format!(
                        "a newer leadership transfer request (to node {}) replaced this one",
                        to.0
                    );
                    batch
                        .effects
                        .replies
                        .push((old.reply, ClientReply::Error(msg)));
                }
                return Ok(());
            }
            Some(TransferResult::AlreadyLeader) => ClientReply::Leader {
                id: self.cfg.id.0,
                term: self.server.current_term(),
            },
            Some(TransferResult::NotAPeer) => {
                ClientReply::Refused(format!("node {} is not a member of this cluster", to.0))
            }
            Some(TransferResult::NotLeader { leader_hint }) => ClientReply::NotLeader {
                leader_hint: leader_hint
                    .filter(|l| *l != self.cfg.id)
                    .and_then(|l| self.client_addr(l)),
            },
            None => ClientReply::Error("the server gave no answer to a leadership transfer".into()),
        };
        batch.effects.replies.push((reply, answer));
        Ok(())
    }

    /// The client of a proposal waits for its entry to be applied, or is told where to go.
    fn await_proposal(&mut self, proposed: Option<ProposeResult>, reply: T, batch: &mut Batch<T>) {
        match proposed {
            Some(ProposeResult::Accepted { index, term }) => {
                batch.proposed = true;
                if let Some(old) = self.pending.insert(index, Pending { term, reply }) {
                    // An older proposal at this index was truncated away.
                    let msg = format!("proposal at index {index} was overwritten; retry");
                    batch
                        .effects
                        .replies
                        .push((old.reply, ClientReply::Error(msg)));
                }
            }
            Some(ProposeResult::NotLeader { leader_hint }) => {
                let hint = leader_hint.and_then(|l| self.client_addr(l));
                batch
                    .effects
                    .replies
                    .push((reply, ClientReply::NotLeader { leader_hint: hint }));
            }
            Some(ProposeResult::ConfigRefused(why)) => {
                let refusal = ClientReply::Refused(format!("membership change refused: {why}"));
                batch.effects.replies.push((reply, refusal));
            }
            None => {
                let msg = "the server gave no answer to a proposal".to_string();
                batch.effects.replies.push((reply, ClientReply::Error(msg)));
            }
        }
    }

    /// Where node `id` is reached: its address in the configuration, else the cluster
    /// file's (membership.rs rule 5: the configuration's is the newer).
    pub fn address(&self, id: NodeId) -> Option<&Address> {
        let m = self.server.membership(&self.cfg);
        m.address(id).or_else(|| self.options.addresses.get(&id))
    }

    /// Every node this replica knows an address for: the cluster file's nodes and the
    /// configuration's members, at the configuration's address where it has one.
    pub fn address_book(&self) -> BTreeMap<NodeId, Address> {
        let mut book = self.options.addresses.clone();
        let m = self.server.membership(&self.cfg);
        book.extend(m.addresses.iter().map(|(id, a)| (*id, a.clone())));
        book
    }

    /// The answer to a membership request: configuration `m`'s voters and learners, and
    /// where each is reached (its address in `m`, else the cluster file's).
    fn members_reply(&self, m: &Membership) -> ClientReply {
        let address = |id: NodeId| m.address(id).or_else(|| self.options.addresses.get(&id));
        ClientReply::Members {
            cluster_id: self.options.cluster_id,
            voters: m.voters.iter().map(|id| id.0).collect(),
            learners: m.learners.iter().map(|id| id.0).collect(),
            addresses: m
                .members()
                .filter_map(|id| Some((id.0, address(id)?.clone())))
                .collect(),
        }
    }

    /// Where clients reach node `id`.
    fn client_addr(&self, id: NodeId) -> Option<String> {
        self.address(id).map(|a| a.client.clone())
    }

    /// The client address of the leader this server knows of, other than itself.
    pub fn leader_hint(&self) -> Option<String> {
        self.server
            .leader_id
            .filter(|id| *id != self.cfg.id)
            .and_then(|l| self.client_addr(l))
    }

    /// Election timeout: followers, candidates and pre-candidates start a (pre-)election; with
    /// [`Config::check_quorum`] a leader's election timer runs too, and its timeout is the
    /// CheckQuorum tick (the leader steps down, same term, unless a majority answered it since
    /// the previous one); either way the timer then restarts. Then heartbeat (leaders, also
    /// right after new proposals so that they replicate at once).
    fn fire_timers(
        &mut self,
        now: Duration,
        batch: &mut Batch<T>,
    ) -> Result<(), ReplicaError<D::Error>> {
        let timer_runs = self.cfg.election_timer_runs(self.server.role);
        if timer_runs && now >= self.election_deadline {
            let leader = self.server.role == Role::Leader;
            tracing::debug!(id = %self.cfg.id, term = self.server.current_term(), leader, "election timeout");
            self.step(now, Event::ElectionTimeout, batch)?;
            if leader && self.server.role != Role::Leader {
                tracing::info!(
                    id = %self.cfg.id,
                    term = self.server.current_term(),
                    "stepped down: no majority answered for an election timeout (CheckQuorum)"
                );
            }
            self.reset_election_timer(now);
        }
        if self.server.role == Role::Leader && (batch.proposed || now >= self.heartbeat_deadline) {
            self.step(now, Event::Heartbeat, batch)?;
            self.heartbeat_deadline = now + self.options.heartbeat_interval;
        }
        Ok(())
    }
}

/// The event in one line, for the error that stops the node (commands are not shown).
fn describe(event: &Event<Command>) -> String {
    match event {
        Event::Receive { from, msg } => format!("{} from {from}", msg.summary()),
        Event::ElectionTimeout => "an election timeout".into(),
        Event::Heartbeat => "a heartbeat".into(),
        Event::Resend { to } => format!("a resend to {to}"),
        Event::Propose(c) => format!("a proposal of client {} seq {}", c.client_id, c.seq),
        Event::Persisted { term, index } => format!("the disk's report of {index}/t{term}"),
        Event::TransferLeadership { to } => format!("a leadership transfer to {to}"),
        Event::Compact { index, data } => {
            format!("a compaction up to {index} ({} bytes)", data.len())
        }
        Event::ReadIndex { id, command } => {
            format!(
                "read {id} of client {} seq {}",
                command.client_id, command.seq
            )
        }
    }
}

impl Refusals {
    fn note(&mut self, now: Duration, cfg: &Config, error: &CoreError) {
        let due = self
            .last_logged
            .is_none_or(|t| now.saturating_sub(t) >= REFUSAL_LOG_INTERVAL);
        if due {
            tracing::warn!(
                id = %cfg.id,
                suppressed = self.suppressed,
                "{error}; dropped (a forged or corrupt frame: no correct peer sends it)"
            );
            self.last_logged = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
    }
}

#[cfg(test)]
#[path = "replica_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "replica_snapshot_tests.rs"]
mod snapshot_tests;

/// An address a configuration may carry: both parts an IP address and port, as the node
/// dials them (no name is resolved on the event loop).
pub fn check_address(a: &Address) -> Result<(), String> {
    for (what, text) in [("peer", &a.peer), ("client", &a.client)] {
        if text.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "{what} address {text:?} is not an IP address and port (like 10.0.0.4:7000)"
            ));
        }
    }
    Ok(())
}
