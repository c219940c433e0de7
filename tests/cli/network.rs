//! Servers that misbehave and secrets in URLs: a tracking server that never answers or
//! fails at the start, `sync` with the server down, a closed stdout, git remote helpers
//! stopped with git, and git URL credentials kept out of argv and the cache.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::context::*;
use crate::tracking::base64_of;

/// A server on 127.0.0.1 that accepts connections and never answers; returns its port.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    port
}

/// A request as the test servers see it.
struct Request {
    method: String,
    path: String,
    query: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn read_request(conn: &mut TcpStream) -> Option<Request> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = conn.read(&mut buf).ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut parts = lines.next()?.split(' ');
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (path, query) =
        target.split_once('?').map(|(p, q)| (p.to_string(), q.to_string())).unwrap_or((target, String::new()));
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut buf).ok().filter(|n| *n > 0)?;
        body.extend_from_slice(&buf[..n]);
    }
    Some(Request { method, path, query, headers, body })
}

fn reply(conn: &mut TcpStream, status: &str, headers: &str, body: &[u8]) {
    let head = format!("HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
}

/// A server that answers every request with 500; returns its port.
fn failing_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            if read_request(&mut conn).is_some() {
                let body = br#"{"error_code": "INTERNAL_ERROR", "message": "database is locked"}"#;
                reply(&mut conn, "500 Internal Server Error", "Content-Type: application/json\r\n", body);
            }
        }
    });
    port
}

/// The command lines (arguments joined by spaces) of all processes that contain `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        if !entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
            let joined = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if joined.contains(needle) {
                found.push(joined);
            }
        }
    }
    found
}

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
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", "entry_points:\n  main:\n    command: 'touch ran'\n")]);
    let port = silent_server();
    // By experiment id (the default experiment) and by name: the first request differs.
    for extra in [&[][..], &["--experiment-name", "e"][..]] {
        let out = ctx
            .lockstep()
            .env("MLFLOW_TRACKING_URI", format!("http://127.0.0.1:{port}"))
            .env("LOCKSTEP_TRACKING_TIMEOUT", "1")
            .args(["run", "p"])
            .args(extra)
            // A guard against the old behaviour, which waited for 600 s and more.
            .timeout(Duration::from_secs(90))
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = stderr(&out);
        assert!(
            err.contains(&format!("error: the MLflow server at http://127.0.0.1:{port} did not answer within 1 s")),
            "{err}"
        );
        assert!(err.contains("hint:") && err.contains("LOCKSTEP_TRACKING_TIMEOUT"), "{err}");
        assert!(!ctx.work.join("p/ran").exists(), "nothing ran");
        ctx.assert_no_runs();
    }
}

