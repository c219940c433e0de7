//! Signals and process groups: catch SIGINT/SIGTERM for the whole run and forward them to
//! the child's group, hand the terminal to the child while it runs (as a shell does for a
//! foreground job), and end a child's group and the orphans it left when it is done.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// How often the end of a group checks whether its members are gone.
const GROUP_POLL: Duration = Duration::from_millis(20);

/// After SIGKILL, how long processes may take to disappear (uninterruptible I/O) before
/// lockstep gives up on them.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// Processes lockstep started itself and reaps itself (installers): ending a run's orphans
/// must leave them to their owner.
static OWN_CHILDREN: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// A child lockstep waits on itself, registered while it lives.
#[derive(Debug)]
pub struct OwnChild(i32);

impl OwnChild {
    /// Register `pid`.
    pub fn register(pid: i32) -> OwnChild {
        OWN_CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
        OwnChild(pid)
    }
}

impl Drop for OwnChild {
    fn drop(&mut self) {
        OWN_CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).retain(|p| *p != self.0);
    }
}

fn is_own_child(pid: i32) -> bool {
    OWN_CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).contains(&pid)
}

/// In a child, between fork and exec: SIGKILL when lockstep dies, and no exec at all if it
/// died already (then the child was re-parented before the death signal was set).
///
/// The death signal fires when the *thread* that forked exits: every caller waits for its
/// child on the thread that started it, and ends it before returning.
pub fn die_with_parent(parent: i32) -> io::Result<()> {
    // SAFETY: prctl and getppid are async-signal-safe.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    Ok(())
}

/// Make lockstep the reaper of its orphaned descendants, so that a daemon the entry point
/// started (with `setsid` or a double fork) is re-parented to lockstep instead of init, and
/// can be ended with the run.
pub fn become_subreaper() {
    // SAFETY: prctl has no memory-safety preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
}

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
            // lockstep's own child: ending a run's orphans leaves it alone.
            OWN_CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
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

/// Waits for a child to exit without reaping it: until it is reaped, its zombie keeps its pid
/// and the id of its group from being given to another process, so that the group can still
/// be signalled safely.
#[derive(Debug)]
pub struct ExitWatch {
    rx: mpsc::Receiver<io::Result<()>>,
}

impl ExitWatch {
    /// Watch the child `pid`.
    pub fn start(pid: i32) -> ExitWatch {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let result = loop {
                // SAFETY: waitid writes only into the zeroed siginfo it is given.
                let rc = unsafe {
                    let mut info: libc::siginfo_t = std::mem::zeroed();
                    libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT)
                };
                if rc == 0 {
                    break Ok(());
                }
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    break Err(err);
                }
            };
            let _ = tx.send(result);
        });
        ExitWatch { rx }
    }

    /// Whether the child exited within `timeout`; `Some(Err)` if it cannot be waited for.
    pub fn wait(&self, timeout: Duration) -> Option<io::Result<()>> {
        match self.rx.recv_timeout(timeout) {
            Ok(result) => Some(result),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Err(io::Error::other("the wait thread ended"))),
        }
    }
}

/// What [`end_group`] ends besides the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orphans {
    /// Only the group.
    Leave,
    /// Also every process re-parented to lockstep that it did not start itself (see
    /// [`become_subreaper`]), and their descendants as they are re-parented in turn; their
    /// zombies are reaped.
    End,
}

