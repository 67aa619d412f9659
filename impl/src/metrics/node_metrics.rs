//! The node's metrics: every `raft_*` series the endpoint serves (impl/README.md, "Metrics and
//! health", documents each), who records it, and how they are written out.
//!
//! The event loop records the protocol state after each batch ([`NodeMetrics::observe`]) and
//! the client commands it receives and answers ([`NodeMetrics::received`],
//! [`NodeMetrics::answered`]); the WAL wrapper times each fsync; the event loop reads each peer
//! link's connection state. Everything is an atomic, so recording never waits for a scrape.

use super::registry::{Counter, Exposition, Gauge, Histogram, Kind};
use crate::kv::OpResult;
use crate::wire::ClientReply;
use raft_core::{NodeId, Role, Server};
use std::time::Duration;

/// Buckets of the WAL fsync histogram: 100 µs (a fast SSD's flush) to 2.5 s (a stalled disk).
pub const FSYNC_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Buckets of the command latency histograms: 500 µs (a loopback round trip and a fast fsync)
/// to 10 s (the client library's retry horizon).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A client command's kind: a write goes through the log; a read is answered by the leader
/// once a majority confirmed its leadership (or proposed, before its term's first commit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandKind {
    Write,
    Read,
}

impl CommandKind {
    const ALL: [CommandKind; 2] = [CommandKind::Write, CommandKind::Read];

    fn label(self) -> &'static str {
        match self {
            CommandKind::Write => "write",
            CommandKind::Read => "read",
        }
    }
}

/// How the node answered a client command: every answer the replica gives one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A write committed and applied (a compare-and-set that did not match included: it was
    /// applied, and changed nothing), or a read answered.
    Ok,
    /// A retry of a request older than the client's latest applied one (`StaleRequest`).
    Stale,
    /// This node does not lead (or stopped leading while the command waited).
    NotLeader,
    /// A request that cannot succeed as asked (e.g. a refused membership change).
    Refused,
    /// The proposal was overwritten or replaced by another leader's entry: it may or may not
    /// have been applied, and the client retries.
    Error,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Stale,
        Outcome::NotLeader,
        Outcome::Refused,
        Outcome::Error,
    ];

    /// The outcome of the answer `reply`.
    pub fn of(reply: &ClientReply) -> Outcome {
        match reply {
            ClientReply::Ok(OpResult::StaleRequest { .. }) => Outcome::Stale,
            ClientReply::Ok(_) | ClientReply::Leader { .. } | ClientReply::Members { .. } => {
                Outcome::Ok
            }
            ClientReply::NotLeader { .. } => Outcome::NotLeader,
            ClientReply::Refused(_) => Outcome::Refused,
            ClientReply::Error(_) => Outcome::Error,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Stale => "stale",
            Outcome::NotLeader => "not_leader",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
        }
    }

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|o| *o == self)
            .expect("every outcome is in ALL")
    }
}

const ROLES: [Role; 4] = [
    Role::Follower,
    Role::PreCandidate,
    Role::Candidate,
    Role::Leader,
];

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Follower => "follower",
        Role::PreCandidate => "pre_candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}

fn role_code(role: Role) -> i64 {
    ROLES
        .iter()
        .position(|r| *r == role)
        .expect("every role is in ROLES") as i64
}

/// What the event loop reads of its replica after a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub term: u64,
    pub role: Role,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    pub snapshot_index: u64,
    pub leader: Option<u64>,
    /// This node voted for itself in `term`: it started the election of that term.
    pub voted_for_self: bool,
    /// Snapshots taken and installed since the node started.
    pub snapshots_taken: u64,
    pub snapshots_installed: u64,
}

impl Observed {
    /// The state of `server` (node `me`), with the replica's snapshot counts.
    pub fn of<C: Clone>(server: &Server<C>, me: NodeId, taken: u64, installed: u64) -> Self {
        Observed {
            term: server.current_term(),
            role: server.role,
            commit_index: server.commit_index,
            applied_index: server.last_applied,
            last_log_index: server.last_log_index(),
            snapshot_index: server.snapshot_index(),
            leader: server.leader_id.map(|l| l.0),
            voted_for_self: server.voted_for() == Some(me),
            snapshots_taken: taken,
            snapshots_installed: installed,
        }
    }
}

