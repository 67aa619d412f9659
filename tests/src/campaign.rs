//! The fault campaign (`raft-tests campaign`, issue 38): real `raft-node` processes under disk
//! faults and corrupted files. Each trial starts a fresh cluster of the soak (3 voters and one
//! spare started empty, [`crate::soak`]'s cluster and client load), lets the load run, then
//! hits ONE voter (a minority) with one fault kind ([`FaultKind`]) and lets the load run on:
//!
//! - a damaged file (SIGKILL, damage, restart): the node either starts (a torn tail was cut, or
//!   a corrupt snapshot fell back to an older one) or refuses to start with a message that names
//!   the damaged file; then the campaign follows the operator procedure of docs/node.md
//!   (`member remove`, wipe its data directory, add the spare as a new member, promote it);
//! - an injected I/O error (`fiu-run`, libfiu's POSIX preload): the node must exit at its first
//!   failed fsync or write, saying so in its log, and, restarted without faults, recover from
//!   what is durable (or refuse like a damaged node, and be replaced the same way).
//!
//! At the end of each trial every acknowledged write must read back, the client history must be
//! linearizable (our checker, and Porcupine on the exported history), and no two nodes may have
//! become leader in one term (from the nodes' "became leader" log lines).

use crate::history_export;
use crate::soak::{self, Cluster, Endpoints, Recorder};
use raft_impl::core::Address;
use raft_impl::wire::MemberRequest;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// The WAL's file header and frame header (impl/src/storage/record.rs).
const FILE_HEADER_LEN: usize = 40;
const FRAME_HEADER_LEN: usize = 16;
const FRAME_MAGIC: &[u8; 4] = b"RFRM";
const SECTOR: usize = 512;
/// What a node logs when it cuts a torn WAL tail (impl/src/storage/wal.rs).
const TORN_TAIL_LOG: &str = "cutting off a torn WAL tail";
/// What a node logs when it sets a corrupt newest snapshot aside (impl/src/storage/wal.rs).
const SNAPSHOT_ASIDE_LOG: &str = "corrupt snapshot file set aside";

/// One kind of fault; each trial applies one to one voter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// The newest segment's last frame made a torn write: its last sector-aligned part zeroed
    /// (an interrupted sync). Expected: the node starts, cutting the tail.
    CorruptWalTail,
    /// A bit flipped in the payload of the newest segment's last frame (whole, so synced).
    /// Expected: refused, naming the segment.
    CorruptWalLastSynced,
    /// A bit flipped in the payload of a frame before the last. Expected: refused.
    CorruptWalMiddle,
    /// A bit flipped in the segment's 40-byte file header. Expected: refused.
    CorruptWalHeader,
    /// The newest segment truncated at a random offset inside its frames. The cut frame runs
    /// past the end of the file, which is what a torn tail looks like: the node starts.
    TruncateWal,
    /// The newest segment truncated at a random frame boundary before its end: what is left is
    /// a well-formed, shorter log, with nothing to detect. Expected: the node starts silently
    /// without the frames it had synced (listed as an observation, not a failure).
    TruncateWalAtFrame,
    /// 1..2048 bytes zeroed at a random offset inside the frames: refused, or started where the
    /// zeros cover a sector-aligned part of the last frame (a torn tail).
    ZeroWalRange,
    /// A bit flipped in the newest snapshot file: the node falls back to the previous snapshot
    /// where the WAL covers the gap, else refuses naming the file.
    CorruptSnapshot,
    /// fdatasync/fsync fail with EIO at random (libfiu, probability 2%): the node exits.
    FsyncEio,
    /// pwrite fails with ENOSPC at random (libfiu, probability 2%): the node exits.
    WriteEnospc,
}

