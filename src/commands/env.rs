//! `lockstep env list` and `lockstep env prune`: the environments built in the cache, and
//! the projects whose runs (in the store) used each.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::CommandError;
use crate::env::{self, EnvEntry, PruneReport};
use crate::record::{RunRecord, Store};
use crate::source::{SourceInfo, SourceKind};
use crate::support::cache::Cache;

/// What `env list` found.
#[derive(Debug)]
pub struct EnvList {
    /// The cache's directory.
    pub cache: PathBuf,
    /// The built environments, most recently used first.
    pub envs: Vec<ListedEnv>,
    /// Their size on disk together, in bytes.
    pub total_size: u64,
}

/// A built environment and the projects that used it.
#[derive(Debug, Clone, Serialize)]
pub struct ListedEnv {
    /// The environment.
    #[serde(flatten)]
    pub env: EnvEntry,
    /// The projects (by source name) of the store's runs that ran in it, sorted.
    pub projects: Vec<String>,
}

/// The environments built in the cache, each with the projects of the runs of `store` that
/// used it (the cache is shared by every store; the projects are those of this one).
pub fn list(store: &Path) -> Result<EnvList, CommandError> {
    let cache = Cache::from_env()?;
    let built = env::list(&cache)?;
    let (runs, _) = Store::open(store)?.list()?;
    let users = projects_by_key(&runs);
    let total_size = built.iter().map(|e| e.size).sum();
    let envs = built
        .into_iter()
        .map(|env| {
            let projects = users.get(env.key.as_str()).map(|p| p.iter().cloned().collect()).unwrap_or_default();
            ListedEnv { env, projects }
        })
        .collect();
    Ok(EnvList { cache: cache.root().to_path_buf(), envs, total_size })
}

/// Environment key to the source names of the runs recorded with it.
fn projects_by_key(runs: &[RunRecord]) -> BTreeMap<&str, BTreeSet<String>> {
    let mut users: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for run in runs {
        if let Some(key) = run.environment.key() {
            users.entry(key).or_default().insert(source_name(&run.source));
        }
    }
    users
}

/// The name a person knows a source by: the directory of a local project, the repository of a
/// git one, the file of an archive; with its `#subdirectory`.
fn source_name(info: &SourceInfo) -> String {
    let whole = match (info.kind, &info.path) {
        (SourceKind::Local, Some(path)) => path.to_string_lossy().into_owned(),
        _ => info.repo_url.clone().unwrap_or_else(|| info.uri.clone()),
    };
    let whole = whole.split('#').next().unwrap_or_default().trim_end_matches('/');
    let last = whole.rsplit(['/', ':']).next().unwrap_or(whole);
    let name = last.strip_suffix(".git").unwrap_or(last);
    match info.subdirectory.as_deref().filter(|s| !s.is_empty()) {
        Some(sub) if info.kind != SourceKind::Local => format!("{name}#{sub}"),
        _ => name.to_string(),
    }
}

/// Remove the environments not used for `older_than` (every one with `None`), except
/// those in use, and the remains of interrupted builds.
pub fn prune(older_than: Option<Duration>) -> Result<PruneReport, CommandError> {
    let cache = Cache::from_env()?;
    let cutoff = older_than.map(|age| crate::support::clock::now_ms().saturating_sub(age.as_millis() as u64));
    Ok(env::prune(&cache, cutoff)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_named_as_people_know_them() {
        let base = crate::record::sample_record("aa", 1).source;
        let local = SourceInfo { path: Some("/home/me/sklearn/".into()), ..base.clone() };
        assert_eq!(source_name(&local), "sklearn");
        let git = SourceInfo {
            kind: SourceKind::Git,
            uri: "https://github.com/mlflow/mlflow-example.git#examples/x".into(),
            repo_url: Some("https://github.com/mlflow/mlflow-example.git".into()),
            subdirectory: Some("examples/x".into()),
            ..base.clone()
        };
        assert_eq!(source_name(&git), "mlflow-example#examples/x");
        let scp = SourceInfo { kind: SourceKind::Git, uri: "git@host:team/proj.git".into(), ..base.clone() };
        assert_eq!(source_name(&scp), "proj");
        let archive = SourceInfo { kind: SourceKind::Archive, uri: "https://h/p/proj-1.tar.gz".into(), ..base };
        assert_eq!(source_name(&archive), "proj-1.tar.gz");
    }
}