#[test]
fn a_tracking_server_failing_at_the_start_is_the_users_to_fix() {
    let ctx = TestContext::new();
    ctx.project("p", &[("MLproject", "entry_points:\n  main:\n    command: 'touch ran'\n")]);
    let port = failing_server();
    for extra in [&[][..], &["--experiment-name", "e"][..]] {
        let out = ctx
            .lockstep()
            .env("MLFLOW_TRACKING_URI", format!("http://127.0.0.1:{port}"))
            .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
            .env("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
            .args(["run", "p"])
            .args(extra)
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = stderr(&out);
        assert!(err.contains("(500 INTERNAL_ERROR): database is locked"), "{err}");
        assert!(err.contains("hint: the server failed the request: its log says why"), "{err}");
        assert!(!ctx.work.join("p/ran").exists(), "nothing ran");
        ctx.assert_no_runs();
    }
}

#[test]
fn sync_with_the_server_down_gives_its_own_hint() {
    let ctx = TestContext::new();
    ctx.project("q", &[("MLproject", "entry_points:\n  main:\n    command: 'true'\n")]);
    ctx.lockstep().args(["run", "q"]).assert().success();
    let id = ctx.only_record()["run_id"].as_str().unwrap().to_string();
    let port = free_port();
    let out = ctx
        .lockstep()
        .env("MLFLOW_TRACKING_URI", format!("http://127.0.0.1:{port}"))
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .args(["sync", &id])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = stderr(&out);
    assert!(err.contains(&format!("error: cannot sync run {id}: cannot reach the MLflow server")), "{err}");
    assert!(err.contains(&format!("`lockstep sync {id}` again once the server answers")), "{err}");
    assert!(!err.contains("nothing was run"), "not the hint of a run's start: {err}");
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
    let port = silent_server();
    let out = ctx
        .lockstep()
        .env("LOCKSTEP_GIT_TIMEOUT", "1")
        .args(["run", &format!("http://127.0.0.1:{port}/repo.git")])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
    assert_no_helpers(port);
}

#[test]
fn an_interrupted_clone_stops_gits_remote_helpers_too() {
    let ctx = TestContext::new();
    let port = silent_server();
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

/// `git http-backend` behind HTTP basic authentication: only `user` with one of `tokens`
/// gets in. Every request also looks for `secret` in the command lines of all processes but
/// lockstep (whose own argv has what the user typed), while git and its helpers run; what it
/// finds is in `leaks`.
struct GitHttpServer {
    port: u16,
    leaks: Arc<Mutex<Vec<String>>>,
}

impl GitHttpServer {
    fn start(ctx: &TestContext, root: &Path, tokens: &[&str], secret: &'static str) -> GitHttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let leaks = Arc::new(Mutex::new(Vec::new()));
        let accepted: Vec<String> =
            tokens.iter().map(|t| format!("Basic {}", base64_of(&format!("user:{t}")))).collect();
        let (root, envs, found) = (root.to_path_buf(), ctx.envs(), leaks.clone());
        let lockstep = lockstep_bin().display().to_string();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let Some(req) = read_request(&mut conn) else { continue };
                found.lock().unwrap().extend(processes_with(secret).into_iter().filter(|c| !c.starts_with(&lockstep)));
                if !req.headers.get("authorization").is_some_and(|a| accepted.contains(a)) {
                    reply(&mut conn, "401 Unauthorized", "WWW-Authenticate: Basic realm=\"git\"\r\n", b"");
                    continue;
                }
                let header = |name: &str| req.headers.get(name).cloned().unwrap_or_default();
                let mut backend = Command::new("git")
                    .arg("http-backend")
                    .env_clear()
                    .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
                    .env("GIT_PROJECT_ROOT", &root)
                    .env("GIT_HTTP_EXPORT_ALL", "1")
                    .env("REQUEST_METHOD", &req.method)
                    .env("PATH_INFO", &req.path)
                    .env("QUERY_STRING", &req.query)
                    .env("CONTENT_TYPE", header("content-type"))
                    .env("CONTENT_LENGTH", req.body.len().to_string())
                    .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
                    .env("GIT_PROTOCOL", header("git-protocol"))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                backend.stdin.take().unwrap().write_all(&req.body).unwrap();
                let out = backend.wait_with_output().unwrap().stdout;
                let split = out.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
                let (end, sep) = split.or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2))).unwrap();
                let mut status = "200 OK".to_string();
                let mut headers = String::new();
                for line in String::from_utf8_lossy(&out[..end]).lines() {
                    match line.strip_prefix("Status:") {
                        Some(s) => status = s.trim().to_string(),
                        None => headers.push_str(&format!("{}\r\n", line.trim_end())),
                    }
                }
                reply(&mut conn, &status, &headers, &out[end + sep..]);
            }
        });
        GitHttpServer { port, leaks }
    }

    fn url(&self, userinfo: &str, repo: &str) -> String {
        format!("http://{userinfo}127.0.0.1:{}/{repo}", self.port)
    }
}

#[test]
fn git_url_credentials_reach_the_server_but_never_argv_or_the_cache() {
    let ctx = TestContext::new();
    let served = ctx.work.join("served");
    ctx.git_repo(&served.join("repo.git"), &[("MLproject", "entry_points:\n  main:\n    command: 'echo hi'\n")]);
    let server = GitHttpServer::start(&ctx, &served, &["tok-SECRET-1", "tok%SECRET-2"], "SECRET-");

    let out = ctx.lockstep().args(["run", &server.url("", "repo.git")]).assert().code(2).get_output().clone();
    assert!(stderr(&out).contains("cannot"), "the server wants credentials: {}", stderr(&out));
    ctx.lockstep().args(["run", &server.url("user:tok-SECRET-1@", "repo.git")]).assert().success().stdout("hi\n");
    // Another token, percent-encoded in the URL as git expects: the same mirror, fetched.
    ctx.lockstep().args(["run", &server.url("user:tok%25SECRET-2@", "repo.git")]).assert().success().stdout("hi\n");

    assert_eq!(*server.leaks.lock().unwrap(), Vec::<String>::new(), "no token in any argv");
    let mirrors: Vec<PathBuf> = fs::read_dir(ctx.cache.join("git-v1"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("HEAD").is_file())
        .collect();
    assert_eq!(mirrors.len(), 1, "one mirror whatever the token");
    let config = fs::read_to_string(mirrors[0].join("config")).unwrap();
    assert!(config.contains(&format!("url = http://127.0.0.1:{}/repo.git", server.port)), "{config}");
    for dir in [&ctx.cache, &ctx.store(), &ctx.home] {
        for token in ["SECRET-1", "SECRET-2"] {
            assert_eq!(files_with(dir, token), Vec::<PathBuf>::new(), "no token written under {}", dir.display());
        }
    }
    for r in ctx.records() {
        assert_eq!(r["source"]["repo_url"], server.url("", "repo.git"), "recorded without credentials");
    }
}
