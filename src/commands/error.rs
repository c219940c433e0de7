//! The one error every command ends with: a variant per stage, each classified for the exit
//! code, with the hints that tell the user what to do next.

use std::io;

use crate::support::error_class::{Classify, ErrorClass};
use crate::support::{cache, http};
use crate::{backends, env, exec, manifest, pipeline, record, source};

use super::{diff, init, logs, outputs, pack, plot, runs, status, sweep, ui, verify};

/// Any error a lockstep command can end with.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Reading or validating the MLproject file or the parameters.
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    /// Resolving the project source.
    #[error(transparent)]
    Source(#[from] source::SourceError),
    /// Preparing the environment.
    #[error(transparent)]
    Env(#[from] env::EnvError),
    /// Running the entry point.
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
    /// Reading or writing the run store.
    #[error(transparent)]
    Record(#[from] record::RecordError),
    /// The cache directory.
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    /// Downloading a file.
    #[error(transparent)]
    Download(#[from] http::DownloadError),
    /// Packing a project.
    #[error(transparent)]
    Pack(#[from] pack::PackError),
    /// Writing a starter project.
    #[error(transparent)]
    Init(#[from] init::InitError),
    /// Printing a run's logs.
    #[error(transparent)]
    Logs(#[from] logs::LogsError),
    /// Restoring a run's outputs.
    #[error(transparent)]
    Outputs(#[from] outputs::OutputsError),
    /// Verifying a run.
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
    /// Checking a run's status.
    #[error(transparent)]
    Status(#[from] status::StatusError),
    /// Comparing two runs.
    #[error(transparent)]
    Diff(#[from] diff::DiffError),
    /// Planning a sweep.
    #[error(transparent)]
    Sweep(#[from] sweep::SweepError),
    /// Choosing the runs to list.
    #[error(transparent)]
    Runs(#[from] runs::RunsError),
    /// Writing a chart.
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
    /// Serving the UI.
    #[error(transparent)]
    Ui(#[from] ui::UiError),
    /// Composing the stages of a run.
    #[error(transparent)]
    Run(#[from] pipeline::RunError),
    /// Talking to a tracking server.
    #[error(transparent)]
    Tracking(#[from] record::TrackingError),
    /// Running on a backend (Slurm): its config, its scheduler, staging and collecting.
    #[error(transparent)]
    Backend(#[from] backends::BackendError),
    /// Printing the result, or finding the working directory.
    #[error("{0}")]
    Io(#[source] io::Error),
    /// Printing a result as JSON.
    #[error("{0}")]
    Json(#[source] serde_json::Error),
}

impl From<io::Error> for CommandError {
    fn from(e: io::Error) -> CommandError {
        CommandError::Io(e)
    }
}

impl From<serde_json::Error> for CommandError {
    fn from(e: serde_json::Error) -> CommandError {
        CommandError::Json(e)
    }
}

impl CommandError {
    /// The exit code lockstep ends with: 2 for the user's errors, 1 for internal ones,
    /// 128 + signal when interrupted before the run started.
    pub fn exit_code(&self) -> i32 {
        match (self, self.class()) {
            (
                CommandError::Run(
                    pipeline::RunError::Interrupted { signal } | pipeline::RunError::InterruptedRun { signal, .. },
                ),
                _,
            ) => 128 + signal,
            (_, ErrorClass::User) => 2,
            (_, ErrorClass::Internal) => 1,
        }
    }
}

impl Classify for CommandError {
    fn class(&self) -> ErrorClass {
        match self {
            CommandError::Manifest(_) | CommandError::Runs(_) => ErrorClass::User,
            CommandError::Source(e) => e.class(),
            CommandError::Env(e) => e.class(),
            CommandError::Exec(e) => e.class(),
            CommandError::Record(e) => e.class(),
            CommandError::Tracking(e) => e.class(),
            CommandError::Cache(_) | CommandError::Io(_) | CommandError::Json(_) => ErrorClass::Internal,
            CommandError::Download(e) => e.class(),
            CommandError::Init(e) => e.class(),
            CommandError::Logs(e) => e.class(),
            CommandError::Outputs(e) => e.class(),
            CommandError::Pack(e) => e.class(),
            CommandError::Verify(e) => e.class(),
            CommandError::Status(e) => e.class(),
            CommandError::Diff(e) => e.class(),
            CommandError::Run(e) => e.class(),
            CommandError::Sweep(e) => e.class(),
            CommandError::Plot(e) => e.class(),
            CommandError::Ui(e) => e.class(),
            CommandError::Backend(e) => e.class(),
        }
    }

    fn hints(&self) -> Vec<String> {
        let hint = match self {
            CommandError::Manifest(e) => e.hint(),
            CommandError::Source(e) => e.hint(),
            CommandError::Env(e) => e.hint(),
            CommandError::Record(e) => e.hint(),
            CommandError::Tracking(e) => e.hint(),
            CommandError::Init(e) => return e.hints(),
            CommandError::Logs(e) => return e.hints(),
            CommandError::Outputs(e) => return e.hints(),
            CommandError::Pack(e) => return e.hints(),
            CommandError::Backend(e) => return e.hints(),
            CommandError::Run(e) => e.hint(),
            CommandError::Sweep(e) => e.hint(),
            CommandError::Exec(e) => e.hint(),
            CommandError::Diff(e) => e.hint(),
            CommandError::Runs(e) => e.hint(),
            CommandError::Plot(e) => return e.hints(),
            CommandError::Ui(e) => return e.hints(),
            CommandError::Cache(_)
            | CommandError::Download(_)
            | CommandError::Verify(_)
            | CommandError::Status(_)
            | CommandError::Io(_)
            | CommandError::Json(_) => None,
        };
        hint.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_class_and_interruptions_the_signal() {
        let exists =
            CommandError::from(init::InitError::Exists { dir: "d".into(), existing: vec!["MLproject".into()] });
        assert_eq!((exists.class(), exists.exit_code()), (ErrorClass::User, 2));
        assert_eq!(exists.hints(), ["choose an empty or new directory: lockstep init DIR"]);
        let io = CommandError::from(io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!((io.class(), io.exit_code()), (ErrorClass::Internal, 1));
        assert!(io.hints().is_empty());
        assert_eq!(CommandError::from(pipeline::RunError::Interrupted { signal: 15 }).exit_code(), 143);
    }

    #[test]
    fn a_download_that_cannot_be_saved_exits_as_internal() {
        let saving = || http::DownloadError::Io {
            url: "https://h/x.csv".into(),
            path: "/run/inputs/data/x.csv".into(),
            source: io::Error::from(io::ErrorKind::StorageFull),
        };
        assert_eq!(CommandError::from(saving()).exit_code(), 1);
        assert_eq!(CommandError::from(source::SourceError::from(saving())).exit_code(), 1, "an archive's download");
        let refused = http::DownloadError::Http { url: "https://h/x.csv".into(), message: "http status: 404".into() };
        assert_eq!(CommandError::from(refused).exit_code(), 2);
    }
}
