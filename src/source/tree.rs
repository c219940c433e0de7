//! The tree hash: one content hash of a project's files, with a stat cache for speed.
//!
//! Definition (also in the README): walk the project directory without following symbolic
//! links; leave out every `.git` entry, the directories the caller excludes (every directory
//! named `.lockstep` or holding a `.lockstep-store` marker: lockstep's stores, which
//! `record::store` names), and every path ignored by a `.gitignore` or
//! `.lockstepignore` file inside the project (parent directories and global git settings do
//! not count). Each remaining regular file or symbolic link gives one entry
//! `"{mode} {sha256} {path}\0"` where `mode` is `100644`, `100755` (owner-executable) or
//! `120000` (link), `sha256` is the hex digest of the content (or of the link target), and
//! `path` is relative with `/` separators. Entries are sorted by path bytes; `tree_sha256` is
//! the sha256 of `"lockstep-tree/v1\0"` followed by the entries. Directories, empty or not,
//! and other file kinds do not take part.

use crate::support::digest;
use crate::support::fs::write_atomic;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use sha2::{Digest, Sha256};

mod stat_cache;

use stat_cache::{StatCache, StatKey, now_ns};

/// The prefix that versions the tree hash definition.
pub const TREE_HASH_VERSION: &str = "lockstep-tree/v1";

/// Below this many bytes to hash, threads cost more than they save.
const PARALLEL_BYTES: u64 = 4 << 20;

/// Trees with at most this many files are walked on one thread.
const SMALL_TREE: usize = 256;

/// The kind of a tree entry, as a git-style mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// A regular file.
    Regular,
    /// A regular file its owner may execute.
    Executable,
    /// A symbolic link (its content is the target).
    Symlink,
}

impl FileMode {
    /// The octal mode used in the hash: `100644`, `100755` or `120000`.
    pub fn octal(self) -> &'static str {
        match self {
            FileMode::Regular => "100644",
            FileMode::Executable => "100755",
            FileMode::Symlink => "120000",
        }
    }

    fn code(self) -> u8 {
        match self {
            FileMode::Regular => 0,
            FileMode::Executable => 1,
            FileMode::Symlink => 2,
        }
    }

    fn from_code(code: u8) -> Option<FileMode> {
        [FileMode::Regular, FileMode::Executable, FileMode::Symlink].get(code as usize).copied()
    }
}

/// One file of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// The path relative to the tree's root.
    pub path: PathBuf,
    /// Its kind.
    pub mode: FileMode,
    /// The sha256 of its content (or link target).
    pub sha256: [u8; 32],
    /// Its size in bytes (the target's length for links).
    pub size: u64,
}

/// A hashed tree.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The entries, sorted by path bytes.
    pub entries: Vec<TreeEntry>,
    /// The tree hash, as hex.
    pub sha256: String,
}

impl Tree {
    /// The entries as text, one `{mode} {sha256} {path}` line each.
    pub fn listing(&self) -> String {
        let mut out = String::with_capacity(self.entries.len() * 100);
        for e in &self.entries {
            out.push_str(e.mode.octal());
            out.push(' ');
            out.push_str(&digest::hex(&e.sha256));
            out.push(' ');
            out.push_str(&e.path.to_string_lossy());
            out.push('\n');
        }
        out
    }
}

/// Errors of hashing a tree.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A file or directory could not be read.
    #[error("cannot read {path} while hashing the project: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Decides which directories a walk of a project leaves out: `.git` always, and those the
/// caller names, by path, by name, or by a marker file inside them. The walk knows nothing
/// of what they are (lockstep's stores, say).
#[derive(Debug, Clone, Default)]
pub struct Exclusions {
    dirs: Vec<PathBuf>,
    names: Vec<OsString>,
    markers: Vec<OsString>,
}

impl Exclusions {
    /// Also leave out this directory (an absolute path).
    pub fn dir(mut self, dir: PathBuf) -> Exclusions {
        self.dirs.push(dir);
        self
    }

