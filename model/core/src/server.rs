//! A Raft server's state, the events that drive it, and the rules every server follows
//! regardless of role (Figure 2, "Rules for Servers / All Servers").

use super::error::CoreError;
use super::message::Message;
use super::progress::LeaderState;
use super::rules::{Protocol, Rules};
use super::types::{
    ConfigRefusal, Entry, HardState, Index, Membership, NodeId, Payload, PendingRead, ReadResult,
    Role, Snapshot, Term, TransferResult, MAX_TERM, MAX_TERM_JUMP,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Static configuration of one server: who it is, who its peers are, and the rules it follows
/// (`R`: [`Protocol`], the correct rules, unless the model checker supplies broken ones).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config<R = Protocol> {
    /// This server.
    pub id: NodeId,
    /// The configuration the cluster started with (membership.rs): a server's configuration
    /// is this one changed by the configuration entries in its log. Empty for a server that
    /// joins a running cluster ([`Config::joining`]): it neither campaigns nor votes until a
    /// leader's log makes it a member.
    pub initial: Membership,
    /// Most entries one AppendEntries carries (the rest follow once these are acknowledged).
    pub max_entries_per_append: usize,
    /// Most bytes of entries one AppendEntries carries (etcd's MaxSizePerMsg), by
    /// [`Payload::payload_bytes`] plus [`crate::ENTRY_OVERHEAD_BYTES`] per entry; one entry is
    /// always sent, however large, so a follower can always catch up.
    pub max_bytes_per_append: usize,
    /// A rejecting follower hints the index before its first entry of the conflicting term
    /// (the §5.3 optimization: one rejected AppendEntries per term, not per entry) instead of
    /// its last log index. Only `next_index` moves on this hint. Off by default (the model's
    /// bounds are checked without it); the runnable node turns it on.
    pub fast_backup: bool,
    /// Pipelining AppendEntries (see [`Window`]); `None`: a leader moves next_index only on an
    /// acknowledgement, so every AppendEntries carries all the entries not yet acknowledged
    /// (the model's default bounds are checked this way).
    pub pipeline: Option<Window>,
    /// Thesis §9.6, PreVote: an election timeout starts a pre-vote round at the current term
    /// (role [`Role::PreCandidate`]); only a majority of grants starts the election, so a
    /// server that cannot win raises no term (lease.rs). Off by default (the model's default
    /// bounds); the runnable node turns it on.
    pub pre_vote: bool,
    /// Thesis §9.6, CheckQuorum: a leader's election timeout checks that a majority, itself
    /// included, answered it since the last one, and otherwise it steps down; and a server
    /// that knows a leader of its term (its lease, lease.rs) ignores requests for votes. Off
    /// by default (the model's default bounds); the runnable node turns it on.
    pub check_quorum: bool,
    /// The first term this server refuses to adopt ([`MAX_TERM`] in a node; the model sets a
    /// small one to check the rule): a message with this term or a higher one is refused.
    pub max_term: Term,
    /// The most terms one message may move this server's term forward ([`MAX_TERM_JUMP`] in
    /// a node): a message further ahead is refused.
    pub max_term_jump: Term,
    /// The protocol's decision points (see [`Rules`]).
    pub rules: R,
}

/// The flow control of a pipelining leader (etcd's MaxInflightMsgs and MaxInflightBytes,
/// counted in entries rather than messages). The leader moves a follower's next_index past
/// the entries it sends at once (etcd's StateReplicate), so each entry goes out once and
/// several AppendEntries travel to one follower at the same time, while the entries sent and
/// not acknowledged, those from `match_index + 1` to `next_index - 1`, number fewer than
/// `entries` and take fewer than `bytes` bytes. The window is derived from next_index and
/// match_index, so it adds no state. A lost AppendEntries shows when the next one (or the
/// heartbeat, an empty AppendEntries at the optimistic next_index) is rejected: next_index
/// moves back and the leader sends again from there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    /// Most entries unacknowledged per follower (at least 1).
    pub entries: usize,
    /// Most bytes of entries unacknowledged per follower, by [`Payload::payload_bytes`] plus
    /// [`crate::ENTRY_OVERHEAD_BYTES`] each; the first entry is always sent, however large.
    pub bytes: usize,
}

