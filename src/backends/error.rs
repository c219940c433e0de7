//! The errors of running on a backend: its config, its scheduler's answers, staging and
//! collecting, each classified as the user's or lockstep's.

use std::path::PathBuf;

use crate::support::error_class::{Classify, ErrorClass};

/// Errors of a backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// `--backend-config` names a file that cannot be read.
    #[error("cannot read the backend config {}: {source}", .path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The config is not a JSON object, or not one the backend takes.
    #[error("bad {backend} backend config ({origin}): {message}")]
    Config {
        /// The backend.
        backend: &'static str,
        /// The file, or "inline JSON".
        origin: String,
        /// What is wrong (an unknown key, a value of the wrong type).
        message: String,
    },
    /// `--backend-config` without a backend that takes one.
    #[error("--backend-config is given, but the local backend takes no config")]
    ConfigWithoutBackend,
    /// A flag of `lockstep run` that has no meaning on a backend.
    #[error("{flag} cannot be used with --backend {backend}")]
    Unsupported {
        /// The flag.
        flag: &'static str,
        /// The backend.
        backend: &'static str,
    },
    /// `local` is asked for where a scheduler is needed (cancel, refresh).
    #[error("the local backend submits no jobs")]
    NotRemote,
    /// A scheduler's tool is not installed on this machine.
    #[error("cannot run {program}: {message}")]
    MissingTool {
        /// The program (`sbatch`, `squeue`...).
        program: String,
        /// Why it could not start.
        message: String,
    },
    /// The scheduler refused the job (a bad partition, account, limit).
    #[error("{backend} refused the job: {message}")]
    Refused {
        /// The backend.
        backend: &'static str,
        /// What it said.
        message: String,
    },
    /// A scheduler's tool failed in a way that is not the input's fault.
    #[error("{command} failed: {message}")]
    Tool {
        /// The command line, as shown to people.
        command: String,
        /// Its exit and the last lines of its stderr.
        message: String,
    },
    /// Staging the archive or collecting the remote run's files failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The remote record cannot be read.
    #[error("the remote record {} is not valid: {message}", .path.display())]
    BadRemoteRecord {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Talking to a Ray cluster, or making the package its job takes.
    #[error(transparent)]
    Ray(#[from] super::ray::RayError),
    /// Reading or writing the local run's record.
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
    /// The local record lacks what a backend needs to find its job again.
    #[error("run {run_id} ran on no backend: it has no job to {action}")]
    NoJob {
        /// The run.
        run_id: String,
        /// What was asked (cancel, refresh).
        action: &'static str,
    },
}

impl BackendError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BackendError {
        let path = path.into();
        move |source| BackendError::Io { path, source }
    }
}

impl Classify for BackendError {
    fn class(&self) -> ErrorClass {
        match self {
            BackendError::ConfigFile { .. }
            | BackendError::Config { .. }
            | BackendError::ConfigWithoutBackend
            | BackendError::Unsupported { .. }
            | BackendError::NotRemote
            | BackendError::MissingTool { .. }
            | BackendError::Refused { .. }
            | BackendError::NoJob { .. } => ErrorClass::User,
            BackendError::Tool { .. } | BackendError::Io { .. } | BackendError::BadRemoteRecord { .. } => {
                ErrorClass::Internal
            }
            BackendError::Record(e) => e.class(),
            BackendError::Ray(e) => e.class(),
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            BackendError::ConfigFile { .. } | BackendError::Config { .. } => vec![
                "--backend-config takes a JSON file or inline JSON, an object of the keys docs/backends.md lists"
                    .into(),
            ],
            BackendError::ConfigWithoutBackend => vec!["choose a backend: --backend slurm".into()],
            BackendError::MissingTool { program, .. } => {
                vec![format!("install the scheduler's client tools so that `{program}` is on PATH")]
            }
            BackendError::Refused { .. } => {
                vec!["check the partition, account, qos and limits of --backend-config; nothing was recorded".into()]
            }
            BackendError::NoJob { .. } => vec!["only runs started with --backend have a job".into()],
            BackendError::Record(e) => e.hint().into_iter().collect(),
            BackendError::Ray(e) => e.hints(),
            BackendError::Unsupported { .. }
            | BackendError::NotRemote
            | BackendError::Tool { .. }
            | BackendError::Io { .. }
            | BackendError::BadRemoteRecord { .. } => vec![],
        }
    }
}
