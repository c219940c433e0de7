//! The errors of resolving a project source, and who has to act on each.

use std::path::{Path, PathBuf};

use super::archive::ArchiveError;
use super::tree::TreeError;
use crate::support::cache::CacheError;
use crate::support::error_class::{Classify, ErrorClass};
use crate::support::http::DownloadError;

/// Errors of resolving a project source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The project directory does not exist.
    #[error("no project directory at {}", .path.display())]
    NotFound {
        /// The path looked for.
        path: PathBuf,
    },
    /// `--version` for a local directory outside any git repository.
    #[error("--version {version} needs a git repository, but {} is not in one", .path.display())]
    VersionNeedsGit {
        /// The requested version.
        version: String,
        /// The project directory.
        path: PathBuf,
    },
    /// The URI has more than one `#`.
    #[error("'{uri}' has more than one '#': only one subdirectory can follow the URI")]
    TwoFragments {
        /// The URI.
        uri: String,
    },
    /// The subdirectory is absolute or leaves the repository.
    #[error("subdirectory '{subdirectory}' {reason}")]
    BadSubdirectory {
        /// The subdirectory as given.
        subdirectory: String,
        /// What is wrong, completing the sentence.
        reason: &'static str,
    },
    /// The subdirectory does not exist in the source.
    #[error("subdirectory '{subdirectory}' does not exist in {location}")]
    SubdirectoryNotFound {
        /// The subdirectory as given.
        subdirectory: String,
        /// The source (and commit) it was looked for in.
        location: String,
    },
    /// The version is no branch, tag or commit of the repository.
    #[error("version '{version}' is not a branch, tag or commit of {location}")]
    UnknownVersion {
        /// The requested version.
        version: String,
        /// The repository.
        location: String,
        /// Branches and tags that do exist.
        known: Vec<String>,
    },
    /// A clone or fetch failed (unreachable host, no access, no such repository).
    #[error("cannot fetch {url}: {detail}")]
    GitNetwork {
        /// The repository URL, without credentials.
        url: String,
        /// The last lines git printed.
        detail: String,
    },
    /// A clone or fetch made no progress for too long.
    #[error("cannot fetch {url}: no progress for {seconds} s, gave up")]
    GitStalled {
        /// The repository URL, without credentials.
        url: String,
        /// The stall timeout.
        seconds: u64,
    },
    /// A local git command failed.
    #[error("`{command}` failed: {detail}")]
    GitCommand {
        /// The command.
        command: String,
        /// The last lines it printed.
        detail: String,
    },
    /// The git program could not be started.
    #[error("cannot run git: {source}")]
    NoGit {
        /// The underlying error.
        source: std::io::Error,
    },
    /// libgit2 could not read a repository.
    #[error("cannot read the git repository at {}: {}", .path.display(), .source.message())]
    Git2 {
        /// The repository.
        path: PathBuf,
        /// The underlying error.
        source: git2::Error,
    },
    /// An archive could not be read or is unsafe.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// An archive could not be downloaded.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// A recorded source cannot be rebuilt as it was.
    #[error("the source is not the one recorded: {detail}")]
    Changed {
        /// What differs.
        detail: String,
    },
    /// A dirty run's patch is not at hand.
    #[error("the run was made from a dirty tree, but its dirty.patch is not next to its record")]
    PatchMissing,
    /// No repository at hand has the recorded commit.
    #[error("commit {commit} is in none of {tried}, and the record names no repository URL")]
    CommitNotFound {
        /// The commit.
        commit: String,
        /// Where it was looked for.
        tried: String,
    },
    /// `unpack` into a directory that exists.
    #[error("{} exists already: unpack writes a new directory", .path.display())]
    DestinationExists {
        /// The directory.
        path: PathBuf,
    },
    /// A name that is no archive where one is needed.
    #[error("'{uri}' is not an archive: its name must end in .tar.gz, .tgz or .zip")]
    NotAnArchive {
        /// The name.
        uri: String,
    },
    /// `--version` for a source that has no versions.
    #[error("--version does not apply to an archive ({uri})")]
    VersionOfArchive {
        /// The archive.
        uri: String,
    },
    /// Hashing the tree failed.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// The cache could not be used.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A file operation failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl SourceError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> SourceError {
        SourceError::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn git2(path: &Path, source: git2::Error) -> SourceError {
        SourceError::Git2 { path: path.to_path_buf(), source }
    }

    pub(crate) fn spawn_git(source: std::io::Error) -> SourceError {
        SourceError::NoGit { source }
    }

    /// Who has to act.
    pub fn class(&self) -> ErrorClass {
        match self {
            SourceError::NotFound { .. }
            | SourceError::VersionNeedsGit { .. }
            | SourceError::TwoFragments { .. }
            | SourceError::BadSubdirectory { .. }
            | SourceError::SubdirectoryNotFound { .. }
            | SourceError::UnknownVersion { .. }
            | SourceError::GitNetwork { .. }
            | SourceError::GitStalled { .. }
            | SourceError::NoGit { .. }
            | SourceError::VersionOfArchive { .. }
            | SourceError::Changed { .. }
            | SourceError::PatchMissing
            | SourceError::CommitNotFound { .. }
            | SourceError::NotAnArchive { .. }
            | SourceError::DestinationExists { .. } => ErrorClass::User,
            SourceError::Download(e) => e.class(),
            SourceError::Archive(ArchiveError::Io { .. }) => ErrorClass::Internal,
            SourceError::Archive(_) => ErrorClass::User,
            _ => ErrorClass::Internal,
        }
    }

    /// What to try next.
    pub fn hint(&self) -> Option<String> {
        match self {
            SourceError::UnknownVersion { known, .. } if !known.is_empty() => {
                let shown: Vec<&str> = known.iter().take(12).map(String::as_str).collect();
                let more = if known.len() > shown.len() { ", ..." } else { "" };
                Some(format!("branches and tags: {}{more}; a commit SHA (full or short) also works", shown.join(", ")))
            }
            SourceError::GitNetwork { url, .. } => Some(format!("check the URL and your access: git ls-remote {url}")),
            SourceError::GitStalled { .. } => {
                Some("check the host is reachable; LOCKSTEP_GIT_TIMEOUT sets the limit in seconds".into())
            }
            SourceError::NoGit { .. } => Some("install git and make sure it is on PATH".into()),
            SourceError::Changed { .. } => Some("`lockstep status RUN` shows what changed since the run".into()),
            SourceError::PatchMissing => Some(
                "verify the run by its id in the store that holds it, or copy dirty.patch beside the record".into(),
            ),
            SourceError::VersionNeedsGit { .. } => Some("drop --version to run the directory as it is".into()),
            SourceError::SubdirectoryNotFound { .. } | SourceError::BadSubdirectory { .. } => {
                Some("the part after '#' is a directory inside the repository, such as repo#examples/train".into())
            }
            _ => None,
        }
    }
}
