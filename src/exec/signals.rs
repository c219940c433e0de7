//! Signals: catch SIGINT/SIGTERM for the whole run and forward them to the child's group,
//! and hand the terminal to the child while it runs, as a shell does for a foreground job.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread::JoinHandle;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

/// SIGINT and SIGTERM, caught from the start of a run to its end.
///
/// The first one received is remembered (the run is then KILLED) and every one is
/// forwarded to the process group of the running child, if any.
#[derive(Debug)]
pub struct Interrupts {
    received: Arc<AtomicI32>,
    child_group: Arc<AtomicI32>,
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Interrupts {
    /// Start catching SIGINT and SIGTERM.
    pub fn install() -> io::Result<Interrupts> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let handle = signals.handle();
        let received = Arc::new(AtomicI32::new(0));
        let child_group = Arc::new(AtomicI32::new(0));
        let thread = {
            let (received, child_group) = (received.clone(), child_group.clone());
            std::thread::spawn(move || {
                for sig in signals.forever() {
                    let _ = received.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
                    crate::cancel::request(sig);
                    let group = child_group.load(Ordering::SeqCst);
                    if group > 0 {
                        kill_group(group, sig);
                    }
                }
            })
        };
        Ok(Interrupts { received, child_group, handle, thread: Some(thread) })
    }

    /// The first signal received, if any.
    pub fn received(&self) -> Option<i32> {
        Some(self.received.load(Ordering::SeqCst)).filter(|s| *s != 0)
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

/// Send `sig` to every process of a group; a group that is already gone is fine.
pub fn kill_group(group: i32, sig: i32) {
    // SAFETY: killpg has no memory-safety preconditions.
    unsafe {
        libc::killpg(group, sig);
    }
}

/// The controlling terminal on stdin, when lockstep runs in its foreground.
///
/// The child gets its own process group (so that signals can be forwarded to all it
/// starts); on a terminal that group must also become the foreground one, or a child that
/// reads the terminal (a debugger prompt) would be stopped with SIGTTIN.
#[derive(Debug, Clone, Copy)]
pub struct ForegroundTty {
    fd: RawFd,
}

impl ForegroundTty {
    /// The terminal, if stdin is one and lockstep's group is in its foreground.
    pub fn detect() -> Option<ForegroundTty> {
        let fd = libc::STDIN_FILENO;
        // SAFETY: plain queries on a file descriptor.
        unsafe { (libc::isatty(fd) == 1 && libc::tcgetpgrp(fd) == libc::getpgrp()).then_some(ForegroundTty { fd }) }
    }

    /// In the child, between fork and exec: a new group, made the foreground one.
    pub fn enter_child(self) -> io::Result<()> {
        // SAFETY: async-signal-safe calls only.
        unsafe {
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            with_sigttou_ignored(|| libc::tcsetpgrp(self.fd, libc::getpid()));
        }
        Ok(())
    }

    /// In lockstep: give the terminal to the child's group (the child does the same; whichever
    /// runs first wins the race harmlessly).
    pub fn give_to(self, group: i32) {
        // SAFETY: plain terminal call.
        unsafe {
            with_sigttou_ignored(|| libc::tcsetpgrp(self.fd, group));
        }
    }

    /// Take the terminal back after the child ended.
    pub fn take_back(self) {
        // SAFETY: plain terminal call.
        unsafe {
            with_sigttou_ignored(|| libc::tcsetpgrp(self.fd, libc::getpgrp()));
        }
    }
}

/// A background group calling tcsetpgrp gets SIGTTOU unless it ignores it.
unsafe fn with_sigttou_ignored(f: impl FnOnce() -> libc::c_int) {
    // SAFETY: signal() with SIG_IGN and restoring the previous disposition.
    unsafe {
        let previous = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        f();
        libc::signal(libc::SIGTTOU, previous);
    }
}
