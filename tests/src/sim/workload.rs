//! The simulated key-value clients' state and workload (what each client knows and is
//! doing); `clients` drives them inside the simulator.

use raft_impl::kv::Command;
use std::collections::BTreeMap;
use std::time::Duration;

/// Workload and patience of the simulated clients.
#[derive(Clone, Debug)]
pub struct Workload {
    pub clients: usize,
    pub ops_per_client: u32,
    pub keys: usize,
    /// One attempt at one server waits this long for an answer.
    pub attempt_timeout: Duration,
    /// After this long the outcome is unknown: the client gives up on the operation.
    pub op_timeout: Duration,
    /// Pause between a client's operations: uniform in 0..think.
    pub think: Duration,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            clients: 3,
            ops_per_client: 40,
            keys: 3,
            attempt_timeout: Duration::from_millis(500),
            op_timeout: Duration::from_millis(3000),
            think: Duration::from_millis(60),
        }
    }
}

pub(super) struct Current {
    pub(super) command: Command,
    pub(super) invoked: Duration,
    pub(super) attempt: u64,
    /// An attempt is out and unanswered (a wake-up then means it timed out).
    pub(super) awaiting: bool,
}

pub struct KvClient {
    /// Logical thread id in the history.
    pub thread: u64,
    pub(super) client_id: u64,
    pub(super) seq: u64,
    pub(super) target: usize,
    pub(super) current: Option<Current>,
    /// When this client next wants to act.
    pub wake: Option<Duration>,
    pub(super) ops_left: u32,
    pub(super) counter: u64,
    /// Last value this client knows per key (for compare-and-swap).
    pub(super) known: BTreeMap<String, Option<String>>,
    pub(super) workload: Workload,
    /// Attempts sent so far (never reset: a late answer to an earlier operation's attempt
    /// must not be taken for the current one's).
    pub(super) attempts: u64,
    /// Operations given up on.
    pub indefinite: u32,
    /// Acknowledged puts and successful compare-and-swaps.
    pub acked_writes: u32,
    /// The same writes, with when they were acknowledged.
    pub acked: Vec<(Duration, Command)>,
}

impl KvClient {
    pub fn done(&self) -> bool {
        self.current.is_none() && self.ops_left == 0
    }
}
