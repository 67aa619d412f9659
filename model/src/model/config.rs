//! The model's bounds. Every dimension that could grow without limit is bounded here
//! explicitly; exploration within these bounds is exhaustive (no depth cap).

use crate::mutant::Mutant;
use raft_core::{Term, Window};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// How the network may deliver messages. Named on the command line and in JSON reports by
/// [`NetworkKind::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetworkKind {
    /// Any message may be delivered any number of times, in any order.
    UnorderedDuplicating,
    /// Any message may be delivered at most once, in any order.
    UnorderedNonDuplicating,
    /// Per-link FIFO, each message delivered at most once.
    Ordered,
}

impl NetworkKind {
    pub const NAMES: [&'static str; 3] = [
        "unordered-duplicating",
        "unordered-nonduplicating",
        "ordered",
    ];
    pub fn name(self) -> &'static str {
        match self {
            NetworkKind::UnorderedDuplicating => Self::NAMES[0],
            NetworkKind::UnorderedNonDuplicating => Self::NAMES[1],
            NetworkKind::Ordered => Self::NAMES[2],
        }
    }

    /// The command line's parser: one of [`NetworkKind::NAMES`] (listed in `--help`).
    fn value_parser() -> impl clap::builder::TypedValueParser<Value = NetworkKind> {
        use clap::builder::TypedValueParser as _;
        clap::builder::PossibleValuesParser::new(Self::NAMES)
            .map(|s| s.parse::<NetworkKind>().expect("one of NetworkKind::NAMES"))
    }
}

impl fmt::Display for NetworkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NetworkKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "unordered-duplicating" => Ok(NetworkKind::UnorderedDuplicating),
            "unordered-nonduplicating" => Ok(NetworkKind::UnorderedNonDuplicating),
            "ordered" => Ok(NetworkKind::Ordered),
            _ => Err(format!(
                "unknown network '{s}'; expected one of: {}",
                Self::NAMES.join(", ")
            )),
        }
    }
}

