//! A counterexample's states as plain data named after the paper (Figure 2), for the JSON and
//! ITF trace exports. Built from the model's state; rendered text comes from `display.rs`.

use crate::report::text_trace::{self, Action};
use raft_core::Role;
use raft_model::model::display::{actor_name, server_count, StateDisplay};
use raft_model::model::{ModelConfig, Msg, RaftState};
use serde::Serialize;
use stateright::Path;
use std::collections::BTreeMap;

/// One log entry: its index, term and command.
#[derive(Serialize, Clone, Debug)]
pub struct EntryView {
    pub index: u64,
    pub term: u64,
    pub command: String,
}

/// One server's variables, as in Figure 2, plus whether it is crashed.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ServerView {
    pub name: String,
    /// "Follower", "Candidate" or "Leader".
    pub state: &'static str,
    pub current_term: u64,
    pub voted_for: Option<String>,
    pub log: Vec<EntryView>,
    pub commit_index: u64,
    pub last_applied: u64,
    /// Leaders only (empty otherwise).
    pub next_index: BTreeMap<String, u64>,
    pub match_index: BTreeMap<String, u64>,
    /// Candidates only (empty otherwise).
    pub votes_granted: Vec<String>,
    pub crashed: bool,
}

/// One message in flight, `count` copies of it.
#[derive(Serialize, Clone, Debug)]
pub struct MessageView {
    pub src: String,
    pub dst: String,
    pub msg: String,
    #[serde(skip)]
    pub raw: Msg,
    pub count: u64,
}

/// One client: the index of its operation in progress.
#[derive(Serialize, Clone, Debug)]
pub struct ClientView {
    pub name: String,
    pub seq: u64,
}

/// One state of a trace and the action that led to it.
#[derive(Serialize, Clone, Debug)]
pub struct StepView {
    pub index: usize,
    pub action: Option<String>,
    pub servers: Vec<ServerView>,
    pub messages: Vec<MessageView>,
    pub clients: Vec<ClientView>,
    /// The state as the Explorer shows it.
    pub text: String,
}

/// A counterexample: the property it violates and every state along it.
#[derive(Serialize, Clone, Debug)]
pub struct TraceView {
    pub property: String,
    pub config: ModelConfig,
    /// Steps (actions); `states` has one more entry, the initial state.
    pub length: usize,
    pub states: Vec<StepView>,
}

fn role(r: Role) -> &'static str {
    match r {
        Role::Follower => "Follower",
        Role::PreCandidate => "PreCandidate",
        Role::Candidate => "Candidate",
        Role::Leader => "Leader",
    }
}

/// The view of one state reached by `action` (none for the initial state).
pub fn step(
    cfg: &ModelConfig,
    index: usize,
    state: &RaftState,
    action: Option<&Action>,
) -> StepView {
    let servers = server_count(state);
    let mut server_views = Vec::new();
    let mut clients = Vec::new();
    for (i, actor) in state.actor_states().enumerate() {
        let name = actor_name(servers, i);
        if let Some(s) = actor.as_server() {
            let s = &s.server;
            let leader = s.role == Role::Leader;
            server_views.push(ServerView {
                name,
                state: role(s.role),
                current_term: s.current_term(),
                voted_for: s.voted_for().map(|v| v.to_string()),
                log: s
                    .log()
                    .iter()
                    .enumerate()
                    .map(|(k, e)| EntryView {
                        index: k as u64 + 1,
                        term: e.term,
                        command: e.command.to_string(),
                    })
                    .collect(),
                commit_index: s.commit_index,
                last_applied: s.last_applied,
                next_index: if leader {
                    s.leader
                        .progress
                        .iter()
                        .map(|(p, g)| (p.to_string(), g.next_index))
                        .collect()
                } else {
                    BTreeMap::new()
                },
                match_index: if leader {
                    s.leader
                        .progress
                        .iter()
                        .map(|(p, g)| (p.to_string(), g.match_index))
                        .collect()
                } else {
                    BTreeMap::new()
                },
                votes_granted: if matches!(s.role, Role::Candidate | Role::PreCandidate) {
                    s.votes_granted.iter().map(|v| v.to_string()).collect()
                } else {
                    Vec::new()
                },
                crashed: state.is_crashed(i),
            });
        } else if let Some(c) = actor.as_client() {
            clients.push(ClientView {
                name,
                seq: u64::from(c.seq),
            });
        }
    }
    let mut counted: BTreeMap<(usize, usize, &Msg), u64> = BTreeMap::new();
    for env in state.network.iter_all() {
        *counted
            .entry((usize::from(env.src), usize::from(env.dst), env.msg))
            .or_default() += 1;
    }
    let messages = counted
        .into_iter()
        .map(|((src, dst, msg), count)| MessageView {
            src: actor_name(servers, src),
            dst: actor_name(servers, dst),
            msg: msg.to_string(),
            raw: msg.clone(),
            count,
        })
        .collect();
    StepView {
        index,
        action: action.map(|a| text_trace::format_action(cfg, a)),
        servers: server_views,
        messages,
        clients,
        text: StateDisplay(state).to_string(),
    }
}

/// Every state of `path`, the counterexample to `property`.
pub fn trace(cfg: &ModelConfig, property: &str, path: &Path<RaftState, Action>) -> TraceView {
    let steps = path.clone().into_vec();
    let mut states = Vec::new();
    let mut previous: Option<&Action> = None;
    for (k, (state, next_action)) in steps.iter().enumerate() {
        states.push(step(cfg, k, state, previous));
        previous = next_action.as_ref();
    }
    TraceView {
        property: property.to_string(),
        config: cfg.clone(),
        length: steps.len().saturating_sub(1),
        states,
    }
}
