//! The errors of talking to a Ray cluster's Jobs API and of staging a job's package, with who
//! has to act on each.

use std::io;
use std::path::PathBuf;

use crate::support::error_class::{Classify, ErrorClass};

/// Errors of the Ray Jobs client and of the package a job takes with it.
#[derive(Debug, thiserror::Error)]
pub enum RayError {
    /// The address is not one the Jobs API can be reached at.
    #[error("Ray address '{address}' is not valid: {reason}")]
    BadAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key of the backend config that the cluster would refuse or misread.
    #[error("the Ray backend config's '{key}' cannot be used: {reason}")]
    Config {
        /// The key.
        key: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// No address in the backend config and none in `RAY_ADDRESS`.
    #[error("no Ray address: the backend config has no 'address' and RAY_ADDRESS is not set")]
    NoAddress,
    /// The dashboard could not be reached.
    #[error("cannot reach the Ray dashboard at {address} ({what}): {message}")]
    Unreachable {
        /// The Jobs API's base URL.
        address: String,
        /// The request, as `METHOD /path`.
        what: String,
        /// What the HTTP client said.
        message: String,
    },
    /// The dashboard answered with an error status.
    #[error("the Ray dashboard at {address} refused {what} (HTTP {status}): {message}")]
    Refused {
        /// The Jobs API's base URL.
        address: String,
        /// The request, as `METHOD /path`.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The dashboard's own words: the last line of its traceback, or its text.
        message: String,
    },
    /// The dashboard does not know the job.
    #[error("the Ray cluster at {address} has no job '{job_id}'")]
    NoSuchJob {
        /// The Jobs API's base URL.
        address: String,
        /// The submission id.
        job_id: String,
    },
    /// The dashboard's answer is not what the Jobs API sends.
    #[error("the answer of {address} to {what} is not the Ray Jobs API's: {message}")]
    BadAnswer {
        /// The Jobs API's base URL.
        address: String,
        /// The request, as `METHOD /path`.
        what: String,
        /// What could not be read.
        message: String,
    },
    /// The job's package is larger than the dashboard takes.
    #[error("the job's package (the archive and the lockstep binary {}) is {mib} MiB: Ray's dashboard takes at most 100 MiB", .binary.display())]
    PackageTooLarge {
        /// The binary in it.
        binary: PathBuf,
        /// Its size, in MiB.
        mib: u64,
    },
    /// The job's package could not be read or written on this machine.
    #[error("cannot make the Ray package from {}: {source}", .path.display())]
    Package {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl Classify for RayError {
    fn class(&self) -> ErrorClass {
        match self {
            RayError::Package { .. } => ErrorClass::Internal,
            // The address, the cluster and the config are the user's to fix: a dashboard
            // that refuses a job names what in the config it did not take.
            _ => ErrorClass::User,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            RayError::BadAddress { .. } | RayError::NoAddress => vec![
                "give the dashboard's address, as `ray job submit --address` takes it: \
                 'address' in --backend-config, or RAY_ADDRESS (http://HOST:8265)"
                    .into(),
            ],
            RayError::Unreachable { .. } => vec![
                "is the cluster up with its dashboard? (`ray start --head --include-dashboard=true`; \
                 the Jobs API is on the dashboard's port, 8265 by default)"
                    .into(),
            ],
            RayError::BadAnswer { .. } => vec!["the address must be a Ray dashboard's (its port, not the GCS's)".into()],
            // Ray answers a job it cannot take with 400 or 500 alike, with the reason.
            RayError::Refused { .. } => {
                vec!["check the backend config's Ray keys (runtime_env, entrypoint_resources, metadata)".into()]
            }
            RayError::Config { .. } => vec!["the keys are listed in docs/backends.md (Ray)".into()],
            RayError::PackageTooLarge { .. } => vec![
                "send a release build, or one without debug info (`objcopy --strip-debug`), with the config's 'lockstep' key".into(),
            ],
            RayError::NoSuchJob { .. } | RayError::Package { .. } => Vec::new(),
        }
    }
}
