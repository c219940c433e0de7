//! The entry point as a process: run by the one child runner in the terminal's foreground,
//! its output saved into the run's logs while echoed, SIGINT/SIGTERM forwarded to its group,
//! and (lockstep being the subreaper) whatever it leaves running ended with the run.

use crate::support::clock::now_ms;
use std::fs::File;
use std::io::{self, Write};
use std::time::Duration;

use super::{Echo, ExecError, ExecOutcome, Interrupts, Leftovers, LogFiles, Termination, kill_grace};
use crate::env::Process;
use crate::support::cancel;
use crate::support::process::{self, Command, ForegroundTty, OnCancel, Orphans, Output};

/// Run the entry point; see [`super::execute`].
pub(super) fn execute(
    inv: &Process,
    logs: &LogFiles,
    echo: Echo,
    interrupts: &Interrupts,
    leftovers: Leftovers,
) -> Result<ExecOutcome, ExecError> {
    let (stdout_log, stderr_log) = logs.create()?;
    let quiet = echo == Echo::Quiet;
    let stdout_log = LogEcho { log: stdout_log, echo: (!quiet).then_some(echo) };
    let stderr_log = LogEcho { log: stderr_log, echo: (!quiet).then_some(Echo::Stderr) };

    match leftovers {
        Leftovers::End => process::become_subreaper(),
        Leftovers::Group => {}
        Leftovers::Keep => crate::support::ui::warn(
            "--keep-processes: what the entry point leaves running is not stopped at the end of the run; \
             it may go on writing into the run's outputs after they are recorded",
        ),
    }
    let mut child = Command::new(&inv.program, &inv.args)
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .dir(&inv.cwd)
        .stdin_inherit()
        .stdout(Output::Tee(Box::new(stdout_log)))
        .stderr(Output::Tee(Box::new(stderr_log)))
        // Quiet children run side by side: none takes the terminal, so Ctrl-C reaches
        // lockstep, which forwards it to every one.
        .foreground(if quiet { None } else { ForegroundTty::detect() })
        // Kept processes are kept when lockstep dies, too (the entry point itself gets its
        // death signal).
        .guarded(leftovers != Leftovers::Keep)
        .spawn()
        .map_err(|source| ExecError::Spawn { program: inv.program.to_string_lossy().into_owned(), source })?;
    interrupts.forward_to(child.pgid());

    if let Err(source) = child.wait_exit(OnCancel::KillAfter(kill_grace()), None) {
        child.signal_group(libc::SIGKILL);
        interrupts.stop_forwarding(child.pgid());
        return Err(ExecError::Wait { source });
    }
    let end_ms = now_ms();
    // The entry point has exited but is not reaped yet: its group's id cannot be reused, so
    // the group is ended before the zombie is collected.
    if leftovers != Leftovers::Keep {
        // After SIGINT/SIGTERM the group had the signal already: what is left gets SIGKILL.
        let grace = if cancel::requested().is_some() { Duration::ZERO } else { process::stop_grace() };
        let orphans = if leftovers == Leftovers::End { Orphans::End } else { Orphans::Leave };
        let left = child.end_group(grace, orphans);
        if !left.is_empty() {
            crate::support::ui::warn(&format!("processes of the run did not end after SIGKILL: {left:?}"));
        }
    }
    interrupts.stop_forwarding(child.pgid());
    let status = child.finish().map_err(|source| ExecError::Wait { source })?.status;
    let termination = match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
        (Some(code), _) => Termination::Exited(code),
        (None, Some(sig)) => Termination::Signaled(sig),
        (None, None) => Termination::Exited(1),
    };
    Ok(ExecOutcome { termination, interrupted_by: interrupts.received(), end_ms })
}

/// One of the entry point's streams: every chunk into its log file and, until that fails (a
/// closed stdout), echoed; a failing echo stops the echo, not the log.
struct LogEcho {
    log: File,
    echo: Option<Echo>,
}

impl Write for LogEcho {
    fn write(&mut self, chunk: &[u8]) -> io::Result<usize> {
        let _ = self.log.write_all(chunk);
        let echoed = match self.echo {
            None => true,
            Some(Echo::Stdout) => {
                let mut out = io::stdout().lock();
                out.write_all(chunk).and_then(|()| out.flush()).is_ok()
            }
            Some(Echo::Stderr) => io::stderr().lock().write_all(chunk).is_ok(),
            Some(Echo::Quiet) => true,
        };
        if !echoed {
            self.echo = None;
        }
        Ok(chunk.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
