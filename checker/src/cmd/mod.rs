//! The subcommands, one file each, each with its flags (`clap::Args`) and its entry point.

pub mod bench;
pub mod check;
pub mod conform;
pub mod explore;
pub mod gate;
pub mod merge;
pub mod mutants;
pub mod mutation;
pub mod table;

/// Print a usage error; its exit code (2).
pub fn usage_error(msg: impl std::fmt::Display) -> i32 {
    eprintln!("raft-check: error: {msg}");
    crate::report::EXIT_USAGE
}
