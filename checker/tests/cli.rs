//! The `raft-check check` contract: exit codes, messages, JSON. These run the release binary.

mod common;

use common::{json_of, raft_check};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn tmp(name: &str) -> std::path::PathBuf {
    common::tmp("cli", name)
}

#[test]
fn bad_usage_exits_2_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["check", "--bound", "plain", "--servers", "0"],
            "--servers must be at least 1",
        ),
        (
            &["check", "--bound", "plain", "--max-term", "0"],
            "--max-term must be at least 1",
        ),
        (
            &["check", "--bound", "plain", "--network", "carrier-pigeon"],
            "carrier-pigeon",
        ),
        (
            &["check", "--bound", "plain", "--threads", "0"],
            "--threads must be at least 1",
        ),
        (
            &["check", "--bound", "plain", "--mutant", "nonsense"],
            "unknown mutant 'nonsense'",
        ),
        (
            &["check", "--bound", "plain", "--max-crashes", "4"],
            "exceeds --servers",
        ),
        (
            &[
                "check",
                "--bound",
                "plain",
                "--symmetry",
                "--strategy",
                "bfs",
            ],
            "BFS ignores symmetry",
        ),
        (
            &["check", "--bound", "plain", "--strategy", "sim"],
            "never finishes",
        ),
        (
            &[
                "check",
                "--bound",
                "plain",
                "--engine",
                "compact",
                "--threads",
                "2",
            ],
            "--engine compact's DFS runs on one thread",
        ),
        (
            &[
                "check",
                "--bound",
                "plain",
                "--engine",
                "compact",
                "--strategy",
                "sim",
            ],
            "--engine compact is a depth-first or breadth-first search",
        ),
        (
            &[
                "check",
                "--bound",
                "plain",
                "--engine",
                "compact",
                "--strategy",
                "bfs",
                "--sleep-sets",
            ],
            "--sleep-sets is for the depth-first search",
        ),
        (
            &["check", "--bound", "plain", "--sleep-sets"],
            "--sleep-sets needs --engine compact",
        ),
        (
            &["check", "--bound", "plain", "--engine", "turbo"],
            "invalid value 'turbo'",
        ),
        (
            &["check", "--bound", "plain", "--timeout=-1"],
            "--timeout must be a positive",
        ),
        (
            &["check", "--bound", "plain", "--no-such-flag"],
            "--no-such-flag",
        ),
        (
            &["check", "--bound", "plain", "--trace-format", "xml"],
            "invalid value 'xml'",
        ),
        (
            &["check", "--bound", "plain", "--trace-format", "itf"],
            "needs --trace-out",
        ),
        (
            &[
                "check",
                "--bound",
                "plain",
                "--trace-out",
                "/nonexistent-dir/trace.txt",
            ],
            "cannot write --trace-out",
        ),
        (
            &["check", "--bound", "plain", "--trace-out", "/"],
            "is a directory",
        ),
        // A small bound, so that a check run before the refusal would end (and fail the
        // "Checking Raft" assertion below) quickly.
        (
            &[
                "check",
                "--bound",
                "plain",
                "--max-states",
                "1000",
                "--json",
                "/nonexistent-dir/x.json",
            ],
            "cannot write --json /nonexistent-dir/x.json",
        ),
        (
            &[
                "check",
                "--bound",
                "plain",
                "--max-states",
                "1000",
                "--json",
                "/",
            ],
            "--json /: is a directory",
        ),
        (&["explore", "--addr", "nonsense"], "bad --addr 'nonsense'"),
        (&["explore", "--addr", "127.0.0.1:99999"], "bad --addr"),
        (
            &["explore", "--mutant", "nonsense"],
            "unknown mutant 'nonsense'",
        ),
        (&[], "Usage"),
    ];
    for (args, needle) in cases {
        let out = raft_check(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(needle),
            "{args:?}: stderr lacks {needle:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        // Refused before the check starts, not after it (its verdict would be lost).
        let stdout = text(&out.stdout);
        assert!(
            !stdout.contains("Checking Raft"),
            "{args:?}: the check ran: {stdout}"
        );
    }
}

