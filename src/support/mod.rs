//! Leaves that import nothing of the project's stages.

pub mod docker_engine;
