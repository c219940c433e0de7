//! Races between lockstep processes, and what killed ones leave: `env prune` beside a build,
//! two runs in one directory, the end of a lost run, a store that holds the project, and the
//! clean-up after runners killed with SIGKILL.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use predicates::prelude::*;
use serde_json::Value;

use crate::support::*;

const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Start `lockstep run ARGS` and wait until `started` (written by the entry point) holds the
/// entry point's pid; returns the runner and that pid.
fn start_run(ctx: &TestContext, args: &[&str], started: &Path) -> (Child, i32) {
    let runner = ctx.lockstep_process().args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let up = wait_for(Duration::from_secs(30), || fs::read_to_string(started).is_ok_and(|s| s.ends_with('\n')));
    assert!(up, "the entry point started");
    let pid = fs::read_to_string(started).unwrap().trim().parse().unwrap();
    (runner, pid)
}

/// SIGKILL the runner, and the entry point it leaves behind.
fn kill_runner(mut runner: Child, entry_point: i32) {
    runner.kill().unwrap();
    runner.wait().unwrap();
    unsafe { libc::kill(entry_point, libc::SIGKILL) };
    assert!(wait_for(Duration::from_secs(5), || !alive(entry_point)));
}

fn runs_json(ctx: &TestContext) -> Vec<Value> {
    let out = ctx.run(["runs", "--json"]).success().into_output();
    json(&out).as_array().unwrap().clone()
}

#[test]
fn env_prune_leaves_a_build_in_progress_alone() {
    let ctx = TestContext::new();
    let bucket = ctx.cache.join("envs-v1");
    let (tmp, inputs) = (bucket.join(format!(".tmp{}", &KEY[4..])), bucket.join(format!(".tmp-in{}", &KEY[4..])));
    for dir in [&tmp, &inputs] {
        fs::create_dir_all(dir.join("lib")).unwrap();
    }
    // A builder holds its key's lock (shared, as runs using an environment do) for the
    // whole build.
    fs::create_dir_all(bucket.join(".locks")).unwrap();
    let builder = File::create(bucket.join(format!(".locks/{KEY}.lock"))).unwrap();
    builder.lock_shared().unwrap();
    ctx.run(["env", "prune", "--all"]).success();
    assert!(tmp.join("lib").is_dir() && inputs.join("lib").is_dir(), "the build in progress is left alone");
    drop(builder);
    ctx.run(["env", "prune", "--all"]).success();
    assert!(!tmp.exists() && !inputs.exists(), "a dead build's leftovers are removed");
}

#[test]
fn a_second_run_in_place_of_one_directory_is_refused() {
    let ctx = TestContext::new();
    let manifest = "entry_points:\n  main:\n    parameters: {name: str}\n    command: \"echo $$ > {name}.pid; while [ ! -e go ]; do sleep 0.05; done; echo done > {name}.txt\"\n";
    let p = ctx.project("p", &[("MLproject", manifest)]);
    let (first, _) = start_run(&ctx, &["run", "p", "-P", "name=first"], &p.join("first.pid"));
    // From inside the project, with another store: the lock is the directory's.
    let out = ctx
        .lockstep()
        .current_dir(&p)
        .args(["run", ".", "-P", "name=second", "--store", ctx.work.join("other").to_str().unwrap()])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("another run is running in").and(predicate::str::contains("--isolated")))
        .get_output()
        .clone();
    assert!(!stderr(&out).contains("started"), "{}", stderr(&out));
    assert!(records_in(&ctx.work.join("other")).is_empty() && !p.join("second.pid").exists(), "nothing ran");
    // A copy is fine while the first runs.
    fs::write(p.join("go"), "").unwrap();
    ctx.run(["run", "p", "--isolated", "-P", "name=copy"]).success();
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(!p.join("copy.txt").exists(), "the copy wrote into its copy");
    let first = ctx.records().into_iter().find(|r| r["parameters"]["name"] == "first").unwrap();
    let outputs: Vec<&str> = first["outputs"].as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap()).collect();
    assert_eq!(outputs, ["first.pid", "first.txt", "go"], "not the second's, not the copy's");
    // The directory is free again once the run ended.
    ctx.run(["run", "p", "-P", "name=third"]).success();
}

