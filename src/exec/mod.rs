//! Execution: run an [`Invocation`] as its own process group (or as a container), stream its
//! output live into the terminal and the run's log files, forward SIGINT/SIGTERM, end what it
//! left running, and report how it ended.

pub mod container;
mod signals;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::env::{Invocation, Process};
use crate::fsutil;
use crate::support::docker_engine::EngineError;

pub use signals::{ExitWatch, GuardedGroup, Interrupts, Orphans, OwnChild, die_with_parent, end_group, kill_group};

/// How long a process group has to exit after a forwarded SIGINT/SIGTERM before SIGKILL;
/// `LOCKSTEP_KILL_GRACE` (seconds) overrides it.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// How long the processes a run leaves behind (and an installer stopped by SIGINT/SIGTERM)
/// have between SIGTERM and SIGKILL; `LOCKSTEP_KILL_GRACE` overrides it. Shorter than
/// [`DEFAULT_GRACE`]: the run's result is in, and most processes exit at once on SIGTERM (so
/// this is rarely waited for); it is long enough to flush a file and remove temporary ones,
/// and short enough that one that ignores SIGTERM holds lockstep up for little.
const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(3);

/// After the entry point exits, how long its output pipes may stay open (held by processes
/// it left in the background) before lockstep stops reading them.
const PIPE_DRAIN: Duration = Duration::from_secs(1);

/// Errors of running the entry point.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A log file or pipe could not be made.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The container could not be run, or its outputs not copied out.
    #[error(transparent)]
    Docker(#[from] EngineError),
}

impl ExecError {
    /// Who has to act.
    pub fn class(&self) -> crate::ErrorClass {
        match self {
            ExecError::Docker(e) => e.class(),
            _ => crate::ErrorClass::Internal,
        }
    }

    /// What to try next.
    pub fn hint(&self) -> Option<String> {
        match self {
            ExecError::Docker(e) => e.hint(),
            _ => None,
        }
    }
}

/// What happens to the processes the entry point leaves running when it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftovers {
    /// They are ended: its process group, and (lockstep being their subreaper) every
    /// orphaned descendant, daemons that left the group with `setsid` included.
    End,
    /// They keep running (`--keep-processes`).
    Keep,
}

/// Where the child's stdout is echoed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// To lockstep's stdout (the default).
    Stdout,
    /// To lockstep's stderr (with `--json`, which keeps stdout for the record).
    Stderr,
}

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it.
    Signaled(i32),
}

/// The result of running an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecOutcome {
    /// How the process ended.
    pub termination: Termination,
    /// The SIGINT/SIGTERM lockstep received and forwarded, if any.
    pub interrupted_by: Option<i32>,
    /// When it ended, in ms since the epoch.
    pub end_ms: u64,
}

impl ExecOutcome {
    /// The exit code a shell would report: the code, or 128 + the signal.
    pub fn exit_code(&self) -> i32 {
        match (self.interrupted_by, self.termination) {
            (Some(sig), _) => 128 + sig,
            (None, Termination::Exited(code)) => code,
            (None, Termination::Signaled(sig)) => 128 + sig,
        }
    }

    /// Whether the run was stopped by SIGINT/SIGTERM (forwarded, or from the terminal).
    pub fn killed(&self) -> bool {
        self.interrupted_by.is_some()
            || matches!(self.termination, Termination::Signaled(s) if s == libc::SIGINT || s == libc::SIGTERM)
    }
}

/// Run `inv`, saving its output into `logs_dir/stdout.log` and `logs_dir/stderr.log` while
/// echoing it. A process gets the caller's environment plus its variables; a container gets
/// only its own.
pub fn execute(
    inv: &Invocation,
    logs_dir: &Path,
    echo: Echo,
    interrupts: &Interrupts,
    leftovers: Leftovers,
) -> Result<ExecOutcome, ExecError> {
    match inv {
        Invocation::Process(p) => execute_process(p, logs_dir, echo, interrupts, leftovers),
        Invocation::Container(c) => container::execute(c, logs_dir, echo, interrupts),
    }
}

/// The kill grace period: `LOCKSTEP_KILL_GRACE` seconds, else [`DEFAULT_GRACE`].
fn kill_grace() -> Duration {
    grace_override().unwrap_or(DEFAULT_GRACE)
}

/// The grace period of leftovers and installers: `LOCKSTEP_KILL_GRACE` seconds, else
/// [`DEFAULT_STOP_GRACE`].
pub fn stop_grace() -> Duration {
    grace_override().unwrap_or(DEFAULT_STOP_GRACE)
}

fn grace_override() -> Option<Duration> {
    std::env::var("LOCKSTEP_KILL_GRACE").ok().and_then(|v| v.parse().ok()).map(Duration::from_secs)
}

