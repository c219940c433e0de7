//! Checkouts: a commit of a mirror (or of the user's repository) into a run's directory,
//! with its submodules, recursively.

use std::ffi::OsString;
use std::fs;
use std::path::Path;

use super::{GitMirror, run_git, run_local, strip_credentials};
use crate::source::SourceError;
use crate::support::cache::Cache;

/// Submodules nested deeper than this are taken for a cycle.
const MAX_SUBMODULE_DEPTH: u32 = 16;

/// Check out `commit` from the repository at `objects` (a mirror, or the user's own
/// repository, which is only read) into `dest`, with submodules, recursively.
///
/// `origin_url` (credentials stripped) becomes the checkout's `origin`, and relative
/// submodule URLs resolve against it, as they would in a clone of the original.
pub fn checkout(cache: &Cache, objects: &Path, commit: &str, dest: &Path, origin_url: &str) -> Result<(), SourceError> {
    checkout_at_depth(cache, objects, commit, dest, origin_url, 0)
}

fn checkout_at_depth(
    cache: &Cache,
    objects: &Path,
    commit: &str,
    dest: &Path,
    origin_url: &str,
    depth: u32,
) -> Result<(), SourceError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    let mut clone: Vec<OsString> =
        ["clone", "--quiet", "--shared", "--no-checkout", "--config", "core.autocrlf=false", "--"]
            .iter()
            .map(OsString::from)
            .collect();
    clone.push(objects.into());
    clone.push(dest.into());
    run_git(parent, &clone)?;
    run_local(dest, &["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit])?;
    run_local(dest, &["remote", "set-url", "origin", &strip_credentials(origin_url)])?;
    checkout_submodules(cache, dest, origin_url, depth)
}

fn checkout_submodules(cache: &Cache, dest: &Path, super_url: &str, depth: u32) -> Result<(), SourceError> {
    let gitmodules = dest.join(".gitmodules");
    if !gitmodules.is_file() {
        return Ok(());
    }
    let listing = run_local(dest, &["ls-tree", "-r", "-z", "HEAD"])?;
    let gitlinks: Vec<(String, String)> = listing
        .split(|b| *b == 0)
        .filter_map(|rec| {
            let rec = std::str::from_utf8(rec).ok()?;
            let (meta, path) = rec.split_once('\t')?;
            let mut parts = meta.split(' ');
            (parts.next()? == "160000").then_some(())?;
            let sha = parts.nth(1)?;
            Some((sha.to_string(), path.to_string()))
        })
        .collect();
    if gitlinks.is_empty() {
        return Ok(());
    }
    if depth >= MAX_SUBMODULE_DEPTH {
        return Err(SourceError::GitCommand {
            command: "submodule checkout".into(),
            detail: format!("submodules nest deeper than {MAX_SUBMODULE_DEPTH} levels (a cycle?)"),
        });
    }
    let config =
        run_local(dest, &["config", "-z", "-f", ".gitmodules", "--get-regexp", r"^submodule\..*\.(path|url)$"])
            .unwrap_or_default();
    let mut paths: Vec<(String, String)> = Vec::new();
    let mut urls: Vec<(String, String)> = Vec::new();
    for rec in config.split(|b| *b == 0) {
        let Ok(rec) = std::str::from_utf8(rec) else { continue };
        let Some((key, value)) = rec.split_once('\n') else { continue };
        let Some(name) = key.strip_prefix("submodule.") else { continue };
        if let Some(n) = name.strip_suffix(".path") {
            paths.push((n.to_string(), value.to_string()));
        } else if let Some(n) = name.strip_suffix(".url") {
            urls.push((n.to_string(), value.to_string()));
        }
    }
    for (sha, path) in gitlinks {
        let url = paths
            .iter()
            .find(|(_, p)| p.trim_end_matches('/') == path)
            .and_then(|(name, _)| urls.iter().find(|(n, _)| n == name))
            .map(|(_, u)| join_submodule_url(super_url, u))
            .ok_or_else(|| SourceError::GitCommand {
                command: "submodule checkout".into(),
                detail: format!("submodule at '{path}' has no url in .gitmodules"),
            })?;
        let (mirror, _) = GitMirror::resolve(cache, &url, Some(&sha))?;
        let sub_dest = dest.join(&path);
        // The superproject's checkout leaves an empty directory where the submodule goes.
        let _ = fs::remove_dir(&sub_dest);
        checkout_at_depth(cache, &mirror.dir, &sha, &sub_dest, &url, depth + 1)?;
    }
    Ok(())
}

/// A submodule URL, with `./` and `../` resolved against the superproject's URL as git does.
pub fn join_submodule_url(base: &str, url: &str) -> String {
    if !(url.starts_with("./") || url.starts_with("../")) {
        return url.to_string();
    }
    let mut base = base.trim_end_matches('/').to_string();
    let mut rest = url;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("../") {
            rest = r;
            match base.rfind(['/', ':']) {
                Some(i) if base.as_bytes()[i] == b':' => base.truncate(i + 1),
                Some(i) => base.truncate(i),
                None => base.clear(),
            }
        } else {
            break;
        }
    }
    if base.ends_with(':') || base.is_empty() { format!("{base}{rest}") } else { format!("{base}/{rest}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_submodule_urls_resolve_like_git() {
        assert_eq!(join_submodule_url("https://h/org/super.git", "../lib.git"), "https://h/org/lib.git");
        assert_eq!(join_submodule_url("https://h/org/super", "./sub"), "https://h/org/super/sub");
        assert_eq!(join_submodule_url("git@h:org/super.git", "../lib.git"), "git@h:org/lib.git");
        assert_eq!(join_submodule_url("git@h:super.git", "../lib.git"), "git@h:lib.git");
        assert_eq!(join_submodule_url("/srv/git/super", "../lib"), "/srv/git/lib");
        assert_eq!(join_submodule_url("https://h/a", "https://other/b"), "https://other/b");
    }
}
