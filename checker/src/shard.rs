//! Checking one bound on many machines: `check --shard I/N` and `merge`.
//!
//! Every part first explores the same short prefix of the bound: a breadth-first search from
//! the initial states, deduplicated by fingerprint (with `--symmetry`, by the fingerprint of the
//! renaming class's representative, as the checker does), down to the depth where the level
//! holds at least [`MIN_FRONTIER_PER_PART`] × N states (or `--shard-depth D`). Every part
//! evaluates every property on the states above that level (the prefix proper), so all parts
//! agree on them. The states of the last level (the frontier) are split by fingerprint: part I
//! keeps those with `fingerprint % N == I` and explores them exhaustively, as the checker's
//! initial states ([`ShardModel`]). Every reachable state is either in the prefix or reachable
//! from a frontier state (its shortest path crosses the frontier level), so the parts together
//! cover the single run's states; a state reachable from the frontier states of several parts
//! is explored by each of them (the duplication overhead).
//!
//! A discovery in a part starts at a frontier state; it is reported as the prefix path to that
//! state followed by the part's path, so every counterexample starts at an initial state.
//! `merge` combines the parts' reports: an Always property holds only if it holds in every
//! part, a Sometimes property is witnessed if any part witnesses it, and the verdict is
//! "verified" only when all N parts are there and complete.

use crate::fingerprint::{fingerprint, key};
use crate::report::{CheckReport, ExpectationJson, PropertyJson, Status, EXIT_USAGE};
use crate::run::Explored;
use crate::trace::Action;
use raft_model::model::{RaftModel, RaftState};
use serde::{Deserialize, Serialize};
use stateright::{Expectation, Model, Path, Property};
use std::collections::{HashMap, HashSet};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};

/// Without `--shard-depth`, the prefix goes down until its last level holds at least this many
/// states per part, so that each part gets a fair share.
pub const MIN_FRONTIER_PER_PART: usize = 64;

