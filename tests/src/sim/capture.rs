//! The client histories of simulator runs, handed to a caller that asked for them
//! ([`capturing`]): how the history export collects what the lab suite's runs recorded.

use crate::linearizability::History;
use std::cell::RefCell;

thread_local! {
    static CAPTURE: RefCell<Option<Vec<History>>> = const { RefCell::new(None) };
}

/// Called when a simulator run ends (`Sim`'s drop): hands its client history to a
/// [`capturing`] caller on this thread, if any (otherwise costs one thread-local read).
pub fn on_sim_end(history: &History) {
    CAPTURE.with(|c| {
        if let Some(v) = c.borrow_mut().as_mut() {
            if !history.events.is_empty() {
                v.push(history.clone());
            }
        }
    });
}

/// Runs `f` and returns, with its result, the client histories of the simulator runs that
/// ended on this thread meanwhile (also those that ended early with an error).
pub fn capturing<R>(f: impl FnOnce() -> R) -> (R, Vec<History>) {
    let outer = CAPTURE.with(|c| c.borrow_mut().replace(Vec::new()));
    let r = f();
    let got = CAPTURE.with(|c| std::mem::replace(&mut *c.borrow_mut(), outer));
    (r, got.unwrap_or_default())
}
