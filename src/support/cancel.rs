//! The process-wide "stop now" flag, the only one: set when SIGINT or SIGTERM arrives during a
//! run (by `exec::Interrupts`), and polled by every wait on a child process (the entry point,
//! git fetches, installers) so that it stops at once instead of running to the end.

use std::sync::atomic::{AtomicI32, Ordering};

static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The signal that asked lockstep to stop, if one did.
pub fn requested() -> Option<i32> {
    Some(SIGNAL.load(Ordering::SeqCst)).filter(|s| *s != 0)
}

/// Record that `signal` asked lockstep to stop (the first one counts).
pub fn request(signal: i32) {
    let _ = SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
}
