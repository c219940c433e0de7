//! The files a Slurm job shares with the submit host through the staging directory: the
//! archive staged once by name, the job's log read from an offset, and the remote run's
//! directory copied back into the local run.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::super::BackendError;
use crate::record::{RunDir, RunRecord};

/// What of a remote run directory is not copied back: its runner's lock and the copy of the
/// project it worked in (the local record is written by the local side).
const NOT_COPIED: [&str; 4] = [".lock", ".lock.new", "work", "record.json"];

/// The archive in `dir` under `name`, copied there (temp file + rename) unless a job of the
/// same tree staged it already.
pub fn stage_archive(archive: &Path, dir: &Path, name: &str) -> Result<PathBuf, BackendError> {
    let staged = dir.join(name);
    if staged.is_file() {
        return Ok(staged);
    }
    fs::create_dir_all(dir).map_err(BackendError::io(dir))?;
    let tmp = tempfile::Builder::new().prefix(".stage-").tempfile_in(dir).map_err(BackendError::io(dir))?;
    fs::copy(archive, tmp.path()).map_err(BackendError::io(archive))?;
    tmp.persist(&staged).map_err(|e| BackendError::Io { path: staged.clone(), source: e.error })?;
    Ok(staged)
}

/// The bytes of `path` from `offset` on; nothing while the file does not exist yet.
pub fn read_from(path: &Path, offset: u64) -> Result<Vec<u8>, BackendError> {
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BackendError::Io { path: path.to_path_buf(), source: e }),
    };
    file.seek(SeekFrom::Start(offset)).map_err(BackendError::io(path))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(BackendError::io(path))?;
    Ok(bytes)
}

/// The remote run's record, its files (logs, outputs, what the script logged) copied into
/// the local run directory, and the job's log as `job.log`; `None` when the far side wrote
/// no record.
pub fn collect_run(remote: &RunDir, into: &RunDir, job_log: Option<&Path>) -> Result<Option<RunRecord>, BackendError> {
    if let Some(log) = job_log.filter(|l| l.is_file()) {
        let dest = into.path().join("job.log");
        fs::copy(log, &dest).map_err(BackendError::io(&dest))?;
    }
    let path = remote.record();
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BackendError::Io { path, source: e }),
    };
    let record: RunRecord = serde_json::from_slice(&bytes)
        .map_err(|e| BackendError::BadRemoteRecord { path: path.clone(), message: e.to_string() })?;
    let entries = fs::read_dir(remote.path()).map_err(BackendError::io(remote.path()))?;
    for entry in entries {
        let entry = entry.map_err(BackendError::io(remote.path()))?;
        let name = entry.file_name();
        if NOT_COPIED.iter().any(|n| name == *n) {
            continue;
        }
        copy_tree(&entry.path(), &into.path().join(&name))?;
    }
    Ok(Some(record))
}

/// Copy a file, a link or a directory tree (hard links where the file system allows).
fn copy_tree(from: &Path, to: &Path) -> Result<(), BackendError> {
    let meta = fs::symlink_metadata(from).map_err(BackendError::io(from))?;
    if meta.is_dir() {
        fs::create_dir_all(to).map_err(BackendError::io(to))?;
        for entry in fs::read_dir(from).map_err(BackendError::io(from))? {
            let entry = entry.map_err(BackendError::io(from))?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else if meta.file_type().is_symlink() {
        let target = fs::read_link(from).map_err(BackendError::io(from))?;
        let _ = fs::remove_file(to);
        std::os::unix::fs::symlink(target, to).map_err(BackendError::io(to))?;
    } else {
        let _ = fs::remove_file(to);
        if fs::hard_link(from, to).is_err() {
            fs::copy(from, to).map_err(BackendError::io(to))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_run_is_copied_back_without_its_lock_and_work() {
        let dir = tempfile::tempdir().unwrap();
        let remote = RunDir::new(dir.path().join("remote"));
        let local = RunDir::new(dir.path().join("local"));
        fs::create_dir_all(remote.path().join("outputs/sub")).unwrap();
        fs::create_dir_all(remote.path().join("work")).unwrap();
        fs::create_dir_all(local.path()).unwrap();
        assert!(collect_run(&remote, &local, None).unwrap().is_none(), "no record yet");
        fs::write(remote.path().join("outputs/sub/m.txt"), "1").unwrap();
        fs::write(remote.path().join(".lock"), "").unwrap();
        fs::write(remote.path().join("stdout.log"), "hi\n").unwrap();
        let record = crate::record::sample_record("ab", 1);
        fs::write(remote.record(), serde_json::to_vec(&record).unwrap()).unwrap();
        let log = dir.path().join("job.log");
        fs::write(&log, "job\n").unwrap();
        assert_eq!(collect_run(&remote, &local, Some(&log)).unwrap(), Some(record));
        assert_eq!(fs::read_to_string(local.path().join("outputs/sub/m.txt")).unwrap(), "1");
        assert_eq!(fs::read_to_string(local.stdout_log()).unwrap(), "hi\n");
        assert_eq!(fs::read_to_string(local.path().join("job.log")).unwrap(), "job\n");
        assert!(!local.path().join(".lock").exists() && !local.work().exists() && !local.record().exists());
        assert_eq!(read_from(&log, 2).unwrap(), b"b\n");
        assert!(read_from(&dir.path().join("none"), 0).unwrap().is_empty());
    }
}
