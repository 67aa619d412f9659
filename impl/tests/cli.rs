//! The command lines' contracts, scripted from outside on loopback: raft-cluster's errors and
//! its reaction to a node that exits, raft-kv's timeout and missing keys, its leadership
//! commands (`leader show`, `leader transfer`), its membership commands (`member list | add |
//! promote | remove`), and logs without colour codes.

mod common;

use common::*;
use std::fs;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// `raft-cluster up --nodes N --dir DIR` with this build's raft-node.
fn cluster_up(nodes: &str, dir: &std::path::Path) -> Command {
    let mut up = Command::new(CLUSTER);
    up.args(["up", "--nodes", nodes, "--dir"])
        .arg(dir)
        .arg("--node-bin")
        .arg(NODE);
    up
}

#[test]
fn raft_cluster_errors_name_the_path_and_the_operation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, "").unwrap();
    // A --dir under a regular file, and a cluster file that cannot be written.
    let blocked = dir.path().join("blocked");
    fs::create_dir_all(blocked.join("cluster.toml.partial")).unwrap();
    let cases = [
        (
            file.join("sub"),
            format!("{}: cannot create directory", file.join("sub").display()),
            "(os error 20)",
        ),
        (
            blocked.clone(),
            format!(
                "cannot write {}",
                blocked.join("cluster.toml.partial").display()
            ),
            "(os error 21)",
        ),
    ];
    for (target, needle, cause) in cases {
        let out = output_within(
            Command::new(CLUSTER)
                .args(["up", "--nodes", "1", "--dir"])
                .arg(&target)
                .arg("--node-bin")
                .arg(NODE),
            Duration::from_secs(20),
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&needle), "lacks {needle:?}: {stderr}");
        assert_eq!(stderr.matches(cause).count(), 1, "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn raft_cluster_stops_the_other_nodes_and_exits_nonzero_when_a_node_exits() {
    let dir = tempfile::tempdir().unwrap();
    // Node 1 will refuse its data directory (not a WAL) and exit 1 at start.
    fs::create_dir_all(dir.path().join("node-1")).unwrap();
    fs::write(dir.path().join("node-1").join("raft.wal"), "garbage").unwrap();
    let out = output_within(&mut cluster_up("3", dir.path()), Duration::from_secs(30));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let log = dir.path().join("node-1.log");
    assert!(
        stderr.contains(&format!(
            "node 1 exited (exit status: 1); its log is {}",
            log.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("no WAL header"), "{stderr}");
    // Nobody holds the other nodes' directories any more.
    for id in [0, 2] {
        let data = dir.path().join(format!("node-{id}"));
        raft_impl::storage::DirLock::acquire(&data)
            .unwrap_or_else(|e| panic!("node {id} still running: {e}"));
    }
    // Node logs in files carry no colour codes.
    for id in 0..3 {
        let text = fs::read_to_string(dir.path().join(format!("node-{id}.log"))).unwrap();
        assert!(
            !text.contains('\x1b'),
            "ANSI codes in node-{id}.log: {text}"
        );
    }
}

#[test]
fn raft_cluster_stops_when_a_running_node_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut up = Command::new(CLUSTER)
        .args(["up", "--nodes", "3", "--dir"])
        .arg(dir.path())
        .arg("--node-bin")
        .arg(NODE)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn raft-cluster");
    let data = |id: u64| dir.path().join(format!("node-{id}"));
    let started = wait_until(Duration::from_secs(20), || {
        (0..3).all(|id| lock_pid(&data(id)).is_some())
    });
    assert!(started, "the cluster did not start");
    let victim = lock_pid(&data(2)).unwrap();
    Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .expect("kill");
    let status = wait_exit(&mut up, Duration::from_secs(20));
    let out = up.wait_with_output().expect("output");
    let stderr = text(&out.stderr);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{stderr}");
    assert!(
        stderr.contains("node 2 exited (signal: 9 (SIGKILL))"),
        "{stderr}"
    );
    assert!(stderr.contains("node-2.log"), "{stderr}");
    for id in [0, 1] {
        raft_impl::storage::DirLock::acquire(&data(id))
            .unwrap_or_else(|e| panic!("node {id} still running: {e}"));
    }
}

#[test]
fn raft_cluster_passes_its_snapshot_policy_to_its_nodes() {
    let dir = tempfile::tempdir().unwrap();
    // A bound raft-node would refuse is refused before any node starts.
    let out = output_within(
        Command::new(CLUSTER)
            .args(["up", "--nodes", "3", "--snapshot-bytes", "10", "--dir"])
            .arg(dir.path())
            .arg("--node-bin")
            .arg(NODE),
        Duration::from_secs(20),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--snapshot-bytes must be 0"), "{stderr}");
    assert!(!dir.path().join("cluster.toml").exists());
    // With a snapshot every 5 entries (raft-node's default is 10,000), 12 writes compact
    // every node's log.
    let mut up = Command::new(CLUSTER)
        .args(["up", "--nodes", "3", "--snapshot-entries", "5"])
        .args(["--snapshot-bytes", "0", "--dir"])
        .arg(dir.path())
        .arg("--node-bin")
        .arg(NODE)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn raft-cluster");
    let data = |id: u64| dir.path().join(format!("node-{id}"));
    let started = wait_until(Duration::from_secs(20), || {
        (0..3).all(|id| lock_pid(&data(id)).is_some())
    });
    assert!(started, "the cluster did not start");
    let cluster = common::load_cluster(&dir.path().join("cluster.toml"));
    for i in 0..12 {
        let op = raft_impl::kv::Op::Put {
            key: format!("k{i}"),
            value: format!("v{i}"),
        };
        execute(&cluster, op, Duration::from_secs(20));
    }
    let has_snapshot = |id: u64| {
        fs::read_dir(data(id)).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with("snap-") && name.ends_with(".snap")
            })
        })
    };
    let compacted = wait_until(Duration::from_secs(20), || (0..3).all(has_snapshot));
    let _ = Command::new("kill")
        .args(["-TERM", &up.id().to_string()])
        .status();
    let status = wait_exit(&mut up, Duration::from_secs(20));
    assert!(
        compacted,
        "a node has no snapshot file: {:?}",
        (0..3).map(has_snapshot).collect::<Vec<_>>()
    );
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[test]
fn raft_kv_keeps_its_timeout_and_refuses_zero() {
    // A "node" that accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cluster = raft_impl::config::ClusterConfig::new(vec![raft_impl::config::NodeSpec {
        id: 0,
        peer_addr: free_addr(),
        client_addr: addr,
        initial_member: true,
    }]);
    let file = dir.path().join("cluster.toml");
    fs::write(&file, cluster.to_toml()).unwrap();
    let started = Instant::now();
    let out = output_within(
        Command::new(KV)
            .args(["--timeout-secs", "2", "--cluster"])
            .arg(&file)
            .args(["put", "k", "v"]),
        Duration::from_secs(20),
    );
    let elapsed = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no leader with a quorum"), "{stderr}");
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_millis(2700),
        "--timeout-secs 2 took {elapsed:?}"
    );
    let out = output_within(
        Command::new(KV)
            .args(["--timeout-secs", "0", "--cluster"])
            .arg(&file)
            .args(["put", "k", "v"]),
        Duration::from_secs(20),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--timeout-secs"), "{stderr}");
    assert!(stderr.contains("at least 1 second"), "{stderr}");
}

