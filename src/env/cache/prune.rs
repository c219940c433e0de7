//! What the environment cache holds (`env list`) and removing what is no longer used
//! (`env prune`), never an environment in use or a build in progress.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::super::{EnvError, EnvManager};
use super::{BUILD_LOCK_SUFFIX, INPUTS_PREFIX, read_meta};
use crate::support::cache::{Cache, CacheBucket};
use crate::support::ids::random_hex;

/// A built environment as `env list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EnvEntry {
    /// Its key.
    pub key: String,
    /// The manager that built it.
    pub manager: EnvManager,
    /// Its interpreter's version, if it has one.
    pub python: Option<String>,
    /// How many packages it holds (conda and Python).
    pub packages: usize,
    /// Its size on disk in bytes.
    pub size: u64,
    /// When it was built, ms since the epoch.
    pub created_ms: u64,
    /// When a run last used it, ms since the epoch.
    pub last_used_ms: u64,
    /// Its directory.
    pub path: PathBuf,
}

/// The built environments of the cache, most recently used first.
pub fn list(cache: &Cache) -> Result<Vec<EnvEntry>, EnvError> {
    let bucket = cache.bucket_path(CacheBucket::Envs);
    let Ok(entries) = fs::read_dir(&bucket) else { return Ok(vec![]) };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let dir = entry.path();
        let Some(meta) = read_meta(&dir) else { continue };
        let lock_file = bucket.join(".locks").join(format!("{name}.lock"));
        let last_used_ms = fs::metadata(&lock_file)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
            .unwrap_or(meta.created_ms);
        out.push(EnvEntry {
            key: name,
            manager: meta.manager,
            python: meta.lock.python.as_ref().map(|p| p.version.clone()),
            packages: meta.lock.packages.len() + meta.lock.conda_packages.len(),
            size: dir_size(&dir),
            created_ms: meta.created_ms,
            last_used_ms,
            path: dir,
        });
    }
    out.sort_by(|a, b| b.last_used_ms.cmp(&a.last_used_ms).then_with(|| a.key.cmp(&b.key)));
    Ok(out)
}

/// What `env prune` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    /// Keys of the environments removed.
    pub removed: Vec<String>,
    /// Keys of environments that qualified but are in use by a run.
    pub in_use: Vec<String>,
    /// Bytes freed.
    pub freed: u64,
}

/// Remove environments last used before `cutoff_ms` (all of them with `None`), skipping those
/// in use, and what interrupted builds left behind, skipping the builds in progress.
pub fn prune(cache: &Cache, cutoff_ms: Option<u64>) -> Result<PruneReport, EnvError> {
    let bucket = cache.bucket_path(CacheBucket::Envs);
    let mut report = PruneReport::default();
    let Ok(entries) = fs::read_dir(&bucket) else { return Ok(report) };
    let names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    let listed: BTreeMap<String, EnvEntry> = list(cache)?.into_iter().map(|e| (e.key.clone(), e)).collect();
    let lock_keys = lock_keys(&bucket);
    for name in names {
        if name == ".locks" {
            continue;
        }
        let dir = bucket.join(&name);
        if name.starts_with(".del") {
            // What a pruner killed while removing left; nothing refers to it any more.
            report.freed += dir_size(&dir);
            let _ = fs::remove_dir_all(&dir);
            continue;
        }
        let rest = name.strip_prefix(INPUTS_PREFIX).or_else(|| name.strip_prefix(".tmp"));
        let _held = match rest {
            // A temporary directory's name lacks the first four characters of its key: every
            // key it may belong to must be free, or a build of it is in progress.
            Some(rest) => {
                let mut held = Vec::new();
                let mut building = false;
                for key in lock_keys.iter().filter(|k| k.get(4..) == Some(rest)) {
                    match cache.try_lock(CacheBucket::Envs, key)? {
                        Some(lock) => held.push(lock),
                        None => {
                            building = true;
                            break;
                        }
                    }
                }
                if building {
                    continue;
                }
                held
            }
            None => {
                let qualifies = match (listed.get(&name), cutoff_ms) {
                    (Some(entry), Some(cutoff)) => entry.last_used_ms < cutoff,
                    _ => true,
                };
                if !qualifies {
                    continue;
                }
                match cache.try_lock(CacheBucket::Envs, &name)? {
                    Some(lock) => vec![lock],
                    None => {
                        report.in_use.push(name);
                        continue;
                    }
                }
            }
        };
        let size = dir_size(&dir);
        // Renamed first, so that the environment disappears at once, never half-removed.
        let doomed = bucket.join(format!(".del{}", random_hex(8)));
        match fs::rename(&dir, &doomed) {
            Ok(()) => {}
            // Another pruner was first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(EnvError::io(&dir)(e)),
        }
        fs::remove_dir_all(&doomed).map_err(EnvError::io(&doomed))?;
        if rest.is_none() {
            report.removed.push(name);
        }
        report.freed += size;
    }
    report.removed.sort();
    Ok(report)
}

/// The keys that have a user lock file in the bucket.
fn lock_keys(bucket: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(bucket.join(".locks")) else { return vec![] };
    entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".lock").map(str::to_string))
        .filter(|k| !k.ends_with(BUILD_LOCK_SUFFIX))
        .collect()
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                use std::os::unix::fs::MetadataExt;
                total += meta.blocks() * 512;
            }
        }
    }
    total
}
