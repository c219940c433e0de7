//! The watchdog process that ends lockstep's process groups when lockstep dies.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::group::OwnChild;

/// The watchdog: a process forked from lockstep that ends the process groups lockstep has
/// running (an entry point's background jobs, an installer's helpers) when lockstep dies, even
/// by SIGKILL, which the parent-death signal of a group's leader alone would leave behind. It
/// learns the groups over a socket (a pgid to add, its negation to remove) and acts when the
/// socket closes, which happens only when lockstep exits.
static WATCHDOG: OnceLock<Option<Mutex<OwnedFd>>> = OnceLock::new();

/// A process group the watchdog ends if lockstep dies while it is registered.
#[derive(Debug)]
pub struct GuardedGroup(i32);

impl GuardedGroup {
    /// Register the group `pgid`.
    pub fn register(pgid: i32) -> GuardedGroup {
        tell_watchdog(pgid);
        GuardedGroup(pgid)
    }
}

impl Drop for GuardedGroup {
    fn drop(&mut self) {
        tell_watchdog(-self.0);
    }
}

fn tell_watchdog(message: i32) {
    let Some(socket) = WATCHDOG.get_or_init(|| start_watchdog(super::stop_grace()).map(Mutex::new)) else { return };
    let socket = socket.lock().unwrap_or_else(|e| e.into_inner());
    let bytes = message.to_ne_bytes();
    // A watchdog that is gone is no reason to fail or to die of SIGPIPE.
    // SAFETY: sends 4 bytes from a live buffer on an open socket.
    unsafe {
        libc::send(socket.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL);
    }
}

fn start_watchdog(grace: Duration) -> Option<OwnedFd> {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into `fds`, which are then owned here.
    let (ours, theirs) = unsafe {
        if libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) != 0 {
            return None;
        }
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    // SAFETY: the child runs only async-signal-safe code (see `watch`), as a forked child of a
    // multi-threaded process must.
    match unsafe { libc::fork() } {
        -1 => None,
        0 => unsafe { watch(theirs.as_raw_fd(), grace) },
        pid => {
            drop(theirs);
            // lockstep's own child for as long as lockstep lives: ending a run's orphans leaves it alone.
            std::mem::forget(OwnChild::register(pid));
            Some(ours)
        }
    }
}

/// The watchdog's life, in the forked child: no allocation, no locks, async-signal-safe calls
/// only. It leaves lockstep's process group (a signal to that group is not for it), lets go
/// of every descriptor but its socket (it must not hold a pipe open), and ignores the signals
/// that stop lockstep.
unsafe fn watch(socket: RawFd, grace: Duration) -> ! {
    const MAX_GROUPS: usize = 64;
    // SAFETY: async-signal-safe calls on descriptors and buffers of this function.
    unsafe {
        libc::setpgid(0, 0);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_IGN);
        }
        // Out of the way first: the socket may be one of 0..3.
        let socket = libc::fcntl(socket, libc::F_DUPFD, 10);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        libc::dup2(socket, 3);
        if libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) != 0 {
            for fd in 4..4096 {
                libc::close(fd);
            }
        }
        let mut groups = [0i32; MAX_GROUPS];
        let mut buf = [0u8; 4];
        let mut have = 0;
        loop {
            let n = libc::read(3, buf.as_mut_ptr().add(have).cast(), buf.len() - have);
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            if n <= 0 {
                break;
            }
            have += n as usize;
            if have < buf.len() {
                continue;
            }
            have = 0;
            let message = i32::from_ne_bytes(buf);
            let (find, put) = if message > 0 { (0, message) } else { (-message, 0) };
            if let Some(slot) = groups.iter_mut().find(|g| **g == find) {
                *slot = put;
            }
        }
        let mut any = false;
        for &group in groups.iter().filter(|g| **g > 0) {
            libc::killpg(group, libc::SIGTERM);
            any = true;
        }
        if any {
            let pause = libc::timespec { tv_sec: grace.as_secs() as libc::time_t, tv_nsec: grace.subsec_nanos() as _ };
            libc::nanosleep(&pause, std::ptr::null_mut());
            for &group in groups.iter().filter(|g| **g > 0) {
                libc::killpg(group, libc::SIGKILL);
            }
        }
        libc::_exit(0)
    }
}
