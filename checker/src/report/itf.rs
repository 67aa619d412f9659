//! Counterexamples in the Informal Trace Format (ITF) of Apalache and Quint
//! (<https://apalache-mc.org/docs/adr/015adr-trace.html>): one ITF state per step, with the
//! variables named as in the paper and its TLA+ specification (`raft.tla`).
//!
//! Encoding: integers are `{"#bigint": "N"}`, sets `{"#set": [...]}`, functions keyed by server
//! name `{"#map": [[key, value], ...]}`, records plain JSON objects. A server that voted for
//! no one has `votedFor` = `"Nil"` (raft.tla's `Nil`). `messages` is a set of records (with
//! raft.tla's field names `mtype`, `mterm`, `msource`, `mdest`, ...) and `mcount` copies each.

use crate::report::counterexample::{MessageView, StepView, TraceView};
use raft_core::Message;
use raft_model::model::{ClientOp, ClientReply, Msg};
use serde_json::{json, Map, Value};

/// The state variables of every ITF state, in order.
pub const VARS: [&str; 13] = [
    "currentTerm",
    "votedFor",
    "log",
    "commitIndex",
    "lastApplied",
    "state",
    "nextIndex",
    "matchIndex",
    "votesGranted",
    "crashed",
    "messages",
    "clientSeq",
    "action",
];

fn big(n: u64) -> Value {
    json!({ "#bigint": n.to_string() })
}

fn set(items: Vec<Value>) -> Value {
    json!({ "#set": items })
}

fn map(pairs: impl IntoIterator<Item = (Value, Value)>) -> Value {
    let pairs: Vec<Value> = pairs.into_iter().map(|(k, v)| json!([k, v])).collect();
    json!({ "#map": pairs })
}

/// A function from server name to a value.
fn per_server(
    step: &StepView,
    f: impl Fn(&crate::report::counterexample::ServerView) -> Value,
) -> Value {
    map(step.servers.iter().map(|s| (json!(s.name), f(s))))
}

fn entry(term: u64, value: String) -> Value {
    json!({ "term": big(term), "value": value })
}

fn message(m: &MessageView) -> Value {
    let mut r = Map::new();
    let mut put = |k: &str, v: Value| {
        r.insert(k.to_string(), v);
    };
    match &m.raw {
        Msg::Raft(raw @ (Message::RequestVote(m) | Message::PreVote(m))) => {
            let kind = if matches!(raw, Message::PreVote(_)) {
                "PreVoteRequest"
            } else {
                "RequestVoteRequest"
            };
            put("mtype", json!(kind));
            put("mterm", big(m.term));
            put("mlastLogIndex", big(m.last_log_index));
            put("mlastLogTerm", big(m.last_log_term));
        }
        Msg::Raft(raw @ (Message::RequestVoteResponse(m) | Message::PreVoteResponse(m))) => {
            let kind = if matches!(raw, Message::PreVoteResponse(_)) {
                "PreVoteResponse"
            } else {
                "RequestVoteResponse"
            };
            put("mtype", json!(kind));
            put("mterm", big(m.term));
            put("mvoteGranted", json!(m.vote_granted));
        }
        Msg::Raft(Message::AppendEntries(m)) => {
            put("mtype", json!("AppendEntriesRequest"));
            put("mterm", big(m.term));
            put("mprevLogIndex", big(m.prev_log_index));
            put("mprevLogTerm", big(m.prev_log_term));
            let es = m
                .entries
                .iter()
                .map(|e| entry(e.term, e.command.to_string()))
                .collect();
            put("mentries", Value::Array(es));
            put("mcommitIndex", big(m.leader_commit));
        }
        Msg::Raft(Message::TimeoutNow(m)) => {
            put("mtype", json!("TimeoutNow"));
            put("mterm", big(m.term));
            put("mlastLogIndex", big(m.last_log_index));
            put("mlastLogTerm", big(m.last_log_term));
        }
        Msg::Raft(Message::InstallSnapshot(m)) => {
            put("mtype", json!("InstallSnapshotRequest"));
            put("mterm", big(m.term));
            put("mlastIncludedIndex", big(m.snapshot.last_included_index));
            put("mlastIncludedTerm", big(m.snapshot.last_included_term));
        }
        Msg::Raft(Message::AppendEntriesResponse(m)) => {
            put("mtype", json!("AppendEntriesResponse"));
            put("mterm", big(m.term));
            put("msuccess", json!(m.success));
            put("mmatchIndex", big(m.match_index));
        }
        Msg::Request { seq, op } => {
            put("mtype", json!("ClientRequest"));
            put("mseq", big(u64::from(*seq)));
            put(
                "mop",
                json!(match op {
                    ClientOp::Put(_) => "put",
                    ClientOp::Get => "get",
                    ClientOp::Config(_) => "config",
                }),
            );
            if let ClientOp::Put(v) = op {
                put("mvalue", big(u64::from(*v)));
            }
        }
        Msg::Reply { seq, reply } => {
            put("mtype", json!("ClientResponse"));
            put("mseq", big(u64::from(*seq)));
            let text = match reply {
                ClientReply::PutOk | ClientReply::GetOk(_) => "ok",
                ClientReply::Stale => "stale",
                ClientReply::NotLeader(_) => "notLeader",
            };
            put("mresult", json!(text));
        }
    }
    put("msource", json!(m.src));
    put("mdest", json!(m.dst));
    put("mtext", json!(m.msg));
    put("mcount", big(m.count));
    Value::Object(r)
}

