//! The walk of a project: every regular file and symbolic link, without `.git` and stores,
//! marked where ignore files leave it out of the tree.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::TreeError;
use super::listing::{Kind, Listing};
use super::stat_cache::StatKey;

/// Trees with at most this many files are walked on one thread.
pub(super) const SMALL_TREE: usize = 256;

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

    /// Whether the walk should skip this entry (and, for a directory, everything below it),
    /// by its name and path; a directory with a marker is known once it is read (see
    /// [`Exclusions::marks`]).
    pub(super) fn skips(&self, path: &Path, name: &OsStr, is_dir: bool) -> bool {
        if name == ".git" {
            return true;
        }
        is_dir && (self.names.iter().any(|n| n == name) || self.dirs.iter().any(|d| d == path))
    }

    /// Whether a directory whose entries are `listing` holds one of the markers: a look at
    /// the listing read anyway, not one more `stat` per directory and marker.
    fn marks(&self, listing: &Listing) -> bool {
        self.markers.iter().any(|m| listing.has(m))
    }

    /// The markers, for the reference walker of the tests.
    #[cfg(test)]
    pub(super) fn markers(&self) -> &[OsString] {
        &self.markers
    }
}

/// A regular file or symbolic link found by [`walk`].
pub(super) struct Walked {
    pub(super) rel: PathBuf,
    pub(super) key: StatKey,
    pub(super) is_link: bool,
    /// Left out of the tree by an ignore file (but still a possible output).
    pub(super) ignored: bool,
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
pub(super) fn walk(root: &Path, exclusions: &Exclusions, ignore_rules: bool) -> Result<Vec<Walked>, TreeError> {
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
    let io_err = |path: PathBuf| move |source| TreeError::Io { path, source };
    let listing = Listing::read(&dir.abs).map_err(io_err(dir.abs.clone()))?;
    // The root is the project itself, never left out.
    if !dir.rel.as_os_str().is_empty() && exclusions.marks(&listing) {
        return Ok(());
    }
    let rules = if dir.ignored { None } else { dir_rules(dir, &listing) };
    for i in 0..listing.len() {
        let name = listing.name(i);
        match listing.kind(i).map_err(io_err(dir.abs.join(name)))? {
            Kind::Dir => {
                let abs = dir.abs.join(name);
                if exclusions.skips(&abs, name, true) {
                    continue;
                }
                let ignored = dir.ignored || ignored_by(&rules, &abs, true);
                let rules = if ignored { None } else { rules.clone() };
                pending.push(DirTask { abs, rel: child(&dir.rel, name), rules, ignored });
            }
            kind @ (Kind::File | Kind::Link) if name != ".git" => {
                // The absolute path is only made where ignore rules need it: a walk for
                // outputs (no rules) makes none per file.
                let ignored = dir.ignored || (rules.is_some() && ignored_by(&rules, &dir.abs.join(name), false));
                let st = listing.stat(i).map_err(io_err(dir.abs.join(name)))?;
                found.push(Walked {
                    rel: child(&dir.rel, name),
                    key: StatKey::of(&st),
                    is_link: kind == Kind::Link,
                    ignored,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// `parent/name` in one allocation of the right size (`Path::join` copies, then grows).
fn child(parent: &Path, name: &OsStr) -> PathBuf {
    let mut path = PathBuf::with_capacity(parent.as_os_str().len() + 1 + name.len());
    path.push(parent);
    path.push(name);
    path
}

/// The rules that apply in `dir`: its own ignore files over its parent's rules.
fn dir_rules(dir: &DirTask, listing: &Listing) -> Option<Arc<Rules>> {
    let has = |name: &str| listing.has(name);
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