impl Config<Protocol> {
    /// The correct protocol for server `id` in a cluster that starts with `id` and `peers` as
    /// its voters.
    pub fn new(id: NodeId, peers: impl IntoIterator<Item = NodeId>) -> Self {
        let voters = peers.into_iter().chain([id]);
        Self::with_initial(id, Membership::voters(voters))
    }

    /// The correct protocol for server `id`, new to a running cluster: it waits for a leader
    /// to add it (membership.rs).
    pub fn joining(id: NodeId) -> Self {
        Self::with_initial(id, Membership::default())
    }

    /// The correct protocol for server `id` in a cluster that starts as `initial`.
    pub fn with_initial(id: NodeId, initial: Membership) -> Self {
        Config {
            id,
            initial,
            max_entries_per_append: usize::MAX,
            max_bytes_per_append: usize::MAX,
            fast_backup: false,
            pipeline: None,
            pre_vote: false,
            check_quorum: false,
            max_term: MAX_TERM,
            max_term_jump: MAX_TERM_JUMP,
            rules: Protocol,
        }
    }
}

impl<R: Rules> Config<R> {
    /// The same configuration sending at most `n` (at least 1) entries per AppendEntries.
    pub fn with_max_entries_per_append(mut self, n: usize) -> Self {
        self.max_entries_per_append = n.max(1);
        self
    }

    /// The same configuration sending at most `n` bytes of entries per AppendEntries (and
    /// always at least one entry).
    pub fn with_max_bytes_per_append(mut self, n: usize) -> Self {
        self.max_bytes_per_append = n;
        self
    }

    /// The same configuration with or without [`Config::fast_backup`].
    pub fn with_fast_backup(mut self, on: bool) -> Self {
        self.fast_backup = on;
        self
    }

    /// The same configuration with or without pipelining ([`Config::pipeline`]); a window of
    /// 0 entries is 1.
    pub fn with_pipeline(mut self, window: Option<Window>) -> Self {
        self.pipeline = window.map(|w| Window {
            entries: w.entries.max(1),
            bytes: w.bytes,
        });
        self
    }

    /// The same configuration with or without [`Config::pre_vote`].
    pub fn with_pre_vote(mut self, on: bool) -> Self {
        self.pre_vote = on;
        self
    }

    /// The same configuration refusing terms from `max_term` on ([`Config::max_term`]).
    pub fn with_max_term(mut self, max_term: Term) -> Self {
        self.max_term = max_term;
        self
    }

    /// The same configuration with or without [`Config::check_quorum`].
    pub fn with_check_quorum(mut self, on: bool) -> Self {
        self.check_quorum = on;
        self
    }

    /// The same configuration following other rules (the model checker's mutants).
    pub fn with_rules<S: Rules>(self, rules: S) -> Config<S> {
        Config {
            id: self.id,
            initial: self.initial,
            max_entries_per_append: self.max_entries_per_append,
            max_bytes_per_append: self.max_bytes_per_append,
            fast_backup: self.fast_backup,
            pipeline: self.pipeline,
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            max_term: self.max_term,
            max_term_jump: self.max_term_jump,
            rules,
        }
    }
}