/// One ITF state.
pub fn state(step: &StepView) -> Value {
    let mut s = Map::new();
    s.insert("#meta".into(), json!({ "index": step.index }));
    let vars: [(&str, Value); 13] = [
        ("currentTerm", per_server(step, |v| big(v.current_term))),
        (
            "votedFor",
            per_server(step, |v| json!(v.voted_for.as_deref().unwrap_or("Nil"))),
        ),
        (
            "log",
            per_server(step, |v| {
                Value::Array(
                    v.log
                        .iter()
                        .map(|e| entry(e.term, e.command.clone()))
                        .collect(),
                )
            }),
        ),
        ("commitIndex", per_server(step, |v| big(v.commit_index))),
        ("lastApplied", per_server(step, |v| big(v.last_applied))),
        ("state", per_server(step, |v| json!(v.state))),
        (
            "nextIndex",
            per_server(step, |v| {
                map(v.next_index.iter().map(|(p, n)| (json!(p), big(*n))))
            }),
        ),
        (
            "matchIndex",
            per_server(step, |v| {
                map(v.match_index.iter().map(|(p, n)| (json!(p), big(*n))))
            }),
        ),
        (
            "votesGranted",
            per_server(step, |v| {
                set(v.votes_granted.iter().map(|p| json!(p)).collect())
            }),
        ),
        ("crashed", per_server(step, |v| json!(v.crashed))),
        ("messages", set(step.messages.iter().map(message).collect())),
        (
            "clientSeq",
            map(step.clients.iter().map(|c| (json!(c.name), big(c.seq)))),
        ),
        (
            "action",
            json!(step.action.as_deref().unwrap_or("initial state")),
        ),
    ];
    for (name, value) in vars {
        debug_assert!(VARS.contains(&name));
        s.insert(name.into(), value);
    }
    Value::Object(s)
}

/// The whole trace as one ITF document.
pub fn document(trace: &TraceView) -> Value {
    json!({
        "#meta": {
            "format": "ITF",
            "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
            "source": "raft-check",
            "description": format!(
                "Counterexample: \"{}\" is violated after {} steps",
                trace.property, trace.length
            ),
            "property": trace.property,
            "mutant": trace.config.mutant,
        },
        "vars": VARS,
        "states": trace.states.iter().map(state).collect::<Vec<_>>(),
    })
}
