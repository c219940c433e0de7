//! Python and conda environments with real installers and real packages: uv and the pip
//! fallback from PyPI, native conda from a local channel built here, the cache (reuse, new
//! keys, concurrency, interrupted builds, list and prune), the lock and its rebuild.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::conda::{self, make_channel, standard_packages};
use crate::support::uv::path_with_uv;
use crate::support::*;

/// uv's and pip's download caches, shared by all tests (and test runs) so that PyPI is
/// asked once.
fn shared_cache(tool: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("installer-caches").join(tool)
}

/// The machine's network settings (certificate bundles, proxies), which installers need to
/// reach PyPI as the user would.
fn network_settings() -> Vec<(String, String)> {
    const NAMES: [&str; 10] = [
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "PIP_CERT",
        "REQUESTS_CA_BUNDLE",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "NO_PROXY",
        "https_proxy",
        "http_proxy",
        "no_proxy",
    ];
    NAMES.iter().filter_map(|n| std::env::var(n).ok().map(|v| (n.to_string(), v))).collect()
}

/// `lockstep` with the shared installer caches and the network settings.
pub(crate) fn lockstep(ctx: &TestContext) -> assert_cmd::Command {
    let mut cmd = ctx.lockstep();
    cmd.env("PATH", path_with_uv())
        .env("UV_CACHE_DIR", shared_cache("uv"))
        .env("PIP_CACHE_DIR", shared_cache("pip"))
        .envs(network_settings());
    cmd
}

fn lockstep_process(ctx: &TestContext) -> std::process::Command {
    let mut cmd = ctx.lockstep_process();
    cmd.env("PATH", path_with_uv())
        .env("UV_CACHE_DIR", shared_cache("uv"))
        .env("PIP_CACHE_DIR", shared_cache("pip"))
        .envs(network_settings());
    cmd
}

pub(crate) const SIX_PROJECT: &str = "name: six\npython_env: python_env.yaml\nentry_points:\n  main:\n    command: \"python -c 'import six, sys; print(six.__version__, sys.prefix)'\"\n";

pub(crate) fn six_env(python: &str) -> String {
    format!("python: \"{python}\"\nbuild_dependencies:\n  - pip\ndependencies:\n  - six==1.16.0\n")
}

pub(crate) fn python_minor() -> String {
    let (_, version) = conda::system_python();
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// The built environments' directory names in the cache (leftovers included).
pub(crate) fn env_dirs(ctx: &TestContext) -> Vec<String> {
    let Ok(entries) = fs::read_dir(ctx.cache.join("envs-v1")) else { return vec![] };
    let mut names: Vec<String> =
        entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n != ".locks").collect();
    names.sort();
    names
}

pub(crate) fn package<'a>(env: &'a Value, name: &str) -> &'a Value {
    env["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} is in the lock: {env}"))
}

