//! `experiments/*`: what `set_experiment`, `get_experiment_by_name` and the start of a run
//! ask for.

use serde_json::{Value, json};

use super::state::State;
use super::wire::{Answer, ApiError, Request, pairs};
use crate::record::logged::Event;
use crate::support::clock::now_ms;

/// The longest experiment name MLflow accepts.
const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;

/// `GET experiments/get`.
pub(super) fn get(state: &mut State, req: &Request) -> Answer {
    let id = req.required("experiment_id")?;
    Ok(json!({ "experiment": state.experiment(id)?.json() }))
}

/// `GET experiments/get-by-name`.
pub(super) fn get_by_name(state: &mut State, req: &Request) -> Answer {
    let name = req.required("experiment_name")?;
    match state.experiments.iter().find(|e| e.name == name) {
        Some(e) => Ok(json!({ "experiment": e.json() })),
        None => Err(ApiError::missing(format!("Could not find experiment with name '{name}'"))),
    }
}

/// `POST experiments/create`.
pub(super) fn create(state: &mut State, req: &Request) -> Answer {
    let name = req.required("name")?;
    if name.chars().count() > MAX_EXPERIMENT_NAME_LENGTH {
        return Err(ApiError::invalid(format!(
            "Experiment name exceeds the maximum length of {MAX_EXPERIMENT_NAME_LENGTH} characters"
        )));
    }
    if state.experiments.iter().any(|e| e.name == name) {
        return Err(ApiError::exists(format!("Experiment '{name}' already exists.")));
    }
    let tags = pairs(&req.list("tags"), "tag")?;
    let id = state.add_experiment(name, now_ms() as i64);
    let experiment = state.experiments.last_mut().expect("just added");
    experiment.tags.extend(tags);
    // The experiment's event is among the pending ones of the start: written now.
    state.record(Vec::new())?;
    Ok(json!({ "experiment_id": id }))
}

/// `POST|GET experiments/search`: every experiment of the run, by view type and an optional
/// `name = '...'` filter.
pub(super) fn search(state: &mut State, req: &Request) -> Answer {
    let view = req.str("view_type").unwrap_or("ACTIVE_ONLY");
    let wanted_name = match req.str("filter") {
        None => None,
        Some(filter) => Some(name_filter(filter)?),
    };
    let experiments: Vec<Value> = state
        .experiments
        .iter()
        .filter(|e| match view {
            "DELETED_ONLY" => e.lifecycle_stage == "deleted",
            "ALL" => true,
            _ => e.lifecycle_stage == "active",
        })
        .filter(|e| wanted_name.as_deref().is_none_or(|n| e.name == n))
        .map(|e| e.json())
        .collect();
    Ok(json!({ "experiments": experiments }))
}

/// `POST experiments/set-experiment-tag`.
pub(super) fn set_tag(state: &mut State, req: &Request) -> Answer {
    let id = req.required("experiment_id")?.to_string();
    let key = req.required("key")?.to_string();
    let value = req.str("value").unwrap_or("").to_string();
    state.experiment(&id)?;
    let experiment = state.experiments.iter_mut().find(|e| e.id == id).expect("checked above");
    experiment.tags.insert(key, value);
    let (name, artifact_location) = (experiment.name.clone(), experiment.artifact_location.clone());
    state.record(vec![Event::Experiment { experiment_id: id, name, artifact_location }])?;
    Ok(json!({}))
}

/// The name in a filter `name = 'x'` (the one `get_experiment_by_name` falls back to).
fn name_filter(filter: &str) -> Result<String, ApiError> {
    let rest = filter.trim().strip_prefix("name").map(str::trim_start).and_then(|r| r.strip_prefix('='));
    let quoted = rest.map(str::trim).filter(|v| v.len() >= 2 && (v.starts_with('\'') || v.starts_with('"')));
    match quoted {
        Some(v) if v.ends_with(&v[..1]) => Ok(v[1..v.len() - 1].to_string()),
        _ => Err(ApiError::invalid(format!("Unsupported experiment filter: '{filter}' (only name = '...')"))),
    }
}