/// Every metric of one node.
#[derive(Debug)]
pub struct NodeMetrics {
    term: Gauge,
    role: Gauge,
    commit_index: Gauge,
    applied_index: Gauge,
    last_log_index: Gauge,
    snapshot_index: Gauge,
    /// The leader's id, -1 when none is known.
    leader: Gauge,
    /// The term in which this node last learned of a leader (for `leader_changes`; 0 at
    /// start: no term 0 has a leader).
    leader_term: Gauge,
    elections_started: Counter,
    leader_changes: Counter,
    snapshots_taken: Counter,
    snapshots_installed: Counter,
    received: [Counter; 2],
    answered: [[Counter; 5]; 2],
    pub fsync: Histogram,
    write_latency: Histogram,
    read_latency: Histogram,
    peers: Vec<(u64, Gauge)>,
}

/// What [`crate::metrics::health`] needs: a leader, and how far applying trails commitment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthView {
    pub role: Role,
    pub term: u64,
    pub leader: Option<u64>,
    pub apply_lag: u64,
}

impl NodeMetrics {
    /// The metrics of a node whose peers (outbound links) are `peers`.
    pub fn new(peers: impl IntoIterator<Item = u64>) -> Self {
        NodeMetrics {
            term: Gauge::default(),
            role: Gauge::default(),
            commit_index: Gauge::default(),
            applied_index: Gauge::default(),
            last_log_index: Gauge::default(),
            snapshot_index: Gauge::default(),
            leader: Gauge::default(),
            leader_term: Gauge::default(),
            elections_started: Counter::default(),
            leader_changes: Counter::default(),
            snapshots_taken: Counter::default(),
            snapshots_installed: Counter::default(),
            received: Default::default(),
            answered: Default::default(),
            fsync: Histogram::new(FSYNC_BUCKETS),
            write_latency: Histogram::new(LATENCY_BUCKETS),
            read_latency: Histogram::new(LATENCY_BUCKETS),
            peers: peers.into_iter().map(|p| (p, Gauge::default())).collect(),
        }
        .with_no_leader()
    }

    fn with_no_leader(self) -> Self {
        self.leader.set(-1);
        self
    }

    /// The state the node starts from (a restart's term, log and snapshot): sets the gauges
    /// and counts nothing (a vote for itself in the restart's term is an election of the run
    /// before; a restarted node knows no leader yet).
    pub fn start_from(&self, s: &Observed) {
        self.set_gauges(s);
    }

    /// The state after a batch. An election started: the term rose and this node voted for
    /// itself in it. A leader change: a leader known for a term later than the last one a
    /// leader was known in. Observed once per batch, so a batch that both starts and wins an
    /// election (a single-node cluster) still counts one election and one leader change.
    pub fn observe(&self, s: &Observed) {
        let previous_term = self.term.get();
        if (s.term as i64) > previous_term && s.voted_for_self {
            self.elections_started.inc();
        }
        if s.leader.is_some() && (s.term as i64) > self.leader_term.get() {
            self.leader_term.set_u64(s.term);
            self.leader_changes.inc();
        }
        self.set_gauges(s);
    }

    fn set_gauges(&self, s: &Observed) {
        self.term.set_u64(s.term);
        self.role.set(role_code(s.role));
        self.commit_index.set_u64(s.commit_index);
        self.applied_index.set_u64(s.applied_index);
        self.last_log_index.set_u64(s.last_log_index);
        self.snapshot_index.set_u64(s.snapshot_index);
        self.leader.set(s.leader.map_or(-1, |l| l as i64));
        self.snapshots_taken.follow(s.snapshots_taken);
        self.snapshots_installed.follow(s.snapshots_installed);
    }

    /// A client command arrived at the event loop.
    pub fn received(&self, kind: CommandKind) {
        self.received[kind as usize].inc();
    }

    /// A client command was answered with `reply`, `took` after it arrived; the latency
    /// histograms hold the successful ones.
    pub fn answered(&self, kind: CommandKind, reply: &ClientReply, took: Duration) {
        let outcome = Outcome::of(reply);
        self.answered[kind as usize][outcome.index()].inc();
        if outcome == Outcome::Ok {
            match kind {
                CommandKind::Write => self.write_latency.observe(took),
                CommandKind::Read => self.read_latency.observe(took),
            }
        }
    }

    /// Whether the outbound connection to `peer` is up (a peer not in the cluster file at
    /// start has no gauge, and is ignored).
    pub fn peer_connected(&self, peer: u64, up: bool) {
        if let Some((_, g)) = self.peers.iter().find(|(p, _)| *p == peer) {
            g.set(i64::from(up));
        }
    }