#[test]
fn python_env_through_uv_is_built_once_and_reused() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", SIX_PROJECT), ("python_env.yaml", &six_env(&python_minor()))]);
    let out = lockstep(&ctx).args(["run", "p", "--json"]).assert().success().get_output().clone();
    let err = stderr(&out);
    assert!(err.contains("built the virtualenv environment"), "{err}");
    for phase in [
        "creating the virtualenv",
        "resolving the build dependencies",
        "installing the build dependencies",
        "resolving the dependencies",
        "installing the dependencies",
    ] {
        assert_eq!(err.lines().filter(|l| l.contains(phase)).count(), 1, "one line for {phase:?}: {err}");
    }
    let r = json(&out);
    assert_eq!(r["status"], "FINISHED");
    let env = &r["environment"];
    assert_eq!(env["manager"], "virtualenv");
    assert!(env["installer"].as_str().unwrap().starts_with("uv "), "{env}");
    assert_eq!(env["python"]["implementation"], "cpython");
    assert!(env["python"]["version"].as_str().unwrap().starts_with(&python_minor()));
    let six = package(env, "six");
    assert_eq!(six["version"], "1.16.0");
    assert_eq!(six["sha256"], "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254");
    assert!(six["url"].as_str().unwrap().ends_with("six-1.16.0-py2.py3-none-any.whl"));
    let key = env["key"].as_str().unwrap();
    assert_eq!(env_dirs(&ctx), [key]);
    let child_out = err.lines().find(|l| l.starts_with("1.16.0 ")).expect("the entry point printed");
    assert!(child_out.ends_with(&format!("envs-v1/{key}")), "the run used the cached env: {child_out}");
    let site = ctx.cache.join("envs-v1").join(key).join(format!("lib/python{}/site-packages", python_minor()));
    let compiled = fs::read_dir(site.join("__pycache__")).map(|d| d.flatten().count()).unwrap_or(0);
    assert!(compiled > 0, "byte code is compiled when the environment is built: {}", site.display());

    let before = fs::metadata(ctx.cache.join("envs-v1").join(key)).unwrap().modified().unwrap();
    let out = lockstep(&ctx).args(["run", "p", "--json"]).assert().success().get_output().clone();
    let err = stderr(&out);
    // " uv": the test's temporary directory may hold "uv" in its random name.
    assert!(!err.contains("built the") && !err.contains(" uv"), "no rebuild, no installer: {err}");
    let again = json(&out);
    assert_eq!(again["environment"], r["environment"], "the same lock");
    assert_eq!(fs::metadata(ctx.cache.join("envs-v1").join(key)).unwrap().modified().unwrap(), before);

    let listed = json(&lockstep(&ctx).args(["env", "list", "--json"]).assert().success().get_output().clone());
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["key"], key);
    assert_eq!(listed[0]["manager"], "virtualenv");
    assert!(listed[0]["size"].as_u64().unwrap() > 0);
}

#[test]
fn the_pip_fallback_builds_without_uv() {
    let ctx = TestContext::new();
    let (python, _) = conda::system_python();
    let bin = ctx.work.join("bin");
    fs::create_dir_all(&bin).unwrap();
    symlink(&python, bin.join("python3")).unwrap();
    symlink(&python, bin.join("python")).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    ctx.project("p", &[("MLproject", SIX_PROJECT), ("python_env.yaml", &six_env(&python_minor()))]);
    let out = lockstep(&ctx).env("PATH", &path).args(["run", "p", "--json"]).assert().success().get_output().clone();
    let env = &json(&out)["environment"];
    assert!(env["installer"].as_str().unwrap().starts_with("pip "), "{env}");
    let six = package(env, "six");
    assert_eq!(six["version"], "1.16.0");
    assert_eq!(six["sha256"], "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254");
    assert!(package(env, "pip")["version"].is_string());
    let err = lockstep(&ctx)
        .env("PATH", &path)
        .args(["run", "p", "--env-manager", "uv"])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8_lossy(&err);
    assert!(err.contains("error: uv is not on PATH") && err.contains("hint: install it"), "{err}");
}

#[test]
fn a_changed_requirements_file_gives_a_new_environment() {
    let ctx = TestContext::new();
    let env_yaml = format!("python: \"{}\"\ndependencies:\n  - -r requirements.txt\n", python_minor());
    let project = ctx.project(
        "p",
        &[("MLproject", SIX_PROJECT), ("python_env.yaml", &env_yaml), ("requirements.txt", "six==1.16.0\n")],
    );
    let first = json(&lockstep(&ctx).args(["run", "p", "--json"]).assert().success().get_output().clone());
    fs::write(project.join("requirements.txt"), "six==1.17.0\n").unwrap();
    let second = json(&lockstep(&ctx).args(["run", "p", "--json"]).assert().success().get_output().clone());
    assert_ne!(first["environment"]["key"], second["environment"]["key"]);
    assert_eq!(package(&second["environment"], "six")["version"], "1.17.0");
    assert_eq!(env_dirs(&ctx).len(), 2);

    // The same spec in another project shares the environment.
    ctx.project(
        "q",
        &[("MLproject", SIX_PROJECT), ("python_env.yaml", &env_yaml), ("requirements.txt", "six==1.17.0\n")],
    );
    let third = json(&lockstep(&ctx).args(["run", "q", "--json"]).assert().success().get_output().clone());
    assert_eq!(third["environment"]["key"], second["environment"]["key"]);
    assert_eq!(env_dirs(&ctx).len(), 2);
}

