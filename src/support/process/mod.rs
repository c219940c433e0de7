//! The one way lockstep runs another program (the entry point, git, the installers): explicit
//! argv and variables, a process group of its own, a death signal and the watchdog so that a
//! dying lockstep takes it along, the cancellation flag and a stall timeout while it runs, its
//! output streamed to the caller and kept (whole or its tail) for error messages, and the end
//! of its group (SIGTERM, grace, SIGKILL) before it is reaped, so that the group's id cannot
//! have been given to another process when it is signalled.
//!
//! The death signal fires when the *thread* that forked exits: a [`Child`] is waited for on
//! the thread that spawned it.

mod group;
mod terminal;
mod watchdog;

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

pub use group::{Orphans, become_subreaper, kill_group};
pub use terminal::ForegroundTty;

use super::cancel;
use group::{ExitWatch, OwnChild};
use watchdog::GuardedGroup;

/// How often a wait looks at the cancellation flag and the stall clock.
const POLL: Duration = Duration::from_millis(50);

/// How much of a stream [`Output::Tail`] and [`Output::Tee`] keep for error messages.
const TAIL_BYTES: usize = 16 * 1024;

/// After a child is reaped, how long its output pipes may stay open (held by processes it left
/// in the background, outside its group) before lockstep stops reading them.
pub const PIPE_DRAIN: Duration = Duration::from_secs(1);

/// How long the processes a child leaves behind (and a child stopped by cancellation) have
/// between SIGTERM and SIGKILL; `LOCKSTEP_KILL_GRACE` overrides it. Most processes exit at
/// once on SIGTERM (so this is rarely waited for); it is long enough to flush a file and
/// remove temporary ones, and short enough that one that ignores SIGTERM holds lockstep up
/// for little.
const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(3);

/// `LOCKSTEP_KILL_GRACE` (seconds), if set.
pub fn grace_override() -> Option<Duration> {
    std::env::var("LOCKSTEP_KILL_GRACE").ok().and_then(|v| v.parse().ok()).map(Duration::from_secs)
}

/// The grace of leftovers and stopped children: `LOCKSTEP_KILL_GRACE` seconds, else 3 s.
pub fn stop_grace() -> Duration {
    grace_override().unwrap_or(DEFAULT_STOP_GRACE)
}

/// Where a child's stdout or stderr goes (it reads its stdin from /dev/null unless
/// [`Command::stdin_inherit`]).
pub enum Output {
    /// Kept whole, in [`Finished`].
    Capture,
    /// Only its last 16 KiB are kept.
    Tail,
    /// Copied into this writer as it comes (until the writer fails), its last 16 KiB kept.
    Tee(Box<dyn Write + Send>),
}

/// Why a run of a child did not come to its exit.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// It could not be started.
    #[error("cannot start: {0}")]
    Spawn(#[source] io::Error),
    /// It could not be waited for.
    #[error("cannot wait for it: {0}")]
    Wait(#[source] io::Error),
    /// The cancellation flag was set (SIGINT or SIGTERM to lockstep).
    #[error("interrupted")]
    Cancelled,
    /// It printed nothing for this long.
    #[error("no output for {} s", .0.as_secs())]
    Stalled(Duration),
}

/// What a wait does when the cancellation flag is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCancel {
    /// Stop waiting: [`ProcessError::Cancelled`] (the caller ends the group).
    Stop,
    /// The signal was forwarded to the group by whoever set the flag: give the group this long
    /// to exit, then SIGKILL it, and wait on for the exit.
    KillAfter(Duration),
    /// Wait on: a short command that acts on the stop itself (a scheduler's cancel).
    Ignore,
}

/// A child that exited and was reaped.
#[derive(Debug)]
pub struct Finished {
    /// How it exited.
    pub status: ExitStatus,
    /// Its stdout (with stderr when merged), whole or its tail as [`Output`] asked.
    pub stdout: Vec<u8>,
    /// Its stderr, whole or its tail as [`Output`] asked.
    pub stderr: Vec<u8>,
}

