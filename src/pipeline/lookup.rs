//! Finding a recorded run: by id (or a unique prefix) in the store, by its record file, or
//! in an archive made by `pack --run`. A record may come from anyone: each one found is
//! checked before any of its fields becomes a path.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::RunError;
use crate::commands::CommandError as Error;
use crate::env;
use crate::manifest::is_project_dir;
use crate::record::{RecordError, RunDir, RunRecord, Store};
use crate::source::archive::{self, PACK_RECORD};
use crate::source::{self, ArchiveFormat, SourceKind};

/// Where a looked-up record was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordPlace {
    /// In the store, in this run directory.
    Store(RunDir),
    /// In this record file (the rest of its run directory may be beside it).
    File(PathBuf),
    /// In this archive, with the project's files.
    Archive(PathBuf),
}

/// A recorded run, checked, and where it was found.
#[derive(Debug, Clone)]
pub struct FoundRun {
    /// The record.
    pub record: RunRecord,
    /// Where it was found.
    pub place: RecordPlace,
}

impl FoundRun {
    /// The directory with the run's other files (`dirty.patch`, the source listing), when the
    /// record is not in an archive.
    pub fn run_dir(&self) -> Option<RunDir> {
        match &self.place {
            RecordPlace::Store(dir) => Some(dir.clone()),
            RecordPlace::File(path) => path.parent().map(|dir| RunDir::new(dir.to_path_buf())),
            RecordPlace::Archive(_) => None,
        }
    }

    /// The archive holding the record and the project's files.
    pub fn archive(&self) -> Option<&Path> {
        match &self.place {
            RecordPlace::Archive(path) => Some(path),
            _ => None,
        }
    }

    /// Check that the recorded local project directory, about to be hashed, is a project:
    /// a record naming `/` must not make lockstep read the whole filesystem.
    pub fn check_recorded_project(&self) -> Result<(), RecordError> {
        let (record, info) = (&self.record, &self.record.source);
        match &info.path {
            Some(dir)
                if info.kind == SourceKind::Local && dir.is_dir() && !is_project_dir(dir, &record.entry_point) =>
            {
                Err(RecordError::BadRecord {
                    path: self.record_path(),
                    message: format!(
                        "source.path {} is not a project: it has no MLproject file and no script '{}'",
                        dir.display(),
                        record.entry_point
                    ),
                })
            }
            _ => Ok(()),
        }
    }

    fn record_path(&self) -> PathBuf {
        match &self.place {
            RecordPlace::Store(dir) => dir.record(),
            RecordPlace::File(path) | RecordPlace::Archive(path) => path.clone(),
        }
    }
}

/// The run `target` names: a record file or an archive (relative to `caller_dir`), else a
/// run id or unique prefix in `store`.
pub fn lookup(target: &str, store: &Store, caller_dir: &Path) -> Result<FoundRun, Error> {
    let path = caller_dir.join(target);
    let (record, place) = if path.is_file() {
        match ArchiveFormat::of(target) {
            Some(format) => {
                let bytes = archive::read_member(&path, format, PACK_RECORD)
                    .map_err(source::SourceError::from)?
                    .ok_or_else(|| RunError::NoRecordInArchive { path: path.clone() })?;
                (parse_record(&path, &bytes)?, RecordPlace::Archive(path))
            }
            None => (read_record(&path)?, RecordPlace::File(path)),
        }
    } else {
        let record = store.find(target)?;
        let dir = store.run_dir(&record.run_id);
        (record, RecordPlace::Store(dir))
    };
    let found = FoundRun { record, place };
    check_record(&found.record, &found.record_path())?;
    Ok(found)
}

/// A record file.
fn read_record(path: &Path) -> Result<RunRecord, RecordError> {
    let bytes = fs::read(path).map_err(RecordError::io(path))?;
    parse_record(path, &bytes)
}

fn parse_record(path: &Path, bytes: &[u8]) -> Result<RunRecord, RecordError> {
    serde_json::from_slice(bytes)
        .map_err(|e| RecordError::BadRecord { path: path.to_path_buf(), message: e.to_string() })
}

/// Check the fields of a record (at `path`) that become paths or arguments, or are cut to a
/// short form: none of them may lead outside the cache and the store.
fn check_record(record: &RunRecord, path: &Path) -> Result<(), RecordError> {
    let bad = |message: String| RecordError::BadRecord { path: path.to_path_buf(), message };
    env::check_file_name("run_id", &record.run_id).map_err(bad)?;
    let info = &record.source;
    let digests = [
        ("source.tree_sha256", Some(info.tree_sha256.as_str())),
        ("source.input_tree_sha256", info.input_tree_sha256.as_deref()),
        ("source.archive_sha256", info.archive_sha256.as_deref()),
        ("source.patch_sha256", info.patch_sha256.as_deref()),
    ];
    for (field, value) in digests {
        if let Some(v) = value.filter(|v| v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(bad(format!("{field} '{}' is not a sha256 (64 hex digits)", v.escape_debug())));
        }
    }
    if !record.parameter_order.is_empty() {
        let mut names: Vec<&String> = record.parameter_order.iter().collect();
        names.sort();
        if !names.iter().copied().eq(record.parameters.keys()) {
            return Err(bad("parameter_order does not name each parameter once".into()));
        }
    }
    for out in &record.outputs {
        let normal = Path::new(&out.path).components().all(|c| matches!(c, Component::Normal(_)));
        if out.sha256.len() != 64 || !out.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!("output '{}' has no sha256 (64 hex digits)", out.path.escape_debug())));
        }
        if out.path.is_empty() || out.path.contains('\0') || !normal {
            return Err(bad(format!(
                "output path '{}' is not a relative path inside the outputs directory",
                out.path.escape_debug()
            )));
        }
    }
    if let Some(dir) = &info.path
        && (!dir.is_absolute() || dir.components().any(|c| matches!(c, Component::CurDir | Component::ParentDir)))
    {
        return Err(bad(format!("source.path {} is not an absolute path without '.' or '..'", dir.display())));
    }
    // The environment's fields are checked as the record is read; one that failed is refused here.
    if let Some(reason) = record.environment.unreadable_reason() {
        return Err(bad(reason.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_order_must_name_each_parameter_once() {
        let mut record = crate::record::sample_record(&"ab".repeat(16), 1);
        record.parameters = [("lr".to_string(), "0.1".to_string()), ("note".to_string(), "a".to_string())].into();
        let check = |order: &[&str], record: &mut RunRecord| {
            record.parameter_order = order.iter().map(|s| s.to_string()).collect();
            check_record(record, Path::new("record.json"))
        };
        assert!(check(&["note", "lr"], &mut record).is_ok());
        assert!(check(&[], &mut record).is_ok(), "records made before the order was kept");
        for bad in [&["note"][..], &["note", "lr", "lr"], &["note", "x"]] {
            let err = check(bad, &mut record).unwrap_err().to_string();
            assert!(err.contains("parameter_order does not name each parameter once"), "{bad:?}: {err}");
        }
    }
}