impl Serialize for NetworkKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for NetworkKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Bounds and faults of one model-checking run: the one declaration of every model flag. It is
/// the command line's flags (`clap::Args`: each field's doc comment is its `--help`, the
/// defaults are [`ModelConfig::default`], the standard bound) and the `config` object of the
/// checker's JSON reports (serde; an unknown key is refused, a missing one takes its default)
/// and, through `Display`, the one-line description the checker's banner and results tables
/// print. Run [`ModelConfig::validate`] after parsing either. Adding a flag is adding a field:
/// its doc comment, its `#[arg]` (with its default) and, if it should be left out of JSON
/// when off, its `skip_serializing_if`; `Display` names it `key = value` until it is given
/// words of its own there.
///
/// The JSON shape: `network` and `mutant` by name, `pipeline` as its number of entries; flags
/// that are off (false, 0, absent) are left out, except the older ones.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Number of Raft servers.
    #[arg(long, default_value_t = 3)]
    pub servers: usize,
    // No server's current_term exceeds it (states beyond it are not explored).
    /// Highest term any server may reach (bounds the number of elections).
    #[arg(long, default_value_t = 2)]
    pub max_term: Term,
    // Client `c` writes the distinct value `c + 1` once.
    /// Number of clients; each writes its own value once.
    #[arg(long, default_value_t = 1)]
    pub values: usize,
    /// Reads each client performs after its write (through the log).
    #[arg(long, default_value_t = 1)]
    pub reads: usize,
    // A crash loses volatile state; a restart recovers from what was saved.
    /// Servers that may be crashed at the same time (each may restart any number of times).
    #[arg(long, default_value_t = 1)]
    pub max_crashes: usize,
    /// Message delivery semantics.
    #[arg(long, default_value_t = NetworkKind::UnorderedNonDuplicating,
          value_parser = NetworkKind::value_parser())]
    pub network: NetworkKind,
    /// Messages may be lost (default: on).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub lossy: bool,
    // Distinct messages on the duplicating network, where a delivered message stays
    // deliverable.
    /// Most messages in the network at once.
    #[arg(long, default_value_t = 1)]
    pub max_in_flight: usize,
    // Declared before `max_log_len` for the JSON reports' key order; `display_order` keeps
    // `--help`'s order (this struct is flattened first into its subcommands, so the
    // automatic order of its n-th flag is n).
    /// Most entries per AppendEntries (default: the whole suffix).
    #[arg(long, display_order = 9)]
    pub max_entries_per_append: Option<usize>,
    // No server's log grows beyond it (states beyond it are not explored). `None`: as many
    // entries as the clients have operations, plus one per membership change
    // (`effective_max_log_len`): a retried copy takes the room of a later operation, which is
    // enough to reach the deduplication path (the witness "Retried Command Deduplicated")
    // while the default bound stays small.
    /// Longest log any server may reach (default: as many entries as the clients have
    /// operations; servers propose every request they get, retries too, as the node does, and
    /// deduplicate when applying).
    #[arg(long, display_order = 8)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_log_len: Option<usize>,
    /// Rejecting followers hint the start of the conflicting term (the runnable node's
    /// setting; `Config::fast_backup` in the core).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub fast_backup: bool,
    // `Timer::Persist`. `false`: as if the leader's proposal were durable at once; for bounds
    // whose point lies elsewhere (the gate's no-crash configurations with larger bounds).
    /// A leader's disk completes its own new entries in a step of its own, interleaved with
    /// everything else, as the node writes them behind (default: on); `--write-behind false`
    /// makes them durable in the step that appended them (a subset of the node's behaviours).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub write_behind: bool,
    // JSON: the window's entries (its bytes are unbounded).
    /// Leaders pipeline AppendEntries: at most N entries sent and not acknowledged per
    /// follower, next_index moving past what was sent (`Config::pipeline`; default: no
    /// pipelining, next_index moves only on acknowledgements). Use with --max-in-flight 2 or
    /// more and --max-entries-per-append 1 to have two AppendEntries in flight to a follower.
    #[arg(long, value_parser = pipeline::parse)]
    #[serde(with = "pipeline", skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Window>,
    // raft-core's `read`. Until a leader has committed an entry of its term, it proposes the
    // read instead. No leader's read round exceeds `values * reads` (a retried read starts a
    // round of its own), which bounds the retries.
    /// Clients' reads go through ReadIndex, as the node's do (thesis §6.4): a leader answers
    /// a read from its register once a majority confirmed its leadership, without a log entry
    /// (default: every read is proposed to the log). Each leader's read rounds are bounded by
    /// the bound's reads (--values × --reads).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_index: bool,
    // `Config::pre_vote`.
    /// Servers run PreVote, as the node does (thesis §9.6): an election timeout starts a
    /// pre-vote round that changes no term; only a majority of grants starts the election.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pre_vote: bool,
    // `Config::check_quorum`.
    /// Servers run CheckQuorum and the lease on votes, as the node does (thesis §9.6): a
    /// leader whose election timer fires steps down unless a majority answered it since the
    /// last time; a server that knows a leader of its term ignores requests for votes.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub check_quorum: bool,
    // What one server sends the other across the cut is lost at once; a follower's election
    // timer does not fire while it knows a leader (the timing assumption of a stable leader).
    // "Stable Leader Not Deposed": no leader that every peer it reaches acknowledged in its
    // term ever meets a higher term while it leads; it fails without --check-quorum.
    /// The partial partition of the 2020 Cloudflare outage (3 servers, no crashes): the link
    /// between the first and the last server is cut, and the middle one keeps hearing from a
    /// leader it follows. Adds the property "Stable Leader Not Deposed", which holds with
    /// --pre-vote --check-quorum. Not with --symmetry (the cut breaks it).
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial_partition: bool,
    // `Event::TransferLeadership`; each request a leader takes up counts.
    /// Leadership transfers an operator may ask for, in all (thesis §3.10): any leader may be
    /// asked at any moment to hand over to any peer. Adds the property "Transfer Target Up To
    /// Date" (default: 0, none).
    #[arg(long, default_value_t = 0)]
    #[serde(skip_serializing_if = "is_zero")]
    pub max_transfers: usize,
    // Each configuration entry a leader appends counts.
    /// Membership changes an operator may ask for, in all (thesis ch. 4: single-server
    /// changes with learners): any leader may be asked at any moment to add a server as a
    /// learner, promote a learner, or remove a member. Adds the property "Quorums Overlap"
    /// (default: 0, none). Not with --symmetry (the configuration tells servers apart).
    #[arg(long, default_value_t = 0)]
    #[serde(skip_serializing_if = "is_zero")]
    pub max_config_changes: usize,
    // `Timer::Compact`; taking the snapshot at a smaller applied index is the same as taking
    // it earlier, when that was the applied index.
    /// Snapshots the servers may take, in all (§7, log compaction): any server may compact
    /// its log up to what it has applied at any moment, and a leader sends its snapshot to a
    /// follower that needs compacted entries (InstallSnapshot). Adds the property "Snapshot
    /// Holds Only Committed State" (default: 0, none; at most 9).
    #[arg(long, default_value_t = 0)]
    #[serde(skip_serializing_if = "is_zero")]
    pub max_snapshots: usize,
    // `Timer::Forge` on every server; the model's servers then refuse terms from max_term + 1
    // on (`Config::max_term`) and more than max_term ahead (`Config::max_term_jump`), which no
    // correct message reaches.
    /// Forged peer frames, in all (issue 38, finding 2): at any moment a server may receive,
    /// from a peer that never sent it, a RequestVote flagged as a transfer whose term is the
    /// first one the servers refuse (past every term of the bound and of the liveness
    /// continuation; the node's is 2^48). Adds the property "Forged Terms Refused" (default:
    /// 0, none; at most 9).
    #[arg(long, default_value_t = 0)]
    #[serde(skip_serializing_if = "is_zero")]
    pub max_forged: usize,
    // Servers `0..initial_voters`.
    /// The initial configuration's voters: the first N servers; the others start outside
    /// the cluster and join only through membership changes (default: every server).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_voters: Option<usize>,
    // The mutant catalogue; `None` is the correct protocol.
    /// Break one protocol rule on purpose (see `raft-check mutants --list`).
    #[arg(long, value_parser = parse_mutant)]
    #[serde(with = "mutant_by_name")]
    pub mutant: Option<Mutant>,
    // `liveness.rs`: a bounded fault-free continuation of a few core steps per state (about a
    // fifth more time on the default bound).
    /// Check liveness too (default: on): from every reachable state, once faults stop, a
    /// fault-free continuation elects a leader and brings every server's log and commit index
    /// to the leader's ("Progress When Faults Stop"; `--liveness false` leaves it out).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub liveness: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn parse_mutant(s: &str) -> Result<Mutant, String> {
    s.parse()
}

