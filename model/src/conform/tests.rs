use super::*;
use raft_core::{Message, NodeId, Server};

fn restart(node: u64) -> TraceRecord<String> {
    TraceRecord {
        node: NodeId(node),
        seq: 0,
        time_us: 0,
        event: TraceEvent::Restart,
        state_after: Some(Server::new()),
        sent: vec![],
    }
}

#[test]
fn a_receive_of_a_message_nobody_sent_has_no_causal_order() {
    let mut traces: Vec<Vec<TraceRecord<String>>> = (0..3).map(|i| vec![restart(i)]).collect();
    traces[1].push(TraceRecord {
        node: NodeId(1),
        seq: 1,
        time_us: 5,
        event: TraceEvent::Receive {
            from: NodeId(0),
            msg: Message::RequestVote(raft_core::RequestVote {
                term: 1,
                last_log_index: 0,
                last_log_term: 0,
                transfer: false,
            }),
        },
        state_after: Some(Server::new()),
        sent: vec![],
    });
    match conform(traces, &RunInfo::default()) {
        Err(ConformError::NoCausalOrder(e)) => {
            assert!(
                e.contains("node n1 seq 1 (receive from n0: RequestVote"),
                "{e}"
            )
        }
        other => panic!("expected no causal order, got {other:?}"),
    }
}

#[test]
fn node_ids_must_be_dense() {
    let traces = vec![vec![restart(0)], vec![restart(2)]];
    assert!(matches!(
        conform(traces, &RunInfo::default()),
        Err(ConformError::Invalid(_))
    ));
}

#[test]
fn three_idle_nodes_conform() {
    let traces: Vec<_> = (0..3).map(|i| vec![restart(i)]).collect();
    let s = conform(traces, &RunInfo::default()).unwrap();
    assert_eq!((s.nodes, s.steps), (3, 3));
}

#[test]
fn a_restart_without_a_crash_is_rejected() {
    let mut traces: Vec<Vec<TraceRecord<String>>> = (0..3).map(|i| vec![restart(i)]).collect();
    let mut again = restart(2);
    again.seq = 1;
    traces[2].push(again);
    let err = conform(traces, &RunInfo::default()).unwrap_err();
    assert!(
        err.to_string().contains("a restart without a crash"),
        "{err}"
    );
}

#[test]
fn a_malformed_line_is_an_error_not_a_panic() {
    let e = parse_jsonl::<String>("{\"node\": 0}\n", "x.jsonl").unwrap_err();
    assert!(e.starts_with("x.jsonl:1: not a trace record"), "{e}");
    let ok = serde_json::to_string(&restart(0)).unwrap();
    let e = parse_jsonl::<String>(&format!("{ok}\n{ok}\n"), "x.jsonl").unwrap_err();
    assert!(e.contains("seq 0 where 1 was expected"), "{e}");
}
