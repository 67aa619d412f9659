//! Readable renderings of the model's states and messages, in the paper's vocabulary. The trace
//! printer and the Explorer use these; they render the one state, they do not copy it.

use crate::model::adapter::actor::RaftAction;
use crate::model::adapter::node::{ClientState, NodeState, ServerState, Timer};
use crate::model::judge::register::{ClientOp, ClientReply, Cmd, Members, Msg};
use crate::model::RaftState;
use raft_core::{Role, Server};
use stateright::actor::ActorModelAction;
use std::fmt;

/// Actor names: servers are `n0..`, clients `c0..` (actors are numbered servers first).
pub fn actor_name(servers: usize, actor: usize) -> String {
    crate::model::adapter::actors::Actors::new(servers).name(stateright::actor::Id::from(actor))
}

impl fmt::Display for ClientOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientOp::Put(v) => write!(f, "put {v}"),
            ClientOp::Get => write!(f, "get"),
            ClientOp::Config(m) => write!(f, "{}", MembersDisplay(*m)),
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_config() {
            return write!(f, "{}", self.op);
        }
        write!(f, "c{}#{} {}", self.client, self.seq, self.op)
    }
}

/// A configuration as `config{voters n0,n1 learners n2}`.
pub struct MembersDisplay(pub Members);

impl fmt::Display for MembersDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0.membership();
        let list = |set: &std::collections::BTreeSet<raft_core::NodeId>| {
            set.iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(f, "config{{voters {}", list(&m.voters))?;
        if !m.learners.is_empty() {
            write!(f, " learners {}", list(&m.learners))?;
        }
        f.write_str("}")
    }
}

/// A log as `[1:t1 c0#0 put 1, 2:t2 c0#1 get]`.
/// A log: its entries numbered from 1, or, for a server with a snapshot (§7), the snapshot's
/// last included index and term then the entries after it: `snapshot 2/t1 + [3:t1 put 1]`.
pub struct LogDisplay<'a>(pub &'a Server<Cmd>);

impl fmt::Display for LogDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let first = s.snapshot_index();
        if first > 0 {
            write!(
                f,
                "snapshot {first}/t{} + ",
                s.snapshot().last_included_term
            )?;
        }
        f.write_str("[")?;
        for (i, e) in s.log().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}:t{} {}", first + i as u64 + 1, e.term, e.command)?;
        }
        f.write_str("]")
    }
}

impl fmt::Display for ClientReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientReply::PutOk => write!(f, "put ok"),
            ClientReply::GetOk(Some(v)) => write!(f, "get ok {v}"),
            ClientReply::GetOk(None) => write!(f, "get ok (empty)"),
            ClientReply::NotLeader(Some(l)) => write!(f, "not leader, try {l}"),
            ClientReply::NotLeader(None) => write!(f, "not leader"),
            ClientReply::Stale => write!(f, "stale (older than the latest applied)"),
        }
    }
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Raft(m) => m.fmt(f),
            Msg::Request { seq, op } => write!(f, "Request(#{seq} {op})"),
            Msg::Reply { seq, reply } => write!(f, "Reply(#{seq} {reply})"),
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Follower => "follower",
        Role::PreCandidate => "pre-candidate",
        Role::Candidate => "candidate",
        Role::Leader => "LEADER",
    }
}

impl fmt::Display for ServerState {
    /// `{}` is one line (the text trace); `{:#}` puts each group of fields on its own line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.server;
        let sep = if f.alternate() { "\n    " } else { " " };
        write!(
            f,
            "{} term {} voted_for ",
            role_name(s.role),
            s.current_term()
        )?;
        match s.voted_for() {
            Some(v) => write!(f, "{v}")?,
            None => f.write_str("-")?,
        }
        write!(
            f,
            "{sep}log {}{sep}commit_index {} last_applied {}",
            LogDisplay(s),
            s.commit_index,
            s.last_applied
        )?;
        if s.role == Role::Leader {
            let leader = &s.leader;
            write!(f, "{sep}next_index ")?;
            braced(f, &leader.progress, |f, (p, g)| {
                write!(f, "{p}: {}", g.next_index)
            })?;
            f.write_str(" match_index ")?;
            braced(f, &leader.progress, |f, (p, g)| {
                write!(f, "{p}: {}", g.match_index)
            })?;
            if leader.probing().next().is_some() {
                f.write_str(" probing ")?;
                braced(f, leader.probing(), |f, p| write!(f, "{p}"))?;
            }
            if let Some(t) = leader.transferee {
                write!(f, " transferring to {t}")?;
            }
            if leader.recent_active().next().is_some() {
                f.write_str(" recent_active ")?;
                braced(f, leader.recent_active(), |f, p| write!(f, "{p}"))?;
            }
            if s.leader.read_round > 0 {
                write!(f, " read_round {} read_acks ", s.leader.read_round)?;
                braced(f, leader.read_acks(), |f, (p, k)| write!(f, "{p}: {k}"))?;
                if !s.pending_reads.is_empty() {
                    f.write_str(" pending reads ")?;
                    braced(f, &s.pending_reads, |f, r| {
                        write!(f, "@{} round {}", r.index, r.round)
                    })?;
                }
            }
        }
        if matches!(s.role, Role::Candidate | Role::PreCandidate) {
            let what = if s.role == Role::Candidate {
                "votes"
            } else {
                "pre-votes"
            };
            write!(f, "{sep}{what} ")?;
            braced(f, &s.votes_granted, |f, v| write!(f, "{v}"))?;
        }
        // The block form also shows the ghost history the properties read.
        if f.alternate() && !self.ghost.led_terms.is_empty() {
            write!(f, "{sep}(history) led terms {{")?;
            for (i, t) in self.ghost.led_terms.iter().enumerate() {
                let sep = if i > 0 { ", " } else { "" };
                write!(f, "{sep}{t}")?;
            }
            f.write_str("}")?;
        }
        if let Some(fault) = &self.fault {
            write!(f, "{sep}⚠ stopped: {fault}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op #{}", self.seq)
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeState::Server(s) => s.fmt(f),
            NodeState::Client(c) => c.fmt(f),
        }
    }
}

