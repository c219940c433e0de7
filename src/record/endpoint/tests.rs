use serde_json::json;

use super::*;
use crate::record::logged::{Logged, read_events};

const TOP: &str = "0123456789abcdef0123456789abcdef";

fn state(dir: &Path) -> State {
    let top = TopRun {
        run_id: TOP.into(),
        name: Some("first".into()),
        experiment_name: None,
        start_time: 1000,
        user: "u".into(),
    };
    State::new(dir, &top)
}

fn call(state: &mut State, method: &str, endpoint: &str, body: Value) -> (u16, Value) {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let path = format!("/api/2.0/mlflow/{endpoint}");
    if method == Method::GET {
        let query: Vec<String> = body
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::support::text::percent_encode(v.as_str().unwrap())))
            .collect();
        route(state, &method, &path, &query.join("&"), b"")
    } else {
        route(state, &method, &path, "", body.to_string().as_bytes())
    }
}

fn ok(state: &mut State, method: &str, endpoint: &str, body: Value) -> Value {
    let (status, answer) = call(state, method, endpoint, body);
    assert_eq!(status, 200, "{endpoint}: {answer}");
    answer
}

#[test]
fn the_run_resumes_and_logs_params_metrics_and_tags_into_the_events_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = state(dir.path());
    let run = ok(&mut s, "GET", "runs/get", json!({"run_id": TOP}));
    assert_eq!(run["run"]["info"]["status"], "RUNNING");
    assert_eq!(run["run"]["info"]["artifact_uri"], dir.path().join("artifacts").to_string_lossy().as_ref());
    assert!(!dir.path().join("tracking").exists(), "nothing logged, no file");
    ok(&mut s, "POST", "runs/update", json!({"run_id": TOP, "status": "RUNNING"}));
    ok(&mut s, "POST", "runs/log-parameter", json!({"run_id": TOP, "key": "alpha", "value": "0.5"}));
    ok(&mut s, "POST", "runs/log-parameter", json!({"run_id": TOP, "key": "alpha", "value": "0.5"}));
    let (status, err) =
        call(&mut s, "POST", "runs/log-parameter", json!({"run_id": TOP, "key": "alpha", "value": "0.7"}));
    assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_PARAMETER_VALUE")));
    assert!(err["message"].as_str().unwrap().starts_with("Changing param values is not allowed"), "{err}");
    for (step, value) in [(0, json!(0.9)), (1, json!("NaN")), (2, json!(0.4))] {
        let body = json!({"run_id": TOP, "key": "loss", "value": value, "step": step, "timestamp": 5000 + step});
        ok(&mut s, "POST", "runs/log-metric", body);
    }
    ok(&mut s, "POST", "runs/set-tag", json!({"run_id": TOP, "key": "team", "value": "x"}));
    ok(&mut s, "POST", "runs/update", json!({"run_id": TOP, "status": "FINISHED", "end_time": 9000}));
    let history = ok(&mut s, "GET", "metrics/get-history", json!({"run_id": TOP, "metric_key": "loss"}));
    assert_eq!(history["metrics"].as_array().unwrap().len(), 3);
    assert_eq!(history["metrics"][1]["value"], "NaN");
    let run = ok(&mut s, "GET", "runs/get", json!({"run_id": TOP}));
    assert_eq!(run["run"]["data"]["metrics"], json!([{"key": "loss", "value": 0.4, "timestamp": 5002, "step": 2}]));
    assert_eq!(run["run"]["info"]["status"], "FINISHED");

    let logged = Logged::from_events(&read_events(dir.path()).unwrap());
    assert_eq!(logged.params["alpha"], "0.5");
    let loss = logged.metrics["loss"];
    assert_eq!((loss.last, loss.min, loss.max, loss.count), (0.4, 0.4, 0.9, 3));
    assert_eq!(logged.tags, [("team".to_string(), "x".to_string())].into(), "mlflow.runName left out");
}

