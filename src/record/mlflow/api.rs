//! The REST API's endpoints that lockstep calls, and the wire types of their answers.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{CREATE, Payload, READ, WRITE};
use super::{MAX_PARAMS_TAGS_PER_BATCH, MlflowClient, TrackingError};
use crate::support::text::percent_encode;

/// An experiment, as the server describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Experiment {
    /// Its id.
    pub experiment_id: String,
    /// Its name.
    pub name: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
}

/// A run, as the server describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct RunInfo {
    /// The server's id of the run.
    pub run_id: String,
    /// Its experiment.
    pub experiment_id: String,
    /// Where its artifacts go (`mlflow-artifacts:/...` when the server serves them).
    #[serde(default)]
    pub artifact_uri: String,
    /// `RUNNING`, `FINISHED`, ...
    #[serde(default)]
    pub status: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
}

/// The run to create.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    /// The experiment.
    pub experiment_id: &'a str,
    /// The user (`mlflow.user`).
    pub user: &'a str,
    /// The run's name, if any (the server makes one up otherwise).
    pub run_name: Option<&'a str>,
    /// Start, ms since the epoch.
    pub start_time: u64,
    /// Tags set at creation.
    pub tags: &'a [(String, String)],
}

impl MlflowClient {
    /// The experiment of this name, if there is one (deleted ones included).
    pub fn experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, TrackingError> {
        let url = self.api_url("experiments/get-by-name", &[("experiment_name", name)]);
        self.optional(self.call("GET", &url, "experiments/get-by-name", Payload::Empty, READ))
            .and_then(|v| v.map(|v| self.field(v, "experiment", "experiments/get-by-name")).transpose())
    }

    /// The experiment of this id, if there is one.
    pub fn experiment(&self, id: &str) -> Result<Option<Experiment>, TrackingError> {
        let url = self.api_url("experiments/get", &[("experiment_id", id)]);
        match self.call("GET", &url, "experiments/get", Payload::Empty, READ) {
            // Servers answer an id that is not a number with INVALID_PARAMETER_VALUE.
            Err(e) if e.is_code("INVALID_PARAMETER_VALUE") => Ok(None),
            other => {
                self.optional(other).and_then(|v| v.map(|v| self.field(v, "experiment", "experiments/get")).transpose())
            }
        }
    }

