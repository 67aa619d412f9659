//! The process-level soak: a 3-node cluster of real `raft-node` processes on loopback, client
//! threads writing and reading through `raft_impl::client::Client`, and a nemesis that
//! SIGKILLs a random node at random times and restarts it (now and then every node at once). At the end of each trial every
//! acknowledged write must read back, and the whole history (wall-clock timestamps) must be
//! linearizable (stateright's `LinearizabilityTester`, per key; a timed-out operation is
//! indefinite, Jepsen style).

use crate::linearizability::History;
use raft_impl::client::Client;
use raft_impl::config::{ClusterConfig, NodeSpec};
use raft_impl::kv::{Op, OpResult};
use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const NODES: u64 = 3;
const CLIENTS: u64 = 3;
const SHARED_KEYS: u64 = 3;
/// After this long a client gives up on an operation (its outcome is then unknown).
const OP_TIMEOUT: Duration = Duration::from_secs(3);

pub struct SoakOptions {
    pub trials: u32,
    /// Load (and kills) per trial.
    pub load: Duration,
    pub node_bin: PathBuf,
    pub seed: u64,
    /// Each node writes its trace to `trace_dir/trial-<n>/node-<id>.jsonl` (`raft-node
    /// --trace-dir`), with `run.json`, for `raft-check conform`.
    pub trace_dir: Option<PathBuf>,
    /// Each trial's client history is written to `history_dir/soak-<seed>-trial-<n>.json`
    /// (`history_export`'s format), for `raft-tests porcupine --include`.
    pub history_dir: Option<PathBuf>,
}

/// Figures of all trials.
#[derive(Debug, Default)]
pub struct SoakSummary {
    pub trials: u32,
    pub kills: u64,
    pub ops: u64,
    /// Acknowledged puts to per-trial unique keys, each read back at the end.
    pub acked_unique_writes: u64,
    /// Acknowledged writes (puts and successful compare-and-swaps) to the shared keys.
    pub acked_shared_writes: u64,
    pub indefinite: u64,
    pub lost: u64,
    pub violations: u64,
    pub failures: Vec<String>,
    pub seconds: f64,
}

impl SoakSummary {
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.violations == 0 && self.failures.is_empty()
    }

    pub fn markdown(&self, o: &SoakOptions) -> String {
        let mut s = format!(
            "| trials | load per trial | SIGKILLs | operations | acknowledged writes (unique keys / shared keys) | indefinite (timed out) | writes lost | linearizability violations | other failures | duration |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
             | {} | {:.1} s | {} | {} | {} ({} / {}) | {} | {} | {} | {} | {:.0} s |\n",
            self.trials,
            o.load.as_secs_f64(),
            self.kills,
            self.ops,
            self.acked_unique_writes + self.acked_shared_writes,
            self.acked_unique_writes,
            self.acked_shared_writes,
            self.indefinite,
            self.lost,
            self.violations,
            self.failures.len(),
            self.seconds
        );
        s.push_str(&format!("\nseed: {}\n", o.seed));
        for f in &self.failures {
            s.push_str(&format!("\n- {f}"));
        }
        s
    }
}

fn free_addr() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

struct Cluster {
    dir: PathBuf,
    cluster: ClusterConfig,
    cluster_file: PathBuf,
    node_bin: PathBuf,
    nodes: Vec<Option<Child>>,
    trace_dir: Option<PathBuf>,
}

impl Cluster {
    fn start(dir: &Path, node_bin: &Path, trace_dir: Option<PathBuf>) -> Result<Self, String> {
        if let Some(t) = &trace_dir {
            fs::create_dir_all(t).map_err(|e| format!("{}: {e}", t.display()))?;
            // The real node: fast backup, 256 entries per AppendEntries; TCP neither
            // duplicates nor replays frames.
            let info = raft_model::conform::RunInfo::default();
            let json = serde_json::to_string_pretty(&info).map_err(|e| e.to_string())?;
            fs::write(t.join("run.json"), json).map_err(|e| e.to_string())?;
        }
        let mut nodes = Vec::new();
        for id in 0..NODES {
            nodes.push(NodeSpec {
                id,
                peer_addr: free_addr().map_err(|e| e.to_string())?,
                client_addr: free_addr().map_err(|e| e.to_string())?,
            });
        }
        let cluster = ClusterConfig::new(nodes);
        let cluster_file = dir.join("cluster.toml");
        fs::write(&cluster_file, cluster.to_toml()).map_err(|e| e.to_string())?;
        let mut c = Cluster {
            dir: dir.to_path_buf(),
            cluster,
            cluster_file,
            node_bin: node_bin.to_path_buf(),
            nodes: (0..NODES).map(|_| None).collect(),
            trace_dir,
        };
        for id in 0..NODES {
            c.start_node(id)?;
        }
        Ok(c)
    }

