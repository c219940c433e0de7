//! Leaves that import nothing of the project.

pub mod error_class;
pub mod gzip;
