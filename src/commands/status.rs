//! `lockstep status`: would a re-run today start from the same source and environment?
//! Runs nothing: compares the current tree hash (or commit, or archive digest) and the
//! environment key with the recorded ones, and says which part changed.

use crate::support::digest;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::commands::CommandError as Error;
use crate::commands::diff::{Change, listing_changes};
use crate::env::{self, EnvManager};
use crate::manifest::Manifest;
use crate::pipeline;
use crate::record::{HostInfo, RunDir, RunRecord, Store, store_exclusions};
use crate::source::{self, SourceKind, git};
use crate::support::cache::Cache;
use crate::support::error_class::ErrorClass;
use crate::support::ids::RunId;
use crate::support::ids::short;

/// Files listed as changed, at most.
const MAX_CHANGES: usize = 20;

/// Errors of `status` itself.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The recorded local project is gone.
    #[error("the project directory of run {run_id}, {}, does not exist here", .path.display())]
    ProjectGone {
        /// The run.
        run_id: RunId,
        /// The recorded directory.
        path: PathBuf,
    },
    /// The recorded archive is not a regular file (a device, a FIFO, a directory).
    #[error("the archive of run {run_id}, {}, is not a regular file", .path.display())]
    NotAnArchiveFile {
        /// The run.
        run_id: RunId,
        /// The recorded archive.
        path: PathBuf,
    },
}

impl StatusError {
    /// Who has to act: the user.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::User
    }
}

/// The comparison of one part (source or environment).
#[derive(Debug, Clone, Serialize)]
pub struct PartStatus {
    /// Whether it is as recorded.
    pub same: bool,
    /// One line saying what was compared, or what changed.
    pub detail: String,
    /// For a local source: the files added, removed or modified since the run.
    pub changes: Vec<String>,
}

/// The status of a run.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The run.
    pub run_id: RunId,
    /// The source.
    pub source: PartStatus,
    /// The environment.
    pub environment: PartStatus,
    /// The machine: what decides numerics, compared with the recorded run's (informational:
    /// it does not change the exit code, which answers whether the inputs are the same).
    pub host: PartStatus,
}

impl StatusReport {
    /// 0 when the source and the environment are as recorded, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.source.same && self.environment.same { 0 } else { 1 }
    }
}

/// The status of a run given by id (in `store`), by its record file, or by an archive holding it.
pub fn status(target: &str, store: &Path, caller_dir: &Path) -> Result<StatusReport, Error> {
    let cache = Cache::from_env()?;
    let found = pipeline::lookup(target, &Store::open(store)?, caller_dir)?;
    found.check_recorded_project()?;
    let (record, run_dir) = (&found.record, found.run_dir());
    let (source, project_dir) = source_status(record, run_dir.as_ref(), &cache)?;
    let environment = environment_status(record, project_dir.as_deref(), source.same)?;
    // The BLAS comes from the environment's lock, which the environment line already compares.
    let host = host_status(&record.host, &HostInfo::current());
    Ok(StatusReport { run_id: record.run_id.clone(), source, environment, host })
}

fn host_status(recorded: &HostInfo, now: &HostInfo) -> PartStatus {
    let changes = recorded.drift(now);
    let detail = match (changes.len(), &recorded.hostname) {
        (0, _) => "the CPU, libraries and numerics settings are those of the run".to_string(),
        (n, Some(name)) => format!("{n} difference(s) from the run's machine ({name})"),
        (n, None) => format!("{n} difference(s) from the run's machine"),
    };
    PartStatus { same: changes.is_empty(), detail, changes }
}

