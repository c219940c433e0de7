//! The Ray backend: jobs submitted to a Ray cluster through its Jobs REST API, with the
//! project's archive and the lockstep binary as the job's working directory.

mod backend;
mod client;
mod config;
mod entrypoint;
mod error;
mod package;
mod wire;

pub use backend::Ray;
pub use client::JobsClient;
pub use config::RayConfig;
pub use error::RayError;
pub use package::{BINARY_NAME, JobPackage};
pub use wire::{JobInfo, JobStatus, SubmitRequest};
