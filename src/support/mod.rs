//! Leaves that import nothing of the project.

pub mod cancel;
pub mod process;
