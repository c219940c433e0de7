//! The identity of a source as a run records it.

use std::path::PathBuf;

use crate::support::ids::TreeHash;
use serde::{Deserialize, Serialize};

/// How the project's files arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A directory on this machine.
    Local,
    /// A commit of a git repository.
    Git,
    /// A `.tar.gz` or `.zip` archive.
    Archive,
}

impl SourceKind {
    /// The name used in records.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Local => "local",
            SourceKind::Git => "git",
            SourceKind::Archive => "archive",
        }
    }
}

/// The identity of a source, as recorded with a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// The URI as given (credentials stripped).
    pub uri: String,
    /// How the files arrived.
    pub kind: SourceKind,
    /// The absolute project directory of a local source (none for other kinds).
    pub path: Option<PathBuf>,
    /// The requested version (branch, tag or SHA), if any.
    pub version: Option<String>,
    /// The commit the files come from, when they come from git.
    pub commit: Option<String>,
    /// The branch, when known.
    pub branch: Option<String>,
    /// The repository's URL (credentials stripped), when known.
    pub repo_url: Option<String>,
    /// The project's directory inside the repository or source, if not its root.
    pub subdirectory: Option<String>,
    /// The tree hash of the project's files (see the README for its definition).
    pub tree_sha256: TreeHash,
    /// Whether the files differ from the commit.
    pub dirty: bool,
    /// The sha256 of the captured dirty patch, when dirty.
    pub patch_sha256: Option<String>,
    /// For an archive source, the sha256 of the archive file.
    #[serde(default)]
    pub archive_sha256: Option<String>,
    /// For a local source, the tree hash without the paths the run wrote (its outputs):
    /// what `status`, `run --reuse` and `pack --run` compare a directory against. Equal to
    /// `tree_sha256` when the run wrote nothing inside the tree.
    #[serde(default)]
    pub input_tree_sha256: Option<TreeHash>,
}