#[test]
fn a_state_cap_is_incomplete_and_never_verified() {
    // stateright's engine, and the checker's own engines.
    for (i, engine) in [
        &[][..],
        &["--engine=compact"][..],
        &["--engine=compact", "--strategy=bfs"][..],
        &["--engine=compact", "--strategy=bfs", "--threads=2"][..],
    ]
    .into_iter()
    .enumerate()
    {
        let json = tmp(&format!("capped-{i}.json"));
        let mut args = vec![
            "check".to_string(),
            "--bound=plain".into(),
            "--max-states=2000".into(),
            format!("--json={}", json.display()),
        ];
        args.extend(engine.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = raft_check(&args);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{engine:?}: {}",
            text(&out.stdout)
        );
        let stdout = text(&out.stdout);
        assert!(stdout.contains("INCOMPLETE"), "{stdout}");
        assert!(!stdout.contains("verified within"), "{stdout}");
        let v = json_of(&json);
        assert_eq!(v["complete"], false);
        assert!(v["total_states"].as_u64() >= Some(2000), "{engine:?}: {v}");
        for p in v["properties"].as_array().unwrap() {
            if p["expectation"] == "always" {
                assert_eq!(p["status"], "unknown", "{p}");
            }
        }
    }
}

/// The checker's own engines (DFS with sleep sets; BFS) against stateright's DFS on one thread:
/// the same distinct states and every property's status the same, on a correct bound and a
/// mutant's.
#[test]
fn the_compact_engine_reaches_the_same_states_and_verdicts() {
    for (servers, lossy, mutant) in [
        ("--servers=2", "--lossy=true", None),
        (
            "--servers=3",
            "--lossy=false",
            Some("vote-without-log-check"),
        ),
    ] {
        let bound = [
            servers,
            lossy,
            "--max-term=2",
            "--max-in-flight=2",
            "--reads=0",
            "--max-crashes=0",
            "--progress=0",
        ];
        let mut reports = Vec::new();
        for (i, engine) in [
            &["--threads=1"][..],
            &["--engine=compact", "--sleep-sets"][..],
            &["--engine=compact", "--strategy=bfs"][..],
        ]
        .into_iter()
        .enumerate()
        {
            let json = tmp(&format!("engine-{}-{i}.json", mutant.is_some()));
            let mut args = vec![
                "check".to_string(),
                "--bound=plain".to_string(),
                format!("--json={}", json.display()),
            ];
            args.extend(bound.iter().chain(engine).map(|a| a.to_string()));
            if let Some(m) = mutant {
                args.push(format!("--mutant={m}"));
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = raft_check(&args);
            let expected = if mutant.is_some() { 1 } else { 0 };
            assert_eq!(out.status.code(), Some(expected), "{}", text(&out.stdout));
            reports.push(json_of(&json));
        }
        let (sr, compact, bfs) = (&reports[0], &reports[1], &reports[2]);
        if mutant.is_none() {
            assert_eq!(sr["unique_states"], compact["unique_states"]);
            assert_eq!(sr["unique_states"], bfs["unique_states"]);
            let engine = &compact["engine"];
            assert!(engine["slept_steps"].as_u64() > engine["woken_steps"].as_u64());
        }
        assert_eq!(compact["engine"]["name"], "compact");
        assert_eq!(compact["engine"]["sleep_sets"], true);
        assert_eq!(bfs["engine"]["name"], "compact");
        assert_eq!(bfs["strategy"], "bfs");
        assert!(bfs["engine"]["widest_level"].as_u64() > Some(0), "{bfs}");
        let statuses = |r: &serde_json::Value| -> Vec<(String, String)> {
            r["properties"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p["name"].to_string(), p["status"].to_string()))
                .collect()
        };
        if mutant.is_none() {
            assert_eq!(statuses(sr), statuses(compact));
            assert_eq!(statuses(sr), statuses(bfs));
        } else {
            // Each stops at its first violation, which the search order picks: each has one,
            // with a counterexample.
            for r in [sr, compact, bfs] {
                assert!(
                    r["properties"].as_array().unwrap().iter().any(|p| {
                        p["status"] == "violated"
                            && p["counterexample"]["length"].as_u64() > Some(0)
                    }),
                    "{r}"
                );
            }
        }
    }
}

