//! `raft-kv bench`: a closed-loop load generator for the key-value service.
//!
//! Each of `clients` threads keeps one operation in flight (its own session, as a real client
//! has), for a warmup and then a measured window. Only operations that *complete* inside the
//! window count: throughput is those operations over the window's length, and the latency
//! percentiles are theirs alone (warmup and the tail after the window are left out). A failed
//! operation (no leader in time, for example during an election) is counted by kind and the
//! client goes on; the run never aborts on one. With `server_pids`, the servers' CPU time over
//! the window is read from `/proc/PID/stat` (Linux).

use crate::client::{Client, ClientError};
use crate::kv::{Op, OpResult};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which keys the operations touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Keys {
    /// A new key for every operation (`bench-<client>-<i>`): no two writes conflict.
    Distinct,
    /// Keys drawn from a fixed set of this many (`bench-<k>`), the clients interleaved over it.
    Shared(u64),
}

impl std::str::FromStr for Keys {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "distinct" {
            return Ok(Keys::Distinct);
        }
        match s.parse::<u64>() {
            Ok(0) => Err("--keys must be `distinct` or a number of keys of at least 1".into()),
            Ok(n) => Ok(Keys::Shared(n)),
            Err(_) => Err(format!(
                "--keys must be `distinct` or a number of keys, not {s:?}"
            )),
        }
    }
}

impl Keys {
    /// The key of client `client`'s `i`-th operation.
    pub fn key(self, client: usize, i: u64) -> String {
        match self {
            Keys::Distinct => format!("bench-{client}-{i}"),
            Keys::Shared(n) => format!("bench-{}", (i.wrapping_mul(7919) + client as u64) % n),
        }
    }
}

/// How the clients' connections are driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ClientIo {
    /// Every connection on one thread, with poll(2) (`bench_poll.rs`): the load generator
    /// takes little of the CPU the servers share.
    Poll,
    /// A thread per client, each through the client library.
    Threads,
}

/// What each operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum BenchOp {
    /// Write a value of `value_size` bytes.
    Put,
    /// Read a key (through the log; the keys are written once before the run starts).
    Get,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchOptions {
    pub clients: usize,
    #[serde(serialize_with = "seconds")]
    pub warmup: Duration,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    pub value_size: usize,
    pub keys: Keys,
    pub op: BenchOp,
    /// A client gives up on one operation after this long (counted as an error).
    #[serde(serialize_with = "seconds")]
    pub op_timeout: Duration,
    /// The servers' process ids, for their CPU time over the window (Linux `/proc`).
    pub server_pids: Vec<u32>,
    pub io: ClientIo,
    /// TLS to the nodes (threads only; the report says only whether it was on).
    #[serde(serialize_with = "present")]
    pub tls: Option<crate::tls::ClientTls>,
}

/// An option as whether it is set.
fn present<T, S: serde::Serializer>(value: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(value.is_some())
}

/// Latency percentiles, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub options: BenchOptions,
    /// Operations completed inside the measured window.
    pub ops: u64,
    pub ops_per_sec: f64,
    pub latency_ms: Latency,
    /// Failed operations inside the window, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Each server's CPU seconds (user + system) over the window, in `server_pids` order.
    pub server_cpu_seconds: Vec<f64>,
    /// All servers' CPU time per completed operation, in microseconds.
    pub server_cpu_us_per_op: Option<f64>,
    /// This load generator's own CPU seconds over the window (it shares the machine with the
    /// servers: what it spends, they cannot), when `/proc/self/stat` is readable.
    pub client_cpu_seconds: Option<f64>,
    /// The window actually measured (from its start to the last client's stop).
    pub window_seconds: f64,
}

