//! The UI's in-memory index of the store: every readable record, re-read only when its file
//! changed (size or mtime), and the metric histories of the runs last looked at. Read-only:
//! unlike `lockstep runs`, it never finalizes a lost run; it shows it as lost.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use crate::record::logged::{Event, Events, MetricPoint, read_events};
use crate::record::{RunDir, RunRecord, RunStatus, Store, SweepRecord};

/// How many runs' metric histories are kept in memory.
const HISTORIES_KEPT: usize = 32;

/// A record as the UI shows it.
#[derive(Debug, Clone)]
pub(crate) struct RunEntry {
    /// The record as on disk.
    pub(crate) record: Arc<RunRecord>,
    /// RUNNING, but no runner holds the lock: the runner died (the next `lockstep runs`
    /// finalizes it as FAILED).
    pub(crate) lost: bool,
}

impl RunEntry {
    /// The status shown: the record's, or `LOST`.
    pub(crate) fn status_name(&self) -> &'static str {
        if self.lost { "LOST" } else { self.record.status.name() }
    }

    /// Whether the run is in progress (and pages showing it should follow it).
    pub(crate) fn live(&self) -> bool {
        self.record.status == RunStatus::Running && !self.lost
    }
}

/// One metric's history per name, of one run's top-level run.
pub(crate) type Histories = HashMap<String, Vec<MetricPoint>>;

struct Cached {
    stamp: (SystemTime, u64),
    record: Arc<RunRecord>,
}

struct CachedHistories {
    stamp: (SystemTime, u64),
    histories: Arc<Histories>,
}

/// The index.
pub(crate) struct Index {
    store: Store,
    records: HashMap<String, Cached>,
    histories: HashMap<String, CachedHistories>,
    /// Runs newest first, as of the last refresh.
    runs: Vec<RunEntry>,
    /// Records that could not be read, as of the last refresh.
    problems: Vec<String>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl Index {
    /// An empty index of `store`.
    pub(crate) fn new(store: Store) -> Index {
        Index { store, records: HashMap::new(), histories: HashMap::new(), runs: Vec::new(), problems: Vec::new() }
    }

    /// Bring the index up to date with the store: new, changed and removed records.
    pub(crate) fn refresh(&mut self) {
        let runs_dir = self.store.root().join("runs");
        let mut seen: HashMap<String, Cached> = HashMap::with_capacity(self.records.len());
        let mut changed = false;
        self.problems.clear();
        for entry in fs::read_dir(&runs_dir).into_iter().flatten().flatten() {
            let Ok(id) = entry.file_name().into_string() else { continue };
            let dir = RunDir::new(entry.path());
            // A directory without a record is a run that has not started: not shown.
            let Some(now) = stamp(&dir.record()) else { continue };
            if let Some(old) = self.records.remove(&id)
                && old.stamp == now
            {
                seen.insert(id, old);
                continue;
            }
            changed = true;
            match fs::read(dir.record())
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice::<RunRecord>(&bytes).map_err(|e| e.to_string()))
            {
                Ok(record) if record.run_id.as_str() == id => {
                    seen.insert(id, Cached { stamp: now, record: Arc::new(record) });
                }
                Ok(_) => {
                    self.problems.push(format!("{}: its run id is not its directory's name", dir.record().display()))
                }
                Err(e) => self.problems.push(format!("{}: {e}", dir.record().display())),
            }
        }
        // What is left of the old records was removed from the store.
        changed |= !self.records.is_empty();
        self.records = seen;
        if !changed {
            // A runner may have died since: only that can change without a record changing.
            for run in &mut self.runs {
                run.lost = is_lost(&self.store, &run.record);
            }
            return;
        }
        let mut runs: Vec<RunEntry> = self
            .records
            .values()
            .map(|c| RunEntry { lost: is_lost(&self.store, &c.record), record: c.record.clone() })
            .collect();
        runs.sort_by(|a, b| {
            b.record.start_time.cmp(&a.record.start_time).then_with(|| a.record.run_id.cmp(&b.record.run_id))
        });
        self.runs = runs;
    }

    /// The runs, newest first.
    pub(crate) fn runs(&self) -> &[RunEntry] {
        &self.runs
    }

    /// The records that could not be read.
    pub(crate) fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The run whose full id is `id`.
    pub(crate) fn run(&self, id: &str) -> Option<&RunEntry> {
        self.runs.iter().find(|r| r.record.run_id.as_str() == id)
    }

    /// The run `id` names: a full id, or a prefix of exactly one.
    pub(crate) fn find(&self, id: &str) -> Option<&RunEntry> {
        if !valid_id(id) {
            return None;
        }
        self.run(id).or_else(|| {
            let mut matches = self.runs.iter().filter(|r| r.record.run_id.starts_with(id));
            match (matches.next(), matches.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            }
        })
    }

