//! `raft-node --id N --cluster cluster.toml --data-dir DIR [--trace-dir DIR]`: runs one server
//! of the cluster.

use clap::Parser;
use raft_impl::config::ClusterConfig;
use raft_impl::node::{self, NodeOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "Run one Raft key-value server")]
struct Args {
    /// This node's id in the cluster file.
    #[arg(long)]
    id: u64,
    /// The cluster file (`[[node]]` tables with id, peer_addr, client_addr).
    #[arg(long)]
    cluster: PathBuf,
    /// Directory for the write-ahead log (created if missing).
    #[arg(long)]
    data_dir: PathBuf,
    /// Lower bound of the randomized election timeout, in milliseconds.
    #[arg(long, default_value_t = 150)]
    election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout, in milliseconds.
    #[arg(long, default_value_t = 300)]
    election_timeout_max_ms: u64,
    /// Leader heartbeat interval, in milliseconds.
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    /// Write a per-step trace (JSON Lines) to DIR/node-<id>.jsonl, for `raft-check conform`.
    #[arg(long)]
    trace_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    raft_impl::logging::init();
    let args = Args::parse();
    let cluster = match ClusterConfig::load_or_exit("raft-node", &args.cluster) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if cluster.node(args.id).is_none() {
        eprintln!(
            "raft-node: node id {} is not in {}",
            args.id,
            args.cluster.display()
        );
        return ExitCode::from(2);
    }
    if args.election_timeout_min_ms == 0
        || args.election_timeout_max_ms < args.election_timeout_min_ms
        || args.heartbeat_ms == 0
        || args.heartbeat_ms >= args.election_timeout_min_ms
    {
        eprintln!("raft-node: need 0 < heartbeat < election-timeout-min <= election-timeout-max");
        return ExitCode::from(2);
    }
    let mut options = NodeOptions::new(args.id, cluster, args.data_dir);
    options.election_timeout_min = Duration::from_millis(args.election_timeout_min_ms);
    options.election_timeout_max = Duration::from_millis(args.election_timeout_max_ms);
    options.heartbeat_interval = Duration::from_millis(args.heartbeat_ms);
    options.trace_dir = args.trace_dir;
    let handle = match node::start(options) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("raft-node: {e:#}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = ctrlc::set_handler(handle.stopper()) {
        tracing::warn!(error = %e, "cannot install the signal handler");
    }
    match handle.wait() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raft-node: stopped: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_well_formed() {
        super::Args::command().debug_assert();
    }
}
