//! The terminal a child runs in the foreground of, as a shell's foreground job does.

use std::io;
use std::os::fd::RawFd;

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