#[test]
fn raft_kv_get_tells_a_stored_nil_from_a_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cluster_file) = write_cluster(dir.path(), 1);
    let _node = Node::start(
        0,
        &cluster_file,
        &dir.path().join("node-0"),
        &dir.path().join("node-0.log"),
    );
    let put = kv(&cluster_file, &["put", "k", "(nil)"]);
    assert!(put.status.success(), "{put:?}");
    let stored = kv(&cluster_file, &["get", "k"]);
    assert_eq!(stored.status.code(), Some(0), "{stored:?}");
    assert_eq!(text(&stored.stdout), "(nil)\n");
    let missing = kv(&cluster_file, &["get", "nothing-here"]);
    assert_eq!(missing.status.code(), Some(4), "{missing:?}");
    assert_eq!(text(&missing.stdout), "");
    assert!(
        text(&missing.stderr).contains("nothing-here: not set"),
        "{missing:?}"
    );
    let cas = kv(&cluster_file, &["cas", "nothing-here", "x", "y"]);
    assert_eq!(cas.status.code(), Some(3), "{cas:?}");
    assert!(text(&cas.stdout).contains("not set"), "{cas:?}");
    let cas = kv(&cluster_file, &["cas", "k", "x", "y"]);
    assert!(text(&cas.stdout).contains("\"(nil)\""), "{cas:?}");
}

