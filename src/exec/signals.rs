//! Signals: SIGINT and SIGTERM are caught for the whole run, recorded in the one cancellation
//! flag ([`crate::support::cancel`]) and forwarded to the process group of the running child.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use signal_hook::SigId;
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::support::cancel;
use crate::support::process::kill_group;

/// SIGINT and SIGTERM, caught from the start of a run to its end.
///
/// The first one received is recorded in the cancellation flag (the run is then KILLED) and
/// every one is forwarded to the process group of the running child, if any. Both happen in
/// the signal handler itself (an atomic store and `killpg`, both async-signal-safe): no thread
/// waits for signals, so a run does not pay for starting one.
#[derive(Debug)]
pub struct Interrupts {
    child_group: Arc<AtomicI32>,
    ids: Vec<SigId>,
}

impl Interrupts {
    /// Start catching SIGINT and SIGTERM.
    pub fn install() -> io::Result<Interrupts> {
        let child_group = Arc::new(AtomicI32::new(0));
        let mut interrupts = Interrupts { child_group, ids: Vec::new() };
        for sig in [SIGINT, SIGTERM] {
            let group = interrupts.child_group.clone();
            // SAFETY: the action only does an atomic compare-and-swap, an atomic load and
            // killpg, all async-signal-safe; it allocates nothing and takes no lock.
            let id = unsafe {
                signal_hook::low_level::register(sig, move || {
                    cancel::request(sig);
                    let group = group.load(Ordering::SeqCst);
                    if group > 0 {
                        kill_group(group, sig);
                    }
                })
            }?;
            interrupts.ids.push(id);
        }
        Ok(interrupts)
    }

    /// The first signal received, if any.
    pub fn received(&self) -> Option<i32> {
        cancel::requested()
    }

    /// Forward signals to this process group from now on (0: to none). A signal that came
    /// before the group existed is delivered to it at once.
    pub fn forward_to(&self, group: i32) {
        self.child_group.store(group, Ordering::SeqCst);
        if let (Some(sig), true) = (self.received(), group > 0) {
            kill_group(group, sig);
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
