//! Bad input: each gives exit 2, one clear `error:` line (and maybe a `hint:`), and no run.

use std::time::{Duration, Instant};

use crate::context::*;

const GOOD: &str = "entry_points:\n  main:\n    parameters:\n      alpha: float\n      data: {type: path, default: data.csv}\n      src: {type: uri, default: 's3://b/k'}\n    command: 'echo {alpha} {data} {src}'\n";

/// Run lockstep with `args` in `ctx`, expect exit 2 and an error containing `message`,
/// and check that nothing was recorded.
fn expect_user_error(ctx: &TestContext, args: &[&str], message: &str) -> String {
    let out = ctx.lockstep().args(args).assert().code(2).get_output().clone();
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("warning:")).collect();
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(lines[0].contains(message), "expected {message:?} in {err}");
    assert!(
        lines.len() == 1 || (lines.len() == 2 && lines[1].starts_with("hint: ")),
        "one error line and at most a hint: {err}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");
    ctx.assert_no_runs();
    err
}

fn good_project(ctx: &TestContext) {
    ctx.project("p", &[("MLproject", GOOD), ("data.csv", "1\n")]);
}

#[test]
fn no_mlproject_and_an_entry_point_that_is_no_script() {
    let ctx = TestContext::new();
    ctx.project("p", &[("train.R", "x")]);
    expect_user_error(&ctx, &["run", "p", "-e", "train.R"], "has no MLproject file");
}

#[test]
fn unknown_entry_point_lists_the_declared_ones() {
    let ctx = TestContext::new();
    good_project(&ctx);
    expect_user_error(&ctx, &["run", "p", "-e", "train"], "the MLproject declares: main");
}

#[test]
fn invalid_yaml_points_at_line_and_column() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", "entry_points:\n  main:\n    command: 'unterminated\n")]);
    expect_user_error(&ctx, &["run", "p"], "error: MLproject:");
}

#[test]
fn two_environment_keys() {
    let ctx = TestContext::new();
    ctx.project(
        "p",
        &[("MLproject", "python_env: a.yaml\nconda_env: b.yaml\nentry_points: {}\n"), ("a.yaml", ""), ("b.yaml", "")],
    );
    expect_user_error(&ctx, &["run", "p"], "MLproject:2:");
}

#[test]
fn missing_environment_file() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", "python_env: python_env.yaml\nentry_points:\n  main: {command: x}\n")]);
    expect_user_error(&ctx, &["run", "p"], "python_env names 'python_env.yaml', which does not exist");
    ctx.project("q", &[("MLproject", "conda_env: env.yaml\nentry_points:\n  main: {command: x}\n")]);
    expect_user_error(&ctx, &["run", "q"], "conda_env names 'env.yaml', which does not exist");
}

#[test]
fn missing_required_parameter() {
    let ctx = TestContext::new();
    good_project(&ctx);
    expect_user_error(&ctx, &["run", "p"], "needs parameter 'alpha' (float), which has no default");
}

#[test]
fn a_float_that_is_not_a_number() {
    let ctx = TestContext::new();
    good_project(&ctx);
    expect_user_error(
        &ctx,
        &["run", "p", "-P", "alpha=abc"],
        "parameter 'alpha' is declared float, but its value 'abc' is not a number",
    );
}

#[test]
fn a_parameter_without_equals() {
    let ctx = TestContext::new();
    good_project(&ctx);
    expect_user_error(&ctx, &["run", "p", "-P", "alpha"], "parameter 'alpha' is not NAME=VALUE");
}

#[test]
fn a_repeated_parameter() {
    let ctx = TestContext::new();
    good_project(&ctx);
    expect_user_error(
        &ctx,
        &["run", "p", "-P", "alpha=1", "-P", "alpha=2"],
        "parameter 'alpha' is given more than once",
    );
}

#[test]
fn a_missing_path() {
    let ctx = TestContext::new();
    good_project(&ctx);
    let err = expect_user_error(
        &ctx,
        &["run", "p", "-P", "alpha=1", "-P", "data=nope.csv"],
        "parameter 'data' is a path, but",
    );
    assert!(err.contains(&ctx.work.join("nope.csv").display().to_string()), "the absolute path is named: {err}");
}

