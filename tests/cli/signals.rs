//! SIGINT/SIGTERM: forwarded to the entry point's whole process group, escalated to SIGKILL
//! after the grace period; the run is KILLED and nothing is left running.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

/// Start a run whose entry point starts a background grandchild and then waits, and return
/// the runner with the pids of child and grandchild once both are up.
fn start_run(ctx: &TestContext, command: &str, grace: &str) -> (std::process::Child, i32, i32) {
    let manifest = format!("entry_points:\n  main:\n    command: \"{command}\"\n");
    ctx.project("p", &[("MLproject", &manifest)]);
    let runner = ctx
        .lockstep_process()
        .env("LOCKSTEP_KILL_GRACE", grace)
        .args(["run", "p"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pids = ctx.work.join("p/pids");
    let up = wait_for(Duration::from_secs(20), || fs::read_to_string(&pids).is_ok_and(|s| s.lines().count() == 2));
    assert!(up, "the entry point started");
    let text = fs::read_to_string(&pids).unwrap();
    let mut it = text.lines().map(|l| l.trim().parse::<i32>().unwrap());
    (runner, it.next().unwrap(), it.next().unwrap())
}

fn check_killed(ctx: &TestContext, mut runner: std::process::Child, pids: [i32; 2], signal: i32, code: i32) {
    unsafe { libc::kill(runner.id() as i32, signal) };
    let status = runner.wait().unwrap();
    assert_eq!(status.code(), Some(code));
    for pid in pids {
        assert!(wait_for(Duration::from_secs(5), || !alive(pid)), "process {pid} is gone");
    }
    let r = ctx.only_record();
    assert_eq!(r["status"], "KILLED");
    assert_eq!(r["exit_code"], code);
    assert!(r["end_time"].is_u64());
}

#[test]
fn sigint_kills_the_whole_group_and_records_killed() {
    let ctx = TestContext::new();
    let (runner, child, grandchild) =
        start_run(&ctx, "sleep 60 & echo $$ > pids.tmp; echo $! >> pids.tmp; mv pids.tmp pids; wait", "10");
    check_killed(&ctx, runner, [child, grandchild], libc::SIGINT, 130);
}

#[test]
fn sigterm_escalates_to_sigkill_for_a_child_that_ignores_it() {
    let ctx = TestContext::new();
    let (runner, child, grandchild) = start_run(
        &ctx,
        "trap '' INT TERM; sleep 60 & echo $$ > pids.tmp; echo $! >> pids.tmp; mv pids.tmp pids; while true; do sleep 0.1; done",
        "1",
    );
    check_killed(&ctx, runner, [child, grandchild], libc::SIGTERM, 143);
}

#[test]
fn a_signal_before_the_run_starts_leaves_no_run() {
    let ctx = TestContext::new();
    let server = Server::silent();
    let mut runner = ctx.run_stuck_in_a_fetch(&server);
    let sent = std::time::Instant::now();
    unsafe { libc::kill(runner.id() as i32, libc::SIGINT) };
    assert_eq!(runner.wait().unwrap().code(), Some(130));
    assert!(sent.elapsed() < Duration::from_secs(10), "the fetch is stopped, not waited for: {:?}", sent.elapsed());
    ctx.assert_no_runs();
}
