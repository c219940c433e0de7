//! MLflow 3's logged models (`logged-models`): created before `log_model` writes the files
//! (into the run directory), finalized after; `models:/<id>` and `runs:/` URIs find them
//! through `get` and `search`.

use serde_json::{Value, json};

use super::search::Filter;
use super::state::State;
use super::wire::{Answer, ApiError, Request, pair_list, pairs};
use crate::record::logged::Event;
use crate::support::clock::now_ms;
use crate::support::ids::random_hex;

const STATUSES: [&str; 4] =
    ["LOGGED_MODEL_STATUS_UNSPECIFIED", "LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"];

/// Record the model's new state, then keep it.
fn save(state: &mut State, model: Value) -> Answer {
    let id = model["info"]["model_id"].as_str().expect("models have ids").to_string();
    state.record(vec![Event::Model { model: model.clone() }])?;
    state.models.insert(id, model.clone());
    Ok(json!({ "model": model }))
}

/// `POST logged-models`.
pub(super) fn create(state: &mut State, req: &Request) -> Answer {
    let experiment_id = req.required("experiment_id")?.to_string();
    state.experiment(&experiment_id)?;
    let source_run_id = req.str("source_run_id").map(str::to_string);
    if let Some(run) = &source_run_id {
        state.run(run)?;
    }
    let model_id = format!("m-{}", random_hex(16));
    let name = req.str("name").map(str::to_string).unwrap_or_else(|| format!("model-{}", &model_id[2..10]));
    let params: Vec<(String, String)> = pairs(&req.list("params"), "param")?;
    let tags: Vec<(String, String)> = pairs(&req.list("tags"), "tag")?;
    let now = now_ms() as i64;
    let mut info = json!({
        "model_id": model_id,
        "experiment_id": experiment_id,
        "name": name,
        "creation_timestamp_ms": now,
        "last_updated_timestamp_ms": now,
        "artifact_uri": state.model_artifacts(&model_id),
        "status": "LOGGED_MODEL_PENDING",
        "tags": pair_list(tags.iter().map(|(k, v)| (k, v))),
        "registrations": [],
    });
    if let Some(t) = req.str("model_type") {
        info["model_type"] = json!(t);
    }
    if let Some(run) = source_run_id {
        info["source_run_id"] = json!(run);
    }
    let model =
        json!({ "info": info, "data": { "params": pair_list(params.iter().map(|(k, v)| (k, v))), "metrics": [] } });
    save(state, model)
}

/// `GET logged-models/{id}`.
pub(super) fn get(state: &mut State, model_id: &str) -> Answer {
    Ok(json!({ "model": state.model(model_id)? }))
}

/// `PATCH logged-models/{id}`: the status once the files are written.
pub(super) fn finalize(state: &mut State, model_id: &str, req: &Request) -> Answer {
    let status = req.required("status")?;
    if !STATUSES.contains(&status) {
        return Err(ApiError::invalid(format!("Invalid logged model status '{status}'")));
    }
    let mut model = state.model(model_id)?.clone();
    model["info"]["status"] = json!(status);
    model["info"]["last_updated_timestamp_ms"] = json!(now_ms() as i64);
    save(state, model)
}

/// `DELETE logged-models/{id}`.
pub(super) fn delete(state: &mut State, model_id: &str) -> Answer {
    state.model(model_id)?;
    state.models.remove(model_id);
    Ok(json!({}))
}

/// `PATCH logged-models/{id}/tags`.
pub(super) fn set_tags(state: &mut State, model_id: &str, req: &Request) -> Answer {
    let tags = pairs(&req.list("tags"), "tag")?;
    let mut model = state.model(model_id)?.clone();
    merge(&mut model["info"]["tags"], tags);
    save(state, model).map(|_| json!({}))
}

/// `DELETE logged-models/{id}/tags/{key}`.
pub(super) fn delete_tag(state: &mut State, model_id: &str, key: &str) -> Answer {
    let mut model = state.model(model_id)?.clone();
    if let Some(list) = model["info"]["tags"].as_array_mut() {
        list.retain(|t| t["key"] != key);
    }
    save(state, model).map(|_| json!({}))
}

/// `POST logged-models/{id}/params`.
pub(super) fn log_params(state: &mut State, model_id: &str, req: &Request) -> Answer {
    let params = pairs(&req.list("params"), "param")?;
    let mut model = state.model(model_id)?.clone();
    merge(&mut model["data"]["params"], params);
    save(state, model).map(|_| json!({}))
}

/// `POST logged-models/search`: by experiment and filter, newest first.
pub(super) fn search(state: &mut State, req: &Request) -> Answer {
    let experiments: Vec<String> =
        req.list("experiment_ids").iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
    let filter = Filter::parse(req.str("filter").unwrap_or(""))?;
    let max = req.int("max_results")?.filter(|n| *n > 0).map_or(100, |n| n as usize);
    let offset: usize = match req.str("page_token") {
        None => 0,
        Some(t) => t.parse().map_err(|_| ApiError::invalid(format!("Invalid page token '{t}'")))?,
    };
    let mut models: Vec<&Value> = state
        .models
        .values()
        .filter(|m| {
            experiments.is_empty()
                || m["info"]["experiment_id"].as_str().is_some_and(|e| experiments.iter().any(|x| x == e))
        })
        .filter(|m| filter.matches_model(m))
        .collect();
    models.sort_by_key(|m| std::cmp::Reverse(m["info"]["creation_timestamp_ms"].as_i64().unwrap_or(0)));
    let page: Vec<Value> = models.iter().skip(offset).take(max).map(|m| (*m).clone()).collect();
    let mut answer = json!({ "models": page });
    if offset + max < models.len() {
        answer["next_page_token"] = json!((offset + max).to_string());
    }
    Ok(answer)
}

/// Set `items` in a list of `{key, value}`: a key already there takes the new value.
fn merge(list: &mut Value, items: Vec<(String, String)>) {
    if !list.is_array() {
        *list = json!([]);
    }
    let list = list.as_array_mut().expect("made an array");
    for (k, v) in items {
        match list.iter_mut().find(|t| t["key"] == k.as_str()) {
            Some(t) => t["value"] = json!(v),
            None => list.push(json!({ "key": k, "value": v })),
        }
    }
}