impl FaultKind {
    pub const ALL: [FaultKind; 10] = [
        FaultKind::CorruptWalTail,
        FaultKind::CorruptWalLastSynced,
        FaultKind::CorruptWalMiddle,
        FaultKind::CorruptWalHeader,
        FaultKind::TruncateWal,
        FaultKind::TruncateWalAtFrame,
        FaultKind::ZeroWalRange,
        FaultKind::CorruptSnapshot,
        FaultKind::FsyncEio,
        FaultKind::WriteEnospc,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::CorruptWalTail => "corrupt-wal-tail",
            FaultKind::CorruptWalLastSynced => "corrupt-wal-last-synced",
            FaultKind::CorruptWalMiddle => "corrupt-wal-middle",
            FaultKind::CorruptWalHeader => "corrupt-wal-header",
            FaultKind::TruncateWal => "truncate-wal",
            FaultKind::TruncateWalAtFrame => "truncate-wal-at-frame",
            FaultKind::ZeroWalRange => "zero-wal-range",
            FaultKind::CorruptSnapshot => "corrupt-snapshot",
            FaultKind::FsyncEio => "fsync-eio",
            FaultKind::WriteEnospc => "write-enospc",
        }
    }

    pub fn parse(s: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Needs `fiu-run` (libfiu).
    pub fn needs_fiu(self) -> bool {
        matches!(self, FaultKind::FsyncEio | FaultKind::WriteEnospc)
    }

    /// The outcome the storage's documented rules give: `Some(true)` the node must start,
    /// `Some(false)` it must refuse, `None` either (it depends on where the damage fell).
    fn expect_start(self) -> Option<bool> {
        match self {
            FaultKind::CorruptWalTail | FaultKind::TruncateWal | FaultKind::TruncateWalAtFrame => {
                Some(true)
            }
            FaultKind::CorruptWalLastSynced
            | FaultKind::CorruptWalMiddle
            | FaultKind::CorruptWalHeader => Some(false),
            _ => None,
        }
    }

    fn fiu_commands(self) -> Vec<String> {
        match self {
            FaultKind::FsyncEio => vec![
                "enable_random name=posix/io/sync/fdatasync,probability=0.02,failinfo=5".into(),
                "enable_random name=posix/io/sync/fsync,probability=0.02,failinfo=5".into(),
            ],
            FaultKind::WriteEnospc => {
                vec!["enable_random name=posix/io/rw/pwrite,probability=0.02,failinfo=28".into()]
            }
            _ => Vec::new(),
        }
    }

    /// What the node's log must say when the injected failure stops it.
    fn fiu_error_text(self) -> &'static [&'static str] {
        match self {
            FaultKind::FsyncEio => &["os error 5", "Input/output error"],
            _ => &["os error 28", "No space left on device"],
        }
    }
}

pub struct CampaignOptions {
    pub trials: u32,
    pub seed: u64,
    pub kinds: Vec<FaultKind>,
    pub node_bin: PathBuf,
    /// Each trial's history goes to `DIR/campaign-<seed>-trial-<n>.json` (default: a temporary
    /// directory, for Porcupine).
    pub history_dir: Option<PathBuf>,
    /// Load before the fault, and after it.
    pub load: Duration,
    /// The Porcupine program's directory (`tests/porcupine`); `None`: Porcupine not run.
    pub porcupine_dir: Option<PathBuf>,
    /// Run only this trial (its seed and kind as in the full run): a finding's replay.
    pub only_trial: Option<u32>,
}

impl CampaignOptions {
    pub fn command(&self) -> String {
        format!(
            "raft-tests campaign --trials {} --seed {} --kinds {} --seconds {}",
            self.trials,
            self.seed,
            self.kinds
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(","),
            self.load.as_secs_f64()
        )
    }
}

/// Whether `fiu-run` is on the PATH.
pub fn fiu_available() -> bool {
    std::process::Command::new("sh")
        .args(["-c", "command -v fiu-run"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What happened to the node hit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Restarted and kept running (for a damaged file: its damage was taken for a torn tail,
    /// `cut`, or was not in the way, e.g. a snapshot fallback).
    Restarted { cut: bool },
    /// Restarted on the previous snapshot, the corrupt newest one set aside (logged).
    RestartedFallback,
    /// Stopped at an injected I/O failure, saying so; restarted without faults, it recovered.
    StoppedRestarted,
    /// Refused to start, naming the file; replaced by the spare (remove, wipe, add, promote).
    RefusedReplaced,
    /// Refused to start but the replacement failed.
    RefusedNotReplaced,
    /// The fault could not be applied (no such file yet, no injected failure reached the node).
    NotApplied,
    /// Skipped (no fiu-run).
    Skipped,
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Restarted { cut: true } => "restarted (torn tail cut)",
            Outcome::Restarted { cut: false } => "restarted",
            Outcome::RestartedFallback => "restarted on the previous snapshot",
            Outcome::StoppedRestarted => "stopped at the failure, restarted",
            Outcome::RefusedReplaced => "refused with message, replaced",
            Outcome::RefusedNotReplaced => "refused with message, replacement failed",
            Outcome::NotApplied => "fault not applied",
            Outcome::Skipped => "skipped (no fiu-run)",
        }
    }
}

/// One trial's figures.
#[derive(Clone, Debug)]
pub struct TrialResult {
    pub n: u32,
    pub kind: FaultKind,
    pub trial_seed: u64,
    pub victim: u64,
    pub damage: String,
    pub outcome: Outcome,
    pub acked: u64,
    pub lost: Vec<String>,
    pub ops: u64,
    pub indefinite: u64,
    /// Our checker: `None` linearizable, else the violation.
    pub ours: Option<String>,
    /// Porcupine's verdict (`linearizable`, `violation`, `unknown`), or "not run".
    pub porcupine: String,
    pub split_brain: Vec<String>,
    /// Elections won, from the nodes' logs (the split-brain check's input).
    pub elections: u64,
    /// Not failures, but worth a look: a node that started having lost data it had synced
    /// (the storage's rules take the damage for a torn tail, or for unwritten space).
    pub observations: Vec<String>,
    /// Anything else wrong (a refusal without the file's name, a silent start, a node that
    /// did not say why it stopped, a node that exited by itself, the trial failing to run).
    pub problems: Vec<String>,
    pub history_name: String,
}

impl TrialResult {
    pub fn failed(&self) -> bool {
        !self.lost.is_empty()
            || self.ours.is_some()
            || !self.split_brain.is_empty()
            || !self.problems.is_empty()
            || (self.porcupine != "not run" && self.porcupine != verdict(self.ours.is_none()))
    }
}

fn verdict(linearizable: bool) -> &'static str {
    if linearizable {
        "linearizable"
    } else {
        "violation"
    }
}