    /// The state the health rule looks at.
    pub fn health_view(&self) -> HealthView {
        let role = ROLES
            .get(usize::try_from(self.role.get()).unwrap_or(0))
            .copied()
            .unwrap_or_default();
        HealthView {
            role,
            term: u64::try_from(self.term.get()).unwrap_or(0),
            leader: u64::try_from(self.leader.get()).ok(),
            apply_lag: self.apply_lag(),
        }
    }

    fn apply_lag(&self) -> u64 {
        u64::try_from(self.commit_index.get() - self.applied_index.get()).unwrap_or(0)
    }

    /// Every metric, in the text exposition format.
    pub fn render(&self) -> String {
        let mut e = Exposition::new();
        e.single(
            "raft_term",
            Kind::Gauge,
            "The node's current term.",
            self.term.get(),
        );
        e.family(
            "raft_role",
            Kind::Gauge,
            "The node's role: 1 for the role it has, 0 for the others.",
        );
        let role = self.role.get();
        for r in ROLES {
            let v = i64::from(role_code(r) == role);
            e.sample("raft_role", &[("role", role_label(r))], v);
        }
        e.single(
            "raft_leader_id",
            Kind::Gauge,
            "The id of the leader this node knows of, -1 when it knows none.",
            self.leader.get(),
        );
        e.single(
            "raft_commit_index",
            Kind::Gauge,
            "The highest log index known to be committed.",
            self.commit_index.get(),
        );
        e.single(
            "raft_applied_index",
            Kind::Gauge,
            "The highest log index applied to the key-value store.",
            self.applied_index.get(),
        );
        e.single(
            "raft_apply_lag",
            Kind::Gauge,
            "Entries committed and not yet applied (commit index - applied index).",
            self.apply_lag() as i64,
        );
        e.single(
            "raft_last_log_index",
            Kind::Gauge,
            "The index of the last entry in the node's log.",
            self.last_log_index.get(),
        );
        e.single(
            "raft_snapshot_index",
            Kind::Gauge,
            "The last index the node's snapshot covers (0: none).",
            self.snapshot_index.get(),
        );
        e.single(
            "raft_elections_started_total",
            Kind::Counter,
            "Elections this node started (terms it raised and voted for itself in).",
            self.elections_started.get() as i64,
        );
        e.single(
            "raft_leader_changes_total",
            Kind::Counter,
            "Times this node learned of a leader for a new term.",
            self.leader_changes.get() as i64,
        );
        e.single(
            "raft_snapshots_taken_total",
            Kind::Counter,
            "Snapshots this node took of its store, compacting its log.",
            self.snapshots_taken.get() as i64,
        );
        e.single(
            "raft_snapshots_installed_total",
            Kind::Counter,
            "Snapshots this node installed from a leader.",
            self.snapshots_installed.get() as i64,
        );
        e.family(
            "raft_proposals_received_total",
            Kind::Counter,
            "Client commands that reached the event loop, by kind.",
        );
        for k in CommandKind::ALL {
            let n = self.received[k as usize].get();
            e.sample("raft_proposals_received_total", &[("kind", k.label())], n);
        }
        e.family(
            "raft_proposals_answered_total",
            Kind::Counter,
            "Client commands answered, by kind and outcome.",
        );
        for k in CommandKind::ALL {
            for o in Outcome::ALL {
                let n = self.answered[k as usize][o.index()].get();
                let labels = [("kind", k.label()), ("outcome", o.label())];
                e.sample("raft_proposals_answered_total", &labels, n);
            }
        }
        e.histogram(
            "raft_wal_fsync_duration_seconds",
            "Time to write and fsync one batch's frame to the write-ahead log.",
            &self.fsync,
        );
        e.histogram(
            "raft_apply_latency_seconds",
            "Time from a write's arrival to its answer, once committed and applied (writes answered ok).",
            &self.write_latency,
        );
        e.histogram(
            "raft_read_latency_seconds",
            "Time from a read's arrival to its answer (reads answered ok).",
            &self.read_latency,
        );
        e.family(
            "raft_peer_connected",
            Kind::Gauge,
            "Whether the outbound connection to a peer is up (1) or not (0).",
        );
        for (peer, g) in &self.peers {
            e.sample(
                "raft_peer_connected",
                &[("peer", &peer.to_string())],
                g.get(),
            );
        }
        e.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(term: u64, role: Role, leader: Option<u64>, voted_for_self: bool) -> Observed {
        Observed {
            term,
            role,
            leader,
            voted_for_self,
            ..Observed::default()
        }
    }

    /// The value of the sample line that starts with `series` (name and labels).
    fn value(text: &str, series: &str) -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .to_string()
    }

