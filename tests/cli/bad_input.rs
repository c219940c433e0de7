//! Bad input: each gives exit 2, one clear `error:` line (and maybe a `hint:`), and no run
//! (`user_error` in support/cmd.rs checks all of it).

use std::time::{Duration, Instant};

use crate::support::*;

const GOOD: &str = "entry_points:\n  main:\n    parameters:\n      alpha: float\n      data: {type: path, default: data.csv}\n      src: {type: uri, default: 's3://b/k'}\n    command: 'echo {alpha} {data} {src}'\n";

/// A context with the project `p` declaring the parameters `alpha`, `data` and `src`.
fn good_project() -> TestContext {
    TestContext::new().file("p/MLproject", GOOD).file("p/data.csv", "1\n")
}

#[test]
fn no_mlproject_and_an_entry_point_that_is_no_script() {
    TestContext::new().file("p/train.R", "x").run(["run", "p", "-e", "train.R"]).user_error("has no MLproject file");
}

#[test]
fn unknown_entry_point_lists_the_declared_ones() {
    good_project().run(["run", "p", "-e", "train"]).user_error("the MLproject declares: main");
}

#[test]
fn invalid_yaml_points_at_line_and_column() {
    TestContext::new()
        .file("p/MLproject", "entry_points:\n  main:\n    command: 'unterminated\n")
        .run(["run", "p"])
        .user_error("error: MLproject:");
}

#[test]
fn two_environment_keys() {
    TestContext::new()
        .file("p/MLproject", "python_env: a.yaml\nconda_env: b.yaml\nentry_points: {}\n")
        .file("p/a.yaml", "")
        .file("p/b.yaml", "")
        .run(["run", "p"])
        .user_error("MLproject:2:");
}

#[test]
fn missing_environment_file() {
    let ctx = TestContext::new()
        .file("p/MLproject", "python_env: python_env.yaml\nentry_points:\n  main: {command: x}\n")
        .file("q/MLproject", "conda_env: env.yaml\nentry_points:\n  main: {command: x}\n");
    ctx.run(["run", "p"]).user_error("python_env names 'python_env.yaml', which does not exist");
    ctx.run(["run", "q"]).user_error("conda_env names 'env.yaml', which does not exist");
}

#[test]
fn missing_required_parameter() {
    good_project()
        .run(["run", "p"])
        .user_error("needs parameter 'alpha' (float), which has no default")
        .hint("give it a value: -P alpha=...");
}

#[test]
fn an_entry_point_typo_suggests_the_declared_name() {
    good_project().run(["run", "p", "-e", "mian"]).user_error("'mian' not found").hint("did you mean `-e main`?");
    let out = good_project().run(["run", "p", "-e", "evaluate"]).user_error("'evaluate' not found").into_output();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("did you mean"), "no far-fetched guess");
}

#[test]
fn an_integer_too_large_says_so() {
    let ctx = TestContext::new()
        .file("p/MLproject", "entry_points:\n  main:\n    parameters: {n: int}\n    command: 'echo {n}'\n");
    ctx.run(["run", "p", "-P", "n=99999999999999999999999"]).user_error("is too large for an integer");
    ctx.run(["run", "p", "-P", "n=12a"]).user_error("is not an integer");
}

#[test]
fn a_float_that_is_not_a_number() {
    good_project()
        .run(["run", "p", "-P", "alpha=abc"])
        .user_error("parameter 'alpha' is declared float, but its value 'abc' is not a number");
}

#[test]
fn a_parameter_without_equals() {
    good_project().run(["run", "p", "-P", "alpha"]).user_error("parameter 'alpha' is not NAME=VALUE");
}

#[test]
fn a_repeated_parameter() {
    good_project()
        .run(["run", "p", "-P", "alpha=1", "-P", "alpha=2"])
        .user_error("parameter 'alpha' is given more than once");
}

#[test]
fn a_missing_path() {
    let ctx = good_project();
    ctx.run(["run", "p", "-P", "alpha=1", "-P", "data=nope.csv"])
        .user_error("parameter 'data' is a path, but")
        .stderr_has(&ctx.work.join("nope.csv").display().to_string())
        .hint("a relative -P path is resolved against the current directory");
}

#[test]
fn a_missing_relative_path_that_the_project_has_is_named() {
    let ctx = good_project();
    let in_project = ctx.work.join("p/data.csv").display().to_string();
    ctx.run(["run", "p", "-P", "alpha=1", "-P", "data=data.csv"])
        .user_error("parameter 'data' is a path, but")
        .stderr_has(&format!("the project has {in_project}: give that path"));
}

#[test]
fn a_uri_without_scheme() {
    good_project()
        .run(["run", "p", "-P", "alpha=1", "-P", "src=/data/x"])
        .user_error("has no scheme")
        .hint("a uri needs a scheme");
}

#[test]
fn a_placeholder_without_parameter() {
    TestContext::new()
        .file("p/MLproject", "entry_points:\n  main:\n    command: 'echo {alpha}'\n")
        .run(["run", "p", "-P", "alpha=1"])
        .user_error("uses {alpha}, but declares no parameter 'alpha'");
}

