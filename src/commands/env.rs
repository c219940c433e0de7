//! `lockstep env list` and `lockstep env prune`: the environments built in the cache.

use std::path::PathBuf;
use std::time::Duration;

use super::CommandError;
use crate::env::{self, EnvEntry, PruneReport};
use crate::support::cache::Cache;

/// What `env list` found.
#[derive(Debug)]
pub struct EnvList {
    /// The cache's directory.
    pub cache: PathBuf,
    /// The built environments, most recently used first.
    pub envs: Vec<EnvEntry>,
}

/// The environments built in the cache.
pub fn list() -> Result<EnvList, CommandError> {
    let cache = Cache::from_env()?;
    let envs = env::list(&cache)?;
    Ok(EnvList { cache: cache.root().to_path_buf(), envs })
}

/// Remove the environments not used for `older_than` (every one with `None`), except
/// those in use, and the remains of interrupted builds.
pub fn prune(older_than: Option<Duration>) -> Result<PruneReport, CommandError> {
    let cache = Cache::from_env()?;
    let cutoff = older_than.map(|age| crate::support::clock::now_ms().saturating_sub(age.as_millis() as u64));
    Ok(env::prune(&cache, cutoff)?)
}
