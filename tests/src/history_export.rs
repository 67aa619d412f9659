//! Client histories as JSON files, for a linearizability checker we did not write (Porcupine,
//! `tests/porcupine/`), and the agreement run that checks every exported history with both.
//!
//! **Format** (`raft-tests-history/1`, one file per history):
//!
//! ```json
//! {"format": "raft-tests-history/1", "name": "sim-partitions-seed-3",
//!  "source": "simulator:linearizable_kv_partitions", "seed": 3,
//!  "injected": null, "expect": null,
//!  "operations": [
//!    {"id": 0, "client": 1, "kind": "put", "key": "k0", "value": "c1-1",
//!     "call": 0, "return": 3, "call_us": 0, "return_us": 41000,
//!     "output": {"kind": "value", "value": null}},
//!    {"id": 1, "client": 2, "kind": "cas", "key": "k0", "expected": null, "new": "c2-1",
//!     "call": 1, "return": null, "call_us": 0, "return_us": null, "output": null}]}
//! ```
//!
//! `kind` is `put` (`value`), `get`, `delete` or `cas` (`expected`, null for an absent key,
//! and `new`). `output` is what the client was told: `{"kind": "value", "value": V}` (put,
//! delete and a successful cas: the previous value; get: the current one; `null` for an
//! absent key), `{"kind": "cas-mismatch", "current": V}` or `{"kind": "stale-request",
//! "last_seq": N}`. `call` and `return` are the positions of the invocation and the return in
//! the recorder's real-time order of events (0, 1, 2, …; no two equal): they are the times both
//! checkers order operations by, so a tie of two clock readings is resolved the way the
//! recorder saw it. `call_us`/`return_us` are the clock readings (virtual time in the
//! simulator, wall-clock since the trial's start in the soak), for people.
//!
//! **An operation that never returned** (the client gave up after its deadline: Jepsen's
//! indefinite outcome) has `"return": null` and `"output": null`. It may have taken effect at
//! any moment after its call, or never. Our checker leaves it in flight forever; the Porcupine
//! program gives it `Return = math.MaxInt64` and an output its model accepts after any step
//! (it still applies the operation's effect), as 6.5840's kvraft tests do for a timed-out
//! write; linearized last, it changes nothing that anyone observed, which is "never".
//!
//! `expect` is `"violation"` when an injected fault guarantees a non-linearizable history (see
//! [`Injection`]), `"linearizable"` for the history of a correct run (a simulator run on a
//! correct disk, a soak trial: both checkers must find it linearizable, or the agreement run
//! fails), otherwise null (random histories, the broken disk's runs: either verdict).

use crate::lab::Params;
use crate::linearizability::{Event, History, KeyOp};
use crate::sim::capture::capturing;
use crate::sim::disk::DiskFaults;
use crate::sim::workload::Workload;
use crate::sim::{ms, Sim, SimOptions};
use crate::suite;
use raft_impl::kv::{Op, OpResult};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const FORMAT: &str = "raft-tests-history/1";

/// One operation of an exported history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The client's logical thread (a client that gave up goes on as a new one).
    pub client: u64,
    pub key: String,
    pub op: KeyOp,
    /// What the client was told; `None`: it never returned (unknown outcome).
    pub output: Option<OpResult>,
    /// Position of the invocation in the real-time order of events.
    pub call: u64,
    /// Position of the return; `None`: it never returned.
    pub ret: Option<u64>,
    pub call_us: u64,
    pub ret_us: Option<u64>,
}

/// One history file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    pub name: String,
    pub source: String,
    pub seed: Option<u64>,
    pub injected: Option<String>,
    /// The injection guarantees a violation.
    pub expect_violation: bool,
    /// A correct run's history: both checkers must find it linearizable.
    pub expect_linearizable: bool,
    /// How the run that recorded it ended, e.g. the suite test's failure (for people).
    pub note: Option<String>,
    pub ops: Vec<Operation>,
}

/// The operations of a recorded history, in invocation order.
pub fn operations(history: &History) -> Result<Vec<Operation>, String> {
    let mut ops: Vec<Operation> = Vec::new();
    let mut open: std::collections::BTreeMap<u64, usize> = Default::default();
    for (pos, e) in history.events.iter().enumerate() {
        let pos = pos as u64;
        match e {
            Event::Invoke {
                thread,
                at,
                key,
                op,
            } => {
                if open.insert(*thread, ops.len()).is_some() {
                    return Err(format!("thread {thread} invokes twice without a return"));
                }
                ops.push(Operation {
                    client: *thread,
                    key: key.clone(),
                    op: op.clone(),
                    output: None,
                    call: pos,
                    ret: None,
                    call_us: at.as_micros() as u64,
                    ret_us: None,
                });
            }
            Event::Return { thread, at, ret } => {
                let i = open
                    .remove(thread)
                    .ok_or_else(|| format!("thread {thread} returns without an invocation"))?;
                ops[i].output = Some(ret.clone());
                ops[i].ret = Some(pos);
                ops[i].ret_us = Some(at.as_micros() as u64);
            }
        }
    }
    Ok(ops)
}

