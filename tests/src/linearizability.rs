//! Client histories of the key-value service and their linearizability check.
//!
//! Each operation's invocation and return are recorded in real-time order (virtual time in the
//! simulator, wall-clock in the process soak). Linearizability (Herlihy & Wing) against the
//! sequential specification [`Register`] is checked per key: every operation touches one key,
//! and linearizability is local (a history is linearizable iff its restriction to each object
//! is). An operation whose outcome is unknown (the client gave up: a timeout) is left in flight
//! forever, as in Jepsen: it may take effect at any point after its invocation, or never. The
//! client then goes on as a new logical thread.
//!
//! Two checkers: [`History::check`] is the Wing–Gong search with Lowe's memoization of
//! (linearized set, state) pairs, as in Porcupine and Knossos, whose cost stays bounded on
//! non-linearizable histories too; [`History::check_stateright`] is stateright's
//! [`LinearizabilityTester`], an unmemoized depth-first search that is exponential on a
//! violation. The tests below show both agree on generated histories (a proptest), and the
//! suite uses the first.

use raft_impl::kv::{Op, OpResult};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};
use std::collections::BTreeMap;
use std::time::Duration;

/// An operation on one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyOp {
    Put(String),
    Get,
    /// Removes the key; returns the previous value (as the service does).
    Delete,
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
            KeyOp::Delete => OpResult::Value(self.0.take()),
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
        Op::Delete { key } => Ok((key.clone(), KeyOp::Delete)),
        Op::Reconfigure { .. } => Err("a configuration entry is not a client operation".into()),
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

    /// Checks the history key by key with the memoized Wing–Gong search; on a violation, the
    /// error shows the offending key's history.
    pub fn check(&self) -> Result<(), String> {
        let mut per_key: BTreeMap<&str, Vec<OpRecord>> = BTreeMap::new();
        let mut open: BTreeMap<u64, (&str, usize)> = BTreeMap::new();
        for (pos, e) in self.events.iter().enumerate() {
            match e {
                Event::Invoke {
                    thread, key, op, ..
                } => {
                    let ops = per_key.entry(key).or_default();
                    if open.insert(*thread, (key, ops.len())).is_some() {
                        return Err(format!("thread {thread} invokes twice without a return"));
                    }
                    ops.push(OpRecord {
                        op: op.clone(),
                        call: pos,
                        ret: None,
                    });
                }
                Event::Return { thread, ret, .. } => {
                    let (key, k) = open
                        .remove(thread)
                        .ok_or_else(|| format!("thread {thread} returns without an invocation"))?;
                    if let Some(ops) = per_key.get_mut(key) {
                        ops[k].ret = Some((pos, ret.clone()));
                    }
                }
            }
        }
        for (key, ops) in &per_key {
            if !linearizable(ops) {
                return Err(format!(
                    "history of key {key:?} is not linearizable:\n{}",
                    self.render_key(key)
                ));
            }
        }
        Ok(())
    }

    /// The same check with stateright's [`LinearizabilityTester`] (exponential on violations:
    /// for small histories).
    pub fn check_stateright(&self) -> Result<(), String> {
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

/// One operation on one key: its position in the history, and its return (position and
/// value), `None` if indefinite.
struct OpRecord {
    op: KeyOp,
    call: usize,
    ret: Option<(usize, OpResult)>,
}

/// Wing & Gong's search for a linearization, with Lowe's cache of visited (linearized set,
/// register state) configurations. Calls and returns form a doubly linked list in real-time
/// order; an indefinite operation's return sits after everything, so it may be linearized
/// anywhere after its call, including last (where it affects no observed result: as if it
/// never happened).
fn linearizable(ops: &[OpRecord]) -> bool {
    let n = ops.len();
    // Entries: (position, op, is_call); indefinite returns after every recorded event.
    let mut entries: Vec<(usize, usize, bool)> = Vec::with_capacity(2 * n);
    for (id, op) in ops.iter().enumerate() {
        entries.push((op.call, id, true));
        let ret_pos = op.ret.as_ref().map_or(usize::MAX - n + id, |(p, _)| *p);
        entries.push((ret_pos, id, false));
    }
    entries.sort();
    let m = entries.len();
    let (head, tail) = (m, m + 1);
    let mut next: Vec<usize> = (0..m + 2).map(|i| i + 1).collect();
    let mut prev: Vec<usize> = (0..m + 2).map(|i| i.wrapping_sub(1)).collect();
    next[head] = if m == 0 { tail } else { 0 };
    prev[0] = head;
    if m > 0 {
        next[m - 1] = tail;
        prev[tail] = m - 1;
    } else {
        prev[tail] = head;
    }
    let mut ret_entry = vec![0; n];
    for (i, &(_, id, is_call)) in entries.iter().enumerate() {
        if !is_call {
            ret_entry[id] = i;
        }
    }
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, e: usize| {
        let (p, q) = (prev[e], next[e]);
        next[p] = q;
        prev[q] = p;
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, e: usize| {
        let (p, q) = (prev[e], next[e]);
        next[p] = e;
        prev[q] = e;
    };
    let words = n.div_ceil(64).max(1);
    let mut linearized = vec![0u64; words];
    let mut cache: std::collections::HashSet<(Vec<u64>, Register)> = Default::default();
    let mut stack: Vec<(usize, Register)> = Vec::new();
    let mut state = Register(None);
    let mut e = next[head];
    while next[head] != tail {
        if e == tail {
            // Only reachable with nothing left to try at this level: backtrack.
            let Some((call, s)) = stack.pop() else {
                return false;
            };
            let id = entries[call].1;
            state = s;
            linearized[id / 64] &= !(1 << (id % 64));
            relink(&mut next, &mut prev, ret_entry[id]);
            relink(&mut next, &mut prev, call);
            e = next[call];
            continue;
        }
        let (_, id, is_call) = entries[e];
        if is_call {
            let mut s2 = state.clone();
            let got = s2.invoke(&ops[id].op);
            let ok = ops[id].ret.as_ref().is_none_or(|(_, r)| *r == got);
            if ok {
                linearized[id / 64] |= 1 << (id % 64);
                if cache.insert((linearized.clone(), s2.clone())) {
                    stack.push((e, std::mem::replace(&mut state, s2)));
                    unlink(&mut next, &mut prev, e);
                    unlink(&mut next, &mut prev, ret_entry[id]);
                    e = next[head];
                    continue;
                }
                linearized[id / 64] &= !(1 << (id % 64));
            }
            e = next[e];
        } else {
            // A return whose call is not linearized yet: something earlier must change.
            let Some((call, s)) = stack.pop() else {
                return false;
            };
            let cid = entries[call].1;
            state = s;
            linearized[cid / 64] &= !(1 << (cid % 64));
            relink(&mut next, &mut prev, ret_entry[cid]);
            relink(&mut next, &mut prev, call);
            e = next[call];
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Both checkers, which must agree.
    fn check_both(h: &History) -> Result<(), String> {
        let ours = h.check();
        let theirs = h.check_stateright();
        assert_eq!(ours.is_ok(), theirs.is_ok(), "checkers disagree on {h:?}");
        ours
    }

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
        assert!(check_both(&h).is_err());
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        let mut h = History::default();
        let t = Duration::ZERO;
        h.invoke(0, t, &put("k", "a")).unwrap();
        h.invoke(1, t, &get("k")).unwrap();
        h.ret(1, t, val(None));
        h.ret(0, t, val(None));
        check_both(&h).unwrap();
    }

    #[test]
    fn an_indefinite_write_may_or_may_not_have_happened() {
        for seen in [None, Some("a")] {
            let mut h = History::default();
            let t = Duration::ZERO;
            h.invoke(0, t, &put("k", "a")).unwrap(); // never returns
            h.invoke(1, t, &get("k")).unwrap();
            h.ret(1, t, val(seen));
            check_both(&h).unwrap();
        }
        // But not both: once seen, a later read cannot miss it.
        let mut h = History::default();
        let t = Duration::ZERO;
        h.invoke(0, t, &put("k", "a")).unwrap();
        h.invoke(1, t, &get("k")).unwrap();
        h.ret(1, t, val(Some("a")));
        h.invoke(1, t, &get("k")).unwrap();
        h.ret(1, t, val(None));
        assert!(check_both(&h).is_err());
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        let key = prop::sample::select(vec!["a", "b"]).prop_map(String::from);
        let val = prop::sample::select(vec!["1", "2"]).prop_map(String::from);
        prop_oneof![
            (key.clone(), val.clone()).prop_map(|(key, value)| Op::Put { key, value }),
            key.clone().prop_map(|key| Op::Get { key }),
            key.clone().prop_map(|key| Op::Delete { key }),
            (key, prop::option::of(val.clone()), val).prop_map(|(key, expected, new)| Op::Cas {
                key,
                expected,
                new
            }),
        ]
    }

    fn arb_ret() -> impl Strategy<Value = OpResult> {
        let v = prop::option::of(prop::sample::select(vec!["1", "2"]).prop_map(String::from));
        prop_oneof![
            4 => v.clone().prop_map(OpResult::Value),
            1 => v.prop_map(|current| OpResult::CasMismatch { current }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// On generated histories (3 threads, up to 9 operations, tiny value domains so that
        /// both outcomes are common; some operations never return), our memoized checker and
        /// stateright's LinearizabilityTester give the same verdict.
        #[test]
        fn our_checker_agrees_with_stateright(
            steps in prop::collection::vec((0u64..3, arb_op(), arb_ret(), 0u8..10), 1..18)
        ) {
            let mut h = History::default();
            let mut open = std::collections::BTreeSet::new();
            let mut invoked = 0;
            let t = Duration::ZERO;
            for (thread, op, ret, p) in steps {
                if open.contains(&thread) {
                    if p < 8 {
                        open.remove(&thread);
                        h.ret(thread, t, ret);
                    }
                    // else: stays in flight forever (indefinite)
                } else if invoked < 9 {
                    invoked += 1;
                    open.insert(thread);
                    h.invoke(thread, t, &op).unwrap();
                }
            }
            let ours = h.check().is_ok();
            let theirs = h.check_stateright().is_ok();
            prop_assert_eq!(ours, theirs, "{:?}", h);
        }
    }

    /// Seeded generation of 3,000 histories like the proptest's: the checkers agree on every
    /// one, and both verdicts are common (so the agreement means something).
    #[test]
    fn both_verdicts_occur_and_the_checkers_agree_on_them() {
        let mut rng = fastrand::Rng::with_seed(7);
        let vals = ["1", "2"];
        let (mut yes, mut no) = (0, 0);
        for _ in 0..3000 {
            let mut h = History::default();
            let mut open = [false; 3];
            let mut invoked = 0;
            for _ in 0..rng.usize(1..18) {
                let thread = rng.usize(0..3);
                let v = |rng: &mut fastrand::Rng| {
                    (rng.u8(0..3) > 0).then(|| vals[rng.usize(0..2)].to_string())
                };
                if open[thread] {
                    if rng.u8(0..10) < 8 {
                        open[thread] = false;
                        let ret = if rng.u8(0..5) == 0 {
                            OpResult::CasMismatch {
                                current: v(&mut rng),
                            }
                        } else {
                            OpResult::Value(v(&mut rng))
                        };
                        h.ret(thread as u64, Duration::ZERO, ret);
                    }
                } else if invoked < 9 {
                    invoked += 1;
                    open[thread] = true;
                    let key = ["a", "b"][rng.usize(0..2)].to_string();
                    let op = match rng.u8(0..3) {
                        0 => Op::Put {
                            key,
                            value: vals[rng.usize(0..2)].into(),
                        },
                        1 => Op::Get { key },
                        _ => Op::Cas {
                            key,
                            expected: v(&mut rng),
                            new: vals[rng.usize(0..2)].into(),
                        },
                    };
                    h.invoke(thread as u64, Duration::ZERO, &op).unwrap();
                }
            }
            if check_both(&h).is_ok() {
                yes += 1;
            } else {
                no += 1;
            }
        }
        assert!(yes > 400 && no > 400, "linearizable {yes}, not {no}");
    }

    #[test]
    fn a_delete_returns_the_previous_value_and_empties_the_key() {
        let mut h = History::default();
        let t = Duration::ZERO;
        h.invoke(0, t, &put("k", "a")).unwrap();
        h.ret(0, t, val(None));
        h.invoke(0, t, &Op::Delete { key: "k".into() }).unwrap();
        h.ret(0, t, val(Some("a")));
        h.invoke(1, t, &get("k")).unwrap();
        h.ret(1, t, val(None));
        check_both(&h).unwrap();
        // A read of the deleted value after the delete returned is stale.
        h.invoke(1, t, &get("k")).unwrap();
        h.ret(1, t, val(Some("a")));
        assert!(check_both(&h).is_err());
    }

    #[test]
    fn keys_are_independent() {
        let mut h = History::default();
        let t = Duration::ZERO;
        h.invoke(0, t, &put("a", "1")).unwrap();
        h.ret(0, t, val(None));
        h.invoke(0, t, &get("b")).unwrap();
        h.ret(0, t, val(None));
        check_both(&h).unwrap();
    }
}
