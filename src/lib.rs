//! lockstep: a fast, exact runner for MLflow projects that records reproducible runs.
//!
//! The pipeline flows one way: [`manifest`] -> [`source`] -> [`env`] -> [`exec`] -> [`record`].
//! [`run`] composes the stages; the binary in `main.rs` only parses arguments and renders results.

pub mod cache;
pub mod cancel;
pub mod env;
pub mod error;
pub mod exec;
pub mod fetch;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod init;
pub mod manifest;
pub mod pack;
pub mod progress;
pub mod record;
pub mod run;
pub mod source;
pub mod status;
pub mod support;
pub mod ui;
pub mod verify;

pub use error::{Error, ErrorClass};

/// The version of this build, recorded in every run.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
