//! The run store: `<store>/runs/<run_id>/record.json` plus the run's logs and files, and the
//! kept outputs of all runs in `<store>/objects/` ([`super::Objects`]).
//!
//! A run directory is created before the run is validated, and removed again if validation
//! fails, so that bad input leaves nothing behind; listings only show directories with a
//! record. The runner holds an exclusive lock on `<run>/.lock` while it lives, and touches
//! the lock file every second: a RUNNING record whose lock is free belongs to a runner that
//! died, and is finalized as FAILED, ended at the last sign of life of the runner.
//!
//! A runner killed with SIGKILL cleans up nothing. So each runner also leaves a mark,
//! `<store>/live/<run_id>`, that it removes when it has cleaned up; the next run (and `lockstep
//! runs`) looks only at the marks, cheaply, and cleans up after the runners that are gone: a
//! run directory with no record is removed, a lost run is finalized, and the copy of the
//! project a run worked in (`work/`) is removed.

use crate::support::fs::write_atomic;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use super::{RECORD_SCHEMA, RecordError, RunDir, RunRecord, RunStatus};
use crate::source::Exclusions;

const LIVE_DIR: &str = "live";
/// Where `verify --isolate` re-runs with a fixed working directory work.
const PINNED_WORK_DIR: &str = "verify-work";
/// The file that marks a directory as a lockstep store (it holds the record schema), so that
/// walks of a project skip it wherever it is.
const STORE_MARKER: &str = ".lockstep-store";
/// The default store's name (`./.lockstep`), which a packed archive's metadata directory
/// shares: walks skip every directory so named, marked or not.
const LOCKSTEP_DIR: &str = ".lockstep";

/// What every walk of a project leaves out for lockstep's sake: its stores, by their marker,
/// and every `.lockstep` directory.
pub fn store_exclusions() -> Exclusions {
    Exclusions::default().named(LOCKSTEP_DIR).marked_by(STORE_MARKER)
}
const HEARTBEAT: Duration = Duration::from_secs(1);

/// A run store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A run directory whose run has not started yet; dropped, it is removed.
#[derive(Debug)]
pub struct PendingRun {
    dir: RunDir,
    lock: Option<File>,
    mark: Option<PathBuf>,
}

/// A started run: its record exists, and its runner holds the lock until it is dropped.
#[derive(Debug)]
pub struct ActiveRun {
    dir: RunDir,
    _lock: File,
    mark: Option<PathBuf>,
    heartbeat: Option<Heartbeat>,
}

/// The thread that touches a live run's lock file, so that a lost run's end is known.
#[derive(Debug)]
struct Heartbeat {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Store {
    /// The store at `root` (absolute or relative to the current directory); nothing is
    /// created until a run is.
    pub fn open(root: &Path) -> Result<Store, RecordError> {
        let root = std::path::absolute(root).map_err(RecordError::io(root))?;
        Ok(Store { root })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What a walk of a project leaves out when runs are recorded in this store: every store,
    /// and this one even before it has its marker.
    pub fn exclusions(&self) -> Exclusions {
        store_exclusions().dir(self.root.clone())
    }

    fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// The one directory every re-run of `run_id` works in when `verify --isolate` pins the
    /// working directory's path (a run's own `work/` has its id in it).
    pub fn pinned_work_dir(&self, run_id: &str) -> PathBuf {
        self.root.join(PINNED_WORK_DIR).join(run_id)
    }

    /// The kept outputs of the store's runs.
    pub fn objects(&self) -> super::Objects {
        super::Objects::in_store(&self.root)
    }

    /// The directory of a run.
    pub fn run_dir(&self, run_id: &str) -> RunDir {
        RunDir::new(self.runs_dir().join(run_id))
    }

    /// Create the store's layout: the runs directory, a marker that keeps walks out, and a
    /// `.gitignore` that keeps git (and so dirty checks) out.
    fn ensure(&self) -> Result<(), RecordError> {
        let runs = self.runs_dir();
        if runs.is_dir() {
            return Ok(());
        }
        fs::create_dir_all(&runs).map_err(RecordError::io(&runs))?;
        let live = self.root.join(LIVE_DIR);
        fs::create_dir_all(&live).map_err(RecordError::io(&live))?;
        for (name, content) in [(".gitignore", "*\n".to_string()), (STORE_MARKER, format!("{RECORD_SCHEMA}\n"))] {
            let path = self.root.join(name);
            if !path.exists() {
                write_atomic(&path, content.as_bytes()).map_err(RecordError::io(&path))?;
            }
        }
        Ok(())
    }

    /// Create the directory of a new run and lock it, after cleaning up after runners that
    /// are gone.
    pub fn create_run(&self, run_id: &str) -> Result<PendingRun, RecordError> {
        self.ensure()?;
        self.sweep();
        let dir = self.run_dir(run_id);
        fs::create_dir(dir.path()).map_err(RecordError::io(dir.path()))?;
        let mut pending = PendingRun { dir, lock: None, mark: None };
        // Locked before it has its name, so that a lock file that is free always means a
        // runner that is gone, never one that is starting.
        let new_lock = pending.dir.new_lock();
        let lock = File::create(&new_lock).map_err(RecordError::io(&new_lock))?;
        lock.lock().map_err(RecordError::io(&new_lock))?;
        let lock_path = pending.dir.lock();
        fs::rename(&new_lock, &lock_path).map_err(RecordError::io(&lock_path))?;
        pending.lock = Some(lock);
        let mark = self.root.join(LIVE_DIR).join(run_id);
        if let Err(e) = File::create(&mark) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(RecordError::io(&mark)(e));
            }
            // A store made before the marks existed.
            fs::create_dir_all(self.root.join(LIVE_DIR)).map_err(RecordError::io(&mark))?;
            File::create(&mark).map_err(RecordError::io(&mark))?;
        }
        pending.mark = Some(mark);
        Ok(pending)
    }

