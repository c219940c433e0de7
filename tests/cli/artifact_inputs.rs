//! `path` parameters given MLflow's artifact URIs, as MLflow's own `test_run_with_artifact_path`
//! passes them: `runs:/`, `models:/` and `mlflow-artifacts:/` values fetched into the run's
//! `inputs/`, from the store for runs lockstep recorded and through a real MLflow server
//! (3.17.2) for the others.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::support::*;

const MANIFEST: &str = "name: artifacts\nentry_points:\n  train:\n    command: \"python train.py\"\n  use:\n    parameters:\n      model: path\n    command: \"python use.py {model}\"\n";

/// Logs a file, a directory and a model, and prints their ids.
const TRAIN: &str = r#"
import os
import mlflow

os.makedirs("d/sub", exist_ok=True)
with open("model.pkl", "w") as f:
    f.write("weights-1")
with open("d/sub/a.txt", "w") as f:
    f.write("A")

class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input

with mlflow.start_run() as run:
    mlflow.log_artifact("model.pkl")
    mlflow.log_artifacts("d", artifact_path="dir")
    info = mlflow.pyfunc.log_model(name="echo", python_model=Echo())
    print("IDS", run.info.run_id, info.model_id, run.info.artifact_uri)
    if os.environ.get("REGISTER"):
        mlflow.register_model(info.model_uri, "reg")
"#;

/// Writes what the entry point was given: a file's bytes, or a directory's files.
const USE: &str = r#"
import os, sys
path = sys.argv[1]
if os.path.isdir(path):
    found = sorted(os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs)
    text = "\n".join(found)
else:
    text = open(path).read()
with open("used.txt", "w") as f:
    f.write(text)
"#;

fn lockstep(ctx: &TestContext) -> assert_cmd::Command {
    let mut cmd = ctx.lockstep();
    cmd.env("PATH", path_with_mlflow());
    cmd
}

/// Run `train` (with these extra arguments) and return the ids it printed: run, model and
/// the run's artifact URI.
fn train(ctx: &TestContext, project: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Vec<String> {
    let out = lockstep(ctx)
        .args(["run", "-e", "train"])
        .args(extra)
        .arg(project)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "train: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find_map(|l| l.strip_prefix("IDS ")).expect("ids printed");
    line.split_whitespace().map(str::to_string).collect()
}

/// Run `use` with `model=value`; what it was given.
fn used(ctx: &TestContext, project: &Path, value: &str, extra: &[&str]) -> String {
    let out = lockstep(ctx)
        .args(["run", "-e", "use", "-P"])
        .arg(format!("model={value}"))
        .args(extra)
        .arg(project)
        .output()
        .unwrap();
    assert!(out.status.success(), "{value}: {}", String::from_utf8_lossy(&out.stderr));
    fs::read_to_string(project.join("used.txt")).unwrap()
}

fn newest(ctx: &TestContext) -> Value {
    let mut records = ctx.records();
    records.sort_by_key(|r| r["start_time"].as_u64());
    records.pop().unwrap()
}

#[test]
fn runs_and_models_lockstep_recorded_are_fetched_from_the_store() {
    let ctx = TestContext::new();
    let project = ctx.project("p", &[("MLproject", MANIFEST), ("train.py", TRAIN), ("use.py", USE)]);
    let ids = train(&ctx, &project, &[], &[]);
    let (run_id, model_id) = (&ids[0], &ids[1]);
    assert_eq!(run_id, ctx.records()[0]["run_id"].as_str().unwrap(), "the script's run is lockstep's run");

    assert_eq!(used(&ctx, &project, &format!("runs:/{run_id}/model.pkl"), &[]), "weights-1");
    let record = newest(&ctx);
    assert_eq!(record["parameters"]["model"], format!("runs:/{run_id}/model.pkl"), "the record keeps the URI");
    let run_dir = ctx.store().join("runs").join(record["run_id"].as_str().unwrap());
    assert_eq!(fs::read_to_string(run_dir.join("inputs/model/model.pkl")).unwrap(), "weights-1");

    assert_eq!(used(&ctx, &project, &format!("runs:/{run_id}/dir"), &[]), "sub/a.txt");
    let model_files = used(&ctx, &project, &format!("models:/{model_id}"), &[]);
    assert!(model_files.lines().any(|l| l == "MLmodel"), "{model_files}");
}

#[test]
fn artifact_uris_the_store_cannot_answer_are_refused_before_the_run() {
    let ctx = TestContext::new();
    let project = ctx.project("p", &[("MLproject", MANIFEST), ("train.py", TRAIN), ("use.py", USE)]);
    let missing = "runs:/0123456789abcdef0123456789abcdef/model.pkl";
    lockstep(&ctx)
        .args(["run", "-e", "use", "-P", &format!("model={missing}")])
        .arg(&project)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "names artifact 'model.pkl' of run 0123456789abcdef0123456789abcdef, which is not in the store",
        ))
        .stderr(predicates::str::contains("hint: give the tracking server that has it with --tracking-uri"));
    for (value, words) in [
        ("runs:/abc/../../etc/passwd", "must stay inside the run's artifacts"),
        ("models:/reg", "models:/ needs m-ID, NAME/VERSION or NAME@ALIAS"),
        ("models:/reg/1", "names version 1 of registered model 'reg', which is not in the store"),
    ] {
        lockstep(&ctx)
            .args(["run", "-e", "use", "-P", &format!("model={value}")])
            .arg(&project)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(words));
    }
    ctx.assert_no_runs();
}

#[test]
fn runs_models_and_proxied_artifacts_on_a_server_are_fetched_through_it() {
    let ctx = TestContext::new();
    let server = MlflowServer::start();
    let uri = server.uri();
    let project = ctx.project("p", &[("MLproject", MANIFEST), ("train.py", TRAIN), ("use.py", USE)]);
    // Logged straight to the server, not through lockstep: the store knows nothing of it.
    let out = std::process::Command::new(crate::support::mlflow::mlflow_bin().with_file_name("python"))
        .arg("train.py")
        .current_dir(&project)
        .env("MLFLOW_TRACKING_URI", &uri)
        .env("REGISTER", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let ids: Vec<&str> = stdout.lines().find_map(|l| l.strip_prefix("IDS ")).unwrap().split_whitespace().collect();
    let (run_id, model_id, artifact_uri) = (ids[0], ids[1], ids[2]);
    let at_server = ["--tracking-uri", uri.as_str()];

    assert_eq!(used(&ctx, &project, &format!("runs:/{run_id}/model.pkl"), &at_server), "weights-1");
    assert_eq!(used(&ctx, &project, &format!("runs:/{run_id}/dir"), &at_server), "sub/a.txt");
    assert_eq!(used(&ctx, &project, &format!("{artifact_uri}/model.pkl"), &at_server), "weights-1");
    for model in [format!("models:/{model_id}"), "models:/reg/1".into(), "models:/reg/latest".into()] {
        let files = used(&ctx, &project, &model, &at_server);
        assert!(files.lines().any(|l| l == "MLmodel"), "{model}: {files}");
    }
    let before = ctx.records().len();
    lockstep(&ctx)
        .args(["run", "-e", "use", "-P", &format!("model=runs:/{run_id}/nothing.pkl")])
        .args(at_server)
        .arg(&project)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("nor on the tracking server"));
    assert_eq!(ctx.records().len(), before, "no run is recorded");
}