#[test]
fn a_lost_run_ends_at_the_last_heartbeat_not_before_it_started() {
    let ctx = TestContext::new();
    let p = ctx.project("p", &[("MLproject", "entry_points:\n  main:\n    command: 'echo $$ > pid; exec sleep 60'\n")]);
    let (runner, child) = start_run(&ctx, &["run", "p"], &p.join("pid"));
    let start_time = ctx.only_record()["start_time"].as_u64().unwrap();
    // Long enough that the last record write (before the entry point started) is far from
    // the kill.
    while now_ms() < start_time + 3500 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = now_ms();
    kill_runner(runner, child);
    let listed = runs_json(&ctx);
    let end = listed[0]["end_time"].as_u64().unwrap();
    assert_eq!(listed[0]["status"], "FAILED");
    assert!(end >= start_time, "ends after it started: {end} < {start_time}");
    assert!(end + 2500 >= killed && end <= killed + 100, "ends near the kill at {killed}: {end}");
    let id = listed[0]["run_id"].as_str().unwrap();
    let shown = json(&ctx.run(["show", id, "--json"]).success().into_output());
    assert_eq!(shown["end_time"], listed[0]["end_time"], "the end is recorded once");
}

#[test]
fn a_store_that_holds_the_project_is_refused() {
    let ctx = TestContext::new();
    let p = ctx.project("p", &[("MLproject", "entry_points:\n  main:\n    command: 'echo hi > out.txt'\n")]);
    for (dir, args) in [(&p, ["run", ".", "--store", "."]), (&ctx.work, ["run", "p", "--store", "."])] {
        ctx.lockstep().current_dir(dir).args(args).assert().code(2).stderr(
            predicate::str::contains("holds the project")
                .and(predicate::str::contains("hint: use a store outside the project")),
        );
    }
    ctx.run(["run", "p#", "--isolated", "--store", "p"]).status(2);
    assert!(!p.join("runs").exists() && !p.join("out.txt").exists(), "nothing was written");
    assert!(!ctx.work.join("runs").exists());
    // Inside the project, the default place, it is left out of the project's files.
    ctx.lockstep().current_dir(&p).args(["run", "."]).assert().success();
    let r = records_in(&p.join(".lockstep"));
    assert_eq!(r[0]["outputs"][0]["path"], "out.txt");
}

#[test]
fn the_next_run_cleans_up_after_a_runner_killed_before_its_run_started() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", "entry_points:\n  main:\n    command: 'true'\n")]);
    let server = Server::silent();
    let mut runner = ctx.run_stuck_in_a_fetch(&server);
    runner.kill().unwrap();
    runner.wait().unwrap();
    let left = ctx.run_dirs();
    assert_eq!(left.len(), 1, "the killed runner left its run directory");
    assert!(!left[0].join("record.json").exists());
    ctx.run(["run", "p"]).success();
    assert!(!left[0].exists(), "the next run removed it");
    assert_eq!(ctx.run_dirs().len(), 1);
    assert_eq!(fs::read_dir(ctx.store().join("live")).unwrap().count(), 0, "no marks are left");
}

#[test]
fn the_next_run_removes_the_copy_of_a_killed_isolated_run() {
    let ctx = TestContext::new();
    let pid = ctx.work.join("pid");
    let command = format!("echo $$ > {0}.tmp; mv {0}.tmp {0}; exec sleep 60", pid.display());
    ctx.project("p", &[("MLproject", &format!("entry_points:\n  main:\n    command: '{command}'\n")), ("big", "x")]);
    let (runner, child) = start_run(&ctx, &["run", "p", "--isolated"], &pid);
    let killed = ctx.only_record();
    let work = ctx.store().join("runs").join(killed["run_id"].as_str().unwrap()).join("work");
    assert!(work.join("big").is_file());
    kill_runner(runner, child);
    ctx.project("q", &[("MLproject", "entry_points:\n  main:\n    command: 'true'\n")]);
    ctx.run(["run", "q"]).success();
    assert!(!work.exists(), "the killed run's copy is gone");
    let lost = ctx.records().into_iter().find(|r| r["run_id"] == killed["run_id"]).unwrap();
    assert_eq!(lost["status"], "FAILED", "and the run is finalized as lost");
    assert!(lost["end_time"].as_u64().unwrap() >= lost["start_time"].as_u64().unwrap());
}

#[test]
fn runs_removes_what_killed_runners_left_and_keeps_live_runs() {
    let ctx = TestContext::new();
    let p = ctx.project("p", &[("MLproject", "entry_points:\n  main:\n    command: 'echo $$ > pid; exec sleep 60'\n")]);
    let (live, child) = start_run(&ctx, &["run", "p"], &p.join("pid"));
    // What an older lockstep, killed before its run started, left: no mark, no record.
    let stale = ctx.store().join("runs/00aa00aa00aa00aa");
    fs::create_dir_all(stale.join("inputs")).unwrap();
    File::create(stale.join(".lock")).unwrap();
    let listed = runs_json(&ctx);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], "RUNNING", "a live run is left alone");
    assert!(!stale.exists(), "the leftover is removed");
    assert_eq!(ctx.run_dirs().len(), 1);
    kill_runner(live, child);
}
