//! The cache directory: versioned buckets, per-key file locks, content keys.
//!
//! Layout, after uv: `<root>/CACHEDIR.TAG` plus one directory per [`CacheBucket`], each named
//! with its layout version (`git-v1`, `treehash-v1`, ...). A bucket's entries are built in a temporary
//! directory inside the bucket and published by an atomic rename, so a reader never sees a
//! half-built entry; a per-key lock makes concurrent builders of one key build it once.

use crate::support::digest;
use crate::support::fs::write_atomic;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by lockstep.\n\
# For information about cache directory tags see https://bford.info/cachedir/\n";

/// Errors of the cache directory.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// No cache location could be derived from the environment.
    #[error("cannot find a cache directory: set LOCKSTEP_CACHE_DIR, XDG_CACHE_HOME or HOME")]
    NoLocation,
    /// A cache directory or lock file could not be created or used.
    #[error("cache at {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// The buckets of the cache: one directory each, named with its layout version, so that a new
/// layout is a new name and never meets entries of the old one. Per-key locks of any bucket are
/// `<bucket>/.locks/<key>.lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheBucket {
    /// `git-v1/`: bare mirrors of git repositories, one per remote URL (credentials stripped).
    Git,
    /// `treehash-v1/`: stat caches of directories' tree hashes, and memos of the tree hashes of
    /// git commits (per commit and subdirectory).
    TreeHash,
    /// `pycache-v1/`: Python byte code of local runs (`PYTHONPYCACHEPREFIX`), in Python's own
    /// layout, kept out of the projects.
    Pycache,
    /// `envs-v1/`: built virtualenvs and conda prefixes, one directory per environment key.
    Envs,
    /// `conda-pkgs-v1/`: unpacked conda packages, shared by all environments.
    CondaPackages,
    /// `repodata-v1/`: remote conda repodata with its HTTP validators (ETag, Last-Modified).
    Repodata,
    /// `docker-v1/`: only the locks that make concurrent runs build a project image once (the
    /// images live in the Docker engine).
    Docker,
    /// `inplace-v1/`: only the locks that let one run at a time run in place in a directory.
    InPlace,
    /// `archives-v1/`: the archives of source trees that backends stage, one per tree hash.
    Archives,
}

impl CacheBucket {
    /// The bucket's directory name, under the cache's root.
    pub fn dir_name(self) -> &'static str {
        match self {
            CacheBucket::Git => "git-v1",
            CacheBucket::TreeHash => "treehash-v1",
            CacheBucket::Pycache => "pycache-v1",
            CacheBucket::Envs => "envs-v1",
            CacheBucket::CondaPackages => "conda-pkgs-v1",
            CacheBucket::Repodata => "repodata-v1",
            CacheBucket::Docker => "docker-v1",
            CacheBucket::InPlace => "inplace-v1",
            CacheBucket::Archives => "archives-v1",
        }
    }
}

/// The root of lockstep's cache.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// An exclusive lock on one cache key, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct KeyLock {
    _file: File,
}

impl Cache {
    /// The cache named by `LOCKSTEP_CACHE_DIR`, else `$XDG_CACHE_HOME/lockstep`, else `~/.cache/lockstep`.
    pub fn from_env() -> Result<Cache, CacheError> {
        let nonempty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let root = if let Some(dir) = nonempty("LOCKSTEP_CACHE_DIR") {
            PathBuf::from(dir)
        } else if let Some(dir) = nonempty("XDG_CACHE_HOME") {
            PathBuf::from(dir).join("lockstep")
        } else if let Some(home) = nonempty("HOME") {
            PathBuf::from(home).join(".cache").join("lockstep")
        } else {
            return Err(CacheError::NoLocation);
        };
        let root = std::path::absolute(&root).map_err(|source| CacheError::Io { path: root, source })?;
        Ok(Cache { root })
    }

    /// A cache rooted at `root` (tests and tools).
    pub fn at(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a bucket, which may not exist yet.
    pub fn bucket_path(&self, bucket: CacheBucket) -> PathBuf {
        self.root.join(bucket.dir_name())
    }

    /// The directory of a bucket, created (with the cache's `CACHEDIR.TAG`) when missing.
    pub fn bucket(&self, bucket: CacheBucket) -> Result<PathBuf, CacheError> {
        let dir = self.bucket_path(bucket);
        if dir.is_dir() {
            return Ok(dir);
        }
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CacheError::Io { path, source }
        };
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let tag = self.root.join("CACHEDIR.TAG");
        if !tag.exists() {
            write_atomic(&tag, CACHEDIR_TAG.as_bytes()).map_err(io_err(&tag))?;
        }
        Ok(dir)
    }