    /// Clean up after the runners that are gone without doing so, found by their marks. A
    /// mark whose run's lock is held belongs to a live runner and is left alone.
    fn sweep(&self) {
        let Ok(marks) = fs::read_dir(self.root.join(LIVE_DIR)) else { return };
        for mark in marks.flatten() {
            let Some(run_id) = mark.file_name().to_str().map(str::to_string) else { continue };
            let dir = self.run_dir(&run_id);
            match File::options().write(true).open(dir.lock()) {
                Ok(lock) => {
                    if lock.try_lock().is_err() {
                        continue;
                    }
                    clean_up_after(&dir);
                }
                // The run's directory is gone (or going: its owner is removing it).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => continue,
            }
            let _ = fs::remove_file(mark.path());
        }
    }

    /// Every run in the store, newest first, and the records that could not be read. A
    /// RUNNING record whose runner is gone is finalized as FAILED (lost) on the way, and a
    /// directory without a record whose runner is gone is removed.
    pub fn list(&self) -> Result<(Vec<RunRecord>, Vec<RecordError>), RecordError> {
        self.sweep();
        let runs = self.runs_dir();
        let entries = match fs::read_dir(&runs) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
            Err(e) => return Err(RecordError::Io { path: runs, source: e }),
        };
        let (mut records, mut problems) = (Vec::new(), Vec::new());
        for entry in entries.flatten() {
            let dir = RunDir::new(entry.path());
            if dir.record().is_file() {
                match self.load_dir(&dir) {
                    Ok(r) => records.push(r),
                    Err(e) => problems.push(e),
                }
            } else if let Ok(lock) = File::options().write(true).open(dir.lock())
                && lock.try_lock().is_ok()
            {
                // Left by a runner killed before its run started (by an older lockstep, or one
                // whose mark was lost).
                let _ = fs::remove_dir_all(dir.path());
            }
        }
        records.sort_by(|a, b| b.start_time.cmp(&a.start_time).then_with(|| a.run_id.cmp(&b.run_id)));
        Ok((records, problems))
    }

    /// The run whose id is `id` or starts with it.
    pub fn find(&self, id: &str) -> Result<RunRecord, RecordError> {
        let unknown = || RecordError::UnknownRun { id: id.to_string(), store: self.root.clone() };
        let valid = !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit());
        if !valid {
            return Err(unknown());
        }
        let exact = self.run_dir(id);
        if exact.record().is_file() {
            return self.load_dir(&exact);
        }
        let mut matches: Vec<String> = fs::read_dir(self.runs_dir())
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|name| name.starts_with(id) && self.run_dir(name).record().is_file())
                    .collect()
            })
            .unwrap_or_default();
        matches.sort();
        match matches.len() {
            0 => Err(unknown()),
            1 => self.load_dir(&self.run_dir(&matches[0])),
            _ => Err(RecordError::AmbiguousRun { id: id.to_string(), matches }),
        }
    }

    /// Replace the record of a finished run (atomically).
    pub fn save(&self, record: &RunRecord) -> Result<(), RecordError> {
        write_record(&self.run_dir(&record.run_id), record)
    }

    /// Read a run's record, finalizing it as FAILED (lost) if it claims to be RUNNING but
    /// no runner holds its lock.
    fn load_dir(&self, dir: &RunDir) -> Result<RunRecord, RecordError> {
        let record = read_record(&dir.record())?;
        // A backend's run lives on in its job when no runner holds it (`--detach`): its
        // backend says how it ends (`backends::refresh`), not the lock.
        if record.status != RunStatus::Running || record.backend.is_some() {
            return Ok(record);
        }
        let lock_path = dir.lock();
        let Ok(lock) = File::options().write(true).open(&lock_path) else { return Ok(record) };
        if lock.try_lock().is_err() {
            return Ok(record);
        }
        // Holding the lock now: the runner is gone. Read again, since it may have finished
        // between the first read and the lock.
        finalize_lost(dir)
    }

    /// Take a run whose runner is gone, to update its record (`lockstep sync`); a RUNNING
    /// record is finalized as lost on the way.
    pub fn reopen(&self, run_id: &str) -> Result<(ActiveRun, RunRecord), RecordError> {
        let dir = self.run_dir(run_id);
        let lock_path = dir.lock();
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(RecordError::io(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(RecordError::RunInProgress { id: run_id.to_string() });
        }
        let record = finalize_lost(&dir)?;
        Ok((ActiveRun { dir, _lock: lock, mark: None, heartbeat: None }, record))
    }
}

