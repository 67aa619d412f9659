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
#[derive(Clone, Debug, Default, PartialEq, Hash)]
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

#[derive(Clone, Debug, PartialEq, Hash)]
pub struct Recorded {
    pub tester: LinearizabilityTester<Id, Register<Option<Value>>>,
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
    let _ = h.tester.on_return(env.dst, ret);
    Some(History(Shared::new(h)))
}
