//! `lockstep logs`: a run's stdout or stderr log as the entry point wrote it, followed while
//! the run is live.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::CommandError;
use crate::record::{RunDir, RunStatus, Store};
use crate::support::error_class::{Classify, ErrorClass};

/// Which of the two logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// The entry point's standard output.
    Stdout,
    /// Its standard error.
    Stderr,
}

impl LogStream {
    fn file_name(self) -> &'static str {
        match self {
            LogStream::Stdout => RunDir::STDOUT_LOG,
            LogStream::Stderr => RunDir::STDERR_LOG,
        }
    }

    fn path(self, dir: &RunDir) -> PathBuf {
        match self {
            LogStream::Stdout => dir.stdout_log(),
            LogStream::Stderr => dir.stderr_log(),
        }
    }
}

/// What to print.
#[derive(Debug, Clone)]
pub struct LogsOptions {
    /// The run store.
    pub store: PathBuf,
    /// A run id or a unique prefix of one.
    pub run: String,
    /// Which log.
    pub stream: LogStream,
    /// Keep printing what the run writes until it ends.
    pub follow: bool,
}

/// Errors of reading a run's logs.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// The run has no such log: it never started its entry point, or the file was removed.
    #[error("run {run_id} has no {} (looked for {})", .stream.file_name(), .path.display())]
    NoLog {
        /// The run.
        run_id: String,
        /// Which log.
        stream: LogStream,
        /// Where it was looked for.
        path: PathBuf,
    },
}

impl Classify for LogsError {
    fn class(&self) -> ErrorClass {
        ErrorClass::User
    }

    fn hints(&self) -> Vec<String> {
        vec!["a run that failed before its entry point started (a failed build, say) has no logs".into()]
    }
}

/// How often a followed log is polled for new bytes.
const POLL: Duration = Duration::from_millis(200);

/// Copy the log to `out`; with `follow`, until the run is no longer running.
pub fn logs(opts: &LogsOptions, out: &mut dyn Write) -> Result<(), CommandError> {
    let store = Store::open(&opts.store)?;
    let record = store.find(&opts.run)?;
    let path = opts.stream.path(&store.run_dir(&record.run_id));
    let mut file = File::open(&path).map_err(|_| LogsError::NoLog {
        run_id: record.run_id.clone(),
        stream: opts.stream,
        path: path.clone(),
    })?;
    let mut running = opts.follow && record.status == RunStatus::Running;
    loop {
        copy_new(&mut file, &path, out)?;
        if !running {
            return Ok(());
        }
        std::thread::sleep(POLL);
        // One more copy after the run ends catches what it wrote last.
        running = store.find(&record.run_id)?.status == RunStatus::Running;
    }
}

/// Copy what was appended since the last call.
fn copy_new(file: &mut File, path: &Path, out: &mut dyn Write) -> Result<(), CommandError> {
    let mut buf = Vec::new();
    let read = |e: io::Error| crate::record::RecordError::Io { path: path.to_path_buf(), source: e };
    file.read_to_end(&mut buf).map_err(read)?;
    out.write_all(&buf)?;
    out.flush()?;
    Ok(())
}
