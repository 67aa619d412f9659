//! What the checker's integration tests share: running the release `raft-check`, scratch files,
//! reading its JSON. Each test crate uses only some of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `raft-check` binary built for these tests.
pub fn raft_check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raft-check"))
        .args(args)
        .output()
        .expect("raft-check runs")
}

/// A scratch path `name` in a folder of its own for `suite` (under the target directory).
pub fn tmp(suite: &str, name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(suite);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir.join(name)
}

/// The JSON file at `path`, parsed.
pub fn json_of(path: &Path) -> serde_json::Value {
    let raw = std::fs::read_to_string(path).expect("JSON written");
    serde_json::from_str(&raw).expect("valid JSON")
}
