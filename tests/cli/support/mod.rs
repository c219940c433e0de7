//! Everything the tests share: the per-test context, the command builder, snapshot filters, and
//! the fixtures (servers and made-up packages and images). Servers bind 127.0.0.1 on a free
//! port and stop when their handle is dropped, also when the test fails.

pub mod browser;
mod cmd;
pub mod conda;
mod context;
pub mod docker;
pub mod git;
pub mod http;
pub mod mlflow;
pub mod ray;
pub mod slurm;
pub mod snapshot;
pub mod ui;
pub mod uv;
mod venv;

pub use cmd::Cmd;
pub use context::*;
pub use git::{GitDaemon, GitHttpServer};
pub use http::Server;
pub use mlflow::{MlflowServer, path_with_mlflow};