/// Something that happens to a server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event<C> {
    /// The election timer fired. Followers and candidates start an election (with
    /// [`Config::pre_vote`], a pre-vote round first); a leader with [`Config::check_quorum`]
    /// checks that a majority answered it since its last election timeout (the driver keeps
    /// a leader's election timer running for this: [`Config::election_timer_runs`]); other
    /// leaders: nothing.
    ElectionTimeout,
    /// Leader: send AppendEntries to every peer now (the heartbeat timer fired, or new entries
    /// wait to be replicated). Others: nothing.
    Heartbeat,
    /// Send this role's request to one peer again: a candidate its RequestVote (unless that peer
    /// already granted its vote), a leader its AppendEntries from next_index. Followers: nothing.
    /// Drivers use it to retransmit to one peer without waiting for the next broadcast.
    Resend { to: NodeId },
    /// A Raft message arrived from `from`.
    Receive { from: NodeId, msg: Message<C> },
    /// A client asks to append `command` to the log.
    Propose(C),
    /// The driver made this server's log durable up to `index`, whose entry has term `term`
    /// (the answer to a step whose [`Persist::write_behind`] was set). A leader counts its own
    /// log toward commitment only up to there (Ongaro's thesis §10.2.1); others: nothing.
    Persisted { term: Term, index: Index },
    /// A client asks for a linearizable read, tagged `id` by the driver (thesis §6.4: see
    /// read.rs); the answer comes in [`Output::reads`], at once or in a later step.
    /// `command` is the read as a log command: a leader that knows no read index yet proposes
    /// it instead ([`ReadResult::ThroughLog`]).
    ReadIndex { id: u64, command: C },
    /// An operator asks the leader to hand its leadership to `to` (thesis §3.10, transfer.rs);
    /// the answer comes in [`Output::transfer`].
    TransferLeadership { to: NodeId },
    /// The driver's state machine, having applied the log up to `index`, made the image
    /// `data` of itself: the log up to `index` becomes a snapshot (§7, compaction.rs).
    Compact { index: Index, data: Vec<u8> },
}

/// Which parts of the hard state a step changed. The driver must make them durable before it
/// sends any of the step's messages or tells a client anything, with one exception:
/// [`Persist::write_behind`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Persist {
    /// `current_term` or `voted_for` changed.
    pub term_or_vote: bool,
    /// Entries after this index were removed from the log (conflict truncation).
    pub truncated_after: Option<Index>,
    /// Entries from this index to the end of the log are new and must be written.
    pub appended_from: Option<Index>,
    /// The appended entries are a leader's own new ones (its [`Event::Propose`]). The leader
    /// sends them to its followers while its disk writes them (Ongaro's thesis §10.2.1), so
    /// they need not be durable before this or a later step's messages leave: the driver
    /// writes them in log order with everything else and reports their durability with
    /// [`Event::Persisted`], and only then does the leader count its own copy toward
    /// commitment. Everything else a step persists (term, vote, a follower's entries, a
    /// truncation) is durable before the step's messages leave.
    #[serde(default)]
    pub write_behind: bool,
    /// The snapshot is new (compacted, or installed from the leader): write it durably; the
    /// log entries it covers need not be kept any longer. When the step also sets
    /// `truncated_after` (the snapshot's index), the log after the snapshot was discarded.
    #[serde(default)]
    pub snapshot: bool,
}

impl Persist {
    pub fn is_empty(&self) -> bool {
        !self.term_or_vote
            && self.truncated_after.is_none()
            && self.appended_from.is_none()
            && !self.snapshot
    }

    /// Whether what this step persists must be durable before its messages are sent (all of
    /// it but a leader's own new entries, [`Persist::write_behind`]).
    pub fn must_precede_messages(&self) -> bool {
        self.term_or_vote
            || self.snapshot
            || self.truncated_after.is_some()
            || (self.appended_from.is_some() && !self.write_behind)
    }
}

/// What a client's proposal came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProposeResult {
    /// Appended at `index` in `term`; it is committed once applied at that index.
    Accepted { index: Index, term: Term },
    /// This server is not the leader; `leader_hint` is the leader it last heard from.
    NotLeader { leader_hint: Option<NodeId> },
    /// A configuration change (a command whose [`Payload::configuration`] is set) that the
    /// leader refused; nothing was appended (membership.rs).
    ConfigRefused(ConfigRefusal),
}

