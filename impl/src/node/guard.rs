//! Locking the node's shared tables.

/// A mutex's guard, also after a thread panicked holding it (the guarded tables stay
/// consistent: every update is a single insert, remove or store).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
