//! The fingerprint a state is deduplicated on, as stateright 0.31 computes it, so that the
//! checker's own engines (`dfs.rs`, `bfs.rs`, `owned.rs`) agree with
//! stateright's checkers on which states are the same.

use raft_model::model::symmetry::representative_hash;
use raft_model::model::RaftState;
use std::hash::{BuildHasher, Hash, Hasher};

/// stateright 0.31's state fingerprint (its private `fingerprint`: ahash seeded with these
/// keys), so that a part's fingerprints are the checker's.
#[allow(clippy::manual_hash_one)]
pub fn fingerprint<T: Hash>(value: &T) -> u64 {
    const KEY1: u64 = 123_456_789_987_654_321;
    const KEY2: u64 = 98_765_432_123_456_789;
    // Written as stateright writes it (not `hash_one`, which ahash may specialize).
    let mut hasher = ahash::RandomState::with_seeds(KEY1, KEY2, 0, 0).build_hasher();
    value.hash(&mut hasher);
    hasher.finish()
}

/// The fingerprint a state is deduplicated on: its own, or with symmetry reduction its
/// renaming class's representative's (as the checker's `symmetry_fn` does), hashed without
/// building the representative.
pub fn key(state: &RaftState, symmetry: bool) -> u64 {
    if symmetry {
        fingerprint(&representative_hash(state))
    } else {
        fingerprint(state)
    }
}