#[derive(Debug, Default)]
pub struct CampaignSummary {
    pub trials: Vec<TrialResult>,
    pub seconds: f64,
    pub porcupine_version: String,
    /// Lines for the report (kinds skipped, Porcupine not run).
    pub notes: Vec<String>,
}

impl CampaignSummary {
    pub fn lost(&self) -> u64 {
        self.trials.iter().map(|t| t.lost.len() as u64).sum()
    }

    pub fn ok(&self) -> bool {
        !self.trials.is_empty() && self.trials.iter().all(|t| !t.failed())
    }

    pub fn markdown(&self, o: &CampaignOptions, command: &str, commit: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Fault campaign: raft-node processes under disk faults\n"
        );
        let _ = writeln!(
            s,
            "Generated by `{command}` on commit {commit} (do not edit by hand); {} trials in \
             {:.0} s. Each trial: a fresh cluster of 3 raft-node processes (and one spare \
             started empty), client load ({} s before the fault and {} s after it; unique-key \
             writes, shared-key puts, gets and compare-and-swaps), one fault on one voter. \
             Porcupine: {}.\n",
            self.trials.len(),
            self.seconds,
            o.load.as_secs_f64(),
            o.load.as_secs_f64(),
            if self.porcupine_version.is_empty() {
                "not run"
            } else {
                &self.porcupine_version
            }
        );
        let _ = writeln!(
            s,
            "| fault kind | trials | writes acknowledged | writes lost | ours: linearizable / violation | Porcupine: linearizable / violation / other | elections won (from the logs) | split brain (terms with two leaders) | started without synced data (observations) | outcomes |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        let mut kinds: Vec<FaultKind> = self.trials.iter().map(|t| t.kind).collect();
        kinds.sort();
        kinds.dedup();
        let row = |s: &mut String, label: &str, ts: &[&TrialResult]| {
            let mut outcomes: BTreeMap<Outcome, u32> = BTreeMap::new();
            for t in ts {
                *outcomes.entry(t.outcome.clone()).or_default() += 1;
            }
            let _ = writeln!(
                s,
                "| {label} | {} | {} | {} | {} / {} | {} / {} / {} | {} | {} | {} | {} |",
                ts.len(),
                ts.iter().map(|t| t.acked).sum::<u64>(),
                ts.iter().map(|t| t.lost.len()).sum::<usize>(),
                ts.iter().filter(|t| t.ours.is_none()).count(),
                ts.iter().filter(|t| t.ours.is_some()).count(),
                ts.iter().filter(|t| t.porcupine == "linearizable").count(),
                ts.iter().filter(|t| t.porcupine == "violation").count(),
                ts.iter()
                    .filter(|t| t.porcupine != "linearizable" && t.porcupine != "violation")
                    .count(),
                ts.iter().map(|t| t.elections).sum::<u64>(),
                ts.iter().map(|t| t.split_brain.len()).sum::<usize>(),
                ts.iter().filter(|t| !t.observations.is_empty()).count(),
                outcomes
                    .iter()
                    .map(|(o, n)| format!("{n} {}", o.label()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        for k in &kinds {
            let ts: Vec<&TrialResult> = self.trials.iter().filter(|t| t.kind == *k).collect();
            row(&mut s, &format!("`{}`", k.name()), &ts);
        }
        let all: Vec<&TrialResult> = self.trials.iter().collect();
        row(&mut s, "**all**", &all);
        let _ = writeln!(
            s,
            "\nOperations: {}, of which {} indefinite (timed out, outcome unknown).",
            self.trials.iter().map(|t| t.ops).sum::<u64>(),
            self.trials.iter().map(|t| t.indefinite).sum::<u64>()
        );
        for n in &self.notes {
            let _ = writeln!(s, "\n{n}");
        }
        let _ = writeln!(s, "\n## Findings\n");
        let failed: Vec<&TrialResult> = self.trials.iter().filter(|t| t.failed()).collect();
        if failed.is_empty() {
            let _ = writeln!(
                s,
                "None: no acknowledged write lost, no split brain, both checkers agree that \
                 every history is linearizable, and every refusal named the damaged file."
            );
        }
        for t in failed {
            let _ = writeln!(
                s,
                "- trial {} (`{}`, node {}, trial seed {}; replay: `raft-tests campaign --trials \
                 {} --only-trial {} --seed {} --kinds {} --seconds {}`): {}",
                t.n,
                t.kind.name(),
                t.victim,
                t.trial_seed,
                o.trials,
                t.n,
                o.seed,
                o.kinds
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(","),
                o.load.as_secs_f64(),
                t.damage
            );
            for l in t.lost.iter().take(5) {
                let _ = writeln!(s, "  - lost: {l}");
            }
            if let Some(v) = &t.ours {
                let _ = writeln!(s, "  - our checker: {v}");
            }
            if t.porcupine != "not run" && t.porcupine != verdict(t.ours.is_none()) {
                let _ = writeln!(s, "  - Porcupine disagrees: {}", t.porcupine);
            }
            for b in &t.split_brain {
                let _ = writeln!(s, "  - split brain: {b}");
            }
            for p in &t.problems {
                let _ = writeln!(s, "  - {p}");
            }
        }
        let seen: Vec<&TrialResult> = self
            .trials
            .iter()
            .filter(|t| !t.observations.is_empty())
            .collect();
        if !seen.is_empty() {
            let _ = writeln!(
                s,
                "\n## Observations (not failures): nodes that started without data they had synced\n\n\
                 The storage's rules (docs/node.md, \"Failure behaviour\") cut a last frame that runs \
                 past the end of the file or has an all-zero sector as a torn tail, and take zeros \
                 after the last frame for preallocated space. Damage that looks like either is \
                 accepted, so the node starts without frames it had synced (it may have acknowledged \
                 them, or voted). {} trials:\n",
                seen.len()
            );
            for t in seen {
                for ob in &t.observations {
                    let _ = writeln!(
                        s,
                        "- trial {} (`{}`, node {}, trial seed {}): {ob}",
                        t.n,
                        t.kind.name(),
                        t.victim,
                        t.trial_seed
                    );
                }
            }
        }
        s
    }
}

/// The newest WAL segment of a data directory.
fn newest_segment(dir: &Path) -> Option<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("wal-") && n.ends_with(".log") || n == "raft.wal")
        })
        .collect();
    v.sort();
    v.pop()
}

