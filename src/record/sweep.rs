//! Sweep records: `<store>/sweeps/<sweep_id>.json`, one per `lockstep sweep`: its grid, its
//! trials with their run ids, and its state. Rewritten atomically as trials end.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{RecordError, RunStatus, Store};
use crate::support::fs::write_atomic;

/// The schema of a sweep record.
pub const SWEEP_SCHEMA: &str = "lockstep.sweep/v1";
const SWEEPS_DIR: &str = "sweeps";

/// Where a sweep is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SweepState {
    /// Trials are still running.
    Running,
    /// Every trial finished (ran or reused).
    Finished,
    /// Some trial failed, or was not run after `--fail-fast` stopped the sweep.
    Failed,
    /// Stopped by SIGINT or SIGTERM.
    Killed,
}

/// One trial: its parameters and, once it has one, its run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepTrial {
    /// Every swept parameter's value, fixed ones included.
    pub params: BTreeMap<String, String>,
    /// The run that ran it, or the earlier run reused for it; None while not started.
    pub run_id: Option<String>,
    /// The run's status, or None when the trial never ran (the sweep stopped first).
    pub status: Option<RunStatus>,
    /// Whether an earlier equivalent run was reused instead of running.
    #[serde(default)]
    pub reused: bool,
    /// Why the trial could not start (a check failed), when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `<store>/sweeps/<id>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    /// Always [`SWEEP_SCHEMA`].
    pub schema: String,
    /// 32 hex digits.
    pub sweep_id: String,
    /// The project, as given.
    pub uri: String,
    /// The entry point.
    pub entry_point: String,
    /// The parameters as swept, in the order given, each with its values.
    pub grid: Vec<(String, Vec<String>)>,
    /// `--random N`, with the seed it drew with.
    pub random: Option<(usize, u64)>,
    /// The state.
    pub state: SweepState,
    /// Start, in ms since the epoch.
    pub start_time: u64,
    /// End, in ms since the epoch.
    pub end_time: Option<u64>,
    /// The sweep's parent run on a tracking server, when it has one.
    #[serde(default)]
    pub tracking_run_id: Option<String>,
    /// The trials, in the grid's order.
    pub trials: Vec<SweepTrial>,
}

impl Store {
    fn sweep_path(&self, sweep_id: &str) -> PathBuf {
        self.root().join(SWEEPS_DIR).join(format!("{sweep_id}.json"))
    }

    /// Write a sweep's record (atomically).
    pub fn save_sweep(&self, sweep: &SweepRecord) -> Result<(), RecordError> {
        let path = self.sweep_path(&sweep.sweep_id);
        let dir = self.root().join(SWEEPS_DIR);
        fs::create_dir_all(&dir).map_err(RecordError::io(&dir))?;
        let text = serde_json::to_vec_pretty(sweep).expect("a sweep record serializes");
        write_atomic(&path, &text).map_err(RecordError::io(&path))
    }

    /// The sweep whose id is `id` or starts with it.
    pub fn find_sweep(&self, id: &str) -> Result<SweepRecord, RecordError> {
        let unknown = || RecordError::UnknownSweep { id: id.to_string(), store: self.root().to_path_buf() };
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        let mut matches: Vec<String> = fs::read_dir(self.root().join(SWEEPS_DIR))
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter_map(|name| name.strip_suffix(".json").map(str::to_string))
                    .filter(|name| name.starts_with(id))
                    .collect()
            })
            .unwrap_or_default();
        matches.sort();
        match matches.as_slice() {
            [] => Err(unknown()),
            [one] => {
                let path = self.sweep_path(one);
                let text = fs::read(&path).map_err(RecordError::io(&path))?;
                serde_json::from_slice(&text)
                    .map_err(|e| RecordError::BadRecord { path: path.clone(), message: e.to_string() })
            }
            _ => Err(RecordError::AmbiguousRun { id: id.to_string(), matches }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_is_found_by_a_prefix_of_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let sweep = SweepRecord {
            schema: SWEEP_SCHEMA.into(),
            sweep_id: "ab12".into(),
            uri: ".".into(),
            entry_point: "main".into(),
            grid: vec![("a".into(), vec!["1".into(), "2".into()])],
            random: None,
            state: SweepState::Running,
            start_time: 1,
            end_time: None,
            tracking_run_id: None,
            trials: vec![],
        };
        store.save_sweep(&sweep).unwrap();
        assert_eq!(store.find_sweep("ab").unwrap(), sweep);
        assert!(matches!(store.find_sweep("cd"), Err(RecordError::UnknownSweep { .. })));
        assert!(matches!(store.find_sweep("../x"), Err(RecordError::UnknownSweep { .. })));
    }
}
