//! Fuzz harnesses for every decoder of the workspace: what each libFuzzer target feeds its
//! decoder, what it checks besides "no panic", and the seed inputs it starts from.
//!
//! Every target decodes one input under [`alloc::measure`]: no input may make a decoder hold
//! more than [`alloc::LIMIT`] bytes (the frame limit plus 1 MiB) at once, nor allocate one
//! block larger. The targets themselves (`fuzz_targets/*.rs`) are one line each and are built,
//! instrumented for coverage, by the `raft-fuzz` driver (`src/bin/raft-fuzz.rs`).

pub mod alloc;
pub mod targets;

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;

pub use targets::{Target, TARGETS};

/// The target called `name`. Panics on an unknown name (a typo in a fuzz target).
pub fn target(name: &str) -> &'static Target {
    TARGETS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"))
}

static MAX_PEAK: AtomicUsize = AtomicUsize::new(0);
static MAX_LARGEST: AtomicUsize = AtomicUsize::new(0);

/// The body of every fuzz target: decodes `data` with target `name` under the allocation
/// bound. Where the environment variable `RAFT_FUZZ_ALLOC_STATS` names a file, the largest
/// per-input figures seen so far are written to it (as `peak_live largest`) whenever one
/// grows, for the driver's report.
pub fn fuzz_one(name: &str, data: &[u8]) {
    static STATS: OnceLock<Option<String>> = OnceLock::new();
    let t = target(name);
    let ((), usage) = alloc::measure(|| (t.run)(data));
    let grew_peak = MAX_PEAK.fetch_max(usage.peak_live, Relaxed) < usage.peak_live;
    let grew_largest = MAX_LARGEST.fetch_max(usage.largest, Relaxed) < usage.largest;
    if grew_peak || grew_largest {
        if let Some(path) = STATS.get_or_init(|| std::env::var("RAFT_FUZZ_ALLOC_STATS").ok()) {
            let line = format!("{} {}\n", MAX_PEAK.load(Relaxed), MAX_LARGEST.load(Relaxed));
            let _ = std::fs::write(path, line);
        }
    }
}
