//! `lockstep hash`: the tree hash of a project directory.

use std::path::Path;

use super::CommandError;
use crate::record::store_exclusions;
use crate::source::{self, SourceError, Tree};
use crate::support::cache::Cache;

/// Hash the tree of `dir`, through the stat cache unless `use_cache` is false.
pub fn hash(dir: &Path, use_cache: bool) -> Result<Tree, CommandError> {
    if !dir.is_dir() {
        return Err(SourceError::NotFound { path: dir.to_path_buf() }.into());
    }
    let dir = std::fs::canonicalize(dir).map_err(|source| SourceError::Io { path: dir.to_path_buf(), source })?;
    let stat_cache = match use_cache {
        true => Some(source::stat_cache_file(&Cache::from_env().map_err(SourceError::from)?, &dir)?),
        false => None,
    };
    Ok(source::hash_tree(&dir, &store_exclusions(), stat_cache.as_deref()).map_err(SourceError::from)?)
}
