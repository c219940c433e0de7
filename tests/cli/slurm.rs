//! `run --backend slurm` against a real Slurm controller and node daemon on 127.0.0.1: a job
//! that finishes, one that fails with its exit code, Ctrl-C, `--detach` with `runs`, `show`
//! and `cancel`, a python_env project built on the node, a bad partition, and a controller
//! stopped (or restarted without its state) mid-job.

use std::fs;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::slurm::{NODE, SlurmCluster, available};
use crate::support::*;

fn project(ctx: &TestContext, command: &str) {
    let manifest = format!("name: onslurm\nentry_points:\n  main:\n    command: \"{command}\"\n");
    ctx.project("p", &[("MLproject", &manifest), ("data.txt", "input\n")]);
}

/// `lockstep run p --backend slurm -c CONFIG ARGS` against `cluster`.
fn run<'a>(ctx: &'a TestContext, cluster: &SlurmCluster, args: &[&str]) -> Cmd<'a> {
    ctx.run(["run", "p", "--backend", "slurm", "--backend-config", &cluster.config(json!({}))])
        .args(args)
        .env("SLURM_CONF", &cluster.conf)
        .timeout(Duration::from_secs(120))
}

/// `lockstep ARGS` against `cluster` (`runs`, `show` and `cancel` ask it about the job).
fn on<'a>(ctx: &'a TestContext, cluster: &SlurmCluster, args: &[&str]) -> Cmd<'a> {
    ctx.run(args).env("SLURM_CONF", &cluster.conf).timeout(Duration::from_secs(60))
}

