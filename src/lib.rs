//! lockstep: a fast, exact runner for MLflow projects that records reproducible runs.
//!
//! The pipeline flows one way: [`manifest`] -> [`source`] -> [`env`] -> [`exec`] -> [`record`].
//! [`pipeline`] composes the stages for the [`commands`], one module per subcommand; [`cli`]
//! parses arguments and renders results, and the binary in `main.rs` only calls it.

pub mod backends;
pub mod cli;
pub mod commands;
pub mod env;
pub mod exec;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod manifest;
pub mod pipeline;
pub mod record;
pub mod source;
pub mod support;

/// The version of this build, recorded in every run.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