    /// The metric histories of run `id`'s own (top-level) run, read again when its events
    /// file grew.
    pub(crate) fn histories(&mut self, id: &str) -> Arc<Histories> {
        let dir = self.store.run_dir(id);
        let path = dir.path().join(crate::record::logged::EVENTS_FILE);
        let Some(now) = stamp(&path) else { return Arc::default() };
        if let Some(c) = self.histories.get(id)
            && c.stamp == now
        {
            return c.histories.clone();
        }
        let events = read_events(dir.path()).unwrap_or_default();
        let histories = Arc::new(top_histories(&events));
        if self.histories.len() >= HISTORIES_KEPT {
            self.histories.clear();
        }
        self.histories.insert(id.to_string(), CachedHistories { stamp: now, histories: histories.clone() });
        histories
    }

    /// Every sweep of the store, newest first (those that cannot be read left out).
    pub(crate) fn sweeps(&self) -> Vec<SweepRecord> {
        let dir = self.store.root().join("sweeps");
        let mut sweeps: Vec<SweepRecord> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| serde_json::from_slice(&fs::read(e.path()).ok()?).ok())
            .collect();
        sweeps.sort_by_key(|s: &SweepRecord| std::cmp::Reverse(s.start_time));
        sweeps
    }

    /// The sweep whose full id is `id`.
    pub(crate) fn sweep(&self, id: &str) -> Option<SweepRecord> {
        valid_id(id).then(|| self.store.find_sweep(id).ok()).flatten().filter(|s| s.sweep_id == id)
    }

    /// The directory of run `id` (a full id of the index).
    pub(crate) fn run_dir(&self, id: &str) -> RunDir {
        self.store.run_dir(id)
    }

    /// The copies of outputs the store keeps.
    pub(crate) fn objects(&self) -> crate::record::Objects {
        self.store.objects()
    }
}

/// Ids are hex: nothing else ever becomes part of a path.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether a RUNNING record's runner is gone: its lock can be taken (and is let go at once).
fn is_lost(store: &Store, record: &RunRecord) -> bool {
    if record.status != RunStatus::Running {
        return false;
    }
    match File::open(store.run_dir(&record.run_id).lock()) {
        Ok(lock) => lock.try_lock_shared().is_ok(),
        Err(_) => true,
    }
}

/// The histories of the first run the events create (lockstep's own run).
fn top_histories(events: &Events) -> Histories {
    let Some(top) = events.top_run_id() else { return Histories::new() };
    let mut out = Histories::new();
    for e in &events.events {
        if let Event::Metric { run_id, key, value, step, timestamp } = e
            && run_id == top
        {
            let point = MetricPoint { value: *value, step: *step, timestamp: *timestamp };
            out.entry(key.clone()).or_default().push(point);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::logged::EventLog;

    fn save(store: &Store, id: &str, start: u64, status: RunStatus) {
        let mut r = crate::record::sample_record(id, start);
        r.status = status;
        std::fs::create_dir_all(store.run_dir(id).path()).unwrap();
        store.save(&r).unwrap();
    }

    #[test]
    fn records_are_indexed_newest_first_and_lost_runs_left_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = ("a".repeat(32), "b".repeat(32));
        save(&store, &a, 1, RunStatus::Finished);
        save(&store, &b, 2, RunStatus::Running);
        std::fs::create_dir_all(store.run_dir(&"c".repeat(32)).path()).unwrap();
        let mut index = Index::new(store.clone());
        index.refresh();
        let ids: Vec<&str> = index.runs().iter().map(|r| r.record.run_id.as_str()).collect();
        assert_eq!(ids, [b.as_str(), a.as_str()], "newest first; no record, no run");
        assert_eq!(index.run(&b).unwrap().status_name(), "LOST", "no runner holds its lock");
        let on_disk: RunRecord = serde_json::from_slice(&std::fs::read(store.run_dir(&b).record()).unwrap()).unwrap();
        assert_eq!(on_disk.status, RunStatus::Running, "the UI never writes the store");
        assert_eq!(index.find("aaa").unwrap().record.run_id, a);
        assert!(index.find("../a").is_none() && index.find("").is_none());
        std::fs::write(store.run_dir(&a).record(), "{").unwrap();
        index.refresh();
        assert_eq!(index.runs().len(), 1);
        assert_eq!(index.problems().len(), 1, "{:?}", index.problems());
    }

    #[test]
    fn histories_are_those_of_the_top_run_and_follow_the_events_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = "d".repeat(32);
        save(&store, &id, 1, RunStatus::Finished);
        let log = EventLog::open(store.run_dir(&id).path()).unwrap();
        let run = |run_id: &str| Event::Run {
            run_id: run_id.into(),
            parent: None,
            experiment_id: "0".into(),
            name: None,
            start_time: 0,
            artifact_uri: String::new(),
        };
        let metric = |run_id: &str, step: i64| Event::Metric {
            run_id: run_id.into(),
            key: "loss".into(),
            value: 1.0 / (step + 1) as f64,
            step,
            timestamp: step,
        };
        log.append(&[run(&id), run("nested"), metric(&id, 0), metric("nested", 0)]).unwrap();
        let mut index = Index::new(store);
        assert_eq!(index.histories(&id)["loss"].len(), 1, "the nested run's points are not the run's");
        log.append(&[metric(&id, 1)]).unwrap();
        assert_eq!(index.histories(&id)["loss"].len(), 2);
        assert!(index.histories(&"e".repeat(32)).is_empty());
    }
}
