//! What a run's script logged through the mlflow client: params, metric summaries, tags,
//! artifacts, logged models and nested runs, as `record.json` keeps them (`logged`). The
//! full metric histories stay in the run directory's events file ([`read_events`]).

mod events;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{OutputFile, RecordError, list_outputs};

pub(crate) use events::float;
pub use events::{EVENTS_FILE, Event, EventLog, Events, MetricPoint, read_events};

/// The top-level run's artifact directory, relative to the run directory.
pub const ARTIFACTS_DIR: &str = "artifacts";
/// Where the artifacts of other runs (nested, or new ones) go: `runs/<id>/artifacts`.
pub const OTHER_RUNS_DIR: &str = "runs";
/// Where logged models' files go: `models/<model_id>/artifacts`.
pub const MODELS_DIR: &str = "models";

/// What the script logged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Logged {
    /// Params by name.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Each metric's summary; the history is in the events file.
    #[serde(default)]
    pub metrics: BTreeMap<String, MetricSummary>,
    /// Tags, without MLflow's `mlflow.*` bookkeeping.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The files under the run's artifact root, paths relative to it.
    #[serde(default)]
    pub artifacts: Vec<OutputFile>,
    /// The logged models (MLflow 3).
    #[serde(default)]
    pub models: Vec<LoggedModel>,
    /// The other runs the script made: nested ones, and new ones.
    #[serde(default)]
    pub nested: Vec<NestedRun>,
}

/// One metric: its latest point (MLflow's rule: the greatest step, then the latest time),
/// its range and the number of points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// The latest value.
    #[serde(with = "float")]
    pub last: f64,
    /// Its step.
    pub step: i64,
    /// The smallest value (NaN only when all are).
    #[serde(with = "float")]
    pub min: f64,
    /// The largest value (NaN only when all are).
    #[serde(with = "float")]
    pub max: f64,
    /// The number of points.
    pub count: u64,
}

/// A model logged with MLflow 3's logged models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedModel {
    /// MLflow's id (`m-...`).
    pub model_id: String,
    /// Its name (`log_model(name=...)`).
    pub name: String,
    /// Its files' directory, relative to the run directory.
    pub artifact_path: String,
    /// The run that logged it.
    #[serde(default)]
    pub source_run_id: Option<String>,
    /// `READY`, `PENDING` or `FAILED_UPLOAD`.
    #[serde(default)]
    pub status: Option<String>,
    /// Its files, relative to `artifact_path`.
    #[serde(default)]
    pub files: Vec<OutputFile>,
}

/// Another run the script made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NestedRun {
    /// Its id.
    pub run_id: String,
    /// The run it is nested in, none for a new top-level run.
    #[serde(default)]
    pub parent: Option<String>,
    /// Its name.
    pub name: Option<String>,
    /// Its status, with MLflow's names.
    pub status: String,
    /// Params by name.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Each metric's summary.
    #[serde(default)]
    pub metrics: BTreeMap<String, MetricSummary>,
    /// Tags, without `mlflow.*`.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Its artifacts, relative to its artifact root.
    #[serde(default)]
    pub artifacts: Vec<OutputFile>,
}

/// What one run accumulates while events are folded.
#[derive(Default)]
struct RunFold {
    parent: Option<String>,
    name: Option<String>,
    status: Option<String>,
    params: BTreeMap<String, String>,
    metrics: BTreeMap<String, MetricSummary>,
    /// The (step, timestamp) of each metric's latest point.
    latest: BTreeMap<String, (i64, i64)>,
    tags: BTreeMap<String, String>,
}

impl RunFold {
    fn metric(&mut self, key: &str, value: f64, step: i64, timestamp: i64) {
        let at = (step, timestamp);
        match self.metrics.get_mut(key) {
            None => {
                self.metrics
                    .insert(key.to_string(), MetricSummary { last: value, step, min: value, max: value, count: 1 });
                self.latest.insert(key.to_string(), at);
            }
            Some(m) => {
                m.count += 1;
                // f64::min/max skip a NaN operand, so NaN stays only while every value is NaN.
                m.min = m.min.min(value);
                m.max = m.max.max(value);
                let latest = self.latest.get_mut(key).expect("a summary has a latest point");
                if at >= *latest {
                    *latest = at;
                    m.last = value;
                    m.step = step;
                }
            }
        }
    }

