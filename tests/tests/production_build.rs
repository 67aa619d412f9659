//! What the node links is what it needs: no checker, no mutant.
//!
//! The mutant catalogue lives in raft-model (`raft_model::Mutant`, broken implementations of
//! raft-core's `Rules`); raft-impl depends on raft-core only. These tests check the outcome on
//! the real artefacts: the dependency graph and the `raft-node` binary.

use raft_model::Mutant;
use std::path::PathBuf;
use std::process::Command;

/// Fails under CI (where a skipped check would pass silently), skips elsewhere.
fn missing(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} (under CI=true this check may not be skipped)");
    }
    eprintln!("SKIPPED: {what}");
}

#[test]
fn raft_impl_depends_on_no_stateright_and_no_raft_model() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "raft-impl",
            "--prefix",
            "none",
            "--edges",
            "all",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        tree.contains("raft-core"),
        "raft-impl uses raft-core:\n{tree}"
    );
    for forbidden in ["stateright ", "raft-model "] {
        assert!(
            !tree.lines().any(|l| l.starts_with(forbidden)),
            "raft-impl (dependencies of every kind, dev included) links {forbidden}:\n{tree}"
        );
    }
}

/// The `raft-node` built with this test (same profile): `target/<profile>/raft-node`.
fn raft_node() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?; // target/<profile>/deps/<test> → target/<profile>
    let bin = profile_dir.join("raft-node");
    bin.exists().then_some(bin)
}

fn snake(camel: &str) -> String {
    let mut s = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            s.push('_');
        }
        s.push(c.to_ascii_lowercase());
    }
    s
}

#[test]
fn the_raft_node_binary_contains_no_mutant_name() {
    let Some(bin) = raft_node() else {
        missing("no raft-node binary next to this test; build it: cargo build -p raft-impl");
        return;
    };
    let bytes = std::fs::read(&bin).expect("read raft-node");
    let found: Vec<String> = Mutant::ALL
        .iter()
        .flat_map(|m| {
            let camel = format!("{m:?}");
            [m.name().to_string(), snake(&camel), camel]
        })
        .filter(|name| bytes.windows(name.len()).any(|w| w == name.as_bytes()))
        .collect();
    assert!(
        found.is_empty(),
        "{} contains mutant names: {found:?}",
        bin.display()
    );
    // The search can see a name: this test links the catalogue, and its own binary holds them.
    let own = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let name = Mutant::VoteTwice.name();
    assert!(own.windows(name.len()).any(|w| w == name.as_bytes()));
}
