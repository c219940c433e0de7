//! Signals: SIGINT and SIGTERM are caught for the whole run, recorded in the one cancellation
//! flag ([`crate::support::cancel`]) and forwarded to the process groups of the running
//! children (several during a sweep).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use signal_hook::SigId;
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::support::cancel;
use crate::support::process::kill_group;

/// How many children's groups signals can be forwarded to at once: more than any `--jobs`
/// a sweep runs on one machine.
const GROUP_SLOTS: usize = 256;

/// The groups signals go to: a fixed array of atomics, so that the signal handler can read
/// it without a lock or an allocation. 0 is a free slot.
type Groups = Arc<[AtomicI32; GROUP_SLOTS]>;

/// SIGINT and SIGTERM, caught from the start of a run to its end.
///
/// The first one received is recorded in the cancellation flag (the run is then KILLED) and
/// every one is forwarded to the process groups of the running children, if any. Both happen
/// in the signal handler itself (atomics and `killpg`, all async-signal-safe): no thread waits
/// for signals, so a run does not pay for starting one.
#[derive(Debug)]
pub struct Interrupts {
    groups: Groups,
    ids: Vec<SigId>,
}

impl Interrupts {
    /// Start catching SIGINT and SIGTERM.
    pub fn install() -> io::Result<Interrupts> {
        let groups: Groups = Arc::new(std::array::from_fn(|_| AtomicI32::new(0)));
        let mut interrupts = Interrupts { groups, ids: Vec::new() };
        for sig in [SIGINT, SIGTERM] {
            let groups = interrupts.groups.clone();
            // SAFETY: the action only does atomic operations and killpg, all
            // async-signal-safe; it allocates nothing and takes no lock.
            let id = unsafe {
                signal_hook::low_level::register(sig, move || {
                    cancel::request(sig);
                    for slot in groups.iter() {
                        let group = slot.load(Ordering::SeqCst);
                        if group > 0 {
                            kill_group(group, sig);
                        }
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

    /// Forward signals to this process group too, from now on. A signal that came before the
    /// group existed is delivered to it at once.
    pub fn forward_to(&self, group: i32) {
        if group <= 0 {
            return;
        }
        let taken =
            self.groups.iter().any(|slot| slot.compare_exchange(0, group, Ordering::SeqCst, Ordering::SeqCst).is_ok());
        // With every slot taken the group still ends with the run (the cancellation flag
        // stops the waits), only later than a forwarded signal would end it.
        debug_assert!(taken, "more than {GROUP_SLOTS} children at once");
        if let Some(sig) = self.received() {
            kill_group(group, sig);
        }
    }

    /// Stop forwarding signals to this process group (it has exited).
    pub fn stop_forwarding(&self, group: i32) {
        for slot in self.groups.iter() {
            let _ = slot.compare_exchange(group, 0, Ordering::SeqCst, Ordering::SeqCst);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_take_and_free_slots() {
        let interrupts = Interrupts { groups: Arc::new(std::array::from_fn(|_| AtomicI32::new(0))), ids: Vec::new() };
        interrupts.forward_to(0);
        interrupts.forward_to(41);
        interrupts.forward_to(42);
        let held = |g: i32| interrupts.groups.iter().filter(|s| s.load(Ordering::SeqCst) == g).count();
        assert_eq!((held(41), held(42), held(0)), (1, 1, GROUP_SLOTS - 2));
        interrupts.stop_forwarding(41);
        assert_eq!((held(41), held(42)), (0, 1));
    }
}
