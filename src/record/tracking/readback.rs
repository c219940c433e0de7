//! What the script logged to a real tracking server, read back when the run ends so that the
//! record holds it as it would from the embedded endpoint: params, metric summaries (from the
//! full histories), tags (without MLflow's and lockstep's bookkeeping), artifacts (hashed
//! when the server serves them), logged models and nested runs.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::record::logged::{Logged, LoggedModel, MetricSummary, NestedRun};
use crate::record::mlflow::MlflowClient;
use crate::record::{OutputFile, TrackingError};
use crate::support::digest;

/// lockstep's own files on a server run (record, logs): not the script's artifacts.
const LOCKSTEP_ARTIFACTS: &str = "lockstep";

/// Read back the server's run `run_id` (in `experiment_id`), its nested runs and models.
pub(super) fn read_back(client: &MlflowClient, experiment_id: &str, run_id: &str) -> Result<Logged, TrackingError> {
    let Some(run) = client.run_json(run_id)? else { return Ok(Logged::default()) };
    let top = RunData::read(client, &run)?;
    let mut logged = Logged {
        params: top.params,
        metrics: top.metrics,
        tags: top.tags,
        artifacts: top.artifacts,
        ..Logged::default()
    };
    let filter = format!("tags.`mlflow.parentRunId` = '{run_id}'");
    for child in client.search_runs(experiment_id, &filter)? {
        let data = RunData::read(client, &child)?;
        logged.nested.push(NestedRun {
            run_id: text(&child["info"], "run_id"),
            parent: Some(run_id.to_string()),
            name: Some(text(&child["info"], "run_name")).filter(|n| !n.is_empty()),
            status: text(&child["info"], "status"),
            params: data.params,
            metrics: data.metrics,
            tags: data.tags,
            artifacts: data.artifacts,
        });
    }
    let models = client.search_logged_models(experiment_id, &format!("source_run_id = '{run_id}'"))?;
    logged.models = models
        .iter()
        .filter(|m| m["info"]["source_run_id"] == run_id)
        .map(|m| LoggedModel {
            model_id: text(&m["info"], "model_id"),
            name: text(&m["info"], "name"),
            artifact_path: text(&m["info"], "artifact_uri"),
            source_run_id: Some(run_id.to_string()),
            status: Some(text(&m["info"], "status")),
            files: Vec::new(),
        })
        .collect();
    Ok(logged)
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// One server run's data, as the record keeps it.
struct RunData {
    params: BTreeMap<String, String>,
    metrics: BTreeMap<String, MetricSummary>,
    tags: BTreeMap<String, String>,
    artifacts: Vec<OutputFile>,
}

impl RunData {
    fn read(client: &MlflowClient, run: &Value) -> Result<RunData, TrackingError> {
        let info = &run["info"];
        let run_id = text(info, "run_id");
        let pairs = |list: &Value| -> BTreeMap<String, String> {
            list.as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| Some((p["key"].as_str()?.to_string(), p["value"].as_str().unwrap_or("").to_string())))
                .collect()
        };
        let params = pairs(&run["data"]["params"]);
        let tags = pairs(&run["data"]["tags"])
            .into_iter()
            .filter(|(k, _)| !k.starts_with("mlflow.") && !k.starts_with("lockstep."))
            .collect();
        let mut metrics = BTreeMap::new();
        for m in run["data"]["metrics"].as_array().into_iter().flatten() {
            let Some(key) = m["key"].as_str() else { continue };
            if let Some(summary) = summarize(&client.metric_history(&run_id, key)?) {
                metrics.insert(key.to_string(), summary);
            }
        }
        let artifact_uri = text(info, "artifact_uri");
        let artifacts = match MlflowClient::serves_artifacts(&artifact_uri) {
            true => artifacts(client, &run_id, &artifact_uri)?,
            false => Vec::new(),
        };
        Ok(RunData { params, metrics, tags, artifacts })
    }
}

/// A metric's summary from its history, by MLflow's rule for the latest point.
fn summarize(points: &[Value]) -> Option<MetricSummary> {
    let number = |v: &Value| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(0);
    let value = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => crate::record::logged::float::parse(s),
        _ => None,
    };
    let mut summary: Option<(MetricSummary, (i64, i64))> = None;
    for p in points {
        let (Some(v), step, ts) = (value(&p["value"]), number(&p["step"]), number(&p["timestamp"])) else { continue };
        summary = Some(match summary {
            None => (MetricSummary { last: v, step, min: v, max: v, count: 1 }, (step, ts)),
            Some((mut m, at)) => {
                m.count += 1;
                m.min = m.min.min(v);
                m.max = m.max.max(v);
                let later = (step, ts) >= at;
                if later {
                    m.last = v;
                    m.step = step;
                }
                (m, if later { (step, ts) } else { at })
            }
        });
    }
    summary.map(|(m, _)| m)
}

/// Every artifact of a run but lockstep's own, downloaded once to be hashed.
fn artifacts(client: &MlflowClient, run_id: &str, artifact_uri: &str) -> Result<Vec<OutputFile>, TrackingError> {
    let mut files = Vec::new();
    let mut dirs = vec![String::new()];
    while let Some(dir) = dirs.pop() {
        for entry in client.list_artifacts(run_id, &dir)? {
            let path = text(&entry, "path");
            if path.is_empty() || path == LOCKSTEP_ARTIFACTS {
                continue;
            }
            if entry["is_dir"].as_bool().unwrap_or(false) {
                dirs.push(path);
                continue;
            }
            let bytes = client.download(artifact_uri, &path)?;
            files.push(OutputFile { size: bytes.len() as u64, sha256: digest::sha256_hex(&bytes), path, kept: false });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_summarizes_as_the_endpoint_does() {
        let points: Vec<Value> = serde_json::from_str(
            r#"[{"value": 0.9, "step": 0, "timestamp": 5}, {"value": "NaN", "step": "1", "timestamp": 6},
                {"value": 0.2, "step": 3, "timestamp": 7}, {"value": 0.5, "step": 2, "timestamp": 8}]"#,
        )
        .unwrap();
        let m = summarize(&points).unwrap();
        assert_eq!((m.last, m.step, m.min, m.max, m.count), (0.2, 3, 0.2, 0.9, 4));
        assert!(summarize(&[]).is_none());
    }
}
