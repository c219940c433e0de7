//! `run --backend ray` against a real Ray head on 127.0.0.1: a job that finishes and one that
//! fails with its exit code, Ctrl-C (KILLED, 130, the job stopped and its processes gone),
//! `--detach` with `show`, `runs` and `cancel`, a python_env project built on the worker, and
//! configs refused before anything reaches a cluster.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use lockstep::backends::ray::{JobStatus, JobsClient};
use serde_json::{Value, json};

use crate::support::ray::RayHead;
use crate::support::*;

fn project(ctx: &TestContext, command: &str) {
    let manifest = format!("name: onray\nentry_points:\n  main:\n    command: \"{command}\"\n");
    ctx.project("p", &[("MLproject", &manifest), ("data.txt", "input\n")]);
}

/// `lockstep run p --backend ray -c CONFIG ARGS` against `head`.
fn run<'a>(ctx: &'a TestContext, head: &RayHead, extra: Value, args: &[&str]) -> Cmd<'a> {
    ctx.run(["run", "p", "--backend", "ray", "--backend-config", &head.config(extra)])
        .args(args)
        .timeout(Duration::from_secs(240))
}

fn job_id(record: &Value) -> String {
    record["backend"]["job_id"].as_str().unwrap().to_string()
}

/// The only record, once its job runs on the worker.
fn wait_running(ctx: &TestContext) -> Value {
    let up = wait_for(Duration::from_secs(120), || {
        ctx.records().first().is_some_and(|r| r["backend"]["nodes"] == "127.0.0.1")
    });
    assert!(up, "the job runs on the worker: {:?}", ctx.records());
    ctx.only_record()
}

#[test]
fn a_job_that_finishes_or_fails_is_recorded_with_its_job_worker_tree_and_exit_code() {
    let head = RayHead::start();
    let ctx = TestContext::new();
    project(&ctx, "echo hello from ray; cat data.txt > out.txt");
    let meta = json!({"metadata": {"team": "t1"}, "entrypoint_num_cpus": 1});
    let out = run(&ctx, &head, meta, &["--json"]).success();
    assert!(out.stderr_text().contains("hello from ray"), "the job's log is streamed: {}", out.stderr_text());
    let r = out.json();
    assert_eq!((r["status"].as_str(), r["exit_code"].as_i64()), (Some("FINISHED"), Some(0)), "{r}");
    assert_eq!(r["backend"]["name"], "ray");
    assert_eq!(r["backend"]["nodes"], "127.0.0.1");
    let job = job_id(&r);
    assert_eq!(job, format!("lockstep-{}", r["run_id"].as_str().unwrap()));
    let tree = ctx.run(["hash", "p"]).success().stdout_text();
    assert_eq!(r["source"]["tree_sha256"], tree.trim(), "the local record holds the project's tree hash");
    let out_txt = r["outputs"].as_array().unwrap().iter().find(|o| o["path"] == "out.txt").cloned();
    assert_eq!(out_txt.expect("out.txt is an output")["sha256"], sha256_hex(b"input\n"), "from the remote record");
    let local = ctx.store().join("runs").join(r["run_id"].as_str().unwrap());
    let log = fs::read_to_string(local.join("stdout.log")).unwrap();
    assert!(log.contains("hello from ray\n") && !log.contains("lockstep-record-"), "the run's output only: {log}");
    assert!(!ctx.work.join("p/out.txt").exists(), "the job ran on its own copy, not in place");
    let remote = head.home().join(".lockstep-ray/runs").join(r["run_id"].as_str().unwrap()).join("record.json");
    let remote: Value = serde_json::from_slice(&fs::read(remote).unwrap()).unwrap();
    assert_eq!(remote["run_id"], r["run_id"], "the remote record has the local run's id");

    let client = JobsClient::new(&head.address()).unwrap();
    let info = client.job(&job).unwrap().expect("the cluster knows the job");
    assert_eq!(info.status, JobStatus::Succeeded);

    project(&ctx, "echo failing; exit 3");
    run(&ctx, &head, json!({}), &[]).status(3).stdout_has("failing");
    let failed = ctx.records().into_iter().find(|r| r["status"] == "FAILED").expect("a FAILED run");
    assert_eq!(failed["exit_code"], 3);
}

