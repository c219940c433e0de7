//! Nothing outlives a run: what the entry point leaves running (background jobs, `setsid`
//! daemons) is ended when it exits unless `--keep-processes` says otherwise; the entry point
//! dies with a SIGKILLed lockstep; an interrupted installer gets SIGTERM and takes its helpers
//! with it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

/// SIGKILLs the pids it holds when dropped, so that a failing test leaves nothing behind.
struct Reap(Vec<i32>);

impl Drop for Reap {
    fn drop(&mut self) {
        for pid in &self.0 {
            if alive(*pid) {
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
        }
    }
}

fn read_pid(path: &Path) -> i32 {
    fs::read_to_string(path).unwrap().trim().parse().unwrap()
}

/// A project whose entry point runs `script` with sh.
fn project(ctx: &TestContext, script: &str) -> std::path::PathBuf {
    ctx.project("p", &[("MLproject", "entry_points:\n  main:\n    command: \"sh run.sh\"\n"), ("run.sh", script)])
}

/// Starts a `setsid` daemon that writes its pid to daemon.pid, and waits for it.
const DAEMON: &str = "setsid sh -c 'echo $$ > daemon.tmp; mv daemon.tmp daemon.pid; exec sleep 300' </dev/null >/dev/null 2>&1 &\nwhile [ ! -e daemon.pid ]; do sleep 0.05; done\n";

#[test]
fn background_jobs_of_a_finished_run_are_ended() {
    let ctx = TestContext::new();
    let dir = project(&ctx, "sleep 300 &\necho $! > bg.pid\necho started\n");
    let out = ctx.run(["run", "p"]).success().into_output();
    assert!(String::from_utf8_lossy(&out.stdout).contains("started"));
    let bg = read_pid(&dir.join("bg.pid"));
    let _reap = Reap(vec![bg]);
    assert!(!alive(bg), "the background job {bg} was ended with the run");
    assert_eq!(ctx.only_record()["status"], "FINISHED");
}

#[test]
fn a_background_job_that_ignores_sigterm_gets_sigkill_after_the_grace() {
    let ctx = TestContext::new();
    let dir = project(&ctx, "(trap '' TERM; while :; do sleep 1; done) &\necho $! > bg.pid\n");
    ctx.lockstep().env("LOCKSTEP_KILL_GRACE", "1").args(["run", "p"]).assert().success();
    let bg = read_pid(&dir.join("bg.pid"));
    let _reap = Reap(vec![bg]);
    assert!(!alive(bg), "the job {bg} that ignores SIGTERM was killed");
}

#[test]
fn a_daemon_that_left_the_group_with_setsid_is_ended() {
    let ctx = TestContext::new();
    let dir = project(&ctx, DAEMON);
    ctx.run(["run", "p"]).success();
    let daemon = read_pid(&dir.join("daemon.pid"));
    let _reap = Reap(vec![daemon]);
    assert!(!alive(daemon), "the daemon {daemon} was ended with the run");
}

#[test]
fn keep_processes_leaves_jobs_and_daemons_running_with_a_warning() {
    let ctx = TestContext::new();
    let dir = project(&ctx, &format!("sleep 300 </dev/null >/dev/null 2>&1 &\necho $! > bg.pid\n{DAEMON}"));
    let out = ctx.run(["run", "p", "--keep-processes"]).success().into_output();
    let (bg, daemon) = (read_pid(&dir.join("bg.pid")), read_pid(&dir.join("daemon.pid")));
    let _reap = Reap(vec![bg, daemon]);
    assert!(stderr(&out).contains("warning: --keep-processes"), "{}", stderr(&out));
    assert!(alive(bg) && alive(daemon), "both kept running");
}

#[test]
fn the_entry_point_and_its_jobs_die_with_a_sigkilled_lockstep() {
    let ctx = TestContext::new();
    ctx.project(
        "p",
        &[(
            "MLproject",
            "entry_points:\n  main:\n    command: \"sleep 300 & echo $$ > ep.tmp; echo $! > bg.pid; mv ep.tmp ep.pid; while true; do sleep 0.1; done\"\n",
        )],
    );
    let mut runner = ctx
        .lockstep_process()
        .env("LOCKSTEP_KILL_GRACE", "1")
        .args(["run", "p"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = ctx.work.join("p/ep.pid");
    assert!(wait_for(Duration::from_secs(20), || pid_file.exists()), "the entry point started");
    let (ep, bg) = (read_pid(&pid_file), read_pid(&ctx.work.join("p/bg.pid")));
    let _reap = Reap(vec![ep, bg]);
    runner.kill().unwrap();
    runner.wait().unwrap();
    assert!(wait_for(Duration::from_secs(10), || !alive(ep)), "the entry point {ep} died with lockstep");
    assert!(wait_for(Duration::from_secs(10), || !alive(bg)), "its job {bg} died with lockstep");
}

/// Start a run whose environment is built by a fake uv that starts a helper and waits, and
/// return the runner once the helper is up, with the directory where uv writes its marks.
fn start_fake_build(ctx: &TestContext) -> (std::process::Child, std::path::PathBuf) {
    let marks = ctx.work.join("marks");
    fs::create_dir_all(&marks).unwrap();
    let uv = ctx.write(
        "bin/uv",
        "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'uv 0.0.0'; exit 0; }\n\
         trap 'touch \"$MARKS/cleaned\"; exit 1' TERM\n\
         sleep 300 </dev/null >/dev/null 2>&1 &\n\
         echo $$ > \"$MARKS/uv\"; echo $! > \"$MARKS/helper.tmp\"; mv \"$MARKS/helper.tmp\" \"$MARKS/helper\"\n\
         while :; do sleep 0.1; done\n",
    );
    fs::set_permissions(&uv, fs::Permissions::from_mode(0o755)).unwrap();
    ctx.project(
        "p",
        &[
            ("MLproject", "python_env: python_env.yaml\nentry_points:\n  main:\n    command: \"true\"\n"),
            ("python_env.yaml", "dependencies: []\n"),
        ],
    );
    let path = format!("{}:{}", ctx.work.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let runner = ctx
        .lockstep_process()
        .env("PATH", path)
        .env("MARKS", &marks)
        .env("LOCKSTEP_KILL_GRACE", "10")
        .args(["run", "p", "--env-manager", "uv"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(Duration::from_secs(20), || marks.join("helper").exists()), "the installer started");
    (runner, marks)
}

#[test]
fn an_interrupted_installer_gets_sigterm_and_its_helpers_end_with_it() {
    let ctx = TestContext::new();
    let (mut runner, marks) = start_fake_build(&ctx);
    let helper = read_pid(&marks.join("helper"));
    let _reap = Reap(vec![helper]);
    unsafe { libc::kill(runner.id() as i32, libc::SIGTERM) };
    assert_ne!(runner.wait().unwrap().code(), Some(0));
    assert!(marks.join("cleaned").exists(), "the installer had SIGTERM first, to clean up");
    assert!(!alive(helper), "the installer's helper {helper} is gone");
}

#[test]
fn a_sigkilled_lockstep_takes_its_installer_and_the_installers_helpers() {
    let ctx = TestContext::new();
    let (mut runner, marks) = start_fake_build(&ctx);
    let (uv, helper) = (read_pid(&marks.join("uv")), read_pid(&marks.join("helper")));
    let _reap = Reap(vec![uv, helper]);
    runner.kill().unwrap();
    runner.wait().unwrap();
    assert!(wait_for(Duration::from_secs(10), || !alive(uv)), "the installer {uv} died with lockstep");
    assert!(wait_for(Duration::from_secs(20), || !alive(helper)), "its helper {helper} died too");
}
