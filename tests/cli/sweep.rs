//! `lockstep sweep`: grids and their value syntaxes, trials side by side, reuse, failures,
//! Ctrl-C, ranking by a logged metric, and `sweep show` / `runs --sweep`.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// An entry point that appends `start`/`end` lines to `log` (a file outside the trials'
/// copies), sleeping in between.
const LOGGING: &str = r#"
entry_points:
  main:
    parameters:
      a: {type: float, default: 0.5}
      n: {type: int, default: 1}
      log: {type: string, default: /dev/null}
      pause: {type: float, default: 0}
    command: "echo start {a} $CUDA_VISIBLE_DEVICES >> {log}; sleep {pause}; echo end {a} >> {log}; echo a={a} n={n} > out.txt"
"#;

fn sweep_json(ctx: &TestContext, args: &[&str]) -> Value {
    ctx.run(["sweep", "p"].iter().chain(args).chain(&["--json"])).success().json()
}

fn column(table: &Value, key: &str) -> Vec<String> {
    table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match &r[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn param_column(table: &Value, name: &str) -> Vec<String> {
    table["rows"].as_array().unwrap().iter().map(|r| r["params"][name].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_grid_is_the_product_of_every_value_syntax() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", LOGGING)]);
    let t = sweep_json(&ctx, &["-P", "a=range(0, 1, 0.5)", "-P", "n=1,2", "--dry-run"]);
    assert_eq!(param_column(&t, "a"), ["0", "0", "0.5", "0.5"]);
    assert_eq!(param_column(&t, "n"), ["1", "2", "1", "2"]);
    assert_eq!(column(&t, "status"), ["NOT RUN"; 4]);
    ctx.assert_no_runs();
    assert!(!ctx.store().join("sweeps").exists(), "a dry run records no sweep");
    let t = sweep_json(&ctx, &["-P", "a=linspace(0,1,3)", "-P", "log=[\"x,y\",\"z\"]", "--dry-run"]);
    assert_eq!(param_column(&t, "a").len(), 6);
    assert_eq!(param_column(&t, "log")[..2], ["x,y", "z"]);
    let t = sweep_json(&ctx, &["-P", "a=logspace(-2,0,3)", "--dry-run"]);
    assert_eq!(param_column(&t, "a"), ["0.01", "0.1", "1"]);
    assert_eq!(t["param_columns"], serde_json::json!(["a"]), "fixed values are not columns");
}

#[test]
fn bad_values_are_refused_before_anything_runs() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", LOGGING)]);
    let cases = [
        (vec!["-P", "n=1,2.5"], "parameter 'n' is declared int, and its value '2.5' is not an integer"),
        (vec!["-P", "a=range(0,1,0)"], "-P a=range(0,1,0): the step is 0"),
        (vec!["-P", "a=grid(1,2)"], "`grid` is not range, linspace or logspace"),
        (vec!["-P", "a=[\"x\""], "not a JSON list"),
        (vec!["-P", "a=1", "-P", "a=2"], "-P a is given twice"),
        (vec!["-P", "a"], "expected NAME=VALUES"),
        (vec!["-P", "a=linspace(0,1,0)"], "n is 0"),
        (vec!["--jobs", "0"], "--jobs must be at least 1"),
    ];
    for (args, message) in cases {
        ctx.run(["sweep", "p"].iter().chain(&args)).user_error(message);
        assert!(!ctx.store().join("sweeps").exists(), "{args:?} recorded a sweep");
    }
    ctx.run(["sweep", "p", "-P", "a=range(0,1e9,1)", "-P", "n=range(0,1e9,1)"]).user_error("more than 100000");
}

#[test]
fn random_samples_are_reproducible_with_a_seed() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", LOGGING)]);
    let draw = |seed: &str| {
        let t = sweep_json(
            &ctx,
            &["-P", "a=range(0,20,1)", "-P", "n=range(0,20,1)", "--random", "5", "--seed", seed, "--dry-run"],
        );
        param_column(&t, "a").into_iter().zip(param_column(&t, "n")).collect::<Vec<_>>()
    };
    let first = draw("7");
    assert_eq!(first.len(), 5);
    assert_eq!(first, draw("7"));
    assert_ne!(first, draw("8"));
}

#[test]
fn trials_run_side_by_side_with_their_own_gpus_and_are_listed_by_runs() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", LOGGING)]);
    let log = ctx.work.join("trials.log");
    let log_arg = format!("log={}", log.display());
    let t = sweep_json(&ctx, &["-P", "a=1,2", "-P", &log_arg, "-P", "pause=1", "--jobs", "2", "--gpus", "3,5"]);
    let lines: Vec<String> = fs::read_to_string(&log).unwrap().lines().map(str::to_string).collect();
    assert!(
        lines[0].starts_with("start") && lines[1].starts_with("start"),
        "both started before either ended: {lines:?}"
    );
    let mut gpus: Vec<&str> = lines[..2].iter().map(|l| l.rsplit(' ').next().unwrap()).collect();
    gpus.sort();
    assert_eq!(gpus, ["3", "5"], "each worker has its own CUDA_VISIBLE_DEVICES");
    assert_eq!(column(&t, "status"), ["FINISHED", "FINISHED"]);
    let sweep_id = t["sweep"]["sweep_id"].as_str().unwrap();
    assert_eq!(t["sweep"]["state"], "FINISHED");
    let records = ctx.records();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r["sweep"] == sweep_id), "each trial's record names its sweep");
    let listed = ctx.run(["runs", "--json", "--sweep", &sweep_id[..8]]).success().json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    ctx.run(["run", "p"]).success();
    let listed = ctx.run(["runs", "--json", "--sweep", sweep_id]).success().json();
    assert_eq!(listed.as_array().unwrap().len(), 2, "a run outside the sweep is not listed");
    let csv = ctx.run(["sweep", "show", &sweep_id[..6], "--csv"]).success().stdout_text();
    assert_eq!(csv.lines().next().unwrap(), "TRIAL,RUN,a,STATUS,DURATION,REUSED");
    assert_eq!(csv.lines().count(), 3);
    let md = ctx.run(["sweep", "show", sweep_id, "--md"]).success().stdout_text();
    assert!(md.lines().nth(1).unwrap().starts_with("|---|"), "{md}");
    ctx.run(["sweep", "show", "ffff"]).status(2).stderr_has("error: no sweep 'ffff'");
}

