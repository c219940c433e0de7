//! Git sources: a mirror cache per repository URL, checkouts into per-run directories, and
//! the state of a local checkout (commit, branch, remote, dirty patch).
//!
//! Network operations run the user's own `git` program, so that credential helpers, the ssh
//! agent and proxy settings apply as they do for the user; local reads use libgit2.
//!
//! Credentials written in a URL (`https://user:token@host/...`) never reach git's argv or the
//! cache: mirrors are keyed on and configured with the URL without them, and they go to git
//! only for the network operation, through its askpass mechanism, with lockstep itself as the
//! askpass program reading them from its environment.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::SourceError;
use crate::cache::{self, Cache};

mod resolve;

pub(crate) use resolve::{finish_checkout, resolve_git};

/// The cache bucket of repository mirrors.
const BUCKET: &str = "git-v1";

/// A network git command that prints nothing for this long is stuck (unreachable host,
/// silent server) and is stopped; `LOCKSTEP_GIT_TIMEOUT` (seconds) overrides it.
const DEFAULT_STALL_SECS: u64 = 120;

/// How long git gets to clean up (temporary packs, lock files) after SIGTERM before its
/// process group is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The variables that carry a URL's credentials to the askpass program: set for git's
/// process only, where the remote helpers inherit them, and never on any argv.
const ASKPASS_USERNAME: &str = "LOCKSTEP_GIT_USERNAME";
const ASKPASS_PASSWORD: &str = "LOCKSTEP_GIT_PASSWORD";

/// Submodules nested deeper than this are taken for a cycle.
const MAX_SUBMODULE_DEPTH: u32 = 16;

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
        let bucket = cache.bucket(BUCKET)?;
        let key = cache::content_key(&MirrorKey { schema: 1, url: &strip_credentials(url) });
        let dir = bucket.join(&key);
        let _lock = cache.lock(BUCKET, &key)?;
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

/// A URL without the secrets it may carry: the whole user-info of http(s) URLs (often a
/// token), the password of others. scp-like `user@host:path` has no secret and stays.
pub fn strip_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return url.to_string() };
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        format!("{scheme}://{host}{path}")
    } else {
        let user = userinfo.split(':').next().unwrap_or("");
        format!("{scheme}://{user}@{host}{path}")
    }
}

/// The secret a URL carries, as (user, password), percent-decoded as git decodes them: the
/// user-info of an http(s) URL (a lone token is the user, with an empty password), the
/// password of others. `None` when [`strip_credentials`] leaves the URL as it is.
fn url_credentials(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, password),
        None if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => (userinfo, ""),
        None => return None,
    };
    let decode = crate::record::mlflow::percent_decode;
    Some((decode(user), decode(password)))
}

/// When git (`GIT_ASKPASS`) or ssh (`SSH_ASKPASS`) runs lockstep to ask for a URL's
/// credentials, with the prompt as its only argument: the answer. `None` for any other
/// command line. `var` reads the environment.
pub fn askpass_answer(args: &[OsString], var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let [_, prompt] = args else { return None };
    let password = var(ASKPASS_PASSWORD)?;
    // Prompts are sentences; no lockstep command or option has a space.
    let prompt = prompt.to_str().filter(|p| p.contains(' '))?;
    match prompt.starts_with("Username") {
        true => Some(var(ASKPASS_USERNAME).unwrap_or_default()),
        false => Some(password),
    }
}

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

fn git_command(args: &[OsString], env: &[(&str, &OsStr)]) -> duct::Expression {
    let mut expr = duct::cmd("git", args).env("GIT_TERMINAL_PROMPT", "0").env("LC_ALL", "C");
    for (k, v) in env {
        expr = expr.env(k, v);
    }
    expr
}

fn describe(args: &[OsString]) -> String {
    let mut s = String::from("git");
    for a in args {
        s.push(' ');
        s.push_str(&crate::manifest::shell_quote(&a.to_string_lossy()));
    }
    s
}

fn last_lines(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn run_git_env(args: &[OsString], env: &[(&str, &OsStr)]) -> Result<Vec<u8>, SourceError> {
    let out =
        git_command(args, env).stdout_capture().stderr_capture().unchecked().run().map_err(SourceError::spawn_git)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(SourceError::GitCommand { command: describe(args), detail: last_lines(&out.stderr, 3) })
    }
}

