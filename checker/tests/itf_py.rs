//! Our ITF export read by a reader no one here wrote: the `itf-py` package from PyPI
//! (`python3 -m pip install itf-py==0.5.0`; `.ci/run` installs it). The step count and the final
//! values it decodes must match our own JSON trace and report. Skipped, with the reason printed,
//! only where python3 or itf-py is missing.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

mod common;
use common::{json_of, raft_check};

/// Its shortest counterexample commits an entry, so logs are not empty.
const MUTANT: &str = "vote-without-log-check";

fn tmp(name: &str) -> PathBuf {
    common::tmp("itf-py", name)
}

/// Decode the ITF file with itf-py and print what it read as plain JSON: the variables, the
/// state indices and the last state's values (maps as objects, sets as sorted lists, records
/// as objects).
const READER: &str = r#"
import json, sys
import itf_py

def plain(v):
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, frozenset):
        return sorted((plain(x) for x in v), key=json.dumps)
    if isinstance(v, tuple) and hasattr(v, "_asdict"):
        return {k: plain(x) for k, x in v._asdict().items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v

with open(sys.argv[1]) as f:
    trace = itf_py.trace_from_json(json.load(f))
print(json.dumps({
    "meta": trace.meta,
    "vars": trace.vars,
    "indices": [s.meta.get("index") for s in trace.states],
    "actions": [s.values["action"] for s in trace.states],
    "final": {k: plain(v) for k, v in trace.states[-1].values.items()},
}))
"#;

fn itf_py_available() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import itf_py"])
        .output()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "itf-py is not installed (python3 -m pip install itf-py==0.5.0): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[test]
fn itf_py_reads_our_counterexample() {
    if let Err(why) = itf_py_available() {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "{why} (under CI=true this test may not skip; .ci/run installs it)"
        );
        println!("SKIPPED itf_py_reads_our_counterexample: {why}");
        return;
    }
    // Our own view of the counterexample: the report and the JSON trace.
    let (report, trace_json, itf) = (tmp("report.json"), tmp("trace.json"), tmp("trace.itf.json"));
    let run = |format: &str, out: &PathBuf| {
        let o = raft_check(&[
            "check",
            "--bound",
            "plain",
            "--mutant",
            MUTANT,
            "--progress",
            "0",
            // One thread: the same counterexample in both runs.
            "--threads",
            "1",
            "--strategy",
            "bfs",
            "--json",
            report.to_str().unwrap(),
            "--trace-format",
            format,
            "--trace-out",
            out.to_str().unwrap(),
        ]);
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(
            o.status.code(),
            Some(1),
            "{stdout}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        stdout
    };
    let text_json = run("json", &trace_json);
    let text_itf = run("itf", &itf);
    // Both runs found the same counterexample (one thread and a level-order search).
    let trace_of = |s: &str| s[..s.find("\nTrace of").expect("trace written")].to_string();
    assert_eq!(trace_of(&text_json), trace_of(&text_itf));

    let report = json_of(&report);
    let violated = report["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["status"] == "violated")
        .expect("the mutant violates a property")
        .clone();
    let length = violated["counterexample"]["length"].as_u64().unwrap() as usize;
    let ours = json_of(&trace_json);
    assert_eq!(ours["length"].as_u64().unwrap() as usize, length);
    assert_eq!(ours["property"], violated["name"]);
    assert!(text_itf.contains(&format!("is violated after {length} steps")));

    let out = Command::new("python3")
        .args(["-c", READER, itf.to_str().unwrap()])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "itf-py could not read {}: {}",
        itf.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).expect("reader prints JSON");

    // One ITF state per step, plus the initial state, indexed in order.
    let indices: Vec<u64> = read["indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().expect("#meta.index"))
        .collect();
    assert_eq!(indices, (0..=length as u64).collect::<Vec<_>>());
    assert_eq!(read["meta"]["property"], violated["name"]);
    for var in [
        "currentTerm",
        "votedFor",
        "log",
        "commitIndex",
        "state",
        "messages",
    ] {
        assert!(
            read["vars"].as_array().unwrap().iter().any(|v| v == var),
            "ITF lacks {var}"
        );
    }

    // The final values itf-py decoded are the final state of our JSON trace.
    let last = ours["states"].as_array().unwrap().last().unwrap();
    let fin = &read["final"];
    let servers = last["servers"].as_array().unwrap();
    assert!(!servers.is_empty());
    let mut saw_entry = false;
    for s in servers {
        let n = s["name"].as_str().unwrap();
        let at = |var: &str| fin[var][n].clone();
        assert_eq!(at("currentTerm"), s["currentTerm"], "{n} currentTerm");
        let voted = s["votedFor"].as_str().unwrap_or("Nil");
        assert_eq!(at("votedFor"), voted, "{n} votedFor");
        assert_eq!(at("state"), s["state"], "{n} state");
        assert_eq!(at("commitIndex"), s["commitIndex"], "{n} commitIndex");
        assert_eq!(at("lastApplied"), s["lastApplied"], "{n} lastApplied");
        assert_eq!(at("crashed"), s["crashed"], "{n} crashed");
        assert_eq!(at("nextIndex"), s["nextIndex"], "{n} nextIndex");
        assert_eq!(at("matchIndex"), s["matchIndex"], "{n} matchIndex");
        let log: Vec<(Value, Value)> = at("log")
            .as_array()
            .expect("log is a sequence")
            .iter()
            .map(|e| (e["term"].clone(), e["value"].clone()))
            .collect();
        let want: Vec<(Value, Value)> = s["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["term"].clone(), e["command"].clone()))
            .collect();
        assert_eq!(log, want, "{n} log");
        saw_entry |= !want.is_empty();
    }
    assert!(
        saw_entry,
        "{MUTANT}'s counterexample should end with a log entry somewhere"
    );
    let in_flight: u64 = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["count"].as_u64().unwrap())
        .sum();
    let itf_in_flight: u64 = fin["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mcount"].as_u64().unwrap())
        .sum();
    assert_eq!(itf_in_flight, in_flight, "messages in flight");
    assert_eq!(fin["action"], last["action"], "last action");
    // Every step's action, as the report of the same run lists them.
    let actions: Vec<Value> = read["actions"].as_array().unwrap()[1..].to_vec();
    assert_eq!(
        &Value::Array(actions),
        &violated["counterexample"]["actions"]
    );
}