#[test]
fn a_second_sweep_reuses_every_trial_and_an_extended_one_runs_only_the_new_ones() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", LOGGING)]);
    let t = sweep_json(&ctx, &["-P", "a=1,2"]);
    assert_eq!(column(&t, "reused"), ["false", "false"]);
    assert_eq!(ctx.records().len(), 2);
    let again = sweep_json(&ctx, &["-P", "a=1,2", "--jobs", "2"]);
    assert_eq!(column(&again, "reused"), ["true", "true"]);
    assert_eq!(column(&again, "run_id"), column(&t, "run_id"), "the earlier runs");
    assert_eq!(ctx.records().len(), 2, "nothing ran");
    let extended = sweep_json(&ctx, &["-P", "a=1,2,3"]);
    assert_eq!(column(&extended, "reused"), ["true", "true", "false"]);
    assert_eq!(ctx.records().len(), 3, "only the new trial ran");
    let forced = sweep_json(&ctx, &["-P", "a=1", "--no-reuse"]);
    assert_eq!(column(&forced, "reused"), ["false"]);
    assert_eq!(ctx.records().len(), 4);
}

#[test]
fn a_failing_trial_fails_the_sweep_but_not_the_other_trials() {
    let ctx = TestContext::new();
    let manifest = "entry_points:\n  main:\n    parameters:\n      a: int\n    command: 'test {a} -ne 2'\n";
    ctx.project("p", &[("MLproject", manifest)]);
    let out = ctx.run(["sweep", "p", "-P", "a=1,2,3", "--json"]).status(1);
    let t: Value = serde_json::from_str(&out.stdout_text()).unwrap();
    assert_eq!(column(&t, "status"), ["FINISHED", "FAILED", "FINISHED"]);
    assert_eq!(t["sweep"]["state"], "FAILED");
    let out = ctx.run(["sweep", "p", "-P", "a=2,4,5", "--fail-fast", "--json", "--no-reuse"]).status(1);
    let t: Value = serde_json::from_str(&out.stdout_text()).unwrap();
    assert_eq!(column(&t, "status"), ["FAILED", "NOT RUN", "NOT RUN"], "--fail-fast starts no more trials");
}