fn run_git(dir: &Path, args: &[OsString]) -> Result<Vec<u8>, SourceError> {
    let mut all: Vec<OsString> = vec!["-C".into(), dir.into()];
    all.extend_from_slice(args);
    run_git_env(&all, &[])
}

fn run_local(dir: &Path, args: &[&str]) -> Result<Vec<u8>, SourceError> {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    run_git(dir, &args)
}

fn stall_timeout() -> Duration {
    let secs = std::env::var("LOCKSTEP_GIT_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_STALL_SECS);
    Duration::from_secs(secs.max(1))
}

/// What git needs for one network operation on a URL with credentials: leading options and
/// variables.
struct CredentialSetup {
    options: Vec<OsString>,
    vars: Vec<(&'static str, OsString)>,
}

/// Variables and leading options that give git the credentials of `url` for one network
/// operation. The user's credential helpers are left out for such a URL: it names its own
/// credentials, and a helper such as `store` would write them to disk.
fn credential_setup(url: &str) -> Result<CredentialSetup, SourceError> {
    let Some((user, password)) = url_credentials(url) else {
        return Ok(CredentialSetup { options: Vec::new(), vars: Vec::new() });
    };
    let exe = std::env::current_exe().map_err(|e| SourceError::io(Path::new("/proc/self/exe"), e))?;
    let options = vec!["-c".into(), "credential.helper=".into()];
    let vars = vec![
        ("GIT_ASKPASS", exe.clone().into_os_string()),
        // A password in an ssh URL goes to ssh through the same program.
        ("SSH_ASKPASS", exe.into_os_string()),
        ("SSH_ASKPASS_REQUIRE", "force".into()),
        (ASKPASS_USERNAME, user.into()),
        (ASKPASS_PASSWORD, password.into()),
    ];
    Ok(CredentialSetup { options, vars })
}

/// Run a git command that talks to `url`, stopping it when it makes no progress for the
/// stall timeout. Its messages are shown on a terminal and quoted in errors.
///
/// git runs in a process group of its own, so that stopping it also stops the remote
/// helpers (`git-remote-http`, ssh) it started, which would otherwise hang on. In a
/// background group it must not stop on reading the terminal (SIGTTIN): a prompt fails at
/// once instead.
fn run_network<S: AsRef<OsStr>>(args: &[S], dir: Option<&Path>, url: &str) -> Result<(), SourceError> {
    let CredentialSetup { options: mut all, vars } = credential_setup(url)?;
    if let Some(d) = dir {
        all.extend(["-C".into(), d.as_os_str().to_os_string()]);
    }
    all.extend(args.iter().map(|a| a.as_ref().to_os_string()));
    let timeout = stall_timeout();
    let (mut reader, writer) = std::io::pipe().map_err(|e| SourceError::io(Path::new("pipe"), e))?;
    let handle = {
        let writer2 = writer.try_clone().map_err(|e| SourceError::io(Path::new("pipe"), e))?;
        let vars: Vec<(&str, &OsStr)> = vars.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        let expr = git_command(&all, &vars)
            .stdin_null()
            .stdout_file(writer)
            .stderr_file(writer2)
            .unchecked()
            .before_spawn(in_own_group);
        expr.start().map_err(SourceError::spawn_git)?
    };
    let started = Instant::now();
    let last_activity = Arc::new(AtomicU64::new(0));
    let output = Arc::new(Mutex::new(Vec::new()));
    let echo = std::io::stderr().is_terminal();
    let pump = {
        let (last_activity, output) = (last_activity.clone(), output.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                last_activity.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                if echo {
                    let _ = std::io::stderr().write_all(&buf[..n]);
                }
                let mut out = output.lock().unwrap();
                out.extend_from_slice(&buf[..n]);
                let excess = out.len().saturating_sub(16 * 1024);
                out.drain(..excess);
            }
        })
    };
    let status = loop {
        match handle.wait_timeout(Duration::from_millis(100)).map_err(SourceError::spawn_git)? {
            Some(out) => break out.status,
            None if crate::cancel::requested().is_some() => {
                stop_group(&handle);
                return Err(SourceError::GitNetwork { url: strip_credentials(url), detail: "interrupted".into() });
            }
            None => {
                let idle = started.elapsed().as_millis() as u64 - last_activity.load(Ordering::Relaxed);
                if idle > timeout.as_millis() as u64 {
                    stop_group(&handle);
                    // A process that left the group may still hold the pipe; the pump is left
                    // to end with it.
                    return Err(SourceError::GitStalled { url: strip_credentials(url), seconds: timeout.as_secs() });
                }
            }
        }
    };
    let _ = pump.join();
    if status.success() {
        Ok(())
    } else {
        let detail = last_lines(&output.lock().unwrap(), 3);
        Err(SourceError::GitNetwork { url: strip_credentials(url), detail })
    }
}