/// The nearest-rank percentile `p` (0..=100) of sorted `v`.
pub fn percentile(v: &[Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn latency(mut v: Vec<Duration>) -> Latency {
    if v.is_empty() {
        return Latency::default();
    }
    v.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let total: Duration = v.iter().sum();
    Latency {
        mean: ms(total) / v.len() as f64,
        p50: ms(percentile(&v, 50.0)),
        p90: ms(percentile(&v, 90.0)),
        p99: ms(percentile(&v, 99.0)),
        p999: ms(percentile(&v, 99.9)),
        max: ms(*v.last().expect("not empty")),
    }
}

/// User + system CPU seconds of a process so far (`/proc/PID/stat`, fields 14 and 15, in
/// clock ticks of 100 Hz, the value Linux reports to user space on every architecture).
pub fn process_cpu_seconds(pid: u32) -> Result<f64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| format!("{path}: unexpected format"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so fields 14 and 15 are at 11 and 12.
    let tick = |i: usize| -> Result<f64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .map(|t| t as f64 / 100.0)
            .ok_or_else(|| format!("{path}: no CPU time field"))
    };
    Ok(tick(11)? + tick(12)?)
}

fn error_kind(e: &ClientError) -> String {
    match e {
        ClientError::NoQuorum { .. } => "no leader in time".into(),
        ClientError::NoNodes => "no nodes".into(),
        ClientError::TooLarge { .. } => "too large".into(),
        // Admin requests only; the bench sends none.
        ClientError::Refused { .. } => "refused".into(),
        ClientError::TransferNotDone { .. } => "transfer not done".into(),
    }
}

struct ClientFigures {
    latencies: Vec<Duration>,
    errors: BTreeMap<String, u64>,
}

/// Runs the bench against the cluster's client addresses. Err only for a setup failure (bad
/// options, the keys of a get bench could not be written, a server pid unreadable).
pub fn run(addrs: &[SocketAddr], options: &BenchOptions) -> Result<BenchReport, String> {
    if options.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    if options.duration.is_zero() {
        return Err("--duration must be more than 0 seconds".into());
    }
    if options.tls.is_some() && options.io == ClientIo::Poll {
        return Err("--io poll speaks plain TCP only: use --io threads with TLS".into());
    }
    let value = "v".repeat(options.value_size);
    if options.op == BenchOp::Get {
        // The keys a get reads must exist; distinct keys are read from the ones written here.
        let mut client = Client::new(addrs.to_vec()).with_tls(options.tls.clone());
        let count = match options.keys {
            Keys::Shared(n) => n,
            Keys::Distinct => 1000,
        };
        for k in 0..count {
            let op = Op::Put {
                key: format!("bench-{k}"),
                value: value.clone(),
            };
            client
                .execute(op, options.op_timeout)
                .map_err(|e| format!("writing the keys to read: {e}"))?;
        }
    }
    let probe = Client::new(addrs.to_vec());
    let sample = Op::Put {
        key: options.keys.key(options.clients, u64::MAX),
        value: value.clone(),
    };
    if probe.next_request_size(&sample) > crate::wire::MAX_REQUEST_BYTES {
        return Err(format!(
            "--value-size {} makes a request larger than the limit of {} bytes",
            options.value_size,
            crate::wire::MAX_REQUEST_BYTES
        ));
    }

    // The leader, for clients driven by poll (each connects to it directly).
    let leader = match options.io {
        ClientIo::Threads => None,
        ClientIo::Poll => {
            let mut probe = Client::new(addrs.to_vec());
            probe
                .leader_info(options.op_timeout)
                .map_err(|e| format!("finding the leader: {e}"))?;
            Some(
                probe
                    .leader()
                    .ok_or("finding the leader: no address answered")?,
            )
        }
    };

    let start = Instant::now();
    let window_start = start + options.warmup;
    let window_end = window_start + options.duration;
    let stop = Arc::new(AtomicBool::new(false));
    let read_keys = match options.keys {
        Keys::Shared(n) => Keys::Shared(n),
        Keys::Distinct => Keys::Shared(1000),
    };
    let next_op = {
        let o = options.clone();
        let value = value.clone();
        move |c: usize, i: u64| match o.op {
            BenchOp::Put => Op::Put {
                key: o.keys.key(c, i),
                value: value.clone(),
            },
            BenchOp::Get => Op::Get {
                key: read_keys.key(c, i),
            },
        }
    };
    let threads: Vec<_> = match leader {
        Some(leader) => {
            let nodes = addrs.to_vec();
            let (clients, op_timeout) = (options.clients, options.op_timeout);
            vec![std::thread::spawn(move || {
                let load = crate::bench_poll::Load {
                    leader,
                    nodes,
                    clients,
                    window_start,
                    window_end,
                    op_timeout,
                    next_op: &next_op,
                };
                match crate::bench_poll::drive(&load) {
                    Ok(o) => ClientFigures {
                        latencies: o.latencies,
                        errors: o.errors,
                    },
                    Err(e) => ClientFigures {
                        latencies: Vec::new(),
                        errors: BTreeMap::from([(format!("load generator: {e}"), 1)]),
                    },
                }
            })]
        }
        None => (0..options.clients)
            .map(|c| {
                let addrs = addrs.to_vec();
                let o = options.clone();
                let stop = Arc::clone(&stop);
                let next_op = next_op.clone();
                std::thread::spawn(move || {
                    let mut client = Client::new(addrs).with_tls(o.tls.clone());
                    let mut f = ClientFigures {
                        latencies: Vec::new(),
                        errors: BTreeMap::new(),
                    };
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < window_end {
                        let op = next_op(c, i);
                        i += 1;
                        let t = Instant::now();
                        let result = client.execute(op, o.op_timeout);
                        let done = Instant::now();
                        if done < window_start || done > window_end {
                            continue;
                        }
                        match result {
                            Ok(OpResult::Value(_)) | Ok(OpResult::CasMismatch { .. }) => {
                                f.latencies.push(done - t)
                            }
                            Ok(OpResult::StaleRequest { .. }) => {
                                *f.errors.entry("stale request".into()).or_default() += 1
                            }
                            Err(e) => *f.errors.entry(error_kind(&e)).or_default() += 1,
                        }
                    }
                    f
                })
            })
            .collect(),
    };
    // The servers' CPU over the window: read at its start and at its end.
    let sleep_until = |t: Instant| {
        let now = Instant::now();
        if t > now {
            std::thread::sleep(t - now);
        }
    };
    let servers_cpu = || -> Result<Vec<f64>, String> {
        options
            .server_pids
            .iter()
            .map(|&p| process_cpu_seconds(p))
            .collect()
    };
    let own_cpu = || process_cpu_seconds(std::process::id()).ok();
    sleep_until(window_start);
    let cpu_start = servers_cpu();
    let own_start = own_cpu();
    sleep_until(window_end);
    let cpu_end = servers_cpu();
    let own_end = own_cpu();
    stop.store(true, Ordering::Relaxed);
    let (cpu_start, cpu_end) = (cpu_start?, cpu_end?);
    let mut latencies = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for t in threads {
        let f = t
            .join()
            .map_err(|_| "a bench client thread panicked".to_string())?;
        latencies.extend(f.latencies);
        for (k, n) in f.errors {
            *errors.entry(k).or_default() += n;
        }
    }
    let window = options.duration.as_secs_f64();
    let ops = latencies.len() as u64;
    let server_cpu_seconds: Vec<f64> = cpu_end.iter().zip(&cpu_start).map(|(e, s)| e - s).collect();
    let total_cpu: f64 = server_cpu_seconds.iter().sum();
    Ok(BenchReport {
        options: options.clone(),
        ops,
        ops_per_sec: ops as f64 / window,
        latency_ms: latency(latencies),
        errors,
        server_cpu_us_per_op: (!server_cpu_seconds.is_empty() && ops > 0)
            .then(|| total_cpu * 1e6 / ops as f64),
        server_cpu_seconds,
        client_cpu_seconds: own_start.zip(own_end).map(|(s, e)| e - s),
        window_seconds: window,
    })
}

/// One line for people.
pub fn summary(r: &BenchReport) -> String {
    let o = &r.options;
    let errors: u64 = r.errors.values().sum();
    let what = match o.op {
        BenchOp::Put => format!("puts of {} bytes", o.value_size),
        BenchOp::Get => "gets".to_string(),
    };
    let mut line = format!(
        "{} {what}, {} clients, keys {}: {:.0} ops/s over {:.1} s (after {:.1} s warmup); \
         latency ms p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}; {} error(s)",
        r.ops,
        o.clients,
        match o.keys {
            Keys::Distinct => "distinct".to_string(),
            Keys::Shared(n) => n.to_string(),
        },
        r.ops_per_sec,
        r.window_seconds,
        o.warmup.as_secs_f64(),
        r.latency_ms.p50,
        r.latency_ms.p90,
        r.latency_ms.p99,
        r.latency_ms.p999,
        r.latency_ms.max,
        errors
    );
    if let Some(us) = r.server_cpu_us_per_op {
        line.push_str(&format!(
            "; server CPU {:.2} s in all, {us:.0} µs per op",
            r.server_cpu_seconds.iter().sum::<f64>()
        ));
    }
    if let Some(c) = r.client_cpu_seconds {
        line.push_str(&format!("; load generator CPU {c:.2} s"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&v, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&v, 0.0), Duration::from_millis(1));
        let one = ms(&[7]);
        assert_eq!(percentile(&one, 99.9), Duration::from_millis(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn latency_summary_of_an_unsorted_sample() {
        let l = latency(ms(&[4, 1, 3, 2]));
        assert_eq!(l.p50, 2.0);
        assert_eq!(l.max, 4.0);
        assert_eq!(l.mean, 2.5);
    }

    #[test]
    fn keys_distinct_never_repeat_and_shared_stay_in_range() {
        let mut seen = std::collections::BTreeSet::new();
        for c in 0..4 {
            for i in 0..100 {
                assert!(seen.insert(Keys::Distinct.key(c, i)));
            }
        }
        let shared: std::collections::BTreeSet<_> = (0..1000)
            .map(|i| Keys::Shared(10).key(i % 3, i as u64))
            .collect();
        assert_eq!(shared.len(), 10, "{shared:?}");
    }

    #[test]
    fn keys_flag_parses_and_refuses_nonsense() {
        assert_eq!("distinct".parse::<Keys>(), Ok(Keys::Distinct));
        assert_eq!("16".parse::<Keys>(), Ok(Keys::Shared(16)));
        assert!("0".parse::<Keys>().is_err());
        assert!("many".parse::<Keys>().is_err());
    }

    /// Nothing listens on port 1.
    const UNREACHABLE: &str = "127.0.0.1:1";

    fn unreachable_options() -> BenchOptions {
        BenchOptions {
            clients: 1,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            value_size: 10,
            keys: Keys::Distinct,
            op: BenchOp::Put,
            op_timeout: Duration::from_millis(100),
            server_pids: vec![],
            io: ClientIo::Threads,
            tls: None,
        }
    }

    #[test]
    fn failures_are_counted_and_the_run_goes_on() {
        // Every operation fails after its timeout, inside the window.
        let options = BenchOptions {
            clients: 2,
            duration: Duration::from_secs(3),
            op_timeout: Duration::from_millis(500),
            ..unreachable_options()
        };
        let r = run(&[UNREACHABLE.parse().unwrap()], &options).unwrap();
        assert_eq!(r.ops, 0);
        let failed = r.errors.get("no leader in time").copied().unwrap_or(0);
        assert!(failed >= 2, "{:?}", r.errors);
        assert!(summary(&r).contains("error(s)"));
    }

    #[test]
    fn an_oversized_value_is_refused_before_the_run() {
        let options = BenchOptions {
            value_size: crate::wire::MAX_REQUEST_BYTES,
            ..unreachable_options()
        };
        let e = run(&[UNREACHABLE.parse().unwrap()], &options).unwrap_err();
        assert!(e.contains("--value-size"), "{e}");
    }

    #[test]
    fn cpu_time_of_this_process_is_read_and_grows() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return; // not Linux
        }
        // Spin until the reading moves (a loaded machine may give this thread little CPU, so
        // wait on CPU time, not on the clock; 30 s of wall time is far more than a tick).
        let pid = std::process::id();
        let before = process_cpu_seconds(pid).unwrap();
        let t = Instant::now();
        let mut x = 0u64;
        let mut after = before;
        while after <= before && t.elapsed() < Duration::from_secs(30) {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
            }
            after = process_cpu_seconds(pid).unwrap();
        }
        assert!(after > before, "{before} -> {after}");
        assert!(process_cpu_seconds(u32::MAX).is_err());
    }
}