    /// Create an experiment; `Ok(None)` when one of that name appeared meanwhile.
    pub fn create_experiment(&self, name: &str) -> Result<Option<String>, TrackingError> {
        let body = json!({ "name": name });
        match self.post("experiments/create", &body, READ) {
            Ok(v) => self.field::<String>(v, "experiment_id", "experiments/create").map(Some),
            Err(e) if e.is_code("RESOURCE_ALREADY_EXISTS") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create a run, trying once: a retry after a lost answer could make a second run, so
    /// the caller looks for the first one before trying again.
    pub fn create_run_once(&self, run: &NewRun) -> Result<RunInfo, TrackingError> {
        let mut body = json!({
            "experiment_id": run.experiment_id,
            "user_id": run.user,
            "start_time": run.start_time,
            "tags": pairs(run.tags),
        });
        if let Some(name) = run.run_name {
            body["run_name"] = json!(name);
        }
        let v = self.post("runs/create", &body, CREATE)?;
        let run: Value = self.field(v, "run", "runs/create")?;
        self.field(run, "info", "runs/create")
    }

    /// The run of this id, if there is one.
    pub fn run(&self, run_id: &str) -> Result<Option<RunInfo>, TrackingError> {
        let url = self.api_url("runs/get", &[("run_id", run_id)]);
        let v = self.optional(self.call("GET", &url, "runs/get", Payload::Empty, READ))?;
        v.map(|v| {
            let run: Value = self.field(v, "run", "runs/get")?;
            self.field(run, "info", "runs/get")
        })
        .transpose()
    }

    /// The active runs of an experiment whose tag `key` is `value`.
    pub fn runs_tagged(&self, experiment_id: &str, key: &str, value: &str) -> Result<Vec<RunInfo>, TrackingError> {
        let filter = format!("tags.`{key}` = '{}'", value.replace('\'', "\\'"));
        let body = json!({ "experiment_ids": [experiment_id], "filter": filter, "max_results": 10 });
        let v = self.post("runs/search", &body, READ)?;
        let runs = v.get("runs").cloned().unwrap_or(Value::Array(vec![]));
        let runs: Vec<Value> = self.parse(runs, "runs/search")?;
        runs.into_iter().map(|r| self.field(r, "info", "runs/search")).collect()
    }

    /// A run as the server describes it (info, data, inputs, outputs), if there is one.
    pub fn run_json(&self, run_id: &str) -> Result<Option<Value>, TrackingError> {
        let url = self.api_url("runs/get", &[("run_id", run_id)]);
        let v = self.optional(self.call("GET", &url, "runs/get", Payload::Empty, READ))?;
        v.map(|v| self.field(v, "run", "runs/get")).transpose()
    }

    /// Every run of an experiment that `filter` matches, all pages.
    pub fn search_runs(&self, experiment_id: &str, filter: &str) -> Result<Vec<Value>, TrackingError> {
        self.pages("runs/search", json!({ "experiment_ids": [experiment_id], "filter": filter }), "runs")
    }

    /// Every logged model of an experiment that `filter` matches, all pages.
    pub fn search_logged_models(&self, experiment_id: &str, filter: &str) -> Result<Vec<Value>, TrackingError> {
        self.pages("logged-models/search", json!({ "experiment_ids": [experiment_id], "filter": filter }), "models")
    }

    fn pages(&self, endpoint: &str, mut body: Value, field: &str) -> Result<Vec<Value>, TrackingError> {
        let mut all = Vec::new();
        loop {
            let mut v = self.post(endpoint, &body, READ)?;
            if let Some(Value::Array(items)) = v.get_mut(field).map(Value::take) {
                all.extend(items);
            }
            match v.get("next_page_token").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                Some(token) => body["page_token"] = json!(token),
                None => return Ok(all),
            }
        }
    }

    /// Every point of a metric of a run: `(value, step, timestamp)` as the server sends them.
    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Value>, TrackingError> {
        let url = self.api_url("metrics/get-history", &[("run_id", run_id), ("metric_key", key)]);
        let v = self.call("GET", &url, "metrics/get-history", Payload::Empty, READ)?;
        Ok(v.get("metrics").and_then(Value::as_array).cloned().unwrap_or_default())
    }

    /// The files of a run's artifacts under `path` (`path`, `is_dir`, `file_size`).
    pub fn list_artifacts(&self, run_id: &str, path: &str) -> Result<Vec<Value>, TrackingError> {
        let url = self.api_url("artifacts/list", &[("run_id", run_id), ("path", path)]);
        let v = self.call("GET", &url, "artifacts/list", Payload::Empty, READ)?;
        Ok(v.get("files").and_then(Value::as_array).cloned().unwrap_or_default())
    }

    /// The bytes of the artifact `path` of the run whose artifacts are at `artifact_uri` (an
    /// `mlflow-artifacts:` URI).
    pub fn download(&self, artifact_uri: &str, path: &str) -> Result<Vec<u8>, TrackingError> {
        let url = self.artifact_url(artifact_uri, path);
        let (status, body, _) = self.send("GET", &url, &Payload::Empty, true)?;
        match status {
            200 => Ok(body),
            _ => Err(self.status_error("mlflow-artifacts download", status, &body)),
        }
    }

    /// Log parameters and set tags, in as many `runs/log-batch` requests as the API's limits
    /// need.
    pub fn log_batch(
        &self,
        run_id: &str,
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<(), TrackingError> {
        let (mut params, mut tags) = (params.chunks(MAX_PARAMS_TAGS_PER_BATCH), tags.chunks(MAX_PARAMS_TAGS_PER_BATCH));
        loop {
            let (p, t) = (params.next().unwrap_or(&[]), tags.next().unwrap_or(&[]));
            if p.is_empty() && t.is_empty() {
                return Ok(());
            }
            let body = json!({ "run_id": run_id, "params": pairs(p), "tags": pairs(t), "metrics": [] });
            self.post("runs/log-batch", &body, WRITE)?;
        }
    }

    /// Set a run's status and end time.
    pub fn update_run(&self, run_id: &str, status: &str, end_time: Option<u64>) -> Result<(), TrackingError> {
        let mut body = json!({ "run_id": run_id, "status": status });
        if let Some(end) = end_time {
            body["end_time"] = json!(end);
        }
        self.post("runs/update", &body, WRITE).map(drop)
    }

    /// Whether runs with this artifact URI store their artifacts through the server.
    pub fn serves_artifacts(artifact_uri: &str) -> bool {
        artifact_uri.starts_with("mlflow-artifacts:")
    }

    /// Upload a file as the artifact `path` of the run whose artifacts are at `artifact_uri`
    /// (an `mlflow-artifacts:` URI).
    pub fn upload_file(&self, artifact_uri: &str, path: &str, file: &Path) -> Result<(), TrackingError> {
        let url = self.artifact_url(artifact_uri, path);
        self.call("PUT", &url, "mlflow-artifacts upload", Payload::File(file, content_type(path)), WRITE).map(drop)
    }

    /// Upload bytes as the artifact `path` (see [`MlflowClient::upload_file`]).
    pub fn upload_bytes(&self, artifact_uri: &str, path: &str, bytes: &[u8]) -> Result<(), TrackingError> {
        let url = self.artifact_url(artifact_uri, path);
        self.call("PUT", &url, "mlflow-artifacts upload", Payload::Bytes(bytes, content_type(path)), WRITE).map(drop)
    }

    /// The proxy URL of an artifact, as MLflow's own client resolves it: the tracking
    /// server's scheme, the artifact URI's host if it names one, and the artifact's path
    /// under `/api/2.0/mlflow-artifacts/artifacts`.
    pub(super) fn artifact_url(&self, artifact_uri: &str, path: &str) -> String {
        let rest = artifact_uri.strip_prefix("mlflow-artifacts:").unwrap_or(artifact_uri);
        let (scheme, after_scheme) = self.base.split_once("://").unwrap_or(("http", &self.base));
        let (tracking_host, prefix) =
            after_scheme.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((after_scheme, String::new()));
        let (host, artifact_path) = match rest.strip_prefix("//") {
            Some(with_host) => with_host.split_once('/').unwrap_or((with_host, "")),
            None => (tracking_host, rest.trim_start_matches('/')),
        };
        let full = format!("{}/{}", artifact_path.trim_end_matches('/'), path);
        let encoded: Vec<String> = full.split('/').filter(|s| !s.is_empty()).map(percent_encode).collect();
        format!("{scheme}://{host}{prefix}/api/2.0/mlflow-artifacts/artifacts/{}", encoded.join("/"))
    }
}

fn pairs(items: &[(String, String)]) -> Value {
    Value::Array(items.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect())
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("json") => "application/json",
        Some("log" | "txt" | "patch") => "text/plain",
        _ => "application/octet-stream",
    }
}