fn newest_snapshot(dir: &Path) -> Option<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snap-") && n.ends_with(".snap"))
        })
        .collect();
    v.sort();
    v.pop()
}

/// The frames of a WAL segment: (offset, total length with the header).
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut off = FILE_HEADER_LEN;
    while off + FRAME_HEADER_LEN <= bytes.len() && &bytes[off..off + 4] == FRAME_MAGIC {
        let len = u32::from_le_bytes([
            bytes[off + 4],
            bytes[off + 5],
            bytes[off + 6],
            bytes[off + 7],
        ]) as usize;
        let total = FRAME_HEADER_LEN + len;
        if off + total > bytes.len() {
            break;
        }
        out.push((off, total));
        off += total;
    }
    out
}

fn flip_bit(
    path: &Path,
    bytes: &mut [u8],
    at: usize,
    rng: &mut fastrand::Rng,
) -> Result<String, String> {
    let bit = rng.u8(0..8);
    bytes[at] ^= 1 << bit;
    fs::write(path, &*bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!("bit {bit} of byte {at} flipped"))
}

/// Damages the files of a stopped node's data directory; returns (the file, what was done),
/// or why the fault has no place yet.
/// What [`damage`] did.
struct Damage {
    file: PathBuf,
    what: String,
    /// The damage reached data that was certainly synced: a WAL frame before the last one (one
    /// sync per frame, in order), the file header, a snapshot file.
    synced: bool,
    /// The damage reached the last WAL frame (synced or not: the SIGKILL may have fallen
    /// between its write and its fsync).
    last_frame: bool,
}