// Debug is what stateright prints (the Explorer's complete state, its sequence diagram): it is
// the readable rendering, not a second one.

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Debug for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Debug for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timer::Election => f.write_str("election"),
            Timer::Send(to) => write!(f, "send to {to}"),
            Timer::Request(to) => write!(f, "request to {to}"),
            Timer::Persist => f.write_str("disk write"),
            Timer::Transfer(to) => write!(f, "transfer to {to}"),
            Timer::Reconfigure(change) => write!(f, "reconfigure: {change}"),
            Timer::Compact => f.write_str("snapshot"),
            Timer::Forge => f.write_str("forged frame"),
        }
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One action in the paper's words.
pub fn format_action(servers: usize, action: &RaftAction) -> String {
    let name = |id: stateright::actor::Id| actor_name(servers, usize::from(id));
    match action {
        ActorModelAction::Deliver { src, dst, msg } => {
            format!("{} → {}: {}", name(*src), name(*dst), msg)
        }
        ActorModelAction::Drop(env) => {
            format!("lose {} → {}: {}", name(env.src), name(env.dst), env.msg)
        }
        ActorModelAction::Timeout(id, Timer::Election) => {
            format!("{}: election timeout", name(*id))
        }
        ActorModelAction::Timeout(id, Timer::Send(to)) => {
            format!("{}: sends its request to {}", name(*id), to)
        }
        ActorModelAction::Timeout(id, Timer::Request(to)) => {
            format!("{}: sends its pending request to {}", name(*id), to)
        }
        ActorModelAction::Timeout(id, Timer::Persist) => {
            format!("{}: its disk makes its log durable", name(*id))
        }
        ActorModelAction::Timeout(id, Timer::Transfer(to)) => {
            format!(
                "{}: an operator asks it to hand leadership to {}",
                name(*id),
                to
            )
        }
        ActorModelAction::Timeout(id, Timer::Reconfigure(change)) => {
            format!("{}: an operator asks it to {}", name(*id), change)
        }
        ActorModelAction::Timeout(id, Timer::Compact) => {
            format!(
                "{}: takes a snapshot of what it applied (compacts its log)",
                name(*id)
            )
        }
        ActorModelAction::Timeout(id, Timer::Forge) => {
            format!(
                "{}: receives a forged RequestVote with a term no election could follow",
                name(*id)
            )
        }
        ActorModelAction::Crash(id) => format!("{} crashes", name(*id)),
        ActorModelAction::Recover(id) => format!("{} restarts from storage", name(*id)),
        ActorModelAction::SelectRandom { actor, .. } => format!("{} random choice", name(*actor)),
    }
}

/// The number of servers in a state (actors are numbered servers first).
pub fn server_count(state: &RaftState) -> usize {
    state.servers().count()
}

/// One actor of a global state: `n0 (crashed): follower term 2 ...`; `{:#}` for a block.
pub struct ActorDisplay<'a>(pub &'a RaftState, pub usize);

impl fmt::Display for ActorDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ActorDisplay(state, i) = *self;
        let crashed = if state.is_crashed(i) {
            " (crashed)"
        } else {
            ""
        };
        write!(f, "{}{crashed}: ", actor_name(server_count(state), i))?;
        if f.alternate() {
            write!(f, "{:#}", state.actor(i))
        } else {
            write!(f, "{}", state.actor(i))
        }
    }
}

/// A whole global state as the paper draws it: one block per server, the messages in flight,
/// then the clients' view.
pub struct StateDisplay<'a>(pub &'a RaftState);

impl fmt::Display for StateDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.0;
        let servers = server_count(state);
        for i in 0..servers {
            writeln!(f, "{:#}", ActorDisplay(state, i))?;
        }
        let envs: Vec<_> = state.network.iter_all().collect();
        writeln!(f, "messages in flight: {}", envs.len())?;
        for env in envs {
            writeln!(
                f,
                "    {} → {}: {}",
                actor_name(servers, usize::from(env.src)),
                actor_name(servers, usize::from(env.dst)),
                env.msg
            )?;
        }
        writeln!(f, "clients:")?;
        for i in servers..state.actor_count() {
            let invoked = state
                .history
                .invoked
                .get(&stateright::actor::Id::from(i))
                .map(|s| format!(", last invoked #{s}"))
                .unwrap_or_default();
            writeln!(f, "    {}{invoked}", ActorDisplay(state, i))?;
        }
        if state.history.read_returned_value {
            writeln!(f, "    (a read has returned a written value)")?;
        }
        Ok(())
    }
}

/// `{a, b, c}`: each item of `items` written by `each`, comma-separated, in braces.
fn braced<I: IntoIterator>(
    f: &mut fmt::Formatter<'_>,
    items: I,
    each: impl Fn(&mut fmt::Formatter<'_>, I::Item) -> fmt::Result,
) -> fmt::Result {
    f.write_str("{")?;
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        each(f, item)?;
    }
    f.write_str("}")
}
