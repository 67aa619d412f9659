//! The clients' history of invocations and returns, checked for linearizability against a
//! sequential register with stateright's `LinearizabilityTester`.

use crate::model::config::ModelConfig;
use crate::model::judge::register::{ClientOp, ClientReply, Msg, Value};
use crate::model::shared::Shared;
use stateright::actor::{Envelope, Id};
use stateright::semantics::register::{Register, RegisterOp, RegisterRet};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};
use std::collections::BTreeMap;

/// The recorded history; shared (`Arc`) because every successor state clones it and few steps
/// change it.
#[derive(Clone, Debug, Default, PartialEq, Hash, serde::Serialize, serde::Deserialize)]
pub struct History(Shared<Recorded>);

impl std::ops::Deref for History {
    type Target = Recorded;
    fn deref(&self) -> &Recorded {
        &self.0
    }
}

impl From<Recorded> for History {
    fn from(r: Recorded) -> Self {
        History(Shared::new(r))
    }
}

#[derive(Clone, Debug, PartialEq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "Wire", from = "Wire")]
pub struct Recorded {
    pub tester: LinearizabilityTester<Id, Register<Option<Value>>>,
    /// What was asked of the tester, in order (`record_out`, `record_in`).
    pub calls: Calls,
    /// The sequence number each client last invoked (a resend after a not-leader reply is the
    /// same invocation).
    pub invoked: BTreeMap<Id, u8>,
    /// The invocation each client waits on (invoked, not yet returned). A reply to anything else
    /// (a late copy for an earlier request: a leader applying a retried command again, or
    /// re-applying after a restart) is not a return: the client ignores it too.
    pub pending: BTreeMap<Id, u8>,
    /// Witness: some read returned a written value.
    pub read_returned_value: bool,
}

impl Default for Recorded {
    fn default() -> Self {
        Recorded {
            tester: LinearizabilityTester::new(Register(None)),
            calls: Calls::default(),
            invoked: BTreeMap::new(),
            pending: BTreeMap::new(),
            read_returned_value: false,
        }
    }
}

pub(crate) fn record_out(_cfg: &ModelConfig, h: &History, env: Envelope<&Msg>) -> Option<History> {
    let Msg::Request { seq, op } = env.msg else {
        return None;
    };
    if h.invoked.get(&env.src) == Some(seq) {
        return None;
    }
    let mut h = (*h.0).clone();
    h.invoked.insert(env.src, *seq);
    h.pending.insert(env.src, *seq);
    let op = match op {
        ClientOp::Put(v) => RegisterOp::Write(Some(*v)),
        ClientOp::Get => RegisterOp::Read,
        ClientOp::Config(_) => return None,
    };
    h.calls.0.push(Call::Invoke(env.src, op.clone()));
    let _ = h.tester.on_invoke(env.src, op);
    Some(History(Shared::new(h)))
}

pub(crate) fn record_in(_cfg: &ModelConfig, h: &History, env: Envelope<&Msg>) -> Option<History> {
    let Msg::Reply { seq, reply } = env.msg else {
        return None;
    };
    let ret = match reply {
        ClientReply::PutOk => RegisterRet::WriteOk,
        ClientReply::GetOk(v) => RegisterRet::ReadOk(*v),
        ClientReply::NotLeader(_) | ClientReply::Stale => return None,
    };
    if h.pending.get(&env.dst) != Some(seq) {
        return None;
    }
    let mut h = (*h.0).clone();
    h.pending.remove(&env.dst);
    if matches!(reply, ClientReply::GetOk(Some(_))) {
        h.read_returned_value = true;
    }
    // An invalid history (a return without an invocation) makes the tester report the history
    // as not linearizable, which the property then flags.
    h.calls.0.push(Call::Return(env.dst, ret.clone()));
    let _ = h.tester.on_return(env.dst, ret);
    Some(History(Shared::new(h)))
}

/// One call to the tester.
#[derive(Clone, Debug)]
pub enum Call {
    Invoke(Id, RegisterOp<Option<Value>>),
    Return(Id, RegisterRet<Option<Value>>),
}

/// The tester's calls, in order. stateright keeps the tester's fields private, so a history
/// travels between processes (the distributed engine, `checker/src/engine/owned.rs`) as these
/// calls, replayed where it arrives. Not part of the history's identity: equal testers are
/// equal histories, however they were reached (the calls neither hash nor compare).
#[derive(Clone, Debug, Default)]
pub struct Calls(pub Vec<Call>);

impl PartialEq for Calls {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::hash::Hash for Calls {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

/// A call as it travels: who, and a write's value, a read (`None`), a write's return or a
/// read's value (`None` for a write's return).
type WireCall = (bool, Id, Option<Option<Value>>);

/// A history as it travels: the calls and the client records; the tester is rebuilt.
#[derive(serde::Serialize, serde::Deserialize)]
struct Wire {
    calls: Vec<WireCall>,
    invoked: BTreeMap<Id, u8>,
    pending: BTreeMap<Id, u8>,
    read_returned_value: bool,
}

impl From<Recorded> for Wire {
    fn from(r: Recorded) -> Wire {
        let calls = r
            .calls
            .0
            .iter()
            .map(|c| match c {
                Call::Invoke(id, RegisterOp::Write(v)) => (true, *id, Some(*v)),
                Call::Invoke(id, RegisterOp::Read) => (true, *id, None),
                Call::Return(id, RegisterRet::WriteOk) => (false, *id, None),
                Call::Return(id, RegisterRet::ReadOk(v)) => (false, *id, Some(*v)),
            })
            .collect();
        Wire {
            calls,
            invoked: r.invoked,
            pending: r.pending,
            read_returned_value: r.read_returned_value,
        }
    }
}

impl From<Wire> for Recorded {
    fn from(w: Wire) -> Recorded {
        let mut r = Recorded {
            invoked: w.invoked,
            pending: w.pending,
            read_returned_value: w.read_returned_value,
            ..Recorded::default()
        };
        for (invoke, id, v) in w.calls {
            let call = match (invoke, v) {
                (true, Some(v)) => Call::Invoke(id, RegisterOp::Write(v)),
                (true, None) => Call::Invoke(id, RegisterOp::Read),
                (false, None) => Call::Return(id, RegisterRet::WriteOk),
                (false, Some(v)) => Call::Return(id, RegisterRet::ReadOk(v)),
            };
            // The same calls in the same order: the tester ends as the sender's did (an
            // invalid call is refused there as it was here).
            let _ = match &call {
                Call::Invoke(id, op) => r.tester.on_invoke(*id, op.clone()),
                Call::Return(id, ret) => r.tester.on_return(*id, ret.clone()),
            };
            r.calls.0.push(call);
        }
        r
    }
}
