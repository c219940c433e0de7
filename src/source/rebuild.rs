//! Rebuilding a recorded source exactly, for `lockstep verify`: the commit plus the captured
//! dirty patch, the archive, or a local tree whose hash must still match.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::archive::resolve_archive;
use super::tree::{TreeEntry, digest_entries};
use super::uri::enter_subdirectory;
use super::{
    ResolvedSource, SourceError, SourceInfo, SourceKind, SourceRequest, clean_subdirectory, copy_tree, git, hash_tree,
    stat_cache_file,
};
use crate::source::{ArchiveFormat, Exclusions, Tree};
use crate::support::cache::Cache;
use crate::support::ids::short;

/// What is known of a recorded source, beyond its [`SourceInfo`].
#[derive(Debug, Clone)]
pub struct RebuildRequest<'a> {
    /// The recorded source.
    pub info: &'a SourceInfo,
    /// The paths the run wrote inside a local project (not part of its source).
    pub outputs: &'a [String],
    /// Whether the run ran in place (its outputs are then in the project directory).
    pub in_place: bool,
    /// The captured dirty patch of a dirty run, if it is at hand.
    pub patch: Option<&'a Path>,
    /// A local project directory to use instead of the recorded one.
    pub local_dir: Option<&'a Path>,
    /// The directory relative paths are resolved against; its repository is searched for the
    /// recorded commit too (a CI checkout, say).
    pub caller_dir: &'a Path,
    /// What a walk of the rebuilt tree leaves out.
    pub exclusions: &'a Exclusions,
}

/// Rebuild the source into `workdir`; its tree must hash as recorded.
pub fn rebuild(req: &RebuildRequest, cache: &Cache, workdir: &Path) -> Result<ResolvedSource, SourceError> {
    let info = req.info;
    match (info.kind, &info.commit) {
        (SourceKind::Archive, _) => {
            let format = ArchiveFormat::of(&info.uri)
                .ok_or_else(|| SourceError::Changed { detail: format!("'{}' is not an archive name", info.uri) })?;
            let request = SourceRequest {
                uri: &info.uri,
                version: None,
                isolated: true,
                caller_dir: req.caller_dir,
                exclusions: req.exclusions.clone(),
            };
            let location = info.uri.split('#').next().unwrap_or(&info.uri);
            let src = resolve_archive(&request, workdir, location, format, info.subdirectory.clone())?;
            if src.info.archive_sha256 != info.archive_sha256 {
                return Err(SourceError::Changed {
                    detail: format!("the archive {} is not the one the run used (its sha256 differs)", info.uri),
                });
            }
            same_tree(&info.tree_sha256, &src.info.tree_sha256, "archive")?;
            Ok(ResolvedSource { info: info.clone(), ..src })
        }
        (_, Some(commit)) => rebuild_commit(req, cache, workdir, commit),
        (_, None) => rebuild_local_tree(req, cache, workdir),
    }
}

fn same_tree(recorded: &str, found: &str, what: &str) -> Result<(), SourceError> {
    if recorded == found {
        Ok(())
    } else {
        Err(SourceError::Changed {
            detail: format!("the rebuilt {what} hashes to {}, the record says {}", short(found), short(recorded)),
        })
    }
}

/// A checkout of the recorded commit (plus its dirty patch) from the first repository that
/// has it: the recorded project's own, the caller's, or a mirror of the recorded URL.
fn rebuild_commit(
    req: &RebuildRequest,
    cache: &Cache,
    workdir: &Path,
    commit: &str,
) -> Result<ResolvedSource, SourceError> {
    let info = req.info;
    let local_candidates =
        [info.path.as_deref(), Some(Path::new(&info.uri)).filter(|p| p.is_dir()), Some(req.caller_dir)];
    let local_repo = local_candidates.into_iter().flatten().find_map(|dir| git::repo_with_commit(dir, commit));
    let origin = info.repo_url.clone().unwrap_or_else(|| info.uri.clone());
    match local_repo {
        Some(root) => git::checkout(cache, &root, commit, workdir, &origin)?,
        None => {
            let url = info.repo_url.as_deref().ok_or_else(|| SourceError::CommitNotFound {
                commit: commit.to_string(),
                tried: "the project's repository and the current directory's".into(),
            })?;
            let (mirror, _) = git::GitMirror::resolve(cache, url, Some(commit))?;
            git::checkout(cache, &mirror.dir, commit, workdir, url)?;
        }
    }
    if info.dirty {
        let patch = req.patch.filter(|p| p.is_file()).ok_or(SourceError::PatchMissing)?;
        git::apply_patch(workdir, patch)?;
    }
    let sub = info.subdirectory.as_deref().map(clean_subdirectory).transpose()?;
    let project_dir = match (&sub, &info.subdirectory) {
        (Some(s), Some(shown)) => enter_subdirectory(workdir, s, shown, &format!("{origin} at {}", short(commit)))?,
        _ => workdir.to_path_buf(),
    };
    let tree = hash_tree(&project_dir, req.exclusions, None)?;
    same_tree(&info.tree_sha256, &tree.sha256, "source")?;
    Ok(ResolvedSource { project_dir, in_place: false, info: info.clone(), dirty_patch: None, tree: None, stamps: None })
}

/// A copy of a local project whose files (without the run's own outputs) must hash as the
/// record says.
fn rebuild_local_tree(req: &RebuildRequest, cache: &Cache, workdir: &Path) -> Result<ResolvedSource, SourceError> {
    let info = req.info;
    let dir: PathBuf = req
        .local_dir
        .map(Path::to_path_buf)
        .or_else(|| info.path.clone())
        .ok_or_else(|| SourceError::Changed { detail: "the record names no local directory".into() })?;
    let dir = req.caller_dir.join(dir);
    if !dir.is_dir() {
        return Err(SourceError::NotFound { path: dir });
    }
    let tree = hash_tree(&dir, req.exclusions, Some(&stat_cache_file(cache, &dir)?))?;
    let tree = without_outputs(tree, req.outputs, req.in_place);
    let expected = info.input_tree_sha256.as_deref().unwrap_or(&info.tree_sha256);
    same_tree(expected, &tree.sha256, "project directory")?;
    copy_tree(&dir, &tree, workdir)?;
    Ok(ResolvedSource {
        project_dir: workdir.to_path_buf(),
        in_place: false,
        info: info.clone(),
        dirty_patch: None,
        tree: None,
        stamps: None,
    })
}

/// A local tree without the files an in-place run wrote into it.
pub fn without_outputs(tree: Tree, outputs: &[String], in_place: bool) -> Tree {
    if !in_place || outputs.is_empty() {
        return tree;
    }
    let written: HashSet<&str> = outputs.iter().map(String::as_str).collect();
    let entries: Vec<TreeEntry> =
        tree.entries.into_iter().filter(|e| !written.contains(e.path.to_string_lossy().as_ref())).collect();
    let sha256 = digest_entries(&entries);
    Tree { entries, sha256 }
}