fn damage(kind: FaultKind, dir: &Path, rng: &mut fastrand::Rng) -> Result<Damage, String> {
    if kind == FaultKind::CorruptSnapshot {
        let path = newest_snapshot(dir).ok_or("no snapshot file yet")?;
        let mut bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if bytes.is_empty() {
            return Err("empty snapshot file".into());
        }
        let at = rng.usize(0..bytes.len());
        let what = flip_bit(&path, &mut bytes, at, rng)?;
        return Ok(Damage {
            file: path,
            what,
            synced: true,
            last_frame: false,
        });
    }
    let path = newest_segment(dir).ok_or("no WAL segment")?;
    let mut bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let fr = frames(&bytes);
    let Some(&(last, last_len)) = fr.last() else {
        return Err("no frame in the newest segment".into());
    };
    let end = last + last_len;
    let payload = |(off, len): (usize, usize), rng: &mut fastrand::Rng| {
        off + FRAME_HEADER_LEN + rng.usize(0..len - FRAME_HEADER_LEN)
    };
    // The damaged bytes, [from, to).
    let range: (usize, usize);
    let what = match kind {
        FaultKind::CorruptWalTail => {
            // A sync torn inside the last frame: where the frame spans sectors, the part of it
            // in its last sector never written (zeros); where it lies in one sector (zeroing
            // that part would zero the whole frame, which then reads as preallocated space and
            // vanishes without a trace), the file ends inside it.
            let from = (end - 1) / SECTOR * SECTOR;
            if from > last {
                bytes[from..end].fill(0);
                range = (from, end);
                fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                format!("bytes {from}..{end} (the last frame's part in its last sector; the frame at {last}) zeroed")
            } else {
                let at = rng.usize(last + 1..end);
                range = (at, end);
                soak::truncate(&path, at as u64)?;
                format!("truncated to {at} bytes, inside the last frame ({last}..{end})")
            }
        }
        FaultKind::CorruptWalLastSynced => {
            if last_len == FRAME_HEADER_LEN {
                return Err("the last frame has no payload".into());
            }
            let at = payload((last, last_len), rng);
            range = (at, at + 1);
            flip_bit(&path, &mut bytes, at, rng)? + &format!(" (last frame, at {last})")
        }
        FaultKind::CorruptWalMiddle => {
            let earlier: Vec<_> = fr[..fr.len() - 1]
                .iter()
                .filter(|(_, l)| *l > FRAME_HEADER_LEN)
                .copied()
                .collect();
            if earlier.is_empty() {
                return Err("one frame only".into());
            }
            let f = earlier[rng.usize(0..earlier.len())];
            let at = payload(f, rng);
            range = (at, at + 1);
            flip_bit(&path, &mut bytes, at, rng)?
                + &format!(" (frame at {} of {} frames)", f.0, fr.len())
        }
        FaultKind::CorruptWalHeader => {
            let at = rng.usize(0..FILE_HEADER_LEN);
            range = (at, at + 1);
            flip_bit(&path, &mut bytes, at, rng)? + " (file header)"
        }
        FaultKind::TruncateWal => {
            let at = rng.usize(FILE_HEADER_LEN + 1..end);
            range = (at, end);
            soak::truncate(&path, at as u64)?;
            format!(
                "truncated to {at} bytes (frames ended at {end}, {} frames)",
                fr.len()
            )
        }
        FaultKind::TruncateWalAtFrame => {
            if fr.len() < 2 {
                return Err("one frame only".into());
            }
            // The end of frame k (0-based), k before the last: frames k+1.. dropped whole.
            let k = rng.usize(0..fr.len() - 1);
            let at = fr[k].0 + fr[k].1;
            range = (at, end);
            soak::truncate(&path, at as u64)?;
            format!(
                "truncated to {at} bytes, the end of frame {} of {} (frames ended at {end})",
                k + 1,
                fr.len()
            )
        }
        FaultKind::ZeroWalRange => {
            let from = rng.usize(FILE_HEADER_LEN..end);
            let to = (from + rng.usize(1..2048)).min(end);
            range = (from, to);
            bytes[from..to].fill(0);
            fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            format!(
                "bytes {from}..{to} zeroed (frames ended at {end}, last frame at {last}, {} frames)",
                fr.len()
            )
        }
        _ => return Err(format!("{} damages no file", kind.name())),
    };
    Ok(Damage {
        file: path,
        what,
        synced: range.0 < last,
        last_frame: range.1 > last,
    })
}

/// The node's log from byte `from` on.
fn log_since(path: &Path, from: u64) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(bytes.get(from as usize..).unwrap_or(&[])).into_owned()
}

