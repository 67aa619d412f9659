//! Client histories of the key-value service and their linearizability check.
//!
//! Each operation's invocation and return are recorded in real-time order (virtual time in the
//! simulator, wall-clock in the process soak). The check is stateright's
//! [`LinearizabilityTester`] (Herlihy & Wing linearizability against a sequential
//! specification), run per key: every operation touches one key, and linearizability is local
//! (a history is linearizable iff its restriction to each object is), which keeps the search
//! small. An operation whose outcome is unknown (the client gave up: a timeout) is left in
//! flight forever, as in Jepsen: the tester may linearize it at any point after its invocation,
//! or never. The client then goes on as a new logical thread.

use raft_impl::kv::{Op, OpResult};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};
use std::collections::BTreeMap;
use std::time::Duration;

/// An operation on one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyOp {
    Put(String),
    Get,
    Cas {
        expected: Option<String>,
        new: String,
    },
}

/// The sequential specification of one key: the service's own semantics (put and a
/// successful cas return the previous value, get the current one, a failed cas the current).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Register(pub Option<String>);

impl SequentialSpec for Register {
    type Op = KeyOp;
    type Ret = OpResult;

    fn invoke(&mut self, op: &KeyOp) -> OpResult {
        match op {
            KeyOp::Put(v) => OpResult::Value(self.0.replace(v.clone())),
            KeyOp::Get => OpResult::Value(self.0.clone()),
            KeyOp::Cas { expected, new } => {
                if self.0 == *expected {
                    OpResult::Value(self.0.replace(new.clone()))
                } else {
                    OpResult::CasMismatch {
                        current: self.0.clone(),
                    }
                }
            }
        }
    }
}

/// Splits a service operation into its key and the per-key operation.
pub fn key_op(op: &Op) -> Result<(String, KeyOp), String> {
    match op {
        Op::Put { key, value } => Ok((key.clone(), KeyOp::Put(value.clone()))),
        Op::Get { key } => Ok((key.clone(), KeyOp::Get)),
        Op::Cas { key, expected, new } => Ok((
            key.clone(),
            KeyOp::Cas {
                expected: expected.clone(),
                new: new.clone(),
            },
        )),
        Op::Delete { .. } => Err("delete is not part of the checked workload".into()),
    }
}

#[derive(Clone, Debug)]
pub enum Event {
    Invoke {
        thread: u64,
        at: Duration,
        key: String,
        op: KeyOp,
    },
    Return {
        thread: u64,
        at: Duration,
        ret: OpResult,
    },
}

/// A history: events in real-time order.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub events: Vec<Event>,
}

/// What a history came to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub invoked: usize,
    /// Operations that returned (definite outcomes).
    pub returned: usize,
    /// Operations left in flight (indefinite outcomes).
    pub indefinite: usize,
}

impl History {
    pub fn invoke(&mut self, thread: u64, at: Duration, op: &Op) -> Result<(), String> {
        let (key, op) = key_op(op)?;
        self.events.push(Event::Invoke {
            thread,
            at,
            key,
            op,
        });
        Ok(())
    }

    pub fn ret(&mut self, thread: u64, at: Duration, ret: OpResult) {
        self.events.push(Event::Return { thread, at, ret });
    }

    pub fn summary(&self) -> Summary {
        let invoked = self
            .events
            .iter()
            .filter(|e| matches!(e, Event::Invoke { .. }))
            .count();
        let returned = self.events.len() - invoked;
        Summary {
            invoked,
            returned,
            indefinite: invoked - returned,
        }
    }

    /// Checks the history key by key with stateright's [`LinearizabilityTester`]; on a
    /// violation, the error shows the offending key's history.
    pub fn check(&self) -> Result<(), String> {
        let mut testers: BTreeMap<&str, LinearizabilityTester<u64, Register>> = BTreeMap::new();
        let mut key_of_thread: BTreeMap<u64, &str> = BTreeMap::new();
        for e in &self.events {
            match e {
                Event::Invoke {
                    thread, key, op, ..
                } => {
                    key_of_thread.insert(*thread, key);
                    testers
                        .entry(key)
                        .or_insert_with(|| LinearizabilityTester::new(Register(None)))
                        .on_invoke(*thread, op.clone())?;
                }
                Event::Return { thread, ret, .. } => {
                    let key = key_of_thread
                        .get(thread)
                        .ok_or_else(|| format!("thread {thread} returns without an invocation"))?;
                    testers
                        .get_mut(key)
                        .ok_or("no tester")?
                        .on_return(*thread, ret.clone())?;
                }
            }
        }
        for (key, tester) in &testers {
            if !tester.is_consistent() {
                return Err(format!(
                    "history of key {key:?} is not linearizable:\n{}",
                    self.render_key(key)
                ));
            }
        }
        Ok(())
    }

    fn render_key(&self, key: &str) -> String {
        let mut lines = Vec::new();
        let mut key_of_thread: BTreeMap<u64, &str> = BTreeMap::new();
        for e in &self.events {
            match e {
                Event::Invoke {
                    thread,
                    at,
                    key: k,
                    op,
                } => {
                    key_of_thread.insert(*thread, k);
                    if k == key {
                        lines.push(format!("  {at:>12?} t{thread} invoke {op:?}"));
                    }
                }
                Event::Return { thread, at, ret } if key_of_thread.get(thread) == Some(&key) => {
                    lines.push(format!("  {at:>12?} t{thread} return {ret:?}"))
                }
                _ => {}
            }
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> Op {
        Op::Put {
            key: k.into(),
            value: v.into(),
        }
    }
    fn get(k: &str) -> Op {
        Op::Get { key: k.into() }
    }
    fn val(v: Option<&str>) -> OpResult {
        OpResult::Value(v.map(String::from))
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_caught() {
        let mut h = History::default();
        let t = Duration::ZERO;
        h.invoke(0, t, &put("k", "a")).unwrap();
        h.ret(0, t, val(None));
        h.invoke(1, t, &get("k")).unwrap();
        h.ret(1, t, val(None));
        assert!(h.check().is_err());
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        let mut h = History::default();
        let t = Duration::ZERO;
        h.invoke(0, t, &put("k", "a")).unwrap();
        h.invoke(1, t, &get("k")).unwrap();
        h.ret(1, t, val(None));
        h.ret(0, t, val(None));
        h.check().unwrap();
    }

    #[test]
    fn an_indefinite_write_may_or_may_not_have_happened() {
        for seen in [None, Some("a")] {
            let mut h = History::default();
            let t = Duration::ZERO;
            h.invoke(0, t, &put("k", "a")).unwrap(); // never returns
            h.invoke(1, t, &get("k")).unwrap();
            h.ret(1, t, val(seen));
            h.check().unwrap();
        }
        // But not both: once seen, a later read cannot miss it.
        let mut h = History::default();
        let t = Duration::ZERO;
        h.invoke(0, t, &put("k", "a")).unwrap();
        h.invoke(1, t, &get("k")).unwrap();
        h.ret(1, t, val(Some("a")));
        h.invoke(1, t, &get("k")).unwrap();
        h.ret(1, t, val(None));
        assert!(h.check().is_err());
    }

    #[test]
    fn keys_are_independent() {
        let mut h = History::default();
        let t = Duration::ZERO;
        h.invoke(0, t, &put("a", "1")).unwrap();
        h.ret(0, t, val(None));
        h.invoke(0, t, &get("b")).unwrap();
        h.ret(0, t, val(None));
        h.check().unwrap();
    }
}
