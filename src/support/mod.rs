//! Leaves that import nothing of the project.

pub mod ids;
