//! The store: listings, show, concurrency, lost runners.

use std::fs;
use std::process::Stdio;

use serde_json::Value;

use crate::support::*;

#[test]
fn runs_and_show_list_what_was_recorded() {
    let ctx = TestContext::new()
        .file("p/MLproject", "entry_points:\n  main:\n    parameters: {n: int}\n    command: 'exit {n}'\n");
    ctx.run(["run", "p", "-P", "n=0"]).success();
    ctx.run(["run", "p", "-P", "n=4"]).status(4);
    let listed = ctx.run(["runs", "--json"]).success().json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["parameters"]["n"], "4", "newest first");
    assert_eq!(listed[1]["status"], "FINISHED");

    ctx.run(["runs"]).success().stdout_has("FAILED").stdout_has("n=4").stdout_has("FINISHED");

    let id = listed[0]["run_id"].as_str().unwrap();
    assert_eq!(&ctx.run(["show", &id[..8], "--json"]).success().json(), &listed[0]);
    ctx.run(["show", id]).success().stdout_has("exit code:    4");
    ctx.run(["show", "ffffffff"]).status(2).stderr_has("error: no run 'ffffffff'");
}

#[test]
fn a_store_elsewhere_is_chosen_by_flag_or_variable() {
    let ctx = TestContext::new().file("p/MLproject", "entry_points:\n  main:\n    command: 'true'\n");
    let elsewhere = ctx.work.join("other-store");
    ctx.run(["run", "p", "--store"]).arg(&elsewhere).success();
    ctx.run(["run", "p"]).env("LOCKSTEP_STORE", &elsewhere).success().no_runs();
    assert_eq!(records_in(&elsewhere).len(), 2);
    let listed = ctx.run(["runs", "--json"]).env("LOCKSTEP_STORE", &elsewhere).success().json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

#[test]
fn eight_concurrent_runs_into_one_store() {
    let ctx = TestContext::new();
    let repo = ctx.work.join("repo");
    ctx.git_repo(
        &repo,
        &[(
            "MLproject",
            "entry_points:\n  main:\n    parameters: {i: int}\n    command: 'echo {i} > out.txt; sleep 0.2'\n",
        )],
    );
    let url = format!("file://{}", repo.display());
    let children: Vec<_> = (0..8)
        .map(|i| {
            ctx.lockstep_process()
                .args(["run", &url, "-P", &format!("i={i}")])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let records = ctx.records();
    assert_eq!(records.len(), 8);
    let mut seen: Vec<String> = records.iter().map(|r| r["parameters"]["i"].as_str().unwrap().to_string()).collect();
    seen.sort();
    assert_eq!(seen, (0..8).map(|i| i.to_string()).collect::<Vec<_>>());
    for r in &records {
        assert_eq!(r["status"], "FINISHED");
        let run_dir = ctx.store().join("runs").join(r["run_id"].as_str().unwrap());
        let out = fs::read_to_string(run_dir.join("outputs/out.txt")).unwrap();
        assert_eq!(out.trim(), r["parameters"]["i"].as_str().unwrap(), "each run keeps its own output");
    }
    let mirrors =
        fs::read_dir(ctx.cache.join("git-v1")).unwrap().flatten().filter(|e| e.path().join("HEAD").is_file()).count();
    assert_eq!(mirrors, 1, "the eight runs share one mirror");
}

#[test]
fn a_run_whose_runner_was_killed_shows_as_failed_lost() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", "entry_points:\n  main:\n    command: 'echo $$ > pid; sleep 60'\n")]);
    let mut runner =
        ctx.lockstep_process().args(["run", "p"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let pid_file = ctx.work.join("p/pid");
    assert!(
        wait_for(std::time::Duration::from_secs(20), || fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n')))
    );
    assert_eq!(ctx.only_record()["status"], "RUNNING");
    assert_eq!(ctx.run(["runs", "--json"]).success().json()[0]["status"], "RUNNING", "a live run is RUNNING");
    runner.kill().unwrap();
    runner.wait().unwrap();
    let child: i32 = fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    unsafe { libc::kill(child, libc::SIGKILL) };
    let r: Value = ctx.run(["runs", "--json"]).success().json()[0].clone();
    assert_eq!(r["status"], "FAILED");
    assert!(r["failure"].as_str().unwrap().starts_with("lost"));
    ctx.run(["runs"]).success().stdout_has("FAILED");
}

/// A reader that closed its end (`lockstep runs --json | head -c 10`) ends the listing
/// quietly: the broken pipe surfaces inside serde_json's error, and also in plain writes.
#[test]
fn a_closed_stdout_is_a_quiet_exit() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", "entry_points:\n  main:\n    command: 'true'\n")]);
    ctx.lockstep().args(["run", "p"]).assert().success();
    let id = ctx.only_record()["run_id"].as_str().unwrap().to_string();
    for args in [vec!["runs", "--json"], vec!["runs"], vec!["show", "--json", &id]] {
        // The read end is closed before lockstep starts, so that every write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = ctx.lockstep_process().args(&args).stdout(writer).stderr(Stdio::piped()).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}

#[test]
fn logs_prints_a_runs_stdout_or_stderr() {
    let ctx =
        TestContext::new().file("p/MLproject", "entry_points:\n  main:\n    command: 'echo to-out; echo to-err >&2'\n");
    ctx.run(["run", "p"]).success();
    let id = ctx.only_record()["run_id"].as_str().unwrap().to_string();
    ctx.run(["logs", &id[..8]]).success().stdout("to-out\n");
    ctx.run(["logs", &id, "--stderr"]).success().stdout("to-err\n");
    ctx.run(["logs", "ffff"]).status(2).stderr_has("error: no run 'ffff'");
    fs::remove_file(ctx.store().join("runs").join(&id).join("stdout.log")).unwrap();
    ctx.run(["logs", &id]).status(2).stderr_has("has no stdout.log").hint("a run that failed before");
}

#[test]
fn logs_follow_prints_until_the_run_ends() {
    let ctx = TestContext::new().file(
        "p/MLproject",
        "entry_points:\n  main:\n    command: 'echo first; while [ ! -e go ]; do sleep 0.05; done; echo last'\n",
    );
    let mut runner =
        ctx.lockstep_process().args(["run", "p"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    assert!(wait_for(std::time::Duration::from_secs(20), || ctx.run_dirs().len() == 1
        && fs::read_to_string(ctx.run_dirs()[0].join("stdout.log")).is_ok_and(|s| s == "first\n")));
    let id = ctx.run_dirs()[0].file_name().unwrap().to_string_lossy().into_owned();
    let follower = ctx.lockstep_process().args(["logs", "-f", &id]).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    fs::write(ctx.work.join("p/go"), "").unwrap();
    assert!(runner.wait().unwrap().success());
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first\nlast\n", "what came after the follow began, too");
}