fn source_status(
    record: &RunRecord,
    run_dir: Option<&RunDir>,
    cache: &Cache,
) -> Result<(PartStatus, Option<PathBuf>), Error> {
    let info = &record.source;
    let part = |same: bool, detail: String| PartStatus { same, detail, changes: Vec::new() };
    match info.kind {
        SourceKind::Local => {
            let dir = info.path.clone().ok_or_else(|| StatusError::ProjectGone {
                run_id: record.run_id.clone(),
                path: PathBuf::from(&info.uri),
            })?;
            if !dir.is_dir() {
                return Err(StatusError::ProjectGone { run_id: record.run_id.clone(), path: dir }.into());
            }
            let in_place = record.outputs_dir == dir;
            let outputs: Vec<String> = record.outputs.iter().map(|o| o.path.clone()).collect();
            let stat_cache = source::stat_cache_file(cache, &dir)?;
            let tree =
                source::hash_tree(&dir, &store_exclusions(), Some(&stat_cache)).map_err(source::SourceError::from)?;
            let tree = source::without_outputs(tree, &outputs, in_place);
            let expected = info.input_tree_sha256.as_deref().unwrap_or(&info.tree_sha256);
            if tree.sha256 == expected {
                return Ok((part(true, format!("{} unchanged (tree {})", dir.display(), short(expected))), Some(dir)));
            }
            let changes = run_dir
                .map(RunDir::source_tree)
                .and_then(|p| fs::read_to_string(p).ok())
                .map(|listing| changed_files(&listing, &tree.listing(), &outputs, in_place))
                .unwrap_or_default();
            let detail =
                format!("{} changed: tree {} now, {} at the run", dir.display(), short(&tree.sha256), short(expected));
            Ok((PartStatus { same: false, detail, changes }, Some(dir)))
        }
        SourceKind::Git => {
            let url = info.repo_url.as_deref().unwrap_or(&info.uri);
            let recorded = info.commit.as_deref().unwrap_or_default();
            let (_, now) = git::GitMirror::resolve(cache, url, info.version.as_deref())?;
            let what = info.version.as_deref().unwrap_or("the default branch");
            if now.commit == recorded {
                Ok((part(true, format!("{what} of {url} is still {}", short(recorded))), None))
            } else {
                Ok((
                    part(
                        false,
                        format!("{what} of {url} is now {}, the run used {}", short(&now.commit), short(recorded)),
                    ),
                    None,
                ))
            }
        }
        SourceKind::Archive => {
            let path = Path::new(info.uri.split('#').next().unwrap_or(&info.uri));
            if info.uri.starts_with("http://") || info.uri.starts_with("https://") {
                return Ok((part(true, format!("{} is remote: not downloaded again", info.uri)), None));
            }
            match fs::metadata(path) {
                Err(_) => return Ok((part(false, format!("{} is gone", path.display())), None)),
                // A record naming /dev/zero must not be digested until the end of time.
                Ok(meta) if !meta.is_file() => {
                    return Err(StatusError::NotAnArchiveFile {
                        run_id: record.run_id.clone(),
                        path: path.to_path_buf(),
                    }
                    .into());
                }
                Ok(_) => {}
            }
            let Ok((sha, _)) = digest::sha256_file(path) else {
                return Ok((part(false, format!("{} is gone", path.display())), None));
            };
            let same = Some(digest::hex(&sha)) == info.archive_sha256;
            let detail =
                if same { format!("{} unchanged", path.display()) } else { format!("{} changed", path.display()) };
            Ok((part(same, detail), None))
        }
    }
}

/// Added, removed and modified files between two tree listings, leaving out the run's outputs.
fn changed_files(recorded: &str, current: &str, outputs: &[String], in_place: bool) -> Vec<String> {
    let written: BTreeSet<String> = if in_place { outputs.iter().cloned().collect() } else { BTreeSet::new() };
    let mut changes: Vec<String> = listing_changes(recorded, current, &written)
        .into_iter()
        .map(|f| match f.change {
            Change::Changed => format!("modified {}", f.path),
            other => format!("{} {}", other.name(), f.path),
        })
        .collect();
    if changes.len() > MAX_CHANGES {
        let more = changes.len() - MAX_CHANGES;
        changes.truncate(MAX_CHANGES);
        changes.push(format!("... and {more} more"));
    }
    changes
}

fn environment_status(record: &RunRecord, project_dir: Option<&Path>, source_same: bool) -> Result<PartStatus, Error> {
    let manager = record.environment.manager();
    let part = |same: bool, detail: String| PartStatus { same, detail, changes: Vec::new() };
    if manager == EnvManager::Local {
        return Ok(part(true, "local manager: the machine's own tools are not tracked".into()));
    }
    let recorded = record.environment.key();
    let Some(dir) = project_dir else {
        // Git and archive environments are specified by files of the source.
        let detail = if source_same { "specified by the unchanged source" } else { "specified by the changed source" };
        return Ok(part(source_same, format!("{manager}: {detail}")));
    };
    let manifest = Manifest::load(dir)?;
    let selected = env::select(&manifest.env, Some(manager), dir)?;
    let now = selected.key();
    // The lock names the installer with its version (`uv 0.9.2`); the key leaves it out.
    let built_with = record.environment.lock().and_then(|l| l.installer.split_whitespace().next());
    match (recorded, now.as_deref()) {
        (Some(a), Some(b)) if a == b => match (built_with, selected.installer()) {
            (Some(then), Some(now)) if then != now => Ok(part(
                true,
                format!(
                    "{manager} environment {} unchanged; only the installer differs: {then} built it, {now} would \
                     build it now (the key leaves the installer out)",
                    short(a)
                ),
            )),
            _ => Ok(part(true, format!("{manager} environment {} unchanged", short(a)))),
        },
        (Some(a), Some(b)) => {
            Ok(part(false, format!("{manager} environment changed: key {} now, {} at the run", short(b), short(a))))
        }
        _ => Ok(part(source_same, format!("{manager}: no environment key to compare"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_added_removed_and_modified_files() {
        let before = "100644 aaa keep.py\n100644 bbb edit.py\n100644 ccc gone.py\n100644 ddd out.json\n";
        let after = "100644 aaa keep.py\n100755 bbb edit.py\n100644 eee new.py\n100644 fff out.json\n";
        let changes = changed_files(before, after, &["out.json".to_string()], true);
        assert_eq!(changes, ["modified edit.py", "removed gone.py", "added new.py"]);
    }
}
