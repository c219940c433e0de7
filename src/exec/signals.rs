//! Signals: SIGINT and SIGTERM are caught for the whole run, recorded in the one cancellation
//! flag ([`crate::support::cancel`]) and forwarded to the process groups of the running
//! children (several during a sweep).

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

use crate::support::cancel;
use crate::support::process::kill_group;

/// SIGINT and SIGTERM, caught from the start of a run to its end.
///
/// The first one received is recorded in the cancellation flag (the run is then KILLED) and
/// every one is forwarded to the process groups of the running children, if any.
#[derive(Debug)]
pub struct Interrupts {
    child_groups: Arc<Mutex<Vec<i32>>>,
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Interrupts {
    /// Start catching SIGINT and SIGTERM.
    pub fn install() -> io::Result<Interrupts> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let handle = signals.handle();
        let child_groups = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let child_groups = child_groups.clone();
            std::thread::spawn(move || {
                for sig in signals.forever() {
                    cancel::request(sig);
                    for &group in child_groups.lock().unwrap_or_else(PoisonError::into_inner).iter() {
                        kill_group(group, sig);
                    }
                }
            })
        };
        Ok(Interrupts { child_groups, handle, thread: Some(thread) })
    }

    /// The first signal received, if any.
    pub fn received(&self) -> Option<i32> {
        cancel::requested()
    }

    /// Forward signals to this process group too, from now on. A signal that came before the
    /// group existed is delivered to it at once.
    pub fn forward_to(&self, group: i32) {
        let mut groups = self.child_groups.lock().unwrap_or_else(PoisonError::into_inner);
        groups.push(group);
        if let Some(sig) = self.received() {
            kill_group(group, sig);
        }
    }

    /// Stop forwarding signals to this process group (it has exited).
    pub fn stop_forwarding(&self, group: i32) {
        self.child_groups.lock().unwrap_or_else(PoisonError::into_inner).retain(|g| *g != group);
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
