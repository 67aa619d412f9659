//! Ctrl-C (SIGINT, SIGTERM) during `check`: the first asks the search to stop and the report to
//! be written as it stands (incomplete, exit 3, `--json` too); a second quits at once (130).
//!
//! A user who stops a long run still learns how far it got (states, depth, memory, any
//! violation found so far) instead of losing everything to the default handler.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first signal; read by the searches (every few thousand states) and by `check`'s
/// waiting loop.
pub static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Install the handler. Without one (the OS refused), Ctrl-C keeps its default effect.
pub fn install() {
    let installed = ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            eprintln!("interrupted again: quitting without a report");
            std::process::exit(130);
        }
        eprintln!("interrupted: stopping the search and writing its report as it stands (Ctrl-C again to quit at once)");
    });
    if let Err(e) = installed {
        tracing::warn!("cannot handle Ctrl-C ({e}): it will stop the checker without a report");
    }
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}
