//! What the endpoint holds while the run lives: experiments, runs (the run of lockstep and
//! those the script creates) and logged models, each change appended to the events file
//! before it is answered.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::wire::{ApiError, float_json, pair_list};
use crate::record::RunDir;
use crate::record::logged::{Event, EventLog, MetricPoint, OTHER_RUNS_DIR};

/// The run lockstep made, as the endpoint first knows it.
#[derive(Debug, Clone)]
pub struct TopRun {
    /// lockstep's run id (MLflow's form: 32 hex digits).
    pub run_id: String,
    /// `--run-name`.
    pub name: Option<String>,
    /// `--experiment-name`, when given.
    pub experiment_name: Option<String>,
    /// Its start, ms since the epoch.
    pub start_time: i64,
    /// The user (`mlflow.user`).
    pub user: String,
}

/// An experiment.
#[derive(Debug, Clone)]
pub(super) struct Experiment {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) artifact_location: String,
    pub(super) lifecycle_stage: String,
    pub(super) creation_time: i64,
    pub(super) tags: BTreeMap<String, String>,
}

/// A run.
#[derive(Debug, Clone)]
pub(super) struct Run {
    pub(super) run_id: String,
    pub(super) experiment_id: String,
    pub(super) name: String,
    pub(super) user_id: String,
    pub(super) status: String,
    pub(super) start_time: i64,
    pub(super) end_time: Option<i64>,
    pub(super) artifact_uri: String,
    pub(super) lifecycle_stage: String,
    pub(super) params: BTreeMap<String, String>,
    /// Every point of every metric, in the order logged.
    pub(super) metrics: BTreeMap<String, Vec<MetricPoint>>,
    pub(super) tags: BTreeMap<String, String>,
    pub(super) dataset_inputs: Vec<Value>,
    pub(super) model_inputs: Vec<Value>,
    pub(super) model_outputs: Vec<Value>,
}

impl Run {
    /// The latest point of a metric, by MLflow's rule: the greatest step, then time, then value.
    pub(super) fn latest(&self, key: &str) -> Option<MetricPoint> {
        self.metrics.get(key)?.iter().copied().reduce(|a, b| {
            let later = (b.step, b.timestamp) > (a.step, a.timestamp)
                || ((b.step, b.timestamp) == (a.step, a.timestamp) && b.value > a.value);
            if later { b } else { a }
        })
    }

    /// The run as MLflow's `Run` message: info, data (the latest point of each metric),
    /// inputs and outputs.
    pub(super) fn json(&self) -> Value {
        let metrics: Vec<Value> =
            self.metrics.keys().filter_map(|k| self.latest(k).map(|p| metric_json(k, &p))).collect();
        json!({
            "info": self.info_json(),
            "data": { "metrics": metrics, "params": pair_list(&self.params), "tags": pair_list(&self.tags) },
            "inputs": { "dataset_inputs": self.dataset_inputs, "model_inputs": self.model_inputs },
            "outputs": { "model_outputs": self.model_outputs },
        })
    }

    /// MLflow's `RunInfo`.
    pub(super) fn info_json(&self) -> Value {
        let mut info = json!({
            "run_id": self.run_id,
            "run_uuid": self.run_id,
            "run_name": self.name,
            "experiment_id": self.experiment_id,
            "user_id": self.user_id,
            "status": self.status,
            "start_time": self.start_time,
            "artifact_uri": self.artifact_uri,
            "lifecycle_stage": self.lifecycle_stage,
        });
        if let Some(end) = self.end_time {
            info["end_time"] = json!(end);
        }
        info
    }
}

/// MLflow's `Metric`.
pub(super) fn metric_json(key: &str, p: &MetricPoint) -> Value {
    json!({ "key": key, "value": float_json(p.value), "timestamp": p.timestamp, "step": p.step })
}

impl Experiment {
    /// MLflow's `Experiment`.
    pub(super) fn json(&self) -> Value {
        json!({
            "experiment_id": self.id,
            "name": self.name,
            "artifact_location": self.artifact_location,
            "lifecycle_stage": self.lifecycle_stage,
            "creation_time": self.creation_time,
            "last_update_time": self.creation_time,
            "tags": pair_list(&self.tags),
        })
    }
}

/// Everything the endpoint knows, and the events file it appends to.
#[derive(Debug)]
pub(super) struct State {
    run_dir: PathBuf,
    /// Opened with the first change: a script that logs nothing leaves no file.
    log: Option<EventLog>,
    /// The events that describe the state at the start, written before the first change.
    initial: Vec<Event>,
    pub(super) top_run_id: String,
    pub(super) experiments: Vec<Experiment>,
    pub(super) runs: BTreeMap<String, Run>,
    /// Logged models by id, as MLflow's `LoggedModel` objects.
    pub(super) models: BTreeMap<String, Value>,
}