    /// Also leave out every directory of this name.
    pub fn named(mut self, name: &str) -> Exclusions {
        self.names.push(name.into());
        self
    }

    /// Also leave out every directory that holds a file of this name.
    pub fn marked_by(mut self, file: &str) -> Exclusions {
        self.markers.push(file.into());
        self
    }

    /// Whether the walk should skip this entry (and, for a directory, everything below it).
    pub fn skips(&self, path: &Path, name: &OsStr, is_dir: bool) -> bool {
        if name == ".git" {
            return true;
        }
        is_dir
            && (self.names.iter().any(|n| n == name)
                || self.dirs.iter().any(|d| d == path)
                || self.markers.iter().any(|m| path.join(m).exists()))
    }
}

/// The stat data of a project's regular files as a walk found them, ignore rules not applied
/// (an output may well be an ignored file), without `.git` and stores: what the outputs of a run
/// are found by.
#[derive(Debug, Default, Clone)]
pub struct FileStamps {
    files: HashMap<PathBuf, FileStamp>,
}

/// What tells a changed file: size, modification and change times, inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
}

impl FileStamps {
    /// Walk `root` (on all cores when it is large) and stat its regular files.
    pub fn take(root: &Path, exclusions: &Exclusions) -> Result<FileStamps, TreeError> {
        let files = walk(root, exclusions, false)?.into_iter().filter(|w| !w.is_link).map(|w| (w.rel, w.key.stamp()));
        Ok(FileStamps { files: files.collect() })
    }

    fn of(found: &[Walked]) -> FileStamps {
        let files = found.iter().filter(|w| !w.is_link).map(|w| (w.rel.clone(), w.key.stamp()));
        FileStamps { files: files.collect() }
    }

    /// The files with their stamps.
    pub fn iter(&self) -> impl Iterator<Item = (&PathBuf, &FileStamp)> {
        self.files.iter()
    }

    /// The stamp of one file, if the walk found it.
    pub fn get(&self, rel: &Path) -> Option<&FileStamp> {
        self.files.get(rel)
    }
}

/// Hash the tree at `root`; with `stat_cache`, reuse digests of files whose stat data is
/// unchanged since that cache file was written, and update it.
pub fn hash_tree(root: &Path, exclusions: &Exclusions, stat_cache: Option<&Path>) -> Result<Tree, TreeError> {
    hash_tree_with_stamps(root, exclusions, stat_cache).map(|(tree, _)| tree)
}

/// [`hash_tree`], and the stat data of the same walk for the outputs of a run in place: one
/// walk serves both.
pub fn hash_tree_with_stamps(
    root: &Path,
    exclusions: &Exclusions,
    stat_cache: Option<&Path>,
) -> Result<(Tree, FileStamps), TreeError> {
    let started_ns = now_ns();
    let cache = stat_cache.map(StatCache::load).unwrap_or_default();
    let walked = walk(root, exclusions, true)?;
    let stamps = FileStamps::of(&walked);
    let mut found: Vec<Found> = walked.into_iter().filter(|w| !w.ignored).map(|w| Found::of(w, &cache)).collect();
    hash_missing(root, &mut found)?;
    let mut found: Vec<(TreeEntry, StatKey, bool)> = found
        .into_iter()
        .map(|f| {
            let rehashed = f.cached.is_none();
            let (sha256, size) = f.cached.or(f.hashed).expect("every file is hashed");
            (TreeEntry { path: f.rel, mode: f.mode, sha256, size }, f.key, rehashed)
        })
        .collect();
    found.sort_unstable_by(|a, b| a.0.path.as_os_str().as_bytes().cmp(b.0.path.as_os_str().as_bytes()));

    if let Some(cache_path) = stat_cache {
        // Rewrite when a file was hashed (new, changed or racy) or went away.
        let changed = found.len() != cache.entries.len() || found.iter().any(|(_, _, rehashed)| *rehashed);
        if changed {
            let fresh = StatCache {
                written_ns: started_ns,
                entries: found
                    .iter()
                    .map(|(e, k, _)| (e.path.as_os_str().as_bytes().to_vec(), (*k, e.mode, e.sha256)))
                    .collect(),
            };
            // The cache only speeds things up: failing to save it must not fail the run.
            let _ = cache_path.parent().map(fs::create_dir_all);
            let _ = write_atomic(cache_path, &fresh.encode());
        }
    }
    let entries: Vec<TreeEntry> = found.into_iter().map(|(e, _, _)| e).collect();
    let sha256 = digest_entries(&entries);
    Ok((Tree { entries, sha256 }, stamps))
}

