//! Per-step traces of a node, for trace conformance (`raft-check conform`).
//!
//! A driver that wants a trace gives its [`Replica`](crate::node::replica::Replica) a
//! [`TraceSink`]; without one, tracing costs one branch per step. Each record
//! ([`raft_core::trace_record::TraceRecord`]) is one step: the event, the node's Raft state after it
//! and the messages it sent. The replica records each step right after staging it, before the
//! batch's `sync`. A process killed between the two leaves records of a batch that never
//! became durable and never sent anything (messages leave after the sync): its next start cuts
//! exactly those off ([`open_node_trace`]: trailing records of the last batch whose hard state
//! the disk does not have), as they left no mark on the world. Crash and restart records are
//! the driver's ([`TraceLog::crash`], [`TraceLog::restart`]).
//!
//! Snapshot images are left out: a record's `state_after.hard.snapshot.data`, an
//! InstallSnapshot's `snapshot.data` (in `sent` and in a `Receive` event) and a `Compact`
//! event's `data` are written as empty arrays. The replay compares snapshots and
//! InstallSnapshot messages by everything but their images (the model's differ), and a
//! whole image in every record would make a trace grow with the state machine at each step.

use crate::kv::Command;
use raft_core::trace_record::{TraceEvent, TraceRecord};
use raft_core::{HardState, Message, NodeId, Server, Snapshot};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where a replica's trace records go.
pub trait TraceSink: Send {
    /// One step at `time`: the event, the state after it, the messages it sent.
    fn record(
        &mut self,
        time: Duration,
        event: TraceEvent<Command>,
        state_after: Option<&Server<Command>>,
        sent: &[(NodeId, Message<Command>)],
    );
}

/// One node's trace as JSON Lines, numbered from `seq`; each record is one `write` call (a
/// killed process leaves whole lines behind).
pub struct TraceLog<W: Write + Send> {
    node: NodeId,
    seq: u64,
    out: W,
    /// Added to every time (a process node: the wall clock at its start, so that the traces of
    /// several processes share one time line).
    pub time_offset: Duration,
    /// The first write error; later records are skipped (the trace is then incomplete, and
    /// `conform` will say so).
    pub error: Option<std::io::Error>,
}