/// The history our checker reads: events in the order of their times (a call before a return
/// at the same time, as Porcupine orders them: touching intervals overlap), each operation its
/// own thread (the checker's threads only pair calls with returns; Porcupine has no notion of
/// a client's program order either).
pub fn to_history(ops: &[Operation]) -> History {
    let mut points: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
    for (i, o) in ops.iter().enumerate() {
        points.push((o.call, 0, i));
        if let Some(r) = o.ret {
            points.push((r, 1, i));
        }
    }
    points.sort_unstable();
    let mut h = History::default();
    for (_, kind, i) in points {
        let o = &ops[i];
        if kind == 0 {
            h.events.push(Event::Invoke {
                thread: i as u64,
                at: Duration::from_micros(o.call_us),
                key: o.key.clone(),
                op: o.op.clone(),
            });
        } else if let Some(ret) = &o.output {
            h.events.push(Event::Return {
                thread: i as u64,
                at: Duration::from_micros(o.ret_us.unwrap_or(o.call_us)),
                ret: ret.clone(),
            });
        }
    }
    h
}

fn opt_str(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

fn output_json(r: &OpResult) -> Value {
    match r {
        OpResult::Value(v) => json!({"kind": "value", "value": opt_str(v)}),
        OpResult::CasMismatch { current } => {
            json!({"kind": "cas-mismatch", "current": opt_str(current)})
        }
        OpResult::StaleRequest { last_seq } => {
            json!({"kind": "stale-request", "last_seq": last_seq})
        }
    }
}

impl Exported {
    pub fn to_json(&self) -> Value {
        let ops: Vec<Value> = self
            .ops
            .iter()
            .enumerate()
            .map(|(id, o)| {
                let mut v = json!({
                    "id": id,
                    "client": o.client,
                    "kind": "",
                    "key": o.key,
                    "call": o.call,
                    "return": o.ret,
                    "call_us": o.call_us,
                    "return_us": o.ret_us,
                    "output": o.output.as_ref().map_or(Value::Null, output_json),
                });
                let kind = match &o.op {
                    KeyOp::Put(value) => {
                        v["value"] = json!(value);
                        "put"
                    }
                    KeyOp::Get => "get",
                    KeyOp::Delete => "delete",
                    KeyOp::Cas { expected, new } => {
                        v["expected"] = opt_str(expected);
                        v["new"] = json!(new);
                        "cas"
                    }
                };
                v["kind"] = json!(kind);
                v
            })
            .collect();
        json!({
            "format": FORMAT,
            "name": self.name,
            "source": self.source,
            "seed": self.seed,
            "injected": self.injected,
            "expect": if self.expect_violation {
                json!("violation")
            } else if self.expect_linearizable {
                json!("linearizable")
            } else {
                Value::Null
            },
            "note": self.note,
            "operations": ops,
        })
    }

    pub fn from_json(v: &Value) -> Result<Exported, String> {
        let s = |v: &Value, f: &str| -> Result<String, String> {
            v.get(f)
                .and_then(Value::as_str)
                .map(String::from)
                .ok_or_else(|| format!("missing string field {f:?}"))
        };
        let opt_s = |v: &Value, f: &str| -> Result<Option<String>, String> {
            match v.get(f) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(x)) => Ok(Some(x.clone())),
                Some(other) => Err(format!("field {f:?}: not a string or null: {other}")),
            }
        };
        let opt_u = |v: &Value, f: &str| -> Result<Option<u64>, String> {
            match v.get(f) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => x
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| format!("field {f:?}: not a non-negative integer: {x}")),
            }
        };
        if v.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(format!("not a {FORMAT} file"));
        }
        let mut ops = Vec::new();
        for (i, o) in v
            .get("operations")
            .and_then(Value::as_array)
            .ok_or("missing array \"operations\"")?
            .iter()
            .enumerate()
        {
            let op = (|| -> Result<Operation, String> {
                let op = match s(o, "kind")?.as_str() {
                    "put" => KeyOp::Put(s(o, "value")?),
                    "get" => KeyOp::Get,
                    "delete" => KeyOp::Delete,
                    "cas" => KeyOp::Cas {
                        expected: opt_s(o, "expected")?,
                        new: s(o, "new")?,
                    },
                    k => return Err(format!("unknown kind {k:?}")),
                };
                let output = match o.get("output") {
                    None | Some(Value::Null) => None,
                    Some(out) => Some(match s(out, "kind")?.as_str() {
                        "value" => OpResult::Value(opt_s(out, "value")?),
                        "cas-mismatch" => OpResult::CasMismatch {
                            current: opt_s(out, "current")?,
                        },
                        "stale-request" => OpResult::StaleRequest {
                            last_seq: opt_u(out, "last_seq")?.ok_or("missing last_seq")?,
                        },
                        k => return Err(format!("unknown output kind {k:?}")),
                    }),
                };
                let ret = opt_u(o, "return")?;
                if ret.is_some() != output.is_some() {
                    return Err("\"return\" and \"output\" must be both null or both set".into());
                }
                let call = opt_u(o, "call")?.ok_or("missing call")?;
                if ret.is_some_and(|r| r < call) {
                    return Err("returns before its call".into());
                }
                Ok(Operation {
                    client: opt_u(o, "client")?.unwrap_or(0),
                    key: s(o, "key")?,
                    op,
                    output,
                    call,
                    ret,
                    call_us: opt_u(o, "call_us")?.unwrap_or(0),
                    ret_us: opt_u(o, "return_us")?,
                })
            })()
            .map_err(|e| format!("operation {i}: {e}"))?;
            ops.push(op);
        }
        Ok(Exported {
            name: s(v, "name")?,
            source: s(v, "source")?,
            seed: opt_u(v, "seed")?,
            injected: opt_s(v, "injected")?,
            expect_violation: v.get("expect").and_then(Value::as_str) == Some("violation"),
            expect_linearizable: v.get("expect").and_then(Value::as_str) == Some("linearizable"),
            note: opt_s(v, "note")?,
            ops,
        })
    }

    pub fn write(&self, dir: &Path) -> Result<PathBuf, String> {
        let path = dir.join(format!("{}.json", self.name));
        let text = serde_json::to_string(&self.to_json()).map_err(|e| e.to_string())?;
        std::fs::write(&path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    pub fn read(path: &Path) -> Result<Exported, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Exported::from_json(&v).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Our checker's verdict (the memoized Wing–Gong search of `linearizability.rs`).
    pub fn linearizable(&self) -> bool {
        to_history(&self.ops).check().is_ok()
    }

    pub fn pending(&self) -> usize {
        self.ops.iter().filter(|o| o.ret.is_none()).count()
    }
}

/// A fault injected into a recorded (linearizable) history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injection {
    /// A get that began after a put to its key had returned answers the value that put
    /// replaced (the put's own output). Always a violation where every written value is
    /// unique (the workloads' are) and nothing deletes: that value could only have been
    /// current before the put.
    StaleRead,
    /// A returned put is reported twice: a second operation with the same input and output,
    /// returning after everything else (a retried write applied twice). Always a violation
    /// with unique values: both would have to see the value before the first one wrote.
    PutReturnsTwice,
    /// A get answers a value no operation ever wrote. Always a violation.
    PhantomRead,
    /// Two returned operations on one key, the first returning before the second began,
    /// exchange their outputs (when those differ). Usually, not always, a violation.
    SwappedReturns,
}

