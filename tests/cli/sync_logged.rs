//! `lockstep sync` of a run whose script logged to the embedded endpoint: a real `mlflow
//! server` then holds the params, tags, full metric histories (steps and timestamps),
//! artifacts, nested runs and logged models (loaded back with `models:/`), as MLflow's own
//! client reads them; a second sync changes nothing.

use std::process::Command;

use serde_json::Value;

use crate::support::mlflow::mlflow_bin;
use crate::support::*;

const MANIFEST: &str = "name: tracked\nentry_points:\n  main:\n    command: \"python train.py\"\n";

const TRAIN: &str = r#"
import mlflow, mlflow.sklearn
from sklearn.linear_model import LinearRegression
with mlflow.start_run():
    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
    mlflow.sklearn.log_model(model, name="line", serialization_format="cloudpickle")
    mlflow.log_params({"lr": "0.1", "depth": "3"})
    mlflow.set_tag("team", "a")
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1000 + 10 * step)
    mlflow.log_dict({"lr": 0.1}, "config/params.json")
    mlflow.log_text("report", "report.txt")
    with mlflow.start_run(nested=True, run_name="child"):
        mlflow.log_param("inner", "x")
        mlflow.log_metric("inner_loss", 0.25, step=2, timestamp=5000)
        mlflow.log_text("nested", "notes.txt")
"#;

/// What MLflow's own client reads back of the server's run `run_id`.
const READ_BACK: &str = r#"
import json, sys, tempfile, os
import mlflow, mlflow.pyfunc
from mlflow import MlflowClient
mlflow.set_tracking_uri(sys.argv[1])
client = MlflowClient(sys.argv[1])
run = client.get_run(sys.argv[2])
out = {
    "params": run.data.params,
    "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
    "loss": [(m.step, m.timestamp, m.value) for m in client.get_metric_history(run.info.run_id, "loss")],
    "artifacts": sorted(f.path for f in client.list_artifacts(run.info.run_id, "config")) + sorted(f.path for f in client.list_artifacts(run.info.run_id) if not f.is_dir),
}
with tempfile.TemporaryDirectory() as d:
    out["report"] = open(client.download_artifacts(run.info.run_id, "report.txt", d)).read()
children = client.search_runs([run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'")
out["children"] = [
    {
        "name": c.info.run_name,
        "status": c.info.status,
        "params": c.data.params,
        "inner_loss": [(m.step, m.timestamp, m.value) for m in client.get_metric_history(c.info.run_id, "inner_loss")],
        "artifacts": [f.path for f in client.list_artifacts(c.info.run_id)],
    }
    for c in children
]
models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
out["models"] = [(m.name, m.source_run_id, m.status.to_proto() if hasattr(m.status, "to_proto") else str(m.status)) for m in models]
loaded = mlflow.pyfunc.load_model(f"models:/{models[0].model_id}")
out["predicted"] = [round(float(v), 6) for v in loaded.predict([[4.0]])]
print(json.dumps(out))
"#;

fn read_back(server: &MlflowServer, run_id: &str) -> Value {
    let python = mlflow_bin().parent().unwrap().join("python");
    let out = Command::new(python)
        .args(["-c", READ_BACK, &server.uri(), run_id])
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_synced_run_looks_on_the_server_as_if_logged_live() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", MANIFEST), ("train.py", TRAIN)]);
    ctx.run(["run", "p"]).env("PATH", path_with_mlflow()).success();
    let id = ctx.only_record()["run_id"].as_str().unwrap().to_string();
    let server = MlflowServer::start();
    ctx.run(["sync", &id, "--tracking-uri", &server.uri()]).success();
    let record = ctx.only_record();
    assert_eq!(record["tracking"]["synced"], true);
    let server_id = record["tracking"]["run_id"].as_str().unwrap().to_string();

    let back = read_back(&server, &server_id);
    assert_eq!(back["params"], serde_json::json!({"lr": "0.1", "depth": "3"}));
    assert_eq!(back["tags"]["team"], "a");
    let loss: Vec<(i64, i64, f64)> = serde_json::from_value(back["loss"].clone()).unwrap();
    assert_eq!(loss, (0..5).map(|s| (s, 1000 + 10 * s, 1.0 / (s + 1) as f64)).collect::<Vec<_>>());
    let artifacts: Vec<&str> = back["artifacts"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(artifacts, ["config/params.json", "report.txt"]);
    assert_eq!(back["report"], "report");
    let children = back["children"].as_array().unwrap();
    assert_eq!(children.len(), 1, "{children:?}");
    let child = &children[0];
    assert_eq!((&child["name"], &child["status"]), (&"child".into(), &"FINISHED".into()));
    assert_eq!(child["params"]["inner"], "x");
    assert_eq!(child["inner_loss"], serde_json::json!([[2, 5000, 0.25]]));
    assert_eq!(child["artifacts"], serde_json::json!(["notes.txt"]));
    assert_eq!(back["models"].as_array().unwrap().len(), 1, "{}", back["models"]);
    assert_eq!((&back["models"][0][0], &back["models"][0][1]), (&"line".into(), &server_id.as_str().into()));
    assert_eq!(back["predicted"], serde_json::json!([9.0]), "models:/ loads from the server");

    // Again: the same run, the same histories, no second nested run.
    ctx.run(["sync", &id, "--tracking-uri", &server.uri()]).success();
    assert_eq!(ctx.only_record()["tracking"]["run_id"], server_id.as_str());
    let again = read_back(&server, &server_id);
    assert_eq!(again, back, "a second sync changes nothing");
    assert_eq!(server.runs(record["tracking"]["experiment_id"].as_str().unwrap()).len(), 2, "the run and its child");
}