/// What one step asks the driver to do, in this order (the crate's documentation): persist
/// (a leader's own new entries may be written behind), send, restore and apply, answer reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output<C> {
    pub persist: Persist,
    pub messages: Vec<(NodeId, Message<C>)>,
    /// The server installed a leader's snapshot (§7): replace the state machine with its
    /// image ([`Server::snapshot`]), before applying `apply`.
    pub restore: bool,
    /// Newly committed entries, in index order, to apply to the state machine.
    pub apply: Vec<(Index, Entry<C>)>,
    /// The server heard from a current leader or granted a vote: restart the election timer.
    pub reset_election_timer: bool,
    /// The answer to an [`Event::Propose`].
    pub propose: Option<ProposeResult>,
    /// Reads answered in this step ([`Event::ReadIndex`], now or earlier), in arrival order.
    /// The driver serves a ready read after applying [`Output::apply`].
    pub reads: Vec<ReadResult>,
    /// The answer to an [`Event::TransferLeadership`].
    pub transfer: Option<TransferResult>,
}

impl<C> Default for Output<C> {
    fn default() -> Self {
        Output {
            persist: Persist::default(),
            messages: Vec::new(),
            restore: false,
            apply: Vec::new(),
            reset_election_timer: false,
            propose: None,
            reads: Vec::new(),
            transfer: None,
        }
    }
}

impl<C> Output<C> {
    pub(crate) fn send(&mut self, to: NodeId, msg: impl Into<Message<C>>) {
        self.messages.push((to, msg.into()));
    }
}

/// One Raft server (Figure 2, "State").
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Server<C> {
    /// current_term, voted_for and the log: durable before anything depending on them is sent.
    pub hard: HardState<C>,
    pub role: Role,
    /// Highest index known to be committed. Invariant: `commit_index <= last_log_index()`;
    /// never decreases while the server is up; the snapshot's index after a restart, and at
    /// least the snapshot's index always (a snapshot holds only committed state, §7).
    pub commit_index: Index,
    /// Highest index applied to the state machine (the snapshot's image counts as applied).
    /// Invariant: `snapshot_index() <= last_applied <= commit_index`.
    pub last_applied: Index,
    /// The leader this server last heard from in `current_term` (a hint for clients).
    pub leader_id: Option<NodeId>,
    /// Candidate only: servers that granted their vote in `current_term` (self included).
    pub votes_granted: BTreeSet<NodeId>,
    /// Leader only: its peers' progress, its own durable index, its read round and the target
    /// of a leadership transfer (progress.rs). [`LeaderState::default`] in any other role.
    pub leader: LeaderState,
    /// Leader only: the reads not yet answered, in arrival order (their rounds and indices
    /// never decrease along it). Invariant: every index is at most `commit_index`. Empty in
    /// any other role (a leader that steps down answers them `NotLeader`).
    pub pending_reads: Vec<PendingRead>,
    /// Candidate only: it campaigns on a leader's TimeoutNow (transfer.rs), so its
    /// RequestVote passes the voters' leases. `false` in any other role.
    pub transfer_campaign: bool,
    /// The configuration the log ends in (membership.rs): the index of the log's latest
    /// configuration entry and the configuration it leads to; `None` while the log holds no
    /// configuration entry ([`Config::initial`] applies). Derived from the log, never
    /// persisted: kept up to date on every append and truncation, rebuilt on restart.
    pub log_membership: Option<(Index, Membership)>,
}

impl<C: Clone> Server<C> {
    /// A server that has never run: term 0, no vote, empty log, follower.
    pub fn new() -> Self {
        Server {
            hard: HardState::default(),
            role: Role::Follower,
            commit_index: 0,
            last_applied: 0,
            leader_id: None,
            votes_granted: BTreeSet::new(),
            leader: LeaderState::default(),
            pending_reads: Vec::new(),
            transfer_campaign: false,
            log_membership: None,
        }
    }

