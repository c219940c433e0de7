//! Signals: SIGINT and SIGTERM are caught for the whole run, recorded in the one cancellation
//! flag ([`crate::support::cancel`]) and forwarded to the process group of the running child.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread::JoinHandle;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

use crate::support::cancel;
use crate::support::process::kill_group;

/// SIGINT and SIGTERM, caught from the start of a run to its end.
///
/// The first one received is recorded in the cancellation flag (the run is then KILLED) and
/// every one is forwarded to the process group of the running child, if any.
#[derive(Debug)]
pub struct Interrupts {
    child_group: Arc<AtomicI32>,
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Interrupts {
    /// Start catching SIGINT and SIGTERM.
    pub fn install() -> io::Result<Interrupts> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let handle = signals.handle();
        let child_group = Arc::new(AtomicI32::new(0));
        let thread = {
            let child_group = child_group.clone();
            std::thread::spawn(move || {
                for sig in signals.forever() {
                    cancel::request(sig);
                    let group = child_group.load(Ordering::SeqCst);
                    if group > 0 {
                        kill_group(group, sig);
                    }
                }
            })
        };
        Ok(Interrupts { child_group, handle, thread: Some(thread) })
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
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