/// `check` without flags checks the node's configuration, with symmetry; `--bound plain` the
/// feature-free bound; a flag given overrides the start, and a bound whose configuration
/// tells the servers apart runs without symmetry instead of failing.
#[test]
fn the_default_bound_is_the_nodes() {
    let banner = |args: &[&str]| {
        let mut all = vec!["check", "--max-states", "2000", "--progress", "0"];
        all.extend_from_slice(args);
        let out = raft_check(&all);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let first = stdout.lines().next().unwrap_or_default().to_string();
        (first, stdout)
    };
    let (node, report) = banner(&[]);
    for feature in [
        "ReadIndex",
        "fast backup",
        "pipelined",
        "snapshot",
        "crashes ≤ 1",
    ] {
        assert!(node.contains(feature), "{feature} missing from {node}");
    }
    assert!(report.contains("up to renaming"), "no symmetry: {report}");
    let (plain, report) = banner(&["--bound", "plain"]);
    assert!(
        !plain.contains("ReadIndex") && !plain.contains("pipelined"),
        "{plain}"
    );
    assert!(!report.contains("up to renaming"), "{report}");
    let (given, _) = banner(&["--pre-vote", "--read-index", "false", "--max-term", "3"]);
    assert!(
        given.contains("PreVote") && !given.contains("ReadIndex") && given.contains("terms ≤ 3"),
        "{given}"
    );
    assert!(given.contains("pipelined"), "{given}");
    let (changes, report) = banner(&["--max-config-changes", "1"]);
    assert!(changes.contains("membership change"), "{changes}");
    assert!(!report.contains("up to renaming"), "{report}");
}

#[test]
fn a_timeout_is_incomplete() {
    let out = raft_check(&[
        "check",
        "--bound",
        "plain",
        "--timeout",
        "0.3",
        "--progress",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
}

/// Ctrl-C on a long run: the search stops, the report says how far it got, `--json` is
/// written, nothing is verified (exit 3) — on stateright's engine and on the checker's own.
#[test]
#[cfg(unix)]
fn an_interrupted_run_reports_how_far_it_got_and_is_never_verified() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    for (name, engine) in [
        ("stateright", &[][..]),
        ("compact-dfs", &["--engine", "compact"][..]),
        (
            "compact-bfs",
            &["--engine", "compact", "--strategy", "bfs"][..],
        ),
    ] {
        let json = tmp(&format!("interrupted-{name}.json"));
        let _ = std::fs::remove_file(&json);
        // The default bound runs for minutes: the interrupt comes long before it ends.
        let mut child = Command::new(env!("CARGO_BIN_EXE_raft-check"))
            .args(["check", "--bound", "plain", "--progress", "0.2", "--json"])
            .arg(&json)
            .args(engine)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("raft-check runs");
        // Interrupt once the search is under way (its first progress line).
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        while !line.starts_with("progress:") {
            line.clear();
            assert!(
                stderr.read_line(&mut line).expect("stderr") > 0,
                "{name}: no progress line"
            );
        }
        let sent = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut rest).expect("stderr");
        let out = child.wait_with_output().expect("raft-check ends");
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(3), "{name}: {stdout}{rest}");
        assert!(
            stdout.contains("INCOMPLETE (interrupted)") && !stdout.contains("verified within"),
            "{name}: {stdout}"
        );
        let report = json_of(&json);
        assert_eq!(report["complete"], false, "{name}");
        assert_eq!(report["interrupted"], true, "{name}");
        assert!(report["unique_states"].as_u64().unwrap_or(0) > 0, "{name}");
        assert!(
            report["properties"]
                .as_array()
                .expect("properties")
                .iter()
                .all(|p| p["status"] != "holds"),
            "{name}: a property reported holding in an interrupted run"
        );
    }
}

