//! What the commands that run entry points share (`run`, `verify`, `sweep`): a [`Session`], a
//! [`plan`] made from a resolved source, its [`execute`]ion, the `--reuse` lookup
//! ([`find_equivalent`]) and the lookup of a recorded run ([`lookup`]).
//!
//! Everything that can be checked before running (parameters, source, version, manifest,
//! environment choice) is checked before the RUNNING record is written: bad input leaves no
//! run behind. Virtualenvs and conda environments are also prepared (built or reused) in that
//! phase, since their failures are the user's input (an unknown package, versions that
//! conflict, an unreachable index or channel, no matching Python); Docker images are built once
//! the run is recorded, their build part of the run. From the record on, every path ends the
//! run as FINISHED, FAILED or KILLED.

mod execute;
mod inputs;
mod lookup;
mod plan;
mod remote;
mod reuse;
mod session;

use std::path::PathBuf;

use crate::support::error_class::ErrorClass;
use crate::support::ids::RunId;

pub use execute::{Execution, RunOutcome, execute};
pub use lookup::{FoundRun, RecordPlace, lookup};
pub use plan::{EnvChoice, Planned, RunSpec, check_store_outside, lock_in_place, plan};
pub use remote::{RemoteChoice, submit_remote};
pub use reuse::{equivalent_in, find_equivalent};
pub use session::{Session, clean_up_lost_containers};

/// Errors of composing a run that belong to no single stage.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// SIGINT/SIGTERM arrived before the entry point started.
    #[error("interrupted before the run started")]
    Interrupted {
        /// The signal.
        signal: i32,
    },
    /// SIGINT/SIGTERM stopped the preparation of a started run's environment (a Docker pull
    /// or build): the run exists, recorded KILLED.
    #[error("interrupted while the environment was prepared: run {run_id} is recorded KILLED")]
    InterruptedRun {
        /// The signal.
        signal: i32,
        /// The run.
        run_id: RunId,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The store is the project directory or one of its parents: its runs would be part of
    /// the project, and the project part of the store.
    #[error("the store {} holds the project {}", .store.display(), .project.display())]
    StoreHoldsProject {
        /// The store.
        store: PathBuf,
        /// The project directory.
        project: PathBuf,
    },
    /// Another live run works in the same directory.
    #[error("another run is running in {} (in place)", .dir.display())]
    InPlaceBusy {
        /// The project directory.
        dir: PathBuf,
    },
    /// A `path` input outside the project cannot be read to be hashed.
    #[error("cannot read -P {parameter}={}: {message}", .path.display())]
    InputUnreadable {
        /// The parameter.
        parameter: String,
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The hidden run id flag of a backend's job is not a run id.
    #[error("'{id}' is not a run id (32 lowercase hex digits)")]
    BadRunId {
        /// What was given.
        id: String,
    },
    /// An archive given as a recorded run holds no run record.
    #[error("{} holds no run record: pack it with `lockstep pack URI --run RUN`", .path.display())]
    NoRecordInArchive {
        /// The archive.
        path: PathBuf,
    },
}

impl RunError {
    /// Who has to act.
    pub fn class(&self) -> ErrorClass {
        match self {
            RunError::StoreHoldsProject { .. }
            | RunError::InPlaceBusy { .. }
            | RunError::NoRecordInArchive { .. }
            | RunError::InputUnreadable { .. }
            | RunError::BadRunId { .. } => ErrorClass::User,
            RunError::Interrupted { .. } | RunError::InterruptedRun { .. } | RunError::Signals(_) => {
                ErrorClass::Internal
            }
        }
    }

    /// What to try next.
    pub fn hint(&self) -> Option<String> {
        match self {
            RunError::StoreHoldsProject { .. } => Some(
                "use a store outside the project (--store or LOCKSTEP_STORE), or the default ./.lockstep inside it"
                    .into(),
            ),
            RunError::InPlaceBusy { .. } => Some(
                "each run would record the other's files as its outputs: wait for it, or run with --isolated (a copy)"
                    .into(),
            ),
            RunError::InputUnreadable { .. } => {
                Some("a path input is hashed into the record: make it readable by the user lockstep runs as".into())
            }
            RunError::Interrupted { .. }
            | RunError::InterruptedRun { .. }
            | RunError::Signals(_)
            | RunError::BadRunId { .. }
            | RunError::NoRecordInArchive { .. } => None,
        }
    }
}
