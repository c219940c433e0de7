//! Hashing the files of a tree that the stat cache does not know, on all cores when there is
//! enough to do.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::stat_cache::{StatCache, StatKey};
use super::walk::Walked;
use super::{FileMode, TreeError};
use crate::support::digest;

/// Below this many bytes to hash, threads cost more than they save.
const PARALLEL_BYTES: u64 = 4 << 20;

/// A file of the tree: its digest from the stat cache, or still to be computed.
pub(super) struct Found {
    pub(super) rel: PathBuf,
    pub(super) key: StatKey,
    pub(super) mode: FileMode,
    pub(super) cached: Option<([u8; 32], u64)>,
    pub(super) hashed: Option<([u8; 32], u64)>,
}

impl Found {
    pub(super) fn of(w: Walked, cache: &StatCache) -> Found {
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
pub(super) fn hash_missing(root: &Path, found: &mut [Found]) -> Result<(), TreeError> {
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
