//! The stat data of a project's files, as a walk found them: what the outputs of a run are
//! found by.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::TreeError;
use super::path_hash::{PathMap, path_map};
use super::walk::{Exclusions, Walked, walk};

/// The stat data of a project's regular files as a walk found them, ignore rules not applied
/// (an output may well be an ignored file), without `.git` and stores: what the outputs of a run
/// are found by.
#[derive(Debug, Default, Clone)]
pub struct FileStamps {
    /// Keyed by the path's bytes: hashing a `Path` would parse its components each time.
    files: PathMap<OsString, FileStamp>,
}

/// What tells a changed file: size, modification and change times, inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub(super) size: u64,
    pub(super) mtime_ns: i64,
    pub(super) ctime_ns: i64,
    pub(super) ino: u64,
}

impl FileStamps {
    /// Walk `root` (on all cores when it is large) and stat its regular files.
    pub fn take(root: &Path, exclusions: &Exclusions) -> Result<FileStamps, TreeError> {
        Ok(FileStamps::of(&walk(root, exclusions, false)?))
    }

    pub(super) fn of(found: &[Walked]) -> FileStamps {
        let mut files = path_map(found.len());
        for w in found.iter().filter(|w| !w.is_link) {
            files.insert(w.rel.clone().into_os_string(), w.key.stamp());
        }
        FileStamps { files }
    }

    /// The files, in no order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.keys().map(Path::new)
    }

    /// The stamp of one file, if the walk found it.
    pub fn get(&self, rel: &Path) -> Option<&FileStamp> {
        self.files.get(rel.as_os_str())
    }

    /// Walk `root` again (one stat pass, on all cores when it is large) and give its files
    /// that are new or changed since these stamps, or that `also` picks, in no order: each is
    /// compared as it is found, no second set of stamps is built.
    pub fn changed(
        &self,
        root: &Path,
        exclusions: &Exclusions,
        also: impl Fn(&Path) -> bool,
    ) -> Result<Vec<PathBuf>, TreeError> {
        let now = walk(root, exclusions, false)?;
        let changed = now
            .into_iter()
            .filter(|w| !w.is_link)
            .filter(|w| self.files.get(w.rel.as_os_str()) != Some(&w.key.stamp()) || also(&w.rel));
        Ok(changed.map(|w| w.rel).collect())
    }
}
