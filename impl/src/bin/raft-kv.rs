//! `raft-kv --cluster cluster.toml put K V | get K | del K | cas K OLD NEW | bench |
//! leader show | leader transfer --to N | member list | member add N [PEER CLIENT] |
//! member readdress N PEER CLIENT | member promote N | member remove N`: a command-line
//! client of the replicated key-value service, and the operators' leadership and membership
//! commands.
//!
//! Exit codes: 0 done; 1 no leader with a quorum within `--timeout-secs` (or another runtime
//! failure; `leader transfer`: not done in time, each try abandoned by the leader, or another
//! node won the election); 2 bad command line or cluster file (`leader transfer`: N is not a
//! member); 3 `cas` found another value; 4 `get` of a key that is not set (nothing on stdout,
//! `KEY: not set` on stderr), so that a stored value such as "(nil)" is never confused with a
//! missing key.
//!
//! TLS: with `--ca FILE` (and `--cert FILE --key FILE` for a node that requires client
//! certificates), or by default from the cluster file's `[tls]` table (its `ca.pem`, and its
//! `client.pem` and `client.key` when they are there); plain TCP without either.

use clap::{Parser, Subcommand};
use raft_impl::client::tls_config_for;
use raft_impl::client::{Client, ClientError, LeaderInfo};
use raft_impl::config::ClusterConfig;
use raft_impl::core::Address;
use raft_impl::kv::{Op, OpResult};
use raft_impl::tls::Identity;
use rustls::ClientConfig;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    about = "Client of the Raft key-value service",
    after_help = "Exit codes: 0 done, 1 no leader with a quorum in time (leader transfer: \
                  not done in time, or another node won), 2 bad usage (leader transfer: the \
                  node is not a member), 3 cas found another value, 4 get: the key is not set \
                  (nothing on stdout)."
)]
struct Args {
    /// The cluster file.
    #[arg(long)]
    cluster: PathBuf,
    /// Give up (exit 1) when no leader with a quorum answers within this many seconds (at
    /// least 1; the command ends within about this time).
    #[arg(long, default_value_t = 10, value_parser = parse_timeout_secs)]
    timeout_secs: u64,
    /// Connect with TLS, trusting this CA certificate (PEM); default: the cluster file's
    /// `[tls]` directory's ca.pem, if it has one.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The client certificate (PEM) to present, for nodes that require one (with --key).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Set KEY to VALUE (or to the contents of --value-file; at most 1.5 MiB in all).
    Put {
        key: String,
        #[arg(required_unless_present = "value_file", conflicts_with = "value_file")]
        value: Option<String>,
        /// Read the value from this file ("-": standard input), for values too large for a
        /// command line.
        #[arg(long)]
        value_file: Option<PathBuf>,
    },
    /// Print KEY's value (read through the log); exit 4 if it is not set.
    Get { key: String },
    /// Remove KEY.
    Del { key: String },
    /// Set KEY to NEW if its value is OLD (exit 3 if it is not).
    Cas {
        key: String,
        old: String,
        new: String,
    },
    /// Which node leads, or hand the leadership to another node (for maintenance).
    Leader {
        #[command(subcommand)]
        command: LeaderCmd,
    },
    /// The cluster's membership: list it, or change it one node at a time.
    Member {
        #[command(subcommand)]
        command: MemberCmd,
    },
    /// Measure throughput and latency: closed loop, one operation in flight per client, a
    /// warmup and then a measured window (only operations completing inside it count);
    /// failures are counted, not fatal.
    Bench {
        /// Concurrent clients, each with its own session.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Seconds measured (after the warmup).
        #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
        duration: f64,
        /// Seconds of load before the measured window.
        #[arg(long, default_value_t = 2.0, value_parser = parse_seconds)]
        warmup: f64,
        /// Bytes per value written.
        #[arg(long, default_value_t = 100)]
        value_size: usize,
        /// `distinct` (a new key per operation) or a number of keys shared by all clients
        /// (with --ops too: e.g. `--ops 1000000 --keys 10000` overwrites 10,000 keys, so the
        /// state machine stays bounded while the log takes a million entries).
        #[arg(long, default_value = "distinct")]
        keys: raft_impl::bench::Keys,
        /// What each operation is (gets read through the log; their keys are written first).
        #[arg(long, value_enum, default_value = "put")]
        op: raft_impl::bench::BenchOp,
        /// The servers' process ids (comma-separated), for their CPU time over the window.
        #[arg(long, value_delimiter = ',')]
        server_pids: Vec<u32>,
        /// Also write the report as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// How the clients' connections are driven: `poll` (all on one thread, as Go's
        /// netpoller drives etcd's load generator: the load generator takes little of the CPU
        /// the servers share) or `threads` (a thread per client, through the client library;
        /// the one that speaks TLS).
        #[arg(long, value_enum, default_value = "poll")]
        io: raft_impl::bench::ClientIo,
        /// The old fixed-count mode instead: this many puts shared by the clients, no warmup,
        /// the whole run timed (kept for ../shared/bench/etcd/kv-sbs.sh); --clients and --keys
        /// apply, values are 100 bytes.
        #[arg(long, conflicts_with_all = ["duration", "warmup", "op", "json", "server_pids", "io"])]
        ops: Option<usize>,
    },
}

