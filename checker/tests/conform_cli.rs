//! The `raft-check conform` contract: a run that follows the model exits 0, a run that does
//! not exits 1 with the step and the difference, malformed traces exit 2. The traces are made
//! here with the protocol core itself (an election among 3 nodes).

use raft_core::{Config, Event, Message, NodeId, Server};
use raft_model::conform::{RunInfo, TraceEvent, TraceRecord};
use std::path::Path;
use std::process::{Command, Output};

type Rec = TraceRecord<String>;

fn raft_check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raft-check"))
        .args(args)
        .output()
        .expect("raft-check runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Node {
    cfg: Config,
    server: Server<String>,
    records: Vec<Rec>,
}

impl Node {
    fn new(i: u64) -> Self {
        // What a trace without run.json is replayed as: the node's configuration.
        let info = RunInfo::default();
        let cfg = Config::new(NodeId(i), (0..3).map(NodeId))
            .with_fast_backup(info.fast_backup)
            .with_max_entries_per_append(info.max_entries_per_append.unwrap())
            .with_pipeline(info.pipeline)
            .with_pre_vote(info.pre_vote)
            .with_check_quorum(info.check_quorum);
        let server = Server::new();
        let records = vec![Rec {
            node: NodeId(i),
            seq: 0,
            time_us: 0,
            event: TraceEvent::Restart,
            state_after: Some(server.clone()),
            sent: vec![],
        }];
        Node {
            cfg,
            server,
            records,
        }
    }

    fn step(&mut self, time_us: u64, event: Event<String>) -> Vec<(NodeId, Message<String>)> {
        let traced = TraceEvent::of(&event);
        let out = self
            .server
            .handle(&self.cfg, event)
            .expect("a correct step");
        self.records.push(Rec {
            node: self.cfg.id,
            seq: self.records.len() as u64,
            time_us,
            event: traced,
            state_after: Some(self.server.clone()),
            sent: out.messages.clone(),
        });
        out.messages
    }
}

/// An election as the node runs it: n0 times out, n1 grants its pre-vote, n0 campaigns, n1
/// grants its vote, n0 becomes leader. With `twice`, n1 is handed the RequestVote a second
/// time (a non-duplicating run must not do that).
fn election(dir: &Path, twice: bool) {
    let mut nodes: Vec<Node> = (0..3).map(Node::new).collect();
    let sent = nodes[0].step(10, Event::ElectionTimeout);
    let (_, pre_vote) = sent
        .iter()
        .find(|(to, _)| *to == NodeId(1))
        .unwrap()
        .clone();
    let replies = nodes[1].step(
        15,
        Event::Receive {
            from: NodeId(0),
            msg: pre_vote,
        },
    );
    let (_, pre_grant) = replies[0].clone();
    let sent = nodes[0].step(
        18,
        Event::Receive {
            from: NodeId(1),
            msg: pre_grant,
        },
    );
    let (_, rv) = sent
        .iter()
        .find(|(to, _)| *to == NodeId(1))
        .unwrap()
        .clone();
    let replies = nodes[1].step(
        20,
        Event::Receive {
            from: NodeId(0),
            msg: rv.clone(),
        },
    );
    if twice {
        nodes[1].step(
            21,
            Event::Receive {
                from: NodeId(0),
                msg: rv,
            },
        );
    }
    let (_, grant) = replies[0].clone();
    nodes[0].step(
        30,
        Event::Receive {
            from: NodeId(1),
            msg: grant,
        },
    );
    std::fs::create_dir_all(dir).unwrap();
    for (i, node) in nodes.iter().enumerate() {
        let lines: Vec<String> = node
            .records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        std::fs::write(dir.join(format!("node-{i}.jsonl")), lines.join("\n") + "\n").unwrap();
    }
}

#[test]
fn conform_exit_codes_and_reports() {
    let root = tempfile::tempdir().unwrap();
    let good = root.path().join("good");
    election(&good, false);
    let out = raft_check(&["conform", good.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("1 conform, 0 mismatch"),
        "{}",
        text(&out.stdout)
    );

    let bad = root.path().join("bad");
    election(&bad, true);
    let out = raft_check(&["conform", bad.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("MISMATCH at step"), "{stdout}");
    assert!(stdout.contains("message not in flight"), "{stdout}");
    // Declared duplicating, the same run conforms.
    let out = raft_check(&["conform", "--duplicating", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // Both runs at once, in parallel: one mismatch makes the exit code 1.
    let out = raft_check(&["conform", root.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("2 runs, 1 conform, 1 mismatch"),
        "{}",
        text(&out.stdout)
    );

    let malformed = root.path().join("malformed");
    std::fs::create_dir_all(&malformed).unwrap();
    std::fs::write(malformed.join("node-0.jsonl"), "{\"not\": \"a record\"}\n").unwrap();
    let out = raft_check(&["conform", malformed.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a trace record"),
        "{}",
        text(&out.stderr)
    );

    let out = raft_check(&["conform", root.path().join("missing").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no such file or directory"));
}
