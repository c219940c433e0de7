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
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

mod hashing;
mod listing;
mod path_hash;
mod stamps;
mod stat_cache;
#[cfg(test)]
mod tests;
mod walk;

pub use stamps::{FileStamp, FileStamps};
pub use walk::Exclusions;

use hashing::{Found, hash_missing};
use stat_cache::{StatCache, StatKey, now_ns};
use walk::walk;

/// The prefix that versions the tree hash definition.
pub const TREE_HASH_VERSION: &str = "lockstep-tree/v1";

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
