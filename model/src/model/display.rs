//! Readable renderings of the model's states and messages, in the paper's vocabulary. The trace
//! printer and the Explorer use these; they render the one state, they do not copy it.

use super::actor::{NodeState, ServerState};
use super::client::ClientState;
use super::register::{ClientOp, ClientReply, Cmd, Msg};
use crate::core::{Entry, Message, Role};
use std::fmt;

/// Actor names: servers are `n0..`, clients `c0..` (actors are numbered servers first).
pub fn actor_name(servers: usize, actor: usize) -> String {
    if actor < servers {
        format!("n{actor}")
    } else {
        format!("c{}", actor - servers)
    }
}

impl fmt::Display for ClientOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientOp::Put(v) => write!(f, "put {v}"),
            ClientOp::Get => write!(f, "get"),
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}#{} {}", self.client, self.seq, self.op)
    }
}

/// A log as `[1:t1 c0#0 put 1, 2:t2 c0#1 get]`.
pub struct LogDisplay<'a>(pub &'a [Entry<Cmd>]);

impl fmt::Display for LogDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}:t{} {}", i + 1, e.term, e.command)?;
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
        }
    }
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Raft(Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
            }) => write!(
                f,
                "RequestVote(term {term}, last log {last_log_index}/t{last_log_term})"
            ),
            Msg::Raft(Message::RequestVoteResponse { term, vote_granted }) => write!(
                f,
                "RequestVoteResponse(term {term}, {})",
                if *vote_granted { "granted" } else { "denied" }
            ),
            Msg::Raft(Message::AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            }) => {
                write!(
                    f,
                    "AppendEntries(term {term}, prev {prev_log_index}/t{prev_log_term}, entries "
                )?;
                // Entries are numbered from prev_log_index + 1.
                f.write_str("[")?;
                for (k, e) in entries.iter().enumerate() {
                    if k > 0 {
                        f.write_str(", ")?;
                    }
                    write!(
                        f,
                        "{}:t{} {}",
                        *prev_log_index as usize + k + 1,
                        e.term,
                        e.command
                    )?;
                }
                write!(f, "], commit {leader_commit})")
            }
            Msg::Raft(Message::AppendEntriesResponse {
                term,
                success,
                match_index,
            }) => write!(
                f,
                "AppendEntriesResponse(term {term}, {}, {} {match_index})",
                if *success { "success" } else { "reject" },
                if *success { "match" } else { "last index" }
            ),
            Msg::Request { seq, op } => write!(f, "Request(#{seq} {op})"),
            Msg::Reply { seq, reply } => write!(f, "Reply(#{seq} {reply})"),
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Follower => "follower",
        Role::Candidate => "candidate",
        Role::Leader => "LEADER",
    }
}

impl fmt::Display for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.server;
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
            " log {} commit_index {} last_applied {}",
            LogDisplay(s.log()),
            s.commit_index,
            s.last_applied
        )?;
        if s.role == Role::Leader {
            f.write_str(" next_index {")?;
            for (i, (p, n)) in s.next_index.iter().enumerate() {
                let sep = if i > 0 { ", " } else { "" };
                write!(f, "{sep}{p}: {n}")?;
            }
            f.write_str("} match_index {")?;
            for (i, (p, m)) in s.match_index.iter().enumerate() {
                let sep = if i > 0 { ", " } else { "" };
                write!(f, "{sep}{p}: {m}")?;
            }
            f.write_str("}")?;
        }
        if s.role == Role::Candidate {
            f.write_str(" votes {")?;
            for (i, v) in s.votes_granted.iter().enumerate() {
                let sep = if i > 0 { ", " } else { "" };
                write!(f, "{sep}{v}")?;
            }
            f.write_str("}")?;
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
