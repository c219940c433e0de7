//! `runs/create`, `runs/get`, `runs/update`, `runs/delete`, `runs/restore` and `runs/search`:
//! the run lockstep made (which `mlflow.start_run()` resumes through `MLFLOW_RUN_ID`), and
//! the nested and new runs the script creates.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::search::{Filter, Order};
use super::state::{Run, State, run_event};
use super::wire::{Answer, ApiError, Request, pairs};
use crate::record::logged::Event;
use crate::support::clock::now_ms;
use crate::support::ids::random_hex;

/// The statuses of MLflow's `RunStatus`.
const STATUSES: [&str; 5] = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];

/// How many runs one search returns at most, as on a server.
const MAX_SEARCH_RESULTS: usize = 50_000;

/// `POST runs/create`.
pub(super) fn create(state: &mut State, req: &Request) -> Answer {
    let experiment_id = req.str("experiment_id").unwrap_or_else(|| state.top_experiment_id()).to_string();
    let experiment = state.experiment(&experiment_id)?;
    if experiment.lifecycle_stage != "active" {
        return Err(ApiError::invalid(format!("The experiment {experiment_id} must be in the 'active' state.")));
    }
    let tags: BTreeMap<String, String> = pairs(&req.list("tags"), "tag")?.into_iter().collect();
    let run_id = random_hex(16);
    let name = req
        .str("run_name")
        .or(tags.get("mlflow.runName").map(String::as_str))
        .map(str::to_string)
        .unwrap_or_else(|| format!("run-{}", &run_id[..8]));
    let parent = tags.get("mlflow.parentRunId").cloned();
    let mut run = Run {
        artifact_uri: state.run_artifacts(&run_id),
        run_id: run_id.clone(),
        experiment_id,
        name: name.clone(),
        user_id: req.str("user_id").unwrap_or("").to_string(),
        status: "RUNNING".into(),
        start_time: req.int("start_time")?.unwrap_or_else(|| now_ms() as i64),
        end_time: None,
        lifecycle_stage: "active".into(),
        params: BTreeMap::new(),
        metrics: BTreeMap::new(),
        tags,
        dataset_inputs: Vec::new(),
        model_inputs: Vec::new(),
        model_outputs: Vec::new(),
    };
    run.tags.insert("mlflow.runName".into(), name);
    let mut events = vec![run_event(&run, parent)];
    events.extend(run.tags.iter().map(|(k, v)| Event::Tag {
        run_id: run_id.clone(),
        key: k.clone(),
        value: v.clone(),
    }));
    state.record(events)?;
    let answer = json!({ "run": run.json() });
    state.runs.insert(run_id, run);
    Ok(answer)
}

/// `GET runs/get`.
pub(super) fn get(state: &mut State, req: &Request) -> Answer {
    Ok(json!({ "run": state.run(req.run_id()?)?.json() }))
}

/// `POST runs/update`: status, end time, name.
pub(super) fn update(state: &mut State, req: &Request) -> Answer {
    let run_id = req.run_id()?.to_string();
    let status = req.str("status").map(str::to_string);
    if let Some(s) = &status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::invalid(format!("Invalid run status '{s}'")));
    }
    let end_time = req.int("end_time")?;
    let name = req.str("run_name").map(str::to_string);
    state.active_run(&run_id)?;
    let mut events =
        vec![Event::Update { run_id: run_id.clone(), status: status.clone(), end_time, name: name.clone() }];
    if let Some(n) = &name {
        events.push(Event::Tag { run_id: run_id.clone(), key: "mlflow.runName".into(), value: n.clone() });
    }
    state.record(events)?;
    let run = state.active_run(&run_id)?;
    if let Some(s) = status {
        run.status = s;
    }
    if end_time.is_some() {
        run.end_time = end_time;
    }
    if let Some(n) = name {
        run.tags.insert("mlflow.runName".into(), n.clone());
        run.name = n;
    }
    Ok(json!({ "run_info": run.info_json() }))
}

/// `POST runs/delete` and `runs/restore`.
pub(super) fn set_lifecycle(state: &mut State, req: &Request, stage: &str) -> Answer {
    let run_id = req.run_id()?.to_string();
    state.run(&run_id)?;
    // A deleted run stays in the events as it was: the record keeps what was logged.
    state.runs.get_mut(&run_id).expect("checked above").lifecycle_stage = stage.to_string();
    Ok(json!({}))
}

/// `POST runs/search`: filter, order, pages.
pub(super) fn search(state: &mut State, req: &Request) -> Answer {
    let experiments: Vec<String> =
        req.list("experiment_ids").iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
    let filter = Filter::parse(req.str("filter").unwrap_or(""))?;
    let orders =
        req.list("order_by").iter().filter_map(Value::as_str).map(Order::parse).collect::<Result<Vec<_>, _>>()?;
    let view = req.str("run_view_type").unwrap_or("ACTIVE_ONLY");
    let max = match req.int("max_results")? {
        None => 1000,
        Some(n) if n > 0 && n as usize <= MAX_SEARCH_RESULTS => n as usize,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "Invalid value {n} for parameter 'max_results' supplied. It must be at most {MAX_SEARCH_RESULTS}"
            )));
        }
    };
    let offset: usize = match req.str("page_token") {
        None => 0,
        Some(t) => t.parse().map_err(|_| ApiError::invalid(format!("Invalid page token '{t}'")))?,
    };
    let mut runs: Vec<&Run> = state
        .runs
        .values()
        .filter(|r| experiments.is_empty() || experiments.contains(&r.experiment_id))
        .filter(|r| match view {
            "DELETED_ONLY" => r.lifecycle_stage == "deleted",
            "ALL" => true,
            _ => r.lifecycle_stage == "active",
        })
        .filter(|r| filter.matches_run(r))
        .collect();
    // Newest first, then by id, as a server orders them when asked nothing else.
    runs.sort_by(|a, b| b.start_time.cmp(&a.start_time).then_with(|| a.run_id.cmp(&b.run_id)));
    for order in orders.iter().rev() {
        runs.sort_by(|a, b| order.compare_runs(a, b));
    }
    let page: Vec<Value> = runs.iter().skip(offset).take(max).map(|r| r.json()).collect();
    let mut answer = json!({ "runs": page });
    if offset + max < runs.len() {
        answer["next_page_token"] = json!((offset + max).to_string());
    }
    Ok(answer)
}