    /// Take the exclusive lock of `key` in `bucket`, waiting for its current holder.
    pub fn lock(&self, bucket: CacheBucket, key: &str) -> Result<KeyLock, CacheError> {
        let (file, path) = self.lock_file(bucket, key)?;
        file.lock().map_err(|source| CacheError::Io { path, source })?;
        Ok(KeyLock { _file: file })
    }

    /// Take a shared lock of `key` in `bucket`: many users at once, but no exclusive holder
    /// (a builder or a pruner) at the same time.
    pub fn lock_shared(&self, bucket: CacheBucket, key: &str) -> Result<KeyLock, CacheError> {
        let (file, path) = self.lock_file(bucket, key)?;
        file.lock_shared().map_err(|source| CacheError::Io { path, source })?;
        Ok(KeyLock { _file: file })
    }

    /// Take the exclusive lock of `key` in `bucket` if nobody holds it; `None` when somebody does.
    pub fn try_lock(&self, bucket: CacheBucket, key: &str) -> Result<Option<KeyLock>, CacheError> {
        let (file, path) = self.lock_file(bucket, key)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(KeyLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(source)) => Err(CacheError::Io { path, source }),
        }
    }

    /// The lock file of `key` in `bucket` (`<bucket>/.locks/<key>.lock`), opened.
    fn lock_file(&self, bucket: CacheBucket, key: &str) -> Result<(File, PathBuf), CacheError> {
        let locks = self.bucket(bucket)?.join(".locks");
        fs::create_dir_all(&locks).map_err(|source| CacheError::Io { path: locks.clone(), source })?;
        let path = locks.join(format!("{key}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| CacheError::Io { path: path.clone(), source })?;
        Ok((file, path))
    }
}

/// The content key of a value: sha256 of its canonical JSON serialization, as hex.
///
/// Keys come from a `#[derive(Serialize)]` struct that carries its own schema version, with
/// maps as `BTreeMap`, so field order and map order are fixed and the JSON is canonical.
pub fn content_key<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).expect("cache keys serialize to JSON");
    digest::sha256_hex(&json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Key<'a> {
        schema: u32,
        url: &'a str,
    }

    #[test]
    fn bucket_is_tagged_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().join("c"));
        let b = cache.bucket(CacheBucket::Git).unwrap();
        assert_eq!(b, dir.path().join("c/git-v1"));
        assert!(b.is_dir());
        assert!(
            fs::read_to_string(dir.path().join("c/CACHEDIR.TAG"))
                .unwrap()
                .starts_with("Signature: 8a477f597d28d172789f06886806bc55")
        );
        assert_eq!(cache.bucket(CacheBucket::Git).unwrap(), b);
    }

    /// The names are on disk in every cache: a rename would drop every entry built before.
    #[test]
    fn buckets_keep_their_names() {
        use CacheBucket::*;
        let buckets = [Git, TreeHash, Pycache, Envs, CondaPackages, Repodata, Docker, InPlace];
        let names: Vec<_> = buckets.iter().map(|b| b.dir_name()).collect();
        assert_eq!(
            names,
            [
                "git-v1",
                "treehash-v1",
                "pycache-v1",
                "envs-v1",
                "conda-pkgs-v1",
                "repodata-v1",
                "docker-v1",
                "inplace-v1"
            ]
        );
    }

    #[test]
    fn content_keys_differ_by_field() {
        let a = content_key(&Key { schema: 1, url: "a" });
        assert_eq!(a, content_key(&Key { schema: 1, url: "a" }));
        assert_ne!(a, content_key(&Key { schema: 2, url: "a" }));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn second_lock_on_a_key_waits() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let held = cache.lock(CacheBucket::Docker, "k").unwrap();
        let path = dir.path().join("docker-v1/.locks/k.lock");
        let other = File::options().write(true).open(&path).unwrap();
        assert!(other.try_lock().is_err(), "the key is held");
        drop(held);
        assert!(other.try_lock().is_ok(), "dropping the lock releases it");
    }
}
