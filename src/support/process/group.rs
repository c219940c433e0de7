//! Process groups: signal them, end them (SIGTERM, grace, SIGKILL) with the orphans they left,
//! and wait for a child's exit without reaping it.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

/// Send `sig` to every process of a group; a group that is already gone is fine.
pub fn kill_group(group: i32, sig: i32) {
    // SAFETY: killpg has no memory-safety preconditions.
    unsafe {
        libc::killpg(group, sig);
    }
}

/// How often the end of a group checks whether its members are gone.
const GROUP_POLL: Duration = Duration::from_millis(20);

/// After SIGKILL, how long processes may take to disappear (uninterruptible I/O) before
/// lockstep gives up on them.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// Processes lockstep started itself and reaps itself (every [`super::Child`], the watchdog):
/// ending a run's orphans must leave them to their owner.
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

/// Waits for a child to exit without reaping it: until it is reaped, its zombie keeps its pid
/// and the id of its group from being given to another process, so that the group can still
/// be signalled safely.
///
/// A pidfd (Linux 5.3 and later) is polled on the waiting thread; only where the kernel has
/// none does a thread block in `waitid` for it.
#[derive(Debug)]
pub struct ExitWatch(Watch);

#[derive(Debug)]
enum Watch {
    Pidfd(OwnedFd),
    Thread(mpsc::Receiver<io::Result<()>>),
}

impl ExitWatch {
    /// Watch the child `pid`.
    pub fn start(pid: i32) -> ExitWatch {
        // SAFETY: pidfd_open takes a pid and flags; a descriptor it returns is owned here.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd >= 0 {
            // SAFETY: a fresh descriptor from pidfd_open, owned by nothing else.
            return ExitWatch(Watch::Pidfd(unsafe { OwnedFd::from_raw_fd(fd as i32) }));
        }
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
        ExitWatch(Watch::Thread(rx))
    }

    /// Whether the child exited within `timeout`; `Some(Err)` if it cannot be waited for.
    pub fn wait(&self, timeout: Duration) -> Option<io::Result<()>> {
        match &self.0 {
            Watch::Pidfd(fd) => {
                // A pidfd turns readable when its process exits (before it is reaped).
                let mut poll = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
                // SAFETY: polls one live descriptor through a pollfd on this stack.
                match unsafe { libc::poll(&mut poll, 1, ms) } {
                    0 => None,
                    n if n > 0 => Some(Ok(())),
                    _ => {
                        let err = io::Error::last_os_error();
                        (err.kind() != io::ErrorKind::Interrupted).then_some(Err(err))
                    }
                }
            }
            Watch::Thread(rx) => match rx.recv_timeout(timeout) {
                Ok(result) => Some(result),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => Some(Err(io::Error::other("the wait thread ended"))),
            },
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
    let mut listed = false;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        // A thread that ended since the directory was read has no list any more; its children
        // went to another thread, which [`end_group`]'s second look reads again. Only when no
        // thread has a list at all does the kernel keep none (then the whole table is read).
        let Ok(list) = std::fs::read_to_string(task.path().join("children")) else { continue };
        listed = true;
        children.extend(list.split_ascii_whitespace().filter_map(|p| p.parse().ok()).filter_map(child_stat));
    }
    listed.then_some(children)
}

/// One of lockstep's children as [`ProcStat`], from two system calls instead of a read of its
/// `/proc/PID/stat` (whose entry the kernel would then also have to drop when it is reaped):
/// its group from `getpgid`, whether it is a zombie from a `waitid` that reaps nothing.
fn child_stat(pid: i32) -> Option<ProcStat> {
    // SAFETY: getpgid and waitid take plain values; waitid writes only into the zeroed
    // siginfo it is given, and WNOWAIT leaves the child to be reaped by its owner.
    unsafe {
        let pgrp = libc::getpgid(pid);
        if pgrp < 0 {
            return None;
        }
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT);
        let zombie = rc == 0 && info.si_pid() != 0;
        Some(ProcStat { pid, state: if zombie { b'Z' } else { b'S' }, ppid: std::process::id() as i32, pgrp })
    }
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
    fn threads_that_end_meanwhile_do_not_hide_the_children_lists() {
        // Each look at the lists used to give up (and read the whole process table) when one
        // thread ended between the listing of the threads and the read of its list.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churn = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let short: Vec<_> = (0..8)
                        .map(|i| std::thread::spawn(move || std::thread::sleep(Duration::from_micros(50 * i))))
                        .collect();
                    short.into_iter().for_each(|t| t.join().unwrap());
                }
            })
        };
        let missing = (0..2000).filter(|_| own_children().is_none()).count();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        churn.join().unwrap();
        assert_eq!(missing, 0, "looks that fell back to the whole process table");
    }

    #[test]
    fn children_are_told_apart_without_their_proc_stat() {
        let mut live = std::process::Command::new("sleep").arg("300").process_group(0).spawn().unwrap();
        let mut dead = std::process::Command::new("true").process_group(0).spawn().unwrap();
        let (live_pid, dead_pid) = (live.id() as i32, dead.id() as i32);
        assert!(matches!(ExitWatch::start(dead_pid).wait(Duration::from_secs(10)), Some(Ok(()))));
        let children = own_children().expect("this kernel lists children");
        let find = |pid| *children.iter().find(|p| p.pid == pid).expect("a child is listed");
        let me = std::process::id() as i32;
        assert_eq!(find(dead_pid), ProcStat { pid: dead_pid, state: b'Z', ppid: me, pgrp: dead_pid });
        let alive = find(live_pid);
        assert_eq!((alive.ppid, alive.pgrp), (me, live_pid));
        assert_ne!(alive.state, b'Z');
        live.kill().unwrap();
        live.wait().unwrap();
        dead.wait().unwrap();
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
