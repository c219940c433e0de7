//! The tracking endpoint every run without a server gets: the real mlflow 3.17.2 client
//! (the tracking tests' virtualenv) logging params, metrics, tags, artifacts, models and
//! nested runs into the run directory, and what `record.json`, `runs` and `show` make of it.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// `lockstep` with the virtualenv's python (and mlflow) first on PATH.
fn lockstep(ctx: &TestContext) -> assert_cmd::Command {
    let mut cmd = ctx.lockstep();
    cmd.env("PATH", path_with_mlflow());
    cmd
}

fn project(ctx: &TestContext, script: &str) {
    let manifest = "name: tracked\nentry_points:\n  main:\n    parameters:\n      alpha: {type: float, default: 0.5}\n    command: \"python train.py {alpha}\"\n";
    ctx.project("p", &[("MLproject", manifest), ("train.py", script)]);
}

const LOGGING: &str = r#"
import os, sys
import mlflow
from mlflow import MlflowClient

env = {k: os.environ.get(k) for k in ["MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_DISABLE_TELEMETRY"]}
print("ENV", env["MLFLOW_RUN_ID"], env["MLFLOW_EXPERIMENT_ID"], env["MLFLOW_DISABLE_TELEMETRY"])
with mlflow.start_run() as run:
    print("ACTIVE", run.info.run_id)
    mlflow.log_param("alpha", sys.argv[1])
    mlflow.log_params({"depth": 3, "kind": "tree"})
    for step in range(4):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1000 + step)
    mlflow.log_metrics({"acc": 0.75, "f1": 0.5}, step=7)
    mlflow.set_tag("team", "a")
    mlflow.set_tags({"stage": "dev", "owner": "me"})
    with open("report.txt", "w") as f:
        f.write("report")
    mlflow.log_artifact("report.txt")
    os.makedirs("plots", exist_ok=True)
    with open("plots/a.txt", "w") as f:
        f.write("a")
    mlflow.log_artifacts("plots", artifact_path="plots")
    mlflow.log_dict({"lr": 0.1}, "config/params.json")
    with mlflow.start_run(nested=True, run_name="child") as child:
        mlflow.log_param("inner", "x")
        mlflow.log_metric("inner_loss", 0.25)
        mlflow.log_text("nested", "notes.txt")
    history = MlflowClient().get_metric_history(run.info.run_id, "loss")
    print("HISTORY", [(m.step, m.value) for m in history])
    found = mlflow.search_runs(output_format="list", filter_string="metrics.inner_loss < 1")
    print("FOUND", [r.info.run_id for r in found] == [child.info.run_id])
    ordered = mlflow.search_runs(output_format="list", order_by=["metrics.loss ASC"])
    print("ORDERED", [r.info.run_id for r in ordered])
    try:
        mlflow.log_param("alpha", "changed")
        print("CHANGED PARAM ACCEPTED")
    except mlflow.exceptions.MlflowException as e:
        print("CHANGED PARAM REFUSED", e.error_code)
"#;

