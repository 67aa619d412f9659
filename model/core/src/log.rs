//! The log's entries as a server holds them: shared copy-on-write.
//!
//! Most steps leave a server's log as it was (votes, heartbeats, replies), yet a driver that
//! keeps the state before a step (the model checker keeps every state it explores) copies the
//! whole server to take it. Shared, that copy is a reference count; the entries are copied
//! only when a step changes them (`DerefMut`), and two servers holding one copy compare equal
//! without looking at the entries. Serialized, hashed, ordered and printed as the plain vector
//! (the WAL's and the wire's formats, and the model's fingerprints, do not change).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// The entries after the snapshot, in index order (`HardState::log`, whose `T` is
/// `T`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Log<T>(Arc<Vec<T>>);

impl<T> Log<T> {
    pub fn new() -> Self {
        Log(Arc::new(Vec::new()))
    }
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log::new()
    }
}

impl<T> From<Vec<T>> for Log<T> {
    fn from(entries: Vec<T>) -> Self {
        Log(Arc::new(entries))
    }
}

impl<T> FromIterator<T> for Log<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Log(Arc::new(iter.into_iter().collect()))
    }
}

impl<T> Deref for Log<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

/// Any change copies the entries first if another holder shares them.
impl<T: Clone> DerefMut for Log<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        Arc::make_mut(&mut self.0)
    }
}

impl<T: fmt::Debug> fmt::Debug for Log<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Serialize> Serialize for Log<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Log<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::deserialize(d).map(Log::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Entries stand in as plain numbers (the log is generic over its entry type).
    fn e(term: u64) -> u64 {
        term
    }

    #[test]
    fn a_change_to_a_copy_leaves_the_original_as_it_was() {
        let a: Log<u64> = vec![e(1), e(2)].into();
        let mut b = a.clone();
        assert!(Arc::ptr_eq(&a.0, &b.0), "a copy shares the entries");
        b.push(e(3));
        assert_eq!(a.len(), 2);
        assert_eq!(b.len(), 3);
        assert_ne!(a, b);
        b.truncate(2);
        assert_eq!(a, b, "equal entries compare equal, shared or not");
    }

    #[test]
    fn it_hashes_and_prints_as_the_plain_vector() {
        use std::collections::hash_map::DefaultHasher;
        use std::hash::{Hash, Hasher};
        let v = vec![e(1), e(2)];
        let log: Log<u64> = v.clone().into();
        let h = |x: &dyn Fn(&mut DefaultHasher)| {
            let mut s = DefaultHasher::new();
            x(&mut s);
            s.finish()
        };
        assert_eq!(h(&|s| log.hash(s)), h(&|s| v.hash(s)));
        assert_eq!(format!("{log:?}"), format!("{v:?}"));
    }
}
