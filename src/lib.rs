//! lockstep: a fast, exact runner for MLflow projects that records reproducible runs.
//!
//! The pipeline flows one way: [`manifest`] -> [`source`] -> [`env`] -> [`exec`] -> [`record`].
//! [`pipeline`] composes the stages for the [`commands`], one module per subcommand; [`cli`]
//! parses arguments and renders results, and the binary in `main.rs` only calls it.

pub mod cache;
pub mod cli;
pub mod commands;
pub mod env;
pub mod exec;
pub mod fetch;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod manifest;
pub mod pipeline;
pub mod progress;
pub mod record;
pub mod source;
pub mod support;
pub mod ui;

/// Shim for the stages' imports until the merge: the lead rewrites `crate::error::` paths.
pub(crate) mod error {
    pub(crate) use crate::commands::CommandError as Error;
    pub(crate) use crate::support::error_class::ErrorClass;
}
pub(crate) use support::error_class::ErrorClass;

/// The version of this build, recorded in every run.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
