//! What the script logs to a run: params, metrics, tags (one at a time or in batches, with
//! the API's limits and its rule that a param never changes), inputs, outputs, and the
//! metric histories it reads back.

use serde_json::{Value, json};

use super::state::{State, metric_json};
use super::wire::{Answer, ApiError, Request, float_of, int_of, pairs};
use crate::record::logged::{Event, MetricPoint};
use crate::record::mlflow::{MAX_PARAM_VALUE_LENGTH, MAX_PARAMS_TAGS_PER_BATCH, MAX_TAG_VALUE_LENGTH};
use crate::support::clock::now_ms;

/// Most metrics one `runs/log-batch` may carry.
const MAX_METRICS_PER_BATCH: usize = 1000;
/// Most metrics, params and tags together in one `runs/log-batch`.
const MAX_ENTITIES_PER_BATCH: usize = 1000;
/// The longest name of a param, metric or tag.
const MAX_KEY_LENGTH: usize = 250;

/// One metric point as sent.
struct MetricIn {
    key: String,
    point: MetricPoint,
    model_id: Option<String>,
}

fn metric_in(v: &Value) -> Result<MetricIn, ApiError> {
    let key = v.get("key").and_then(Value::as_str).filter(|k| !k.is_empty());
    let key = key.ok_or_else(|| ApiError::invalid(format!("a metric has no key: {v}")))?;
    check_key("Metric", key)?;
    let value = v.get("value").and_then(float_of);
    let value = value.ok_or_else(|| ApiError::invalid(format!("Got invalid value for metric '{key}': {v}")))?;
    let number = |field: &str| match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => int_of(x).map(Some).ok_or_else(|| ApiError::invalid(format!("metric '{key}': bad {field}: {x}"))),
    };
    let timestamp = number("timestamp")?.unwrap_or_else(|| now_ms() as i64);
    let step = number("step")?.unwrap_or(0);
    let model_id = v.get("model_id").and_then(Value::as_str).filter(|m| !m.is_empty()).map(str::to_string);
    Ok(MetricIn { key: key.to_string(), point: MetricPoint { value, step, timestamp }, model_id })
}

fn check_key(what: &str, key: &str) -> Result<(), ApiError> {
    if key.chars().count() > MAX_KEY_LENGTH {
        return Err(ApiError::invalid(format!("{what} name '{key}' is longer than {MAX_KEY_LENGTH} characters")));
    }
    Ok(())
}

fn check_param(run_id: &str, state: &State, key: &str, value: &str) -> Result<(), ApiError> {
    check_key("Param", key)?;
    if value.chars().count() > MAX_PARAM_VALUE_LENGTH {
        return Err(ApiError::invalid(format!(
            "Param value for '{key}' is longer than {MAX_PARAM_VALUE_LENGTH} characters"
        )));
    }
    match state.run(run_id)?.params.get(key) {
        Some(old) if old != value => Err(ApiError::invalid(format!(
            "Changing param values is not allowed. Param with key='{key}' was already logged with value='{old}' for run ID='{run_id}'. Attempted logging new value '{value}'."
        ))),
        _ => Ok(()),
    }
}

fn check_tag(key: &str, value: &str) -> Result<(), ApiError> {
    check_key("Tag", key)?;
    if value.chars().count() > MAX_TAG_VALUE_LENGTH {
        return Err(ApiError::invalid(format!(
            "Tag value for '{key}' is longer than {MAX_TAG_VALUE_LENGTH} characters"
        )));
    }
    Ok(())
}