fn log_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The last non-empty lines of a text, for a finding.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Two nodes that became leader in the same term, from the nodes' logs ("became leader" with
/// `term=N`; the node is the log's).
/// Returns the elections won (lines parsed) and the terms with two leaders.
pub fn split_brain(dir: &Path, servers: u64) -> (u64, Vec<String>) {
    let mut leaders: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut elections = 0;
    for id in 0..servers {
        let Ok(log) = fs::read_to_string(dir.join(format!("node-{id}.log"))) else {
            continue;
        };
        for line in log.lines().filter(|l| l.contains("became leader")) {
            let Some(term) = line
                .split("term=")
                .nth(1)
                .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            elections += 1;
            let ids = leaders.entry(term).or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let split = leaders
        .into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(term, ids)| format!("nodes {ids:?} all became leader in term {term}"))
        .collect();
    (elections, split)
}

/// The operator procedure for a node whose data is damaged (docs/node.md): `member remove`,
/// wipe its data directory, add the spare (started empty) as a new member at its `address`
/// (the members' cluster files do not list it), promote it.
fn replace_damaged(
    addrs: &Endpoints,
    data_dir: &Path,
    old: u64,
    new: u64,
    address: Address,
) -> Result<(), String> {
    let mut admin = addrs.client();
    let limit = Duration::from_secs(20);
    admin
        .member(MemberRequest::Remove { id: old }, limit)
        .map_err(|e| format!("member remove {old}: {e}"))?;
    fs::remove_dir_all(data_dir).map_err(|e| format!("wipe {}: {e}", data_dir.display()))?;
    for request in [
        MemberRequest::AddLearner {
            id: new,
            address: Some(address),
        },
        MemberRequest::Promote { id: new },
    ] {
        admin
            .member(request.clone(), limit)
            .map_err(|e| format!("{request:?}: {e}"))?;
    }
    Ok(())
}

/// How long a restarted node has to refuse before it counts as started.
const START_GRACE: Duration = Duration::from_millis(2500);
/// How long a node under fiu has to hit its first failure.
const FIU_WINDOW: Duration = Duration::from_secs(8);

fn trial(
    o: &CampaignOptions,
    n: u32,
    kind: FaultKind,
    trial_seed: u64,
    history_dir: &Path,
) -> Result<TrialResult, String> {
    let mut rng = fastrand::Rng::with_seed(trial_seed);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cluster = Mutex::new(Cluster::start(
        dir.path(),
        &o.node_bin,
        None,
        false,
        soak::SNAPSHOT_ENTRIES,
        1,
    )?);
    let lock = || cluster.lock().map_err(|_| "poisoned".to_string());
    let addrs = lock()?.endpoints();
    let servers = addrs.len() as u64;
    let spare = soak::NODES;
    let rec = Recorder::new();
    let stop = AtomicBool::new(false);
    let victim = rng.u64(0..soak::NODES);
    let mut r = TrialResult {
        n,
        kind,
        trial_seed,
        victim,
        damage: String::new(),
        outcome: Outcome::NotApplied,
        acked: 0,
        lost: Vec::new(),
        ops: 0,
        indefinite: 0,
        ours: None,
        porcupine: "not run".into(),
        split_brain: Vec::new(),
        elections: 0,
        observations: Vec::new(),
        problems: Vec::new(),
        history_name: format!("campaign-{}-trial-{n}", o.seed),
    };
    let seeds: Vec<u64> = (0..soak::CLIENTS).map(|_| rng.u64(..)).collect();
    let mut probe_acked = false;
    let results = thread::scope(|scope| {
        let handles: Vec<_> = (0..soak::CLIENTS)
            .map(|me| {
                let (addrs, rec, stop, seed) = (addrs.clone(), &rec, &stop, seeds[me as usize]);
                scope.spawn(move || soak::client_loop(addrs, rec, me, n, seed, stop))
            })
            .collect();
        thread::sleep(o.load);
        let fault = fault_round(&cluster, &addrs, kind, victim, spare, &mut rng, &mut r);
        if let Err(e) = fault {
            r.problems.push(format!("fault round: {e}"));
        }
        // The majority must serve after the fault (and its handling): one write, acknowledged
        // within 10 s, read back at the end like the others.
        let mut probe = addrs.client();
        let put = raft_impl::kv::Op::Put {
            key: "probe".into(),
            value: format!("after-fault-{n}"),
        };
        match rec.run_for(&mut probe, rec.thread(), put, Duration::from_secs(10)) {
            Ok(Some(_)) => probe_acked = true,
            Ok(None) => r
                .problems
                .push("the cluster did not acknowledge a write within 10 s after the fault".into()),
            Err(e) => r.problems.push(e),
        }
        thread::sleep(o.load);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("client thread panicked".into()))
            })
            .collect::<Vec<_>>()
    });
    let mut acked = Vec::new();
    for c in results {
        let c = c?;
        r.ops += c.ops;
        r.acked += c.acked_unique.len() as u64 + c.acked_shared;
        r.indefinite += c.indefinite;
        acked.extend(c.acked_unique);
    }
    if probe_acked {
        r.acked += 1;
        acked.push(("probe".into(), format!("after-fault-{n}")));
    }
    match soak::read_back(&cluster, &rec, &acked) {
        Ok(lost) => r.lost = lost,
        Err(e) => r.problems.push(e),
    }
    {
        let mut c = lock()?;
        c.check_alive();
        for e in std::mem::take(&mut c.exits) {
            r.problems.push(e);
        }
    }
    let (elections, split) = split_brain(dir.path(), servers);
    r.split_brain = split;
    r.elections = elections;
    if elections == 0 {
        r.problems
            .push("no \"became leader\" line with a term in the nodes' logs: the split-brain check saw nothing".into());
    }
    drop(cluster);
    let history = rec.history.into_inner().unwrap_or_else(|e| e.into_inner());
    r.ours = history.check().err();
    history_export::write_process_history(
        history_dir,
        &r.history_name,
        &format!("campaign: raft-node processes ({})", o.command()),
        trial_seed,
        &history,
        &format!(
            "trial {n}: {} on node {}: {}; {}",
            kind.name(),
            victim,
            r.damage,
            r.outcome.label()
        ),
    )?;
    if r.failed() {
        let keep = std::env::temp_dir().join(format!("raft-campaign-{}-trial-{n}", o.seed));
        let _ = fs::remove_dir_all(&keep);
        let _ = fs::rename(dir.path(), &keep);
        r.problems
            .push(format!("data and node logs kept in {}", keep.display()));
    }
    Ok(r)
}

