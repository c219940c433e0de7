//! Servers that misbehave and secrets in URLs: a tracking server that never answers or
//! fails at the start, `sync` with the server down, a closed stdout, git remote helpers
//! stopped with git, and git URL credentials kept out of argv and the cache.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

/// Every file under `dir` whose contents or name contain `needle`.
fn files_with(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.to_string_lossy().contains(needle) {
            found.push(path.clone());
        }
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            found.extend(files_with(&path, needle));
        } else if meta.is_file()
            && fs::read(&path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_tracking_server_that_never_answers_stops_the_run_before_it_starts() {
    let ctx = TestContext::new().file("p/MLproject", "entry_points:\n  main:\n    command: 'touch ran'\n");
    let server = Server::silent();
    // By experiment id (the default experiment) and by name: the first request differs.
    for extra in [&[][..], &["--experiment-name", "e"][..]] {
        ctx.run(["run", "p"])
            .args(extra)
            .env("MLFLOW_TRACKING_URI", server.url(""))
            .env("LOCKSTEP_TRACKING_TIMEOUT", "1")
            // A guard against the old behaviour, which waited for 600 s and more.
            .timeout(Duration::from_secs(90))
            .user_error(&format!("the MLflow server at {} did not answer within 1 s", server.url("")))
            .hint("")
            .stderr_has("LOCKSTEP_TRACKING_TIMEOUT");
        assert!(!ctx.work.join("p/ran").exists(), "nothing ran");
    }
}

#[test]
fn a_tracking_server_failing_at_the_start_is_the_users_to_fix() {
    let ctx = TestContext::new().file("p/MLproject", "entry_points:\n  main:\n    command: 'touch ran'\n");
    let server = Server::failing();
    for extra in [&[][..], &["--experiment-name", "e"][..]] {
        ctx.run(["run", "p"])
            .args(extra)
            .env("MLFLOW_TRACKING_URI", server.url(""))
            .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
            .env("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
            .user_error("(500 INTERNAL_ERROR): database is locked")
            .hint("the server failed the request: its log says why");
        assert!(!ctx.work.join("p/ran").exists(), "nothing ran");
    }
}

#[test]
fn sync_with_the_server_down_gives_its_own_hint() {
    let ctx = TestContext::new();
    ctx.project("q", &[("MLproject", "entry_points:\n  main:\n    command: 'true'\n")]);
    ctx.run(["run", "q"]).success();
    let id = ctx.only_record()["run_id"].as_str().unwrap().to_string();
    let port = free_port();
    ctx.run(["sync", &id])
        .env("MLFLOW_TRACKING_URI", format!("http://127.0.0.1:{port}"))
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .status(2)
        .stderr_has(&format!("error: cannot sync run {id}: cannot reach the MLflow server"))
        .stderr_has(&format!("`lockstep sync {id}` again once the server answers"))
        .stderr_lacks("nothing was run");
    assert_eq!(ctx.only_record()["tracking"], serde_json::Value::Null, "the record is unchanged");
}

#[test]
fn sync_to_a_failing_server_gives_its_own_hint() {
    let ctx = TestContext::new();
    ctx.project("q", &[("MLproject", "entry_points:\n  main:\n    command: 'true'\n")]);
    ctx.run(["run", "q"]).success();
    let id = ctx.only_record()["run_id"].as_str().unwrap().to_string();
    let server = Server::failing();
    ctx.run(["sync", &id, "--tracking-uri", &server.url("")])
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .status(2)
        .stderr_has(&format!("error: cannot sync run {id}: "))
        .hint(&format!("the server failed or refused the request (its log says why); the local record is unchanged: `lockstep sync {id}` again"))
        .stderr_lacks("othing was run");
    assert_eq!(ctx.only_record()["tracking"], serde_json::Value::Null, "the record is unchanged");
}

/// Run lockstep with a stdout whose reader is gone before anything is written.
fn with_closed_stdout(ctx: &TestContext, args: &[&str]) -> std::process::Output {
    let mut child = ctx.lockstep_process().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_stdout_ends_quietly_with_the_runs_exit_code() {
    let ctx = TestContext::new();
    ctx.project(
        "p",
        &[("MLproject", "entry_points:\n  main:\n    command: 'echo hi'\n  bad:\n    command: 'exit 3'\n")],
    );
    for (args, code) in [
        (&["run", "p", "--json"][..], 0),
        (&["run", "p", "-e", "bad", "--json"][..], 3),
        (&["runs", "--json"][..], 0),
        (&["runs"][..], 0),
    ] {
        let out = with_closed_stdout(&ctx, args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("error"), "{args:?}: {}", stderr(&out));
    }
    let id = ctx.records()[0]["run_id"].as_str().unwrap().to_string();
    let out = with_closed_stdout(&ctx, &["show", &id, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

/// Wait for a stopped git's remote helpers to be gone.
fn assert_no_helpers(port: u16) {
    let needle = format!("127.0.0.1:{port}");
    assert!(
        wait_for(Duration::from_secs(5), || processes_with(&needle).is_empty()),
        "git's helpers outlive it: {:?}",
        processes_with(&needle)
    );
}

#[test]
fn a_stalled_clone_stops_gits_remote_helpers_too() {
    let ctx = TestContext::new();
    let server = Server::silent();
    let port = server.port;
    ctx.run(["run", &format!("http://127.0.0.1:{port}/repo.git")])
        .env("LOCKSTEP_GIT_TIMEOUT", "1")
        .timeout(Duration::from_secs(60))
        .status(2)
        .hint("");
    assert_no_helpers(port);
}

#[test]
fn an_interrupted_clone_stops_gits_remote_helpers_too() {
    let ctx = TestContext::new();
    let server = Server::silent();
    let port = server.port;
    let mut runner = ctx
        .lockstep_process()
        .args(["run", &format!("http://127.0.0.1:{port}/repo.git")])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let helper = format!("git-remote-http origin http://127.0.0.1:{port}");
    assert!(wait_for(Duration::from_secs(30), || !processes_with(&helper).is_empty()), "git's helper started");
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(runner.id() as i32, libc::SIGINT) };
    let status = runner.wait().unwrap();
    assert_ne!(status.code(), Some(0));
    assert_no_helpers(port);
}

#[test]
fn git_url_credentials_reach_the_server_but_never_argv_or_the_cache() {
    let ctx = TestContext::new();
    let served = ctx.work.join("served");
    ctx.git_repo(&served.join("repo.git"), &[("MLproject", "entry_points:\n  main:\n    command: 'echo hi'\n")]);
    let server = GitHttpServer::start(&ctx, &served, &["tok-SECRET-1", "tok%SECRET-2"], "SECRET-");

    // The server wants credentials.
    ctx.run(["run", &server.url("", "repo.git")]).status(2).stderr_has("cannot");
    ctx.run(["run", &server.url("user:tok-SECRET-1@", "repo.git")]).success().stdout("hi\n");
    // Another token, percent-encoded in the URL as git expects: the same mirror, fetched.
    ctx.run(["run", &server.url("user:tok%25SECRET-2@", "repo.git")]).success().stdout("hi\n");

    assert_eq!(*server.leaks.lock().unwrap(), Vec::<String>::new(), "no token in any argv");
    let mirrors: Vec<PathBuf> = fs::read_dir(ctx.cache.join("git-v1"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("HEAD").is_file())
        .collect();
    assert_eq!(mirrors.len(), 1, "one mirror whatever the token");
    let config = fs::read_to_string(mirrors[0].join("config")).unwrap();
    assert!(config.contains(&format!("url = http://127.0.0.1:{}/repo.git", server.port())), "{config}");
    for dir in [&ctx.cache, &ctx.store(), &ctx.home] {
        for token in ["SECRET-1", "SECRET-2"] {
            assert_eq!(files_with(dir, token), Vec::<PathBuf>::new(), "no token written under {}", dir.display());
        }
    }
    for r in ctx.records() {
        assert_eq!(r["source"]["repo_url"], server.url("", "repo.git"), "recorded without credentials");
    }
}