/// Check everything, record the events, then change the state: a refused request changes
/// nothing, and an answered one is on disk.
fn apply(
    state: &mut State,
    run_id: &str,
    metrics: Vec<MetricIn>,
    params: Vec<(String, String)>,
    tags: Vec<(String, String)>,
) -> Answer {
    state.active_run(run_id)?;
    for (i, (k, v)) in params.iter().enumerate() {
        check_param(run_id, state, k, v)?;
        if params[..i].iter().any(|(k2, v2)| k2 == k && v2 != v) {
            return Err(ApiError::invalid(format!(
                "Duplicate parameter keys with different values in the batch: '{k}'"
            )));
        }
    }
    for (k, v) in &tags {
        check_tag(k, v)?;
    }
    let id = run_id.to_string();
    let mut events = Vec::with_capacity(metrics.len() + params.len() + tags.len());
    events.extend(params.iter().map(|(k, v)| Event::Param { run_id: id.clone(), key: k.clone(), value: v.clone() }));
    events.extend(metrics.iter().map(|m| Event::Metric {
        run_id: id.clone(),
        key: m.key.clone(),
        value: m.point.value,
        step: m.point.step,
        timestamp: m.point.timestamp,
    }));
    events.extend(tags.iter().map(|(k, v)| Event::Tag { run_id: id.clone(), key: k.clone(), value: v.clone() }));
    state.record(events)?;
    let mut model_metrics = Vec::new();
    let run = state.active_run(run_id)?;
    for m in metrics {
        if let Some(model_id) = &m.model_id {
            model_metrics.push((model_id.clone(), m.key.clone(), m.point));
        }
        run.metrics.entry(m.key).or_default().push(m.point);
    }
    run.params.extend(params);
    for (k, v) in tags {
        if k == "mlflow.runName" {
            run.name = v.clone();
        }
        run.tags.insert(k, v);
    }
    for (model_id, key, point) in model_metrics {
        if let Some(model) = state.models.get_mut(&model_id)
            && let Some(list) = model["data"]["metrics"].as_array_mut()
        {
            let mut m = metric_json(&key, &point);
            m["model_id"] = json!(model_id);
            m["run_id"] = json!(run_id);
            list.push(m);
        }
    }
    Ok(json!({}))
}

/// `POST runs/log-parameter`.
pub(super) fn log_param(state: &mut State, req: &Request) -> Answer {
    let run_id = req.run_id()?.to_string();
    let key = req.required("key")?.to_string();
    let value = req.str("value").unwrap_or("").to_string();
    apply(state, &run_id, Vec::new(), vec![(key, value)], Vec::new())
}

/// `POST runs/log-metric`.
pub(super) fn log_metric(state: &mut State, req: &Request) -> Answer {
    let run_id = req.run_id()?.to_string();
    let body = json!({
        "key": req.required("key")?,
        "value": req.value("value").cloned().unwrap_or(Value::Null),
        "timestamp": req.int("timestamp")?,
        "step": req.int("step")?,
        "model_id": req.str("model_id"),
    });
    apply(state, &run_id, vec![metric_in(&body)?], Vec::new(), Vec::new())
}

/// `POST runs/set-tag`.
pub(super) fn set_tag(state: &mut State, req: &Request) -> Answer {
    let run_id = req.run_id()?.to_string();
    let key = req.required("key")?.to_string();
    let value = req.str("value").unwrap_or("").to_string();
    apply(state, &run_id, Vec::new(), Vec::new(), vec![(key, value)])
}

/// `POST runs/delete-tag`.
pub(super) fn delete_tag(state: &mut State, req: &Request) -> Answer {
    let run_id = req.run_id()?.to_string();
    let key = req.required("key")?.to_string();
    if !state.active_run(&run_id)?.tags.contains_key(&key) {
        return Err(ApiError::missing(format!("No tag with name: {key} in run with id {run_id}")));
    }
    state.record(vec![Event::DeleteTag { run_id: run_id.clone(), key: key.clone() }])?;
    state.active_run(&run_id)?.tags.remove(&key);
    Ok(json!({}))
}