#[test]
fn ctrl_c_stops_the_job_and_a_detached_run_is_followed_and_cancelled() {
    let head = RayHead::start();
    let ctx = TestContext::new();
    project(&ctx, "sleep 497");
    let mut runner = ctx
        .lockstep_process()
        .args(["run", "p", "-b", "ray", "-c", &head.config(json!({}))])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let r = wait_running(&ctx);
    assert!(wait_for(Duration::from_secs(30), || !head.processes_with("sleep 497").is_empty()), "the job's sleep runs");
    unsafe { libc::kill(runner.id() as i32, libc::SIGINT) };
    assert_eq!(runner.wait().unwrap().code(), Some(130));
    assert_eq!(ctx.only_record()["status"], "KILLED");
    let client = JobsClient::new(&head.address()).unwrap();
    let stopped = wait_for(Duration::from_secs(30), || {
        client.job(&job_id(&r)).unwrap().is_some_and(|i| i.status == JobStatus::Stopped)
    });
    assert!(stopped, "the cluster stopped the job: {:?}", client.job(&job_id(&r)));
    assert!(wait_for(Duration::from_secs(20), || head.processes_with("sleep 497").is_empty()), "its process is gone");

    project(&ctx, "sleep 498");
    let out = run(&ctx, &head, json!({}), &["--detach"]).success();
    let (run_id, job) = out.stdout_text().trim().split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())).unwrap();
    assert_eq!(job, format!("lockstep-{run_id}"));
    let running = wait_for(Duration::from_secs(120), || {
        client.job(&job).unwrap().is_some_and(|i| i.status == JobStatus::Running)
    });
    assert!(running, "the detached job runs: {:?}", client.job(&job));
    ctx.run(["runs", "--status", "running"]).success().stdout_has(&run_id[..12]);
    ctx.run(["cancel", &run_id]).success().stderr_has("KILLED");
    assert_eq!(ctx.run(["show", &run_id, "--json"]).success().json()["status"], "KILLED");
    assert!(wait_for(Duration::from_secs(20), || head.processes_with("sleep 498").is_empty()), "its process is gone");

    project(&ctx, "echo quick");
    let out = run(&ctx, &head, json!({}), &["--detach"]).success();
    let quick = out.stdout_text().split(' ').next().unwrap().to_string();
    let finished = wait_for(Duration::from_secs(120), || {
        ctx.run(["show", &quick, "--json"]).success().json()["status"] == "FINISHED"
    });
    assert!(finished, "show refreshes the run from Ray: {:?}", ctx.records());
    let log = fs::read_to_string(ctx.store().join("runs").join(&quick).join("stdout.log")).unwrap();
    assert!(log.contains("quick\n"), "the job's log is collected on refresh: {log}");
}

#[test]
fn a_python_env_project_is_built_on_the_worker() {
    let head = RayHead::start();
    let ctx = TestContext::new();
    let python = std::process::Command::new("python3")
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .unwrap();
    let python = String::from_utf8(python.stdout).unwrap();
    let manifest = "name: pyenv\npython_env: python_env.yaml\nentry_points:\n  main:\n    command: \"python -c 'import sys; print(sys.prefix)'\"\n";
    ctx.project(
        "p",
        &[("MLproject", manifest), ("python_env.yaml", &format!("python: \"{}\"\ndependencies: []\n", python.trim()))],
    );
    // The runtime environment is the user's too: its variables reach the job.
    let env = json!({"runtime_env": {"env_vars": {"UV_OFFLINE": "1"}}});
    let r = run(&ctx, &head, env, &["--json"]).success().json();
    assert_eq!(r["status"], "FINISHED", "{r}");
    assert_eq!(r["environment"]["manager"], "virtualenv", "the lock as built on the worker: {r}");
    let key = r["environment"]["key"].as_str().unwrap();
    assert!(head.home().join(".cache/lockstep/envs-v1").join(key).is_dir(), "built into the worker's cache");
    assert!(!ctx.cache.join("envs-v1").join(key).exists(), "not here");
    let log =
        fs::read_to_string(ctx.store().join("runs").join(r["run_id"].as_str().unwrap()).join("stdout.log")).unwrap();
    assert!(log.contains(&format!("envs-v1/{key}")), "the job ran in it: {log}");
}

#[test]
fn bad_ray_configs_and_addresses_are_refused_before_anything_is_submitted() {
    let ctx = TestContext::new();
    project(&ctx, "true");
    let port = free_port();
    let refused = |config: &str, words: &str| {
        ctx.run(["run", "p", "-b", "ray", "-c", config]).user_error(words);
    };
    refused(r#"{"adress": "h:1"}"#, "unknown field `adress`");
    refused("{}", "no Ray address: the backend config has no 'address' and RAY_ADDRESS is not set");
    refused(r#"{"address": "ray://h:10001"}"#, "ray:// is the Ray Client's address");
    refused(r#"{"address": "h:1", "entrypoint_resources": {"GPU": 1}}"#, "one of Ray's own resources");
    refused(r#"{"address": "h:1", "runtime_env": {"working_dir": "."}}"#, "'working_dir' is lockstep's");
    refused(
        &format!(r#"{{"address": "127.0.0.1:{port}"}}"#),
        &format!("cannot reach the Ray dashboard at http://127.0.0.1:{port}"),
    );
    ctx.run(["run", "p", "-b", "ray"])
        .env("RAY_ADDRESS", format!("http://127.0.0.1:{port}"))
        .user_error("cannot reach the Ray dashboard")
        .hint("is the cluster up with its dashboard?");
}