#[test]
fn batches_keep_mlflows_limits_and_a_refused_batch_logs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = state(dir.path());
    let metric = |i: usize| json!({"key": "m", "value": i, "timestamp": 1, "step": i});
    let metrics: Vec<Value> = (0..1000).map(metric).collect();
    ok(&mut s, "POST", "runs/log-batch", json!({"run_id": TOP, "metrics": metrics}));
    for (body, words) in [
        (json!({"run_id": TOP, "metrics": (0..1001).map(metric).collect::<Vec<_>>()}), "at most 1000 metrics"),
        (
            json!({"run_id": TOP, "params": (0..101).map(|i| json!({"key": format!("p{i}"), "value": "v"})).collect::<Vec<_>>()}),
            "at most 100 params",
        ),
        (
            json!({"run_id": TOP, "tags": (0..101).map(|i| json!({"key": format!("t{i}"), "value": "v"})).collect::<Vec<_>>()}),
            "at most 100 tags",
        ),
        (
            json!({"run_id": TOP, "metrics": (0..950).map(metric).collect::<Vec<_>>(),
                   "params": (0..60).map(|i| json!({"key": format!("p{i}"), "value": "v"})).collect::<Vec<_>>()}),
            "at most 1000 metrics, params, and tags",
        ),
        (
            json!({"run_id": TOP, "metrics": [metric(1)], "params": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}),
            "Duplicate parameter keys",
        ),
        (json!({"run_id": TOP, "metrics": [{"key": "m", "value": "high"}]}), "invalid value for metric"),
    ] {
        let (status, err) = call(&mut s, "POST", "runs/log-batch", body);
        assert_eq!(status, 400, "{err}");
        assert!(err["message"].as_str().unwrap().contains(words), "{err}");
    }
    let history = ok(&mut s, "GET", "metrics/get-history", json!({"run_id": TOP, "metric_key": "m"}));
    assert_eq!(history["metrics"].as_array().unwrap().len(), 1000, "refused batches left nothing");
    assert_eq!(read_events(dir.path()).unwrap().metric_history(TOP, "m").len(), 1000);
}

#[test]
fn unknown_endpoints_runs_and_experiments_are_4xx_with_mlflows_body() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = state(dir.path());
    let (status, body) = route(&mut s, &Method::GET, "/api/2.0/mlflow/nothing/here", "", b"");
    assert_eq!((status, body["error_code"].as_str()), (404, Some("ENDPOINT_NOT_FOUND")));
    assert!(body["message"].is_string());
    let (status, _) = route(&mut s, &Method::GET, "/health", "", b"");
    assert_eq!(status, 404);
    let (status, body) = call(&mut s, "GET", "runs/get", json!({"run_id": "f".repeat(32)}));
    assert_eq!((status, body["error_code"].as_str()), (404, Some("RESOURCE_DOES_NOT_EXIST")));
    let (status, body) = call(&mut s, "GET", "experiments/get-by-name", json!({"experiment_name": "nope"}));
    assert_eq!((status, body["error_code"].as_str()), (404, Some("RESOURCE_DOES_NOT_EXIST")));
    let (status, _) = route(&mut s, &Method::POST, "/api/2.0/mlflow/runs/log-metric", "", b"{oops");
    assert_eq!(status, 400);
    let (status, _) = call(&mut s, "POST", "runs/update", json!({"run_id": TOP, "status": "DONE"}));
    assert_eq!(status, 400);
}