    fn start_node(&mut self, id: u64) -> Result<(), String> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node-{id}.log")))
            .map_err(|e| e.to_string())?;
        let mut command = Command::new(&self.node_bin);
        if let Some(t) = &self.trace_dir {
            command.arg("--trace-dir").arg(t);
        }
        let child = command
            .args(["--id", &id.to_string(), "--cluster"])
            .arg(&self.cluster_file)
            .arg("--data-dir")
            .arg(self.dir.join(format!("node-{id}")))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.node_bin.display()))?;
        self.nodes[id as usize] = Some(child);
        Ok(())
    }

    /// SIGKILL (`Child::kill` on Unix): nothing unsynced survives.
    fn kill9(&mut self, id: u64) {
        if let Some(mut child) = self.nodes[id as usize].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn client(&self) -> Client {
        Client::new(self.cluster.client_addrs())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in 0..NODES {
            self.kill9(id);
        }
    }
}

/// The trial's shared record: the history and the clock it is timed by.
struct Recorder {
    start: Instant,
    history: Mutex<History>,
    next_thread: Mutex<u64>,
}

impl Recorder {
    fn thread(&self) -> u64 {
        let mut t = self.next_thread.lock().unwrap_or_else(|e| e.into_inner());
        *t += 1;
        *t
    }

    /// Runs `op` as logical thread `thread`, recording its invocation and (if it has a definite
    /// outcome) its return. `None`: indefinite.
    fn run(&self, client: &mut Client, thread: u64, op: Op) -> Result<Option<OpResult>, String> {
        {
            let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
            h.invoke(thread, self.start.elapsed(), &op)?;
        }
        match client.execute(op, OP_TIMEOUT) {
            Ok(result) => {
                let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
                h.ret(thread, self.start.elapsed(), result.clone());
                Ok(Some(result))
            }
            Err(_) => Ok(None),
        }
    }
}

#[derive(Default)]
struct ClientFigures {
    ops: u64,
    acked_unique: Vec<(String, String)>,
    acked_shared: u64,
    indefinite: u64,
}

fn client_loop(
    cluster_addrs: Vec<SocketAddr>,
    rec: &Recorder,
    me: u64,
    trial: u32,
    seed: u64,
    stop: &AtomicBool,
) -> Result<ClientFigures, String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut figures = ClientFigures::default();
    let mut client = Client::new(cluster_addrs.clone());
    let mut thread = rec.thread();
    let mut known: Option<String> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let value = format!("t{trial}-c{me}-{n}");
        let (op, unique) = match rng.u32(0..100) {
            0..35 => (
                Op::Put {
                    key: format!("u-{me}-{n}"),
                    value: value.clone(),
                },
                true,
            ),
            35..60 => (
                Op::Put {
                    key: format!("s{}", rng.u64(0..SHARED_KEYS)),
                    value: value.clone(),
                },
                false,
            ),
            60..80 => (
                Op::Get {
                    key: format!("s{}", rng.u64(0..SHARED_KEYS)),
                },
                false,
            ),
            _ => (
                Op::Cas {
                    key: format!("s{}", rng.u64(0..SHARED_KEYS)),
                    expected: known.clone(),
                    new: value.clone(),
                },
                false,
            ),
        };
        figures.ops += 1;
        match rec.run(&mut client, thread, op.clone())? {
            Some(result) => match (&op, result) {
                (Op::Put { key, value }, _) if unique => {
                    figures.acked_unique.push((key.clone(), value.clone()))
                }
                (Op::Put { value, .. }, _) => {
                    figures.acked_shared += 1;
                    known = Some(value.clone());
                }
                (Op::Cas { new, .. }, OpResult::Value(_)) => {
                    figures.acked_shared += 1;
                    known = Some(new.clone());
                }
                (_, OpResult::Value(v)) | (_, OpResult::CasMismatch { current: v }) => known = v,
                _ => {}
            },
            None => {
                // Indefinite: the operation stays in flight; go on as a new logical thread and
                // a new session.
                figures.indefinite += 1;
                thread = rec.thread();
                client = Client::new(cluster_addrs.clone());
            }
        }
        thread::sleep(Duration::from_millis(rng.u64(5..40)));
    }
    Ok(figures)
}

struct TrialFigures {
    kills: u64,
    ops: u64,
    acked_unique: u64,
    acked_shared: u64,
    indefinite: u64,
    lost: Vec<String>,
    violation: Option<String>,
}