/// End the process group led by `leader` (a child of lockstep, running or exited but not
/// reaped), as Slurm and Docker end a job: SIGTERM, up to `grace` for every member to exit,
/// then SIGKILL. Returns the pids still alive [`KILL_WAIT`] after SIGKILL.
pub fn end_group(leader: i32, grace: Duration, orphans: Orphans) -> Vec<i32> {
    let me = std::process::id() as i32;
    let term_until = Instant::now() + grace;
    let mut kill_until = None;
    let mut termed = HashSet::new();
    let mut empty_seen = false;
    loop {
        let mut group_alive = false;
        let mut adopted = Vec::new();
        // As subreaper, lockstep is the parent of every orphaned descendant: while any member
        // of the group lives, one of them (or its ancestor) is lockstep's child, so lockstep's
        // children are all there is to look at (a few reads, not a scan of every process).
        let table = match orphans {
            Orphans::End => {
                own_children().unwrap_or_else(|| process_table().into_iter().filter(|p| p.ppid == me).collect())
            }
            Orphans::Leave => process_table(),
        };
        for p in table {
            let ours = orphans == Orphans::End && p.ppid == me && p.pid != leader && !is_own_child(p.pid);
            if p.state == b'Z' {
                if ours {
                    reap(p.pid);
                }
                continue;
            }
            group_alive |= p.pgrp == leader;
            if ours {
                adopted.push(p);
            }
        }
        if !group_alive && adopted.is_empty() {
            // A child being moved from an exiting thread of lockstep to another may be missed
            // by one look at the threads' lists, not by two.
            if orphans == Orphans::Leave || empty_seen {
                return Vec::new();
            }
            empty_seen = true;
            continue;
        }
        empty_seen = false;
        let now = Instant::now();
        let sig = if now < term_until { libc::SIGTERM } else { libc::SIGKILL };
        if sig == libc::SIGKILL && now >= *kill_until.get_or_insert(now + KILL_WAIT) {
            let mut left: Vec<i32> = adopted.iter().map(|p| p.pid).collect();
            if group_alive {
                left.extend(process_table().iter().filter(|p| p.pgrp == leader && p.state != b'Z').map(|p| p.pid));
            }
            return left;
        }
        // A SIGTERM goes once to each; SIGKILL again each round, to what appeared meanwhile.
        if group_alive && (sig == libc::SIGKILL || termed.insert(leader)) {
            kill_group(leader, sig);
        }
        for p in &adopted {
            if sig == libc::SIGKILL || termed.insert(p.pid) {
                // An adopted process is lockstep's child: its pid (and the id of a group it
                // leads) cannot be reused before lockstep reaps it.
                // SAFETY: kill has no memory-safety preconditions.
                unsafe {
                    libc::kill(p.pid, sig);
                }
                if p.pgrp == p.pid {
                    kill_group(p.pid, sig);
                }
            }
        }
        std::thread::sleep(GROUP_POLL);
    }
}

fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: waitpid writes only into `status`.
    unsafe {
        libc::waitpid(pid, &mut status, libc::WNOHANG);
    }
}

/// A process, as `/proc/PID/stat` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcStat {
    pid: i32,
    state: u8,
    ppid: i32,
    pgrp: i32,
}

/// lockstep's children, from every thread's `children` list; `None` where the kernel has none.
fn own_children() -> Option<Vec<ProcStat>> {
    let mut children = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let list = std::fs::read_to_string(task.ok()?.path().join("children")).ok()?;
        for pid in list.split_ascii_whitespace().filter_map(|p| p.parse().ok()) {
            if let Some(p) = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| parse_stat(pid, &s))
            {
                children.push(p);
            }
        }
    }
    Some(children)
}

fn process_table() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|entry| {
        let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        parse_stat(pid, &std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    })
    .collect()
}

/// The fields after the command name, which is in parentheses and may hold any byte
/// (a `)` too): the last `)` ends it.
fn parse_stat(pid: i32, stat: &str) -> Option<ProcStat> {
    let mut fields = stat[stat.rfind(')')? + 1..].split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(ProcStat { pid, state, ppid, pgrp })
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;

    use super::*;

    #[test]
    fn stat_lines_parse_past_odd_command_names() {
        let stat = "4242 (a) S 1 (b)) Z 17 4242 4242 0 -1 4194560";
        assert_eq!(parse_stat(4242, stat), Some(ProcStat { pid: 4242, state: b'Z', ppid: 17, pgrp: 4242 }));
        assert_eq!(parse_stat(1, "1 (init"), None);
    }

    #[test]
    fn a_group_is_ended_with_sigterm_and_its_exit_is_seen_before_reaping() {
        let mut child =
            std::process::Command::new("sh").args(["-c", "sleep 300 & wait"]).process_group(0).spawn().unwrap();
        let pid = child.id() as i32;
        let watch = ExitWatch::start(pid);
        assert!(watch.wait(Duration::from_millis(100)).is_none(), "sh waits for its job");
        assert!(end_group(pid, Duration::from_secs(30), Orphans::Leave).is_empty());
        assert!(matches!(watch.wait(Duration::from_secs(5)), Some(Ok(()))));
        assert!(process_table().iter().all(|p| p.pgrp != pid || p.state == b'Z'), "the group is gone");
        let status = child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGTERM));
    }

    #[test]
    fn a_member_that_ignores_sigterm_gets_sigkill_after_the_grace() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 300 & echo ready; wait"])
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let mut line = String::new();
        io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(end_group(pid, Duration::from_millis(300), Orphans::Leave).is_empty());
        let status = child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL));
    }
}