/// `POST runs/log-batch`, within MLflow's limits.
pub(super) fn log_batch(state: &mut State, req: &Request) -> Answer {
    let run_id = req.run_id()?.to_string();
    let (metrics, params, tags) = (req.list("metrics"), req.list("params"), req.list("tags"));
    let limit = |what: &str, n: usize, max: usize| match n > max {
        true => Err(ApiError::invalid(format!(
            "A batch logging request can contain at most {max} {what}. Got {n} {what}. Please split up {what} across multiple requests and try again."
        ))),
        false => Ok(()),
    };
    limit("metrics", metrics.len(), MAX_METRICS_PER_BATCH)?;
    limit("params", params.len(), MAX_PARAMS_TAGS_PER_BATCH)?;
    limit("tags", tags.len(), MAX_PARAMS_TAGS_PER_BATCH)?;
    limit("metrics, params, and tags", metrics.len() + params.len() + tags.len(), MAX_ENTITIES_PER_BATCH)?;
    let metrics = metrics.iter().map(metric_in).collect::<Result<Vec<_>, _>>()?;
    apply(state, &run_id, metrics, pairs(&params, "param")?, pairs(&tags, "tag")?)
}

/// `GET metrics/get-history`: every point of one metric, in the order logged.
pub(super) fn get_history(state: &mut State, req: &Request) -> Answer {
    let run = state.run(req.run_id()?)?;
    let key = req.required("metric_key")?;
    let points: Vec<Value> = run.metrics.get(key).into_iter().flatten().map(|p| metric_json(key, p)).collect();
    Ok(json!({ "metrics": points }))
}

/// `POST runs/log-inputs`: datasets (and models) a run used.
pub(super) fn log_inputs(state: &mut State, req: &Request) -> Answer {
    let run_id = req.run_id()?.to_string();
    let (datasets, models) = (req.list("datasets"), req.list("models"));
    state.active_run(&run_id)?;
    let events = datasets
        .iter()
        .map(|d| Event::Input {
            run_id: run_id.clone(),
            dataset: d.get("dataset").cloned().unwrap_or(Value::Null),
            tags: d.get("tags").and_then(Value::as_array).cloned().unwrap_or_default(),
        })
        .collect();
    state.record(events)?;
    let run = state.active_run(&run_id)?;
    for d in datasets {
        let same = |x: &Value| x.get("dataset") == d.get("dataset") && x.get("tags") == d.get("tags");
        if !run.dataset_inputs.iter().any(same) {
            run.dataset_inputs.push(d);
        }
    }
    for m in models {
        if !run.model_inputs.contains(&m) {
            run.model_inputs.push(m);
        }
    }
    Ok(json!({}))
}

/// `POST runs/outputs`: the logged models a run produced.
pub(super) fn log_outputs(state: &mut State, req: &Request) -> Answer {
    let run_id = req.run_id()?.to_string();
    let models = req.list("models");
    let run = state.active_run(&run_id)?;
    for m in models {
        if !run.model_outputs.contains(&m) {
            run.model_outputs.push(m);
        }
    }
    Ok(json!({}))
}

/// `POST runs/log-model`: MLflow 2's model history tag, kept as a server keeps it.
pub(super) fn log_model(state: &mut State, req: &Request) -> Answer {
    let run_id = req.run_id()?.to_string();
    let model: Value = serde_json::from_str(req.required("model_json")?)
        .map_err(|e| ApiError::invalid(format!("model_json is not valid JSON: {e}")))?;
    let key = "mlflow.log-model.history";
    let mut history: Vec<Value> = match state.active_run(&run_id)?.tags.get(key) {
        Some(v) => serde_json::from_str(v).unwrap_or_default(),
        None => Vec::new(),
    };
    history.push(model);
    let value = serde_json::to_string(&history).expect("JSON values serialize");
    // The history outgrows a tag's limit on a server too: the oldest entries go.
    let value = if value.chars().count() > MAX_TAG_VALUE_LENGTH {
        serde_json::to_string(&history[history.len() - 1..]).expect("JSON values serialize")
    } else {
        value
    };
    apply(state, &run_id, Vec::new(), Vec::new(), vec![(key.to_string(), value)])
}
