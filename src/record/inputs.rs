//! The `path` inputs of a run that are not part of its project (a data file or directory
//! elsewhere, a download): hashed into the record, so that a changed data file is an input
//! change when a re-run differs, and not nondeterminism.

use serde::{Deserialize, Serialize};

/// What a `path` input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// A file: its content's sha256.
    File,
    /// A directory: the tree hash of its files.
    Directory,
}

/// One `path` parameter's value outside the project, and its content's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDigest {
    /// The parameter.
    pub parameter: String,
    /// The absolute path it named, or the URL it was downloaded from.
    pub location: String,
    /// A file or a directory.
    pub kind: InputKind,
    /// The sha256 of the file, or the tree hash of the directory.
    pub sha256: String,
    /// Bytes (of every file, for a directory).
    pub size: u64,
}