    /// A server restarting from what it had made durable. Volatile state starts afresh: a
    /// follower whose commit_index and last_applied are its snapshot's index (§7: the driver
    /// restores its state machine from the snapshot); later committed entries are re-applied
    /// once a leader tells it the commit index.
    pub fn restart<R: Rules>(cfg: &Config<R>, hard: HardState<C>) -> Self
    where
        C: Payload,
    {
        let mut server = Server {
            hard: cfg.rules.recover(hard),
            ..Server::new()
        };
        let snapshot_index = server.snapshot_index();
        server.commit_index = snapshot_index;
        server.last_applied = cfg.rules.applied_after_restart(snapshot_index);
        if cfg.rules.restart_restores_configuration() {
            server.rebuild_config();
        }
        server
    }

    pub fn current_term(&self) -> Term {
        self.hard.current_term
    }

    pub fn voted_for(&self) -> Option<NodeId> {
        self.hard.voted_for
    }

    /// The entries after the snapshot: `log()[0]` has index `snapshot_index() + 1`.
    pub fn log(&self) -> &[Entry<C>] {
        &self.hard.log
    }

    /// The compacted prefix (§7).
    pub fn snapshot(&self) -> &Snapshot {
        &self.hard.snapshot
    }

    /// The index of the last entry the snapshot replaces (0: no snapshot).
    pub fn snapshot_index(&self) -> Index {
        self.hard.snapshot.last_included_index
    }

    pub fn last_log_index(&self) -> Index {
        self.snapshot_index()
            .saturating_add(self.hard.log.len() as Index)
    }

    pub fn last_log_term(&self) -> Term {
        self.hard
            .log
            .last()
            .map_or(self.hard.snapshot.last_included_term, |e| e.term)
    }

    /// Term of the entry at `index`: the snapshot's last included term at its index (0 for
    /// index 0 without a snapshot); `None` inside the snapshot (compacted) and past the end of
    /// the log.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot_index() {
            Some(self.hard.snapshot.last_included_term)
        } else {
            self.entry(index).map(|e| e.term)
        }
    }

    /// The entry at `index` (1-based); `None` inside the snapshot and past the end of the log.
    pub fn entry(&self, index: Index) -> Option<&Entry<C>> {
        self.hard.log.get(self.log_position(index)?)
    }

    /// The entries from `index` (1-based) to the end of the log, those the log still holds
    /// (from the snapshot's index + 1 on); empty past the end.
    pub fn entries_from(&self, index: Index) -> &[Entry<C>] {
        let p = self.log_position(index).unwrap_or(0);
        self.hard.log.get(p..).unwrap_or(&[])
    }

    /// Where the entry at `index` sits in the log vector; `None` for the snapshot's index and
    /// below (compacted) or an index no vector can reach. The one place index and position
    /// meet.
    pub(crate) fn log_position(&self, index: Index) -> Option<usize> {
        let offset = self.snapshot_index().checked_add(1)?;
        usize::try_from(index.checked_sub(offset)?).ok()
    }

    /// What this server's disk holds by the durability contract once the step that left it in
    /// this state was carried out: the whole hard state, except a leader's own entries past
    /// `persisted_index` ([`Persist::write_behind`]), which a crash may lose.
    pub fn durable_hard_state(&self) -> HardState<C> {
        let mut hard = self.hard.clone();
        if self.role == Role::Leader {
            let keep = self
                .leader
                .persisted_index
                .saturating_sub(self.snapshot_index());
            hard.log
                .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        }
        hard
    }

    /// Leaders: whether some of their own entries wait for [`Event::Persisted`].
    pub fn awaits_persisted(&self) -> bool {
        self.role == Role::Leader && self.leader.persisted_index < self.last_log_index()
    }

    /// Leaders: whether sending `peer` entries moves next_index past them (a pipelining leader
    /// that is not probing `peer`), so that the same AppendEntries cannot be sent again from
    /// the state the send left.
    pub fn sends_move_next_index<R>(&self, cfg: &Config<R>, peer: NodeId) -> bool {
        self.role == Role::Leader && cfg.pipeline.is_some() && !self.leader.is_probing(peer)
    }
}

