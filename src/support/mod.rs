//! Leaves that import nothing of the project.

pub mod cache;
pub mod cancel;
pub mod chart;
pub mod clock;
pub mod digest;
pub mod docker_engine;
pub mod error_class;
pub mod fs;
pub mod gzip;
pub mod http;
pub mod ids;
pub mod process;
pub mod progress;
pub mod reflink;
pub mod terminal;
pub mod text;
pub mod ui;