impl Injection {
    pub const ALL: [Injection; 4] = [
        Injection::StaleRead,
        Injection::PutReturnsTwice,
        Injection::PhantomRead,
        Injection::SwappedReturns,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Injection::StaleRead => "stale-read",
            Injection::PutReturnsTwice => "put-returns-twice",
            Injection::PhantomRead => "phantom-read",
            Injection::SwappedReturns => "swapped-returns",
        }
    }

    pub fn guarantees_violation(self) -> bool {
        !matches!(self, Injection::SwappedReturns)
    }

    /// The injected history, or `None` where it has no place for this fault.
    pub fn apply(self, ops: &[Operation], rng: &mut fastrand::Rng) -> Option<Vec<Operation>> {
        let returned = |o: &Operation| o.ret.is_some();
        let mut out = ops.to_vec();
        match self {
            Injection::StaleRead => {
                let mut pairs = Vec::new();
                for (p, put) in ops.iter().enumerate() {
                    let (KeyOp::Put(_), Some(before), Some(pr)) = (&put.op, &put.output, put.ret)
                    else {
                        continue;
                    };
                    for (g, get) in ops.iter().enumerate() {
                        if get.op == KeyOp::Get
                            && get.key == put.key
                            && get.call > pr
                            && get.output.as_ref().is_some_and(|o| o != before)
                        {
                            pairs.push((p, g));
                        }
                    }
                }
                let &(p, g) = pairs.get(rng.usize(0..pairs.len().max(1)))?;
                out[g].output = ops[p].output.clone();
            }
            Injection::PutReturnsTwice => {
                let puts: Vec<usize> = (0..ops.len())
                    .filter(|&i| matches!(ops[i].op, KeyOp::Put(_)) && returned(&ops[i]))
                    .collect();
                let &p = puts.get(rng.usize(0..puts.len().max(1)))?;
                let last = ops
                    .iter()
                    .map(|o| o.ret.unwrap_or(o.call))
                    .max()
                    .unwrap_or(0);
                let last_us = ops
                    .iter()
                    .map(|o| o.ret_us.unwrap_or(o.call_us))
                    .max()
                    .unwrap_or(0);
                let mut twice = ops[p].clone();
                twice.ret = Some(last + 1);
                twice.ret_us = Some(last_us);
                out.push(twice);
            }
            Injection::PhantomRead => {
                let gets: Vec<usize> = (0..ops.len())
                    .filter(|&i| ops[i].op == KeyOp::Get && returned(&ops[i]))
                    .collect();
                let &g = gets.get(rng.usize(0..gets.len().max(1)))?;
                out[g].output = Some(OpResult::Value(Some("never-written".into())));
            }
            Injection::SwappedReturns => {
                let mut pairs = Vec::new();
                for (a, x) in ops.iter().enumerate() {
                    let Some(xr) = x.ret else { continue };
                    for (b, y) in ops.iter().enumerate() {
                        if y.key == x.key && y.call > xr && y.ret.is_some() && y.output != x.output
                        {
                            pairs.push((a, b));
                        }
                    }
                }
                let &(a, b) = pairs.get(rng.usize(0..pairs.len().max(1)))?;
                out[a].output = ops[b].output.clone();
                out[b].output = ops[a].output.clone();
            }
        }
        Some(out)
    }
}

/// The simulator's client-history scenarios (the suite's three history tests).
pub const SCENARIOS: [(&str, suite::TestFn); 3] = [
    ("partitions", suite::linearizable_kv_partitions),
    ("crashes", suite::linearizable_kv_crashes),
    ("power-failures", suite::linearizable_kv_power_failures),
];

