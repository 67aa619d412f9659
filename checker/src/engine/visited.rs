//! The visited states of the checker's own engines (`dfs.rs`, `bfs.rs`): an open-addressing
//! table of 64-bit fingerprints, with an optional 64-bit word per state (DFS with sleep sets:
//! which steps the state's first visit left unexplored; BFS: the parent's fingerprint).
//!
//! 8 bytes per slot without the word, 16 with it; the table doubles at 3/4 full, so a state
//! costs 11–21 (or 21–43) bytes. Fingerprint 0 marks an empty slot: a state whose fingerprint
//! is 0 is stored as 1 (one more collision in 2^64, as any fingerprint collision: the two
//! states are taken for one, which is the risk every fingerprinting checker takes).

/// A set of fingerprints with an optional word per fingerprint.
pub struct Visited {
    keys: Vec<u64>,
    words: Option<Vec<u64>>,
    len: usize,
}

/// Where a fingerprint lives in the table (valid until the next insert).
#[derive(Clone, Copy, Debug)]
pub struct Slot(usize);

const INITIAL: usize = 1 << 16;

impl Visited {
    /// An empty table; `with_words`: keep a word per state.
    pub fn new(with_words: bool) -> Visited {
        Visited::with_slots(with_words, INITIAL)
    }

    /// An empty table of `slots` slots to start with (a power of two).
    pub fn with_slots(with_words: bool, slots: usize) -> Visited {
        assert!(slots.is_power_of_two(), "{slots} slots");
        Visited {
            keys: vec![0; slots],
            words: with_words.then(|| vec![0; slots]),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// How `fp` is held (0 as 1).
    pub fn stored(fp: u64) -> u64 {
        fp.max(1)
    }

    /// The slot of `fp` if present, else the empty slot where it would go.
    fn probe(&self, fp: u64) -> (usize, bool) {
        let mask = self.keys.len() - 1;
        // The high bits pick the slot (the low bits may be the ones a shard splits on).
        let mut i = (fp.rotate_left(29).wrapping_mul(0x9E37_79B9_7F4A_7C15) as usize) & mask;
        loop {
            match self.keys[i] {
                0 => return (i, false),
                k if k == fp => return (i, true),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Insert `fp` (with `word`): `Ok` if it is new, `Err(slot)` if it was there.
    pub fn insert(&mut self, fp: u64, word: u64) -> Result<Slot, Slot> {
        let fp = Self::stored(fp);
        let (i, found) = self.probe(fp);
        if found {
            return Err(Slot(i));
        }
        if (self.len + 1) * 4 > self.keys.len() * 3 {
            self.grow();
            return self.insert(fp, word);
        }
        self.keys[i] = fp;
        if let Some(words) = &mut self.words {
            words[i] = word;
        }
        self.len += 1;
        Ok(Slot(i))
    }

    pub fn word(&self, slot: Slot) -> u64 {
        self.words.as_ref().map_or(0, |w| w[slot.0])
    }

    pub fn set_word(&mut self, slot: Slot, word: u64) {
        if let Some(words) = &mut self.words {
            words[slot.0] = word;
        }
    }

    /// The word held with `fp`, if `fp` is present.
    pub fn word_of(&self, fp: u64) -> Option<u64> {
        self.find(fp).map(|slot| self.word(slot))
    }

    /// The slot of `fp`, if present.
    pub fn find(&self, fp: u64) -> Option<Slot> {
        let (i, found) = self.probe(Self::stored(fp));
        found.then_some(Slot(i))
    }

    fn grow(&mut self) {
        let size = self.keys.len() * 2;
        let keys = std::mem::replace(&mut self.keys, vec![0; size]);
        let words = self
            .words
            .as_mut()
            .map(|w| std::mem::replace(w, vec![0; size]));
        for (j, &k) in keys.iter().enumerate() {
            if k != 0 {
                let (i, _) = self.probe(k);
                self.keys[i] = k;
                if let (Some(new), Some(old)) = (&mut self.words, &words) {
                    new[i] = old[j];
                }
            }
        }
    }

    /// Every fingerprint held (0 held as 1).
    #[cfg(test)]
    pub fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.keys.iter().copied().filter(|&k| k != 0)
    }

    /// Bytes the table holds now.
    pub fn bytes(&self) -> usize {
        self.keys.len() * 8 + self.words.as_ref().map_or(0, |w| w.len() * 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_and_grow_keep_every_key_and_word() {
        let mut v = Visited::new(true);
        let n = INITIAL * 3; // grows several times
        for k in 0..n as u64 {
            // 0 is stored as 1, so start the keys at 2 to keep them distinct.
            let fp = (k + 2).wrapping_mul(0xD6E8_FEB8_6659_FD93);
            assert!(v.insert(fp, k).is_ok(), "{k} is new");
        }
        assert_eq!(v.len(), n);
        for k in 0..n as u64 {
            let fp = (k + 2).wrapping_mul(0xD6E8_FEB8_6659_FD93);
            let slot = v.insert(fp, 0).expect_err("present");
            assert_eq!(v.word(slot), k);
            assert!(v.find(fp).is_some());
        }
        assert!(v.find(1).is_none());
        assert_eq!(v.len(), n);
    }

    #[test]
    fn zero_is_stored_as_one_and_words_are_optional() {
        let mut v = Visited::new(false);
        assert!(v.insert(0, 7).is_ok());
        assert!(v.insert(1, 7).is_err(), "0 and 1 are one key");
        let slot = v.find(0).unwrap();
        assert_eq!(v.word(slot), 0, "no words kept");
        v.set_word(slot, 5);
        assert_eq!(v.bytes(), INITIAL * 8);
    }
}
