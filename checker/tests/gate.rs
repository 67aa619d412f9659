//! The gate fails when it must: an edited baseline, a mutant forced on, an unknown item.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::raft_check;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const QUICK: &str = "quick-one-entry-per-append";

fn results_copy(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("raft-gate-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A quick configuration's baseline: its check takes a second, the default bound's minutes.
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../results/{QUICK}.json"));
    std::fs::copy(&committed, dir.join(format!("{QUICK}.json")))
        .expect("the quick configuration's baseline is committed");
    dir
}

#[test]
fn a_caught_mutant_passes_the_gate() {
    let dir = results_copy("mutant");
    let out = raft_check(&[
        "gate",
        "--only",
        "vote-twice",
        "--results",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("gate: PASS"));
}

#[test]
fn an_edited_baseline_fails_the_gate() {
    let dir = results_copy("baseline");
    let file = dir.join(format!("{QUICK}.json"));
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let real = v["unique_states"].as_u64().unwrap();
    v["unique_states"] = serde_json::json!(real + 1);
    std::fs::write(&file, v.to_string()).unwrap();
    let out = raft_check(&["gate", "--only", QUICK, "--results", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("the state space changed"), "{t}");
    assert!(t.contains(&format!("now {real}")), "{t}");
}

#[test]
fn a_mutant_forced_on_fails_the_gate() {
    let dir = results_copy("forced");
    let out = raft_check(&[
        "gate",
        "--only",
        QUICK,
        "--force-mutant",
        "minority-quorum",
        "--results",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("gate: FAIL"), "{t}");
    assert!(t.contains("Election Safety"), "{t}");
}

#[test]
fn an_unknown_item_is_a_usage_error() {
    let out = raft_check(&["gate", "--only", "no-such-thing"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
