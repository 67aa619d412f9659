//! The mutation gate: `raft-check gate --quick` on the code as built. On the correct protocol it
//! passes; `cargo mutants` (configured in .cargo/mutants.toml, run by `raft-check mutation`)
//! builds each mutant of raft-core's rules and runs this test alone, so a mutant counts as
//! caught exactly when some quick configuration of the gate fails on it.
//!
//! `quick_gate_passes` is ignored in a plain `cargo test`: CI's `raft-check gate` runs every
//! quick configuration too (with liveness, and against its baseline state count), so running it
//! here as well only doubled two minutes of CI. `raft-check mutation` and .cargo/mutants.toml
//! pass `--include-ignored`; run it by hand with
//! `cargo test --release -p raft-checker --test mutation_gate -- --include-ignored`.

use std::process::Command;

/// `MUTATION_GATE_ARGS` (whitespace-separated) adds arguments to `gate --quick`: the mutation
/// run's second pass sets `--no-liveness` to see which mutants only liveness catches.
#[test]
#[ignore = "CI's `raft-check gate` runs the quick configurations; the mutation run passes --include-ignored"]
fn quick_gate_passes() {
    let extra = std::env::var("MUTATION_GATE_ARGS").unwrap_or_default();
    let out = Command::new(env!("CARGO_BIN_EXE_raft-check"))
        .args(["gate", "--quick"])
        .args(extra.split_whitespace())
        .output()
        .expect("run raft-check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gate --quick failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("gate --quick: PASS"), "{stdout}");
}

/// The gate is not vacuous: with a catalogue mutant forced on, it fails.
#[test]
fn quick_gate_fails_on_a_mutant() {
    let out = Command::new(env!("CARGO_BIN_EXE_raft-check"))
        .args(["gate", "--quick", "--force-mutant", "no-backup-on-reject"])
        .output()
        .expect("run raft-check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("Progress When Faults Stop"), "{stdout}");
}