/// The record of a run whose lock the caller holds, finalized as FAILED (lost) if it still
/// says RUNNING (unless a backend's job runs it), its working copy removed.
fn finalize_lost(dir: &RunDir) -> Result<RunRecord, RecordError> {
    let mut record = read_record(&dir.record())?;
    if record.status == RunStatus::Running && record.backend.is_none() {
        record.status = RunStatus::Failed;
        record.failure = Some("lost: the runner ended without finalizing the run".into());
        record.end_time = Some(last_sign_of_life(dir).max(record.start_time));
        // What the script logged up to the end is in the events file (a torn last line
        // dropped); an unreadable one leaves the record without it.
        if record.logged.is_none() && record.tracking.is_none() {
            record.logged = super::Logged::load(dir.path()).ok().flatten();
        }
        write_record(dir, &record)?;
        remove_work(dir);
    }
    Ok(record)
}

/// When the runner of `dir` was last known alive, ms since the epoch: the newest change of
/// its files, the lock file's heartbeat among them (0 when none can be read).
fn last_sign_of_life(dir: &RunDir) -> u64 {
    let Ok(entries) = fs::read_dir(dir.path()) else { return 0 };
    entries
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .filter_map(|m| m.modified().ok())
        .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
        .max()
        .unwrap_or(0)
}

/// Clean up after the runner of `dir`, gone (the caller holds its lock): a run that never
/// started is removed, a lost one finalized, and any run's working copy removed.
fn clean_up_after(dir: &RunDir) {
    if !dir.record().is_file() {
        let _ = fs::remove_dir_all(dir.path());
        return;
    }
    // A record that cannot be read stays as it is, for `lockstep runs` to report.
    let _ = finalize_lost(dir);
    remove_work(dir);
}

/// Remove a run's copy or checkout of its project, which nothing needs once the run ended
/// (up to the size of the project).
fn remove_work(dir: &RunDir) {
    let _ = fs::remove_dir_all(dir.work());
}

fn read_record(path: &Path) -> Result<RunRecord, RecordError> {
    let bytes = fs::read(path).map_err(RecordError::io(path))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| RecordError::BadRecord { path: path.to_path_buf(), message: e.to_string() })
}

fn write_record(dir: &RunDir, record: &RunRecord) -> Result<(), RecordError> {
    let path = dir.record();
    let mut json = serde_json::to_vec_pretty(record).expect("records serialize to JSON");
    json.push(b'\n');
    write_atomic(&path, &json).map_err(RecordError::io(&path))
}