/// Applies the trial's fault to `victim` and handles its outcome (the operator procedure when
/// the node refuses to start).
fn fault_round(
    cluster: &Mutex<Cluster>,
    addrs: &Endpoints,
    kind: FaultKind,
    victim: u64,
    spare: u64,
    rng: &mut fastrand::Rng,
    r: &mut TrialResult,
) -> Result<(), String> {
    let lock = || cluster.lock().map_err(|_| "poisoned".to_string());
    let (log, data_dir) = {
        let c = lock()?;
        (c.log_path(victim), c.data_dir(victim))
    };
    let mut named: Option<String> = None;
    // (synced data hit, last frame hit) for a damaged file.
    let mut hit: Option<(bool, bool)> = None;
    if kind.needs_fiu() {
        let mut wrapper = vec!["fiu-run".to_string(), "-x".to_string()];
        for c in kind.fiu_commands() {
            wrapper.push("-c".into());
            wrapper.push(c);
        }
        wrapper.push("-f".into());
        wrapper.push(String::new());
        let from = log_len(&log);
        {
            let mut c = lock()?;
            c.kill9(victim);
            c.start_node_wrapped(victim, &wrapper)?;
        }
        let status = {
            let end = Instant::now() + FIU_WINDOW;
            loop {
                let s = lock()?.wait_exit(victim, Duration::ZERO);
                if s.is_some() || Instant::now() >= end {
                    break s;
                }
                thread::sleep(Duration::from_millis(50));
            }
        };
        let text = log_since(&log, from);
        match status {
            None => {
                r.damage = format!(
                    "{}: no injected failure stopped the node in {FIU_WINDOW:?}",
                    kind.name()
                );
                lock()?.kill9(victim);
                lock()?.start_node(victim)?;
                return Ok(());
            }
            Some(status) => {
                r.damage = format!("exited ({status}) under fiu: {}", tail(&text, 1));
                if !kind.fiu_error_text().iter().any(|t| text.contains(t)) {
                    r.problems.push(format!(
                        "the node stopped under {} ({status}) without saying why; its log ends: {}",
                        kind.name(),
                        tail(&text, 3)
                    ));
                }
            }
        }
    } else {
        lock()?.kill9(victim);
        match damage(kind, &data_dir, rng) {
            Ok(d) => {
                r.damage = format!(
                    "{}: {}",
                    d.file.file_name().and_then(|f| f.to_str()).unwrap_or("?"),
                    d.what
                );
                named = d
                    .file
                    .file_name()
                    .and_then(|f| f.to_str())
                    .map(String::from);
                hit = Some((d.synced, d.last_frame));
            }
            Err(e) => {
                r.damage = format!("not applied: {e}");
                lock()?.start_node(victim)?;
                return Ok(());
            }
        }
    }
    // Restart (without faults).
    let from = log_len(&log);
    lock()?.start_node(victim)?;
    let status = lock()?.wait_exit(victim, START_GRACE);
    let text = log_since(&log, from);
    let Some(status) = status else {
        let cut = text.contains(TORN_TAIL_LOG);
        r.outcome = if kind.needs_fiu() {
            Outcome::StoppedRestarted
        } else if kind == FaultKind::CorruptSnapshot {
            if !text.contains(SNAPSHOT_ASIDE_LOG) {
                r.problems.push(format!(
                    "the node started on a corrupt snapshot ({}) without setting it aside; its log: {}",
                    r.damage,
                    tail(&text, 3)
                ));
            }
            Outcome::RestartedFallback
        } else {
            Outcome::Restarted { cut }
        };
        let wal = kind != FaultKind::CorruptSnapshot;
        match hit {
            Some((true, _)) if wal => r.observations.push(format!(
                "started after damage to synced WAL frames ({}); {}",
                r.damage,
                if cut {
                    "it logged that it cut a torn tail".to_string()
                } else {
                    {
                        let warnings: Vec<&str> = text
                            .lines()
                            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
                            .collect();
                        format!(
                            "WITHOUT a warning about its WAL (its log since the restart: {} lines, \
                             {} at WARN or ERROR{})",
                            text.lines().count(),
                            warnings.len(),
                            warnings
                                .first()
                                .map(|w| format!(", the first: `{}`", w.trim()))
                                .unwrap_or_default()
                        )
                    }
                }
            )),
            Some((false, true)) if !cut => r.observations.push(format!(
                "started after damage to its last WAL frame ({}) without a warning: the frame \
                 reads as never written",
                r.damage
            )),
            _ => {}
        }
        if kind.expect_start() == Some(false) {
            r.problems.push(format!(
                "the node started on damaged synced data ({}) instead of refusing; its log: {}",
                r.damage,
                tail(&text, 3)
            ));
        }
        return Ok(());
    };
    let message = tail(&text, 2);
    r.damage += &format!("; restart refused ({status}): {message}");
    if kind.expect_start() == Some(true) {
        r.problems
            .push(format!("a torn tail was refused instead of cut: {message}"));
    }
    if let Some(name) = &named {
        if !text.contains(name.as_str()) {
            r.problems
                .push(format!("the refusal does not name {name}: {message}"));
        }
    }
    let address = lock()?.address(spare);
    match replace_damaged(addrs, &data_dir, victim, spare, address) {
        Ok(()) => r.outcome = Outcome::RefusedReplaced,
        Err(e) => {
            r.outcome = Outcome::RefusedNotReplaced;
            r.problems.push(format!("operator procedure failed: {e}"));
        }
    }
    Ok(())
}