impl<W: Write + Send> TraceLog<W> {
    pub fn new(node: NodeId, first_seq: u64, out: W) -> Self {
        TraceLog {
            node,
            seq: first_seq,
            out,
            time_offset: Duration::ZERO,
            error: None,
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// What was written so far.
    pub fn peek(&self) -> &W {
        &self.out
    }

    pub fn crash(&mut self, time: Duration) {
        self.record(time, TraceEvent::Crash, None, &[]);
    }

    pub fn restart(&mut self, time: Duration, server: &Server<Command>) {
        self.record(time, TraceEvent::Restart, Some(server), &[]);
    }
}

impl<W: Write + Send> TraceSink for TraceLog<W> {
    fn record(
        &mut self,
        time: Duration,
        event: TraceEvent<Command>,
        state_after: Option<&Server<Command>>,
        sent: &[(NodeId, Message<Command>)],
    ) {
        if self.error.is_some() {
            return;
        }
        let record = TraceRecord {
            node: self.node,
            seq: self.seq,
            time_us: (time + self.time_offset).as_micros() as u64,
            event: event_without_image(event),
            state_after: state_after.map(server_without_image),
            sent: sent
                .iter()
                .map(|(to, msg)| (*to, message_without_image(msg)))
                .collect(),
        };
        self.seq += 1;
        let mut line = match serde_json::to_vec(&record) {
            Ok(l) => l,
            Err(e) => {
                self.error = Some(std::io::Error::other(e));
                return;
            }
        };
        line.push(b'\n');
        if let Err(e) = self.out.write_all(&line) {
            self.error = Some(e);
        }
    }
}

/// `snapshot` without its image (the other fields kept).
fn snapshot_without_image(snapshot: &Snapshot) -> Snapshot {
    Snapshot {
        last_included_index: snapshot.last_included_index,
        last_included_term: snapshot.last_included_term,
        config: snapshot.config.clone(),
        data: Vec::new(),
    }
}

/// `hard` with its snapshot's image left out, as a trace records it.
pub fn hard_state_without_image(hard: &HardState<Command>) -> HardState<Command> {
    HardState {
        current_term: hard.current_term,
        voted_for: hard.voted_for,
        snapshot: snapshot_without_image(&hard.snapshot),
        log: hard.log.clone(),
    }
}

/// A copy of `s` whose snapshot has no image, without copying the image. Every field is
/// named (no `..`), so that a new field of `Server` is a compile error here, not a field the
/// trace silently drops.
fn server_without_image(s: &Server<Command>) -> Server<Command> {
    Server {
        hard: hard_state_without_image(&s.hard),
        role: s.role,
        commit_index: s.commit_index,
        last_applied: s.last_applied,
        leader_id: s.leader_id,
        votes_granted: s.votes_granted.clone(),
        leader: s.leader.clone(),
        pending_reads: s.pending_reads.clone(),
        transfer_campaign: s.transfer_campaign,
        log_membership: s.log_membership.clone(),
    }
}

/// `msg`, an InstallSnapshot without its image.
fn message_without_image(msg: &Message<Command>) -> Message<Command> {
    match msg {
        Message::InstallSnapshot(m) => Message::InstallSnapshot(raft_core::InstallSnapshot {
            term: m.term,
            snapshot: snapshot_without_image(&m.snapshot),
            read_round: m.read_round,
        }),
        other => other.clone(),
    }
}

/// `event` without a snapshot image (a Compact's, a received InstallSnapshot's).
fn event_without_image(event: TraceEvent<Command>) -> TraceEvent<Command> {
    match event {
        TraceEvent::Compact { index, .. } => TraceEvent::Compact {
            index,
            data: Vec::new(),
        },
        TraceEvent::Receive {
            from,
            msg: Message::InstallSnapshot(mut m),
        } => {
            m.snapshot.data = Vec::new();
            TraceEvent::Receive {
                from,
                msg: Message::InstallSnapshot(m),
            }
        }
        other => other,
    }
}

/// A trace shared between a replica and its driver (which records crashes and restarts).
impl<S: TraceSink> TraceSink for Arc<Mutex<S>> {
    fn record(
        &mut self,
        time: Duration,
        event: TraceEvent<Command>,
        state_after: Option<&Server<Command>>,
        sent: &[(NodeId, Message<Command>)],
    ) {
        if let Ok(mut sink) = self.lock() {
            sink.record(time, event, state_after, sent);
        }
    }
}

/// A process node's trace file `dir/node-<id>.jsonl`, opened for appending by a process that
/// recovered `recovered` from its WAL. A restarted process goes on numbering where its
/// predecessor stopped, after a `Crash` record for it (killed or shut down, its volatile state
/// is gone). Before that, trailing records of the predecessor's last batch (the records that
/// share the last record's time) whose durable hard state (`Server::durable_hard_state`) the
/// disk does not hold are cut off: that batch was killed before its sync, so those steps never
/// became durable nor sent anything. (A leader's steps that wrote its entries behind did send:
/// their durable state leaves those entries out, so they stay.)
/// Nothing older is ever cut, so a disk that loses synced data is still seen by `conform`.
pub fn open_node_trace(
    dir: &std::path::Path,
    node: NodeId,
    recovered: &raft_core::HardState<Command>,
) -> std::io::Result<TraceLog<std::fs::File>> {
    use std::io::Seek;
    // The records hold no snapshot image: compare the recovered state without its own.
    let recovered = &hard_state_without_image(recovered);
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("node-{}.jsonl", node.0));
    let existing = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    // Whole lines only (each record is one write, so none is expected to be torn).
    let mut keep = existing
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let mut last_time: Option<u64> = None;
    while keep > 0 {
        let start = existing[..keep - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let Ok(record) = serde_json::from_slice::<TraceRecord<Command>>(&existing[start..keep])
        else {
            break;
        };
        if *last_time.get_or_insert(record.time_us) != record.time_us {
            break;
        }
        match &record.state_after {
            Some(s) if s.durable_hard_state() != *recovered => keep = start,
            _ => break,
        }
    }
    let lines = existing[..keep].iter().filter(|b| **b == b'\n').count() as u64;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&path)?;
    file.set_len(keep as u64)?;
    file.seek(std::io::SeekFrom::End(0))?;
    let mut log = TraceLog::new(node, lines, file);
    log.time_offset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    if lines > 0 {
        log.crash(Duration::ZERO);
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Op;
    use raft_core::{Entry, HardState};

    /// The records of a JSON Lines trace (the checker's reader, `raft_model::conform`, also
    /// checks sequence numbers; here only the events matter).
    fn parse_jsonl<C: serde::de::DeserializeOwned>(
        text: &str,
        _: &str,
    ) -> Result<Vec<TraceRecord<C>>, String> {
        text.lines()
            .map(|l| serde_json::from_str(l).map_err(|e| e.to_string()))
            .collect()
    }

    fn server(term: u64, entries: usize) -> Server<Command> {
        let mut s = Server::new();
        s.hard.current_term = term;
        for seq in 0..entries as u64 {
            s.hard.log.push(Entry {
                term,
                command: Command {
                    client_id: 1,
                    seq,
                    op: Op::Get { key: "k".into() },
                },
            });
        }
        s
    }

    /// A leader of term 1 with `entries` entries, `persisted` of them durable.
    fn leader(entries: usize, persisted: u64) -> Server<Command> {
        let mut s = server(1, entries);
        s.role = raft_core::Role::Leader;
        s.leader.persisted_index = persisted;
        s
    }

    /// Node 1's trace in `dir`: its first start at 1 ms, then one record per `(ms, event,
    /// state after)`, as a process that is then killed leaves it.
    fn write_trace(dir: &std::path::Path, steps: Vec<(u64, TraceEvent<Command>, Server<Command>)>) {
        let mut log = open_node_trace(dir, NodeId(1), &HardState::default()).unwrap();
        log.time_offset = Duration::ZERO;
        log.restart(Duration::from_millis(1), &server(0, 0));
        for (ms, event, state) in steps {
            log.record(Duration::from_millis(ms), event, Some(&state), &[]);
        }
    }

    /// The trace's records after node 1 restarts having recovered `recovered`.
    fn after_restart(
        dir: &std::path::Path,
        recovered: &HardState<Command>,
    ) -> Vec<TraceRecord<Command>> {
        drop(open_node_trace(dir, NodeId(1), recovered).unwrap());
        let text = std::fs::read_to_string(dir.join("node-1.jsonl")).unwrap();
        parse_jsonl::<Command>(&text, "node-1").unwrap()
    }

    fn events(records: &[TraceRecord<Command>]) -> Vec<TraceEvent<Command>> {
        records.iter().map(|r| r.event.clone()).collect()
    }

    #[test]
    fn a_restart_keeps_a_leaders_written_behind_steps_and_cuts_its_unsynced_report() {
        let dir = tempfile::tempdir().unwrap();
        write_trace(
            dir.path(),
            vec![
                // Batch at 2 ms: the leader's first entry, durable.
                (2, TraceEvent::Heartbeat, leader(1, 1)),
                // Batch at 3 ms: its second entry, written behind (its AppendEntries left),
                // then the flush's report, killed before the sync.
                (3, TraceEvent::Heartbeat, leader(2, 1)),
                (3, TraceEvent::Persisted { term: 1, index: 2 }, leader(2, 2)),
            ],
        );
        let records = after_restart(dir.path(), &server(1, 1).hard);
        assert_eq!(
            events(&records),
            vec![
                TraceEvent::Restart,
                TraceEvent::Heartbeat,
                TraceEvent::Heartbeat,
                TraceEvent::Crash
            ],
            "the step that sent stays; the report that never became true goes"
        );
    }

    #[test]
    fn a_restart_cuts_only_the_unsynced_last_batch_and_records_the_crash() {
        let dir = tempfile::tempdir().unwrap();
        write_trace(
            dir.path(),
            vec![
                // Batch at 2 ms: synced (the disk will hold term 1, one entry).
                (2, TraceEvent::Heartbeat, server(1, 1)),
                // Batch at 3 ms: killed before its sync (two steps).
                (3, TraceEvent::Heartbeat, server(1, 2)),
                (3, TraceEvent::Heartbeat, server(1, 3)),
            ],
        );
        let records = after_restart(dir.path(), &server(1, 1).hard);
        assert_eq!(
            events(&records),
            vec![
                TraceEvent::Restart,
                TraceEvent::Heartbeat,
                TraceEvent::Crash
            ]
        );

        // A disk that lost synced data is not explained away: only the last batch is cut.
        let records = after_restart(dir.path(), &server(0, 0).hard);
        assert_eq!(records.len(), 4, "{records:?}");
        assert_eq!(records[3].event, TraceEvent::Crash);
    }

    /// `s` compacted at its last entry, with an image.
    fn compacted(mut s: Server<Command>) -> Server<Command> {
        let index = s.hard.log.len() as u64;
        s.hard.snapshot = Snapshot {
            last_included_index: index,
            last_included_term: s.hard.current_term,
            config: None,
            data: vec![7; 4096],
        };
        s.hard.log.clear();
        s.commit_index = index;
        s.last_applied = index;
        s
    }

    #[test]
    fn records_leave_snapshot_images_out() {
        let state = compacted(server(1, 3));
        let install = Message::InstallSnapshot(raft_core::InstallSnapshot {
            term: 1,
            snapshot: state.hard.snapshot.clone(),
            read_round: 2,
        });
        let mut log = TraceLog::new(NodeId(1), 0, Vec::new());
        log.record(
            Duration::from_millis(1),
            TraceEvent::Compact {
                index: 3,
                data: vec![7; 4096],
            },
            Some(&state),
            &[(NodeId(2), install.clone())],
        );
        log.record(
            Duration::from_millis(2),
            TraceEvent::Receive {
                from: NodeId(2),
                msg: install.clone(),
            },
            Some(&state),
            &[],
        );
        let text = String::from_utf8(log.into_inner()).unwrap();
        assert!(text.len() < 2000, "{} bytes: {text}", text.len());
        let records = parse_jsonl::<Command>(&text, "node-1").unwrap();
        let mut expected = state.clone();
        expected.hard.snapshot.data.clear();
        let Message::InstallSnapshot(mut bare) = install else {
            unreachable!()
        };
        bare.snapshot.data.clear();
        let bare = Message::InstallSnapshot(bare);
        assert_eq!(records[0].state_after.as_ref(), Some(&expected));
        assert_eq!(
            records[0].event,
            TraceEvent::Compact {
                index: 3,
                data: vec![]
            }
        );
        assert_eq!(records[0].sent, vec![(NodeId(2), bare.clone())]);
        assert_eq!(
            records[1].event,
            TraceEvent::Receive {
                from: NodeId(2),
                msg: bare
            }
        );
    }

    #[test]
    fn a_restart_from_a_snapshot_keeps_its_synced_records() {
        let dir = tempfile::tempdir().unwrap();
        // One batch: a compaction, synced (the disk holds it, image and all), then one more
        // entry that was killed before its own sync.
        let synced = compacted(server(1, 3));
        let mut unsynced = synced.clone();
        unsynced.hard.log.push(server(1, 4).hard.log[3].clone());
        let compact = TraceEvent::Compact {
            index: 3,
            data: vec![7; 4096],
        };
        write_trace(
            dir.path(),
            vec![
                (2, TraceEvent::Heartbeat, server(1, 3)),
                (3, compact, synced.clone()),
                (3, TraceEvent::Heartbeat, unsynced),
            ],
        );
        // The records' snapshot has no image, the disk's has one: they still match, so only
        // the unsynced step is cut.
        let records = after_restart(dir.path(), &synced.hard);
        assert_eq!(
            events(&records),
            vec![
                TraceEvent::Restart,
                TraceEvent::Heartbeat,
                TraceEvent::Compact {
                    index: 3,
                    data: vec![]
                },
                TraceEvent::Crash
            ]
        );
    }
}
