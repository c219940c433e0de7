//! The process-wide "stop now" flag: set when SIGINT or SIGTERM arrives during a run (by
//! `exec::Interrupts`), polled by long waits on other programs (git fetches, installers) so
//! that they stop at once instead of running to the end.

use std::sync::atomic::{AtomicI32, Ordering};

static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The signal that asked lockstep to stop, if one did.
pub fn requested() -> Option<i32> {
    Some(SIGNAL.load(Ordering::SeqCst)).filter(|s| *s != 0)
}

/// Record that `signal` asked lockstep to stop (the first one counts).
pub(crate) fn request(signal: i32) {
    let _ = SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
}
