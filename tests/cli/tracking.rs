//! Tracking on a real MLflow server: the run, its tags, parameters and artifacts, the entry
//! point's own mlflow logging in the same run, every way a run ends, authentication, a server
//! lost during a run and `lockstep sync`.
//!
//! Each test starts its own server: [`MlflowServer`] in `support/mlflow.rs`.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::http::base64_of;
use crate::support::mlflow::ServerRun;
use crate::support::*;

/// `lockstep` with the virtualenv's python on PATH and quick retries.
fn lockstep(ctx: &TestContext) -> assert_cmd::Command {
    let mut cmd = ctx.lockstep();
    cmd.env("PATH", path_with_mlflow())
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        .env("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
        // A loaded test machine can keep a live server from answering within the default.
        .env("LOCKSTEP_TRACKING_TIMEOUT", "60");
    cmd
}

fn lockstep_process(ctx: &TestContext) -> Command {
    let mut cmd = ctx.lockstep_process();
    cmd.env("PATH", path_with_mlflow())
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        .env("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
        // A loaded test machine can keep a live server from answering within the default.
        .env("LOCKSTEP_TRACKING_TIMEOUT", "60");
    cmd
}

const LOGGING_PROJECT: &str = r#"
name: logging
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      note: {type: string, default: "a b"}
    command: "python train.py {alpha}"
"#;

/// A script that logs through the mlflow client, as users' scripts do.
const LOGGING_SCRIPT: &str = r#"
import os, sys
import mlflow
# mlflow.start_run() takes MLFLOW_RUN_ID out of the environment: read it first.
given = os.environ["MLFLOW_RUN_ID"]
with mlflow.start_run() as run:
    mlflow.log_param("inner", "from-script")
    mlflow.log_metric("rmse", float(sys.argv[1]) / 2)
    with open("model.txt", "w") as f:
        f.write("weights")
    mlflow.log_artifact("model.txt")
    print("MLFLOW_RUN_ID=" + given)
    print("training done", file=sys.stderr)
    print("ACTIVE=" + run.info.run_id)
"#;

#[test]
fn the_entry_point_logs_into_the_run_lockstep_records() {
    let ctx = TestContext::new();
    let server = MlflowServer::start();
    let commit = ctx.git_repo(
        &ctx.work.join("repo"),
        &[("proj/MLproject", LOGGING_PROJECT), ("proj/train.py", LOGGING_SCRIPT), (".gitignore", "model.txt\n")],
    );
    ctx.git(&ctx.work.join("repo"), &["remote", "add", "origin", "https://bob:tok3n@git.example.com/team/repo.git"]);

    let out = lockstep(&ctx)
        .env("MLFLOW_TRACKING_URI", server.uri())
        .args(["run", "repo/proj", "-P", "alpha=0.3", "-P", "extra=it's", "--experiment-name", "demo"])
        .args(["--run-name", "first"])
        .assert()
        .success()
        .get_output()
        .clone();
    let r = ctx.only_record();
    let tracking = &r["tracking"];
    assert_eq!(tracking["uri"], server.uri());
    assert_eq!(tracking["synced"], true);
    assert_eq!(r["experiment_name"], "demo");
    let (exp, run_id) = (tracking["experiment_id"].as_str().unwrap(), tracking["run_id"].as_str().unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("MLFLOW_RUN_ID={run_id}")), "the child gets the run: {stdout}");
    assert!(stdout.contains(&format!("ACTIVE={run_id}")), "mlflow.start_run() resumes it: {stdout}");

    let experiment = server.get("experiments/get-by-name", &[("experiment_name", "demo")]);
    assert_eq!(experiment["experiment"]["experiment_id"], exp, "the experiment is created by name");
    assert_eq!(server.runs(exp).len(), 1, "one run, shared by lockstep and the script");
    let run = server.run(run_id);
    assert_eq!(run.info("status"), "FINISHED");
    assert_eq!(run.info("start_time"), &r["start_time"]);
    assert_eq!(run.info("end_time"), &r["end_time"]);
    assert_eq!(run.info("run_name"), "first");
    for (key, value) in [
        ("mlflow.source.type", "PROJECT".to_string()),
        ("mlflow.source.name", format!("file://{}#proj", ctx.work.join("repo").display())),
        ("mlflow.source.git.commit", commit),
        ("mlflow.source.git.repoURL", "https://git.example.com/team/repo.git".into()),
        ("mlflow.project.entryPoint", "main".into()),
        ("mlflow.project.backend", "local".into()),
        ("mlflow.runName", "first".into()),
        ("lockstep.run_id", r["run_id"].as_str().unwrap().into()),
        ("lockstep.tree_sha256", r["source"]["tree_sha256"].as_str().unwrap().into()),
        ("lockstep.dirty", "false".into()),
        ("lockstep.record.schema", "lockstep.run/v1".into()),
    ] {
        assert_eq!(run.tag(key).as_deref(), Some(value.as_str()), "tag {key}");
    }
    assert_eq!(run.tag("lockstep.exit_code"), None, "FINISHED says it");
    assert_eq!(run.tag("mlflow.source.git.branch"), None, "as mlflow run: only a -v that names a branch");
    assert_eq!(run.tag("mlflow.project.env"), None, "as mlflow run: no environment activated");
    assert!(run.tag("mlflow.user").is_some_and(|u| !u.is_empty()));
    assert_eq!(run.param("alpha").as_deref(), Some("0.3"));
    assert_eq!(run.param("note").as_deref(), Some("a b"), "raw values, not shell-quoted");
    assert_eq!(run.param("extra").as_deref(), Some("it's"));
    assert_eq!(run.param("inner").as_deref(), Some("from-script"));
    assert_eq!(run.metric("rmse"), Some(0.15), "the script's metric is in the run");
    // The record holds the script's results too, read back from the server at the end.
    let logged = &r["logged"];
    assert_eq!(logged["params"]["inner"], "from-script");
    assert_eq!(
        logged["metrics"]["rmse"],
        serde_json::json!({"last": 0.15, "step": 0, "min": 0.15, "max": 0.15, "count": 1})
    );
    assert_eq!(
        logged["artifacts"],
        serde_json::json!([{"path": "model.txt", "size": 7, "sha256": sha256_hex(b"weights")}])
    );
    assert!(
        logged["tags"].as_object().unwrap().keys().all(|k| !k.starts_with("mlflow.") && !k.starts_with("lockstep."))
    );

    let mut artifacts = server.artifacts(run_id, "");
    artifacts.sort();
    assert_eq!(artifacts, ["lockstep", "model.txt"]);
    let mut ours = server.artifacts(run_id, "lockstep");
    ours.sort();
    assert_eq!(ours, ["lockstep/record.json", "lockstep/stderr.log", "lockstep/stdout.log"]);
    let uploaded: Value = serde_json::from_str(&server.artifact(exp, run_id, "lockstep/record.json")).unwrap();
    assert_eq!(uploaded, r, "the uploaded record is the final local one");
    assert!(server.artifact(exp, run_id, "lockstep/stdout.log").contains("ACTIVE="));
    let secrets = fs::read_to_string(ctx.store().join("runs").join(r["run_id"].as_str().unwrap()).join("record.json"));
    assert!(!secrets.unwrap().contains("tok3n"), "no credential in the record");

    // An experiment id instead: the same experiment; both at once: an error, and no run.
    lockstep(&ctx)
        .env("MLFLOW_TRACKING_URI", server.uri())
        .env("MLFLOW_EXPERIMENT_ID", exp)
        .args(["run", "repo/proj"])
        .assert()
        .success();
    assert_eq!(server.runs(exp).len(), 2);
    let out = lockstep(&ctx)
        .env("MLFLOW_TRACKING_URI", server.uri())
        .args(["run", "repo/proj", "--experiment-name", "demo", "--experiment-id", exp])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(stderr(&out).contains("both an experiment name ('demo') and an experiment id"), "{}", stderr(&out));
    assert_eq!(ctx.records().len(), 2, "no run for bad input");
    let out = lockstep(&ctx)
        .env("MLFLOW_TRACKING_URI", server.uri())
        .args(["run", "repo/proj", "--experiment-id", "424242"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(stderr(&out).contains("no experiment with id '424242'"), "{}", stderr(&out));
    assert_eq!(ctx.records().len(), 2, "no run for an unknown experiment");
}

#[test]
fn failed_and_killed_runs_end_failed_and_killed_on_the_server() {
    let ctx = TestContext::new();
    let server = MlflowServer::start_with(&["--no-serve-artifacts"], &[]);
    ctx.project("fails", &[("MLproject", "entry_points:\n  main:\n    command: 'echo bad >&2; exit 3'\n")]);
    let out = lockstep(&ctx)
        .env("MLFLOW_TRACKING_URI", server.uri())
        .args(["run", "fails"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    assert!(
        stderr(&out).contains("warning: the MLflow server does not serve artifacts"),
        "one warning for the artifacts: {}",
        stderr(&out)
    );
    let r = ctx.only_record();
    assert_eq!(r["tracking"]["synced"], true, "everything else was sent");
    let run = server.run(r["tracking"]["run_id"].as_str().unwrap());
    assert_eq!(run.info("status"), "FAILED");
    assert_eq!(run.tag("lockstep.exit_code").as_deref(), Some("3"));
    assert_eq!(r["tracking"]["experiment_id"], "0", "the default experiment");
    assert_eq!(r["experiment_name"], "Default");

    let manifest = "entry_points:\n  main:\n    command: \"echo $$ > pid.tmp; mv pid.tmp pid; sleep 60\"\n";
    ctx.project("sleeps", &[("MLproject", manifest)]);
    let mut runner = lockstep_process(&ctx)
        .env("MLFLOW_TRACKING_URI", server.uri())
        .args(["run", "sleeps"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(Duration::from_secs(60), || ctx.work.join("sleeps/pid").exists()), "the entry point started");
    unsafe { libc::kill(runner.id() as i32, libc::SIGINT) };
    assert_eq!(runner.wait().unwrap().code(), Some(130));
    let r = ctx.records().pop().unwrap();
    assert_eq!(r["status"], "KILLED");
    let run = server.run(r["tracking"]["run_id"].as_str().unwrap());
    assert_eq!(run.info("status"), "KILLED");
    assert_eq!(run.info("end_time"), &r["end_time"]);
}

#[test]
fn a_server_lost_during_the_run_is_completed_by_sync() {
    let ctx = TestContext::new();
    let mut server = MlflowServer::start();
    let script = "import mlflow, os, time\nmlflow.log_metric('m', 1.0)\nopen('started', 'w').close()\nwhile not os.path.exists('go'):\n    time.sleep(0.05)\n";
    ctx.project("p", &[("MLproject", "entry_points:\n  main:\n    command: 'python wait.py'\n"), ("wait.py", script)]);
    let runner = lockstep_process(&ctx)
        .env("MLFLOW_TRACKING_URI", server.uri())
        .args(["run", "p", "--experiment-name", "lost"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_for(Duration::from_secs(180), || ctx.work.join("p/started").exists()), "the entry point started");
    server.stop();
    fs::write(ctx.work.join("p/go"), "").unwrap();
    let out = runner.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "the run goes on: {}", stderr(&out));
    assert!(stderr(&out).contains("status FINISHED not sent"), "a warning says what is missing: {}", stderr(&out));
    assert!(stderr(&out).contains("lockstep sync"), "{}", stderr(&out));
    let r = ctx.only_record();
    assert_eq!(r["status"], "FINISHED", "the local record is complete");
    assert_eq!(r["tracking"]["synced"], false);
    let id = r["run_id"].as_str().unwrap();
    let show = ctx.lockstep().args(["show", id]).assert().success().get_output().stdout.clone();
    assert!(String::from_utf8_lossy(&show).contains("not synced"));

    // Sync against a server that is still down: a clear error, nothing lost.
    let out = lockstep(&ctx).args(["sync", id]).assert().code(2).get_output().clone();
    assert!(stderr(&out).contains("cannot reach the MLflow server"), "{}", stderr(&out));

    server.restart();
    let (exp, run_id) = (r["tracking"]["experiment_id"].as_str().unwrap(), r["tracking"]["run_id"].as_str().unwrap());
    assert_eq!(server.run(run_id).info("status"), "RUNNING", "the server still shows the run as running");
    for _ in 0..2 {
        let out = lockstep(&ctx).args(["sync", &id[..8]]).assert().success().get_output().clone();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("{}/#/experiments/{exp}/runs/{run_id}", server.uri())
        );
        assert_eq!(server.runs(exp).len(), 1, "sync completes the same run, never a new one");
        let run = server.run(run_id);
        assert_eq!(run.info("status"), "FINISHED");
        assert_eq!(run.info("end_time"), &r["end_time"]);
        assert_eq!(run.metric("m"), Some(1.0));
        assert!(server.artifacts(run_id, "lockstep").contains(&"lockstep/record.json".to_string()));
        assert_eq!(ctx.only_record()["tracking"]["synced"], true);
    }

    // A run made without a server is sent by sync, once.
    ctx.project("q", &[("MLproject", "entry_points:\n  main:\n    command: 'true'\n")]);
    ctx.lockstep().args(["run", "q", "--experiment-name", "later"]).assert().success();
    let local = ctx.records().pop().unwrap();
    assert_eq!(local["tracking"], Value::Null);
    let qid = local["run_id"].as_str().unwrap();
    let out = lockstep(&ctx).args(["sync", qid]).assert().code(2).get_output().clone();
    assert!(stderr(&out).contains("was not recorded on a tracking server, and none is given"), "{}", stderr(&out));
    for _ in 0..2 {
        lockstep(&ctx).env("MLFLOW_TRACKING_URI", server.uri()).args(["sync", qid]).assert().success();
    }
    let later = server.get("experiments/get-by-name", &[("experiment_name", "later")]);
    let later_id = later["experiment"]["experiment_id"].as_str().unwrap();
    let runs = server.runs(later_id);
    assert_eq!(runs.len(), 1, "one run however often it is synced");
    let run = server.run(runs[0]["info"]["run_id"].as_str().unwrap());
    assert_eq!(run.info("status"), "FINISHED");
    assert_eq!(run.info("start_time"), &local["start_time"]);
    assert_eq!(run.tag("lockstep.run_id").as_deref(), Some(qid));
}

#[test]
fn credentials_are_checked_and_never_shown() {
    let ctx = TestContext::new();
    let password = "admin-password-42";
    let server = MlflowServer::start_with(
        &["--app-name", "basic-auth"],
        &[("MLFLOW_FLASK_SERVER_SECRET_KEY", "test-secret"), ("MLFLOW_AUTH_ADMIN_PASSWORD", password)],
    );
    let script = "import mlflow\nmlflow.log_metric('auc', 0.9)\n";
    ctx.project("p", &[("MLproject", "entry_points:\n  main:\n    command: 'python log.py'\n"), ("log.py", script)]);
    for (name, value) in [("MLFLOW_TRACKING_TOKEN", "bad-token-9876"), ("MLFLOW_TRACKING_PASSWORD", "wrong-pass-9876")]
    {
        let out = lockstep(&ctx)
            .env("MLFLOW_TRACKING_URI", server.uri())
            .env("MLFLOW_TRACKING_USERNAME", "admin")
            .env(name, value)
            .args(["run", "p"])
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = stderr(&out);
        assert!(err.contains(&format!("the MLflow server at {} refused the request (401)", server.uri())), "{err}");
        assert!(err.contains("hint: set MLFLOW_TRACKING_TOKEN"), "{err}");
        assert!(!err.contains("9876"), "no credential in messages: {err}");
        ctx.assert_no_runs();
    }
    // The right credentials, given in the URI: the run and the script's logging both get in.
    let uri = format!("http://admin:{password}@127.0.0.1:{}", server.port);
    let out =
        lockstep(&ctx).env("MLFLOW_TRACKING_URI", &uri).args(["run", "p"]).assert().success().get_output().clone();
    assert!(!stderr(&out).contains(password), "{}", stderr(&out));
    let r = ctx.only_record();
    assert_eq!(r["tracking"]["uri"], server.uri(), "recorded without credentials");
    let run_dir = ctx.store().join("runs").join(r["run_id"].as_str().unwrap());
    for file in ["record.json", "stdout.log", "stderr.log"] {
        assert!(!fs::read_to_string(run_dir.join(file)).unwrap().contains(password), "no credential in {file}");
    }
    let resp = ureq::get(format!("{}/api/2.0/mlflow/runs/get", server.uri()))
        .query("run_id", r["tracking"]["run_id"].as_str().unwrap())
        .header("Authorization", format!("Basic {}", base64_of(&format!("admin:{password}"))))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let run = ServerRun(serde_json::from_str::<Value>(&resp).unwrap()["run"].clone());
    assert_eq!(run.info("status"), "FINISHED");
    assert_eq!(run.metric("auc"), Some(0.9));
}

#[test]
fn a_server_that_cannot_be_used_stops_the_run_before_it_starts() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", "entry_points:\n  main:\n    command: 'touch ran'\n")]);
    let port = free_port();
    let out = lockstep(&ctx)
        .env("MLFLOW_TRACKING_URI", format!("http://user:hunter2@127.0.0.1:{port}"))
        .args(["run", "p"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = stderr(&out);
    assert!(err.starts_with(&format!("error: cannot reach the MLflow server at http://127.0.0.1:{port}")), "{err}");
    assert!(err.contains("hint: check that the server runs"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(!ctx.work.join("p/ran").exists(), "nothing ran");
    ctx.assert_no_runs();
    let help = ctx
        .lockstep()
        .env("MLFLOW_TRACKING_URI", format!("http://user:hunter2@127.0.0.1:{port}"))
        .args(["run", "--help"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(!String::from_utf8_lossy(&help).contains("hunter2"), "help shows no variable's value");

    for uri in ["sqlite:///mlflow.db", "./mlruns", "file:///tmp/mlruns"] {
        let out =
            ctx.lockstep().env("MLFLOW_TRACKING_URI", uri).args(["run", "p"]).assert().code(2).get_output().clone();
        let err = stderr(&out);
        assert!(err.contains(&format!("tracking URI '{uri}' is not an MLflow server")), "{err}");
        assert!(err.contains(&format!("hint: serve it with `mlflow server --backend-store-uri {uri}`")), "{err}");
    }
    let out = ctx.lockstep().args(["run", "p", "--tracking-uri", "databricks"]).assert().code(2).get_output().clone();
    assert!(stderr(&out).contains("is a Databricks workspace"), "{}", stderr(&out));
    assert!(!ctx.work.join("p/ran").exists(), "nothing ran");
    ctx.assert_no_runs();
}

#[test]
fn the_tracking_example_trains_and_logs_on_the_server() {
    let ctx = TestContext::new();
    let server = MlflowServer::start();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mlflow-tracking");
    lockstep(&ctx)
        .env("MLFLOW_TRACKING_URI", server.uri())
        .arg("run")
        .arg(&example)
        .args(["--isolated", "-P", "alpha=0.1", "-P", "l1_ratio=0.2", "--experiment-name", "elasticnet"])
        .assert()
        .success();
    let r = ctx.only_record();
    let run = server.run(r["tracking"]["run_id"].as_str().unwrap());
    assert_eq!(run.info("status"), "FINISHED");
    assert_eq!(run.param("alpha").as_deref(), Some("0.1"));
    assert_eq!(run.param("l1_ratio").as_deref(), Some("0.2"));
    for metric in ["rmse", "r2", "mae"] {
        assert!(run.metric(metric).is_some_and(f64::is_finite), "metric {metric}");
    }
    assert!(server.artifacts(r["tracking"]["run_id"].as_str().unwrap(), "").contains(&"model".to_string()));
}

#[test]
fn tls_servers_are_trusted_through_a_ca_file_or_insecure_tls() {
    let ctx = TestContext::new();
    let dir = tempfile::Builder::new().prefix("mlflow-server-").tempdir().unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir.path()).output().expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    // A CA, and a certificate for 127.0.0.1 that it signed.
    openssl(
        &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", "ca.key", "-out", "ca.pem"]
            .iter()
            .chain(&["-subj", "/CN=lockstep test CA"])
            .copied()
            .collect::<Vec<_>>(),
    );
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    fs::write(dir.path().join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    openssl(
        &["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"]
            .iter()
            .chain(&["-out", "server.pem", "-days", "2", "-extfile", "ext.cnf"])
            .copied()
            .collect::<Vec<_>>(),
    );
    let ca = dir.path().join("ca.pem");
    let ssl = format!(
        "--ssl-keyfile {} --ssl-certfile {}",
        dir.path().join("server.key").display(),
        dir.path().join("server.pem").display()
    );
    let server = MlflowServer::start_in(dir, &["--uvicorn-opts", &ssl], &[]);
    assert!(server.uri().starts_with("https://"));
    ctx.project("p", &[("MLproject", "entry_points:\n  main:\n    command: 'true'\n")]);

    let out = lockstep(&ctx)
        .env("MLFLOW_TRACKING_URI", server.uri())
        .args(["run", "p"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = stderr(&out);
    assert!(err.contains("certificate"), "{err}");
    assert!(err.contains("hint: set MLFLOW_TRACKING_SERVER_CERT_PATH"), "{err}");
    ctx.assert_no_runs();

    let out = lockstep(&ctx)
        .env("MLFLOW_TRACKING_URI", server.uri())
        .env("MLFLOW_TRACKING_SERVER_CERT_PATH", ctx.work.join("missing.pem"))
        .args(["run", "p"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(stderr(&out).contains("MLFLOW_TRACKING_SERVER_CERT_PATH="), "{}", stderr(&out));
    ctx.assert_no_runs();

    for (name, value) in [
        ("MLFLOW_TRACKING_SERVER_CERT_PATH", ca.display().to_string()),
        ("MLFLOW_TRACKING_INSECURE_TLS", "true".into()),
    ] {
        lockstep(&ctx).env("MLFLOW_TRACKING_URI", server.uri()).env(name, value).args(["run", "p"]).assert().success();
        let r = ctx.records().pop().unwrap();
        assert_eq!(server.run(r["tracking"]["run_id"].as_str().unwrap()).info("status"), "FINISHED", "{name}");
    }
}

#[test]
fn a_container_reaches_a_server_on_the_hosts_loopback() {
    let Some(images) = crate::support::docker::images() else { return };
    let ctx = TestContext::new();
    let server = MlflowServer::start();
    let command = "wget -q -O run.json \"$MLFLOW_TRACKING_URI/api/2.0/mlflow/runs/get?run_id=$MLFLOW_RUN_ID\"";
    crate::support::docker::docker_project(&ctx, "boxed", &images.busybox, "", command);
    let out = lockstep(&ctx)
        .args(["run", "boxed", "--tracking-uri", &server.uri(), "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let record = json(&out);
    let server_run_id = record["tracking"]["run_id"].as_str().unwrap();
    let fetched = std::path::Path::new(record["outputs_dir"].as_str().unwrap()).join("run.json");
    let fetched: Value = serde_json::from_slice(&std::fs::read(fetched).unwrap()).unwrap();
    assert_eq!(fetched["run"]["info"]["run_id"], server_run_id, "the container asked the server for its own run");
    let run = server.run(server_run_id);
    assert_eq!(run.info("status"), "FINISHED");
    assert_eq!(run.tag("mlflow.project.env").as_deref(), Some("docker"));
    assert_eq!(run.tag("mlflow.docker.image.id").as_deref(), record["environment"]["image_id"].as_str());
}