    fn user_tags(&self) -> BTreeMap<String, String> {
        self.tags.iter().filter(|(k, _)| !k.starts_with("mlflow.")).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl Logged {
    /// Fold events into what was logged, without the files (see [`Logged::load`]). The
    /// top-level run is the first one created.
    pub fn from_events(events: &Events) -> Logged {
        let mut runs: BTreeMap<&str, RunFold> = BTreeMap::new();
        let mut order: Vec<&str> = Vec::new();
        let mut models: BTreeMap<String, LoggedModel> = BTreeMap::new();
        for event in &events.events {
            match event {
                Event::Run { run_id, parent, name, .. } => {
                    let r = runs_entry(&mut runs, &mut order, run_id);
                    r.parent = parent.clone();
                    r.name = name.clone();
                }
                Event::Update { run_id, status, name, .. } => {
                    let r = runs_entry(&mut runs, &mut order, run_id);
                    if status.is_some() {
                        r.status = status.clone();
                    }
                    if name.is_some() {
                        r.name = name.clone();
                    }
                }
                Event::Param { run_id, key, value } => {
                    runs_entry(&mut runs, &mut order, run_id).params.insert(key.clone(), value.clone());
                }
                Event::Metric { run_id, key, value, step, timestamp } => {
                    runs_entry(&mut runs, &mut order, run_id).metric(key, *value, *step, *timestamp)
                }
                Event::Tag { run_id, key, value } => {
                    let r = runs_entry(&mut runs, &mut order, run_id);
                    if key == "mlflow.runName" {
                        r.name = Some(value.clone());
                    }
                    r.tags.insert(key.clone(), value.clone());
                }
                Event::DeleteTag { run_id, key } => {
                    runs_entry(&mut runs, &mut order, run_id).tags.remove(key);
                }
                Event::Model { model } => {
                    if let Some(m) = logged_model(model) {
                        models.insert(m.model_id.clone(), m);
                    }
                }
                Event::Input { .. } | Event::Experiment { .. } => {}
            }
        }
        let mut logged = Logged { models: models.into_values().collect(), ..Logged::default() };
        for (i, id) in order.iter().enumerate() {
            let r = &runs[id];
            if i == 0 {
                logged.params = r.params.clone();
                logged.metrics = r.metrics.clone();
                logged.tags = r.user_tags();
            } else {
                logged.nested.push(NestedRun {
                    run_id: id.to_string(),
                    parent: r.parent.clone(),
                    name: r.name.clone(),
                    status: r.status.clone().unwrap_or_else(|| "RUNNING".into()),
                    params: r.params.clone(),
                    metrics: r.metrics.clone(),
                    tags: r.user_tags(),
                    artifacts: Vec::new(),
                });
            }
        }
        logged
    }

    /// What the script of the run in `run_dir` logged, with every artifact and model file
    /// hashed; `None` when it logged nothing (no events file).
    pub fn load(run_dir: &Path) -> Result<Option<Logged>, RecordError> {
        let events = read_events(run_dir)?;
        if events.events.is_empty() {
            return Ok(None);
        }
        let mut logged = Logged::from_events(&events);
        logged.artifacts = list_outputs(&run_dir.join(ARTIFACTS_DIR))?;
        for nested in &mut logged.nested {
            nested.artifacts = list_outputs(&run_dir.join(OTHER_RUNS_DIR).join(&nested.run_id).join(ARTIFACTS_DIR))?;
        }
        for model in &mut logged.models {
            model.files = list_outputs(&run_dir.join(&model.artifact_path))?;
        }
        Ok(Some(logged))
    }
}

fn runs_entry<'e, 'r>(
    runs: &'r mut BTreeMap<&'e str, RunFold>,
    order: &mut Vec<&'e str>,
    id: &'e str,
) -> &'r mut RunFold {
    if !runs.contains_key(id) {
        order.push(id);
    }
    runs.entry(id).or_default()
}

/// The record's view of MLflow's `LoggedModel` object: its files live in the run directory,
/// at `models/<model_id>/artifacts`.
fn logged_model(model: &Value) -> Option<LoggedModel> {
    let info = model.get("info").unwrap_or(model);
    let text = |key: &str| info.get(key).and_then(Value::as_str).map(str::to_string);
    let model_id = text("model_id")?;
    Some(LoggedModel {
        artifact_path: format!("{MODELS_DIR}/{model_id}/{ARTIFACTS_DIR}"),
        name: text("name").unwrap_or_default(),
        source_run_id: text("source_run_id"),
        status: text("status"),
        model_id,
        files: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(run: &str, key: &str, value: f64, step: i64, timestamp: i64) -> Event {
        Event::Metric { run_id: run.into(), key: key.into(), value, step, timestamp }
    }

    fn run(id: &str, parent: Option<&str>) -> Event {
        Event::Run {
            run_id: id.into(),
            parent: parent.map(str::to_string),
            experiment_id: "0".into(),
            name: Some(format!("name-{id}")),
            start_time: 1,
            artifact_uri: format!("/runs/{id}/artifacts"),
        }
    }

    fn tag(run: &str, key: &str, value: &str) -> Event {
        Event::Tag { run_id: run.into(), key: key.into(), value: value.into() }
    }

    #[test]
    fn metrics_summarize_by_step_then_time_and_ignore_nan_in_the_range() {
        let events = Events {
            events: vec![
                run("top", None),
                metric("top", "loss", 0.9, 0, 10),
                metric("top", "loss", f64::NAN, 1, 11),
                metric("top", "loss", 0.2, 3, 12),
                // Logged later but at an earlier step: not the latest point.
                metric("top", "loss", 0.5, 2, 13),
                metric("top", "loss", 0.3, 3, 14),
                metric("top", "all_nan", f64::NAN, 0, 1),
            ],
            dropped: 0,
        };
        let logged = Logged::from_events(&events);
        let loss = logged.metrics["loss"];
        assert_eq!((loss.last, loss.step, loss.min, loss.max, loss.count), (0.3, 3, 0.2, 0.9, 5));
        assert!(logged.metrics["all_nan"].min.is_nan());
        let json = serde_json::to_string(&logged.metrics["all_nan"]).unwrap();
        assert_eq!(json, r#"{"last":"NaN","step":0,"min":"NaN","max":"NaN","count":1}"#);
        let back: MetricSummary = serde_json::from_str(&json).unwrap();
        assert!(back.last.is_nan() && back.count == 1);
    }

    #[test]
    fn params_tags_nested_runs_and_models_are_folded() {
        let events = Events {
            events: vec![
                run("top", None),
                Event::Param { run_id: "top".into(), key: "alpha".into(), value: "0.5".into() },
                tag("top", "mlflow.user", "bob"),
                tag("top", "team", "x"),
                tag("top", "gone", "y"),
                Event::DeleteTag { run_id: "top".into(), key: "gone".into() },
                run("child", Some("top")),
                tag("child", "mlflow.runName", "renamed"),
                Event::Param { run_id: "child".into(), key: "depth".into(), value: "3".into() },
                metric("child", "acc", 0.7, 0, 5),
                Event::Update {
                    run_id: "child".into(),
                    status: Some("FINISHED".into()),
                    end_time: Some(9),
                    name: None,
                },
                Event::Model {
                    model: serde_json::json!({"info": {"model_id": "m-1", "name": "model", "status": "PENDING"}}),
                },
                Event::Model {
                    model: serde_json::json!({"info": {"model_id": "m-1", "name": "model", "status": "READY", "source_run_id": "top"}}),
                },
            ],
            dropped: 0,
        };
        let logged = Logged::from_events(&events);
        assert_eq!(logged.params, [("alpha".to_string(), "0.5".to_string())].into());
        assert_eq!(logged.tags, [("team".to_string(), "x".to_string())].into(), "no mlflow.*, no deleted tag");
        let child = &logged.nested[0];
        assert_eq!(logged.nested.len(), 1);
        assert_eq!((child.run_id.as_str(), child.parent.as_deref()), ("child", Some("top")));
        assert_eq!((child.name.as_deref(), child.status.as_str()), (Some("renamed"), "FINISHED"));
        assert_eq!(child.metrics["acc"].count, 1);
        assert!(child.tags.is_empty());
        assert_eq!(logged.models.len(), 1, "a model's updates replace it");
        let model = &logged.models[0];
        assert_eq!((model.status.as_deref(), model.source_run_id.as_deref()), (Some("READY"), Some("top")));
        assert_eq!(model.artifact_path, "models/m-1/artifacts");
    }

    #[test]
    fn load_hashes_the_files_of_artifacts_models_and_nested_runs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(Logged::load(root).unwrap(), None, "no events: nothing logged");
        let log = EventLog::open(root).unwrap();
        log.append(&[run("top", None), run("child", Some("top"))]).unwrap();
        log.append(&[Event::Model { model: serde_json::json!({"info": {"model_id": "m-2", "name": "m"}}) }]).unwrap();
        for (path, content) in [
            ("artifacts/a/report.txt", "hi"),
            ("runs/child/artifacts/c.json", "{}"),
            ("models/m-2/artifacts/MLmodel", "x"),
        ] {
            std::fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
            std::fs::write(root.join(path), content).unwrap();
        }
        let logged = Logged::load(root).unwrap().unwrap();
        assert_eq!(
            logged.artifacts.iter().map(|f| (f.path.as_str(), f.size)).collect::<Vec<_>>(),
            [("a/report.txt", 2)]
        );
        assert_eq!(logged.nested[0].artifacts[0].path, "c.json");
        assert_eq!(logged.models[0].files[0].sha256, crate::support::digest::sha256_hex(b"x"));
        let json = serde_json::to_value(&logged).unwrap();
        assert_eq!(serde_json::from_value::<Logged>(json).unwrap(), logged);
    }
}
