//! `check --engine timely` as processes: two processes on localhost give the compact BFS's
//! distinct states and verdicts, and a counterexample of the same (shortest) length; a killed
//! process makes the other stop with an error and no verdict. These run the release binary.

mod common;

use common::{json_of, raft_check};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tmp(name: &str) -> PathBuf {
    common::tmp("timely", name)
}

/// A hostfile of `n` free localhost ports.
fn hostfile(tag: &str, n: usize) -> PathBuf {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    let text: String = listeners
        .iter()
        .map(|l| format!("{}\n", l.local_addr().unwrap()))
        .collect();
    let path = tmp(&format!("{tag}.hosts"));
    std::fs::write(&path, text).unwrap();
    path
}

fn statuses(report: &Value) -> BTreeMap<String, String> {
    report["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap().to_string();
            (name, p["status"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The shortest counterexample's length in a report, if any.
fn shortest(report: &Value) -> Option<u64> {
    report["properties"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["counterexample"]["length"].as_u64())
        .min()
}

/// The flags of process `p` of two, one worker each, joined by `hosts`.
fn process_args(p: usize, hosts: &std::path::Path) -> Vec<String> {
    let p = p.to_string();
    let hosts = hosts.display().to_string();
    [
        "--engine",
        "timely",
        "--threads",
        "1",
        "--processes",
        "2",
        "--process",
        &p,
        "--hostfile",
        &hosts,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn start(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_raft-check"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("raft-check starts")
}

/// `bound` checked by the compact BFS on one thread, and by the timely engine as two
/// processes of one worker each: the reports (single, process 0, process 1) and exit codes.
fn single_and_two_processes(tag: &str, bound: &[&str]) -> Vec<(i32, Value)> {
    let common: Vec<String> = ["check", "--strategy", "bfs", "--progress", "0"]
        .iter()
        .chain(bound)
        .map(|s| s.to_string())
        .collect();
    let single = tmp(&format!("{tag}-single.json"));
    let mut args: Vec<&str> = common.iter().map(String::as_str).collect();
    args.extend(["--engine", "compact", "--threads", "1"]);
    args.extend(["--json", single.to_str().unwrap()]);
    let out = raft_check(&args);
    let mut runs = vec![(out.status.code().unwrap(), json_of(&single))];
    let hosts = hostfile(tag, 2);
    let children: Vec<(Child, PathBuf)> = (0..2)
        .map(|p| {
            let json = tmp(&format!("{tag}-p{p}.json"));
            let mut args = common.clone();
            args.extend(process_args(p, &hosts));
            args.extend(["--json".to_string(), json.display().to_string()]);
            (start(&args), json)
        })
        .collect();
    for (child, json) in children {
        let out = child.wait_with_output().unwrap();
        let code = out.status.code().expect("exit code");
        assert!(
            code == 0 || code == 1,
            "{tag}: a process ended with {code}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        runs.push((code, json_of(&json)));
    }
    runs
}

#[test]
fn two_processes_reach_the_states_and_verdicts_of_one() {
    let runs = single_and_two_processes("plain", &["--bound", "plain", "--servers", "2"]);
    let (code, single) = &runs[0];
    assert_eq!(*code, 0);
    for (c, r) in &runs[1..] {
        assert_eq!(c, code);
        assert_eq!(r["unique_states"], single["unique_states"]);
        assert_eq!(r["complete"], Value::Bool(true));
        assert_eq!(statuses(r), statuses(single));
        let workers = r["engine"]["workers"]
            .as_array()
            .expect("per-worker figures");
        assert_eq!(workers.len(), 2);
        let owned: u64 = workers
            .iter()
            .map(|w| w["distinct"].as_u64().unwrap())
            .sum();
        assert_eq!(
            Some(owned),
            single["unique_states"].as_u64(),
            "every state explored exactly once"
        );
        assert!(workers.iter().all(|w| w["bytes_sent"].as_u64() > Some(0)));
    }
}

#[test]
fn two_processes_find_a_mutants_shortest_counterexample() {
    let runs = single_and_two_processes(
        "mutant",
        &[
            "--bound",
            "plain",
            "--servers",
            "3",
            "--max-term",
            "2",
            "--mutant",
            "vote-without-log-check",
        ],
    );
    let (code, single) = &runs[0];
    assert_eq!(*code, 1, "the mutant is caught");
    for (c, r) in &runs[1..] {
        assert_eq!(c, code);
        assert_eq!(shortest(r), shortest(single), "a shortest counterexample");
    }
}

#[test]
fn a_killed_process_stops_the_other_with_no_verdict() {
    let hosts = hostfile("killed", 2);
    let mut children: Vec<Child> = (0..2)
        .map(|p| {
            let mut args: Vec<String> = ["check", "--bound", "plain", "--strategy", "bfs"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            args.extend(process_args(p, &hosts));
            args.extend(["--progress".to_string(), "0.5".to_string()]);
            start(&args)
        })
        .collect();
    // Wait until the search runs (a progress line with states), then kill process 1.
    let stderr = children[0].stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let began = Instant::now();
    loop {
        let line = lines
            .next()
            .expect("process 0 prints progress before it ends")
            .unwrap();
        if line.starts_with("progress:") && !line.starts_with("progress: 0 states") {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(120), "no progress");
    }
    children[1].kill().unwrap();
    children[1].wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = children[0].wait().unwrap();
    let out = {
        let mut s = String::new();
        use std::io::Read;
        children[0]
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    assert_eq!(status.code(), Some(3), "exit 3: no verdict\n{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("lost a worker")),
        "a clear message: {rest:?}"
    );
    assert!(!out.contains("verified"), "no verdict: {out}");
}
