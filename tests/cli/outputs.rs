//! Snapshots of whole CLI outputs (exit status, stdout and stderr) of `run`, `runs`, `show`,
//! `status`, `verify` and the main error messages, in tests/cli/snapshots/. What varies
//! between two runs of a test is filtered (support/snapshot.rs); to accept an intended change,
//! see tests/cli/README.md.

use std::fs;

use crate::support::*;

/// Compare `outcome`'s transcript with the snapshot `name`, through `ctx`'s filters.
macro_rules! snapshot {
    ($ctx:expr, $name:expr, $outcome:expr) => {{
        let text = $outcome.transcript();
        crate::support::snapshot::settings(&$ctx).bind(|| insta::assert_snapshot!($name, text));
    }};
}

const PROJECT: &str = "name: snap\nentry_points:\n  main:\n    parameters:\n      alpha: float\n      name: {type: string, default: world}\n    command: 'echo hello {name} {alpha} > out.txt && cat out.txt'\n    outputs: [out.txt]\n  fails:\n    command: 'echo broken >&2; exit 4'\n  random:\n    command: 'echo $LOCKSTEP_RUN_ID > id.txt'\n";

/// A context with the project `p` and one finished run of it.
fn one_run() -> TestContext {
    let ctx = TestContext::new().file("p/MLproject", PROJECT).file("p/data.csv", "1,2\n");
    ctx.run(["run", "p", "-P", "alpha=0.5", "--run-name", "first"]).success();
    ctx
}

fn first_id(ctx: &TestContext) -> String {
    ctx.records()[0]["run_id"].as_str().unwrap().to_string()
}

#[test]
fn run() {
    let ctx = TestContext::new().file("p/MLproject", PROJECT);
    let out = ctx.run(["run", "p", "-P", "alpha=0.5", "--run-name", "first"]).success();
    snapshot!(ctx, "run", out);
    let out = ctx.run(["run", "p", "-e", "fails"]).status(4);
    snapshot!(ctx, "run_failed", out);
}

#[test]
fn runs() {
    let ctx = one_run();
    ctx.run(["run", "p", "-e", "fails"]).status(4);
    let out = ctx.run(["runs"]).success();
    snapshot!(ctx, "runs", out);
}

#[test]
fn show() {
    let ctx = one_run();
    let out = ctx.run(["show", &first_id(&ctx)]).success();
    snapshot!(ctx, "show", out);
}

#[test]
fn status() {
    let ctx = one_run();
    let id = first_id(&ctx);
    let out = ctx.run(["status", &id]).output();
    snapshot!(ctx, "status_unchanged", out);
    fs::write(ctx.work.join("p/data.csv"), "3,4\n").unwrap();
    fs::write(ctx.work.join("p/out.txt"), "edited\n").unwrap();
    let out = ctx.run(["status", &id]).output();
    snapshot!(ctx, "status_changed", out);
}

#[test]
fn verify() {
    let ctx = one_run();
    let out = ctx.run(["verify", &first_id(&ctx)]).output();
    snapshot!(ctx, "verify_reproduced", out);
    ctx.run(["run", "p", "-e", "random"]).success();
    let random =
        ctx.records()[ctx.records().len() - 2..].iter().find(|r| r["entry_point"] == "random").unwrap()["run_id"]
            .as_str()
            .unwrap()
            .to_string();
    let out = ctx.run(["verify", &random]).output();
    snapshot!(ctx, "verify_not_reproduced", out);
}

#[test]
fn errors() {
    let ctx = TestContext::new().file("p/MLproject", PROJECT);
    for (name, args) in [
        ("error_missing_parameter", &["run", "p"][..]),
        ("error_unknown_entry_point", &["run", "p", "-e", "train"][..]),
        ("error_bad_parameter_type", &["run", "p", "-P", "alpha=abc"][..]),
        ("error_parameter_without_value", &["run", "p", "-P", "alpha"][..]),
        ("error_unknown_env_manager", &["run", "p", "--env-manager", "pyenv"][..]),
        ("error_missing_project", &["run", "nowhere"][..]),
        ("error_unknown_run", &["show", "0123abcd"][..]),
        ("error_unknown_subcommand", &["rnu", "p"][..]),
    ] {
        let out = ctx.run(args).status(2).no_runs();
        snapshot!(ctx, name, out);
    }
}