#[derive(Subcommand, Debug)]
enum LeaderCmd {
    /// Print the id of the node that leads.
    ///
    /// Any node's hint is followed to the leader, which names itself (as it believes: a
    /// leader cut off from its majority believes it for at most an election timeout).
    Show,
    /// Hand the leadership to node N, and wait until N leads.
    ///
    /// The leader (Raft thesis §3.10) stops taking writes, brings N's log up to date, and N
    /// starts an election at once; the command ends when the old leader has stepped down
    /// with N as leader. A transfer the leader abandons (N did not win within an election
    /// timeout) is asked again until --timeout-secs.
    #[command(
        after_help = "Exit codes: 0 N leads (prints \"OK: node N leads term T\"), \
                            1 not done in time, or another node won, 2 N is not a member."
    )]
    Transfer {
        /// The id of the node to hand the leadership to (a member of the cluster file).
        #[arg(long, value_name = "N")]
        to: u64,
    },
}

#[derive(Subcommand, Debug)]
#[command(
    after_help = "Exit codes: 0 done (prints the configuration), 1 not done in time, \
                        2 refused (the reason is printed)."
)]
enum MemberCmd {
    /// Print the configuration, as the leader knows it: its voters and learners, then one line
    /// per member with its addresses ("N peer ADDR client ADDR").
    List,
    /// Add node N as a learner: it receives the log and catches up, but does not vote.
    ///
    /// With its addresses (IP:PORT each), the configuration entry carries them and every
    /// member learns them from the log: N needs to be in no cluster file (start it with
    /// `raft-node --join`). Without, N must be listed in every member's cluster file (with
    /// `initial_member = false`). N must be running, started empty.
    Add {
        #[arg(value_name = "N")]
        id: u64,
        /// N's peer address (where the members send it Raft messages).
        #[arg(value_name = "PEER_ADDR", requires = "client_addr")]
        peer_addr: Option<String>,
        /// N's client address.
        #[arg(value_name = "CLIENT_ADDR")]
        client_addr: Option<String>,
    },
    /// Member N is now reached at these addresses (a configuration change of its own; restart
    /// N listening there first, or right after).
    Readdress {
        #[arg(value_name = "N")]
        id: u64,
        #[arg(value_name = "PEER_ADDR")]
        peer_addr: String,
        #[arg(value_name = "CLIENT_ADDR")]
        client_addr: String,
    },
    /// Make learner N a voter, once it has caught up with the leader.
    Promote {
        #[arg(value_name = "N")]
        id: u64,
    },
    /// Remove node N (a voter or a learner; the leader too, which steps down once the
    /// removal is committed). Stop N's process afterwards.
    Remove {
        #[arg(value_name = "N")]
        id: u64,
    },
}

/// `raft-kv member list | add N [PEER_ADDR CLIENT_ADDR] | readdress N PEER_ADDR CLIENT_ADDR |
/// promote N | remove N`.
fn member(
    cluster: &ClusterConfig,
    command: MemberCmd,
    timeout: Duration,
    tls: Option<Arc<ClientConfig>>,
) -> ExitCode {
    use raft_impl::wire::MemberRequest;
    let request = match command {
        MemberCmd::List => MemberRequest::List,
        MemberCmd::Add {
            id,
            peer_addr,
            client_addr,
        } => MemberRequest::AddLearner {
            id,
            address: peer_addr
                .zip(client_addr)
                .map(|(peer, client)| Address { peer, client }),
        },
        MemberCmd::Readdress {
            id,
            peer_addr,
            client_addr,
        } => MemberRequest::Readdress {
            id,
            address: Address {
                peer: peer_addr,
                client: client_addr,
            },
        },
        MemberCmd::Promote { id } => MemberRequest::Promote { id },
        MemberCmd::Remove { id } => MemberRequest::Remove { id },
    };
    let mut client = Client::new(cluster.client_addrs()).with_tls(tls);
    let list = |ids: &[u64]| {
        let v: Vec<String> = ids.iter().map(u64::to_string).collect();
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(",")
        }
    };
    match client.member(request, timeout) {
        Ok(m) => {
            println!("voters {} learners {}", list(&m.voters), list(&m.learners));
            for (id, a) in &m.addresses {
                println!("{id} peer {} client {}", a.peer, a.client);
            }
            ExitCode::SUCCESS
        }
        Err(e @ ClientError::Refused { .. }) => {
            eprintln!("raft-kv: member: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("raft-kv: member: {e}");
            ExitCode::from(1)
        }
    }
}

