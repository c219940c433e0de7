//! Sources: turn a URI (plus version and subdirectory) into a working tree on disk and its
//! identity: commit, branch, remote, dirty state and tree hash.

pub mod archive;
pub mod git;
mod rebuild;
pub mod tree;

use std::fs;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::{self, Cache, CacheError};
use crate::fetch::{self, FetchError};
use crate::fsutil;
use crate::support::error_class::ErrorClass;
pub use archive::{ArchiveError, ArchiveFormat};
pub use rebuild::{RebuildRequest, rebuild, without_outputs};
pub use tree::{Exclusions, FileStamps, Tree, TreeError, hash_tree};

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
    Download(#[from] FetchError),
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
            | SourceError::Download(_)
            | SourceError::VersionOfArchive { .. }
            | SourceError::Changed { .. }
            | SourceError::PatchMissing
            | SourceError::CommitNotFound { .. }
            | SourceError::NotAnArchive { .. }
            | SourceError::DestinationExists { .. } => ErrorClass::User,
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
    pub tree_sha256: String,
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
    pub input_tree_sha256: Option<String>,
}

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

/// A parsed source URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUri {
    /// A local directory.
    Local {
        /// The path as given.
        path: PathBuf,
        /// The `#subdirectory`, if any.
        subdirectory: Option<String>,
    },
    /// A git repository URL.
    Git {
        /// The URL.
        url: String,
        /// The `#subdirectory`, if any.
        subdirectory: Option<String>,
    },
    /// A `.tar.gz` or `.zip` file, local or http(s).
    Archive {
        /// The path or URL.
        location: String,
        /// Its format.
        format: ArchiveFormat,
        /// The `#subdirectory`, if any.
        subdirectory: Option<String>,
    },
}

impl SourceUri {
    /// Parse a URI: a name ending in `.tar.gz`, `.tgz` or `.zip` is an archive (a path or an
    /// http(s) URL); `https://`, `http://`, `ssh://`, `git://`, `file://` and
    /// `user@host:path` are git; anything else is a local path. One `#` separates a
    /// subdirectory.
    pub fn parse(uri: &str) -> Result<SourceUri, SourceError> {
        let (base, subdirectory) = match uri.split_once('#') {
            Some((_, frag)) if frag.contains('#') => return Err(SourceError::TwoFragments { uri: uri.to_string() }),
            Some((base, frag)) => (base, Some(frag.to_string()).filter(|f| !f.is_empty())),
            None => (uri, None),
        };
        let lower = base.to_ascii_lowercase();
        let local_or_http = !lower.contains("://") || lower.starts_with("http://") || lower.starts_with("https://");
        if let Some(format) = ArchiveFormat::of(base).filter(|_| local_or_http) {
            return Ok(SourceUri::Archive { location: base.to_string(), format, subdirectory });
        }
        let is_url = ["https://", "http://", "ssh://", "git://", "file://", "git+ssh://", "ssh+git://"]
            .iter()
            .any(|p| lower.starts_with(p));
        if is_url || is_scp_like(base) {
            Ok(SourceUri::Git { url: base.to_string(), subdirectory })
        } else {
            Ok(SourceUri::Local { path: PathBuf::from(base), subdirectory })
        }
    }
}

/// `user@host:path`, the scp-like form git accepts (no `/` before the `:`).
fn is_scp_like(s: &str) -> bool {
    match (s.find('@'), s.find(':')) {
        (Some(at), Some(colon)) => at < colon && !s[..colon].contains('/') && at > 0 && colon > at + 1,
        _ => false,
    }
}

/// Check a `#subdirectory` and return it as a clean relative path.
pub fn clean_subdirectory(sub: &str) -> Result<PathBuf, SourceError> {
    let bad = |reason| SourceError::BadSubdirectory { subdirectory: sub.to_string(), reason };
    let mut out = PathBuf::new();
    for comp in Path::new(sub).components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(bad("leaves the repository"));
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err(bad("must be relative")),
        }
    }
    Ok(out)
}

/// `root/sub`, which must be a directory that stays inside `root` after symlinks.
fn enter_subdirectory(root: &Path, sub: &Path, shown: &str, location: &str) -> Result<PathBuf, SourceError> {
    let dir = root.join(sub);
    let not_found =
        || SourceError::SubdirectoryNotFound { subdirectory: shown.to_string(), location: location.to_string() };
    if !dir.is_dir() {
        return Err(not_found());
    }
    let (root_c, dir_c) = (
        fs::canonicalize(root).map_err(|e| SourceError::io(root, e))?,
        fs::canonicalize(&dir).map_err(|e| SourceError::io(&dir, e))?,
    );
    if !dir_c.starts_with(&root_c) {
        return Err(SourceError::BadSubdirectory { subdirectory: shown.to_string(), reason: "leaves the repository" });
    }
    Ok(dir)
}

