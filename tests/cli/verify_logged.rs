//! `lockstep verify` of runs whose scripts log through the mlflow client: the logged metrics
//! and artifacts are compared as outputs are (a deterministic metric reproduces, a random one
//! differs, with both values shown), a logged model's per-run ids and times are no difference,
//! and the re-run logs to its own endpoint, never to the caller's tracking server.

use crate::support::*;

const MANIFEST: &str = "name: tracked\nentry_points:\n  main:\n    parameters:\n      noise: {type: string, default: 'no'}\n    command: \"python train.py {noise}\"\n";

const TRAIN: &str = r#"
import random, sys
import mlflow, mlflow.sklearn
from sklearn.linear_model import LinearRegression
with mlflow.start_run():
    for step in range(3):
        mlflow.log_metric("exact", 0.5 * step, step=step)
    if sys.argv[1] == "yes":
        mlflow.log_metric("noise", random.random())
    mlflow.log_dict({"lr": 0.1}, "config.json")
    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
    # skops (the default) names its members by object addresses: never the same bytes twice.
    mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")
"#;

fn context() -> TestContext {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", MANIFEST), ("train.py", TRAIN)]);
    ctx
}

fn last_run_id(ctx: &TestContext) -> String {
    ctx.records().last().unwrap()["run_id"].as_str().unwrap().to_string()
}

#[test]
fn a_deterministic_script_reproduces_with_its_model() {
    let ctx = context();
    ctx.run(["run", "p"]).env("PATH", path_with_mlflow()).success();
    let id = last_run_id(&ctx);
    let out = ctx.run(["verify", &id]).env("PATH", path_with_mlflow()).success();
    let text = out.stdout_text();
    assert!(text.contains("identical        metric exact = 1"), "{text}");
    assert!(text.contains("identical        artifact config.json"), "{text}");
    assert!(text.contains("identical        artifact models/model/MLmodel"), "{text}");
    assert!(
        text.contains("    identical once MLflow's run and model ids, uuids and creation times are mapped"),
        "{text}"
    );
    assert!(text.contains("reproduced: every output, logged metric and artifact matches"), "{text}");
    let summary = ctx.records().last().unwrap()["verification"].clone();
    assert_eq!(summary["result"], "reproduced");
    assert_eq!(summary["metrics"]["identical"], 1);
    assert!(summary["artifacts"]["identical"].as_u64().unwrap() >= 2, "{summary}");
}

#[test]
fn a_random_metric_differs_with_both_values_shown() {
    let ctx = context();
    ctx.run(["run", "p", "-P", "noise=yes"]).env("PATH", path_with_mlflow()).success();
    let original = ctx.only_record();
    let value = original["logged"]["metrics"]["noise"]["last"].as_f64().unwrap();
    let out =
        ctx.run(["verify", original["run_id"].as_str().unwrap(), "--json"]).env("PATH", path_with_mlflow()).status(1);
    let report = out.json();
    assert_eq!(report["result"], "differs");
    let metric = |key: &str| report["metrics"].as_array().unwrap().iter().find(|m| m["key"] == key).unwrap().clone();
    assert_eq!(metric("exact")["result"], "identical");
    let noise = metric("noise");
    assert_eq!(noise["result"], "differs");
    assert_eq!(noise["original"]["last"].as_f64(), Some(value));
    let rerun = noise["rerun"]["last"].as_f64().unwrap();
    assert_ne!(rerun, value);
    assert_eq!(noise["detail"], format!("last {value} vs {rerun}, min {value} vs {rerun}, max {value} vs {rerun}"));
    let summary = ctx.records().last().unwrap()["verification"].clone();
    assert_eq!(summary["metrics"]["differs"], 1);
    assert_eq!(summary["metric_differences"][0]["key"], "noise");
    assert_eq!(summary["metric_differences"][0]["rerun"]["last"].as_f64(), Some(rerun));

    // As text: the verdict names what differs, and both values.
    let out = ctx.run(["verify", original["run_id"].as_str().unwrap()]).env("PATH", path_with_mlflow()).status(1);
    let text = out.stdout_text();
    assert!(text.contains(&format!("DIFFERS          metric noise = {value} vs ")), "{text}");
    assert!(text.contains("not reproduced: metrics differ"), "{text}");
    // Ignored by name, the random metric is no difference.
    let id = original["run_id"].as_str().unwrap();
    ctx.run(["verify", id, "--ignore", "noise"])
        .env("PATH", path_with_mlflow())
        .success()
        .stdout_has("ignored          metric noise");
}

#[test]
fn the_rerun_never_logs_to_the_callers_tracking_server() {
    let ctx = context();
    ctx.run(["run", "p"]).env("PATH", path_with_mlflow()).success();
    let id = last_run_id(&ctx);
    let server = MlflowServer::start();
    ctx.run(["verify", &id]).env("PATH", path_with_mlflow()).env("MLFLOW_TRACKING_URI", server.uri()).success();
    assert!(server.runs("0").is_empty(), "a stray run in the server's Default experiment: {:?}", server.runs("0"));
    let rerun = ctx.records().last().unwrap().clone();
    assert_eq!(rerun["verifies"], id.as_str());
    assert!(rerun["tracking"].is_null(), "{}", rerun["tracking"]);
    assert_eq!(rerun["logged"]["metrics"]["exact"]["last"], 1.0, "the re-run logged to its own endpoint");
}