#[test]
fn the_mlflow_client_logs_into_the_run_without_a_server() {
    let ctx = TestContext::new();
    project(&ctx, LOGGING);
    let out = lockstep(&ctx).args(["run", "p", "-P", "alpha=0.3"]).assert().success().get_output().clone();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let r = ctx.only_record();
    let run_id = r["run_id"].as_str().unwrap();
    assert!(stdout.contains(&format!("ENV {run_id} 0 true")), "{stdout}");
    assert!(stdout.contains(&format!("ACTIVE {run_id}")), "start_run() resumes lockstep's run: {stdout}");
    assert!(stdout.contains("HISTORY [(0, 1.0), (1, 0.5), (2, 0.3333333333333333), (3, 0.25)]"), "{stdout}");
    assert!(stdout.contains("FOUND True"), "{stdout}");
    assert!(stdout.contains("CHANGED PARAM REFUSED INVALID_PARAMETER_VALUE"), "{stdout}");

    let logged = &r["logged"];
    assert_eq!(logged["params"], serde_json::json!({"alpha": "0.3", "depth": "3", "kind": "tree"}));
    assert_eq!(
        logged["metrics"]["loss"],
        serde_json::json!({"last": 0.25, "step": 3, "min": 0.25, "max": 1.0, "count": 4})
    );
    assert_eq!(logged["metrics"]["acc"]["step"], 7);
    assert_eq!(logged["tags"], serde_json::json!({"owner": "me", "stage": "dev", "team": "a"}), "no mlflow.* tags");
    let artifacts: Vec<(&str, u64)> = logged["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["path"].as_str().unwrap(), a["size"].as_u64().unwrap()))
        .collect();
    assert_eq!(artifacts, [("config/params.json", 15), ("plots/a.txt", 1), ("report.txt", 6)]);
    assert_eq!(logged["artifacts"][2]["sha256"], sha256_hex(b"report"));
    let nested = &logged["nested"][0];
    assert_eq!(logged["nested"].as_array().unwrap().len(), 1);
    assert_eq!((nested["name"].as_str(), nested["parent"].as_str()), (Some("child"), Some(run_id)));
    assert_eq!(nested["status"], "FINISHED");
    assert_eq!(nested["params"]["inner"], "x");
    assert_eq!(nested["artifacts"][0]["path"], "notes.txt");
    let child_id = nested["run_id"].as_str().unwrap();
    let ordered = stdout.lines().find(|l| l.starts_with("ORDERED")).unwrap();
    assert_eq!(ordered, format!("ORDERED ['{run_id}', '{child_id}']"), "runs without the metric come last");

    // The project stays as it was but for the script's own files: no mlflow.db, no mlruns/.
    for stray in ["mlflow.db", "mlruns"] {
        assert!(!ctx.work.join("p").join(stray).exists(), "{stray} in the project");
    }
    let outputs: Vec<&str> = r["outputs"].as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap()).collect();
    assert_eq!(outputs, ["plots/a.txt", "report.txt"], "the tracking data are not outputs");
    let events = fs::read_to_string(ctx.store().join("runs").join(run_id).join("tracking/events.jsonl")).unwrap();
    assert_eq!(events.lines().filter(|l| l.contains(r#""kind":"metric""#)).count(), 7);

    let shown = ctx.run(["show", run_id]).success().stdout_text();
    for part in ["logged param: depth=3", "loss", "tag:          team=a", "config/params.json", "nested run:"] {
        assert!(shown.contains(part), "{part}: {shown}");
    }
}

const MODEL: &str = r#"
import mlflow, mlflow.sklearn, mlflow.pyfunc
from sklearn.linear_model import LinearRegression
mlflow.sklearn.autolog(log_models=False)
X, y = [[0.0], [1.0], [2.0], [3.0]], [1.0, 3.0, 5.0, 7.0]
with mlflow.start_run() as run:
    model = LinearRegression().fit(X, y)
    info = mlflow.sklearn.log_model(model, name="model", input_example=[[4.0]])
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    print("PREDICTED", [round(float(v), 6) for v in loaded.predict([[4.0]])])
    print("MODEL", info.model_id)
"#;

#[test]
fn sklearn_autolog_and_a_logged_model_load_back_in_the_same_run() {
    let ctx = TestContext::new();
    project(&ctx, MODEL);
    let out = lockstep(&ctx).args(["run", "p"]).assert().success().get_output().clone();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.contains("PREDICTED [9.0]"), "{stdout}");
    let model_id = stdout.lines().find_map(|l| l.strip_prefix("MODEL ")).unwrap().trim().to_string();
    let r = ctx.only_record();
    let logged = &r["logged"];
    assert!(logged["metrics"]["training_r2_score"]["last"].as_f64().is_some_and(|v| v > 0.99), "{logged}");
    assert_eq!(logged["params"]["fit_intercept"], "True", "autolog's params");
    let model = logged["models"].as_array().unwrap().iter().find(|m| m["model_id"] == model_id.as_str()).unwrap();
    assert_eq!(model["name"], "model");
    assert_eq!(model["status"], "LOGGED_MODEL_READY");
    assert_eq!(model["source_run_id"], r["run_id"]);
    let files: Vec<&str> = model["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert!(files.contains(&"MLmodel") && files.iter().any(|f| f.starts_with("model.")), "{files:?}");
    let dir =
        ctx.store().join("runs").join(r["run_id"].as_str().unwrap()).join(model["artifact_path"].as_str().unwrap());
    assert!(dir.join("MLmodel").is_file());
}

const MANY_POINTS: &str = r#"
import time
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric
with mlflow.start_run() as run:
    client, now = MlflowClient(), int(time.time() * 1000)
    for batch in range(10):
        points = [Metric("loss", 1.0 / (i + 1), now, i) for i in range(batch * 1000, (batch + 1) * 1000)]
        client.log_batch(run.info.run_id, metrics=points)
    print("POINTS", len(client.get_metric_history(run.info.run_id, "loss")))
"#;

#[test]
fn ten_thousand_metric_points_are_kept_and_summarized() {
    let ctx = TestContext::new();
    project(&ctx, MANY_POINTS);
    let out = lockstep(&ctx).args(["run", "p"]).assert().success().get_output().clone();
    assert!(String::from_utf8_lossy(&out.stdout).contains("POINTS 10000"));
    let loss = &ctx.only_record()["logged"]["metrics"]["loss"];
    assert_eq!(
        (loss["count"].as_u64(), loss["step"].as_u64(), loss["max"].as_f64()),
        (Some(10000), Some(9999), Some(1.0))
    );
}

const LOGS_THEN_WAITS: &str = r#"
import time
import mlflow
with mlflow.start_run():
    for step in range(3):
        mlflow.log_metric("loss", 3.0 - step, step=step)
    open("logged", "w").close()
    time.sleep(120)
"#;

#[test]
fn a_sigkilled_runner_leaves_a_lost_run_with_the_metrics_logged_so_far() {
    let ctx = TestContext::new();
    project(&ctx, LOGS_THEN_WAITS);
    let mut runner = ctx
        .lockstep_process()
        .env("PATH", path_with_mlflow())
        .args(["run", "p"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let logged = ctx.work.join("p/logged");
    assert!(wait_for(Duration::from_secs(120), || logged.exists()), "the script logged its metrics");
    unsafe { libc::kill(runner.id() as i32, libc::SIGKILL) };
    runner.wait().unwrap();
    // The store finalizes the lost run when it reads it (here, for `runs`), once the watchdog
    // has ended the entry point and the run's lock is free.
    let mut shown = String::new();
    let ended = wait_for(Duration::from_secs(30), || {
        shown = ctx.run(["runs"]).success().stdout_text();
        shown.contains("FAILED")
    });
    assert!(ended, "{shown}");
    assert!(shown.contains("loss"), "the lost run's metric is a column: {shown}");
    let r = ctx.only_record();
    assert!(r["failure"].as_str().unwrap().starts_with("lost"));
    assert_eq!(r["logged"]["metrics"]["loss"]["count"], 3);
    assert_eq!(r["logged"]["metrics"]["loss"]["last"], 1.0);
}

/// A script that talks to the endpoint with Python's standard library only (no mlflow
/// import: fast), logging a deterministic run for snapshots.
const STDLIB_LOGGER: &str = r#"
import json, os, sys, urllib.request
api = os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/"
run = os.environ["MLFLOW_RUN_ID"]
def post(endpoint, body):
    request = urllib.request.Request(api + endpoint, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(request))
alpha = float(sys.argv[1])
post("runs/log-batch", {
    "run_id": run,
    "params": [{"key": "seed", "value": "7"}],
    "metrics": [{"key": "rmse", "value": alpha * (3 - s), "timestamp": 1000 + s, "step": s} for s in range(3)]
             + [{"key": "r2", "value": 1 - alpha, "timestamp": 1000, "step": 0}],
    "tags": [{"key": "team", "value": "a"}],
})
info = json.load(urllib.request.urlopen(api + "runs/get?run_id=" + run))["run"]["info"]
os.makedirs(info["artifact_uri"], exist_ok=True)
with open(os.path.join(info["artifact_uri"], "report.txt"), "w") as f:
    f.write("rmse %s\n" % alpha)
"#;

fn stdlib_runs() -> TestContext {
    let manifest = "name: snap\nentry_points:\n  main:\n    parameters:\n      alpha: float\n    command: \"python3 log.py {alpha}\"\n";
    let ctx = TestContext::new().file("p/MLproject", manifest).file("p/log.py", STDLIB_LOGGER);
    for alpha in ["0.3", "0.1", "0.2"] {
        ctx.run(["run", "p", "-P", &format!("alpha={alpha}")]).success();
    }
    ctx
}

#[test]
fn runs_sorts_and_filters_by_what_the_scripts_logged() {
    let ctx = stdlib_runs();
    let settings = crate::support::snapshot::settings(&ctx);
    let out = ctx.run(["runs", "--sort", "rmse"]).success();
    settings.bind(|| insta::assert_snapshot!("runs_sort_rmse", out.transcript()));
    let out = ctx.run(["runs", "--sort", "-r2", "--metrics", "r2"]).success();
    settings.bind(|| insta::assert_snapshot!("runs_sort_r2_descending", out.transcript()));
    let only = ctx.run(["runs", "--param", "alpha=0.2", "--status", "finished", "--json"]).success().json();
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(only[0]["parameters"]["alpha"], "0.2");
    let logged_param = ctx.run(["runs", "--param", "seed=7", "--experiment", "Default", "--json"]).success().json();
    assert_eq!(logged_param.as_array().unwrap().len(), 3, "logged params filter too");
    assert_eq!(ctx.run(["runs", "--experiment", "other", "--json"]).success().json(), serde_json::json!([]));
    // The store has runs: user_error's "no run left behind" does not apply to listing them.
    ctx.run(["runs", "--sort", "nothing"])
        .status(2)
        .stdout("")
        .stderr_has("error: no listed run logged the metric 'nothing'");
    ctx.run(["runs", "--param", "alpha"]).status(2).stdout("").stderr_has("error: --param 'alpha' is not NAME=VALUE");
}

#[test]
fn show_lists_the_logged_params_metrics_and_artifacts() {
    let ctx = stdlib_runs();
    let first = ctx.records()[0]["run_id"].as_str().unwrap().to_string();
    let out = ctx.run(["show", &first]).success();
    crate::support::snapshot::settings(&ctx).bind(|| insta::assert_snapshot!("show_logged", out.transcript()));
}

const DOCKER_LOGGER: &str = r#"set -e
api=$MLFLOW_TRACKING_URI/api/2.0/mlflow
body='{"run_id":"'$MLFLOW_RUN_ID'","key":"acc","value":0.75,"timestamp":1,"step":2}'
wget -q -O- --header 'Content-Type: application/json' --post-data "$body" $api/runs/log-metric
dir=$(wget -q -O- "$api/runs/get?run_id=$MLFLOW_RUN_ID" | sed -n 's/.*"artifact_uri":"\([^"]*\)".*/\1/p')
echo boxed > $dir/from-container.txt
"#;

#[test]
fn a_docker_run_logs_metrics_and_an_artifact_through_the_endpoint() {
    let Some(images) = crate::support::docker::images() else { return };
    let ctx = TestContext::new();
    // busybox has no python: the script speaks the REST API with wget.
    crate::support::docker::docker_project(&ctx, "boxed", &images.busybox, "", "sh log.sh");
    ctx.write("boxed/log.sh", DOCKER_LOGGER);
    let out = ctx.lockstep().args(["run", "boxed", "--json"]).assert().success().get_output().clone();
    let record = json(&out);
    let logged: &Value = &record["logged"];
    assert_eq!(logged["metrics"]["acc"]["last"], 0.75, "{record}");
    assert_eq!(logged["metrics"]["acc"]["step"], 2);
    assert_eq!(logged["artifacts"][0]["path"], "from-container.txt");
    assert_eq!(logged["artifacts"][0]["sha256"], sha256_hex(b"boxed\n"));
    let file = ctx.store().join("runs").join(record["run_id"].as_str().unwrap()).join("artifacts/from-container.txt");
    assert!(Path::new(&file).is_file());
}
