//! `Shared<T>`: an immutable part of a model state that successor states share (copy-on-write)
//! and whose hash is computed once, not at every fingerprint of every state holding it.
//!
//! Every successor state clones and hashes every server's ghost records, storage and the
//! clients' history, though a step changes at most one of them. Sharing makes the clone a
//! reference-count increment; caching makes hashing eight bytes. Equality still compares the
//! values (after the pointer and the cached hash), so no two different values are ever merged
//! on a hash alone.
//!
//! A value may carry more derived facts of the same kind (`X`, e.g. an actor slot's hashes
//! under renamings of the servers, `state.rs`): kept with the value while it is shared and
//! forgotten, as the hash is, when a copy is made to be changed.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

pub struct Shared<T, X: Default = ()>(Arc<Inner<T, X>>);

struct Inner<T, X> {
    /// The value's hash; 0 until first needed (a value hashing to 0 is just rehashed).
    hash: AtomicU64,
    /// Other facts derived from the value, computed when first needed (`X::default()`: none).
    derived: X,
    value: T,
}

impl<T: Clone, X: Default> Clone for Inner<T, X> {
    fn clone(&self) -> Self {
        // A copy is made to be changed (`make_mut`): what was derived is not copied.
        Inner {
            hash: AtomicU64::new(self.hash.load(AtomicOrdering::Relaxed)),
            derived: X::default(),
            value: self.value.clone(),
        }
    }
}

impl<T, X: Default> Clone for Shared<T, X> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

/// The hash [`Shared::hash_value`] caches: deterministic (aHash with fixed seeds, as
/// stateright's fingerprints), so that a value built elsewhere hashes alike.
pub fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
    ahash::RandomState::with_seeds(0x5ba4ed, 0x2d4a11, 0, 0).hash_one(value)
}

impl<T: Hash, X: Default> Shared<T, X> {
    pub fn new(value: T) -> Self {
        Shared(Arc::new(Inner {
            hash: AtomicU64::new(0),
            derived: X::default(),
            value,
        }))
    }

    /// The value's hash ([`hash_of`]), computed at most once per value (racing threads
    /// compute the same number).
    pub fn hash_value(&self) -> u64 {
        let cached = self.0.hash.load(AtomicOrdering::Relaxed);
        if cached != 0 {
            return cached;
        }
        let computed = hash_of(&self.0.value);
        self.0.hash.store(computed, AtomicOrdering::Relaxed);
        computed
    }

    /// Whether both share one allocation (then they are equal without looking further).
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// The facts derived from this value so far (`X` fills itself in, e.g. with atomics).
    pub fn derived(&self) -> &X {
        &self.0.derived
    }
}

impl<T: Hash + Clone, X: Default> Shared<T, X> {
    /// Copy-on-write access: copies the value if another state shares it, and forgets the
    /// cached hash and what was derived.
    pub fn make_mut(this: &mut Self) -> &mut T {
        let inner = Arc::make_mut(&mut this.0);
        *inner.hash.get_mut() = 0;
        inner.derived = X::default();
        &mut inner.value
    }
}

impl<T, X: Default> Deref for Shared<T, X> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T: Hash, X: Default> Hash for Shared<T, X> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash_value());
    }
}

impl<T: Hash + PartialEq, X: Default> PartialEq for Shared<T, X> {
    fn eq(&self, other: &Self) -> bool {
        Shared::ptr_eq(self, other)
            || (self.hash_value() == other.hash_value() && self.0.value == other.0.value)
    }
}

impl<T: Hash + Eq, X: Default> Eq for Shared<T, X> {}

impl<T: Hash + Ord, X: Default> PartialOrd for Shared<T, X> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Hash + Ord, X: Default> Ord for Shared<T, X> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.value.cmp(&other.0.value)
    }
}

/// A shared value travels as the value (the distributed engine's states between processes);
/// its hashes are worked out again where it arrives, from the value alone.
impl<T: serde::Serialize, X: Default> serde::Serialize for Shared<T, X> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.value.serialize(s)
    }
}

impl<'de, T: serde::Deserialize<'de> + Hash, X: Default> serde::Deserialize<'de> for Shared<T, X> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Shared::new)
    }
}

impl<T: fmt::Debug, X: Default> fmt::Debug for Shared<T, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.value.fmt(f)
    }
}

impl<T: Hash + Default, X: Default> Default for Shared<T, X> {
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
        let a: Shared<Vec<i32>> = Shared::new(vec![1, 2, 3]);
        let b: Shared<Vec<i32>> = Shared::new(vec![1, 2, 3]);
        assert_eq!(h(&a), h(&b));
        assert!(a == b);
        let mut c = a.clone();
        Shared::make_mut(&mut c).push(4);
        assert_ne!(h(&a), h(&c), "a stale hash survived the change");
        assert!(a != c);
        assert_eq!(*a, vec![1, 2, 3], "the shared original was changed");
        assert_eq!(h(&c), h(&Shared::<Vec<i32>>::new(vec![1, 2, 3, 4])));
    }

    #[test]
    fn what_was_derived_is_forgotten_when_the_value_changes() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let mut a: Shared<u32, AtomicU64> = Shared::new(1);
        a.derived().store(7, Ordering::Relaxed);
        let b = a.clone();
        assert_eq!(b.derived().load(Ordering::Relaxed), 7, "sharing keeps it");
        // Shared: the changed copy starts afresh, the original keeps it.
        *Shared::make_mut(&mut a) += 1;
        assert_eq!(a.derived().load(Ordering::Relaxed), 0);
        assert_eq!(b.derived().load(Ordering::Relaxed), 7);
        // Not shared: changed in place, and forgotten all the same.
        a.derived().store(9, Ordering::Relaxed);
        *Shared::make_mut(&mut a) += 1;
        assert_eq!(a.derived().load(Ordering::Relaxed), 0);
    }
}