/// The tree hash of sorted entries.
pub fn digest_entries(entries: &[TreeEntry]) -> String {
    let mut h = Sha256::new();
    h.update(TREE_HASH_VERSION.as_bytes());
    h.update([0]);
    for e in entries {
        h.update(e.mode.octal().as_bytes());
        h.update(b" ");
        h.update(digest::hex(&e.sha256).as_bytes());
        h.update(b" ");
        h.update(e.path.as_os_str().as_bytes());
        h.update([0]);
    }
    digest::hex(&h.finalize())
}

/// A regular file or symbolic link found by [`walk`].
struct Walked {
    rel: PathBuf,
    key: StatKey,
    is_link: bool,
    /// Left out of the tree by an ignore file (but still a possible output).
    ignored: bool,
}

/// The ignore files of one directory, over those of its ancestors. As in the `ignore` crate's
/// walker with lockstep's settings: the deepest `.lockstepignore` that matches decides, else
/// the deepest `.gitignore` that matches.
struct Rules {
    parent: Option<Arc<Rules>>,
    custom: Gitignore,
    git: Gitignore,
}

fn ignored_by(rules: &Option<Arc<Rules>>, path: &Path, is_dir: bool) -> bool {
    let (mut custom, mut git) = (Match::None, Match::None);
    let mut level = rules.as_deref();
    while let Some(r) = level {
        if custom.is_none() {
            custom = r.custom.matched(path, is_dir);
        }
        if git.is_none() {
            git = r.git.matched(path, is_dir);
        }
        level = r.parent.as_deref();
    }
    custom.or(git).is_ignore()
}

/// A directory still to read.
struct DirTask {
    abs: PathBuf,
    rel: PathBuf,
    /// `None` for an ignored directory (its ignore files do not count) or a walk without rules.
    rules: Option<Arc<Rules>>,
    ignored: bool,
}

/// Every regular file and symbolic link under `root` (a root that is itself a link is
/// followed), with `.git` and stores left out. With `ignore_rules`, files that ignore files
/// leave out of the tree are marked, not skipped: one walk serves the tree hash and the
/// output snapshot. A small tree is walked on this thread (threads cost more than they save
/// there); once it turns out large, the rest is walked on all cores.
fn walk(root: &Path, exclusions: &Exclusions, ignore_rules: bool) -> Result<Vec<Walked>, TreeError> {
    let mut found = Vec::new();
    let mut pending =
        vec![DirTask { abs: root.to_path_buf(), rel: PathBuf::new(), rules: None, ignored: !ignore_rules }];
    while let Some(dir) = pending.pop() {
        read_dir(&dir, exclusions, &mut found, &mut pending)?;
        if found.len() > SMALL_TREE && pending.len() > 1 {
            // Asked only now: the answer costs a few reads of cgroup files.
            let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            if threads > 1 {
                return walk_parallel(exclusions, found, pending, threads);
            }
        }
    }
    Ok(found)
}

