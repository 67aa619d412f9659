//! The `raft-check swarm` contract: exit codes (1 a violation, 3 nothing found, 2 bad usage),
//! never "verified", a replayable walk, the JSON report and the trace file. These run the
//! release binary.

mod common;

use common::{json_of, raft_check};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn tmp(name: &str) -> std::path::PathBuf {
    common::tmp("swarm_cli", name)
}

#[test]
fn bad_usage_exits_2_with_a_one_line_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["swarm", "--servers", "0"], "--servers must be at least 1"),
        (&["swarm", "--walks", "0"], "--walks must be at least 1"),
        (&["swarm", "--budget", "0"], "--budget must be a positive"),
        (
            &["swarm", "--budget", "1e30"],
            "--budget must be a positive",
        ),
        (
            &["swarm", "--shorten-budget", "nan"],
            "--shorten-budget must be",
        ),
        (
            &["swarm", "--catalogue", "--budget-per-mutant=-1"],
            "--budget-per-mutant must be",
        ),
        (
            &["swarm", "--walk", "3", "--walks", "5"],
            "cannot be used with",
        ),
        (
            &["swarm", "--max-depth", "0"],
            "--max-depth must be at least 1",
        ),
        (&["swarm", "--threads", "0"], "--threads must be at least 1"),
        (&["swarm", "--max-crashes", "4"], "exceeds --servers"),
        (
            &["swarm", "--trace-format", "json"],
            "--trace-format json|itf needs --trace-out",
        ),
        (
            &["swarm", "--catalogue", "--servers", "2"],
            "--catalogue takes no model flags",
        ),
    ];
    for (args, expected) in cases {
        let out = raft_check(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn correct_model_is_incomplete_never_verified() {
    let json = tmp("correct.json");
    let out = raft_check(&[
        "swarm",
        "--budget",
        "2",
        "--progress",
        "0",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("not a proof"), "{stdout}");
    assert!(!stdout.contains("verified"), "{stdout}");
    let report = json_of(&json);
    assert_eq!(report["outcome"], "incomplete");
    assert!(report["walks"].as_u64().unwrap() > 0);
}

#[test]
fn a_violation_exits_1_and_its_walk_replays() {
    let trace = tmp("trace.txt");
    let json = tmp("violated.json");
    let out = raft_check(&[
        "swarm",
        "--mutant",
        "vote-twice",
        "--budget",
        "20",
        "--progress",
        "0",
        "--json",
        json.to_str().unwrap(),
        "--trace-out",
        trace.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("\"Election Safety\" is violated"),
        "{stdout}"
    );
    let report = json_of(&json);
    let v = &report["violation"];
    assert_eq!(v["property"], "Election Safety");
    assert!(v["shortened_length"].as_u64() <= v["raw_length"].as_u64());
    assert!(std::fs::read_to_string(&trace)
        .unwrap()
        .contains("Counterexample: \"Election Safety\""));
    // The replay command names the walk: run it alone, the same walk and violation.
    let walk = v["walk"].as_u64().unwrap().to_string();
    let again = raft_check(&[
        "swarm",
        "--mutant",
        "vote-twice",
        "--walk",
        &walk,
        "--progress",
        "0",
    ]);
    let again_out = text(&again.stdout);
    assert_eq!(again.status.code(), Some(1), "{again_out}");
    assert!(
        again_out.contains(&format!("(walk {walk}, after")),
        "{again_out}"
    );
    assert!(v["replay"]
        .as_str()
        .unwrap()
        .contains("--mutant=vote-twice"));
}
