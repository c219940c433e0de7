//! Execution: run an [`Invocation`] as its own process group (or as a container), stream its
//! output live into the terminal and the run's log files, forward SIGINT/SIGTERM, end what it
//! left running, and report how it ended.

pub mod container;
mod process;
mod signals;

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::env::Invocation;
use crate::support::docker_engine::EngineError;
use crate::support::process::{PIPE_DRAIN, ProcessError, grace_override};

pub use signals::Interrupts;

/// How long a process group has to exit after a forwarded SIGINT/SIGTERM before SIGKILL;
/// `LOCKSTEP_KILL_GRACE` (seconds) overrides it.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

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
    /// The entry point could not be waited for.
    #[error("cannot wait for the entry point: {source}")]
    Wait {
        /// The underlying error.
        source: ProcessError,
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
    pub fn class(&self) -> crate::support::error_class::ErrorClass {
        match self {
            ExecError::Docker(e) => e.class(),
            _ => crate::support::error_class::ErrorClass::Internal,
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
    /// Only those still in its process group are ended: a sweep's trials run side by side,
    /// and one trial's orphans cannot be told from another's (or from a trial just started).
    Group,
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
    /// Nowhere: into the log files only, and never in the terminal's foreground (a sweep's
    /// trials, which run side by side).
    Quiet,
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

/// The files a run's output is saved into.
#[derive(Debug, Clone)]
pub struct LogFiles {
    /// The entry point's stdout (with a terminal, its one stream).
    pub stdout: PathBuf,
    /// The entry point's stderr.
    pub stderr: PathBuf,
}

impl LogFiles {
    /// Create (or truncate) both files.
    fn create(&self) -> Result<(File, File), ExecError> {
        let create = |path: &PathBuf| File::create(path).map_err(|source| ExecError::Io { path: path.clone(), source });
        Ok((create(&self.stdout)?, create(&self.stderr)?))
    }
}

/// Run `inv`, saving its output into `logs` while echoing it. A process gets the caller's
/// environment plus its variables; a container gets only its own.
pub fn execute(
    inv: &Invocation,
    logs: &LogFiles,
    echo: Echo,
    interrupts: &Interrupts,
    leftovers: Leftovers,
) -> Result<ExecOutcome, ExecError> {
    match inv {
        Invocation::Process(p) => process::execute(p, logs, echo, interrupts, leftovers),
        Invocation::Container(c) => container::execute(c, logs, echo, interrupts),
    }
}

/// The kill grace period: `LOCKSTEP_KILL_GRACE` seconds, else [`DEFAULT_GRACE`].
fn kill_grace() -> Duration {
    grace_override().unwrap_or(DEFAULT_GRACE)
}