impl PendingRun {
    /// The run's directory.
    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    /// Write the RUNNING record: from here on the run exists, and its heartbeat beats.
    pub fn start(mut self, record: &RunRecord) -> Result<ActiveRun, RecordError> {
        write_record(&self.dir, record)?;
        let lock = self.lock.take().expect("a pending run holds its lock");
        let heartbeat = Heartbeat::start(&lock);
        let dir = std::mem::replace(&mut self.dir, RunDir::new(PathBuf::new()));
        Ok(ActiveRun { dir, _lock: lock, mark: self.mark.take(), heartbeat })
    }
}

impl Drop for PendingRun {
    fn drop(&mut self) {
        if !self.dir.path().as_os_str().is_empty() {
            let _ = fs::remove_dir_all(self.dir.path());
        }
        if let Some(mark) = &self.mark {
            let _ = fs::remove_file(mark);
        }
    }
}

impl Heartbeat {
    /// Touch the lock file every [`HEARTBEAT`] until stopped. Without it (no thread, no
    /// descriptor), a lost run ends at its last record or log write instead.
    fn start(lock: &File) -> Option<Heartbeat> {
        let file = lock.try_clone().ok()?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT) {
                    let _ = file.set_modified(SystemTime::now());
                }
            })
            .ok()?;
        Some(Heartbeat { stop, thread })
    }
}

impl ActiveRun {
    /// The run's directory.
    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    /// Replace the record (atomically).
    pub fn update(&self, record: &RunRecord) -> Result<(), RecordError> {
        write_record(&self.dir, record)
    }
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        if let Some(Heartbeat { stop, thread }) = self.heartbeat.take() {
            drop(stop);
            let _ = thread.join();
        }
        if let Some(mark) = &self.mark {
            let _ = fs::remove_file(mark);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, start: u64) -> RunRecord {
        crate::record::sample_record(id, start)
    }

    #[test]
    fn pending_run_is_removed_unless_started() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        let pending = store.create_run("aa11").unwrap();
        assert!(store.run_dir("aa11").path().is_dir());
        drop(pending);
        assert!(!store.run_dir("aa11").path().exists());
        assert!(store.list().unwrap().0.is_empty());
        assert_eq!(fs::read_to_string(dir.path().join("s/.gitignore")).unwrap(), "*\n");
    }

    #[test]
    fn runs_are_listed_newest_first_and_found_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.create_run("aa11").unwrap().start(&record("aa11", 1)).unwrap();
        let b = store.create_run("aa22").unwrap().start(&record("aa22", 2)).unwrap();
        let ids: Vec<_> = store.list().unwrap().0.into_iter().map(|r| r.run_id).collect();
        assert_eq!(ids, ["aa22", "aa11"]);
        assert_eq!(store.find("aa1").unwrap().run_id, "aa11");
        assert!(matches!(store.find("aa"), Err(RecordError::AmbiguousRun { .. })));
        assert!(matches!(store.find("bb"), Err(RecordError::UnknownRun { .. })));
        assert!(matches!(store.find("../x"), Err(RecordError::UnknownRun { .. })));
        assert_eq!(store.find("aa22").unwrap().status, RunStatus::Running, "a live runner's run stays RUNNING");
        drop((a, b));
    }

    #[test]
    fn a_run_whose_runner_died_is_failed_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let active = store.create_run("cc33").unwrap().start(&record("cc33", 5)).unwrap();
        drop(active);
        let r = store.find("cc33").unwrap();
        assert_eq!(r.status, RunStatus::Failed);
        assert!(r.failure.unwrap().starts_with("lost"));
        assert!(r.end_time.is_some());
        let on_disk = read_record(&store.run_dir("cc33").record()).unwrap();
        assert_eq!(on_disk.status, RunStatus::Failed, "the record is finalized on disk");
    }

    #[test]
    fn a_corrupt_record_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        drop(store.create_run("dd44").unwrap().start(&record("dd44", 1)).unwrap());
        fs::write(store.run_dir("dd44").record(), "{ not json").unwrap();
        let err = store.find("dd44").unwrap_err().to_string();
        assert!(err.contains("is not a valid run record"), "{err}");
        let (runs, problems) = store.list().unwrap();
        assert!(runs.is_empty());
        assert_eq!(problems.len(), 1, "a bad record is reported, not hidden");
    }
}