/// The same as a process, for signals and for watching it while it runs.
fn spawn(ctx: &TestContext, cluster: &SlurmCluster) -> Child {
    ctx.lockstep_process()
        .args(["run", "p", "-b", "slurm", "-c", &cluster.config(json!({}))])
        .env("SLURM_CONF", &cluster.conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The only record, once its job runs on the node.
fn wait_running(ctx: &TestContext) -> Value {
    let up = wait_for(Duration::from_secs(60), || ctx.records().first().is_some_and(|r| r["backend"]["nodes"] == NODE));
    assert!(up, "the job runs on the node: {:?}", ctx.records());
    ctx.only_record()
}

fn job_id(record: &Value) -> String {
    record["backend"]["job_id"].as_str().unwrap().to_string()
}

/// The remote run's directory in the staging store.
fn remote_run(cluster: &SlurmCluster, record: &Value) -> std::path::PathBuf {
    cluster.staging.join("store/runs").join(record["run_id"].as_str().unwrap())
}

#[test]
fn a_job_that_finishes_is_recorded_with_its_job_node_tree_and_outputs() {
    if !available() {
        return;
    }
    let cluster = SlurmCluster::start();
    let ctx = TestContext::new();
    project(&ctx, "echo hello from the node; cat data.txt > out.txt");
    let out = run(&ctx, &cluster, &["--json"]).success();
    assert!(out.stderr_text().contains("hello from the node"), "the job's log is streamed: {}", out.stderr_text());
    let r = out.json();
    assert_eq!(r["status"], "FINISHED");
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["backend"]["name"], "slurm");
    assert_eq!(r["backend"]["nodes"], NODE);
    assert!(job_id(&r).parse::<u64>().is_ok(), "{r}");
    let tree = ctx.run(["hash", "p"]).success().stdout_text();
    assert_eq!(r["source"]["tree_sha256"], tree.trim(), "the local record holds the project's tree hash");
    let outputs = r["outputs"].as_array().unwrap();
    let out_txt = outputs.iter().find(|o| o["path"] == "out.txt").expect("out.txt is an output");
    assert_eq!(out_txt["sha256"], sha256_hex(b"input\n"));
    let local = ctx.store().join("runs").join(r["run_id"].as_str().unwrap());
    assert_eq!(fs::read_to_string(local.join("outputs/out.txt")).unwrap(), "input\n", "outputs are collected");
    assert!(fs::read_to_string(local.join("stdout.log")).unwrap().contains("hello from the node"));
    assert_eq!(r["outputs_dir"], local.join("outputs").display().to_string());
    assert!(!ctx.work.join("p/out.txt").exists(), "the job ran on its own copy, not in place");
    let remote: Value =
        serde_json::from_slice(&fs::read(remote_run(&cluster, &r).join("record.json")).unwrap()).unwrap();
    assert_eq!(remote["run_id"], r["run_id"], "the remote record has the local run's id");
    let archives = fs::read_dir(cluster.staging.join("archives")).unwrap().count();
    run(&ctx, &cluster, &[]).success();
    assert_eq!(fs::read_dir(cluster.staging.join("archives")).unwrap().count(), archives, "staged once per tree");
}

#[test]
fn a_job_that_fails_gives_its_exit_code() {
    if !available() {
        return;
    }
    let cluster = SlurmCluster::start();
    let ctx = TestContext::new();
    project(&ctx, "echo failing; exit 3");
    run(&ctx, &cluster, &[]).status(3).stdout_has("failing");
    let r = ctx.only_record();
    assert_eq!((r["status"].as_str(), r["exit_code"].as_i64()), (Some("FAILED"), Some(3)));
}

#[test]
fn ctrl_c_cancels_the_job_records_killed_and_exits_130() {
    if !available() {
        return;
    }
    let cluster = SlurmCluster::start();
    let ctx = TestContext::new();
    project(&ctx, "sleep 397");
    let mut runner = spawn(&ctx, &cluster);
    let r = wait_running(&ctx);
    assert!(wait_for(Duration::from_secs(20), || !processes_with("sleep 397").is_empty()), "the job's sleep runs");
    unsafe { libc::kill(runner.id() as i32, libc::SIGINT) };
    assert_eq!(runner.wait().unwrap().code(), Some(130));
    let end = ctx.only_record();
    assert_eq!(end["status"], "KILLED");
    let gone = wait_for(Duration::from_secs(20), || {
        !matches!(cluster.job_state(&job_id(&r)).as_deref(), Some("RUNNING" | "PENDING" | "COMPLETING"))
    });
    assert!(gone, "the job is no longer running: {:?}", cluster.job_state(&job_id(&r)));
    assert!(wait_for(Duration::from_secs(10), || processes_with("sleep 397").is_empty()), "its process is gone");
}

#[test]
fn a_detached_run_is_followed_by_runs_and_show_and_stopped_by_cancel() {
    if !available() {
        return;
    }
    let cluster = SlurmCluster::start();
    let ctx = TestContext::new();
    project(&ctx, "echo quick");
    let out = run(&ctx, &cluster, &["--detach"]).success();
    let printed = out.stdout_text();
    let (run_id, job) = printed.trim().split_once(' ').expect("the run id and the job id");
    assert_eq!(ctx.only_record()["backend"]["job_id"], job);
    let finished = wait_for(Duration::from_secs(60), || {
        on(&ctx, &cluster, &["show", run_id, "--json"]).success().json()["status"] == "FINISHED"
    });
    assert!(finished, "show refreshes the run from Slurm: {}", ctx.only_record());
    let log = ctx.store().join("runs").join(run_id).join("stdout.log");
    assert_eq!(fs::read_to_string(log).unwrap(), "quick\n", "the remote run's files are collected on refresh");

    project(&ctx, "sleep 398");
    let out = run(&ctx, &cluster, &["--detach"]).success();
    let (long_run, long_job) =
        out.stdout_text().trim().split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())).unwrap();
    let running = wait_for(Duration::from_secs(30), || cluster.job_state(&long_job).as_deref() == Some("RUNNING"));
    assert!(running, "the long job runs");
    on(&ctx, &cluster, &["runs", "--status", "running"]).success().stdout_has(&long_run[..12]);
    on(&ctx, &cluster, &["cancel", &long_run]).success().stderr_has("KILLED");
    let r = on(&ctx, &cluster, &["show", &long_run, "--json"]).success().json();
    assert_eq!(r["status"], "KILLED");
    assert!(wait_for(Duration::from_secs(10), || processes_with("sleep 398").is_empty()), "its process is gone");
    on(&ctx, &cluster, &["cancel", run_id]).success().stderr_has("FINISHED");

    // An attached run cancelled from another shell: its runner records the end.
    project(&ctx, "sleep 396");
    let mut runner = spawn(&ctx, &cluster);
    let started = wait_for(Duration::from_secs(60), || {
        ctx.records().iter().any(|r| r["status"] == "RUNNING" && r["backend"]["nodes"] == NODE)
    });
    assert!(started, "the attached job runs");
    let attached = ctx.records().into_iter().find(|r| r["status"] == "RUNNING").unwrap();
    let id = attached["run_id"].as_str().unwrap();
    on(&ctx, &cluster, &["cancel", id]).success().stderr_has("KILLED");
    assert_eq!(runner.wait().unwrap().code(), Some(143), "the job's SIGTERM, as the far side recorded it");
}

#[test]
fn a_python_env_project_is_built_on_the_node() {
    if !available() {
        return;
    }
    let cluster = SlurmCluster::start();
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
    let r = run(&ctx, &cluster, &["--json"]).env("PATH", uv::path_with_uv()).env("UV_OFFLINE", "1").success().json();
    assert_eq!(r["status"], "FINISHED");
    assert_eq!(r["environment"]["manager"], "virtualenv", "the lock as built on the node: {r}");
    let key = r["environment"]["key"].as_str().unwrap();
    assert!(ctx.cache.join("envs-v1").join(key).is_dir(), "built into the node's cache");
    let log = fs::read_to_string(ctx.store().join("runs").join(r["run_id"].as_str().unwrap()).join("job.log")).unwrap();
    assert!(log.contains(&format!("envs-v1/{key}")), "the job ran in it: {log}");
}