/// A program to run: explicit argv, the caller's environment plus the variables given.
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    stdin_inherit: bool,
    stdout: Output,
    /// `None`: into stdout's pipe.
    stderr: Option<Output>,
    terminal: Option<ForegroundTty>,
    ignore_terminal_reads: bool,
    guarded: bool,
}

impl Command {
    /// `program args...`, output captured, stdin from /dev/null, ended by the watchdog if
    /// lockstep dies.
    pub fn new(program: impl AsRef<OsStr>, args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Command {
        Command {
            program: program.as_ref().to_os_string(),
            args: args.into_iter().map(|a| a.as_ref().to_os_string()).collect(),
            cwd: None,
            env: Vec::new(),
            stdin_inherit: false,
            stdout: Output::Capture,
            stderr: Some(Output::Capture),
            terminal: None,
            ignore_terminal_reads: false,
            guarded: true,
        }
    }

    /// Run in `dir`.
    pub fn dir(mut self, dir: &Path) -> Command {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// Set a variable.
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Command {
        self.env.push((name.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Set variables.
    pub fn envs<K: AsRef<OsStr>, V: AsRef<OsStr>>(self, vars: impl IntoIterator<Item = (K, V)>) -> Command {
        vars.into_iter().fold(self, |cmd, (k, v)| cmd.env(k, v))
    }

    /// Read lockstep's stdin.
    pub fn stdin_inherit(mut self) -> Command {
        self.stdin_inherit = true;
        self
    }

    /// Where stdout goes.
    pub fn stdout(mut self, output: Output) -> Command {
        self.stdout = output;
        self
    }

    /// Where stderr goes.
    pub fn stderr(mut self, output: Output) -> Command {
        self.stderr = Some(output);
        self
    }

    /// Send stderr into stdout's pipe, interleaved as written.
    pub fn merge_stderr(mut self) -> Command {
        self.stderr = None;
        self
    }

    /// Run in the foreground of this terminal (its group becomes the terminal's foreground
    /// group until it exits).
    pub fn foreground(mut self, terminal: Option<ForegroundTty>) -> Command {
        self.terminal = terminal;
        self
    }

    /// Ignore SIGTTIN: a read of the terminal from the background group fails at once instead
    /// of stopping the child.
    pub fn ignore_terminal_reads(mut self) -> Command {
        self.ignore_terminal_reads = true;
        self
    }

    /// Whether the watchdog ends the group if lockstep dies (by default it does).
    pub fn guarded(mut self, guarded: bool) -> Command {
        self.guarded = guarded;
        self
    }

    /// Start it, leading a process group of its own.
    pub fn spawn(self) -> io::Result<Child> {
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(&self.args).envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd.stdin(if self.stdin_inherit { Stdio::inherit() } else { Stdio::null() });
        let (out_read, out_write) = io::pipe()?;
        let err_pipe = match self.stderr {
            None => {
                cmd.stderr(out_write.try_clone()?);
                None
            }
            Some(output) => {
                let (read, write) = io::pipe()?;
                cmd.stderr(write);
                Some((read, output))
            }
        };
        cmd.stdout(out_write);
        let parent = std::process::id() as i32;
        let (terminal, ignore_ttin) = (self.terminal, self.ignore_terminal_reads);
        if terminal.is_none() {
            cmd.process_group(0);
        }
        // SAFETY: between fork and exec the closure calls only async-signal-safe functions
        // (setpgid, signal, tcsetpgrp, prctl, getppid).
        unsafe {
            cmd.pre_exec(move || {
                if let Some(terminal) = terminal {
                    terminal.enter_child()?;
                }
                if ignore_ttin {
                    libc::signal(libc::SIGTTIN, libc::SIG_IGN);
                }
                group::die_with_parent(parent)
            });
        }
        let child = cmd.spawn()?;
        // The command holds the pipes' write ends: they must be gone now, or EOF never comes.
        drop(cmd);
        let pgid = child.id() as i32;
        let own = OwnChild::register(pgid);
        let guard = self.guarded.then(|| GuardedGroup::register(pgid));
        if let Some(terminal) = terminal {
            terminal.give_to(pgid);
        }
        let started = Instant::now();
        let activity = Arc::new(AtomicU64::new(0));
        let (done_tx, done) = mpsc::channel();
        let pump = |read, output| Pump::start(read, output, started, activity.clone(), done_tx.clone());
        let stdout = pump(out_read, self.stdout);
        let stderr = err_pipe.map(|(read, output)| pump(read, output));
        Ok(Child {
            watch: ExitWatch::start(pgid),
            child,
            pgid,
            terminal,
            guard,
            own,
            stdout,
            stderr,
            done,
            started,
            activity,
        })
    }

    /// Run it to its end: wait for its exit (stopped by the cancellation flag, or after `stall`
    /// without output), end its group with `grace`, reap it.
    pub fn run(self, grace: Duration, stall: Option<Duration>) -> Result<Finished, ProcessError> {
        self.run_with(OnCancel::Stop, grace, stall)
    }

    /// [`Command::run`], doing `on_cancel` when the cancellation flag is set.
    pub fn run_with(
        self,
        on_cancel: OnCancel,
        grace: Duration,
        stall: Option<Duration>,
    ) -> Result<Finished, ProcessError> {
        let mut child = self.spawn().map_err(ProcessError::Spawn)?;
        let waited = child.wait_exit(on_cancel, stall);
        child.end_group(grace, Orphans::Leave);
        let finished = child.finish()?;
        waited.map(|()| finished)
    }
}

/// A running child, leading its process group.
pub struct Child {
    child: std::process::Child,
    pgid: i32,
    terminal: Option<ForegroundTty>,
    watch: ExitWatch,
    guard: Option<GuardedGroup>,
    own: OwnChild,
    stdout: Pump,
    stderr: Option<Pump>,
    done: mpsc::Receiver<()>,
    started: Instant,
    activity: Arc<AtomicU64>,
}

impl Child {
    /// The id of its process group (its pid).
    pub fn pgid(&self) -> i32 {
        self.pgid
    }

    /// Send `sig` to its group.
    pub fn signal_group(&self, sig: i32) {
        kill_group(self.pgid, sig);
    }

    /// Wait until it exits, without reaping it; then the terminal, if it had it, is taken back.
    pub fn wait_exit(&mut self, on_cancel: OnCancel, stall: Option<Duration>) -> Result<(), ProcessError> {
        let result = self.poll_exit(on_cancel, stall);
        if let Some(terminal) = self.terminal.take() {
            terminal.take_back();
        }
        result
    }

    fn poll_exit(&self, on_cancel: OnCancel, stall: Option<Duration>) -> Result<(), ProcessError> {
        let mut kill_at = None;
        loop {
            match self.watch.wait(POLL) {
                Some(Ok(())) => return Ok(()),
                Some(Err(e)) => return Err(ProcessError::Wait(e)),
                None => {}
            }
            if cancel::requested().is_some() {
                match on_cancel {
                    OnCancel::Ignore => {}
                    OnCancel::Stop => return Err(ProcessError::Cancelled),
                    OnCancel::KillAfter(grace) => {
                        if Instant::now() >= *kill_at.get_or_insert_with(|| Instant::now() + grace) {
                            self.signal_group(libc::SIGKILL);
                        }
                    }
                }
            }
            if let Some(stall) = stall {
                let idle =
                    (self.started.elapsed().as_millis() as u64).saturating_sub(self.activity.load(Ordering::Relaxed));
                if idle > stall.as_millis() as u64 {
                    return Err(ProcessError::Stalled(stall));
                }
            }
        }
    }

    /// End its group (and with [`Orphans::End`] the orphans it left): SIGTERM, up to `grace`,
    /// SIGKILL. Returns the pids still alive after SIGKILL. The child itself may still run (a
    /// stopped wait) or have exited; it is not reaped.
    pub fn end_group(&self, grace: Duration, orphans: Orphans) -> Vec<i32> {
        group::end_group(self.pgid, grace, orphans)
    }

    /// Reap it, and collect its output (waiting up to [`PIPE_DRAIN`] for pipes still open).
    pub fn finish(mut self) -> Result<Finished, ProcessError> {
        drop(self.guard.take());
        let status = self.child.wait().map_err(ProcessError::Wait)?;
        drop(self.own);
        let until = Instant::now() + PIPE_DRAIN;
        for _ in 0..1 + usize::from(self.stderr.is_some()) {
            if self.done.recv_timeout(until.saturating_duration_since(Instant::now())).is_err() {
                break;
            }
        }
        Ok(Finished { status, stdout: self.stdout.take(), stderr: self.stderr.map(Pump::take).unwrap_or_default() })
    }
}

/// A thread copying one of the child's pipes until EOF.
struct Pump {
    kept: Arc<Mutex<Vec<u8>>>,
}

impl Pump {
    fn start(
        mut from: io::PipeReader,
        output: Output,
        started: Instant,
        activity: Arc<AtomicU64>,
        done: mpsc::Sender<()>,
    ) -> Pump {
        let (mut sink, keep) = match output {
            Output::Capture => (None, usize::MAX),
            Output::Tail => (None, TAIL_BYTES),
            Output::Tee(sink) => (Some(sink), TAIL_BYTES),
        };
        let kept = Arc::new(Mutex::new(Vec::new()));
        let pump = Pump { kept: kept.clone() };
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                activity.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                let chunk = &buf[..n];
                if let Some(writer) = &mut sink
                    && writer.write_all(chunk).and_then(|()| writer.flush()).is_err()
                {
                    sink = None;
                }
                let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                kept.extend_from_slice(chunk);
                let excess = kept.len().saturating_sub(keep);
                kept.drain(..excess);
            }
            drop(sink);
            let _ = done.send(());
        });
        pump
    }

    fn take(self) -> Vec<u8> {
        std::mem::take(&mut *self.kept.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
    }

    #[test]
    fn output_is_captured_or_merged_and_the_tail_kept() {
        let out = Command::new("sh", ["-c", "printf out; printf err >&2"]).run(Duration::ZERO, None).unwrap();
        assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"out"[..], &b"err"[..]));
        let merged = Command::new("sh", ["-c", "printf a; printf b >&2; printf c"])
            .merge_stderr()
            .run(Duration::ZERO, None)
            .unwrap();
        assert_eq!(merged.stdout, b"abc");
        let long = Command::new("sh", ["-c", "head -c 100000 /dev/zero; printf end"])
            .stdout(Output::Tail)
            .run(Duration::ZERO, None)
            .unwrap();
        assert_eq!(long.stdout.len(), TAIL_BYTES);
        assert!(long.stdout.ends_with(b"end"));
    }

    #[test]
    fn a_silent_child_is_stopped_at_the_stall_timeout_with_its_group() {
        let (tx, rx) = mpsc::channel();
        struct Lines(mpsc::Sender<Vec<u8>>);
        impl Write for Lines {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let _ = self.0.send(buf.to_vec());
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let err = Command::new("sh", ["-c", "sleep 300 >/dev/null & echo $!; wait"])
            .stdout(Output::Tee(Box::new(Lines(tx))))
            .run(Duration::from_secs(5), Some(Duration::from_millis(300)))
            .unwrap_err();
        assert!(matches!(err, ProcessError::Stalled(_)), "{err}");
        let pid: i32 = String::from_utf8(rx.recv().unwrap()).unwrap().trim().parse().unwrap();
        assert!(!alive(pid), "the child's background job {pid} is gone");
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let err = Command::new("/nonexistent/lockstep-test", [""; 0]).run(Duration::ZERO, None).unwrap_err();
        assert!(matches!(err, ProcessError::Spawn(_)), "{err}");
    }
}