/// Make the command lead a process group of its own, not stopped by reading the terminal.
fn in_own_group(cmd: &mut std::process::Command) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and only calls signal(2),
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGTTIN, libc::SIG_IGN);
            Ok(())
        });
    }
    Ok(())
}

/// Stop git and everything in its process group: SIGTERM, so that git removes its temporary
/// files, then SIGKILL after [`STOP_GRACE`] for whatever is left (git reaped or not: its
/// helpers keep the group alive, and the group id is not reused while they live).
fn stop_group(handle: &duct::Handle) {
    let Some(&pid) = handle.pids().first() else { return };
    let Ok(group) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill(2) with a negative pid signals the process group `group`, which git leads.
    unsafe { libc::kill(-group, libc::SIGTERM) };
    let _ = handle.wait_timeout(STOP_GRACE);
    // SAFETY: as above.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let _ = handle.kill();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_stripped() {
        assert_eq!(strip_credentials("https://user:tok@github.com/o/r.git"), "https://github.com/o/r.git");
        assert_eq!(strip_credentials("https://tok@h/o/r"), "https://h/o/r");
        assert_eq!(strip_credentials("ssh://git:pw@h:22/o/r"), "ssh://git@h:22/o/r");
        assert_eq!(strip_credentials("git@github.com:o/r.git"), "git@github.com:o/r.git");
        assert_eq!(strip_credentials("file:///tmp/r"), "file:///tmp/r");
        assert_eq!(strip_credentials("https://h/path@v1"), "https://h/path@v1");
    }

    #[test]
    fn relative_submodule_urls_resolve_like_git() {
        assert_eq!(join_submodule_url("https://h/org/super.git", "../lib.git"), "https://h/org/lib.git");
        assert_eq!(join_submodule_url("https://h/org/super", "./sub"), "https://h/org/super/sub");
        assert_eq!(join_submodule_url("git@h:org/super.git", "../lib.git"), "git@h:org/lib.git");
        assert_eq!(join_submodule_url("git@h:super.git", "../lib.git"), "git@h:lib.git");
        assert_eq!(join_submodule_url("/srv/git/super", "../lib"), "/srv/git/lib");
        assert_eq!(join_submodule_url("https://h/a", "https://other/b"), "https://other/b");
    }

    #[test]
    fn credentials_are_split_off_as_git_decodes_them() {
        let creds = url_credentials;
        assert_eq!(creds("https://user:t%40k@h/r"), Some(("user".into(), "t@k".into())));
        assert_eq!(creds("https://tok@h/r"), Some(("tok".into(), "".into())));
        assert_eq!(creds("ssh://git:pw@h/r"), Some(("git".into(), "pw".into())));
        assert_eq!(creds("ssh://git@h/r"), None, "an ssh user is no secret");
        assert_eq!(creds("git@h:o/r"), None);
        assert_eq!(creds("https://h/path@v1"), None);
        assert_eq!(creds("file:///tmp/r"), None);
    }

    #[test]
    fn askpass_answers_only_a_prompt_with_the_credentials_given() {
        let args = |prompt: &str| vec![OsString::from("lockstep"), OsString::from(prompt)];
        let unset = |_: &str| None;
        assert_eq!(askpass_answer(&args("Password for 'https://h': "), unset), None, "not run by git");
        let set = |name: &str| match name {
            ASKPASS_USERNAME => Some("bob".to_string()),
            ASKPASS_PASSWORD => Some("tok".to_string()),
            _ => None,
        };
        assert_eq!(askpass_answer(&args("Username for 'https://h': "), set).as_deref(), Some("bob"));
        assert_eq!(askpass_answer(&args("Password for 'https://h': "), set).as_deref(), Some("tok"));
        assert_eq!(askpass_answer(&args("git@h's password: "), set).as_deref(), Some("tok"));
        assert_eq!(askpass_answer(&args("runs"), set), None, "a command stays a command");
        assert_eq!(askpass_answer(&[OsString::from("lockstep")], set), None);
    }

    #[test]
    fn last_lines_keeps_the_tail() {
        assert_eq!(last_lines(b"a\n\nb\nc\nd\n", 2), "c | d");
    }
}
