//! A usage error, for the subcommands.

/// Print a usage error; its exit code (2).
pub fn usage_error(msg: impl std::fmt::Display) -> i32 {
    eprintln!("raft-check: error: {msg}");
    crate::report::check_report::EXIT_USAGE
}