/// The breadth-first prefix every part explores.
pub struct Prefix {
    symmetry: bool,
    /// The frontier's depth (steps from an initial state).
    pub depth: usize,
    /// Every prefix state's key → its parent's key and the index of the action from it (none
    /// for initial states).
    seen: HashMap<u64, Option<(u64, u32)>>,
    /// The keys of the states above the frontier, where the prefix evaluated the properties.
    pub interior: Vec<u64>,
    /// The frontier: the states first reached at `depth`, with their keys.
    pub frontier: Vec<(RaftState, u64)>,
    /// The first prefix state (in BFS order) that violates an Always property or witnesses a
    /// Sometimes one, per property.
    pub found: Vec<(&'static str, u64)>,
    /// The plain fingerprints (not the representatives') of the states above the frontier.
    interior_states: HashSet<u64>,
}

impl Prefix {
    /// Explore `model` breadth-first down to `depth`, or (without it) until a level holds at
    /// least `min_frontier` states. A violation in the prefix stops it with an empty frontier,
    /// as a single run stops at its first violation.
    pub fn explore(
        model: &RaftModel,
        symmetry: bool,
        depth: Option<usize>,
        min_frontier: usize,
    ) -> Prefix {
        let properties = model.properties();
        let mut seen = HashMap::new();
        let mut level = Vec::new();
        for s in model.init_states() {
            let k = key(&s, symmetry);
            if model.within_boundary(&s) && seen.insert(k, None).is_none() {
                level.push((s, k));
            }
        }
        let mut d = 0;
        let mut interior = Vec::new();
        let mut interior_states = HashSet::new();
        let mut found: Vec<(&'static str, u64)> = Vec::new();
        let mut actions = Vec::new();
        loop {
            let deep_enough = match depth {
                Some(target) => d >= target,
                None => level.len() >= min_frontier,
            };
            if deep_enough || level.is_empty() {
                break;
            }
            let mut violated = false;
            for (s, k) in &level {
                interior.push(*k);
                interior_states.insert(fingerprint(s));
                for p in &properties {
                    if found.iter().any(|(n, _)| *n == p.name) {
                        continue;
                    }
                    let hit = match p.expectation {
                        Expectation::Always => !(p.condition)(model, s),
                        Expectation::Sometimes => (p.condition)(model, s),
                        Expectation::Eventually => false,
                    };
                    if hit {
                        found.push((p.name, *k));
                        violated |= p.expectation == Expectation::Always;
                    }
                }
            }
            if violated {
                level.clear();
                break;
            }
            let mut next = Vec::new();
            for (s, k) in &level {
                actions.clear();
                model.actions(s, &mut actions);
                for (i, a) in actions.drain(..).enumerate() {
                    let Some(n) = model.next_state(s, a) else {
                        continue;
                    };
                    if !model.within_boundary(&n) {
                        continue;
                    }
                    let nk = key(&n, symmetry);
                    if let std::collections::hash_map::Entry::Vacant(e) = seen.entry(nk) {
                        e.insert(Some((*k, i as u32)));
                        next.push((n, nk));
                    }
                }
            }
            level = next;
            d += 1;
        }
        Prefix {
            symmetry,
            depth: d,
            seen,
            interior,
            frontier: level,
            found,
            interior_states,
        }
    }

    /// The path from an initial state to the prefix state with key `target`, then `tail` (the
    /// actions a part took from there).
    pub fn full_path(
        &self,
        model: &RaftModel,
        target: u64,
        tail: &[Action],
    ) -> Path<RaftState, Action> {
        let symmetry = self.symmetry;
        let (root, mut taken) =
            crate::shortest::replay_links(model, &self.seen, target, |s| key(s, symmetry));
        taken.extend(tail.iter().cloned());
        Path::from_actions(model, root, taken.iter()).expect("a part's path replays")
    }
}

/// One part of a bound: the bound's model with its share of the prefix's frontier as the
/// initial states. Records the fingerprint of every state it generates when asked
/// (`--dump-fingerprints`).
pub struct ShardModel {
    raft: RaftModel,
    starts: Vec<RaftState>,
    prefix: Option<Arc<Prefix>>,
    symmetry: bool,
    recorder: Option<Arc<Mutex<HashSet<u64>>>>,
    /// The plain fingerprints of the prefix's states other than this part's own frontier
    /// states: the part does not enter them (see `within_boundary`).
    prune: HashSet<u64>,
}

impl ShardModel {
    /// Part `index` of `count` of the bound `raft`, after `prefix`.
    pub fn part(
        raft: RaftModel,
        prefix: Arc<Prefix>,
        index: usize,
        count: usize,
        recorder: Option<Arc<Mutex<HashSet<u64>>>>,
    ) -> ShardModel {
        let starts = prefix
            .frontier
            .iter()
            .filter(|(_, k)| (*k % count as u64) as usize == index)
            .map(|(s, _)| s.clone())
            .collect::<Vec<_>>();
        let own: HashSet<u64> = starts.iter().map(fingerprint).collect();
        let prune = prefix
            .interior_states
            .iter()
            .copied()
            .chain(prefix.frontier.iter().map(|(s, _)| fingerprint(s)))
            .filter(|f| !own.contains(f))
            .collect();
        let mut m = ShardModel::new(raft, starts, Some(prefix), recorder);
        m.prune = prune;
        m
    }

    /// The whole bound, state for state as `RaftModel` (to record its fingerprints).
    pub fn whole(raft: RaftModel, symmetry: bool, recorder: Arc<Mutex<HashSet<u64>>>) -> Self {
        let starts = raft.init_states();
        let mut m = ShardModel::new(raft, starts, None, Some(recorder));
        m.symmetry = symmetry;
        m
    }

