//! A counting global allocator: the allocation bound of the fuzz targets.
//!
//! While an input is being decoded ([`measure`]), every allocation is counted. One that would
//! make a single block, or the bytes the input holds live at once, exceed [`LIMIT`]
//! (`MAX_FRAME_LEN` plus 1 MiB of slack) is refused: the allocator returns null, so the
//! process aborts at once with "memory allocation of N bytes failed" and libFuzzer saves the
//! input as a crash, before a 4 GiB length header can make the machine swap. [`measure`] also
//! panics afterwards if anything was refused (a decoder that used `try_reserve` and recovered
//! still exceeded the bound). Outside [`measure`] nothing is refused.
//!
//! Each fuzz target installs it with `#[global_allocator]`; so does the smoke test. Without it
//! [`measure`] reports zeros.

use raft_impl::wire::MAX_FRAME_LEN;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The most bytes one input may have allocated and live at once, and the largest block.
pub const LIMIT: usize = MAX_FRAME_LEN + (1 << 20);

thread_local! {
    /// Whether this thread is inside [`measure`]: only the measured thread is held to the bound,
    /// so other threads of the process (a test harness reporting results) are never refused
    /// while the measured input holds memory near the limit. Const-initialized, no destructor:
    /// reading it never allocates.
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

fn armed() -> bool {
    ARMED.try_with(Cell::get).unwrap_or(false)
}

fn arm(on: bool) {
    let _ = ARMED.try_with(|a| a.set(on));
}
static LIVE: AtomicUsize = AtomicUsize::new(0);
static BASE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);
static REFUSED: AtomicUsize = AtomicUsize::new(0);

/// What one input cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// The most bytes allocated by the input and live at one time.
    pub peak_live: usize,
    /// The largest single allocation (or reallocation's new size).
    pub largest: usize,
}

/// The global allocator of the fuzz targets: the system allocator, counted.
pub struct CountingAlloc;

impl CountingAlloc {
    /// Counts `grow` more bytes for a block of `size`; false if that breaks the bound.
    fn admit(size: usize, grow: usize) -> bool {
        let live = LIVE.fetch_add(grow, Relaxed).wrapping_add(grow);
        if !armed() {
            return true;
        }
        let used = live.saturating_sub(BASE.load(Relaxed));
        if size > LIMIT || used > LIMIT {
            LIVE.fetch_sub(grow, Relaxed);
            REFUSED.fetch_max(size.max(used), Relaxed);
            return false;
        }
        LARGEST.fetch_max(size, Relaxed);
        PEAK.fetch_max(used, Relaxed);
        true
    }
}

// Why `unsafe`: `GlobalAlloc` is an unsafe trait (the compiler trusts its implementations to
// return valid memory). Every method hands the caller's layout and pointer unchanged to
// `System`, whose contract is the same, so the blocks are exactly the system allocator's; the
// only additions are relaxed atomic counters (which never allocate) and returning null, which
// the contract allows for any allocation that cannot be satisfied.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !Self::admit(layout.size(), layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout, passed on unchanged (non-zero size by the caller's
        // contract).
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !Self::admit(layout.size(), layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: as in `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout (every block of this
        // allocator is a `System` block).
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        let grow = new_size.saturating_sub(old);
        if !Self::admit(new_size, grow) {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` is a `System` block of `layout`; the caller guarantees `new_size` is
        // valid for its alignment.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            LIVE.fetch_sub(grow, Relaxed);
        } else if new_size < old {
            LIVE.fetch_sub(old - new_size, Relaxed);
        }
        p
    }
}

/// Runs `f` (the decoding of one input) under the bound; returns what it allocated. Panics if
/// an allocation was refused. Not reentrant, and meant for a single-threaded fuzz process.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Usage) {
    // A panic inside `f` (a failed check: the finding) is reported by the panic hook, whose
    // backtrace allocates more than the bound: the bound is lifted before the report, or the
    // refused allocation aborts it and libFuzzer records a timeout instead of the panic.
    static DISARM_ON_PANIC: std::sync::Once = std::sync::Once::new();
    DISARM_ON_PANIC.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            arm(false);
            report(info)
        }));
    });
    BASE.store(LIVE.load(Relaxed), Relaxed);
    PEAK.store(0, Relaxed);
    LARGEST.store(0, Relaxed);
    REFUSED.store(0, Relaxed);
    arm(true);
    let r = f();
    arm(false);
    let refused = REFUSED.load(Relaxed);
    assert!(
        refused == 0,
        "an allocation of {refused} bytes was refused: the bound is {LIMIT} bytes"
    );
    let usage = Usage {
        peak_live: PEAK.load(Relaxed),
        largest: LARGEST.load(Relaxed),
    };
    (r, usage)
}