#[derive(Serialize)]
struct StatCacheKey<'a> {
    schema: u32,
    dir: &'a Path,
}

#[derive(Serialize)]
struct CommitTreeKey<'a> {
    schema: &'a str,
    repo: &'a str,
    commit: &'a str,
    subdirectory: &'a str,
}

/// The stat cache file of a directory's tree hash (see [`hash_tree`]).
pub fn stat_cache_file(cache: &Cache, dir: &Path) -> Result<PathBuf, SourceError> {
    let key = cache::content_key(&StatCacheKey { schema: 1, dir });
    Ok(cache.bucket("treehash-v1")?.join(key))
}

/// Resolve a source. Copies and checkouts go into `workdir` (which must not exist yet),
/// inside the run's directory; a local directory runs in place unless `isolated`.
pub fn resolve(req: &SourceRequest, cache: &Cache, workdir: &Path) -> Result<ResolvedSource, SourceError> {
    match SourceUri::parse(req.uri)? {
        SourceUri::Local { path, subdirectory } => resolve_local(req, cache, workdir, &path, subdirectory),
        SourceUri::Git { url, subdirectory } => {
            let sub = subdirectory.as_deref().map(clean_subdirectory).transpose()?;
            let (mirror, resolved) = git::GitMirror::resolve(cache, &url, req.version)?;
            git::checkout(cache, &mirror.dir, &resolved.commit, workdir, &url)?;
            let shown_url = git::strip_credentials(&url);
            finish_checkout(req, cache, workdir, &shown_url, &shown_url, resolved, sub, subdirectory)
        }
        SourceUri::Archive { location, format, subdirectory } => {
            resolve_archive(req, workdir, &location, format, subdirectory)
        }
    }
}

/// Fetch (for a URL) and extract an archive into `workdir`, checking it against its own
/// manifest when it was made by `lockstep pack`.
pub(crate) fn resolve_archive(
    req: &SourceRequest,
    workdir: &Path,
    location: &str,
    format: ArchiveFormat,
    subdirectory: Option<String>,
) -> Result<ResolvedSource, SourceError> {
    if req.version.is_some() {
        return Err(SourceError::VersionOfArchive { uri: location.to_string() });
    }
    let sub = subdirectory.as_deref().map(clean_subdirectory).transpose()?;
    let file = if location.starts_with("http://") || location.starts_with("https://") {
        fetch::download(location, &workdir.with_extension("download"))?
    } else {
        let path = req.caller_dir.join(location);
        if !path.is_file() {
            return Err(SourceError::NotFound { path });
        }
        path
    };
    let (digest, _) = fsutil::sha256_file(&file).map_err(|e| SourceError::io(&file, e))?;
    archive::extract(&file, format, workdir)?;
    let root = archive::project_root(workdir);
    let manifest = archive::read_manifest(&file, &root)?;
    let project_dir = match (&sub, &subdirectory) {
        (Some(s), Some(shown)) => enter_subdirectory(&root, s, shown, location)?,
        _ => root.clone(),
    };
    let tree = hash_tree(&project_dir, &req.exclusions, None)?;
    if let Some(m) = manifest.filter(|_| sub.is_none())
        && m.tree_sha256 != tree.sha256
    {
        return Err(ArchiveError::ManifestMismatch { archive: file, detail: describe_mismatch(&m, &tree) }.into());
    }
    let info = SourceInfo {
        uri: git::strip_credentials(req.uri),
        kind: SourceKind::Archive,
        path: None,
        version: None,
        commit: None,
        branch: None,
        repo_url: None,
        subdirectory: sub.map(|s| s.to_string_lossy().into_owned()),
        tree_sha256: tree.sha256,
        dirty: false,
        patch_sha256: None,
        archive_sha256: Some(fsutil::hex(&digest)),
        input_tree_sha256: None,
    };
    Ok(ResolvedSource { project_dir, in_place: false, info, dirty_patch: None, tree: None, stamps: None })
}

