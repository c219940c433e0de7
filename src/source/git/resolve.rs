//! The git resolver: a commit checked out into the run's directory, and its tree hash,
//! memoized per repository, commit and subdirectory.

use crate::support::fs::write_atomic;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{GitMirror, Resolved, checkout, strip_credentials};
use crate::source::uri::{clean_subdirectory, enter_subdirectory};
use crate::source::{ResolvedSource, SourceError, SourceInfo, SourceKind, SourceRequest, hash_tree, tree};
use crate::support::cache::{self, Cache, CacheBucket};
use crate::support::ids::short;

#[derive(Serialize)]
struct CommitTreeKey<'a> {
    schema: &'a str,
    repo: &'a str,
    commit: &'a str,
    subdirectory: &'a str,
}

/// Resolve a git URL: its mirror, the commit of `req.version`, and a checkout in `workdir`.
pub(crate) fn resolve_git(
    req: &SourceRequest,
    cache: &Cache,
    workdir: &Path,
    url: &str,
    subdirectory: Option<String>,
) -> Result<ResolvedSource, SourceError> {
    let sub = subdirectory.as_deref().map(clean_subdirectory).transpose()?;
    let (mirror, resolved) = GitMirror::resolve(cache, url, req.version)?;
    checkout(cache, &mirror.dir, &resolved.commit, workdir, url)?;
    let shown_url = strip_credentials(url);
    finish_checkout(req, cache, workdir, &shown_url, &shown_url, resolved, sub, subdirectory)
}

/// The identity of a checkout of `resolved` in `workdir`, entering the subdirectory.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_checkout(
    req: &SourceRequest,
    cache: &Cache,
    workdir: &Path,
    location: &str,
    repo_url: &str,
    resolved: Resolved,
    sub: Option<PathBuf>,
    shown_sub: Option<String>,
) -> Result<ResolvedSource, SourceError> {
    let project_dir = match (&sub, &shown_sub) {
        (Some(s), Some(shown)) => {
            enter_subdirectory(workdir, s, shown, &format!("{location} at {}", short(&resolved.commit)))?
        }
        _ => workdir.to_path_buf(),
    };
    let sub_str = sub.as_ref().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let key = cache::content_key(&CommitTreeKey {
        schema: tree::TREE_HASH_VERSION,
        repo: repo_url,
        commit: &resolved.commit,
        subdirectory: &sub_str,
    });
    let memo = cache.bucket(CacheBucket::TreeHash)?.join(format!("commit-{key}"));
    let tree_sha256 = match fs::read_to_string(&memo) {
        Ok(s) if s.len() == 64 => s,
        _ => {
            let tree = hash_tree(&project_dir, &req.exclusions, None)?;
            // The memo only saves time; failing to write it must not fail the run.
            let _ = write_atomic(&memo, tree.sha256.as_bytes());
            tree.sha256
        }
    };
    let info = SourceInfo {
        uri: strip_credentials(req.uri),
        kind: SourceKind::Git,
        path: None,
        version: req.version.map(str::to_string),
        commit: Some(resolved.commit),
        branch: resolved.branch,
        repo_url: Some(repo_url.to_string()),
        subdirectory: sub.map(|s| s.to_string_lossy().into_owned()),
        tree_sha256,
        dirty: false,
        patch_sha256: None,
        archive_sha256: None,
        input_tree_sha256: None,
    };
    Ok(ResolvedSource { project_dir, in_place: false, info, dirty_patch: None, tree: None, stamps: None })
}
