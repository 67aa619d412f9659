//! Our linearizability checker and Porcupine (a checker we did not write, `tests/porcupine/`)
//! agree on exported client histories: simulator runs, copies with violations injected, the
//! runs of a broken disk, small random histories. Needs the Go toolchain and the module
//! github.com/anishathalye/porcupine (from the Go module cache, or fetched through the Go
//! module proxy: `tests/porcupine/go.sum` pins it); without Go the tests skip, saying why,
//! except under `CI=true`, where a missing toolchain fails them (`.ci/run` installs it and
//! fetches the module first).

use raft_tests::history_export::{self, AgreementOptions, Exported};
use std::path::PathBuf;
use std::process::Command;

fn go_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/porcupine"))
}

/// `false`: skip (no Go, not in CI).
fn have_go() -> bool {
    match history_export::go_missing() {
        None => true,
        Some(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and {why}: the Porcupine check cannot run (.ci/run installs golang-go)")
        }
        Some(why) => {
            eprintln!("skipped: {why} (install golang-go to run the Porcupine check)");
            false
        }
    }
}

#[test]
fn porcupine_and_our_checker_agree_on_every_history() {
    if !have_go() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    // Two runs of the conformance scenario (crashes, lost messages, leadership transfers,
    // membership changes, a snapshot every few entries): what the node does besides the
    // suite's history scenarios.
    let conform = out.path().join("conform");
    for seed in 1..=2 {
        let sim =
            raft_tests::conformance::traced_run(seed, raft_tests::conformance::ci_faults(seed), 24);
        history_export::write_conform_history(
            &conform,
            seed,
            &sim.history,
            false,
            "raft-tests conform-traces --rounds 24",
            "the test's run",
        )
        .unwrap();
    }
    let o = AgreementOptions {
        seeds: 3,
        from: 1,
        random: 150,
        include: vec![conform],
        out: out.path().to_path_buf(),
        go_dir: go_dir(),
        timeout_secs: 60,
    };
    let a = history_export::agreement(&o).unwrap();
    let bad: Vec<String> = a
        .disagreements()
        .iter()
        .chain(a.missed().iter())
        .map(|r| {
            format!(
                "{}: ours linearizable={}, Porcupine {}",
                r.name, r.ours, r.theirs
            )
        })
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    let failed: Vec<&str> = a
        .correct_runs_failed()
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert!(
        failed.is_empty(),
        "correct runs not linearizable: {failed:?}"
    );
    assert!(a.ok());
    assert_eq!(
        a.rows
            .iter()
            .filter(|r| r.source.starts_with("simulator:conformance") && r.expect_linearizable)
            .count(),
        2
    );
    // 3 seeds × 4 runs + injected copies + random; both verdicts common on each side.
    assert!(
        a.rows.len() >= 3 * 4 + 3 * 3 + 150,
        "{} histories",
        a.rows.len()
    );
    let lin = a.rows.iter().filter(|r| r.ours).count();
    assert!(
        lin >= 30 && a.rows.len() - lin >= 30,
        "{lin} of {} linearizable",
        a.rows.len()
    );
    for inj in history_export::Injection::ALL {
        assert!(
            a.rows
                .iter()
                .any(|r| r.injected.as_deref() == Some(inj.name())),
            "no history with {} injected",
            inj.name()
        );
    }
    // The simulator's correct runs are linearizable; the broken disk's runs are caught on
    // some seed by both.
    assert!(a
        .rows
        .iter()
        .filter(|r| r.source.starts_with("simulator:linearizable_kv") && r.injected.is_none())
        .all(|r| r.ours));
    assert!(a
        .rows
        .iter()
        .any(|r| r.source.contains("before fsync") && !r.ours && r.theirs == "violation"));
}

#[test]
fn the_porcupine_program_reports_each_file_and_exits_by_the_verdicts() {
    if !have_go() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let bin = history_export::build_checker(&go_dir(), out.path()).unwrap();
    let dir = out.path().join("h");
    std::fs::create_dir(&dir).unwrap();
    // Find one linearizable and one violating random history.
    let (mut yes, mut no) = (None, None);
    for seed in 1.. {
        let h = history_export::random_history(seed);
        if h.linearizable() {
            yes.get_or_insert(h);
        } else {
            no.get_or_insert(h);
        }
        if yes.is_some() && no.is_some() {
            break;
        }
    }
    let (yes, no): (Exported, Exported) = (yes.unwrap(), no.unwrap());
    yes.write(&dir).unwrap();
    let run = |args: &[&std::ffi::OsStr]| Command::new(&bin).args(args).output().unwrap();
    let o = run(&[dir.as_os_str()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("{}.json: linearizable", yes.name)),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 histories: 1 linearizable, 0 violation"),
        "{stdout}"
    );

    no.write(&dir).unwrap();
    let o = run(&[dir.as_os_str()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("{}.json: violation", no.name)),
        "{stdout}"
    );

    std::fs::write(dir.join("zz-bad.json"), "{\"format\": \"raft-tests-history/1\", \"operations\": [{\"kind\": \"append\", \"key\": \"a\", \"call\": 0}]}").unwrap();
    let o = run(&[dir.as_os_str()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("zz-bad.json") && stderr.contains("append"),
        "{stderr}"
    );
}