/// Runs one simulator scenario and returns its client history (`None`: the run recorded none).
pub fn simulate(
    scenario: &str,
    f: suite::TestFn,
    seed: u64,
    faults: DiskFaults,
) -> Result<Option<Exported>, String> {
    let (result, histories) = capturing(|| f(&Params { seed, faults }));
    let Some(h) = histories.into_iter().last() else {
        return Ok(None);
    };
    let broken = if faults.ack_before_fsync {
        "-ack-before-fsync"
    } else {
        ""
    };
    Ok(Some(Exported {
        name: format!("sim-{scenario}{broken}-seed-{seed}"),
        source: format!(
            "simulator:linearizable_kv_{}{}",
            scenario.replace('-', "_"),
            if faults.ack_before_fsync {
                " (disk acknowledging before fsync)"
            } else {
                ""
            }
        ),
        seed: Some(seed),
        injected: None,
        expect_violation: false,
        expect_linearizable: !faults.ack_before_fsync,
        note: Some(match result {
            Ok(()) => "the suite test passed".into(),
            Err(e) => format!(
                "the suite test failed: {}",
                e.lines().next().unwrap_or_default()
            ),
        }),
        ops: operations(&h)?,
    }))
}

/// The power-failure scenario (every server crashes at once every 1.2 s, then all restart) on
/// the fake disk that acknowledges fsync before the data is durable, run on past the
/// simulator's safety violations instead of stopping at the first, so that the clients see
/// what a broken cluster answers: histories that really violate linearizability (lost
/// acknowledged writes), not injected ones. Returns the history and how many safety
/// violations the simulator saw.
pub fn broken_power_failures(seed: u64) -> Exported {
    let mut opts = SimOptions::new(3, seed);
    opts.disk = DiskFaults {
        ack_before_fsync: true,
        ..DiskFaults::default()
    };
    let mut sim = Sim::new(&opts);
    let mut violations = 0u64;
    let mut run = |sim: &mut Sim, until: Duration| {
        // Each violation is seen after at least one more event, so this progresses.
        while sim.run_until(until).is_err() {
            violations += 1;
            sim.take_violation();
        }
    };
    sim.add_clients(&Workload::default());
    let end = sim.now + ms(60_000);
    let mut rounds = 0u32;
    while !sim.clients_done() && sim.now < end {
        let next = sim.now + ms(300);
        run(&mut sim, next);
        rounds += 1;
        if rounds.is_multiple_of(4) {
            for i in 0..sim.servers() {
                sim.crash(i);
            }
            for i in 0..sim.servers() {
                sim.restart(i);
            }
        }
    }
    let end = sim.now + ms(30_000);
    while !sim.clients_done() && sim.now < end {
        let next = sim.now + ms(100);
        run(&mut sim, next);
    }
    Exported {
        name: format!("sim-power-failures-ack-before-fsync-seed-{seed}"),
        source:
            "simulator:power_failures (disk acknowledging before fsync, run past safety violations)"
                .into(),
        seed: Some(seed),
        injected: None,
        expect_violation: false,
        expect_linearizable: false,
        note: Some(format!(
            "{violations} safety violations seen by the simulator (not stopped at them)"
        )),
        // The recorder pairs every return with its call: this cannot fail.
        ops: operations(&sim.history).unwrap_or_default(),
    }
}

/// A small random history (3 threads, at most 9 operations on two keys, values from {1, 2},
/// some never returning): tiny domains make both verdicts common, as in
/// `linearizability.rs`'s agreement tests.
pub fn random_history(seed: u64) -> Exported {
    Exported {
        name: format!("random-{seed}"),
        source: "random".into(),
        seed: Some(seed),
        injected: None,
        expect_violation: false,
        expect_linearizable: false,
        note: None,
        ops: operations(&random_recorded(seed)).unwrap_or_default(),
    }
}

/// The recorded history behind [`random_history`].
pub fn random_recorded(seed: u64) -> History {
    use crate::linearizability::{key_op, Register};
    use stateright::semantics::SequentialSpec;
    let mut rng = fastrand::Rng::with_seed(seed);
    let vals = ["1", "2"];
    let mut h = History::default();
    // Per thread: the open operation's output if it took effect at its call (on a register
    // per key applied in call order): returned half the time, so that both verdicts occur.
    let mut open: [Option<OpResult>; 3] = [None, None, None];
    let mut shadow: std::collections::BTreeMap<String, Register> = Default::default();
    let mut invoked = 0;
    let mut t = 0u64;
    for _ in 0..rng.usize(1..18) {
        t += 1;
        let at = Duration::from_micros(t);
        let thread = rng.usize(0..3);
        let v =
            |rng: &mut fastrand::Rng| (rng.u8(0..3) > 0).then(|| vals[rng.usize(0..2)].to_string());
        if let Some(plausible) = open[thread].clone() {
            if rng.u8(0..10) < 8 {
                open[thread] = None;
                let ret = match rng.u8(0..10) {
                    0..5 => plausible,
                    5 => OpResult::CasMismatch {
                        current: v(&mut rng),
                    },
                    _ => OpResult::Value(v(&mut rng)),
                };
                h.ret(thread as u64, at, ret);
            }
            // else: stays in flight forever (indefinite)
        } else if invoked < 9 {
            invoked += 1;
            let key = ["a", "b"][rng.usize(0..2)].to_string();
            let op = match rng.u8(0..10) {
                0..3 => Op::Put {
                    key,
                    value: vals[rng.usize(0..2)].into(),
                },
                3..6 => Op::Get { key },
                6 => Op::Delete { key },
                _ => Op::Cas {
                    key,
                    expected: v(&mut rng),
                    new: vals[rng.usize(0..2)].into(),
                },
            };
            // Every operation has a key: neither fails.
            if let (Ok((key, kop)), Ok(())) = (key_op(&op), h.invoke(thread as u64, at, &op)) {
                open[thread] = Some(shadow.entry(key).or_default().invoke(&kop));
            }
        }
    }
    h
}

