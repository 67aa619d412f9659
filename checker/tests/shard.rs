//! `check --shard I/N` and `merge`: four parts of a small bound give the single run's verdicts
//! and together reach every state it reaches; a violation in a part merges to a full path; a
//! missing part leaves the verdict incomplete; parts of different checks are refused. These run
//! the release binary.

mod common;

use common::{json_of, raft_check};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    common::tmp("shard", name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = raft_check(args);
    (
        out.status.code().expect("exit code"),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn fingerprints(path: &Path) -> HashSet<u64> {
    std::fs::read_to_string(path)
        .expect("fingerprints written")
        .lines()
        .map(|l| u64::from_str_radix(l, 16).expect("hex fingerprint"))
        .collect()
}

fn statuses(report: &Value) -> BTreeMap<String, String> {
    report["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Check `bound` whole and in four parts; the parts' paths are returned.
fn single_and_parts(tag: &str, bound: &[&str]) -> (Value, HashSet<u64>, Vec<PathBuf>) {
    let json = tmp(&format!("{tag}-single.json"));
    let fps = tmp(&format!("{tag}-single.fp"));
    let mut args = vec![
        "check",
        "--bound",
        "plain",
        "--threads",
        "1",
        "--progress",
        "0",
    ];
    args.extend_from_slice(bound);
    let mut single = args.clone();
    single.extend(["--json", json.to_str().unwrap()]);
    single.extend(["--dump-fingerprints", fps.to_str().unwrap()]);
    let (code, out, err) = run(&single);
    assert_eq!(code, 0, "the single run verifies the bound:\n{out}\n{err}");
    let single_report = json_of(&json);
    let single_fps = fingerprints(&fps);
    assert_eq!(
        single_fps.len() as u64,
        single_report["unique_states"].as_u64().unwrap(),
        "the dump holds exactly the distinct states the checker counted"
    );

    let mut union = HashSet::new();
    let mut parts = Vec::new();
    for i in 0..4 {
        let part_json = tmp(&format!("{tag}-part-{i}.json"));
        let part_fps = tmp(&format!("{tag}-part-{i}.fp"));
        let shard = format!("{i}/4");
        let mut part = args.clone();
        part.extend(["--shard", &shard, "--json", part_json.to_str().unwrap()]);
        part.extend(["--dump-fingerprints", part_fps.to_str().unwrap()]);
        let (code, out, err) = run(&part);
        assert_eq!(code, 0, "part {i} has no violation:\n{out}\n{err}");
        assert!(out.contains(&format!("Part {i} of 4")), "{out}");
        union.extend(fingerprints(&part_fps));
        parts.push(part_json);
    }
    assert_eq!(
        union, single_fps,
        "the four parts together reach exactly the single run's states"
    );
    (single_report, single_fps, parts)
}

fn four_parts_agree_with_the_single_run(tag: &str, bound: &[&str]) {
    let (single, single_fps, parts) = single_and_parts(tag, bound);
    let merged_json = tmp(&format!("{tag}-merged.json"));
    let mut args = vec!["merge", "--json", merged_json.to_str().unwrap()];
    args.extend(parts.iter().map(|p| p.to_str().unwrap()));
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "the merge verifies the bound:\n{out}\n{err}");
    assert!(out.contains("verified within the bound"), "{out}");
    let merged = json_of(&merged_json);
    assert_eq!(merged["complete"], true);
    assert_eq!(
        statuses(&merged),
        statuses(&single),
        "every property has the single run's verdict"
    );
    let part_states: u64 = merged["merged"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["unique_states"].as_u64().unwrap())
        .sum();
    let prefix = merged["merged"]["prefix_states"].as_u64().unwrap();
    println!(
        "{tag}: single run {} distinct states; prefix to depth {} ({prefix} states above a \
         frontier of {}); parts {:?}; duplication (sum of the parts' states / single run) {:.2}",
        single_fps.len(),
        merged["merged"]["depth"],
        merged["merged"]["frontier_states"],
        merged["merged"]["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["unique_states"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        part_states as f64 / single_fps.len() as f64
    );
}

#[test]
fn four_parts_agree_with_the_single_run_and_cover_its_states() {
    four_parts_agree_with_the_single_run("plain", &["--servers", "2"]);
}

#[test]
fn four_parts_agree_with_the_single_run_under_symmetry() {
    four_parts_agree_with_the_single_run("symmetry", &["--servers", "2", "--symmetry"]);
}

/// A minority quorum breaks Election Safety two steps from the start; with the prefix at depth
/// 1 the parts find it in their own exploration, and the counterexample they report starts at
/// the initial state.
#[test]
fn a_violation_in_a_part_merges_to_a_full_path() {
    for (tag, depth) in [("in-part", Some("1")), ("in-prefix", None)] {
        let mut parts = Vec::new();
        let mut violated = 0;
        for i in 0..4 {
            let json = tmp(&format!("{tag}-mutant-{i}.json"));
            let shard = format!("{i}/4");
            let mut args = vec![
                "check",
                "--bound",
                "plain",
                "--servers",
                "2",
                "--threads",
                "1",
                "--progress",
                "0",
                "--mutant",
                "quorum-right-for-three-only",
                "--shorten-budget",
                "0",
                "--shard",
                &shard,
                "--json",
                json.to_str().unwrap(),
            ];
            if let Some(d) = depth {
                args.extend(["--shard-depth", d]);
            }
            let (code, out, err) = run(&args);
            assert!(code == 0 || code == 1, "{out}\n{err}");
            if code == 1 {
                violated += 1;
                assert!(out.contains("   0. initial state"), "{out}");
                let report = json_of(&json);
                let p = report["properties"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["status"] == "violated")
                    .expect("a violated property");
                let c = &p["counterexample"];
                let len = c["length"].as_u64().unwrap();
                assert_eq!(len, c["actions"].as_array().unwrap().len() as u64);
                let depth = report["shard"]["depth"].as_u64().unwrap();
                assert!(
                    len >= depth,
                    "the path includes the prefix: {len} < {depth}"
                );
            }
            parts.push(json);
        }
        assert!(violated > 0, "{tag}: some part finds the violation");
        let mut args = vec!["merge"];
        args.extend(parts.iter().map(|p| p.to_str().unwrap()));
        let (code, out, err) = run(&args);
        assert_eq!(code, 1, "{out}\n{err}");
        assert!(
            out.contains("Counterexample: \"Election Safety\" is violated after"),
            "{out}"
        );
        assert!(out.contains("(from an initial state)"), "{out}");
        assert!(out.contains("Model checking found a problem"), "{out}");
        // A violation counts even when a part is missing.
        let (code, out, _) = run(&args[..args.len() - 1]);
        let some_violated_left = parts[..3].iter().any(|p| {
            json_of(p)["properties"]
                .to_string()
                .contains("\"violated\"")
        });
        assert_eq!(code, if some_violated_left { 1 } else { 3 }, "{out}");
    }
}

#[test]
fn a_missing_part_leaves_the_verdict_incomplete_and_other_checks_are_refused() {
    let bound = ["--servers", "2", "--max-crashes", "0", "--reads", "0"];
    let mut parts = Vec::new();
    for i in 0..4 {
        let json = tmp(&format!("small-{i}.json"));
        let shard = format!("{i}/4");
        let mut args = vec![
            "check",
            "--bound",
            "plain",
            "--threads",
            "1",
            "--progress",
            "0",
        ];
        args.extend(bound);
        args.extend(["--shard", &shard, "--shard-depth", "4"]);
        args.extend(["--json", json.to_str().unwrap()]);
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "{out}\n{err}");
        parts.push(json.to_str().unwrap().to_string());
    }
    let merged = tmp("small-missing.json");
    let (code, out, err) = run(&[
        "merge",
        "--json",
        merged.to_str().unwrap(),
        &parts[0],
        &parts[1],
        &parts[3],
    ]);
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(out.contains("part 2/4: MISSING"), "{out}");
    assert!(out.contains("INCOMPLETE"), "{out}");
    assert!(!out.contains("verified within"), "{out}");
    let report = json_of(&merged);
    assert_eq!(report["complete"], false);
    assert_eq!(report["merged"]["missing"], serde_json::json!([2]));
    let all: Vec<&str> = parts.iter().map(String::as_str).collect();
    let (code, out, err) = run(&[&["merge"], &all[..]].concat());
    assert_eq!(code, 0, "{out}\n{err}");

    // A part of another bound, a part given twice, and a whole run's report are refused.
    let other = tmp("other-bound.json");
    let (code, _, err) = run(&[
        "check",
        "--bound",
        "plain",
        "--servers",
        "2",
        "--max-crashes",
        "0",
        "--reads",
        "0",
        "--max-term",
        "1",
        "--progress",
        "0",
        "--shard",
        "1/4",
        "--shard-depth",
        "4",
        "--json",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["merge", &parts[0], other.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("different checks (the bounds differ)"),
        "{err}"
    );
    let (code, _, err) = run(&["merge", &parts[0], &parts[0]]);
    assert_eq!(code, 2);
    assert!(err.contains("given twice"), "{err}");
    let whole = tmp("whole.json");
    let (code, _, _) = run(&[
        "check",
        "--bound",
        "plain",
        "--servers",
        "2",
        "--max-crashes",
        "0",
        "--reads",
        "0",
        "--progress",
        "0",
        "--json",
        whole.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let (code, _, err) = run(&["merge", &parts[0], whole.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("not a part's report"), "{err}");
    let (code, _, err) = run(&["merge", &parts[0], &parts[1], "--shard-depth", "2"]);
    assert_eq!(code, 2, "{err}");

    for (args, message) in [
        (
            &["check", "--bound", "plain", "--shard", "4/4"][..],
            "need 0 <= I < N",
        ),
        (
            &["check", "--bound", "plain", "--shard", "x"][..],
            "--shard takes I/N",
        ),
        (
            &[
                "check",
                "--bound",
                "plain",
                "--shard",
                "0/2",
                "--strategy",
                "sim",
                "--timeout",
                "1",
            ][..],
            "--shard needs an exhaustive strategy",
        ),
        (
            &["check", "--bound", "plain", "--shard-depth", "3"][..],
            "--shard",
        ),
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
}