impl State {
    /// The state at the start: the Default experiment (and the named one), and lockstep's run.
    pub(super) fn new(run_dir: &Path, top: &TopRun) -> State {
        let mut state = State {
            run_dir: run_dir.to_path_buf(),
            log: None,
            initial: Vec::new(),
            top_run_id: top.run_id.clone(),
            experiments: Vec::new(),
            runs: BTreeMap::new(),
            models: BTreeMap::new(),
        };
        state.add_experiment("Default", top.start_time);
        let experiment_id = match &top.experiment_name {
            Some(name) if name != "Default" => state.add_experiment(name, top.start_time),
            _ => "0".to_string(),
        };
        let run = Run {
            run_id: top.run_id.clone(),
            experiment_id,
            name: top.name.clone().unwrap_or_default(),
            user_id: top.user.clone(),
            status: "RUNNING".into(),
            start_time: top.start_time,
            end_time: None,
            artifact_uri: lossy(&RunDir::new(state.run_dir.clone()).artifacts()),
            lifecycle_stage: "active".into(),
            params: BTreeMap::new(),
            metrics: BTreeMap::new(),
            tags: top.name.iter().map(|n| ("mlflow.runName".to_string(), n.clone())).collect(),
            dataset_inputs: Vec::new(),
            model_inputs: Vec::new(),
            model_outputs: Vec::new(),
        };
        state.initial.push(run_event(&run, None));
        state.runs.insert(run.run_id.clone(), run);
        state
    }

    /// The top-level run's experiment.
    pub(super) fn top_experiment_id(&self) -> &str {
        &self.runs[&self.top_run_id].experiment_id
    }

    /// An absolute path inside the run directory, as the client is given it.
    pub(super) fn path(&self, relative: &str) -> String {
        self.run_dir.join(relative).to_string_lossy().into_owned()
    }

    /// The artifact directory of a run the script creates.
    pub(super) fn run_artifacts(&self, run_id: &str) -> String {
        lossy(&RunDir::new(self.run_dir.clone()).nested_run_artifacts(run_id))
    }

    /// The artifact directory of a logged model.
    pub(super) fn model_artifacts(&self, model_id: &str) -> String {
        lossy(&RunDir::new(self.run_dir.clone()).model_artifacts(model_id))
    }

    /// A new experiment; its id.
    pub(super) fn add_experiment(&mut self, name: &str, now: i64) -> String {
        let id = self.experiments.len().to_string();
        let experiment = Experiment {
            id: id.clone(),
            name: name.to_string(),
            artifact_location: self.path(OTHER_RUNS_DIR),
            lifecycle_stage: "active".into(),
            creation_time: now,
            tags: BTreeMap::new(),
        };
        self.initial.push(Event::Experiment {
            experiment_id: id.clone(),
            name: name.to_string(),
            artifact_location: experiment.artifact_location.clone(),
        });
        self.experiments.push(experiment);
        id
    }

    /// The experiment of this id.
    pub(super) fn experiment(&self, id: &str) -> Result<&Experiment, ApiError> {
        self.experiments
            .iter()
            .find(|e| e.id == id)
            .ok_or_else(|| ApiError::missing(format!("No Experiment with id={id} exists")))
    }

    /// The run of this id.
    pub(super) fn run(&self, run_id: &str) -> Result<&Run, ApiError> {
        self.runs.get(run_id).ok_or_else(|| ApiError::missing(format!("Run with id={run_id} not found")))
    }

    /// The run of this id, to change: a deleted run takes no more data, as on a server.
    pub(super) fn active_run(&mut self, run_id: &str) -> Result<&mut Run, ApiError> {
        let run =
            self.runs.get_mut(run_id).ok_or_else(|| ApiError::missing(format!("Run with id={run_id} not found")))?;
        if run.lifecycle_stage != "active" {
            return Err(ApiError::invalid(format!(
                "The run {run_id} must be in the 'active' state. Current state is {}.",
                run.lifecycle_stage
            )));
        }
        Ok(run)
    }

    /// The logged model of this id.
    pub(super) fn model(&self, model_id: &str) -> Result<&Value, ApiError> {
        self.models
            .get(model_id)
            .ok_or_else(|| ApiError::missing(format!("Logged model with ID '{model_id}' not found.")))
    }

    /// Append `events` to the file (one write), first those of the start if not written yet.
    /// A failed write is the endpoint's own fault, and the one case answered with a 5xx.
    pub(super) fn record(&mut self, events: Vec<Event>) -> Result<(), ApiError> {
        let io = |e: crate::record::RecordError| ApiError {
            status: 500,
            code: "INTERNAL_ERROR",
            message: format!("lockstep could not record the request: {e}"),
        };
        if self.log.is_none() {
            self.log = Some(EventLog::open(&self.run_dir).map_err(io)?);
        }
        let log = self.log.as_ref().expect("opened above");
        if self.initial.is_empty() {
            return log.append(&events).map_err(io);
        }
        // The events of the start go with the first change, and stay pending until written.
        let mut all = self.initial.clone();
        all.extend(events);
        log.append(&all).map_err(io)?;
        self.initial.clear();
        Ok(())
    }
}

/// The `run` event of a run.
pub(super) fn run_event(run: &Run, parent: Option<String>) -> Event {
    Event::Run {
        run_id: run.run_id.clone(),
        parent,
        experiment_id: run.experiment_id.clone(),
        name: Some(run.name.clone()).filter(|n| !n.is_empty()),
        start_time: run.start_time,
        artifact_uri: run.artifact_uri.clone(),
    }
}

fn lossy(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
