//! The crate-wide error type: one variant per pipeline stage, each classified for the exit code.

use crate::commands::{status, verify};
use crate::{cache, env, exec, fetch, init, manifest, pack, pipeline, record, source};

/// Whether an error is the user's to fix (exit 2) or a fault of lockstep or the machine (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad input: a manifest, a parameter, a URI, a version, a missing file.
    User,
    /// Anything else: I/O failures, a broken installation, a bug.
    Internal,
}

/// Any error a lockstep command can end with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    Fetch(#[from] fetch::FetchError),
    /// Packing a project.
    #[error(transparent)]
    Pack(#[from] pack::PackError),
    /// Writing a starter project.
    #[error(transparent)]
    Init(#[from] init::InitError),
    /// Verifying a run.
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
    /// Checking a run's status.
    #[error(transparent)]
    Status(#[from] status::StatusError),
    /// Composing the stages of a run.
    #[error(transparent)]
    Run(#[from] pipeline::RunError),
}

impl Error {
    /// Who has to act on this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Manifest(_) => ErrorClass::User,
            Error::Source(e) => e.class(),
            Error::Env(e) => e.class(),
            Error::Exec(e) => e.class(),
            Error::Record(e) => e.class(),
            Error::Cache(_) => ErrorClass::Internal,
            Error::Fetch(_) => ErrorClass::User,
            Error::Init(e) => e.class(),
            Error::Pack(e) => e.class(),
            Error::Verify(e) => e.class(),
            Error::Status(e) => e.class(),
            Error::Run(e) => e.class(),
        }
    }

    /// The exit code lockstep ends with: 2 for the user's errors, 1 for internal ones,
    /// 128 + signal when interrupted before the run started.
    pub fn exit_code(&self) -> i32 {
        match (self, self.class()) {
            (
                Error::Run(
                    pipeline::RunError::Interrupted { signal } | pipeline::RunError::InterruptedRun { signal, .. },
                ),
                _,
            ) => 128 + signal,
            (_, ErrorClass::User) => 2,
            (_, ErrorClass::Internal) => 1,
        }
    }

    /// A line telling the user what to do next, where one helps.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Manifest(e) => e.hint(),
            Error::Source(e) => e.hint(),
            Error::Env(e) => e.hint(),
            Error::Record(e) => e.hint(),
            Error::Init(e) => e.hint(),
            Error::Pack(e) => e.hint(),
            Error::Run(e) => e.hint(),
            Error::Exec(e) => e.hint(),
            Error::Cache(_) | Error::Fetch(_) | Error::Verify(_) | Error::Status(_) => None,
        }
    }
}