/// The rest of [`walk`] on `threads` threads sharing one queue of directories.
fn walk_parallel(
    exclusions: &Exclusions,
    found: Vec<Walked>,
    pending: Vec<DirTask>,
    threads: usize,
) -> Result<Vec<Walked>, TreeError> {
    struct Queue {
        pending: Vec<DirTask>,
        busy: usize,
        failure: Option<TreeError>,
    }
    let queue = Mutex::new(Queue { pending, busy: 0, failure: None });
    let wake = Condvar::new();
    let found = Mutex::new(found);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let (mut mine, mut subdirs) = (Vec::new(), Vec::new());
                let mut q = queue.lock().unwrap();
                loop {
                    let Some(dir) = q.pending.pop() else {
                        if q.busy == 0 {
                            break;
                        }
                        q = wake.wait(q).unwrap();
                        continue;
                    };
                    q.busy += 1;
                    drop(q);
                    let result = read_dir(&dir, exclusions, &mut mine, &mut subdirs);
                    q = queue.lock().unwrap();
                    q.busy -= 1;
                    match result {
                        Ok(()) => q.pending.append(&mut subdirs),
                        Err(err) => {
                            q.failure.get_or_insert(err);
                            q.pending.clear();
                        }
                    }
                    wake.notify_all();
                }
                drop(q);
                wake.notify_all();
                found.lock().unwrap().append(&mut mine);
            });
        }
    });
    match queue.into_inner().unwrap().failure {
        Some(err) => Err(err),
        None => Ok(found.into_inner().unwrap()),
    }
}

/// Read one directory: its files go to `found`, its subdirectories to `pending`.
fn read_dir(
    dir: &DirTask,
    exclusions: &Exclusions,
    found: &mut Vec<Walked>,
    pending: &mut Vec<DirTask>,
) -> Result<(), TreeError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TreeError::Io { path, source }
    };
    let entries: Vec<fs::DirEntry> = fs::read_dir(&dir.abs).and_then(|it| it.collect()).map_err(io_err(&dir.abs))?;
    let rules = if dir.ignored { None } else { dir_rules(dir, &entries) };
    for entry in entries {
        let name = entry.file_name();
        let file_type = entry.file_type().map_err(io_err(&dir.abs.join(&name)))?;
        let is_dir = file_type.is_dir();
        let abs = dir.abs.join(&name);
        if exclusions.skips(&abs, &name, is_dir) {
            continue;
        }
        let ignored = dir.ignored || ignored_by(&rules, &abs, is_dir);
        let rel = dir.rel.join(&name);
        if is_dir {
            pending.push(DirTask { abs, rel, rules: if ignored { None } else { rules.clone() }, ignored });
        } else if file_type.is_file() || file_type.is_symlink() {
            // Relative to the open directory, without following links: no path lookup.
            let meta = entry.metadata().map_err(io_err(&abs))?;
            found.push(Walked { rel, key: StatKey::of(&meta), is_link: file_type.is_symlink(), ignored });
        }
    }
    Ok(())
}

/// The rules that apply in `dir`: its own ignore files over its parent's rules.
fn dir_rules(dir: &DirTask, entries: &[fs::DirEntry]) -> Option<Arc<Rules>> {
    let has = |name: &str| entries.iter().any(|e| e.file_name() == name);
    let (has_custom, has_git) = (has(".lockstepignore"), has(".gitignore"));
    if !has_custom && !has_git {
        return dir.rules.clone();
    }
    // As in the walker the tree hash is defined by: a line with a bad pattern, or an ignore
    // file that cannot be read, is left out; the other lines apply.
    let matcher = |present: bool, name: &str| {
        let mut builder = GitignoreBuilder::new(&dir.abs);
        let file = dir.abs.join(name);
        if present && file.exists() {
            let _ = builder.add(&file);
        }
        builder.build().unwrap_or_else(|_| Gitignore::empty())
    };
    let custom = matcher(has_custom, ".lockstepignore");
    let git = matcher(has_git, ".gitignore");
    Some(Arc::new(Rules { parent: dir.rules.clone(), custom, git }))
}

/// A file of the tree: its digest from the stat cache, or still to be computed.
struct Found {
    rel: PathBuf,
    key: StatKey,
    mode: FileMode,
    cached: Option<([u8; 32], u64)>,
    hashed: Option<([u8; 32], u64)>,
}