fn trial(options: &SoakOptions, n: u32, rng: &mut fastrand::Rng) -> Result<TrialFigures, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let trace_dir = options
        .trace_dir
        .as_ref()
        .map(|t| t.join(format!("trial-{n}")));
    let cluster = Arc::new(Mutex::new(Cluster::start(
        dir.path(),
        &options.node_bin,
        trace_dir,
    )?));
    let addrs = cluster
        .lock()
        .map_err(|_| "poisoned")?
        .cluster
        .client_addrs();
    let rec = Recorder {
        start: Instant::now(),
        history: Mutex::new(History::default()),
        next_thread: Mutex::new(0),
    };
    let stop = AtomicBool::new(false);
    let mut kills = 0u64;
    let seeds: Vec<u64> = (0..CLIENTS).map(|_| rng.u64(..)).collect();
    let results: Vec<Result<ClientFigures, String>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|me| {
                let (addrs, rec, stop, seed) = (addrs.clone(), &rec, &stop, seeds[me as usize]);
                scope.spawn(move || client_loop(addrs, rec, me, n, seed, stop))
            })
            .collect();
        // The nemesis: SIGKILL a random node at random times, restart it a little later; one
        // time in six, SIGKILL every node at once (all must recover from their WALs).
        let end = Instant::now() + options.load;
        while Instant::now() < end {
            thread::sleep(Duration::from_millis(rng.u64(200..900)));
            let victims: Vec<u64> = if rng.u32(0..6) == 0 {
                (0..NODES).collect()
            } else {
                vec![rng.u64(0..NODES)]
            };
            if let Ok(mut c) = cluster.lock() {
                for &id in &victims {
                    c.kill9(id);
                }
            }
            kills += victims.len() as u64;
            thread::sleep(Duration::from_millis(rng.u64(50..600)));
            if let Ok(mut c) = cluster.lock() {
                for &id in &victims {
                    if let Err(e) = c.start_node(id) {
                        eprintln!("trial {n}: restart node {id}: {e}");
                    }
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("client thread panicked".into()))
            })
            .collect()
    });
    let mut figures = TrialFigures {
        kills,
        ops: 0,
        acked_unique: 0,
        acked_shared: 0,
        indefinite: 0,
        lost: Vec::new(),
        violation: None,
    };
    let mut acked = Vec::new();
    for r in results {
        let f = r?;
        figures.ops += f.ops;
        figures.acked_unique += f.acked_unique.len() as u64;
        figures.acked_shared += f.acked_shared;
        figures.indefinite += f.indefinite;
        acked.extend(f.acked_unique);
    }
    // Every acknowledged write must read back (reads go through the log; recorded too).
    let mut reader = cluster.lock().map_err(|_| "poisoned")?.client();
    for (key, value) in &acked {
        // A read that times out is indefinite like any other operation: retry as a new
        // logical thread (the cluster is whole again, so this is rare).
        let mut got = None;
        for _ in 0..3 {
            let thread = rec.thread();
            if let Some(r) = rec.run(&mut reader, thread, Op::Get { key: key.clone() })? {
                got = Some(r);
                break;
            }
            reader = cluster.lock().map_err(|_| "poisoned")?.client();
        }
        let Some(got) = got else {
            return Err(format!("final read of {key} timed out three times"));
        };
        if got != OpResult::Value(Some(value.clone())) {
            figures
                .lost
                .push(format!("{key}={value} acknowledged, read back {got:?}"));
        }
    }
    drop(cluster);
    let history = rec.history.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = history.check() {
        figures.violation = Some(e);
    }
    if let Some(dir) = &options.history_dir {
        crate::history_export::write_soak_history(dir, options.seed, n, &history)?;
    }
    if figures.violation.is_some() || !figures.lost.is_empty() {
        // Keep the evidence.
        let keep = std::env::temp_dir().join(format!("raft-soak-trial-{}-{n}", options.seed));
        let _ = fs::remove_dir_all(&keep);
        let _ = fs::rename(dir.path(), &keep);
        eprintln!("trial {n}: data and node logs kept in {}", keep.display());
    }
    Ok(figures)
}

/// Runs the trials; prints one line per trial to stderr.
pub fn run(options: &SoakOptions) -> Result<SoakSummary, String> {
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(options.seed);
    let mut s = SoakSummary::default();
    for n in 1..=options.trials {
        let t0 = Instant::now();
        match trial(options, n, &mut rng) {
            Ok(f) => {
                s.trials += 1;
                s.kills += f.kills;
                s.ops += f.ops;
                s.acked_unique_writes += f.acked_unique;
                s.acked_shared_writes += f.acked_shared;
                s.indefinite += f.indefinite;
                s.lost += f.lost.len() as u64;
                eprintln!(
                    "trial {n}/{}: {} ops, {} kills, {} + {} acknowledged writes, {} indefinite, {} lost, {} in {:.1} s",
                    options.trials,
                    f.ops,
                    f.kills,
                    f.acked_unique,
                    f.acked_shared,
                    f.indefinite,
                    f.lost.len(),
                    if f.violation.is_some() { "NOT LINEARIZABLE" } else { "linearizable" },
                    t0.elapsed().as_secs_f64()
                );
                for l in f.lost.iter().take(5) {
                    s.failures.push(format!("trial {n}: lost write: {l}"));
                }
                if let Some(v) = f.violation {
                    s.violations += 1;
                    s.failures.push(format!("trial {n}: {v}"));
                }
            }
            Err(e) => {
                eprintln!("trial {n}: failed: {e}");
                s.trials += 1;
                s.failures.push(format!("trial {n}: {e}"));
            }
        }
    }
    s.seconds = started.elapsed().as_secs_f64();
    Ok(s)
}
