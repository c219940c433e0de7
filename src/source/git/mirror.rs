//! Repository mirrors: one bare clone per remote URL in the cache, fetched only when a
//! version can have moved, and the lookup of a version (branch, tag, SHA) in a repository.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{run_local, run_network, strip_credentials};
use crate::source::SourceError;
use crate::support::cache::{self, Cache, CacheBucket};

/// A commit chosen from a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The full commit SHA.
    pub commit: String,
    /// The branch, when the version named one (or the default branch was used).
    pub branch: Option<String>,
}

/// A bare mirror of one remote repository in the cache.
#[derive(Debug, Clone)]
pub struct GitMirror {
    /// The bare repository.
    pub dir: PathBuf,
    /// The URL it mirrors.
    pub url: String,
}

#[derive(Serialize)]
struct MirrorKey<'a> {
    schema: u32,
    url: &'a str,
}

impl GitMirror {
    /// The mirror of `url` with `version` resolved to a commit, fetching only when needed:
    /// a commit SHA or tag already in the mirror needs no network; a branch or the default
    /// branch is fetched (incrementally) to find its current tip.
    ///
    /// One mirror serves a repository whatever credentials its URL carries: it is keyed on,
    /// and records, the URL without them.
    pub fn resolve(cache: &Cache, url: &str, version: Option<&str>) -> Result<(GitMirror, Resolved), SourceError> {
        let bucket = cache.bucket(CacheBucket::Git)?;
        let key = cache::content_key(&MirrorKey { schema: 1, url: &strip_credentials(url) });
        let dir = bucket.join(&key);
        let _lock = cache.lock(CacheBucket::Git, &key)?;
        let fresh = !dir.join("HEAD").is_file();
        if fresh {
            clone_mirror(url, &bucket, &dir)?;
        }
        let mirror = GitMirror { dir, url: url.to_string() };
        match mirror.lookup(version)? {
            Some((resolved, false)) => return Ok((mirror, resolved)),
            Some((resolved, true)) if fresh => return Ok((mirror, resolved)),
            None if fresh && !version.is_some_and(is_full_sha) => return Err(mirror.unknown_version(version)),
            _ => {}
        }
        if !fresh {
            run_network(&["fetch", "--prune", "--quiet", "origin"], Some(&mirror.dir), url)?;
        }
        if let Some((resolved, _)) = mirror.lookup(version)? {
            return Ok((mirror, resolved));
        }
        // A commit that no branch or tag reaches (an old pull request, say) can still be
        // fetched by its full SHA from servers that allow it.
        if let Some(sha) = version.filter(|v| is_full_sha(v)) {
            let refspec = format!("{sha}:refs/lockstep/{sha}");
            if run_network(&["fetch", "--quiet", "origin", &refspec], Some(&mirror.dir), url).is_ok()
                && let Some((resolved, _)) = mirror.lookup(version)?
            {
                return Ok((mirror, resolved));
            }
        }
        Err(mirror.unknown_version(version))
    }

    /// Find `version` in the mirror: the commit, and whether it can move (a branch or HEAD).
    fn lookup(&self, version: Option<&str>) -> Result<Option<(Resolved, bool)>, SourceError> {
        let repo = git2::Repository::open_bare(&self.dir).map_err(|e| SourceError::git2(&self.dir, e))?;
        lookup_version(&repo, version).map_err(|e| SourceError::git2(&self.dir, e))
    }

    fn unknown_version(&self, version: Option<&str>) -> SourceError {
        let refs = git2::Repository::open_bare(&self.dir).map(|r| ref_names(&r)).unwrap_or_default();
        SourceError::UnknownVersion {
            version: version.unwrap_or("HEAD").to_string(),
            location: strip_credentials(&self.url),
            known: refs,
        }
    }
}

/// Resolve a version (branch, tag, full or short SHA; `None` for HEAD) in a repository.
/// The flag says whether the answer can move, so that a fetch is needed to trust it.
pub fn lookup_version(repo: &git2::Repository, version: Option<&str>) -> Result<Option<(Resolved, bool)>, git2::Error> {
    let peel = |r: git2::Reference| r.peel_to_commit().map(|c| c.id().to_string());
    let Some(v) = version else {
        let head = match repo.find_reference("HEAD") {
            Ok(h) => h,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let branch = head.symbolic_target().and_then(|t| t.strip_prefix("refs/heads/")).map(str::to_string);
        return match head.resolve().and_then(peel) {
            Ok(commit) => Ok(Some((Resolved { commit, branch }, true))),
            Err(e) if matches!(e.code(), git2::ErrorCode::NotFound | git2::ErrorCode::UnbornBranch) => Ok(None),
            Err(e) => Err(e),
        };
    };
    if let Ok(tag) = repo.find_reference(&format!("refs/tags/{v}")) {
        return Ok(Some((Resolved { commit: peel(tag)?, branch: None }, false)));
    }
    if let Ok(branch) = repo.find_reference(&format!("refs/heads/{v}")) {
        return Ok(Some((Resolved { commit: peel(branch)?, branch: Some(v.to_string()) }, true)));
    }
    if v.len() >= 4
        && v.len() <= 40
        && v.chars().all(|c| c.is_ascii_hexdigit())
        && let Ok(obj) = repo.revparse_single(v)
        && let Ok(commit) = obj.peel_to_commit()
    {
        return Ok(Some((Resolved { commit: commit.id().to_string(), branch: None }, false)));
    }
    Ok(None)
}

/// Some branch and tag names of a repository, for an error's hint.
pub fn ref_names(repo: &git2::Repository) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(refs) = repo.references() {
        for r in refs.flatten() {
            if let Some(name) = r.name()
                && let Some(n) = name.strip_prefix("refs/heads/").or_else(|| name.strip_prefix("refs/tags/"))
            {
                names.push(n.to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

fn is_full_sha(v: &str) -> bool {
    v.len() == 40 && v.chars().all(|c| c.is_ascii_hexdigit())
}

/// Clone `url` as a bare mirror into a temporary directory of the bucket, then publish it.
fn clone_mirror(url: &str, bucket: &Path, dir: &Path) -> Result<(), SourceError> {
    let tmp = tempfile::Builder::new().prefix(".tmp-").tempdir_in(bucket).map_err(|e| SourceError::io(bucket, e))?;
    let target = tmp.path().join("repo.git");
    let target_os = target.as_os_str().to_os_string();
    let stripped = strip_credentials(url);
    run_network(
        &[
            OsStr::new("clone"),
            OsStr::new("--bare"),
            OsStr::new("--quiet"),
            OsStr::new("--"),
            OsStr::new(&stripped),
            &target_os,
        ],
        None,
        url,
    )?;
    // Branches and tags only (not pull-request refs); no automatic gc, so that objects a
    // concurrent checkout reads are never pruned under it.
    for (key, value) in
        [("remote.origin.fetch", "+refs/heads/*:refs/heads/*"), ("gc.auto", "0"), ("core.autocrlf", "false")]
    {
        run_local(&target, &["config", key, value])?;
    }
    run_local(&target, &["config", "--add", "remote.origin.fetch", "+refs/tags/*:refs/tags/*"])?;
    fs::rename(&target, dir).map_err(|e| SourceError::io(dir, e))?;
    Ok(())
}