impl Found {
    fn of(w: Walked, cache: &StatCache) -> Found {
        let mode = if w.is_link {
            FileMode::Symlink
        } else if w.key.mode & 0o100 != 0 {
            FileMode::Executable
        } else {
            FileMode::Regular
        };
        let cached = cache
            .lookup(w.rel.as_os_str().as_bytes(), &w.key)
            .filter(|(cached_mode, _)| *cached_mode == mode)
            .map(|(_, sha256)| (sha256, w.key.size));
        Found { rel: w.rel, key: w.key, mode, cached, hashed: None }
    }
}

/// Hash one file (or link target) found by the walk.
fn hash_one(root: &Path, f: &mut Found) -> Result<(), TreeError> {
    let path = root.join(&f.rel);
    let digest = if f.mode == FileMode::Symlink {
        fs::read_link(&path).map(|target| {
            let bytes = target.as_os_str().as_bytes();
            (Sha256::digest(bytes).into(), bytes.len() as u64)
        })
    } else {
        digest::sha256_file_of_size(&path, f.key.size)
    };
    f.hashed = Some(digest.map_err(|source| TreeError::Io { path, source })?);
    Ok(())
}

/// Hash the files the stat cache does not know, on all cores when there is enough to do.
fn hash_missing(root: &Path, found: &mut [Found]) -> Result<(), TreeError> {
    let todo: Vec<&mut Found> = found.iter_mut().filter(|f| f.cached.is_none() && f.hashed.is_none()).collect();
    let bytes: u64 = todo.iter().map(|f| f.key.size).sum();
    let hash = |f: &mut Found| hash_one(root, f);
    if todo.len() < 2 || bytes < PARALLEL_BYTES {
        return todo.into_iter().try_for_each(hash);
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if threads < 2 {
        return todo.into_iter().try_for_each(hash);
    }
    let queue = Mutex::new(todo.into_iter());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let Some(f) = queue.lock().unwrap().next() else { return Ok(()) };
                        hash(f)?;
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().expect("hashing threads do not panic"))
    })
}

#[cfg(test)]
mod tests {
    use super::stat_cache::RACY_WINDOW_NS;
    use super::*;
    use ignore::WalkBuilder;
    use std::os::unix::fs::{PermissionsExt, symlink};

    /// The `ignore` crate's walker with the settings the tree hash is defined by (and was
    /// computed with before [`walk`]): the reference [`walk`] must agree with.
    fn project_walker(root: &Path, exclusions: &Exclusions, ignore_rules: bool) -> WalkBuilder {
        let mut builder = WalkBuilder::new(root);
        builder
            .standard_filters(false)
            .hidden(false)
            .follow_links(false)
            .git_ignore(ignore_rules)
            .require_git(false)
            .parents(false);
        if ignore_rules {
            builder.add_custom_ignore_filename(".lockstepignore");
        }
        let exclusions = exclusions.clone();
        builder.filter_entry(move |e| {
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            !exclusions.skips(e.path(), e.file_name(), is_dir)
        });
        builder
    }