/// Which files of an archive differ from its manifest, for an error message.
fn describe_mismatch(manifest: &archive::PackManifest, tree: &Tree) -> String {
    let listed: std::collections::BTreeMap<&str, &str> =
        manifest.files.iter().map(|f| (f.path.as_str(), f.sha256.as_str())).collect();
    let found: std::collections::BTreeMap<String, String> =
        tree.entries.iter().map(|e| (e.path.to_string_lossy().into_owned(), fsutil::hex(&e.sha256))).collect();
    let mut problems: Vec<String> = Vec::new();
    for (path, sha) in &listed {
        match found.get(*path) {
            None => problems.push(format!("{path} is missing")),
            Some(s) if s != sha => problems.push(format!("{path} differs")),
            _ => {}
        }
    }
    problems.extend(found.keys().filter(|p| !listed.contains_key(p.as_str())).map(|p| format!("{p} is not listed")));
    if problems.is_empty() {
        return "the tree hash differs".into();
    }
    let more = problems.len().saturating_sub(5);
    problems.truncate(5);
    format!("{}{}", problems.join(", "), if more > 0 { format!(" and {more} more") } else { String::new() })
}

fn resolve_local(
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
        return finish_checkout(
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
            info.patch_sha256 = Some(fsutil::sha256_hex(&patch));
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

#[allow(clippy::too_many_arguments)]
fn finish_checkout(
    req: &SourceRequest,
    cache: &Cache,
    workdir: &Path,
    location: &str,
    repo_url: &str,
    resolved: git::Resolved,
    sub: Option<PathBuf>,
    shown_sub: Option<String>,
) -> Result<ResolvedSource, SourceError> {
    let project_dir = match (&sub, &shown_sub) {
        (Some(s), Some(shown)) => {
            enter_subdirectory(workdir, s, shown, &format!("{location} at {}", &resolved.commit[..12]))?
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
    let memo = cache.bucket("treehash-v1")?.join(format!("commit-{key}"));
    let tree_sha256 = match fs::read_to_string(&memo) {
        Ok(s) if s.len() == 64 => s,
        _ => {
            let tree = hash_tree(&project_dir, &req.exclusions, None)?;
            // The memo only saves time; failing to write it must not fail the run.
            let _ = fsutil::write_atomic(&memo, tree.sha256.as_bytes());
            tree.sha256
        }
    };
    let info = SourceInfo {
        uri: git::strip_credentials(req.uri),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_classified() {
        let git = |u: &str, s: Option<&str>| SourceUri::Git { url: u.into(), subdirectory: s.map(Into::into) };
        assert_eq!(SourceUri::parse("https://h/r.git#sub/dir").unwrap(), git("https://h/r.git", Some("sub/dir")));
        assert_eq!(SourceUri::parse("git@github.com:o/r.git").unwrap(), git("git@github.com:o/r.git", None));
        assert_eq!(SourceUri::parse("file:///srv/r").unwrap(), git("file:///srv/r", None));
        assert_eq!(SourceUri::parse("git://127.0.0.1:9418/r").unwrap(), git("git://127.0.0.1:9418/r", None));
        assert_eq!(SourceUri::parse("ssh://git@h/r").unwrap(), git("ssh://git@h/r", None));
        assert_eq!(
            SourceUri::parse("./proj#sub").unwrap(),
            SourceUri::Local { path: "./proj".into(), subdirectory: Some("sub".into()) }
        );
        assert_eq!(
            SourceUri::parse("dir/with:colon").unwrap(),
            SourceUri::Local { path: "dir/with:colon".into(), subdirectory: None }
        );
        assert!(matches!(SourceUri::parse("a#b#c"), Err(SourceError::TwoFragments { .. })));
    }

    #[test]
    fn subdirectories_stay_inside() {
        assert_eq!(clean_subdirectory("a/./b/../c").unwrap(), PathBuf::from("a/c"));
        assert!(matches!(clean_subdirectory("../x"), Err(SourceError::BadSubdirectory { .. })));
        assert!(matches!(clean_subdirectory("a/../../x"), Err(SourceError::BadSubdirectory { .. })));
        assert!(matches!(clean_subdirectory("/etc"), Err(SourceError::BadSubdirectory { .. })));
    }

    #[test]
    fn subdirectory_symlink_out_of_the_tree_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("out")).unwrap();
        let err = enter_subdirectory(&root, Path::new("out"), "out", "repo").unwrap_err();
        assert!(matches!(err, SourceError::BadSubdirectory { .. }), "{err}");
        let err = enter_subdirectory(&root, Path::new("missing"), "missing", "repo").unwrap_err();
        assert_eq!(err.to_string(), "subdirectory 'missing' does not exist in repo");
    }
}
