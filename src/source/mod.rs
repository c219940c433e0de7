//! Sources: turn a URI (plus version and subdirectory) into a working tree on disk and its
//! identity: commit, branch, remote, dirty state and tree hash.

pub mod archive;
mod error;
pub mod git;
mod info;
mod local;
mod rebuild;
pub mod tree;
mod uri;

use std::path::{Path, PathBuf};

use crate::support::cache::Cache;
pub(crate) use archive::resolve_archive;
pub use archive::{ArchiveError, ArchiveFormat};
pub use error::SourceError;
pub use info::{SourceInfo, SourceKind};
pub use local::{copy_tree, stat_cache_file};
pub use rebuild::{RebuildRequest, rebuild, without_outputs};
pub use tree::{Exclusions, FileStamps, Tree, TreeError, hash_tree};
pub use uri::{SourceUri, clean_subdirectory};

/// What a run needs to know about its source.
#[derive(Debug)]
pub struct ResolvedSource {
    /// The directory the entry point runs in.
    pub project_dir: PathBuf,
    /// Whether that is the user's own directory (not a per-run copy or checkout).
    pub in_place: bool,
    /// The identity to record.
    pub info: SourceInfo,
    /// The dirty patch (binary `git diff` against `commit`, applied at the repository root).
    pub dirty_patch: Option<Vec<u8>>,
    /// The hashed files of a local source (other sources are immutable and not listed).
    pub tree: Option<Tree>,
    /// For a run in place, the stat data of the walk that hashed the tree: the snapshot its
    /// outputs are found against (one walk serves both).
    pub stamps: Option<FileStamps>,
}

/// A request to resolve a source.
#[derive(Debug, Clone)]
pub struct SourceRequest<'a> {
    /// The URI: a path or a git URL, with an optional `#subdirectory`.
    pub uri: &'a str,
    /// A branch, tag or commit.
    pub version: Option<&'a str>,
    /// Run a local directory in a fresh copy instead of in place.
    pub isolated: bool,
    /// The directory relative paths are resolved against.
    pub caller_dir: &'a Path,
    /// Directories walks leave out (the store of this run).
    pub exclusions: Exclusions,
}

/// Resolve a source. Copies and checkouts go into `workdir` (which must not exist yet),
/// inside the run's directory; a local directory runs in place unless `isolated`.
pub fn resolve(req: &SourceRequest, cache: &Cache, workdir: &Path) -> Result<ResolvedSource, SourceError> {
    match SourceUri::parse(req.uri)? {
        SourceUri::Local { path, subdirectory } => local::resolve_local(req, cache, workdir, &path, subdirectory),
        SourceUri::Git { url, subdirectory } => git::resolve_git(req, cache, workdir, &url, subdirectory),
        SourceUri::Archive { location, format, subdirectory } => {
            archive::resolve_archive(req, workdir, &location, format, subdirectory)
        }
    }
}