#[test]
fn raft_kv_leader_transfer_hands_the_leadership_to_the_named_node() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, cluster_file) = write_cluster(dir.path(), 3);
    let _nodes = start_nodes(dir.path(), &cluster_file, 3);
    let put = kv(&cluster_file, &["put", "k", "before"]);
    assert!(put.status.success(), "{put:?}");
    let leader_id = |what: &str| -> u64 {
        let show = kv(&cluster_file, &["leader", "show"]);
        assert_eq!(show.status.code(), Some(0), "{what}: {show:?}");
        text(&show.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{what}: not an id ({e}): {show:?}"))
    };
    let leader = leader_id("before");
    let target = (leader + 1) % 3;
    let to = target.to_string();

    let out = kv(&cluster_file, &["leader", "transfer", "--to", &to]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let said = text(&out.stdout);
    assert!(
        said.starts_with(&format!("OK: node {target} leads term ")),
        "{said}"
    );
    assert_eq!(leader_id("after"), target);
    // The key is still there, and the new leader takes writes.
    let get = kv(&cluster_file, &["get", "k"]);
    assert_eq!(text(&get.stdout), "before\n", "{get:?}");
    let put = kv(&cluster_file, &["put", "k", "after"]);
    assert!(put.status.success(), "{put:?}");
    let get = kv(&cluster_file, &["get", "k"]);
    assert_eq!(text(&get.stdout), "after\n", "{get:?}");
    // To the leader itself: nothing to do.
    let again = kv(&cluster_file, &["leader", "transfer", "--to", &to]);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert_eq!(leader_id("again"), target);

    // Not a member: exit 2 with one line, before anything is sent.
    let bad = kv(&cluster_file, &["leader", "transfer", "--to", "99"]);
    let stderr = text(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(
        stderr.contains("node 99 is not in the cluster file"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // The leader refuses it too (a client with another cluster file), without retrying.
    let started = Instant::now();
    let refused = common::client(&cluster).transfer_leadership(99, Duration::from_secs(10));
    assert!(
        matches!(&refused, Err(raft_impl::client::ClientError::Refused { reason, .. }) if reason.contains("node 99 is not a member")),
        "{refused:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "retried: {refused:?}"
    );
    assert_eq!(leader_id("at the end"), target);
}

/// Runs raft-node under a pseudo-terminal (util-linux `script`) until it exits: it logs
/// "WAL recovered", then fails to bind its client port, which `taken` holds.
fn node_on_a_terminal(no_color: Option<&str>) -> Option<String> {
    if !std::path::Path::new("/usr/bin/script").exists() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_taken, cluster_file) = write_cluster_with_taken_client_port(dir.path());
    let node = format!(
        "{NODE} --id 0 --cluster {} --data-dir {}",
        cluster_file.display(),
        dir.path().join("data").display()
    );
    let mut command = Command::new("/usr/bin/script");
    command
        .args(["-q", "-e", "-c", &node, "/dev/null"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR");
    if let Some(v) = no_color {
        command.env("NO_COLOR", v);
    }
    let out = output_within(&mut command, Duration::from_secs(20));
    let shown = text(&out.stdout);
    assert!(shown.contains("WAL recovered"), "{shown}");
    Some(shown)
}

#[test]
fn colours_only_on_a_terminal_and_never_with_no_color() {
    let Some(plain) = node_on_a_terminal(None) else {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "no /usr/bin/script to make a pseudo-terminal (under CI=true this test may not skip)"
        );
        eprintln!("skipped: no /usr/bin/script to make a pseudo-terminal");
        return;
    };
    assert!(plain.contains('\x1b'), "no colours on a terminal: {plain}");
    let no_color = node_on_a_terminal(Some("1")).unwrap();
    assert!(
        !no_color.contains('\x1b'),
        "colours with NO_COLOR=1: {no_color}"
    );
    // And never when stderr is a pipe or a file.
    let dir = tempfile::tempdir().unwrap();
    let (_taken, cluster_file) = write_cluster_with_taken_client_port(dir.path());
    let out = output_within(
        &mut node_command(0, &cluster_file, &dir.path().join("data")),
        Duration::from_secs(20),
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("WAL recovered"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "colours in a pipe: {stderr}");
}

#[test]
fn raft_kv_member_adds_promotes_and_removes_a_node_without_losing_a_write() {
    let dir = tempfile::tempdir().unwrap();
    // Four nodes in the address book; node 3 is not an initial member: it starts empty and
    // waits to be added.
    let (mut cluster, cluster_file) = write_cluster(dir.path(), 4);
    cluster.nodes[3].initial_member = false;
    fs::write(&cluster_file, cluster.to_toml()).unwrap();
    let mut nodes = start_nodes(dir.path(), &cluster_file, 4);
    let member = |args: &[&str]| {
        let mut all = vec!["member"];
        all.extend_from_slice(args);
        kv(&cluster_file, &all)
    };
    let put = kv(&cluster_file, &["put", "k", "before"]);
    assert!(put.status.success(), "{put:?}");
    let list = member(&["list"]);
    assert_eq!(
        first_line(&list.stdout),
        "voters 0,1,2 learners -",
        "{list:?}"
    );

    // Not in the address book and no address given: refused with the reason, exit 2.
    let bad = member(&["add", "9"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(text(&bad.stderr).contains("has no address"), "{bad:?}");
    // An address that is no IP address and port: refused.
    let bad = member(&["add", "9", "somewhere", "127.0.0.1:1"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(
        text(&bad.stderr).contains("not an IP address and port"),
        "{bad:?}"
    );
    // Only a learner can be promoted.
    let bad = member(&["promote", "3"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(text(&bad.stderr).contains("only a learner"), "{bad:?}");

    let add = member(&["add", "3"]);
    assert_eq!(
        first_line(&add.stdout),
        "voters 0,1,2 learners 3",
        "{add:?}"
    );
    let promote = member(&["promote", "3"]);
    assert_eq!(
        first_line(&promote.stdout),
        "voters 0,1,2,3 learners -",
        "{promote:?}"
    );
    let put = kv(&cluster_file, &["put", "k", "with-four"]);
    assert!(put.status.success(), "{put:?}");

    // Replace node 0 by node 3: remove it (the leader too, if it leads), then stop it.
    let remove = member(&["remove", "0"]);
    assert_eq!(
        first_line(&remove.stdout),
        "voters 1,2,3 learners -",
        "{remove:?}"
    );
    nodes[0].kill9();
    // With node 1 stopped as well, nodes 2 and 3 are a majority of {1, 2, 3}: the new
    // member holds the log, and every acknowledged write is there.
    nodes[1].kill9();
    let get = kv(&cluster_file, &["get", "k"]);
    assert_eq!(text(&get.stdout), "with-four\n", "{get:?}");
    let put = kv(&cluster_file, &["put", "k", "after"]);
    assert!(put.status.success(), "{put:?}");
    let list = member(&["list"]);
    assert_eq!(
        first_line(&list.stdout),
        "voters 1,2,3 learners -",
        "{list:?}"
    );
    // Then one line per member, with the addresses of the cluster file.
    let lines: Vec<String> = text(&list.stdout)
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect();
    let expected: Vec<String> = (1..=3)
        .map(|id| {
            let n = &cluster.nodes[id];
            format!("{id} peer {} client {}", n.peer_addr, n.client_addr)
        })
        .collect();
    assert_eq!(lines, expected, "{list:?}");
}

/// Nodes `0..n` of `cluster_file`, each with its data and log under `dir`.
fn start_nodes(dir: &std::path::Path, cluster_file: &std::path::Path, n: u64) -> Vec<Node> {
    (0..n)
        .map(|id| {
            Node::start(
                id,
                cluster_file,
                &dir.join(format!("node-{id}")),
                &dir.join(format!("node-{id}.log")),
            )
        })
        .collect()
}

#[test]
fn raft_cluster_up_is_bounded_and_stops_starting_nodes_at_ctrl_c() {
    // Issue 38, finding 4: `up --nodes 2000` started about 70 nodes a second without a limit,
    // and went on starting them after Ctrl-C.
    let dir = tempfile::tempdir().unwrap();
    let out = output_within(&mut cluster_up("2000", dir.path()), Duration::from_secs(20));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("more than 64 processes"), "{stderr}");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "files written"
    );

    let mut up = Command::new(CLUSTER)
        .args(["up", "--nodes", "40", "--spares", "24", "--dir"])
        .arg(dir.path())
        .arg("--node-bin")
        .arg(NODE)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn raft-cluster");
    // Ctrl-C as soon as the first node was started.
    let first = wait_until(Duration::from_secs(20), || {
        dir.path().join("node-0.log").exists()
    });
    assert!(first, "no node started");
    Command::new("kill")
        .args(["-INT", &up.id().to_string()])
        .status()
        .expect("kill");
    let status = wait_exit(&mut up, Duration::from_secs(30));
    let out = up.wait_with_output().expect("output");
    let stdout = text(&out.stdout);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{stdout}");
    assert!(stdout.contains("interrupted: stopping the"), "{stdout}");
    let started = (0..64)
        .filter(|id| dir.path().join(format!("node-{id}.log")).exists())
        .count();
    assert!(
        started < 64,
        "all {started} nodes were started after Ctrl-C"
    );
    for id in 0..64 {
        let data = dir.path().join(format!("node-{id}"));
        if data.exists() {
            raft_impl::storage::DirLock::acquire(&data)
                .unwrap_or_else(|e| panic!("node {id} still running: {e}"));
        }
    }
}

/// The first line of a command's output.
fn first_line(bytes: &[u8]) -> String {
    text(bytes).lines().next().unwrap_or_default().to_string()
}
