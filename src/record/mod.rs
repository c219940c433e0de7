//! Run records: the store, `record.json`, the outputs of a run, and tracking on an MLflow
//! server.

mod artifact_uri;
pub mod endpoint;
mod host;
mod inputs;
pub mod logged;
pub mod mlflow;
mod objects;
mod outputs;
mod run_dir;
mod store;
mod sweep;
pub mod tracking;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::env::EnvRecord;
use crate::source::SourceInfo;
use crate::support::error_class::ErrorClass;
use crate::support::ids::RunId;

pub use artifact_uri::{ArtifactError, ArtifactSources, fetch_artifact};
pub use host::{Gpu, HostInfo};
pub use inputs::{InputDigest, InputKind};
pub use logged::Logged;
pub use mlflow::TrackingError;
pub use objects::{DEFAULT_KEEP_LIMIT, KeepOutputs, NotKept, Objects};
pub use outputs::{OutputFile, Snapshot, collect_outputs, list_outputs, matching_files, move_outputs};
pub use run_dir::RunDir;
pub use store::{ActiveRun, PendingRun, Store, store_exclusions};
pub use sweep::{SWEEP_SCHEMA, SweepRecord, SweepState, SweepTrial};
pub use tracking::{ServerRun, TrackingTarget};

/// The schema of `record.json`.
pub const RECORD_SCHEMA: &str = "lockstep.run/v1";

/// Errors of the store and of collecting outputs.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// No run matches the id or prefix.
    #[error("no run '{id}' in the store at {}", .store.display())]
    UnknownRun {
        /// The id or prefix.
        id: String,
        /// The store.
        store: PathBuf,
    },
    /// No sweep matches the id or prefix.
    #[error("no sweep '{id}' in the store at {}", .store.display())]
    UnknownSweep {
        /// The id or prefix.
        id: String,
        /// The store.
        store: PathBuf,
    },
    /// More than one run matches the prefix.
    #[error("'{id}' matches several runs: {}", .matches.join(", "))]
    AmbiguousRun {
        /// The prefix.
        id: String,
        /// The runs it matches.
        matches: Vec<String>,
    },
    /// A record file is not valid.
    #[error("{} is not a valid run record: {message}", .path.display())]
    BadRecord {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The run's runner still holds it (`lockstep sync` of a running run).
    #[error("run {id} is still running")]
    RunInProgress {
        /// The run id.
        id: String,
    },
    /// Recording on an MLflow tracking server.
    #[error(transparent)]
    Tracking(#[from] TrackingError),
    /// Serving the run's own tracking endpoint.
    #[error(transparent)]
    Endpoint(#[from] endpoint::EndpointError),
    /// Fetching a `path` parameter given as an MLflow artifact URI.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// A file operation in the store failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl RecordError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RecordError {
        let path = path.into();
        move |source| RecordError::Io { path, source }
    }

    /// Who has to act.
    pub fn class(&self) -> ErrorClass {
        match self {
            RecordError::UnknownRun { .. }
            | RecordError::UnknownSweep { .. }
            | RecordError::AmbiguousRun { .. }
            | RecordError::BadRecord { .. }
            | RecordError::RunInProgress { .. } => ErrorClass::User,
            RecordError::Tracking(e) => e.class(),
            RecordError::Artifact(e) => e.class(),
            RecordError::Io { .. } | RecordError::Endpoint(_) => ErrorClass::Internal,
        }
    }

    /// What to try next.
    pub fn hint(&self) -> Option<String> {
        match self {
            RecordError::UnknownRun { .. } => {
                Some("`lockstep runs` lists the runs; --store or LOCKSTEP_STORE picks another store".into())
            }
            RecordError::UnknownSweep { .. } => {
                Some("the sweep's id is printed when it starts; --store or LOCKSTEP_STORE picks another store".into())
            }
            RecordError::AmbiguousRun { .. } => Some("give more characters of the run id".into()),
            RecordError::RunInProgress { .. } => Some("wait until it ends, then try again".into()),
            RecordError::Tracking(e) => e.hint(),
            RecordError::Artifact(e) => e.hint(),
            _ => None,
        }
    }
}

/// The state of a run, with MLflow's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RunStatus {
    /// Started and not finished (or its runner died: see [`Store::load`]).
    Running,
    /// The entry point exited with 0.
    Finished,
    /// The entry point exited with another code, or the run could not complete.
    Failed,
    /// Stopped by SIGINT or SIGTERM (or the backend's job cancelled).
    Killed,
    /// A backend's job vanished from its scheduler without a terminal state, and left no
    /// record of its end: what happened is unknown, so it is not FINISHED.
    Lost,
}