fn execute_process(
    inv: &Process,
    logs_dir: &Path,
    echo: Echo,
    interrupts: &Interrupts,
    leftovers: Leftovers,
) -> Result<ExecOutcome, ExecError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExecError::Io { path, source }
    };
    let stdout_log = logs_dir.join("stdout.log");
    let stderr_log = logs_dir.join("stderr.log");
    let out_file = File::create(&stdout_log).map_err(io_err(&stdout_log))?;
    let err_file = File::create(&stderr_log).map_err(io_err(&stderr_log))?;
    let (out_read, out_write) = io::pipe().map_err(io_err(Path::new("pipe")))?;
    let (err_read, err_write) = io::pipe().map_err(io_err(Path::new("pipe")))?;

    match leftovers {
        Leftovers::End => signals::become_subreaper(),
        Leftovers::Keep => crate::ui::warn(
            "--keep-processes: what the entry point leaves running is not stopped at the end of the run; \
             it may go on writing into the run's outputs after they are recorded",
        ),
    }
    let tty = signals::ForegroundTty::detect();
    // This thread waits for the child until it is gone, so that the death signal (which follows
    // the forking thread) fires only when lockstep dies.
    let parent = std::process::id() as i32;
    let handle = {
        // Every clone of the expression holds the pipes' write ends: all of them must be gone
        // once the child is started, or EOF never arrives.
        let expr = inv
            .env
            .iter()
            .fold(duct::cmd(&inv.program, &inv.args), |e, (k, v)| e.env(k, v))
            .dir(&inv.cwd)
            .stdout_file(out_write)
            .stderr_file(err_write)
            .unchecked()
            .before_spawn(move |cmd| {
                match tty {
                    // SAFETY: the closure only calls async-signal-safe functions (setpgid,
                    // signal, tcsetpgrp, prctl, getppid) between fork and exec.
                    Some(tty) => unsafe {
                        cmd.pre_exec(move || tty.enter_child().and_then(|()| die_with_parent(parent)));
                    },
                    // SAFETY: as above.
                    None => unsafe {
                        cmd.process_group(0).pre_exec(move || die_with_parent(parent));
                    },
                }
                Ok(())
            });
        expr.start()
            .map_err(|source| ExecError::Spawn { program: inv.program.to_string_lossy().into_owned(), source })?
    };
    let pgid = handle.pids()[0] as i32;
    let own = OwnChild::register(pgid);
    // Kept processes are kept when lockstep dies, too (the entry point itself gets its death signal).
    let guarded = (leftovers == Leftovers::End).then(|| GuardedGroup::register(pgid));
    if let Some(tty) = tty {
        tty.give_to(pgid);
    }
    interrupts.forward_to(pgid);

    let (done_tx, done_rx) = mpsc::channel();
    let to_stdout = echo == Echo::Stdout;
    pump(out_read, out_file, to_stdout, done_tx.clone());
    pump(err_read, err_file, false, done_tx);

    let grace = kill_grace();
    let mut deadline: Option<Instant> = None;
    let watch = ExitWatch::start(pgid);
    loop {
        match watch.wait(Duration::from_millis(50)) {
            Some(Ok(())) => break,
            Some(Err(source)) => {
                signals::kill_group(pgid, libc::SIGKILL);
                interrupts.forward_to(0);
                return Err(ExecError::Io { path: PathBuf::from("wait"), source });
            }
            None => {}
        }
        if interrupts.received().is_some() {
            let due = *deadline.get_or_insert_with(|| Instant::now() + grace);
            if Instant::now() >= due {
                signals::kill_group(pgid, libc::SIGKILL);
            }
        }
    }
    let end_ms = fsutil::now_ms();
    if let Some(tty) = tty {
        tty.take_back();
    }
    // The entry point has exited but is not reaped yet: its group's id cannot be reused, so
    // the group is ended before the zombie is collected.
    if leftovers == Leftovers::End {
        // After SIGINT/SIGTERM the group had the signal already: what is left gets SIGKILL.
        let grace = if interrupts.received().is_some() { Duration::ZERO } else { stop_grace() };
        let left = end_group(pgid, grace, Orphans::End);
        if !left.is_empty() {
            crate::ui::warn(&format!("processes of the run did not end after SIGKILL: {left:?}"));
        }
    }
    interrupts.forward_to(0);
    drop(guarded);
    let status = handle.wait().map_err(|source| ExecError::Io { path: PathBuf::from("wait"), source })?.status;
    drop(own);
    let termination = match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
        (Some(code), _) => Termination::Exited(code),
        (None, Some(sig)) => Termination::Signaled(sig),
        (None, None) => Termination::Exited(1),
    };
    let outcome = ExecOutcome { termination, interrupted_by: interrupts.received(), end_ms };
    let drain_until = Instant::now() + PIPE_DRAIN;
    for _ in 0..2 {
        let left = drain_until.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    Ok(outcome)
}

/// Copy a pipe into a log file and an echo stream until EOF, then signal `done`.
/// An echo that fails (a closed stdout) stops echoing but not logging.
fn pump(mut from: io::PipeReader, mut log: File, to_stdout: bool, done: mpsc::Sender<()>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut echo_ok = true;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let chunk = &buf[..n];
            let _ = log.write_all(chunk);
            if echo_ok {
                echo_ok = if to_stdout {
                    let mut out = io::stdout().lock();
                    out.write_all(chunk).and_then(|_| out.flush()).is_ok()
                } else {
                    io::stderr().lock().write_all(chunk).is_ok()
                };
            }
        }
        let _ = log.flush();
        let _ = done.send(());
    });
}