#[test]
fn four_concurrent_runs_build_one_environment() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", SIX_PROJECT), ("python_env.yaml", &six_env(&python_minor()))]);
    let children: Vec<_> = (0..4)
        .map(|_| {
            // Copies: runs in place of one directory take turns.
            lockstep_process(&ctx)
                .args(["run", "p", "--isolated"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut builds = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        builds += err.matches("built the virtualenv environment").count();
    }
    assert_eq!(builds, 1, "one build for four runs");
    assert_eq!(env_dirs(&ctx).len(), 1);
    let records = ctx.records();
    assert_eq!(records.len(), 4);
    assert!(records.iter().all(|r| r["environment"] == records[0]["environment"]));
}

#[test]
fn a_build_killed_midway_leaves_nothing_usable_and_the_next_run_builds() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", SIX_PROJECT), ("python_env.yaml", &six_env(&python_minor()))]);
    let mut child =
        lockstep_process(&ctx).args(["run", "p"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let building = wait_for(Duration::from_secs(60), || env_dirs(&ctx).iter().any(|n| n.starts_with(".tmp")));
    assert!(building, "the build started");
    child.kill().unwrap();
    child.wait().unwrap();
    let leftovers = env_dirs(&ctx);
    assert!(leftovers.iter().all(|n| n.starts_with(".tmp")), "nothing looks built: {leftovers:?}");
    assert!(ctx.records().is_empty(), "no record for a run that never started");

    let r = json(&lockstep(&ctx).args(["run", "p", "--json"]).assert().success().get_output().clone());
    assert_eq!(env_dirs(&ctx), [r["environment"]["key"].as_str().unwrap()], "the leftover is gone");
    assert_eq!(package(&r["environment"], "six")["version"], "1.16.0");
}

#[test]
fn env_prune_removes_unused_environments() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", SIX_PROJECT), ("python_env.yaml", &six_env(&python_minor()))]);
    lockstep(&ctx).args(["run", "p"]).assert().success();
    let kept = json(
        &lockstep(&ctx).args(["env", "prune", "--older-than", "1h", "--json"]).assert().success().get_output().clone(),
    );
    assert_eq!(kept["removed"].as_array().unwrap().len(), 0, "used a moment ago");
    let pruned =
        json(&lockstep(&ctx).args(["env", "prune", "--all", "--json"]).assert().success().get_output().clone());
    assert_eq!(pruned["removed"].as_array().unwrap().len(), 1);
    assert!(env_dirs(&ctx).is_empty());
    lockstep(&ctx).args(["env", "list"]).assert().success().stdout("");
    // An equivalent run is reused from its key alone: its pruned environment is not rebuilt.
    let out = lockstep(&ctx).args(["run", "p", "--reuse"]).assert().success().get_output().clone();
    assert!(stderr(&out).contains("reusing run"), "{}", stderr(&out));
    assert!(env_dirs(&ctx).is_empty(), "nothing was built");
}

#[test]
fn a_conda_project_runs_with_virtualenv_as_mlflow_converts_it() {
    let ctx = TestContext::new();
    let conda = format!(
        "name: c\nchannels: [conda-forge]\ndependencies:\n  - python={}\n  - numpy\n  - pip:\n    - six==1.16.0\n",
        python_minor()
    );
    let manifest = "conda_env: conda.yaml\nentry_points:\n  main:\n    command: \"python -c 'import six; print(six.__version__)'\"\n";
    ctx.project("p", &[("MLproject", manifest), ("conda.yaml", &conda)]);
    let out = lockstep(&ctx).args(["run", "p", "--env-manager", "virtualenv"]).assert().success().get_output().clone();
    assert!(String::from_utf8_lossy(&out.stdout).contains("1.16.0"));
    assert!(stderr(&out).contains("not installed in a virtualenv: numpy"), "{}", stderr(&out));
    assert_eq!(ctx.only_record()["environment"]["manager"], "virtualenv");
}

// ---- conda, natively, from a local channel ----

fn conda_project(ctx: &TestContext, channel: &str, deps: &str, command: &str) -> PathBuf {
    let conda = format!("name: c\nchannels:\n  - {channel}\ndependencies:\n{deps}");
    let manifest = format!("conda_env: conda.yaml\nentry_points:\n  main:\n    command: '{command}'\n");
    ctx.project("c", &[("MLproject", &manifest), ("conda.yaml", &conda)])
}

fn conda_versions(env: &Value) -> Vec<(String, String)> {
    env["conda_packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["version"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn conda_solves_installs_and_activates_from_a_local_channel() {
    let ctx = TestContext::new();
    let channel = make_channel(&ctx.work.join("channel"), &standard_packages());
    let (_, py_version) = conda::system_python();
    let deps = format!(
        "  - greeter=1.0\n  - python={}\n  - tinylib\n  - activator\n  - pip:\n    - six==1.16.0\n",
        python_minor()
    );
    let command = "greet && cat \"$CONDA_PREFIX/share/greeter/where.txt\" && echo \"$ACTIVATED_BY\" && tinytool && python -c \"import six, tinylib; print(six.__version__, tinylib.VALUE)\"";
    conda_project(&ctx, &channel, &deps, command);
    let out = lockstep(&ctx).args(["run", "c", "--json"]).assert().success().get_output().clone();
    let r = json(&out);
    let env = &r["environment"];
    let key = env["key"].as_str().unwrap();
    let prefix = ctx.cache.join("envs-v1").join(key);
    let printed = stderr(&out);
    assert!(printed.contains("greeter 1.0 says message two"), "greeter 1.0 needs libmsg >=2: {printed}");
    assert!(printed.contains(&format!("installed in {}", prefix.display())), "the placeholder is replaced: {printed}");
    assert!(printed.contains(&format!("activator in {}", prefix.display())), "activate.d ran: {printed}");
    assert!(printed.contains("tinytool runs with 42"), "the entry point works: {printed}");
    assert!(printed.contains("1.16.0 42"), "pip and noarch python packages import: {printed}");
    assert_eq!(env["manager"], "conda");
    assert_eq!(
        conda_versions(env),
        [
            ("activator".to_string(), "1.0".to_string()),
            ("greeter".into(), "1.0".into()),
            ("libmsg".into(), "2.0".into()),
            ("python".into(), py_version.clone()),
            ("tinylib".into(), "1.0".into()),
        ]
    );
    let greeter = &env["conda_packages"][1];
    assert_eq!(greeter["build"], "0");
    assert_eq!(greeter["channel"], format!("{channel}/"));
    assert_eq!(greeter["sha256"].as_str().unwrap().len(), 64);
    assert!(greeter["url"].as_str().unwrap().ends_with("/noarch/greeter-1.0-0.tar.bz2"));
    assert_eq!(package(env, "six")["version"], "1.16.0");
    assert_eq!(env["python"]["version"], py_version);
    assert!(prefix.join("conda-meta/greeter-1.0-0.json").is_file());

    // Unpinned, the newest greeter wins and brings the older libmsg.
    let ctx2 = TestContext::new();
    let channel2 = make_channel(&ctx2.work.join("channel"), &standard_packages());
    conda_project(&ctx2, &channel2, "  - greeter\n", "greet");
    let out = lockstep(&ctx2).args(["run", "c", "--json"]).assert().success().get_output().clone();
    assert!(stderr(&out).contains("greeter 2.0 says message one"), "{}", stderr(&out));
    let versions = conda_versions(&json(&out)["environment"]);
    assert_eq!(versions, [("greeter".to_string(), "2.0".to_string()), ("libmsg".into(), "1.0".into())]);
}

#[test]
fn a_conda_lock_rebuilds_the_same_packages() {
    let ctx = TestContext::new();
    let channel = make_channel(&ctx.work.join("channel"), &standard_packages());
    conda_project(&ctx, &channel, "  - greeter\n  - activator\n", "greet");
    let r = json(&lockstep(&ctx).args(["run", "c", "--json"]).assert().success().get_output().clone());
    let recorded: lockstep::env::EnvRecord = serde_json::from_value(r["environment"].clone()).unwrap();
    let other_cache = lockstep::support::cache::Cache::at(ctx.work.join("other-cache"));
    let prepared = lockstep::env::from_lock(&recorded)
        .unwrap()
        .prepare(lockstep::env::PrepareContext {
            project_dir: &ctx.work,
            exclusions: &lockstep::record::store_exclusions(),
            cache: &other_cache,
        })
        .unwrap();
    let rebuilt = prepared.record().lock().unwrap().clone();
    let original = recorded.lock().unwrap();
    assert_eq!(rebuilt.conda_packages, original.conda_packages);
    let run = lockstep::env::RunContext {
        run_id: "r",
        run_dir: &ctx.work,
        store_dir: &ctx.work,
        pycache_dir: &ctx.work,
        extra: &[],
        shared_dirs: &[],
    };
    let lockstep::env::Invocation::Process(inv) = prepared.wrap("greet", &ctx.work, &run) else {
        panic!("a conda environment runs a process")
    };
    let out = std::process::Command::new(&inv.program)
        .args(&inv.args)
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&inv.cwd)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "greeter 2.0 says message one\n");
}

// ---- bad input: a clear error, exit 2, no run left behind ----

fn expect_env_error(cmd: &mut assert_cmd::Command, ctx: &TestContext, message: &str) -> String {
    let out = cmd.assert().code(2).get_output().clone();
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:") || l.starts_with("hint:")).collect();
    assert!(lines.first().is_some_and(|l| l.contains(message)), "expected {message:?} in {err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{err}");
    assert!(out.stdout.is_empty());
    ctx.assert_no_runs();
    assert!(env_dirs(ctx).is_empty(), "no environment left: {:?}", env_dirs(ctx));
    err
}

#[test]
fn python_env_bad_input() {
    let ctx = TestContext::new();
    let py = python_minor();
    ctx.project(
        "unknown-key",
        &[("MLproject", SIX_PROJECT), ("python_env.yaml", &format!("python: '{py}'\ndepndencies: [six]\n"))],
    );
    expect_env_error(
        lockstep(&ctx).args(["run", "unknown-key"]),
        &ctx,
        "python_env.yaml:2:1: unknown field `depndencies`",
    );
    ctx.project(
        "malformed",
        &[("MLproject", SIX_PROJECT), ("python_env.yaml", "python: '3.11'\ndependencies: [six\n")],
    );
    expect_env_error(lockstep(&ctx).args(["run", "malformed"]), &ctx, "error: python_env.yaml:");
    ctx.project("no-python", &[("MLproject", SIX_PROJECT), ("python_env.yaml", "python: '3.99'\n")]);
    let err =
        expect_env_error(lockstep(&ctx).args(["run", "no-python"]), &ctx, "no Python interpreter matches python 3.99");
    assert!(err.contains("hint: looked in PATH (python3.99, python3, python)"), "{err}");
    let unknown = format!("python: '{py}'\ndependencies:\n  - lockstep-no-such-package-xyz==1.0\n");
    ctx.project("unknown-pkg", &[("MLproject", SIX_PROJECT), ("python_env.yaml", &unknown)]);
    let err = expect_env_error(lockstep(&ctx).args(["run", "unknown-pkg"]), &ctx, "failed");
    let words: Vec<&str> = err.lines().filter(|l| l.starts_with("  ")).collect();
    assert!(
        words.iter().any(|l| l.contains("lockstep-no-such-package-xyz")),
        "the installer's words, a line each: {err}"
    );
    assert!(!err.contains(" | "), "{err}");
    let conflict = format!("python: '{py}'\ndependencies:\n  - six==1.16.0\n  - six==1.17.0\n");
    ctx.project("conflict", &[("MLproject", SIX_PROJECT), ("python_env.yaml", &conflict)]);
    let err = expect_env_error(lockstep(&ctx).args(["run", "conflict"]), &ctx, "failed");
    assert!(err.lines().any(|l| l.starts_with("  ") && l.contains("six==1.17.0")), "{err}");
    let port = free_port();
    ctx.project("offline", &[("MLproject", SIX_PROJECT), ("python_env.yaml", &six_env(&py))]);
    let start = Instant::now();
    let err = expect_env_error(
        lockstep(&ctx)
            .env("UV_INDEX_URL", format!("http://127.0.0.1:{port}/simple"))
            .env("UV_CACHE_DIR", ctx.work.join("empty-uv-cache"))
            .args(["run", "offline"]),
        &ctx,
        "failed",
    );
    assert!(err.contains(&format!("127.0.0.1:{port}")), "the index is named: {err}");
    assert!(start.elapsed() < Duration::from_secs(60), "bounded time: {:?}", start.elapsed());
    ctx.project("conda-only", &[("MLproject", SIX_PROJECT), ("python_env.yaml", &six_env(&py))]);
    let err = expect_env_error(
        lockstep(&ctx).args(["run", "conda-only", "--env-manager", "conda"]),
        &ctx,
        "the conda manager cannot run a project with a python_env",
    );
    assert!(err.contains("hint: use --env-manager virtualenv"), "{err}");
}

#[test]
fn conda_bad_input() {
    let ctx = TestContext::new();
    let channel = make_channel(&ctx.work.join("channel"), &standard_packages());
    conda_project(&ctx, &channel, "  - greeter\n  - lockstep-nosuchpkg\n", "greet");
    expect_env_error(lockstep(&ctx).args(["run", "c"]), &ctx, "lockstep-nosuchpkg");
    conda_project(&ctx, &channel, "  - greeter=1.0\n  - libmsg<2\n", "greet");
    let err = expect_env_error(lockstep(&ctx).args(["run", "c"]), &ctx, "cannot be solved");
    assert!(err.contains("libmsg"), "{err}");
    let port = free_port();
    conda_project(&ctx, &format!("http://127.0.0.1:{port}/chan"), "  - greeter\n", "greet");
    let start = Instant::now();
    expect_env_error(
        lockstep(&ctx).args(["run", "c"]),
        &ctx,
        &format!("cannot read conda channel http://127.0.0.1:{port}/chan"),
    );
    assert!(start.elapsed() < Duration::from_secs(30));
    let silent = Server::silent();
    let silent_port = silent.port;
    conda_project(&ctx, &format!("http://127.0.0.1:{silent_port}/chan"), "  - greeter\n", "greet");
    let start = Instant::now();
    expect_env_error(
        lockstep(&ctx).env("LOCKSTEP_CONDA_TIMEOUT", "2").args(["run", "c"]),
        &ctx,
        "cannot read conda channel",
    );
    assert!(start.elapsed() < Duration::from_secs(20), "a silent channel is given up on: {:?}", start.elapsed());
    ctx.project("c", &[("conda.yaml", "dependencies:\n  - greeter\n  - [oops\n")]);
    expect_env_error(lockstep(&ctx).args(["run", "c"]), &ctx, "error: conda.yaml:");
    ctx.project("c", &[("conda.yaml", "channel: [x]\ndependencies: [greeter]\n")]);
    expect_env_error(lockstep(&ctx).args(["run", "c"]), &ctx, "conda.yaml:1:1: unknown field `channel`");
    conda_project(&ctx, &channel, "  - 'greeter >=>= 1'\n", "greet");
    expect_env_error(lockstep(&ctx).args(["run", "c"]), &ctx, "is not a conda match spec");
}

#[test]
fn the_sklearn_example_trains_in_its_python_env() {
    let ctx = TestContext::new();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sklearn");
    let out = lockstep(&ctx)
        .args(["run", example.to_str().unwrap(), "--isolated", "-P", "alpha=0.1", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let r = json(&out);
    assert_eq!(r["status"], "FINISHED");
    assert_eq!(package(&r["environment"], "scikit-learn")["version"], "1.5.2");
    assert!(package(&r["environment"], "numpy")["sha256"].is_string());
    assert_eq!(r["outputs"][0]["path"], "metrics.json");
    let metrics_file = Path::new(r["outputs_dir"].as_str().unwrap()).join("metrics.json");
    let metrics: Value = serde_json::from_slice(&fs::read(metrics_file).unwrap()).unwrap();
    assert_eq!(metrics["alpha"], 0.1);
    assert_eq!(metrics["rows"], 442);
    assert_eq!(metrics["sklearn"], "1.5.2");
    assert!(metrics["r2"].as_f64().unwrap() > 0.0, "{metrics}");
}

/// A stand-in for micromamba: writes a prefix as micromamba would (a `conda-meta` record and
/// files holding the prefix path) so that the hand-off to an external tool can be checked
/// without a conda installation on the machine.
const FAKE_MICROMAMBA: &str = r#"#!/bin/sh
if [ "$1" = "--version" ]; then echo 1.5.8; exit 0; fi
[ "$1" = create ] && [ "$2" = --yes ] && [ "$3" = --prefix ] && [ "$5" = --file ] || { echo "bad arguments: $*" >&2; exit 9; }
prefix=$4
grep -q tool "$6" || { echo "the conda file is not passed" >&2; exit 9; }
mkdir -p "$prefix/conda-meta" "$prefix/bin" "$prefix/share"
printf '{"name": "tool", "version": "1.0", "build": "0", "build_number": 0, "channel": "https://example.invalid/chan", "subdir": "noarch", "url": "https://example.invalid/chan/noarch/tool-1.0-0.tar.bz2", "fn": "tool-1.0-0.tar.bz2", "md5": "0123456789abcdef0123456789abcdef", "depends": []}' > "$prefix/conda-meta/tool-1.0-0.json"
printf '#!/bin/sh\necho "tool in %s"\n' "$prefix" > "$prefix/bin/tool"
chmod +x "$prefix/bin/tool"
printf '%s\n' "$prefix" > "$prefix/share/where.txt"
"#;

#[test]
fn an_external_micromamba_builds_when_asked_for() {
    let ctx = TestContext::new();
    let tool = ctx.write("tools/micromamba", FAKE_MICROMAMBA);
    fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    conda_project(&ctx, "conda-forge", "  - tool\n", "tool && cat \"$CONDA_PREFIX/share/where.txt\"");
    let out = lockstep(&ctx)
        .env("MLFLOW_CONDA_CREATE_ENV_CMD", &tool)
        .args(["run", "c", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let r = json(&out);
    let env = &r["environment"];
    assert_eq!(env["installer"], "micromamba 1.5.8");
    assert_eq!(conda_versions(env), [("tool".to_string(), "1.0".to_string())]);
    let prefix = ctx.cache.join("envs-v1").join(env["key"].as_str().unwrap());
    let printed = stderr(&out);
    assert!(printed.contains(&format!("tool in {}\n{}\n", prefix.display(), prefix.display())), "{printed}");
}

#[test]
fn verify_rebuilds_a_virtualenv_from_its_lock_once_none_holds_it_and_status_sees_a_changed_spec() {
    let ctx = TestContext::new();
    let manifest = "python_env: python_env.yaml\nentry_points:\n  main:\n    command: \"python -c 'import six; open(\\\"out.txt\\\", \\\"w\\\").write(six.__version__)'\"\n    outputs: [out.txt]\n";
    let project = ctx.project("p", &[("MLproject", manifest), ("python_env.yaml", &six_env(&python_minor()))]);
    let r = json(&lockstep(&ctx).args(["run", "p", "--json"]).assert().success().get_output().clone());
    let id = r["run_id"].as_str().unwrap();
    // The environment the run used holds the lock: verify runs in it.
    let out = lockstep(&ctx).args(["verify", id]).assert().success().get_output().clone();
    let rerun = ctx.records().into_iter().find(|x| x["verifies"] == id).expect("the verification run");
    assert_eq!(rerun["environment"]["key"], r["environment"]["key"], "{}", stderr(&out));
    // Once it is gone, verify builds one from the lock.
    lockstep(&ctx).args(["env", "prune", "--all"]).assert().success();
    let out = lockstep(&ctx).args(["verify", id]).assert().success().get_output().clone();
    assert!(String::from_utf8_lossy(&out.stdout).contains("reproduced"), "{}", String::from_utf8_lossy(&out.stdout));
    let reruns: Vec<Value> = ctx.records().into_iter().filter(|x| x["verifies"] == id).collect();
    let rerun = reruns.last().expect("the second verification run").clone();
    assert_eq!(rerun["environment"]["packages"], r["environment"]["packages"], "the locked packages, exactly");
    assert_eq!(rerun["environment"]["python"], r["environment"]["python"]);
    assert_ne!(rerun["environment"]["key"], r["environment"]["key"], "built from the lock, not the spec");

    let same = lockstep(&ctx).args(["status", id]).assert().success().get_output().clone();
    assert!(
        String::from_utf8_lossy(&same.stdout).contains("environment  same"),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );
    fs::write(project.join("python_env.yaml"), six_env(&python_minor()).replace("1.16.0", "1.17.0")).unwrap();
    let changed = String::from_utf8_lossy(&lockstep(&ctx).args(["status", id]).output().unwrap().stdout).into_owned();
    assert!(changed.contains("virtualenv environment changed"), "{changed}");
}

#[test]
fn sigterm_during_a_build_stops_the_installer_and_leaves_no_run() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", SIX_PROJECT), ("python_env.yaml", &six_env(&python_minor()))]);
    // A uv that hangs, so that the signal surely comes while it runs.
    let bin = ctx.work.join("bin");
    let marker = ctx.work.join("uv.pid");
    write_file(&bin.join("uv"), &format!("#!/bin/sh\necho $$ > {}\nexec sleep 60\n", marker.display()));
    std::fs::set_permissions(bin.join("uv"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut child = lockstep_process(&ctx)
        .env("PATH", path)
        .args(["run", "p", "--env-manager", "uv"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(Duration::from_secs(30), || fs::read_to_string(&marker).is_ok_and(|s| s.ends_with('\n'))));
    let uv: i32 = fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
    let sent = std::time::Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(143));
    assert!(sent.elapsed() < Duration::from_secs(10), "the installer was not waited for: {:?}", sent.elapsed());
    assert!(wait_for(Duration::from_secs(5), || !alive(uv)), "the installer is gone");
    ctx.assert_no_runs();
    assert!(env_dirs(&ctx).iter().all(|n| n.starts_with(".tmp")), "nothing looks built");
}

#[test]
fn a_sweep_builds_its_python_env_once_for_all_its_trials() {
    let ctx = TestContext::new();
    let manifest = "name: six\npython_env: python_env.yaml\nentry_points:\n  main:\n    parameters:\n      a: int\n    command: \"python -c 'import six; print(six.__version__, {a})'\"\n";
    ctx.project("p", &[("MLproject", manifest), ("python_env.yaml", &six_env(&python_minor()))]);
    let out =
        lockstep(&ctx).args(["sweep", "p", "-P", "a=1,2,3", "--jobs", "2"]).assert().success().get_output().clone();
    let err = stderr(&out);
    assert_eq!(err.matches("built the virtualenv environment").count(), 1, "{err}");
    let records = ctx.records();
    assert_eq!(records.len(), 3);
    let key = records[0]["environment"]["key"].as_str().unwrap().to_string();
    assert!(records.iter().all(|r| r["environment"]["key"] == key.as_str() && r["status"] == "FINISHED"));
    assert_eq!(env_dirs(&ctx), [key]);
}
