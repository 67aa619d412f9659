//! `Shared<T>`: an immutable part of a model state that successor states share (copy-on-write)
//! and whose hash is computed once, not at every fingerprint of every state holding it.
//!
//! Every successor state clones and hashes every server's ghost records, storage and the
//! clients' history, though a step changes at most one of them. Sharing makes the clone a
//! reference-count increment; caching makes hashing eight bytes. Equality still compares the
//! values (after the pointer and the cached hash), so no two different values are ever merged
//! on a hash alone.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

pub struct Shared<T>(Arc<Inner<T>>);

struct Inner<T> {
    /// The value's hash; 0 until first needed (a value hashing to 0 is just rehashed).
    hash: AtomicU64,
    value: T,
}

impl<T: Clone> Clone for Inner<T> {
    fn clone(&self) -> Self {
        Inner {
            hash: AtomicU64::new(self.hash.load(AtomicOrdering::Relaxed)),
            value: self.value.clone(),
        }
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<T: Hash> Shared<T> {
    pub fn new(value: T) -> Self {
        Shared(Arc::new(Inner {
            hash: AtomicU64::new(0),
            value,
        }))
    }

    /// The value's hash (deterministic: aHash with fixed seeds, as stateright's fingerprints),
    /// computed at most once per value (racing threads compute the same number).
    pub fn hash_value(&self) -> u64 {
        let cached = self.0.hash.load(AtomicOrdering::Relaxed);
        if cached != 0 {
            return cached;
        }
        let computed =
            ahash::RandomState::with_seeds(0x5ba4ed, 0x2d4a11, 0, 0).hash_one(&self.0.value);
        self.0.hash.store(computed, AtomicOrdering::Relaxed);
        computed
    }

    /// Whether both share one allocation (then they are equal without looking further).
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl<T: Hash + Clone> Shared<T> {
    /// Copy-on-write access: copies the value if another state shares it, and forgets the
    /// cached hash.
    pub fn make_mut(this: &mut Self) -> &mut T {
        let inner = Arc::make_mut(&mut this.0);
        *inner.hash.get_mut() = 0;
        &mut inner.value
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T: Hash> Hash for Shared<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash_value());
    }
}

impl<T: Hash + PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        Shared::ptr_eq(self, other)
            || (self.hash_value() == other.hash_value() && self.0.value == other.0.value)
    }
}

impl<T: Hash + Eq> Eq for Shared<T> {}

impl<T: Hash + Ord> PartialOrd for Shared<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Hash + Ord> Ord for Shared<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.value.cmp(&other.0.value)
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.value.fmt(f)
    }
}

impl<T: Hash + Default> Default for Shared<T> {
    fn default() -> Self {
        Shared::new(T::default())
    }
}

#[cfg(test)]
mod tests {
    use super::Shared;
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};

    fn h<T: Hash>(v: &T) -> u64 {
        let mut s = DefaultHasher::new();
        v.hash(&mut s);
        s.finish()
    }

    #[test]
    fn equal_values_hash_alike_and_a_change_forgets_the_cached_hash() {
        let a = Shared::new(vec![1, 2, 3]);
        let b = Shared::new(vec![1, 2, 3]);
        assert_eq!(h(&a), h(&b));
        assert!(a == b);
        let mut c = a.clone();
        Shared::make_mut(&mut c).push(4);
        assert_ne!(h(&a), h(&c), "a stale hash survived the change");
        assert!(a != c);
        assert_eq!(*a, vec![1, 2, 3], "the shared original was changed");
        assert_eq!(h(&c), h(&Shared::new(vec![1, 2, 3, 4])));
    }
}
