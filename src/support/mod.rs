//! Leaves that import nothing of the project.

pub mod cancel;
pub mod docker_engine;
pub mod error_class;
pub mod gzip;
pub mod ids;
pub mod process;
pub mod text;