/// `raft-kv leader show | transfer --to N`.
fn leader(
    cluster: &ClusterConfig,
    command: LeaderCmd,
    timeout: Duration,
    tls: Option<Arc<ClientConfig>>,
) -> ExitCode {
    let mut client = Client::new(cluster.client_addrs()).with_tls(tls);
    match command {
        LeaderCmd::Show => match client.leader_info(timeout) {
            Ok(LeaderInfo { id, .. }) => {
                println!("{id}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("raft-kv: leader show: {e}");
                ExitCode::from(1)
            }
        },
        LeaderCmd::Transfer { to } => {
            if cluster.node(to).is_none() {
                let ids: Vec<String> = cluster.ids().iter().map(|id| id.0.to_string()).collect();
                eprintln!(
                    "raft-kv: leader transfer: node {to} is not in the cluster file (its nodes: {})",
                    ids.join(", ")
                );
                return ExitCode::from(2);
            }
            match client.transfer_leadership(to, timeout) {
                Ok(LeaderInfo { id, term }) if id == to => {
                    println!("OK: node {id} leads term {term}");
                    ExitCode::SUCCESS
                }
                Ok(LeaderInfo { id, term }) => {
                    eprintln!("raft-kv: leader transfer: node {id} won term {term}, not node {to}");
                    ExitCode::from(1)
                }
                Err(e @ ClientError::Refused { .. }) => {
                    eprintln!("raft-kv: leader transfer: {e}");
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("raft-kv: leader transfer: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && (0.0..=86_400.0).contains(&x) => Ok(x),
        Ok(_) => Err("must be between 0 and 86400 seconds".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The closed-loop bench over a warmup and a measured window (`raft_impl::bench`).
fn timed_bench(
    cluster: &ClusterConfig,
    options: &raft_impl::bench::BenchOptions,
    json: Option<&std::path::Path>,
) -> ExitCode {
    eprintln!(
        "raft-kv: bench: {} clients, {:.1} s warmup, {:.1} s measured",
        options.clients,
        options.warmup.as_secs_f64(),
        options.duration.as_secs_f64()
    );
    let report = match raft_impl::bench::run(&cluster.client_addrs(), options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("raft-kv: bench: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{}", raft_impl::bench::summary(&report));
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report).expect("the report serializes");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("raft-kv: bench: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    if report.ops == 0 {
        eprintln!("raft-kv: bench: no operation completed in the measured window");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn parse_timeout_secs(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("must be at least 1 second (0 would allow no attempt)".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn main() -> ExitCode {
    raft_impl::logging::init();
    let args = Args::parse();
    let cluster = match ClusterConfig::load_or_exit("raft-kv", &args.cluster) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let timeout = Duration::from_secs(args.timeout_secs);
    let identity = match (args.cert, args.key) {
        (Some(cert), Some(key)) => Some(Identity { cert, key }),
        _ => None,
    };
    let tls = match tls_config_for(
        &cluster,
        &args.cluster,
        args.ca.as_deref(),
        identity.as_ref(),
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("raft-kv: {e}");
            return ExitCode::from(2);
        }
    };
    let op = match args.command {
        Cmd::Put {
            key,
            value,
            value_file,
        } => {
            let value = match (value, value_file) {
                (Some(v), _) => v,
                (None, Some(path)) => match read_value(&path) {
                    Ok(v) => v,
                    Err(e) => {
                        eprintln!("raft-kv: {e}");
                        return ExitCode::from(2);
                    }
                },
                (None, None) => unreachable!("clap requires a value or --value-file"),
            };
            Op::Put { key, value }
        }
        Cmd::Get { key } => Op::Get { key },
        Cmd::Del { key } => Op::Delete { key },
        Cmd::Cas { key, old, new } => Op::Cas {
            key,
            expected: Some(old),
            new,
        },
        Cmd::Leader { command } => return leader(&cluster, command, timeout, tls),
        Cmd::Member { command } => return member(&cluster, command, timeout, tls),
        Cmd::Bench {
            clients,
            duration,
            warmup,
            value_size,
            keys,
            op,
            server_pids,
            json,
            ops,
            io,
        } => {
            if let Some(ops) = ops {
                return bench(&cluster, clients, ops, keys, timeout, tls);
            }
            let options = raft_impl::bench::BenchOptions {
                clients,
                warmup: Duration::from_secs_f64(warmup),
                duration: Duration::from_secs_f64(duration),
                value_size,
                keys,
                op,
                op_timeout: timeout,
                server_pids,
                io,
                tls,
            };
            return timed_bench(&cluster, &options, json.as_deref());
        }
    };
    let get_key = match &op {
        Op::Get { key } => Some(key.clone()),
        _ => None,
    };
    let mut client = Client::new(cluster.client_addrs()).with_tls(tls);
    match client.execute(op, timeout) {
        Ok(OpResult::Value(value)) if get_key.is_some() => match value {
            Some(value) => {
                println!("{value}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("raft-kv: {}: not set", get_key.unwrap_or_default());
                ExitCode::from(4)
            }
        },
        Ok(OpResult::Value(_)) => {
            println!("OK");
            ExitCode::SUCCESS
        }
        Ok(OpResult::CasMismatch { current }) => {
            match current {
                Some(value) => println!("CAS FAILED: current value is {value:?}"),
                None => println!("CAS FAILED: the key is not set"),
            }
            ExitCode::from(3)
        }
        Ok(OpResult::StaleRequest { last_seq }) => {
            eprintln!("raft-kv: request refused as stale (session at seq {last_seq})");
            ExitCode::from(1)
        }
        Err(e @ ClientError::TooLarge { .. }) => {
            eprintln!("raft-kv: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("raft-kv: {e}");
            ExitCode::from(1)
        }
    }
}

/// A value from a file or standard input ("-"), as UTF-8. Reads at most one byte more than a
/// request may hold: a larger value is refused by the client's size check all the same.
fn read_value(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let limit = raft_impl::wire::MAX_REQUEST_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    let read = if path == std::path::Path::new("-") {
        std::io::stdin().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    read.map_err(|e| format!("cannot read the value from {}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("the value in {} is not UTF-8", path.display()))
}

/// `--ops`: `clients` threads, each with its own session, share `ops` puts (keys from `keys`:
/// `bench-<client>-<i>` for distinct ones); prints ops/s, p50, p99 over the whole run (no
/// warmup; the first operation fails the run).
fn bench(
    cluster: &ClusterConfig,
    clients: usize,
    ops: usize,
    keys: raft_impl::bench::Keys,
    timeout: Duration,
    tls: Option<Arc<ClientConfig>>,
) -> ExitCode {
    if clients == 0 || ops == 0 {
        eprintln!("raft-kv: bench needs --clients > 0 and --ops > 0");
        return ExitCode::from(2);
    }
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let addrs = cluster.client_addrs();
            let tls = tls.clone();
            let count = ops / clients + usize::from(c < ops % clients);
            std::thread::spawn(move || {
                let mut client = Client::new(addrs).with_tls(tls);
                let mut latencies = Vec::with_capacity(count);
                for i in 0..count {
                    let t = Instant::now();
                    let op = Op::Put {
                        key: keys.key(c, i as u64),
                        // 100-byte values, as in the etcd comparison of the issue.
                        value: format!("{i:0>100}"),
                    };
                    client.execute(op, timeout).map_err(|e| e.to_string())?;
                    latencies.push(t.elapsed());
                }
                Ok::<_, String>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(ops);
    for t in threads {
        match t.join() {
            Ok(Ok(l)) => latencies.extend(l),
            Ok(Err(e)) => {
                eprintln!("raft-kv: bench failed: {e}");
                return ExitCode::from(1);
            }
            Err(_) => {
                eprintln!("raft-kv: bench client thread panicked");
                return ExitCode::from(1);
            }
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| raft_impl::bench::percentile(&latencies, p);
    println!(
        "{} puts, {} clients: {:.0} ops/s, p50 {:.2} ms, p99 {:.2} ms",
        latencies.len(),
        clients,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(50.0).as_secs_f64() * 1e3,
        pct(99.0).as_secs_f64() * 1e3
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_well_formed() {
        super::Args::command().debug_assert();
    }

    #[test]
    fn a_fixed_count_bench_takes_a_bounded_key_space() {
        use clap::Parser;
        let args = [
            "raft-kv",
            "--cluster",
            "c.toml",
            "bench",
            "--ops",
            "1000000",
        ];
        let parsed = super::Args::try_parse_from(args.iter().chain(&["--keys", "10000"]));
        match parsed.map(|a| a.command) {
            Ok(super::Cmd::Bench { ops, keys, .. }) => {
                assert_eq!(ops, Some(1_000_000));
                assert_eq!(keys, raft_impl::bench::Keys::Shared(10_000));
            }
            other => panic!("{other:?}"),
        }
        // The timed mode's flags still do not mix with --ops.
        assert!(super::Args::try_parse_from(args.iter().chain(&["--duration", "5"])).is_err());
    }
}
