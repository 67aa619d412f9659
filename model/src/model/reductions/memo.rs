//! A bounded memo of a pure function's boolean verdicts, shared by the checker's threads:
//! "Progress When Faults Stop" runs a whole continuation per distinct state, and many states
//! differ only in what the continuation does not read (timers, ghost records, the clients'
//! history), so most of its inputs repeat.
//!
//! Direct-mapped and lossy: a slot keeps the last verdict stored there. A key is 128 bits
//! (two independent hashes of the input); a slot is chosen by 20 bits of one and holds 62
//! bits of the other beside the verdict, so a wrong hit needs two different inputs that agree
//! on 82 hash bits (the checker itself tells states apart by a 64-bit fingerprint). Memory is
//! fixed ([`SLOTS`] words, allocated on first use), whatever the bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Number of slots (8 MiB).
pub const SLOTS: usize = 1 << 20;

#[derive(Default)]
pub struct Memo {
    slots: OnceLock<Box<[AtomicU64]>>,
}

/// A slot's word: bit 63 set (an empty slot is 0), bits 2..63 from the key, bit 0 the verdict.
fn word(tag: u64, verdict: bool) -> u64 {
    1 << 63 | (tag & !3 & !(1 << 63)) | u64::from(verdict)
}

impl Memo {
    fn slots(&self) -> &[AtomicU64] {
        self.slots
            .get_or_init(|| (0..SLOTS).map(|_| AtomicU64::new(0)).collect())
    }

    /// The verdict stored for `key`, if its slot still holds it.
    pub fn get(&self, key: (u64, u64)) -> Option<bool> {
        let (index, tag) = key;
        let w = self.slots()[index as usize % SLOTS].load(Ordering::Relaxed);
        (w != 0 && w & !1 == word(tag, false)).then_some(w & 1 == 1)
    }

    pub fn put(&self, key: (u64, u64), verdict: bool) {
        let (index, tag) = key;
        self.slots()[index as usize % SLOTS].store(word(tag, verdict), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_verdict_is_found_and_a_different_key_in_its_slot_is_not() {
        let m = Memo::default();
        assert_eq!(m.get((7, 42)), None);
        m.put((7, 42), true);
        assert_eq!(m.get((7, 42)), Some(true));
        assert_eq!(m.get((7, 43 << 2)), None, "same slot, another key");
        m.put((7, 42), false);
        assert_eq!(m.get((7, 42)), Some(false));
        m.put((7 + SLOTS as u64, 1 << 10), true);
        assert_eq!(m.get((7, 42)), None, "evicted by a key of the same slot");
    }
}
