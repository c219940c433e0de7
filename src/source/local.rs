//! Local directories as sources: hashed in place (with the stat cache), copied for an
//! isolated run, or checked out at a `--version` of the repository holding them.

use crate::support::digest;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::uri::{clean_subdirectory, enter_subdirectory};
use super::{ResolvedSource, SourceError, SourceInfo, SourceKind, SourceRequest, Tree, git, tree};
use crate::support::cache::{self, Cache, CacheBucket};

#[derive(Serialize)]
struct StatCacheKey<'a> {
    schema: u32,
    dir: &'a Path,
}

pub fn stat_cache_file(cache: &Cache, dir: &Path) -> Result<PathBuf, SourceError> {
    let key = cache::content_key(&StatCacheKey { schema: 1, dir });
    Ok(cache.bucket(CacheBucket::TreeHash)?.join(key))
}

/// Resolve a local directory: in place, as an isolated copy, or at `req.version` of its
/// repository.
pub(crate) fn resolve_local(
    req: &SourceRequest,
    cache: &Cache,
    workdir: &Path,
    path: &Path,
    subdirectory: Option<String>,
) -> Result<ResolvedSource, SourceError> {
    let base = req.caller_dir.join(path);
    if !base.is_dir() {
        return Err(SourceError::NotFound { path: base });
    }
    let base = fs::canonicalize(&base).map_err(|e| SourceError::io(&base, e))?;
    let sub = subdirectory.as_deref().map(clean_subdirectory).transpose()?;
    let project_dir = match (&sub, &subdirectory) {
        (Some(s), Some(shown)) => enter_subdirectory(&base, s, shown, &base.display().to_string())?,
        _ => base.clone(),
    };
    let repo = git::inspect_local(&project_dir)?;

    if let Some(version) = req.version {
        let repo =
            repo.ok_or_else(|| SourceError::VersionNeedsGit { version: version.into(), path: project_dir.clone() })?;
        let in_repo = git::relative_in_repo(&repo.root, &project_dir)?;
        let git_repo = git2::Repository::open(&repo.root).map_err(|e| SourceError::git2(&repo.root, e))?;
        let location = repo.root.display().to_string();
        let resolved = git::lookup_version(&git_repo, Some(version))
            .map_err(|e| SourceError::git2(&repo.root, e))?
            .map(|(r, _)| r)
            .ok_or_else(|| SourceError::UnknownVersion {
                version: version.into(),
                location: location.clone(),
                known: git::ref_names(&git_repo),
            })?;
        let origin = repo.remote_url.clone().unwrap_or_else(|| location.clone());
        git::checkout(cache, &repo.root, &resolved.commit, workdir, &origin)?;
        let shown_sub = (!in_repo.as_os_str().is_empty()).then(|| in_repo.to_string_lossy().into_owned());
        return git::finish_checkout(
            req,
            cache,
            workdir,
            &location,
            &origin,
            resolved,
            Some(in_repo).filter(|p| !p.as_os_str().is_empty()),
            shown_sub,
        );
    }

    let stat_cache = stat_cache_file(cache, &project_dir)?;
    let (tree, stamps) = tree::hash_tree_with_stamps(&project_dir, &req.exclusions, Some(&stat_cache))?;
    let (mut info, mut dirty_patch) = (
        SourceInfo {
            uri: git::strip_credentials(req.uri),
            kind: SourceKind::Local,
            path: Some(project_dir.clone()),
            version: None,
            commit: None,
            branch: None,
            repo_url: None,
            subdirectory: subdirectory.clone(),
            tree_sha256: tree.sha256.clone(),
            dirty: false,
            patch_sha256: None,
            archive_sha256: None,
            input_tree_sha256: None,
        },
        None,
    );
    if let Some(repo) = repo {
        let in_repo = git::relative_in_repo(&repo.root, &project_dir)?;
        info.commit = repo.commit.clone();
        info.branch = repo.branch.clone();
        info.repo_url = repo.remote_url.clone();
        info.subdirectory = (!in_repo.as_os_str().is_empty()).then(|| in_repo.to_string_lossy().into_owned());
        info.dirty = repo.dirty;
        if repo.dirty {
            let patch = git::dirty_patch(&repo, &in_repo)?;
            info.patch_sha256 = Some(digest::sha256_hex(&patch));
            dirty_patch = Some(patch);
        }
    }
    if !req.isolated {
        return Ok(ResolvedSource {
            project_dir,
            in_place: true,
            info,
            dirty_patch,
            tree: Some(tree),
            stamps: Some(stamps),
        });
    }
    copy_tree(&project_dir, &tree, workdir)?;
    Ok(ResolvedSource {
        project_dir: workdir.to_path_buf(),
        in_place: false,
        info,
        dirty_patch,
        tree: Some(tree),
        stamps: None,
    })
}

/// Copy the files of a hashed tree (and nothing else) from `from` into `to`.
pub fn copy_tree(from: &Path, tree: &Tree, to: &Path) -> Result<(), SourceError> {
    fs::create_dir_all(to).map_err(|e| SourceError::io(to, e))?;
    for entry in &tree.entries {
        let src = from.join(&entry.path);
        let dst = to.join(&entry.path);
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).map_err(|e| SourceError::io(parent, e))?;
        }
        if entry.mode == tree::FileMode::Symlink {
            let target = fs::read_link(&src).map_err(|e| SourceError::io(&src, e))?;
            std::os::unix::fs::symlink(target, &dst).map_err(|e| SourceError::io(&dst, e))?;
        } else {
            fs::copy(&src, &dst).map_err(|e| SourceError::io(&src, e))?;
        }
    }
    Ok(())
}