/// What the agreement run does.
#[derive(Clone, Debug)]
pub struct AgreementOptions {
    /// Simulator seeds: each gives the three history scenarios, the power-failure scenario on
    /// the disk that acknowledges before fsync (real violations), and injected copies.
    pub seeds: u64,
    pub from: u64,
    /// Small random histories.
    pub random: u64,
    /// Directory of extra history files to include (e.g. the soak's `--history-dir`).
    pub include: Vec<PathBuf>,
    /// Output directory: `histories/*.json`, `porcupine-verdicts.json`, the checker binary.
    pub out: PathBuf,
    /// The Go program's directory (`tests/porcupine`).
    pub go_dir: PathBuf,
    /// Porcupine's time limit per history.
    pub timeout_secs: u64,
}

/// One history's verdicts.
#[derive(Clone, Debug)]
pub struct Row {
    pub name: String,
    pub source: String,
    pub injected: Option<String>,
    pub expect_violation: bool,
    /// A correct run's history (both checkers must find it linearizable).
    pub expect_linearizable: bool,
    pub ops: usize,
    pub pending: usize,
    pub ours: bool,
    /// Porcupine's: `linearizable`, `violation`, `unknown` (time limit) or missing.
    pub theirs: String,
}

impl Row {
    pub fn agree(&self) -> bool {
        self.theirs
            == if self.ours {
                "linearizable"
            } else {
                "violation"
            }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Agreement {
    pub rows: Vec<Row>,
    pub export_secs: f64,
    pub ours_secs: f64,
    pub porcupine_secs: f64,
    pub porcupine_version: String,
    pub go_version: String,
}

impl Agreement {
    pub fn disagreements(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| !r.agree()).collect()
    }

    /// Injections that guarantee a violation but that a checker passed.
    pub fn missed(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| r.expect_violation && (r.ours || r.theirs != "violation"))
            .collect()
    }