impl<C: Clone + Payload> Server<C> {
    /// Feed one event through the protocol rules. An `Err` is either a refused message (the
    /// server is unchanged) or a violated invariant (the server must stop): see [`CoreError`].
    pub fn handle<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        event: Event<C>,
    ) -> Result<Output<C>, CoreError> {
        let mut out = Output::default();
        match event {
            Event::ElectionTimeout => self.on_election_timeout(cfg, &mut out)?,
            Event::Heartbeat => self.on_heartbeat(cfg, &mut out)?,
            Event::Propose(command) => self.on_propose(cfg, command, &mut out)?,
            Event::Resend { to } => self.on_resend(cfg, to, &mut out)?,
            Event::Persisted { term, index } => self.on_persisted(cfg, term, index, &mut out)?,
            Event::ReadIndex { id, command } => self.on_read_index(cfg, id, command, &mut out)?,
            Event::TransferLeadership { to } => self.on_transfer_leadership(cfg, to, &mut out)?,
            Event::Compact { index, data } => self.on_compact(cfg, index, data, &mut out)?,
            Event::Receive { from, msg } => {
                // Figure 2's "set currentTerm = T" only for a term the protocol can go on
                // from: below the cap, and not further ahead than a correct peer can be.
                if !cfg.rules.term_adoptable(
                    msg.term(),
                    self.hard.current_term,
                    cfg.max_term,
                    cfg.max_term_jump,
                ) {
                    return Err(CoreError::AbsurdTerm {
                        from,
                        term: msg.term(),
                        current_term: self.hard.current_term,
                        max_term: cfg.max_term,
                        max_term_jump: cfg.max_term_jump,
                    });
                }
                // Thesis §9.6: a server in a leader's lease ignores requests for votes, before
                // it looks at their term (lease.rs).
                if msg.asks_for_vote() && self.in_lease(cfg) {
                    return Ok(out);
                }
                // All servers: a message from a later term makes this server adopt that term and
                // become a follower (§5.1); a pre-vote's proposed term does not (§9.6).
                if msg.raises_term() {
                    self.observe_term(cfg, msg.term(), &mut out);
                }
                match msg {
                    Message::RequestVote(m) => self.on_request_vote(cfg, from, m, &mut out),
                    Message::RequestVoteResponse(m) => {
                        self.on_vote_response(cfg, from, m, &mut out)?
                    }
                    Message::AppendEntries(m) => self.on_append_entries(cfg, from, m, &mut out)?,
                    Message::AppendEntriesResponse(m) => {
                        self.on_append_response(cfg, from, m, &mut out)?
                    }
                    Message::PreVote(m) => self.on_pre_vote(cfg, from, m, &mut out),
                    Message::PreVoteResponse(m) => {
                        self.on_pre_vote_response(cfg, from, m, &mut out)?
                    }
                    Message::TimeoutNow(m) => self.on_timeout_now(cfg, from, m, &mut out)?,
                    Message::InstallSnapshot(m) => {
                        self.on_install_snapshot(cfg, from, m, &mut out)?
                    }
                }
            }
        }
        self.release_reads(cfg, &mut out);
        Ok(out)
    }

    /// §5.1: if a message carries a term T > current_term, set current_term = T, forget the vote
    /// and convert to follower.
    fn observe_term<R: Rules>(&mut self, cfg: &Config<R>, term: Term, out: &mut Output<C>) {
        if term <= self.hard.current_term {
            return;
        }
        self.hard.current_term = term;
        self.hard.voted_for = None;
        self.commit_index = cfg.rules.commit_on_new_term(self.commit_index);
        out.persist.term_or_vote = true;
        if self.role == Role::Leader && !cfg.rules.leader_steps_down_on_higher_term() {
            return;
        }
        self.become_follower();
    }

    pub(crate) fn become_follower(&mut self) {
        self.role = Role::Follower;
        self.leader_id = None;
        self.votes_granted.clear();
        self.transfer_campaign = false;
        self.leader = LeaderState::default();
        // pending_reads are answered NotLeader at the end of the step (`release_reads`).
    }

    /// Client requests go to the leader, which appends them to its own log (§5.3); other servers
    /// redirect the client to the leader they know of. A configuration change is appended only
    /// if the leader may start it now (membership.rs).
    pub(crate) fn on_propose<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        command: C,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        if self.role != Role::Leader {
            out.propose = Some(ProposeResult::NotLeader {
                leader_hint: self.leader_id,
            });
            return Ok(());
        }
        // A leader handing over its leadership sends clients to the target (thesis §3.10).
        if let Some(target) = self.leader.transferee {
            out.propose = Some(ProposeResult::NotLeader {
                leader_hint: Some(target),
            });
            return Ok(());
        }
        if let Some(next) = command.configuration() {
            if let Err(refusal) = self.may_change_config(cfg, &next) {
                out.propose = Some(ProposeResult::ConfigRefused(refusal));
                return Ok(());
            }
        }
        let term = self.hard.current_term;
        self.hard.log.push(Entry { term, command });
        let index = self.last_log_index();
        // A configuration takes effect once appended (thesis §4.1).
        self.config_appended(cfg, index)?;
        // The leader's own entry is written behind: it may be replicated before it is durable
        // here, and counts toward commitment once it is (`on_persisted`).
        out.persist.appended_from = Some(index);
        out.persist.write_behind = true;
        out.propose = Some(ProposeResult::Accepted { index, term });
        Ok(())
    }

    /// Leaders: the disk holds the log up to `index`; count it as this server's own match
    /// (Ongaro's thesis §10.2.1) and commit what a majority now holds (a single-server cluster
    /// commits here). A report for an entry the log no longer holds is stale and changes
    /// nothing; one past the end of the log is a violated invariant.
    fn on_persisted<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        term: Term,
        index: Index,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        if index > self.last_log_index() {
            return Err(CoreError::PersistedBeyondLog {
                index,
                last_log_index: self.last_log_index(),
            });
        }
        if self.role != Role::Leader
            || index <= self.leader.persisted_index
            || self.term_at(index) != Some(term)
        {
            return Ok(());
        }
        self.leader.persisted_index = index;
        self.advance_commit_index(cfg, out)
    }

    /// All servers: apply entries up to commit_index, in order.
    /// A commit_index past the end of the log is a violated invariant, never capped.
    pub(crate) fn apply_committed(&mut self, out: &mut Output<C>) -> Result<(), CoreError> {
        while self.last_applied < self.commit_index {
            let index = next_index_after(self.last_applied)?;
            if index <= self.snapshot_index() {
                return Err(CoreError::CompactedEntry {
                    index,
                    snapshot_index: self.snapshot_index(),
                });
            }
            let entry = self.entry(index).ok_or(CoreError::CommitBeyondLog {
                commit_index: self.commit_index,
                last_log_index: self.last_log_index(),
            })?;
            out.apply.push((index, entry.clone()));
            self.last_applied = index;
        }
        Ok(())
    }
}

/// The term after `term`, checked (an election's, or the one a pre-vote proposes).
pub(crate) fn next_term(term: Term) -> Result<Term, CoreError> {
    term.checked_add(1).ok_or(CoreError::Overflow {
        what: "current_term",
    })
}

/// `index + 1`, checked.
pub(crate) fn next_index_after(index: Index) -> Result<Index, CoreError> {
    index.checked_add(1).ok_or(CoreError::Overflow {
        what: "a log index",
    })
}

impl<C> Server<C> {
    /// Leaders: whether a reply of `term` answers this leadership, so that it may be acted on
    /// ([`Rules::counts_append_reply`]: only a reply of the current term does).
    pub(crate) fn leads_the_term_of<R: Rules>(&self, cfg: &Config<R>, term: Term) -> bool {
        self.role == Role::Leader && cfg.rules.counts_append_reply(term, self.hard.current_term)
    }
}
