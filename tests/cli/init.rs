//! `lockstep init`: starter projects that run.

use predicates::prelude::*;

use crate::context::*;

#[test]
fn the_shell_starter_runs() {
    let ctx = TestContext::new();
    ctx.lockstep().args(["init", "starter", "--template", "shell"]).assert().success();
    ctx.lockstep().args(["run", "starter", "-P", "message=hi"]).assert().success().stdout("wrote out/message.txt\n");
    let r = ctx.only_record();
    assert_eq!(r["outputs"][0]["path"], "out/message.txt");
}

#[test]
fn the_python_starter_runs_with_the_local_manager() {
    let ctx = TestContext::new();
    ctx.lockstep().args(["init", "py"]).assert().success();
    ctx.lockstep()
        .args(["run", "py", "--env-manager", "local", "-P", "alpha=0.1"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("alpha=0.1 weight="));
}

#[test]
fn init_never_overwrites() {
    let ctx = TestContext::new();
    ctx.write("d/MLproject", "mine\n");
    ctx.lockstep()
        .args(["init", "d", "--template", "shell"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already has MLproject; nothing was written"));
    assert_eq!(std::fs::read_to_string(ctx.work.join("d/MLproject")).unwrap(), "mine\n");
    assert!(!ctx.work.join("d/run.sh").exists());
}