/// Runs the campaign; one line per trial to stderr.
pub fn run(o: &CampaignOptions) -> Result<CampaignSummary, String> {
    let started = Instant::now();
    let mut s = CampaignSummary::default();
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let history_dir = o
        .history_dir
        .clone()
        .unwrap_or_else(|| tmp.path().join("histories"));
    fs::create_dir_all(&history_dir).map_err(|e| format!("{}: {e}", history_dir.display()))?;
    let fiu = fiu_available();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let mut kinds = o.kinds.clone();
    if !fiu && kinds.iter().any(|k| k.needs_fiu()) {
        if ci {
            return Err("fiu-run not found (apt-get install fiu-utils); under CI=true the fiu kinds may not be skipped".into());
        }
        let line =
            "SKIPPED: fsync-eio and write-enospc: fiu-run not found (apt-get install fiu-utils)";
        eprintln!("{line}");
        s.notes.push(line.to_string());
        kinds.retain(|k| !k.needs_fiu());
    }
    if kinds.is_empty() {
        return Err("no fault kind to run".into());
    }
    let mut rng = fastrand::Rng::with_seed(o.seed);
    for n in 1..=o.trials {
        let kind = kinds[(n as usize - 1) % kinds.len()];
        let trial_seed = rng.u64(..);
        if o.only_trial.is_some_and(|t| t != n) {
            continue;
        }
        let t0 = Instant::now();
        let r = match trial(o, n, kind, trial_seed, &history_dir) {
            Ok(r) => r,
            Err(e) => TrialResult {
                n,
                kind,
                trial_seed,
                victim: 0,
                damage: String::new(),
                outcome: Outcome::NotApplied,
                acked: 0,
                lost: Vec::new(),
                ops: 0,
                indefinite: 0,
                ours: None,
                porcupine: "not run".into(),
                split_brain: Vec::new(),
                elections: 0,
                observations: Vec::new(),
                problems: vec![format!("the trial failed to run: {e}")],
                history_name: String::new(),
            },
        };
        eprintln!(
            "trial {n}/{} {}: node {}: {}; {}; {} acknowledged, {} lost, {}{}{} in {:.1} s",
            o.trials,
            kind.name(),
            r.victim,
            r.damage,
            r.outcome.label(),
            r.acked,
            r.lost.len(),
            if r.ours.is_none() {
                "linearizable"
            } else {
                "NOT LINEARIZABLE"
            },
            if r.split_brain.is_empty() {
                ""
            } else {
                ", SPLIT BRAIN"
            },
            if r.problems.is_empty() {
                String::new()
            } else {
                format!(", problems: {}", r.problems.join("; "))
            } + &if r.observations.is_empty() {
                String::new()
            } else {
                format!(", observed: {}", r.observations.join("; "))
            },
            t0.elapsed().as_secs_f64()
        );
        s.trials.push(r);
    }
    if let Some(go_dir) = &o.porcupine_dir {
        let out = tmp.path().join("porcupine");
        fs::create_dir_all(&out).map_err(|e| e.to_string())?;
        let bin = history_export::build_checker(go_dir, &out)?;
        let p = history_export::porcupine_verdicts(
            &bin,
            &history_dir,
            &out.join("verdicts.json"),
            120,
        )?;
        s.porcupine_version = format!("{} ({})", p.porcupine_version, p.go_version);
        for t in &mut s.trials {
            if let Some((_, v)) = p.verdicts.iter().find(|(name, _)| *name == t.history_name) {
                t.porcupine = v.clone();
            } else if !t.history_name.is_empty() {
                t.porcupine = "missing".into();
            }
        }
    } else {
        s.notes
            .push("Porcupine: not run (no Go toolchain); our checker only.".into());
    }
    s.seconds = started.elapsed().as_secs_f64();
    Ok(s)
}