    fn new(
        raft: RaftModel,
        starts: Vec<RaftState>,
        prefix: Option<Arc<Prefix>>,
        recorder: Option<Arc<Mutex<HashSet<u64>>>>,
    ) -> Self {
        let properties = raft.properties();
        assert!(
            properties.len() <= CONDITIONS.len(),
            "more properties than shard.rs's CONDITIONS table holds"
        );
        assert!(
            properties
                .iter()
                .all(|p| p.expectation != Expectation::Eventually),
            "a sharded check cannot carry an Eventually property across the prefix"
        );
        let symmetry = prefix.as_ref().is_some_and(|p| p.symmetry);
        ShardModel {
            raft,
            starts,
            prefix,
            symmetry,
            recorder,
            prune: HashSet::new(),
        }
    }

    /// How many frontier states this part explores.
    pub fn start_count(&self) -> usize {
        self.starts.len()
    }
}

/// Property conditions of a `ShardModel`: stateright's are plain `fn` pointers, so each one
/// delegates to the bound's property of the same index.
fn condition<const I: usize>(m: &ShardModel, s: &RaftState) -> bool {
    (m.raft.properties[I].condition)(&m.raft, s)
}

macro_rules! conditions {
    ($($i:literal)*) => { [$(condition::<$i> as fn(&ShardModel, &RaftState) -> bool),*] };
}

const CONDITIONS: [fn(&ShardModel, &RaftState) -> bool; 64] = conditions!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
    32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61
    62 63
);

impl Model for ShardModel {
    type State = RaftState;
    type Action = Action;

    fn init_states(&self) -> Vec<RaftState> {
        self.starts.clone()
    }

    fn actions(&self, state: &RaftState, actions: &mut Vec<Action>) {
        self.raft.actions(state, actions)
    }

    fn next_state(&self, state: &RaftState, action: Action) -> Option<RaftState> {
        self.raft.next_state(state, action)
    }

    fn format_action(&self, action: &Action) -> String {
        self.raft.format_action(action)
    }

    fn format_step(&self, last_state: &RaftState, action: Action) -> Option<String> {
        self.raft.format_step(last_state, action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        self.raft
            .properties
            .iter()
            .enumerate()
            .map(|(i, p)| Property {
                expectation: p.expectation.clone(),
                name: p.name,
                condition: CONDITIONS[i],
            })
            .collect()
    }

    /// The bound's boundary, and outside it for a part: the prefix's states other than the
    /// part's own frontier states. Whatever is reachable from such a state is covered without
    /// this part: a state at distance < depth from an initial state is in the prefix, where
    /// every part evaluated it, and any other one is reachable from a frontier state (its
    /// shortest path crosses the frontier level), which its own part explores.
    fn within_boundary(&self, state: &RaftState) -> bool {
        let inside = self.raft.within_boundary(state)
            && (self.prune.is_empty() || !self.prune.contains(&fingerprint(state)));
        if inside {
            if let Some(r) = &self.recorder {
                r.lock()
                    .expect("recorder")
                    .insert(key(state, self.symmetry));
            }
        }
        inside
    }
}

impl Explored for ShardModel {
    fn raft(&self) -> &RaftModel {
        &self.raft
    }

    /// A part prunes the prefix's states (`within_boundary`): a boundary the independence
    /// relation knows nothing of, so no sleep sets.
    fn sleep_sets_apply(&self) -> bool {
        false
    }

    fn full_path(&self, path: Path<RaftState, Action>) -> Path<RaftState, Action> {
        let Some(prefix) = &self.prefix else {
            return path;
        };
        let steps = path.into_vec();
        let start = key(&steps[0].0, prefix.symmetry);
        let tail: Vec<Action> = steps.into_iter().filter_map(|(_, a)| a).collect();
        prefix.full_path(&self.raft, start, &tail)
    }