#[test]
fn ctrl_c_kills_every_running_trial_and_leaves_no_process() {
    let ctx = TestContext::new();
    let manifest = "entry_points:\n  main:\n    parameters:\n      a: int\n      dir: string\n    command: 'sleep 60 & echo $! > {dir}/tmp-{a}; mv {dir}/tmp-{a} {dir}/pids-{a}; wait'\n";
    ctx.project("p", &[("MLproject", manifest)]);
    let mut runner = ctx
        .lockstep_process()
        .args(["sweep", "p", "-P", "a=1,2,3", "-P", &format!("dir={}", ctx.work.display()), "--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = |a: u32| ctx.work.join(format!("pids-{a}"));
    let up = wait_for(Duration::from_secs(30), || pid_file(1).is_file() && pid_file(2).is_file());
    assert!(up, "two trials started");
    unsafe { libc::kill(runner.id() as i32, libc::SIGINT) };
    let status = runner.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    for a in [1, 2] {
        let pid: i32 = fs::read_to_string(pid_file(a)).unwrap().trim().parse().unwrap();
        assert!(wait_for(Duration::from_secs(5), || !alive(pid)), "trial {a}'s process is gone");
    }
    let records = ctx.records();
    assert_eq!(records.len(), 2, "the third trial never started");
    assert!(records.iter().all(|r| r["status"] == "KILLED"), "{records:?}");
    let sweeps: Vec<_> = fs::read_dir(ctx.store().join("sweeps")).unwrap().flatten().collect();
    let sweep: Value = serde_json::from_slice(&fs::read(sweeps[0].path()).unwrap()).unwrap();
    assert_eq!(sweep["state"], "KILLED");
    let statuses: Vec<&Value> = sweep["trials"].as_array().unwrap().iter().map(|t| &t["status"]).collect();
    assert_eq!(statuses, [&Value::from("KILLED"), &Value::from("KILLED"), &Value::Null]);
}

#[test]
fn trials_are_ranked_by_the_metric_their_script_logs() {
    let ctx = TestContext::new();
    let manifest = "entry_points:\n  main:\n    parameters:\n      a: float\n    command: 'python train.py {a}'\n";
    let script = "import sys, mlflow\na = float(sys.argv[1])\nmlflow.log_metric('rmse', (a - 2) ** 2)\nmlflow.log_metric('a_again', a)\n";
    ctx.project("p", &[("MLproject", manifest), ("train.py", script)]);
    let t = ctx
        .run(["sweep", "p", "-P", "a=1,2,3.5", "--jobs", "2", "--metric", "rmse", "--json"])
        .env("PATH", path_with_mlflow())
        .success()
        .json();
    assert_eq!(param_column(&t, "a"), ["2", "1", "3.5"], "best (smallest) rmse first");
    assert_eq!(t["metric_columns"], serde_json::json!(["rmse", "a_again"]));
    assert_eq!(t["rows"][2]["metrics"]["rmse"], 2.25);
    let sweep_id = t["sweep"]["sweep_id"].as_str().unwrap();
    let max = ctx.run(["sweep", "show", sweep_id, "--metric", "rmse", "--goal", "max", "--json"]).success().json();
    assert_eq!(param_column(&max, "a"), ["3.5", "1", "2"]);
    let text = ctx.run(["sweep", "show", sweep_id, "--metric", "rmse"]).success().stdout_text();
    assert!(text.lines().nth(1).unwrap().contains(" 2 "), "{text}");
}

#[test]
fn on_a_tracking_server_the_sweep_is_the_parent_of_its_trials() {
    let ctx = TestContext::new();
    let server = MlflowServer::start();
    ctx.project("p", &[("MLproject", LOGGING)]);
    let t = ctx
        .run(["sweep", "p", "-P", "a=1,2,3", "--jobs", "2", "--experiment-name", "grid", "--json"])
        .env("MLFLOW_TRACKING_URI", server.uri())
        .success()
        .json();
    let parent = t["sweep"]["tracking_run_id"].as_str().unwrap().to_string();
    let trial_server_runs: std::collections::BTreeSet<String> =
        ctx.records().iter().map(|r| r["tracking"]["run_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(trial_server_runs.len(), 3);
    // What MLflow's own client shows: the sweep's run, finished, with the trials as its children.
    let script = format!(
        "import mlflow\nmlflow.set_tracking_uri('{}')\nexp = mlflow.get_experiment_by_name('grid').experiment_id\n\
         kids = mlflow.search_runs([exp], filter_string=\"tags.mlflow.parentRunId = '{parent}'\", output_format='list')\n\
         print(sorted(r.info.run_id for r in kids))\nprint(mlflow.get_run('{parent}').info.status)\n",
        server.uri()
    );
    let python = crate::support::mlflow::mlflow_bin().parent().unwrap().join("python");
    let out = std::process::Command::new(python).args(["-c", &script]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected: Vec<&String> = trial_server_runs.iter().collect();
    assert!(
        stdout.contains(&format!("{expected:?}").replace('"', "'")),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.trim_end().ends_with("FINISHED"), "{stdout}");
}