/// `ModelConfig::mutant` in JSON: the mutant's name, or null.
mod mutant_by_name {
    use crate::mutant::Mutant;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &Option<Mutant>, s: S) -> Result<S::Ok, S::Error> {
        match m {
            Some(m) => s.serialize_some(m.name()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Mutant>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|name| name.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// `ModelConfig::pipeline`: a window of this many entries, its bytes unbounded (the command
/// line and JSON give the entries).
mod pipeline {
    use raft_core::Window;
    use serde::{Deserialize, Deserializer, Serializer};

    fn window(entries: usize) -> Window {
        Window {
            entries,
            bytes: usize::MAX,
        }
    }

    pub fn parse(s: &str) -> Result<Window, String> {
        s.parse::<usize>().map(window).map_err(|e| e.to_string())
    }

    pub fn serialize<S: Serializer>(w: &Option<Window>, s: S) -> Result<S::Ok, S::Error> {
        match w {
            Some(w) => s.serialize_some(&w.entries),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Window>, D::Error> {
        Ok(Option::<usize>::deserialize(d)?.map(window))
    }
}

impl Default for ModelConfig {
    /// The standard bound: every flag at its `--help` default (declared once, on the field).
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            cfg: ModelConfig,
        }
        <Defaults as clap::Parser>::parse_from(["raft-check"]).cfg
    }
}

/// The bound in one line, for the checker's banner and the results tables: each flag in words
/// when it differs from the standard bound (the first eight always), and a flag without words
/// of its own as `key = value`, so that a new field is never left out.
impl fmt::Display for ModelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self;
        write!(
            f,
            "{} servers, terms ≤ {}, {} value(s), {} read(s), crashes ≤ {}, {}{}, ≤ {} in flight",
            c.servers,
            c.max_term,
            c.values,
            c.reads,
            c.max_crashes,
            c.network,
            if c.lossy { " lossy" } else { "" },
            c.max_in_flight
        )?;
        if let Some(n) = c.max_entries_per_append {
            write!(f, ", ≤ {n} entries per append")?;
        }
        if let Some(n) = c.max_log_len {
            write!(f, ", logs ≤ {n} entries")?;
        }
        if c.fast_backup {
            f.write_str(", fast backup")?;
        }
        if let Some(w) = c.pipeline {
            write!(
                f,
                ", pipelined (≤ {} entries in flight per follower)",
                w.entries
            )?;
        }
        if !c.write_behind {
            f.write_str(", leader's disk synchronous")?;
        }
        if c.read_index {
            f.write_str(", reads through ReadIndex")?;
        }
        if c.pre_vote {
            f.write_str(", PreVote")?;
        }
        if c.check_quorum {
            f.write_str(", CheckQuorum")?;
        }
        if c.partial_partition {
            f.write_str(", partial partition")?;
        }
        if c.max_transfers > 0 {
            write!(f, ", ≤ {} leadership transfer(s)", c.max_transfers)?;
        }
        if c.max_config_changes > 0 {
            write!(f, ", ≤ {} membership change(s)", c.max_config_changes)?;
            if let Some(v) = c.initial_voters {
                write!(f, " from {v} initial voter(s)")?;
            }
        }
        if c.max_snapshots > 0 {
            write!(f, ", ≤ {} snapshot(s)", c.max_snapshots)?;
        }
        if c.max_forged > 0 {
            write!(f, ", ≤ {} forged frame(s)", c.max_forged)?;
        }
        if let Some(m) = c.mutant {
            write!(f, ", mutant {}", m.name())?;
        }
        // Every other field: by its JSON key, where it differs from the standard bound.
        const IN_WORDS: [&str; 24] = [
            "servers",
            "max_term",
            "values",
            "reads",
            "max_crashes",
            "network",
            "lossy",
            "max_in_flight",
            "max_entries_per_append",
            "max_log_len",
            "fast_backup",
            "pipeline",
            "write_behind",
            "read_index",
            "pre_vote",
            "check_quorum",
            "partial_partition",
            "max_transfers",
            "max_config_changes",
            "initial_voters",
            "max_snapshots",
            "max_forged",
            "mutant",
            "liveness",
        ];
        let (serde_json::Value::Object(mine), serde_json::Value::Object(standard)) = (
            serde_json::to_value(self).map_err(|_| fmt::Error)?,
            serde_json::to_value(ModelConfig::default()).map_err(|_| fmt::Error)?,
        ) else {
            return Err(fmt::Error);
        };
        for (key, value) in mine {
            if !IN_WORDS.contains(&key.as_str()) && standard.get(&key) != Some(&value) {
                write!(f, ", {key} = {value}")?;
            }
        }
        Ok(())
    }
}

impl ModelConfig {
    /// Reject bounds that make no sense or could not be represented.
    pub fn validate(&self) -> Result<(), String> {
        if self.servers == 0 {
            return Err("--servers must be at least 1".into());
        }
        if self.servers > 9 {
            return Err(
                "--servers must be at most 9 (the state space explodes long before)".into(),
            );
        }
        if self.max_term == 0 {
            return Err("--max-term must be at least 1 (no leader exists in term 0)".into());
        }
        if self.max_term > 100 {
            return Err("--max-term must be at most 100".into());
        }
        if self.values > 9 {
            return Err("--values must be at most 9".into());
        }
        if self.reads > 9 {
            return Err("--reads must be at most 9".into());
        }
        if self.max_crashes > self.servers {
            return Err(format!(
                "--max-crashes {} exceeds --servers {}",
                self.max_crashes, self.servers
            ));
        }
        if self.max_entries_per_append == Some(0) {
            return Err("--max-entries-per-append must be at least 1".into());
        }
        if self.max_log_len == Some(0) {
            return Err("--max-log-len must be at least 1".into());
        }
        if self.pipeline.is_some_and(|w| w.entries == 0) {
            return Err("--pipeline must be at least 1 (entries in flight per follower)".into());
        }
        if self.max_in_flight == 0 {
            return Err("--max-in-flight must be at least 1".into());
        }
        if self.partial_partition && self.max_transfers > 0 {
            return Err(
                "--partial-partition excludes --max-transfers (a transfer deposes a stable \
                 leader on purpose)"
                    .into(),
            );
        }
        if let Some(v) = self.initial_voters {
            if v == 0 || v > self.servers {
                return Err(format!(
                    "--initial-voters must be between 1 and --servers ({})",
                    self.servers
                ));
            }
            if v < self.servers && self.max_config_changes == 0 {
                return Err(
                    "--initial-voters below --servers leaves servers outside the cluster for                      good: add --max-config-changes"
                        .into(),
                );
            }
        }
        if self.max_snapshots > 9 {
            return Err("--max-snapshots must be at most 9".into());
        }
        if self.max_forged > 9 {
            return Err("--max-forged must be at most 9".into());
        }
        if self.max_config_changes > 0 && self.partial_partition {
            return Err("--partial-partition excludes --max-config-changes".into());
        }
        if self.partial_partition && (self.servers != 3 || self.max_crashes != 0) {
            return Err(
                "--partial-partition needs --servers 3 --max-crashes 0 (it cuts the link \
                 between the first and the last server, and its stable leader must not crash)"
                    .into(),
            );
        }
        Ok(())
    }

    /// Witnesses that cannot be reached by construction of this bound (so their absence says
    /// nothing), with the reason. Every other witness must be reached.
    pub fn inapplicable_witnesses(&self) -> Vec<(&'static str, &'static str)> {
        let mut v = Vec::new();
        if self.max_crashes == 0 {
            v.push(("Committed Then Crashed And Recovered", "--max-crashes 0"));
        }
        if self.values == 0 {
            v.push(("Value Committed", "--values 0"));
            v.push(("Log Conflict Truncated", "--values 0"));
            v.push(("Leader Knows A Match", "--values 0"));
        } else if self.servers == 1 {
            v.push(("Leader Knows A Match", "a single server has no peers"));
        }
        if self.values == 0 || self.effective_max_log_len() < 2 {
            v.push((
                "Retried Command Deduplicated",
                "no room in the log for a retried copy",
            ));
        }
        if self.values == 0 || self.reads == 0 {
            v.push(("Read Returned A Value", "no reads in this bound"));
        }
        if self.max_term < 2 {
            v.push(("Stale Message In Flight", "--max-term 1: no later term"));
        }
        if self.values == 0 {
            v.push(("Committed Before The Leader's Disk", "--values 0"));
        } else if !self.write_behind {
            v.push((
                "Committed Before The Leader's Disk",
                "--write-behind false: the leader's disk completes with its proposal",
            ));
        } else if self.servers < 3 {
            v.push((
                "Committed Before The Leader's Disk",
                "fewer than 3 servers: every majority includes the leader's own copy",
            ));
        } else if self.max_voters() < 3 {
            v.push((
                "Committed Before The Leader's Disk",
                "fewer than 3 voters: every majority includes the leader's own copy",
            ));
        }
        if !self.pre_vote {
            v.push(("Election After A Pre-Vote", "no --pre-vote"));
        }
        if !self.check_quorum {
            v.push(("Leader Stepped Down Without A Quorum", "no --check-quorum"));
            v.push(("Vote Ignored In A Lease", "no --check-quorum"));
        } else if self.servers < 2 {
            v.push((
                "Leader Stepped Down Without A Quorum",
                "a single server is its own majority",
            ));
            v.push(("Vote Ignored In A Lease", "a single server asks no one"));
        }
        if self.max_transfers == 0 {
            v.push(("Leadership Transferred", "no --max-transfers"));
        } else if self.servers < 2 {
            v.push((
                "Leadership Transferred",
                "a single server has no one to hand over to",
            ));
        }
        if self.max_config_changes == 0 {
            v.push(("Configuration Change Committed", "no --max-config-changes"));
            v.push(("Removed Leader Stepped Down", "no --max-config-changes"));
        } else if self.values == 0 {
            // A change waits for an entry of the leader's term, and only clients write one.
            v.push(("Configuration Change Committed", "--values 0"));
            v.push(("Removed Leader Stepped Down", "--values 0"));
        } else if self.initial_voters.unwrap_or(self.servers) < 2 && self.max_config_changes < 3 {
            v.push((
                "Removed Leader Stepped Down",
                "a single voter cannot remove itself, and the bound's changes cannot add a \
                 second voter and then remove the leader",
            ));
        }
        if self.max_snapshots == 0 {
            v.push(("Snapshot Installed On A Follower", "no --max-snapshots"));
            v.push(("Restarted From A Snapshot", "no --max-snapshots"));
        } else {
            if self.values == 0 || self.servers < 2 {
                v.push((
                    "Snapshot Installed On A Follower",
                    "no entry to compact, or no follower",
                ));
            } else if self.servers == 2 && self.initial_voters.unwrap_or(2) == 2 {
                // A change can only remove one of them, which then follows no one.
                v.push((
                    "Snapshot Installed On A Follower",
                    "two voters: every committed entry is on both",
                ));
            }
            if self.values == 0 || self.max_crashes == 0 {
                v.push((
                    "Restarted From A Snapshot",
                    "no entry to compact, or no crash",
                ));
            }
        }
        if !self.read_index {
            v.push(("Read Served Without The Log", "no --read-index"));
        } else if self.values == 0 || self.reads == 0 {
            v.push(("Read Served Without The Log", "no reads in this bound"));
        }
        match self.pipeline {
            None => v.push(("Pipelined Appends In Flight", "no --pipeline")),
            Some(w) if w.entries < 2 => v.push((
                "Pipelined Appends In Flight",
                "--pipeline 1: one entry in flight per follower",
            )),
            Some(_) if self.max_in_flight < 2 => v.push((
                "Pipelined Appends In Flight",
                "--max-in-flight 1: one message in the network",
            )),
            Some(_) if self.values == 0 || self.effective_max_log_len() < 2 => v.push((
                "Pipelined Appends In Flight",
                "fewer than two entries in the log",
            )),
            Some(_) => {}
        }
        if self.values == 0
            || self.reads == 0
            || self.effective_max_log_len() < 3
            || self.max_in_flight < 2
        {
            // The late copy is a retry sent before the first reply came and delivered after the
            // client's next request was appended: it is in flight alongside that traffic, and
            // it needs the room of a third entry.
            v.push((
                "Stale Copy Ignored",
                "no late copy: needs a client with two operations, a log of 3 and 2 messages in flight",
            ));
        }
        if self.servers >= 3
            && self.max_voters() < 3
            && !v.iter().any(|(n, _)| *n == "Log Conflict Truncated")
        {
            v.push((
                "Log Conflict Truncated",
                "fewer than 3 voters (a leader's log is never behind another voter's)",
            ));
        }
        if self.servers < 3 && !v.iter().any(|(n, _)| *n == "Log Conflict Truncated") {
            // Every leader needs every vote, so its log is at least as up-to-date as each
            // other server's (§5.4.1), and no follower ever holds an entry the leader lacks.
            v.push((
                "Log Conflict Truncated",
                "fewer than 3 servers (a leader's log is never behind another's)",
            ));
        }
        if self.max_term < 2 {
            v.push(("Leaders In Two Terms", "--max-term 1"));
            if !v.iter().any(|(n, _)| *n == "Log Conflict Truncated") {
                v.push(("Log Conflict Truncated", "--max-term 1"));
            }
        }
        v
    }

    /// What in this bound tells the servers apart, so that symmetry reduction would be
    /// unsound (`None`: the servers are interchangeable).
    pub fn symmetry_breaker(&self) -> Option<&'static str> {
        if self.partial_partition {
            Some("--partial-partition: the cut link tells the servers apart")
        } else if self.max_config_changes > 0 {
            Some("--max-config-changes: configurations tell the servers apart")
        } else if self.max_forged > 0 {
            Some("--max-forged: a forged frame names its sender, the server after its receiver")
        } else {
            None
        }
    }

    /// The log bound in force (see [`ModelConfig::max_log_len`]).
    pub fn effective_max_log_len(&self) -> usize {
        self.max_log_len.unwrap_or_else(|| {
            (self.values * (1 + self.reads)).saturating_add(self.max_config_changes)
        })
    }

    /// The bound on each leader's read round (see [`ModelConfig::read_index`]).
    pub fn max_read_rounds(&self) -> u64 {
        (self.values * self.reads) as u64
    }

    /// With `partial_partition`: whether messages from server `from` to server `to` are lost
    /// at once (the link between the first and the last server is cut).
    pub fn link_cut(&self, from: usize, to: usize) -> bool {
        let last = self.servers.saturating_sub(1);
        self.partial_partition
            && from != to
            && (from == 0 || from == last)
            && (to == 0 || to == last)
    }

    /// The most voters a configuration of this bound can have: the initial ones, plus one per
    /// two changes (a server is added as a learner, then promoted).
    pub fn max_voters(&self) -> usize {
        let initial = self.initial_voters.unwrap_or(self.servers);
        (initial + self.max_config_changes / 2).min(self.servers)
    }

    /// The configuration every server starts with (see [`ModelConfig::initial_voters`]).
    pub fn initial_membership(&self) -> raft_core::Membership {
        let voters = self.initial_voters.unwrap_or(self.servers);
        raft_core::Membership::voters((0..voters as u64).map(raft_core::NodeId))
    }

    /// Number of actors that are servers; the rest are clients.
    pub fn is_server(&self, actor_index: usize) -> bool {
        actor_index < self.servers
    }
}

/// Rounds of the liveness continuation (`judge/liveness.rs`): elections (at most three, after a
/// stale leader's heartbeat; with CheckQuorum, a round may end leases only, and with PreVote a
/// round may see two pre-candidates split the vote), one heartbeat round per entry of the
/// longest log plus one to repair a divergent follower, one to carry commit_index, and margin.
/// Here because the servers' term cap under `--max-forged` lies past it (the adapter reads it).
pub fn round_limit(longest_log: usize) -> usize {
    2 * longest_log + 12
}