    #[test]
    fn elections_and_leader_changes_are_counted_from_the_observed_states() {
        let m = NodeMetrics::new([1, 2]);
        // Restarted in term 3, having voted for itself then: no election of this run.
        m.start_from(&state(3, Role::Follower, None, true));
        m.observe(&state(3, Role::Follower, Some(1), false));
        m.observe(&state(4, Role::Candidate, None, true));
        m.observe(&state(4, Role::Leader, Some(0), true));
        // A later term's leader, learned as a follower (another node's election).
        m.observe(&state(5, Role::Follower, Some(2), false));
        m.observe(&state(5, Role::Follower, Some(2), false));
        let text = m.render();
        assert_eq!(value(&text, "raft_elections_started_total"), "1");
        // Term 3 (leader 1), term 4 (itself), term 5 (leader 2).
        assert_eq!(value(&text, "raft_leader_changes_total"), "3");
        assert_eq!(value(&text, "raft_leader_id"), "2");
        assert_eq!(value(&text, "raft_role{role=\"follower\"}"), "1");
        assert_eq!(value(&text, "raft_role{role=\"leader\"}"), "0");
    }

    #[test]
    fn answers_are_counted_by_kind_and_outcome_and_ok_ones_timed() {
        let m = NodeMetrics::new([]);
        m.received(CommandKind::Write);
        m.received(CommandKind::Write);
        m.received(CommandKind::Read);
        let ok = ClientReply::Ok(OpResult::Value(None));
        let hint = ClientReply::NotLeader { leader_hint: None };
        m.answered(CommandKind::Write, &ok, Duration::from_millis(3));
        m.answered(CommandKind::Write, &hint, Duration::from_millis(1));
        m.answered(CommandKind::Read, &ok, Duration::from_millis(20));
        let text = m.render();
        assert_eq!(
            value(&text, "raft_proposals_received_total{kind=\"write\"}"),
            "2"
        );
        let answered = |k: &str, o: &str| {
            value(
                &text,
                &format!("raft_proposals_answered_total{{kind=\"{k}\",outcome=\"{o}\"}}"),
            )
        };
        assert_eq!(answered("write", "ok"), "1");
        assert_eq!(answered("write", "not_leader"), "1");
        assert_eq!(answered("read", "ok"), "1");
        assert_eq!(answered("read", "error"), "0");
        assert_eq!(value(&text, "raft_apply_latency_seconds_count"), "1");
        assert_eq!(
            value(&text, "raft_apply_latency_seconds_bucket{le=\"0.0025\"}"),
            "0"
        );
        assert_eq!(
            value(&text, "raft_apply_latency_seconds_bucket{le=\"0.005\"}"),
            "1"
        );
        assert_eq!(value(&text, "raft_read_latency_seconds_count"), "1");
    }

    #[test]
    fn outcomes_cover_every_answer() {
        let stale = ClientReply::Ok(OpResult::StaleRequest { last_seq: 4 });
        assert_eq!(Outcome::of(&stale), Outcome::Stale);
        let cas = ClientReply::Ok(OpResult::CasMismatch { current: None });
        assert_eq!(Outcome::of(&cas), Outcome::Ok);
        assert_eq!(Outcome::of(&ClientReply::Error("x".into())), Outcome::Error);
        assert_eq!(
            Outcome::of(&ClientReply::Refused("x".into())),
            Outcome::Refused
        );
    }

    #[test]
    fn peers_and_lag_are_written() {
        let m = NodeMetrics::new([1, 2]);
        m.peer_connected(2, true);
        m.peer_connected(7, true);
        m.observe(&Observed {
            commit_index: 10,
            applied_index: 7,
            ..state(1, Role::Follower, Some(1), false)
        });
        let text = m.render();
        assert_eq!(value(&text, "raft_peer_connected{peer=\"1\"}"), "0");
        assert_eq!(value(&text, "raft_peer_connected{peer=\"2\"}"), "1");
        assert!(!text.contains("peer=\"7\""));
        assert_eq!(value(&text, "raft_apply_lag"), "3");
        let view = m.health_view();
        assert_eq!(view.apply_lag, 3);
        assert_eq!(view.leader, Some(1));
        // Every family has its HELP and TYPE lines.
        let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(helps, types);
        assert!(helps >= 18, "{helps} families");
    }
}