    /// Correct runs' histories that a checker did not find linearizable.
    pub fn correct_runs_failed(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| r.expect_linearizable && (!r.ours || r.theirs != "linearizable"))
            .collect()
    }

    pub fn ok(&self) -> bool {
        !self.rows.is_empty()
            && self.disagreements().is_empty()
            && self.missed().is_empty()
            && self.correct_runs_failed().is_empty()
    }

    /// The report (`results/porcupine.md`).
    /// `commit`: the source tree's commit (`git rev-parse HEAD`, "+ changes" when dirty).
    pub fn markdown(&self, o: &AgreementOptions, command: &str, commit: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Histories checked by Porcupine and by our checker\n");
        let _ = writeln!(
            s,
            "Generated by `{command}` on commit {commit} (do not edit by hand). Each history was written as JSON \
             (`tests/src/history_export.rs`), read back, and checked by our checker \
             (`tests/src/linearizability.rs`, memoized Wing–Gong search) and by Porcupine \
             {} (`tests/porcupine/main.go`, {}), each on its own.\n",
            self.porcupine_version, self.go_version
        );
        let lin = self.rows.iter().filter(|r| r.ours).count();
        let plin = self
            .rows
            .iter()
            .filter(|r| r.theirs == "linearizable")
            .count();
        let pvio = self.rows.iter().filter(|r| r.theirs == "violation").count();
        let agree = self.rows.iter().filter(|r| r.agree()).count();
        let ops: usize = self.rows.iter().map(|r| r.ops).sum();
        let pending: usize = self.rows.iter().map(|r| r.pending).sum();
        let _ = writeln!(s, "| | histories | operations | never returned | linearizable (ours) | violation (ours) | linearizable (Porcupine) | violation (Porcupine) | other (Porcupine) | agree |");
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let mut groups: Vec<String> = Vec::new();
        for r in &self.rows {
            let g = group(r);
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        let line = |s: &mut String, label: &str, rows: &[&Row]| {
            let _ = writeln!(
                s,
                "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                rows.len(),
                rows.iter().map(|r| r.ops).sum::<usize>(),
                rows.iter().map(|r| r.pending).sum::<usize>(),
                rows.iter().filter(|r| r.ours).count(),
                rows.iter().filter(|r| !r.ours).count(),
                rows.iter().filter(|r| r.theirs == "linearizable").count(),
                rows.iter().filter(|r| r.theirs == "violation").count(),
                rows.iter()
                    .filter(|r| r.theirs != "linearizable" && r.theirs != "violation")
                    .count(),
                rows.iter().filter(|r| r.agree()).count(),
            );
        };
        for g in &groups {
            let rows: Vec<&Row> = self.rows.iter().filter(|r| &group(r) == g).collect();
            line(&mut s, g, &rows);
        }
        let all: Vec<&Row> = self.rows.iter().collect();
        line(&mut s, "**all**", &all);
        let _ = writeln!(
            s,
            "\n**{agree} of {} histories agree** ({ops} operations, {pending} never returned); \
             ours: {lin} linearizable, {} not; Porcupine: {plin} linearizable, {pvio} not, {} \
             other. Injections that guarantee a violation: {} histories, caught by both: {}. \
             Correct runs (simulator runs on a correct runtime, soak trials), which must be \
             linearizable: {} histories, linearizable by both: {}.",
            self.rows.len(),
            self.rows.len() - lin,
            self.rows.len() - plin - pvio,
            self.rows.iter().filter(|r| r.expect_violation).count(),
            self.rows
                .iter()
                .filter(|r| r.expect_violation && !r.ours && r.theirs == "violation")
                .count(),
            self.rows.iter().filter(|r| r.expect_linearizable).count(),
            self.rows
                .iter()
                .filter(|r| r.expect_linearizable && r.ours && r.theirs == "linearizable")
                .count(),
        );
        let _ = writeln!(
            s,
            "\nTime: writing the histories (simulator runs included) {:.1} s; our checker {:.2} s \
             for all; Porcupine {:.2} s for all (its program's own run, building excluded).\n",
            self.export_secs, self.ours_secs, self.porcupine_secs
        );
        let _ = writeln!(
            s,
            "Run: {} simulator seeds from {} (each: the partition, crash and power-failure \
             history scenarios of the suite; the power-failure scenario again on the fake disk \
             that acknowledges before fsync, run on past the simulator's safety violations, \
             whose histories really violate linearizability where acknowledged writes were \
             lost; and one copy of the partition history with \
             each injected fault), {} random small histories{}.\n",
            o.seeds,
            o.from,
            o.random,
            if o.include.is_empty() {
                String::new()
            } else {
                format!(
                    ", and the files of {}",
                    o.include
                        .iter()
                        .map(|p| format!("`{}`", p.display()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        // Included runs name their command in the source.
        let mut commands: Vec<&str> = Vec::new();
        for r in &self.rows {
            if r.injected.is_none()
                && r.source.contains("(raft-tests ")
                && !commands.contains(&&*r.source)
            {
                commands.push(&r.source);
            }
        }
        for src in commands {
            let n = self
                .rows
                .iter()
                .filter(|r| r.injected.is_none() && r.source == src)
                .count();
            let _ = writeln!(s, "Included: {n} histories of `{src}`.\n");
        }
        let _ = writeln!(s, "Injected faults: `stale-read` (a get after a completed put answers the value that put replaced), `put-returns-twice` (a returned put reported a second time), `phantom-read` (a get answers a value never written): each guarantees a violation with the workloads' unique values; `swapped-returns` (two sequential operations on a key exchange outputs): usually a violation, not always.");
        let bad = self.disagreements();
        if !bad.is_empty() {
            let _ = writeln!(s, "\n## Disagreements\n");
            for r in bad {
                let _ = writeln!(
                    s,
                    "- `{}`: ours {}, Porcupine {}",
                    r.name,
                    if r.ours { "linearizable" } else { "violation" },
                    r.theirs
                );
            }
        }
        let failed = self.correct_runs_failed();
        if !failed.is_empty() {
            let _ = writeln!(s, "\n## Correct runs found not linearizable\n");
            for r in failed {
                let _ = writeln!(
                    s,
                    "- `{}`: ours {}, Porcupine {}",
                    r.name,
                    if r.ours { "linearizable" } else { "violation" },
                    r.theirs
                );
            }
        }
        let missed = self.missed();
        if !missed.is_empty() {
            let _ = writeln!(s, "\n## Guaranteed violations passed\n");
            for r in missed {
                let _ = writeln!(
                    s,
                    "- `{}`: ours {}, Porcupine {}",
                    r.name,
                    if r.ours { "linearizable" } else { "violation" },
                    r.theirs
                );
            }
        }
        s
    }

    pub fn to_json(&self) -> Value {
        json!({
            "porcupine": self.porcupine_version,
            "go": self.go_version,
            "histories": self.rows.len(),
            "agree": self.rows.iter().filter(|r| r.agree()).count(),
            "export_seconds": self.export_secs,
            "ours_seconds": self.ours_secs,
            "porcupine_seconds": self.porcupine_secs,
            "rows": self.rows.iter().map(|r| json!({
                "name": r.name,
                "source": r.source,
                "injected": r.injected,
                "expect": if r.expect_violation {
                    json!("violation")
                } else if r.expect_linearizable {
                    json!("linearizable")
                } else {
                    Value::Null
                },
                "operations": r.ops,
                "pending": r.pending,
                "ours": if r.ours { "linearizable" } else { "violation" },
                "porcupine": r.theirs,
            })).collect::<Vec<_>>(),
        })
    }
}

fn group(r: &Row) -> String {
    match &r.injected {
        Some(i) => format!("injected: {i}"),
        None => {
            r.source.split(" (").next().unwrap_or(&r.source).to_string()
                + if r.source.contains("before fsync") {
                    " (disk acknowledging before fsync)"
                } else if r.source.contains("broken runtime") {
                    " (broken runtime)"
                } else {
                    ""
                }
        }
    }
}

/// Writes the run's histories into `dir`; returns how many.
pub fn write_histories(o: &AgreementOptions, dir: &Path) -> Result<usize, String> {
    use rayon::prelude::*;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // (scenario, seed); `None`: the broken power-failure run.
    let mut jobs: Vec<(Option<(&str, suite::TestFn)>, u64)> = Vec::new();
    for seed in o.from..o.from + o.seeds {
        for s in SCENARIOS {
            jobs.push((Some(s), seed));
        }
        jobs.push((None, seed));
    }
    let written: Vec<Result<usize, String>> = jobs
        .into_par_iter()
        .map(|(scenario, seed)| {
            let Some((name, f)) = scenario else {
                broken_power_failures(seed).write(dir)?;
                return Ok(1);
            };
            let Some(h) = simulate(name, f, seed, DiskFaults::default())? else {
                return Ok(0);
            };
            h.write(dir)?;
            Ok(1 + if name == "partitions" {
                write_injected(&h, dir)?
            } else {
                0
            })
        })
        .collect();
    let mut n = 0;
    for w in written {
        n += w?;
    }
    for seed in 1..=o.random {
        random_history(seed).write(dir)?;
        n += 1;
    }
    for inc in &o.include {
        for path in history_files(inc)? {
            let h = Exported::read(&path)?;
            h.write(dir)?;
            n += 1;
            // The soak's values are unique too: the same injections apply.
            if h.injected.is_none() && h.source.starts_with("soak") {
                n += write_injected(&h, dir)?;
            }
        }
    }
    Ok(n)
}

/// Writes a copy of `h` with each [`Injection`] that has a place in it; returns how many.
fn write_injected(h: &Exported, dir: &Path) -> Result<usize, String> {
    let mut rng = fastrand::Rng::with_seed(h.seed.unwrap_or(0) ^ 0x1a7e_c7ed);
    let mut n = 0;
    for inj in Injection::ALL {
        if let Some(ops) = inj.apply(&h.ops, &mut rng) {
            let e = Exported {
                name: format!("{}-{}", h.name, inj.name()),
                injected: Some(inj.name().into()),
                expect_violation: inj.guarantees_violation(),
                expect_linearizable: false,
                ops,
                ..h.clone()
            };
            e.write(dir)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Writes one soak trial's history (`raft-tests soak --history-dir`). `command` is the soak's
/// command line (it goes into the source, after the group name); `figures` says what the trial
/// did (kills, the voter replaced, snapshots, partitions), for people.
pub fn write_soak_history(
    dir: &Path,
    seed: u64,
    trial: u32,
    h: &History,
    command: &str,
    figures: &str,
) -> Result<(), String> {
    write_process_history(
        dir,
        &format!("soak-{seed}-trial-{trial}"),
        &format!("soak: raft-node processes ({command})"),
        seed,
        h,
        figures,
    )
    .map(|_| ())
}

/// Writes the client history of a run of real `raft-node` processes (a soak's or a fault
/// campaign's trial) as `dir/NAME.json`, expected linearizable; `figures` (what the run did)
/// goes into its note with our checker's verdict. Returns the file's path.
pub fn write_process_history(
    dir: &Path,
    name: &str,
    source: &str,
    seed: u64,
    h: &History,
    figures: &str,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ops = operations(h)?;
    let gets = ops.iter().filter(|o| o.op == KeyOp::Get).count();
    let e = Exported {
        name: name.to_string(),
        source: source.to_string(),
        seed: Some(seed),
        injected: None,
        expect_violation: false,
        expect_linearizable: true,
        note: Some(format!(
            "{figures}, {gets} gets (ReadIndex reads); our checker at the trial's end: {}",
            match h.check() {
                Ok(()) => "linearizable",
                Err(_) => "NOT linearizable",
            }
        )),
        ops,
    };
    e.write(dir)
}

/// Writes the client history of one conformance run (`raft-tests conform-traces
/// --history-dir`): 5 servers of the real runtime, crashes, lost and delayed messages,
/// leadership transfers, membership changes, a snapshot every few entries. A run on a broken
/// runtime (`broken`) is not expected to be linearizable. `command` (the runs' command line)
/// goes into the source, after the group name.
pub fn write_conform_history(
    dir: &Path,
    seed: u64,
    history: &History,
    broken: bool,
    command: &str,
    note: &str,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let e = Exported {
        name: format!(
            "sim-conform{}-seed-{seed}",
            if broken { "-broken" } else { "" }
        ),
        source: format!(
            "simulator:conformance ({command}{})",
            if broken { "; broken runtime" } else { "" }
        ),
        seed: Some(seed),
        injected: None,
        expect_violation: false,
        expect_linearizable: !broken,
        note: Some(note.to_string()),
        ops: operations(history)?,
    };
    e.write(dir).map(|_| ())
}

/// The `*.json` files of a directory, sorted.
pub fn history_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    Ok(v)
}

/// Why the Go toolchain cannot be used, if it cannot.
pub fn go_missing() -> Option<String> {
    match Command::new("go").arg("version").output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`go version` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("no Go toolchain (`go`: {e})")),
    }
}

/// Builds the Porcupine program into `out`; returns the binary's path. The module
/// github.com/anishathalye/porcupine comes from the Go module cache, or is fetched through the
/// Go module proxy and checked against `go.sum` (`tests/porcupine/README.md`).
pub fn build_checker(go_dir: &Path, out: &Path) -> Result<PathBuf, String> {
    if let Some(why) = go_missing() {
        return Err(why);
    }
    let out = std::path::absolute(out).map_err(|e| e.to_string())?;
    let bin = out.join("porcupine-check");
    let mut go = Command::new("go");
    go.args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(go_dir);
    if std::env::var_os("GOCACHE").is_none()
        && std::env::var_os("HOME").is_none()
        && std::env::var_os("XDG_CACHE_HOME").is_none()
    {
        go.env("GOCACHE", out.join("go-build-cache"));
    }
    let o = go.output().map_err(|e| format!("go build: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "go build in {} failed:\n{}",
            go_dir.display(),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(bin)
}

/// The whole agreement run: write the histories, check each with our checker (reading the
/// file back) and with the Porcupine program, compare.
pub fn agreement(o: &AgreementOptions) -> Result<Agreement, String> {
    let dir = o.out.join("histories");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let bin = build_checker(&o.go_dir, &o.out)?;
    let t0 = Instant::now();
    write_histories(o, &dir)?;
    let export_secs = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let mut rows = Vec::new();
    for path in history_files(&dir)? {
        let h = Exported::read(&path)?;
        rows.push(Row {
            ours: h.linearizable(),
            name: h.name.clone(),
            source: h.source.clone(),
            injected: h.injected.clone(),
            expect_violation: h.expect_violation,
            expect_linearizable: h.expect_linearizable,
            ops: h.ops.len(),
            pending: h.pending(),
            theirs: String::from("missing"),
        });
    }
    let ours_secs = t1.elapsed().as_secs_f64();

    let verdicts = o.out.join("porcupine-verdicts.json");
    let t2 = Instant::now();
    let p = porcupine_verdicts(&bin, &dir, &verdicts, o.timeout_secs)?;
    let porcupine_secs = t2.elapsed().as_secs_f64();
    for (name, verdict) in p.verdicts {
        if let Some(row) = rows.iter_mut().find(|row| row.name == name) {
            row.theirs = verdict;
        }
    }
    Ok(Agreement {
        rows,
        export_secs,
        ours_secs,
        porcupine_secs,
        porcupine_version: p.porcupine_version,
        go_version: p.go_version,
    })
}

/// Porcupine's verdicts on the history files of a directory.
#[derive(Clone, Debug, Default)]
pub struct PorcupineVerdicts {
    /// (history name, verdict: `linearizable`, `violation` or `unknown`), one per file.
    pub verdicts: Vec<(String, String)>,
    pub porcupine_version: String,
    pub go_version: String,
}

/// Runs the Porcupine program `bin` (from [`build_checker`]) on every history file of `dir`,
/// writing its verdicts to `verdicts` (JSON), with a time limit of `timeout_secs` per history.
pub fn porcupine_verdicts(
    bin: &Path,
    dir: &Path,
    verdicts: &Path,
    timeout_secs: u64,
) -> Result<PorcupineVerdicts, String> {
    let run = Command::new(bin)
        .arg("-timeout")
        .arg(format!("{timeout_secs}s"))
        .arg("-verdicts")
        .arg(verdicts)
        .arg(dir)
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    // Exit 1 only says that some history is not linearizable; 2 is a failure of the program.
    if !matches!(run.status.code(), Some(0 | 1)) {
        return Err(format!(
            "{} failed ({}):\n{}",
            bin.display(),
            run.status,
            String::from_utf8_lossy(&run.stderr)
        ));
    }
    let text =
        std::fs::read_to_string(verdicts).map_err(|e| format!("{}: {e}", verdicts.display()))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", verdicts.display()))?;
    let results = v
        .get("results")
        .and_then(Value::as_array)
        .ok_or("verdicts: no results")?;
    let mut out = PorcupineVerdicts {
        verdicts: Vec::new(),
        porcupine_version: v
            .get("porcupine")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
        go_version: v
            .get("go")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
    };
    for r in results {
        let (Some(file), Some(verdict)) = (
            r.get("file").and_then(Value::as_str),
            r.get("verdict").and_then(Value::as_str),
        ) else {
            return Err(format!("verdicts: malformed entry {r}"));
        };
        let name = file.strip_suffix(".json").unwrap_or(file);
        out.verdicts.push((name.to_string(), verdict.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exported_history_reads_back_with_the_recorded_verdict() {
        let (mut yes, mut no) = (0, 0);
        for seed in 1..2000 {
            let recorded = random_recorded(seed);
            let h = random_history(seed);
            let back = Exported::from_json(&h.to_json()).unwrap();
            assert_eq!(back, h);
            let verdict = recorded.check().is_ok();
            assert_eq!(back.linearizable(), verdict, "{recorded:?}");
            if verdict {
                yes += 1
            } else {
                no += 1
            }
        }
        assert!(yes > 300 && no > 300, "linearizable {yes}, not {no}");
    }

    #[test]
    fn a_simulated_history_reads_back_with_the_recorded_verdict_and_injections_break_it() {
        let (name, f) = SCENARIOS[0];
        let h = simulate(name, f, 1, DiskFaults::default())
            .unwrap()
            .unwrap();
        assert!(h.ops.len() > 50, "{} operations", h.ops.len());
        let back = Exported::from_json(&h.to_json()).unwrap();
        assert_eq!(back, h);
        assert!(back.linearizable());
        let mut rng = fastrand::Rng::with_seed(1);
        for inj in Injection::ALL {
            let ops = inj
                .apply(&h.ops, &mut rng)
                .unwrap_or_else(|| panic!("no place for {}", inj.name()));
            let e = Exported { ops, ..h.clone() };
            if inj.guarantees_violation() {
                assert!(!e.linearizable(), "{} passed", inj.name());
            }
        }
    }

    #[test]
    fn malformed_files_are_refused_with_the_operation() {
        let mut v = random_history(3).to_json();
        v["operations"][0]["kind"] = json!("append");
        let e = Exported::from_json(&v).unwrap_err();
        assert!(e.contains("operation 0") && e.contains("append"), "{e}");
        assert!(Exported::from_json(&json!({"format": "x"})).is_err());
    }
}