#[test]
fn a_bad_partition_is_refused_and_leaves_no_run() {
    if !available() {
        return;
    }
    let cluster = SlurmCluster::start();
    let ctx = TestContext::new();
    project(&ctx, "true");
    ctx.run(["run", "p", "-b", "slurm", "-c", &cluster.config(json!({"partition": "nope"}))])
        .env("SLURM_CONF", &cluster.conf)
        .user_error("slurm refused the job: sbatch: error: invalid partition specified: nope");
    assert!(cluster.tool("squeue", &["-h"]).trim().is_empty(), "nothing reached the queue");
    ctx.run(["run", "p", "-b", "slurm", "-c", r#"{"partitio": "x"}"#]).user_error("unknown field `partitio`");
    ctx.run(["run", "p", "-c", "{}"]).user_error("--backend-config is given, but the local backend takes no config");
}

#[test]
fn a_stopped_controller_suspends_the_run_until_it_answers_again() {
    if !available() {
        return;
    }
    let mut cluster = SlurmCluster::start();
    let ctx = TestContext::new();
    project(&ctx, "sleep 2; echo done > done.txt");
    let mut runner = spawn(&ctx, &cluster);
    let r = wait_running(&ctx);
    cluster.stop_controller();
    let remote = remote_run(&cluster, &r);
    let ended_remotely = wait_for(Duration::from_secs(30), || {
        fs::read(remote.join("record.json"))
            .is_ok_and(|b| serde_json::from_slice::<Value>(&b).unwrap()["status"] == "FINISHED")
    });
    assert!(ended_remotely, "the job ran on without its controller");
    std::thread::sleep(Duration::from_secs(2));
    assert!(runner.try_wait().unwrap().is_none(), "lockstep polls on while the controller is down");
    assert_eq!(ctx.only_record()["status"], "RUNNING", "never FINISHED on a scheduler's silence");
    cluster.start_controller(false);
    assert_eq!(runner.wait().unwrap().code(), Some(0), "polling resumed and found the job's end");
    assert_eq!(ctx.only_record()["status"], "FINISHED");
}

#[test]
fn a_job_the_controller_forgot_without_a_record_of_its_end_is_lost() {
    if !available() {
        return;
    }
    let mut cluster = SlurmCluster::start();
    let ctx = TestContext::new();
    project(&ctx, "sleep 399");
    let mut runner = spawn(&ctx, &cluster);
    let r = wait_running(&ctx);
    cluster.stop_controller();
    // The far side dies without a word (as on a node that lost power), and the controller
    // comes back without its state.
    let run_id = r["run_id"].as_str().unwrap();
    for pid in pids_with(&format!("--lockstep-run-id {run_id}")).into_iter().chain(pids_with("sleep 399")) {
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    cluster.start_controller(true);
    assert_eq!(runner.wait().unwrap().code(), Some(1));
    let end = ctx.only_record();
    assert_eq!(end["status"], "LOST", "{end}");
    assert!(end["failure"].as_str().unwrap().starts_with("lost"), "{end}");
}

/// The pids of processes whose command line contains `needle` (this test's own only: the
/// needle holds a run id or a number no other test uses).
fn pids_with(needle: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(needle)
            && pid != std::process::id() as i32
        {
            found.push(pid);
        }
    }
    found
}

#[test]
fn backend_flags_are_checked_before_anything_runs() {
    let ctx = TestContext::new();
    project(&ctx, "true");
    ctx.run(["run", "p", "--detach"]).user_error("--detach cannot be used with --backend local");
    ctx.run(["run", "p", "-b", "slurm", "--reuse"]).user_error("--reuse cannot be used with --backend slurm");
    ctx.run(["run", "p", "-b", "slurm"]).user_error("staging_dir is missing");
    ctx.run(["run", "p", "-b", "slurm", "-c", r#"{"staging_dir": "rel"}"#]).user_error("must be an absolute path");
    ctx.run(["run", "p", "-b", "slurm", "-c", "missing.json"]).user_error("cannot read the backend config");
    let config = format!(r#"{{"staging_dir": "{}", "environment": {{"A B": "1"}}}}"#, ctx.work.display());
    ctx.run(["run", "p", "-b", "slurm", "-c", &config]).user_error("'A B' is not a variable name");
    ctx.run(["run", "p", "--lockstep-run-id", "xyz"]).user_error("'xyz' is not a run id");
    ctx.run(["run", "p"]).success();
    let id = ctx.only_record()["run_id"].as_str().unwrap().to_string();
    ctx.run(["cancel", &id]).status(2).stderr_has("ran on no backend: it has no job to cancel");
}