    fn prior(&self, property: &str) -> Option<Path<RaftState, Action>> {
        let prefix = self.prefix.as_ref()?;
        let (_, k) = prefix.found.iter().find(|(n, _)| *n == property)?;
        Some(prefix.full_path(&self.raft, *k, &[]))
    }
}

/// What a part's report says about its part (`"shard"` in the JSON).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ShardJson {
    pub index: usize,
    pub count: usize,
    /// The depth of the prefix's frontier.
    pub depth: usize,
    /// States above the frontier (every part evaluates the properties on them).
    pub prefix_states: usize,
    /// Frontier states, in all parts.
    pub frontier_states: usize,
    /// Frontier states this part explored from.
    pub part_frontier_states: usize,
}

/// What a merged report says about its parts (`"merged"` in the JSON).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct MergedJson {
    pub count: usize,
    pub depth: usize,
    pub prefix_states: usize,
    pub frontier_states: usize,
    /// The parts found, by index.
    pub parts: Vec<PartJson>,
    /// The indices of the parts missing.
    pub missing: Vec<usize>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PartJson {
    pub index: usize,
    pub complete: bool,
    pub unique_states: usize,
    pub total_states: usize,
    pub seconds: f64,
}

fn read_part(path: &FsPath) -> Result<CheckReport, String> {
    let raw = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let report: CheckReport = serde_json::from_str(&raw)
        .map_err(|e| format!("{}: not a `check --json` report: {e}", path.display()))?;
    if report.shard.is_none() {
        return Err(format!(
            "{}: not a part's report (written without --shard)",
            path.display()
        ));
    }
    Ok(report)
}

/// Combine the reports of the parts of one bound into one. Errors (exit 2) for unreadable
/// reports, reports of different bounds, part counts, prefix depths or symmetry, and a part
/// given twice; missing parts make the result incomplete.
pub fn merge_reports(files: &[PathBuf]) -> Result<CheckReport, String> {
    let mut parts = Vec::new();
    for f in files {
        parts.push((f.clone(), read_part(f)?));
    }
    let (first_file, first) = &parts[0];
    let first_shard = first.shard.clone().expect("checked by read_part");
    let config = serde_json::to_value(&first.config).expect("config serializes");
    for (f, r) in &parts[1..] {
        let s = r.shard.as_ref().expect("checked by read_part");
        let mismatch = |what: &str| {
            format!(
                "{} and {} are parts of different checks ({what} differ): refusing to merge",
                first_file.display(),
                f.display()
            )
        };
        if serde_json::to_value(&r.config).expect("config serializes") != config {
            return Err(mismatch("the bounds"));
        }
        if r.symmetry != first.symmetry {
            return Err(mismatch("--symmetry"));
        }
        if s.count != first_shard.count {
            return Err(mismatch("the part counts N"));
        }
        if s.depth != first_shard.depth || s.frontier_states != first_shard.frontier_states {
            return Err(mismatch("the prefixes (--shard-depth)"));
        }
    }
    let count = first_shard.count;
    let mut by_index: Vec<Option<&CheckReport>> = vec![None; count];
    for (f, r) in &parts {
        let i = r.shard.as_ref().expect("checked").index;
        if by_index[i].is_some() {
            return Err(format!("part {i}/{count} is given twice ({})", f.display()));
        }
        by_index[i] = Some(r);
    }
    let missing: Vec<usize> = (0..count).filter(|i| by_index[*i].is_none()).collect();
    let present: Vec<&CheckReport> = by_index.iter().flatten().copied().collect();
    let all_complete = missing.is_empty() && present.iter().all(|r| r.complete);

    let mut merged = CheckReport {
        config: first.config.clone(),
        strategy: first.strategy.clone(),
        threads: first.threads,
        symmetry: first.symmetry,
        complete: all_complete,
        unique_states: first_shard.prefix_states
            + present.iter().map(|r| r.unique_states).sum::<usize>(),
        total_states: present.iter().map(|r| r.total_states).sum(),
        max_depth: first_shard.depth + present.iter().map(|r| r.max_depth).max().unwrap_or(0),
        seconds: present.iter().map(|r| r.seconds).fold(0.0, f64::max),
        peak_memory_bytes: present.iter().filter_map(|r| r.peak_memory_bytes).max(),
        properties: Vec::new(),
        interrupted: present.iter().any(|r| r.interrupted),
        // Parts never use sleep sets (`sleep_sets_apply`); the engine is the first part's.
        engine: first.engine.clone(),
        shard: None,
        merged: Some(MergedJson {
            count,
            depth: first_shard.depth,
            prefix_states: first_shard.prefix_states,
            frontier_states: first_shard.frontier_states,
            parts: present
                .iter()
                .map(|r| PartJson {
                    index: r.shard.as_ref().expect("checked").index,
                    complete: r.complete,
                    unique_states: r.unique_states,
                    total_states: r.total_states,
                    seconds: r.seconds,
                })
                .collect(),
            missing,
        }),
    };
    for p in &first.properties {
        let same: Vec<&PropertyJson> = present
            .iter()
            .filter_map(|r| r.properties.iter().find(|q| q.name == p.name))
            .collect();
        if same.len() != present.len() {
            return Err(format!(
                "property \"{}\" is not in every part's report: refusing to merge",
                p.name
            ));
        }
        let any = |s: Status| same.iter().any(|q| q.status == s);
        let status = match p.expectation {
            _ if any(Status::NotApplicable) => Status::NotApplicable,
            ExpectationJson::Always if any(Status::Violated) => Status::Violated,
            ExpectationJson::Always if all_complete => Status::Holds,
            ExpectationJson::Sometimes if any(Status::Witnessed) => Status::Witnessed,
            ExpectationJson::Sometimes if all_complete => Status::NotWitnessed,
            _ => Status::Unknown,
        };
        // The shortest counterexample any part found (each is a full path).
        let counterexample = same
            .iter()
            .filter(|q| q.status == Status::Violated)
            .filter_map(|q| q.counterexample.clone())
            .min_by_key(|c| c.length);
        merged.properties.push(PropertyJson {
            name: p.name.clone(),
            expectation: p.expectation,
            status,
            counterexample: if status == Status::Violated {
                counterexample
            } else {
                None
            },
            note: p.note.clone(),
        });
    }
    Ok(merged)
}

/// `raft-check merge`: print the merged verdict, write it as JSON, exit as `check` does.
pub fn cmd_merge(files: &[PathBuf], json: Option<&FsPath>) -> i32 {
    let merged = match merge_reports(files) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("raft-check merge: {e}");
            return EXIT_USAGE;
        }
    };
    let info = merged.merged.as_ref().expect("a merged report");
    println!(
        "Merging {} of {} parts: prefix to depth {} ({} states above a frontier of {})",
        info.parts.len(),
        info.count,
        info.depth,
        info.prefix_states,
        info.frontier_states
    );
    for p in &info.parts {
        println!(
            "  part {}/{}: {} distinct states, {:.1} s, complete: {}",
            p.index, info.count, p.unique_states, p.seconds, p.complete
        );
    }
    for i in &info.missing {
        println!("  part {i}/{}: MISSING", info.count);
    }
    for p in merged.failures() {
        match &p.counterexample {
            Some(c) => {
                println!(
                    "\nCounterexample: \"{}\" is violated after {} steps (from an initial state):",
                    p.name, c.length
                );
                for (n, a) in c.actions.iter().enumerate() {
                    println!("  {:>3}. {a}", n + 1);
                }
            }
            None => println!(
                "\nWitness missing: \"{}\" was reached in no part, so the property it pairs \
                 with may hold vacuously.",
                p.name
            ),
        }
    }
    println!();
    print!("{}", merged.summary());
    println!(
        "  (distinct states: the prefix's plus each part's, summed: a state that several parts \
         reach counts once per part)"
    );
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&merged).expect("report serializes");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("raft-check merge: cannot write {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    merged.exit_code()
}
