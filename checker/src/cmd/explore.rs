//! `raft-check explore`: stateright's web Explorer on the model, and, for a mutant, the link
//! straight to its shortest counterexample.
//!
//! The Explorer (stateright 0.31) addresses a state by the path that reaches it:
//! `#/steps/INIT/A1/A2/...`, the index of the initial state, then the index of each action in
//! `Model::actions` order; `Path::encode` computes exactly that. For each step it shows
//! `Model::format_action` in the path and `Model::format_step` in the state pane; this model
//! renders the reached state there (`RaftModel::step_view`), led by the
//! Always properties it violates.

use super::usage::usage_error;
use crate::engine::shortest::{self, Search};
use crate::report::text_trace;
use raft_model::model::ModelConfig;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct ExploreArgs {
    #[command(flatten)]
    pub model: ModelConfig,
    /// Address to serve on (HOST:PORT; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: String,
    /// Checker threads behind the Explorer's "Run to completion" (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `raft-check explore`.
pub fn run(args: &ExploreArgs) -> i32 {
    let (cfg, addr, threads) = (&args.model, args.addr.as_str(), args.threads);
    if let Err(e) = cfg.validate() {
        return usage_error(e);
    }
    if threads == Some(0) {
        return usage_error("--threads must be at least 1");
    }
    let addr = match reserve(addr) {
        Ok(a) => a,
        Err(e) => return usage_error(e),
    };
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    explore(cfg, addr, threads)
}

/// Resolve `addr` and check that it can be listened on, so that a bad address or a busy port is
/// a clear message (stateright's `serve` would panic on either). Port 0 picks a free port.
pub fn reserve(addr: &str) -> Result<SocketAddr, String> {
    let wanted = addr
        .to_socket_addrs()
        .map_err(|e| format!("bad --addr '{addr}': {e} (expected HOST:PORT, e.g. 127.0.0.1:3000)"))?
        .next()
        .ok_or_else(|| format!("bad --addr '{addr}': it resolves to no address"))?;
    let listener = TcpListener::bind(wanted).map_err(|e| {
        format!("cannot listen on {wanted}: {e} (is another program using the port? pick another with --addr)")
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {wanted}: {e}"))?;
    drop(listener);
    Ok(bound)
}

/// The base URL a browser on this machine opens for `addr`.
pub fn base_url(addr: SocketAddr) -> String {
    let host = match addr {
        a if a.ip().is_unspecified() && a.is_ipv4() => "127.0.0.1".to_string(),
        a if a.ip().is_unspecified() => "[::1]".to_string(),
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    format!("http://{host}:{}/", addr.port())
}

/// Serve the Explorer on `addr` until the process is stopped. Returns an exit code only when it
/// cannot serve.
pub fn explore(cfg: &ModelConfig, addr: SocketAddr, threads: usize) -> i32 {
    let model = cfg.clone().into_model();
    let server = {
        let model = model.clone();
        std::thread::spawn(move || {
            use stateright::Model;
            model.checker().threads(threads).serve(addr);
        })
    };
    // Wait until the Explorer answers, so the printed link works when it is printed.
    let started = Instant::now();
    while TcpStream::connect_timeout(&addr_to_connect(addr), Duration::from_millis(200)).is_err() {
        if server.is_finished() || started.elapsed() > Duration::from_secs(30) {
            eprintln!("raft-check: error: the Explorer could not listen on {addr}");
            return crate::report::check_report::EXIT_USAGE;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let base = base_url(addr);
    println!("Explorer: {base}");
    match cfg.mutant {
        None => println!(
            "No --mutant: every path starts at the initial state; follow \"Next Action Choices\"."
        ),
        Some(m) => {
            println!("Searching for the shortest counterexample of mutant {m}...");
            match shortest::search(&model, &[], None, false) {
                Search::Violated { property, path, .. } => {
                    let steps = path.clone().into_actions().len();
                    println!("Counterexample: \"{property}\" is violated after {steps} steps:");
                    print!("{}", text_trace::render(cfg, &path));
                    println!(
                        "Open the counterexample (its last step shows \"VIOLATED: {property}\"):"
                    );
                    println!("Counterexample URL: {base}#/steps/{}", path.encode(&model));
                }
                Search::Exhausted { .. } | Search::OutOfTime { .. } => println!(
                    "No Always property is violated within this bound: the mutant survives it."
                ),
            }
        }
    }
    println!("Ctrl-C stops the Explorer.");
    match server.join() {
        Ok(()) => 0,
        Err(_) => {
            eprintln!("raft-check: error: the Explorer stopped serving {addr}");
            crate::report::check_report::EXIT_USAGE
        }
    }
}

/// Where to connect to reach a server listening on `addr` (an unspecified address means any).
fn addr_to_connect(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    a
}
