//! The user's own checkout: its commit, branch, remote and dirty state, and the dirty
//! patch that rebuilds it on a clean checkout.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};

use super::{run_git, run_git_env, run_local, strip_credentials};
use crate::source::SourceError;

/// What a local checkout says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRepo {
    /// The repository's work tree.
    pub root: PathBuf,
    /// The HEAD commit (none in a repository without commits).
    pub commit: Option<String>,
    /// The current branch, unless HEAD is detached.
    pub branch: Option<String>,
    /// The URL of the branch's remote (or `origin`), credentials stripped.
    pub remote_url: Option<String>,
    /// Whether the project's part of the tree differs from HEAD (untracked files included).
    pub dirty: bool,
}

/// The git state of the repository holding `project_dir`, if it is in one.
pub fn inspect_local(project_dir: &Path) -> Result<Option<LocalRepo>, SourceError> {
    let repo = match git2::Repository::discover(project_dir) {
        Ok(r) => r,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
        Err(e) => return Err(SourceError::git2(project_dir, e)),
    };
    let Some(root) = repo.workdir().map(Path::to_path_buf) else { return Ok(None) };
    let err = |e| SourceError::git2(&root, e);
    let (commit, branch) = match repo.head() {
        Ok(head) => {
            let commit = head.peel_to_commit().ok().map(|c| c.id().to_string());
            let branch = head.is_branch().then(|| head.shorthand().map(str::to_string)).flatten();
            (commit, branch)
        }
        Err(e) if e.code() == git2::ErrorCode::UnbornBranch => {
            let branch = repo
                .find_reference("HEAD")
                .ok()
                .and_then(|h| h.symbolic_target().and_then(|t| t.strip_prefix("refs/heads/")).map(str::to_string));
            (None, branch)
        }
        Err(e) => return Err(err(e)),
    };
    let remote_name = branch
        .as_ref()
        .and_then(|b| repo.config().ok()?.get_string(&format!("branch.{b}.remote")).ok())
        .unwrap_or_else(|| "origin".to_string());
    let remote_url = repo.find_remote(&remote_name).ok().and_then(|r| r.url().map(strip_credentials));
    let sub = relative_in_repo(&root, project_dir)?;
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true).include_ignored(false).exclude_submodules(true);
    if !sub.as_os_str().is_empty() {
        opts.pathspec(&sub);
    }
    let dirty = !repo.statuses(Some(&mut opts)).map_err(err)?.is_empty();
    Ok(Some(LocalRepo { root, commit, branch, remote_url, dirty }))
}

/// The work tree of the repository holding `dir`, if that repository has `commit`.
pub fn repo_with_commit(dir: &Path, commit: &str) -> Option<PathBuf> {
    let repo = git2::Repository::discover(dir).ok()?;
    let oid = git2::Oid::from_str(commit).ok()?;
    repo.find_commit(oid).ok()?;
    repo.workdir().map(Path::to_path_buf)
}

/// Apply a binary patch made by [`dirty_patch`] to the checkout at `root`.
pub fn apply_patch(root: &Path, patch: &Path) -> Result<(), SourceError> {
    let args: Vec<OsString> = vec!["apply".into(), "--whitespace=nowarn".into(), patch.as_os_str().to_os_string()];
    run_git(root, &args).map(|_| ())
}

/// `project_dir` relative to the repository root (empty when they are the same).
pub fn relative_in_repo(root: &Path, project_dir: &Path) -> Result<PathBuf, SourceError> {
    let canon = |p: &Path| fs::canonicalize(p).map_err(|e| SourceError::io(p, e));
    let (root_c, dir_c) = (canon(root)?, canon(project_dir)?);
    Ok(dir_c.strip_prefix(&root_c).map(Path::to_path_buf).unwrap_or_default())
}

/// The exact dirty state of `sub` in a local checkout as one binary patch against HEAD:
/// staged and unstaged changes plus untracked, non-ignored files. `git apply` on a clean
/// checkout of the commit rebuilds the tree. The user's index is not touched: the patch is
/// computed through a temporary copy of it.
pub fn dirty_patch(repo: &LocalRepo, sub: &Path) -> Result<Vec<u8>, SourceError> {
    let git_dir = run_local(&repo.root, &["rev-parse", "--absolute-git-dir"])?;
    let git_dir = PathBuf::from(String::from_utf8_lossy(&git_dir).trim().to_string());
    let tmp = tempfile::Builder::new()
        .prefix("lockstep-index-")
        .tempdir()
        .map_err(|e| SourceError::io(Path::new("/tmp"), e))?;
    let index = tmp.path().join("index");
    if git_dir.join("index").is_file() {
        fs::copy(git_dir.join("index"), &index).map_err(|e| SourceError::io(&index, e))?;
    }
    let pathspec: OsString = if sub.as_os_str().is_empty() { ".".into() } else { sub.as_os_str().to_os_string() };
    let with_index = |args: &[&OsStr]| -> Result<Vec<u8>, SourceError> {
        let mut all: Vec<OsString> = vec!["-C".into(), repo.root.clone().into()];
        all.extend(args.iter().map(|a| a.to_os_string()));
        run_git_env(&all, &[("GIT_INDEX_FILE", index.as_os_str())])
    };
    with_index(&[OsStr::new("add"), OsStr::new("-A"), OsStr::new("--"), &pathspec])?;
    // The empty tree stands in for HEAD in a repository without commits.
    let base = repo.commit.clone().unwrap_or_else(|| "4b825dc642cb6eb9a060e54bf8d69288fbee4904".into());
    with_index(&[
        OsStr::new("diff"),
        OsStr::new("--cached"),
        OsStr::new("--binary"),
        OsStr::new("--full-index"),
        OsStr::new("--no-renames"),
        OsStr::new("--no-color"),
        OsStr::new("--no-ext-diff"),
        OsStr::new("--no-textconv"),
        OsStr::new("--src-prefix=a/"),
        OsStr::new("--dst-prefix=b/"),
        OsStr::new(&base),
        OsStr::new("--"),
        &pathspec,
    ])
}