impl RunStatus {
    /// The name shown to people and sent to MLflow.
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
            RunStatus::Lost => "LOST",
        }
    }
}

/// `record.json`: everything known about one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Always [`RECORD_SCHEMA`].
    pub schema: String,
    /// 32 hex digits, like MLflow's run ids.
    pub run_id: RunId,
    /// `--run-name`, if given.
    pub run_name: Option<String>,
    /// `--experiment-name`, if given.
    pub experiment_name: Option<String>,
    /// The MLproject's `name`, when it has one (absent in records made before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    /// The state.
    pub status: RunStatus,
    /// Why the run failed when its exit code does not say (a lost runner, a failed build).
    pub failure: Option<String>,
    /// The entry point's exit code (128 + signal when a signal ended it).
    pub exit_code: Option<i32>,
    /// Start, in ms since the epoch.
    pub start_time: u64,
    /// End, in ms since the epoch.
    pub end_time: Option<u64>,
    /// The entry point.
    pub entry_point: String,
    /// Parameter values as given or defaulted, not shell-quoted.
    pub parameters: BTreeMap<String, String>,
    /// The parameters' names in the order they were bound: the declared ones in the
    /// manifest's order, then the undeclared ones as given, the order in which they end
    /// `command`. Empty in records made before it was kept (read in the names' order).
    #[serde(default)]
    pub parameter_order: Vec<String>,
    /// The command line that ran.
    pub command: String,
    /// The source and its identity.
    pub source: SourceInfo,
    /// The `path` parameters' values outside the project, hashed (absent in records made
    /// before they were).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputDigest>,
    /// The environment and what it holds.
    pub environment: EnvRecord,
    /// Files the run created or changed, plus those its `outputs:` globs match.
    pub outputs: Vec<OutputFile>,
    /// The directory where the listed outputs are (the project for in-place runs, the run's
    /// `outputs/` directory otherwise).
    pub outputs_dir: PathBuf,
    /// The machine.
    pub host: HostInfo,
    /// The caller's working directory (relative `path` parameters were resolved against it).
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// For a `lockstep verify` run, the run it re-ran.
    #[serde(default)]
    pub verifies: Option<RunId>,
    /// For a `lockstep verify` run, how its outputs compared with the original's.
    #[serde(default)]
    pub verification: Option<VerificationSummary>,
    /// The run's copy on an MLflow tracking server, if it has one.
    #[serde(default)]
    pub tracking: Option<TrackingRecord>,
    /// What the script logged through the mlflow client (absent in records made before it
    /// was kept, and when it logged nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logged: Option<Logged>,
    /// The sweep this run is a trial of (`lockstep sweep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<String>,
    /// The backend's job that ran it, when it did not run here (`--backend`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<BackendRecord>,
}

/// Where a run ran when a backend ran it: enough to report it and, while it runs, to find its
/// job again from another lockstep process (`runs`, `show`, `cancel`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendRecord {
    /// The backend's name (`slurm`).
    pub name: String,
    /// The scheduler's id of the job.
    pub job_id: String,
    /// The nodes or worker it ran on, once known.
    #[serde(default)]
    pub nodes: Option<String>,
    /// The config it was submitted with (`--backend-config`).
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// What the backend fixed at submission (where the job's log and remote store are).
    #[serde(default)]
    pub details: serde_json::Value,
}

/// How a verification run's outputs (and what its script logged) compared with those of the
/// run it re-ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationSummary {
    /// `reproduced` when every file not ignored is identical (or within tolerance), and so
    /// is every logged metric and artifact; `differs` otherwise, `failed` when the re-run
    /// itself failed.
    pub result: String,
    /// Files identical, or equal within `--rtol`.
    pub identical: usize,
    /// Files whose content differs.
    pub differs: usize,
    /// Files the original has and the re-run did not make.
    pub missing: usize,
    /// Files the re-run made and the original does not have.
    pub extra: usize,
    /// Files left out by `--ignore`.
    pub ignored: usize,
    /// How the logged metrics compared, when either script logged something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<ComparedCounts>,
    /// How the logged artifacts and model files compared, when either script logged something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<ComparedCounts>,
    /// The logged metrics that differ (or are missing or extra), with both summaries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_differences: Vec<MetricDifference>,
}