#[test]
fn votes_not_persisted_are_caught_with_a_counterexample() {
    let json = tmp("forget-vote.json");
    let out = raft_check(&[
        "check",
        "--bound",
        "plain",
        "--mutant",
        "forget-vote-on-restart",
        "--strategy",
        "bfs",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("Counterexample: \"Election Safety\" is violated"),
        "{stdout}"
    );
    // The trace is numbered, shows the restart and who became leader.
    assert!(stdout.contains("   1. "), "{stdout}");
    assert!(stdout.contains("restarts from storage"), "{stdout}");
    assert!(stdout.contains("LEADER"), "{stdout}");
    let v = json_of(&json);
    assert_eq!(v["config"]["mutant"], "forget-vote-on-restart");
    let es = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Election Safety")
        .unwrap();
    assert_eq!(es["status"], "violated");
    let len = es["counterexample"]["length"].as_u64().unwrap();
    assert!(len > 0);
    assert_eq!(
        es["counterexample"]["actions"].as_array().unwrap().len() as u64,
        len
    );
}

/// The default bound less its crash, with symmetry reduction, through the command line: every
/// property holds and every witness is reached except those the bound leaves out by
/// construction. (The default bound itself, 11 M states and about two and a half minutes, is
/// the gate's `default` item, which fails on a missing witness or a changed state count: CI
/// ran it twice while this test ran it too.)
#[test]
fn a_bound_is_verified_with_every_witness_it_can_reach() {
    let json = tmp("no-crash.json");
    let out = raft_check(&[
        "check",
        "--bound",
        "plain",
        "--symmetry",
        "--max-crashes",
        "0",
        "--json",
        json.to_str().unwrap(),
        "--progress",
        "0",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("verified within the bound"), "{stdout}");
    let v = json_of(&json);
    assert_eq!(v["complete"], true);
    assert!(v["unique_states"].as_u64().unwrap() > 100_000);
    let props = v["properties"].as_array().unwrap();
    assert_eq!(
        props
            .iter()
            .filter(|p| p["expectation"] == "always")
            .count(),
        raft_model::model::ALWAYS.len() + 1,
        "the safety properties and the liveness one"
    );
    assert!(props
        .iter()
        .any(|p| p["name"] == raft_model::model::LIVENESS.0 && p["status"] == "holds"));
    assert_eq!(
        props
            .iter()
            .filter(|p| p["expectation"] == "sometimes")
            .count(),
        raft_model::model::SOMETIMES.len()
    );
    let bound = raft_model::model::ModelConfig {
        max_crashes: 0,
        ..raft_model::model::ModelConfig::default()
    };
    let inapplicable: Vec<&str> = bound
        .inapplicable_witnesses()
        .iter()
        .map(|(name, _)| *name)
        .collect();
    for p in props {
        let want = if p["expectation"] == "always" {
            "holds"
        } else if inapplicable.contains(&p["name"].as_str().unwrap()) {
            "not-applicable"
        } else {
            "witnessed"
        };
        assert_eq!(p["status"], want, "{p}");
        assert!(p["counterexample"].is_null());
    }
    let mut found = inapplicable.clone();
    found.sort_unstable();
    let mut expected = default_bound_inapplicable();
    expected.push("Committed Then Crashed And Recovered");
    expected.sort_unstable();
    assert_eq!(found, expected, "the bound leaves out exactly these");
    for key in [
        "servers",
        "max_term",
        "values",
        "max_crashes",
        "network",
        "lossy",
        "max_in_flight",
    ] {
        assert!(!v["config"][key].is_null(), "config lacks {key}");
    }
}

/// The witnesses the default bound leaves out by construction: Stale Copy Ignored needs a log
/// of 3 and two messages in flight, Pipelined Appends In Flight a pipelining leader, Read Served
/// Without The Log reads through ReadIndex, and the witnesses of PreVote, CheckQuorum,
/// leadership transfer, membership changes and snapshots their flags (the gate's
/// configurations with those bounds reach them).
fn default_bound_inapplicable() -> Vec<&'static str> {
    vec![
        "Configuration Change Committed",
        "Removed Leader Stepped Down",
        "Snapshot Installed On A Follower",
        "Restarted From A Snapshot",
        "Election After A Pre-Vote",
        "Leader Stepped Down Without A Quorum",
        "Vote Ignored In A Lease",
        "Leadership Transferred",
        "Read Served Without The Log",
        "Pipelined Appends In Flight",
        "Stale Copy Ignored",
    ]
}

#[test]
fn the_default_bound_leaves_out_only_the_witnesses_of_features_it_lacks() {
    let mut found: Vec<&str> = raft_model::model::ModelConfig::default()
        .inapplicable_witnesses()
        .iter()
        .map(|(name, _)| *name)
        .collect();
    let mut expected = default_bound_inapplicable();
    found.sort_unstable();
    expected.sort_unstable();
    assert_eq!(
        found, expected,
        "the default bound reaches every witness but those its flags leave out"
    );
}
