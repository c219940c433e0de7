//! `lockstep init`: starter projects that run.

use crate::support::*;

#[test]
fn the_shell_starter_runs() {
    let ctx = TestContext::new();
    ctx.run(["init", "starter", "--template", "shell"]).success();
    ctx.run(["run", "starter", "-P", "message=hi"]).success().stdout("wrote out/message.txt\n");
    assert_eq!(ctx.only_record()["outputs"][0]["path"], "out/message.txt");
}

#[test]
fn the_python_starter_runs_with_the_local_manager() {
    let ctx = TestContext::new();
    ctx.run(["init", "py"]).success();
    let out = ctx.run(["run", "py", "--env-manager", "local", "-P", "alpha=0.1"]).success();
    assert!(out.stdout_text().starts_with("alpha=0.1 weight="), "{}", out.stdout_text());
}

#[test]
fn init_never_overwrites() {
    let ctx = TestContext::new().file("d/MLproject", "mine\n");
    ctx.run(["init", "d", "--template", "shell"]).status(2).stderr_has("already has MLproject; nothing was written");
    assert_eq!(std::fs::read_to_string(ctx.work.join("d/MLproject")).unwrap(), "mine\n");
    assert!(!ctx.work.join("d/run.sh").exists());
}