/// How many items of one kind compared which way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComparedCounts {
    /// Identical, or equal within `--rtol`.
    pub identical: usize,
    /// Different.
    pub differs: usize,
    /// In the original only.
    pub missing: usize,
    /// In the re-run only.
    pub extra: usize,
    /// Left out by `--ignore`.
    pub ignored: usize,
}

/// A logged metric that did not reproduce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricDifference {
    /// The metric (`<nested run>/<name>` for a nested run's).
    pub key: String,
    /// Its summary in the original run.
    pub original: Option<logged::MetricSummary>,
    /// Its summary in the re-run.
    pub rerun: Option<logged::MetricSummary>,
}

/// Where a run is recorded on an MLflow tracking server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackingRecord {
    /// The server's URI, without credentials.
    pub uri: String,
    /// The experiment's id on the server.
    pub experiment_id: String,
    /// The server's id of the run.
    pub run_id: String,
    /// Whether the server holds everything of the final record: false while the run runs,
    /// and after a server was lost (`lockstep sync` sends the rest).
    pub synced: bool,
}

/// A minimal RUNNING record of a local run, for tests to adjust.
#[cfg(test)]
pub(crate) fn sample_record(run_id: &str, start_time: u64) -> RunRecord {
    use crate::source::SourceKind;
    RunRecord {
        schema: RECORD_SCHEMA.into(),
        run_id: run_id.into(),
        run_name: None,
        experiment_name: None,
        project_name: None,
        status: RunStatus::Running,
        failure: None,
        exit_code: None,
        start_time,
        end_time: None,
        entry_point: "main".into(),
        parameters: Default::default(),
        parameter_order: Vec::new(),
        command: "true".into(),
        source: SourceInfo {
            uri: ".".into(),
            kind: SourceKind::Local,
            path: None,
            version: None,
            commit: None,
            branch: None,
            repo_url: None,
            subdirectory: None,
            tree_sha256: "0".repeat(64).into(),
            dirty: false,
            patch_sha256: None,
            archive_sha256: None,
            input_tree_sha256: None,
        },
        inputs: Vec::new(),
        environment: EnvRecord::Local,
        outputs: vec![],
        outputs_dir: "/".into(),
        host: HostInfo::current(),
        cwd: None,
        verifies: None,
        verification: None,
        tracking: None,
        logged: None,
        sweep: None,
        backend: None,
    }
}

impl RunRecord {
    /// Duration in ms, once ended.
    pub fn duration_ms(&self) -> Option<u64> {
        self.end_time.map(|end| end.saturating_sub(self.start_time))
    }

    /// The project's name: the MLproject's `name`, else the last part of where its files came
    /// from (its subdirectory, its directory, its repository without `.git`, its archive
    /// without the extension), for records of projects without a name.
    pub fn project(&self) -> &str {
        if let Some(name) = &self.project_name {
            return name;
        }
        let s = &self.source;
        fn last(text: &str) -> &str {
            let text = text.trim_end_matches('/');
            text.rsplit(['/', ':']).next().unwrap_or(text)
        }
        if let Some(sub) = s.subdirectory.as_deref().filter(|sub| !sub.is_empty()) {
            return last(sub);
        }
        if let Some(name) = s.path.as_deref().and_then(|p| p.file_name()).and_then(|n| n.to_str()) {
            return name;
        }
        let uri = s.uri.split('#').next().unwrap_or(&s.uri);
        let name = last(uri);
        [".git", ".tar.gz", ".tgz", ".zip"].iter().find_map(|ext| name.strip_suffix(ext)).unwrap_or(name)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_project_is_named_by_its_mlproject_else_by_where_its_files_came_from() {
        let mut r = super::sample_record(&"a".repeat(32), 0);
        r.source.path = Some("/work/churn".into());
        assert_eq!(r.project(), "churn");
        r.source.subdirectory = Some("models/train/".into());
        assert_eq!(r.project(), "train");
        (r.source.subdirectory, r.source.path) = (None, None);
        for (uri, name) in [
            ("https://github.com/org/repo.git", "repo"),
            ("git@host:team/churn", "churn"),
            ("https://h/x/demo.tar.gz#sub", "demo"),
            ("bundle.zip", "bundle"),
        ] {
            r.source.uri = uri.into();
            assert_eq!(r.project(), name, "{uri}");
        }
        r.project_name = Some("named".into());
        assert_eq!(r.project(), "named");
    }
}