#[test]
fn a_uri_without_scheme() {
    let ctx = TestContext::new();
    good_project(&ctx);
    let err = expect_user_error(&ctx, &["run", "p", "-P", "alpha=1", "-P", "src=/data/x"], "has no scheme");
    assert!(err.contains("hint: a uri needs a scheme"), "{err}");
}

#[test]
fn a_placeholder_without_parameter() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", "entry_points:\n  main:\n    command: 'echo {alpha}'\n")]);
    expect_user_error(&ctx, &["run", "p", "-P", "alpha=1"], "uses {alpha}, but declares no parameter 'alpha'");
}

#[test]
fn a_subdirectory_that_does_not_exist_or_escapes() {
    let ctx = TestContext::new();
    good_project(&ctx);
    expect_user_error(&ctx, &["run", "p#nope", "-P", "alpha=1"], "subdirectory 'nope' does not exist");
    expect_user_error(&ctx, &["run", "p#../x", "-P", "alpha=1"], "subdirectory '../x' leaves the repository");
    let repo = ctx.work.join("repo");
    ctx.git_repo(&repo, &[("sub/MLproject", GOOD)]);
    let url = format!("file://{}", repo.display());
    expect_user_error(&ctx, &["run", &format!("{url}#missing")], "subdirectory 'missing' does not exist in file://");
    expect_user_error(&ctx, &["run", &format!("{url}#../../etc")], "leaves the repository");
}

#[test]
fn an_unknown_version() {
    let ctx = TestContext::new();
    let repo = ctx.work.join("repo");
    ctx.git_repo(&repo, &[("MLproject", GOOD)]);
    ctx.git(&repo, &["tag", "v1"]);
    let url = format!("file://{}", repo.display());
    let err = expect_user_error(&ctx, &["run", &url, "-v", "v9"], "version 'v9' is not a branch, tag or commit of");
    assert!(err.contains("hint: branches and tags: main, v1"), "{err}");
    expect_user_error(&ctx, &["run", "repo", "-v", "deadbeef"], "version 'deadbeef' is not a branch, tag or commit");
    expect_user_error(&ctx, &["run", ".", "-v", "main"], "needs a git repository");
}

#[test]
fn an_unreachable_git_host_fails_fast() {
    let ctx = TestContext::new();
    let port = free_port();
    let start = Instant::now();
    expect_user_error(&ctx, &["run", &format!("git://127.0.0.1:{port}/repo.git")], "cannot fetch git://127.0.0.1");
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_silent_git_server_is_given_up_on() {
    let ctx = TestContext::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _server = std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept() {
            held.push(conn);
        }
    });
    let start = Instant::now();
    let out = ctx
        .lockstep()
        .env("LOCKSTEP_GIT_TIMEOUT", "2")
        .args(["run", &format!("git://127.0.0.1:{port}/repo.git")])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(stderr(&out).contains("no progress for 2 s, gave up"), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(20), "bounded time: {:?}", start.elapsed());
    ctx.assert_no_runs();
}

#[test]
fn a_missing_project_directory() {
    let ctx = TestContext::new();
    expect_user_error(&ctx, &["run", "nowhere"], "no project directory at");
}

#[test]
fn an_unknown_env_manager_is_a_usage_error() {
    let ctx = TestContext::new();
    good_project(&ctx);
    let out = ctx.lockstep().args(["run", "p", "--env-manager", "pyenv"]).assert().code(2).get_output().clone();
    assert!(stderr(&out).contains("unknown environment manager 'pyenv'"), "{}", stderr(&out));
    ctx.assert_no_runs();
}

#[test]
fn a_docker_project_with_a_python_manager() {
    let ctx = TestContext::new();
    let manifest = "docker_env:\n  image: busybox\nentry_points:\n  main:\n    command: 'echo ran'\n";
    ctx.project("p", &[("MLproject", manifest)]);
    let err = expect_user_error(
        &ctx,
        &["run", "p", "--env-manager", "virtualenv"],
        "the virtualenv manager cannot run a project with a docker_env",
    );
    assert!(err.contains("hint: omit --env-manager"), "{err}");
    ctx.lockstep().args(["run", "p", "--env-manager", "local"]).assert().success().stdout("ran\n");
}