#[test]
fn experiments_nested_runs_and_search() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = state(dir.path());
    let created = ok(&mut s, "POST", "experiments/create", json!({"name": "exp"}));
    assert_eq!(created["experiment_id"], "1");
    let (status, _) = call(&mut s, "POST", "experiments/create", json!({"name": "exp"}));
    assert_eq!(status, 400);
    let by_name = ok(&mut s, "GET", "experiments/get-by-name", json!({"experiment_name": "exp"}));
    assert_eq!(by_name["experiment"]["experiment_id"], "1");
    let child = ok(
        &mut s,
        "POST",
        "runs/create",
        json!({"experiment_id": "0", "start_time": 2000, "tags": [{"key": "mlflow.parentRunId", "value": TOP}], "run_name": "kid"}),
    );
    let child_id = child["run"]["info"]["run_id"].as_str().unwrap().to_string();
    assert_eq!(child_id.len(), 32);
    let artifacts = child["run"]["info"]["artifact_uri"].as_str().unwrap();
    assert_eq!(artifacts, dir.path().join("runs").join(&child_id).join("artifacts").to_string_lossy().as_ref());
    ok(&mut s, "POST", "runs/log-metric", json!({"run_id": child_id, "key": "rmse", "value": 0.3, "timestamp": 1}));
    ok(&mut s, "POST", "runs/log-metric", json!({"run_id": TOP, "key": "rmse", "value": 0.5, "timestamp": 1}));
    let found = ok(&mut s, "POST", "runs/search", json!({"experiment_ids": ["0"], "order_by": ["metrics.rmse ASC"]}));
    let ids: Vec<&str> =
        found["runs"].as_array().unwrap().iter().map(|r| r["info"]["run_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [child_id.as_str(), TOP]);
    let filter = format!("tags.mlflow.parentRunId = '{TOP}'");
    let found = ok(&mut s, "POST", "runs/search", json!({"experiment_ids": ["0"], "filter": filter}));
    assert_eq!(found["runs"].as_array().unwrap().len(), 1);
    let paged = ok(&mut s, "POST", "runs/search", json!({"experiment_ids": ["0"], "max_results": 1}));
    assert_eq!(paged["next_page_token"], "1");
    let (status, _) = call(&mut s, "POST", "runs/search", json!({"filter": "metrics.rmse <"}));
    assert_eq!(status, 400);

    let logged = Logged::from_events(&read_events(dir.path()).unwrap());
    assert_eq!(logged.nested.len(), 1);
    assert_eq!((logged.nested[0].name.as_deref(), logged.nested[0].parent.as_deref()), (Some("kid"), Some(TOP)));
}

#[test]
fn logged_models_are_created_found_and_finalized() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = state(dir.path());
    let body =
        json!({"experiment_id": "0", "name": "model", "source_run_id": TOP, "params": [{"key": "C", "value": "1"}]});
    let created = ok(&mut s, "POST", "logged-models", body);
    let id = created["model"]["info"]["model_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("m-"));
    assert_eq!(
        created["model"]["info"]["artifact_uri"],
        dir.path().join("models").join(&id).join("artifacts").to_string_lossy().as_ref()
    );
    ok(&mut s, "PATCH", &format!("logged-models/{id}"), json!({"status": "LOGGED_MODEL_READY"}));
    ok(&mut s, "PATCH", &format!("logged-models/{id}/tags"), json!({"tags": [{"key": "k", "value": "v"}]}));
    ok(&mut s, "POST", &format!("logged-models/{id}/params"), json!({"params": [{"key": "D", "value": "2"}]}));
    let got = ok(&mut s, "GET", &format!("logged-models/{id}"), json!({}));
    assert_eq!(got["model"]["info"]["status"], "LOGGED_MODEL_READY");
    assert_eq!(got["model"]["data"]["params"].as_array().unwrap().len(), 2);
    let found =
        ok(&mut s, "POST", "logged-models/search", json!({"experiment_ids": ["0"], "filter": "name = 'model'"}));
    assert_eq!(found["models"].as_array().unwrap().len(), 1);
    let (status, _) = call(&mut s, "GET", "logged-models/m-missing", json!({}));
    assert_eq!(status, 404);
    let logged = Logged::from_events(&read_events(dir.path()).unwrap());
    assert_eq!(logged.models.len(), 1);
    assert_eq!(logged.models[0].status.as_deref(), Some("LOGGED_MODEL_READY"));
}

#[test]
fn the_endpoint_answers_over_http_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let top =
        TopRun { run_id: TOP.into(), name: None, experiment_name: Some("e".into()), start_time: 1, user: "u".into() };
    let started = std::time::Instant::now();
    let endpoint = Endpoint::start(dir.path(), &top).unwrap();
    let start_cost = started.elapsed();
    let vars = endpoint.child_variables();
    assert_eq!(vars[1], ("MLFLOW_RUN_ID".to_string(), TOP.to_string()));
    assert_eq!(vars[2], ("MLFLOW_EXPERIMENT_ID".to_string(), "1".to_string()));
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let url = format!("{}/api/2.0/mlflow/runs/log-metric", endpoint.uri());
    let mut response = agent
        .post(&url)
        .header("Content-Type", "application/json")
        .send(json!({"run_id": TOP, "key": "acc", "value": 1.0, "timestamp": 3}).to_string())
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.body_mut().read_to_string().unwrap(), "{}");
    let mut missing = agent.get(format!("{}/api/2.0/mlflow/unknown", endpoint.uri())).call().unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.body_mut().read_to_string().unwrap().contains("ENDPOINT_NOT_FOUND"));
    let uri = endpoint.uri();
    endpoint.stop();
    assert!(agent.get(format!("{uri}/api/2.0/mlflow/runs/get?run_id={TOP}")).call().is_err(), "stopped");
    assert_eq!(read_events(dir.path()).unwrap().metric_history(TOP, "acc").len(), 1);
    assert!(start_cost < std::time::Duration::from_millis(50), "{start_cost:?}");
}