    /// What the reference walker gives: (path, is_link) of files and links.
    fn reference(root: &Path, exclusions: &Exclusions, ignore_rules: bool) -> Vec<(PathBuf, bool)> {
        let mut out: Vec<_> = project_walker(root, exclusions, ignore_rules)
            .build()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_some_and(|t| t.is_file() || t.is_symlink()))
            .map(|e| (e.path().strip_prefix(root).unwrap().to_path_buf(), e.file_type().unwrap().is_symlink()))
            .collect();
        out.sort();
        out
    }

    fn walked(root: &Path, exclusions: &Exclusions, ignore_rules: bool) -> Vec<(PathBuf, bool)> {
        let mut out: Vec<_> = walk(root, exclusions, true)
            .unwrap()
            .into_iter()
            .filter(|w| !ignore_rules || !w.ignored)
            .map(|w| (w.rel, w.is_link))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn walk_agrees_with_the_ignore_crate_walker() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, ".gitignore", "*.log\n/build/\ndata/\n!keep.log\n");
        write(root, "a.log", "x");
        write(root, "keep.log", "x");
        write(root, "build/out.o", "x");
        write(root, "src/build/kept.o", "x");
        write(root, "data/big.bin", "x");
        write(root, "data/.gitignore", "!*\n");
        write(root, "sub/.gitignore", "!*.log\nlocal.txt\n");
        write(root, "sub/x.log", "x");
        write(root, "sub/local.txt", "x");
        write(root, "sub/deep/local.txt", "x");
        write(root, "sub/.lockstepignore", "x.log\n!local.txt\n");
        write(root, ".lockstepignore", "secret*\n");
        write(root, "secret.txt", "x");
        write(root, "sub/deep/secret.txt", "x");
        write(root, "m/.lockstepignore", "!secret.txt\n");
        write(root, "m/secret.txt", "x");
        write(root, ".git/HEAD", "x");
        write(root, "store/.lockstep-store", "");
        write(root, "store/runs/r", "x");
        write(root, ".lockstep/runs/r", "x");
        write(root, "other/kept", "x");
        symlink("other", root.join("linkdir")).unwrap();
        symlink("missing", root.join("dangling.log")).unwrap();
        for i in 0..300 {
            write(root, &format!("many/d{}/f{i}.txt", i % 7), "x");
        }
        let exclusions = stores().dir(root.join("other"));
        for rules in [true, false] {
            let expected = reference(root, &exclusions, rules);
            assert!(expected.len() > SMALL_TREE, "the walk goes parallel");
            assert_eq!(walked(root, &exclusions, rules), expected, "ignore rules: {rules}");
        }
        assert!(walked(root, &exclusions, true).contains(&(PathBuf::from("keep.log"), false)));
    }

    #[test]
    fn a_root_that_is_a_link_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "real/a.txt", "a");
        // Large enough for the parallel walk, which once stopped at a root link.
        for i in 0..300 {
            write(dir.path(), &format!("real/d{}/f{i}", i % 3), "x");
        }
        symlink("real", dir.path().join("link")).unwrap();
        assert_eq!(hash(&dir.path().join("link")).sha256, hash(&dir.path().join("real")).sha256);
        let stamps = FileStamps::take(&dir.path().join("link"), &Exclusions::default()).unwrap();
        assert!(stamps.get(Path::new("a.txt")).is_some());
    }

    #[test]
    fn bad_patterns_in_ignore_files_are_skipped_as_by_the_ignore_crate_walker() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "sub/.gitignore", "[z-a]\nskip.txt\n");
        write(root, "sub/skip.txt", "x");
        write(root, "sub/keep.txt", "x");
        let expected = reference(root, &Exclusions::default(), true);
        assert_eq!(walked(root, &Exclusions::default(), true), expected);
        assert!(!expected.iter().any(|(p, _)| p.ends_with("skip.txt")), "the other lines still apply");
    }

    fn write(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    /// What runs leave out: lockstep's stores, as `record::store` names them.
    fn stores() -> Exclusions {
        Exclusions::default().named(".lockstep").marked_by(".lockstep-store")
    }

    fn hash(root: &Path) -> Tree {
        hash_tree(root, &stores(), None).unwrap()
    }

    #[test]
    fn hash_matches_the_documented_definition() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "b.txt", "b");
        write(dir.path(), "a/x.py", "x");
        let tree = hash(dir.path());
        let paths: Vec<_> = tree.entries.iter().map(|e| e.path.to_str().unwrap()).collect();
        assert_eq!(paths, ["a/x.py", "b.txt"]);
        let expected = format!(
            "lockstep-tree/v1\0100644 {} a/x.py\0100644 {} b.txt\0",
            digest::sha256_hex(b"x"),
            digest::sha256_hex(b"b")
        );
        assert_eq!(tree.sha256, digest::sha256_hex(expected.as_bytes()));
    }

    #[test]
    fn ignored_files_git_and_stores_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "train.py", "code");
        let base = hash(root).sha256;
        write(root, ".gitignore", "*.log\n");
        let with_ignore = hash(root).sha256;
        assert_ne!(base, with_ignore, ".gitignore itself is part of the tree");
        write(root, "out.log", "noise");
        write(root, "sub/.lockstepignore", "data/\n");
        let with_lsi = hash(root).sha256;
        write(root, "sub/data/big.bin", "noise");
        write(root, ".git/HEAD", "ref: refs/heads/main");
        write(root, ".lockstep/runs/x/record.json", "{}");
        write(root, "mystore/.lockstep-store", "");
        write(root, "mystore/runs/y/record.json", "{}");
        write(root, "sub/deeper/.git", "gitdir: elsewhere");
        assert_eq!(hash(root).sha256, with_lsi);
    }

    #[test]
    fn executable_bit_and_symlinks_change_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "run.sh", "echo");
        let plain = hash(root).sha256;
        fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        let exec = hash(root);
        assert_ne!(plain, exec.sha256);
        assert_eq!(exec.entries[0].mode, FileMode::Executable);
        symlink("run.sh", root.join("link")).unwrap();
        let linked = hash(root);
        assert_eq!(linked.entries[0].mode, FileMode::Symlink);
        assert_eq!(linked.entries[0].sha256, <[u8; 32]>::from(Sha256::digest(b"run.sh")));
    }

    #[test]
    fn same_files_in_another_place_hash_the_same() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for root in [a.path(), b.path()] {
            write(root, "x/y/z.txt", "same");
            write(root, "top", "same too");
        }
        assert_eq!(hash(a.path()).sha256, hash(b.path()).sha256);
    }

    #[test]
    fn stat_cache_reuses_digests_and_notices_changes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("p");
        let cache_file = dir.path().join("cache/stat");
        write(&root, "a.txt", "one");
        write(&root, "b.txt", "two");
        let first = hash_tree(&root, &Exclusions::default(), Some(&cache_file)).unwrap();
        assert!(cache_file.exists());
        let mut cache = StatCache::load(&cache_file);
        assert_eq!(cache.entries.len(), 2);
        // Pretend the cache is old, so nothing is racy, and poison one digest: a cache hit
        // must return the poisoned value, proving the file was not read again.
        cache.written_ns += 10 * RACY_WINDOW_NS;
        cache.entries.get_mut(b"a.txt".as_slice()).unwrap().2 = [7; 32];
        write_atomic(&cache_file, &cache.encode()).unwrap();
        let warm = hash_tree(&root, &Exclusions::default(), Some(&cache_file)).unwrap();
        assert_eq!(warm.entries[0].sha256, [7; 32]);
        // A change of content that also changes the size is seen.
        write(&root, "a.txt", "changed");
        let changed = hash_tree(&root, &Exclusions::default(), Some(&cache_file)).unwrap();
        assert_eq!(changed.sha256, hash(&root).sha256);
        assert_ne!(changed.sha256, first.sha256);
    }

    #[test]
    fn racy_entries_are_rehashed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("p");
        let cache_file = dir.path().join("stat");
        write(&root, "a.txt", "one");
        hash_tree(&root, &Exclusions::default(), Some(&cache_file)).unwrap();
        let mut cache = StatCache::load(&cache_file);
        cache.entries.get_mut(b"a.txt".as_slice()).unwrap().2 = [7; 32];
        write_atomic(&cache_file, &cache.encode()).unwrap();
        let again = hash_tree(&root, &Exclusions::default(), Some(&cache_file)).unwrap();
        assert_eq!(
            again.entries[0].sha256,
            <[u8; 32]>::from(Sha256::digest(b"one")),
            "a file written just before the cache is not trusted"
        );
    }

    #[test]
    fn corrupt_stat_cache_is_ignored() {
        assert!(StatCache::decode(b"garbage").is_none());
        let mut c = StatCache::default();
        c.entries.insert(
            b"p".to_vec(),
            (StatKey { size: 1, mtime_ns: 2, ctime_ns: 3, ino: 4, mode: 5 }, FileMode::Regular, [1; 32]),
        );
        let bytes = c.encode();
        assert!(StatCache::decode(&bytes[..bytes.len() - 1]).is_none());
        assert_eq!(StatCache::decode(&bytes).unwrap().entries.len(), 1);
    }
}