#[test]
fn a_subdirectory_that_does_not_exist_or_escapes() {
    let ctx = good_project();
    ctx.run(["run", "p#nope", "-P", "alpha=1"]).user_error("subdirectory 'nope' does not exist");
    ctx.run(["run", "p#../x", "-P", "alpha=1"]).user_error("subdirectory '../x' leaves the repository");
    let repo = ctx.work.join("repo");
    ctx.git_repo(&repo, &[("sub/MLproject", GOOD)]);
    let url = format!("file://{}", repo.display());
    ctx.run(["run", &format!("{url}#missing")]).user_error("subdirectory 'missing' does not exist in file://");
    ctx.run(["run", &format!("{url}#../../etc")]).user_error("leaves the repository");
}

#[test]
fn an_unknown_version() {
    let ctx = TestContext::new();
    let repo = ctx.work.join("repo");
    ctx.git_repo(&repo, &[("MLproject", GOOD)]);
    ctx.git(&repo, &["tag", "v1"]);
    let url = format!("file://{}", repo.display());
    ctx.run(["run", &url, "-v", "v9"])
        .user_error("version 'v9' is not a branch, tag or commit of")
        .hint("branches and tags: main, v1");
    ctx.run(["run", "repo", "-v", "deadbeef"]).user_error("version 'deadbeef' is not a branch, tag or commit");
    ctx.run(["run", ".", "-v", "main"]).user_error("needs a git repository");
}

#[test]
fn an_unreachable_git_host_fails_fast() {
    let ctx = TestContext::new();
    let start = Instant::now();
    ctx.run(["run", &format!("git://127.0.0.1:{}/repo.git", free_port())]).user_error("cannot fetch git://127.0.0.1");
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_silent_git_server_is_given_up_on() {
    let ctx = TestContext::new();
    let server = Server::silent();
    let start = Instant::now();
    ctx.run(["run", &format!("git://127.0.0.1:{}/repo.git", server.port)])
        .env("LOCKSTEP_GIT_TIMEOUT", "2")
        .status(2)
        .stderr_has("no progress for 2 s, gave up")
        .no_runs();
    assert!(start.elapsed() < Duration::from_secs(20), "bounded time: {:?}", start.elapsed());
}

#[test]
fn a_missing_project_directory() {
    TestContext::new().run(["run", "nowhere"]).user_error("no project directory at");
}

#[test]
fn an_unknown_env_manager_is_a_usage_error() {
    good_project()
        .run(["run", "p", "--env-manager", "pyenv"])
        .status(2)
        .stderr_has("unknown environment manager 'pyenv'")
        .no_runs();
}

#[test]
fn a_docker_project_with_a_python_manager() {
    let ctx = TestContext::new()
        .file("p/MLproject", "docker_env:\n  image: busybox\nentry_points:\n  main:\n    command: 'echo ran'\n");
    ctx.run(["run", "p", "--env-manager", "virtualenv"])
        .user_error("the virtualenv manager cannot run a project with a docker_env")
        .hint("omit --env-manager");
    ctx.run(["run", "p", "--env-manager", "local"]).success().stdout("ran\n");
}

#[test]
fn mlflow_run_spellings_run_or_name_lockstep_s_equivalent() {
    // As MLflow's docs write it: `mlflow run sklearn_elasticnet_wine -P alpha=0.42
    // --env-manager=local`, with the backend spelled out.
    let ctx = TestContext::new().file(
        "sklearn_elasticnet_wine/MLproject",
        "name: tutorial\nentry_points:\n  main:\n    parameters:\n      alpha: {type: float, default: 0.5}\n    command: 'echo alpha={alpha}'\n",
    );
    ctx.run(["run", "sklearn_elasticnet_wine", "-P", "alpha=0.42", "--env-manager=local", "-b", "local"])
        .success()
        .stdout("alpha=0.42\n");
    ctx.run(["run", "sklearn_elasticnet_wine", "--backend", "kubernetes"])
        .status(2)
        .stderr_has("invalid value 'kubernetes' for '--backend <BACKEND>'")
        .stderr_has("[possible values: local, slurm, ray]");
    ctx.run(["run", "sklearn_elasticnet_wine", "--run-id", "0123"])
        .status(2)
        .stderr_has("lockstep does not resume runs")
        .stderr_has("lockstep sync RUN --tracking-uri URL");
    ctx.run(["run", "sklearn_elasticnet_wine", "--storage-dir", "/tmp/x"])
        .status(2)
        .stderr_has("into the run's own directory");
    assert_eq!(ctx.records().len(), 1, "only the run that was spelled right ran");
}

#[test]
fn run_help_names_archives_and_the_store_variable_without_a_stray_equals() {
    let ctx = TestContext::new();
    let help = ctx.run(["run", "--help"]).success().stdout_has("[env: LOCKSTEP_STORE]").stdout_text();
    assert!(help.contains("an archive (.tar.gz, .tgz or .zip"), "{help}");
    assert!(!help.contains("LOCKSTEP_STORE="), "{help}");
}
