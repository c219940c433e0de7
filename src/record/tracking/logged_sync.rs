//! What a run's script logged to the embedded endpoint, sent to a real server by `lockstep
//! sync` so that the run looks there as if it had been logged live: params, tags, the full
//! metric histories (steps and timestamps, from the events file), artifacts, and nested runs
//! with theirs, and logged models with their files. Idempotent: params and tags are set again to the same values, MLflow keeps a
//! metric point once however often it is logged, artifacts are written again, and a nested
//! run or model is found by the tag that names its local id before one is created.

use std::collections::BTreeMap;
use std::path::Path;

use super::tags::user_name;
use crate::record::logged::{
    ARTIFACTS_DIR, Event, Events, Logged, LoggedModel, MetricPoint, OTHER_RUNS_DIR, read_events,
};
use crate::record::mlflow::{MlflowClient, NewRun, RunInfo};
use crate::record::{RecordError, TrackingError, list_outputs};

/// The tag that names a nested run's local id on the server.
pub const NESTED_RUN_ID_TAG: &str = "lockstep.nested_run_id";
/// The tag that names a logged model's local id on the server.
pub const MODEL_ID_TAG: &str = "lockstep.model_id";

/// Send what the script of the run in `run_dir` logged into the server's run `top`.
pub(super) fn push_logged(
    client: &MlflowClient,
    top: &RunInfo,
    logged: &Logged,
    run_dir: &Path,
) -> Result<(), RecordError> {
    let events = read_events(run_dir)?;
    let local_top = events.top_run_id().unwrap_or_default().to_string();
    send_run(client, top, &pairs(&logged.params), &pairs(&logged.tags), &history(&events, &local_top))?;
    upload_tree(client, top, &run_dir.join(ARTIFACTS_DIR))?;
    for nested in &logged.nested {
        let parent = match &nested.parent {
            Some(p) if *p != local_top => nested_server_id(client, top, p)?,
            _ => Some(top.run_id.clone()),
        };
        let info = nested_run(client, top, &nested.run_id, nested.name.as_deref(), parent.as_deref(), &events)?;
        let mut tags = pairs(&nested.tags);
        tags.push((NESTED_RUN_ID_TAG.to_string(), nested.run_id.clone()));
        send_run(client, &info, &pairs(&nested.params), &tags, &history(&events, &nested.run_id))?;
        upload_tree(client, &info, &run_dir.join(OTHER_RUNS_DIR).join(&nested.run_id).join(ARTIFACTS_DIR))?;
        let end = events.events.iter().rev().find_map(|e| match e {
            Event::Update { run_id, end_time, .. } if *run_id == nested.run_id => *end_time,
            _ => None,
        });
        client.update_run(&info.run_id, &nested.status, end.and_then(|t| u64::try_from(t).ok()))?;
    }
    for model in &logged.models {
        let source = match model.source_run_id.as_deref() {
            Some(local) if local != local_top => nested_server_id(client, top, local)?,
            _ => None,
        };
        let source = source.unwrap_or_else(|| top.run_id.clone());
        push_model(client, top, model, &source, &[(local_top.as_str(), top.run_id.as_str())], run_dir)?;
    }
    Ok(())
}

/// A logged model on the server: found by the tag naming its local id, else created; its
/// files uploaded (an `MLmodel` file naming the server's ids, as if logged there), then the
/// model marked ready, so that `models:/<id>` loads from the server.
fn push_model(
    client: &MlflowClient,
    top: &RunInfo,
    model: &LoggedModel,
    source_run: &str,
    run_ids: &[(&str, &str)],
    run_dir: &Path,
) -> Result<(), RecordError> {
    let info = match client.model_tagged(&top.experiment_id, MODEL_ID_TAG, &model.model_id)? {
        Some(found) => found,
        None => {
            let tags = [(MODEL_ID_TAG.to_string(), model.model_id.clone())];
            client.create_model_once(&top.experiment_id, &model.name, source_run, &tags)?
        }
    };
    if MlflowClient::serves_artifacts(&info.artifact_uri) {
        let dir = run_dir.join(&model.artifact_path);
        for file in &model.files {
            let path = dir.join(&file.path);
            if file.path.rsplit('/').next() == Some("MLmodel") {
                let text = std::fs::read_to_string(&path).map_err(RecordError::io(&path))?;
                let mut text = text.replace(&model.model_id, &info.model_id);
                for (local, server) in run_ids {
                    text = text.replace(local, server);
                }
                client.upload_bytes(&info.artifact_uri, &file.path, text.as_bytes())?;
            } else {
                client.upload_file(&info.artifact_uri, &file.path, &path)?;
            }
        }
    }
    Ok(client.finalize_model(&info.model_id)?)
}

fn pairs(map: &BTreeMap<String, String>) -> Vec<(String, String)> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Every metric point of one run, in the order logged.
fn history(events: &Events, run: &str) -> Vec<(String, MetricPoint)> {
    events
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Metric { run_id, key, value, step, timestamp } if run_id == run => {
                Some((key.clone(), MetricPoint { value: *value, step: *step, timestamp: *timestamp }))
            }
            _ => None,
        })
        .collect()
}

fn send_run(
    client: &MlflowClient,
    info: &RunInfo,
    params: &[(String, String)],
    tags: &[(String, String)],
    metrics: &[(String, MetricPoint)],
) -> Result<(), TrackingError> {
    client.log_batch(&info.run_id, params, tags)?;
    client.log_metrics(&info.run_id, metrics)
}

/// Upload every file under `dir` (if it exists) as the run's artifact of the same relative path.
fn upload_tree(client: &MlflowClient, info: &RunInfo, dir: &Path) -> Result<(), RecordError> {
    if !dir.is_dir() || !MlflowClient::serves_artifacts(&info.artifact_uri) {
        return Ok(());
    }
    for file in list_outputs(dir)? {
        client.upload_file(&info.artifact_uri, &file.path, &dir.join(&file.path))?;
    }
    Ok(())
}

/// The server's id of a nested run already sent, by its local id.
fn nested_server_id(client: &MlflowClient, top: &RunInfo, local: &str) -> Result<Option<String>, TrackingError> {
    Ok(client.runs_tagged(&top.experiment_id, NESTED_RUN_ID_TAG, local)?.into_iter().next().map(|r| r.run_id))
}

/// The server's run of a nested run: the one tagged with its local id, else a new one.
fn nested_run(
    client: &MlflowClient,
    top: &RunInfo,
    local: &str,
    name: Option<&str>,
    parent: Option<&str>,
    events: &Events,
) -> Result<RunInfo, TrackingError> {
    if let Some(found) = client.runs_tagged(&top.experiment_id, NESTED_RUN_ID_TAG, local)?.into_iter().next() {
        return Ok(found);
    }
    let start_time = events
        .events
        .iter()
        .find_map(|e| match e {
            Event::Run { run_id, start_time, .. } if run_id == local => u64::try_from(*start_time).ok(),
            _ => None,
        })
        .unwrap_or_default();
    let mut tags = vec![(NESTED_RUN_ID_TAG.to_string(), local.to_string())];
    if let Some(parent) = parent {
        tags.push(("mlflow.parentRunId".to_string(), parent.to_string()));
    }
    let user = user_name();
    let new = NewRun { experiment_id: &top.experiment_id, user: &user, run_name: name, start_time, tags: &tags };
    // Tagged at creation: a lost answer leaves a run the next sync finds, not a second one.
    client.create_run_once(&new)
}
