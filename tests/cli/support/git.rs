//! Git servers: `git daemon` (git://) and `git http-backend` behind basic authentication
//! (http://), both on 127.0.0.1 with a free port and stopped when dropped.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::context::{TestContext, free_port, lockstep_bin, processes_with, wait_for};
use super::http::{Server, base64_of, read_request, reply};

/// A `git daemon` serving `base` on 127.0.0.1, stopped with the children it forked per
/// connection when dropped.
pub struct GitDaemon {
    child: Child,
    pub port: u16,
}

impl GitDaemon {
    /// Serve every repository under `base` (`git://127.0.0.1:PORT/<path under base>`).
    pub fn start(ctx: &TestContext, base: &Path) -> GitDaemon {
        let port = free_port();
        // git-daemon itself, not `git daemon`, which would run it as a child that outlives a kill.
        let exec_path = ctx.git(base, &["--exec-path"]);
        let child = Command::new(Path::new(&exec_path).join("git-daemon"))
            .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .env_clear()
            .envs(ctx.envs())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group, so that the upload-pack children it forks stop with it.
            .process_group(0)
            .spawn()
            .expect("git daemon starts");
        let up = wait_for(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        assert!(up, "git daemon listens on {port}");
        GitDaemon { child, port }
    }

    /// The URL of the repository at `repo` under the base.
    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        // SAFETY: killpg(2) on the group of the child this fixture started.
        unsafe { libc::killpg(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// `git http-backend` behind HTTP basic authentication: only `user` with one of `tokens`
/// gets in. Every request also looks for `secret` in the command lines of all processes but
/// lockstep (whose own argv has what the user typed), while git and its helpers run; what it
/// finds is in `leaks`.
pub struct GitHttpServer {
    server: Server,
    pub leaks: Arc<Mutex<Vec<String>>>,
}

impl GitHttpServer {
    /// Serve the repositories under `root`.
    pub fn start(ctx: &TestContext, root: &Path, tokens: &[&str], secret: &'static str) -> GitHttpServer {
        let leaks = Arc::new(Mutex::new(Vec::new()));
        let accepted: Vec<String> =
            tokens.iter().map(|t| format!("Basic {}", base64_of(&format!("user:{t}")))).collect();
        let (root, envs, found) = (root.to_path_buf(), ctx.envs(), leaks.clone());
        let lockstep = lockstep_bin().display().to_string();
        let server = Server::start(move |mut conn| {
            let Some(req) = read_request(&mut conn) else { return };
            found.lock().unwrap().extend(processes_with(secret).into_iter().filter(|c| !c.starts_with(&lockstep)));
            if !req.headers.get("authorization").is_some_and(|a| accepted.contains(a)) {
                reply(&mut conn, "401 Unauthorized", "WWW-Authenticate: Basic realm=\"git\"\r\n", b"");
                return;
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
        });
        GitHttpServer { server, leaks }
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// `http://USERINFO127.0.0.1:PORT/REPO`; `userinfo` is empty or ends in `@`.
    pub fn url(&self, userinfo: &str, repo: &str) -> String {
        format!("http://{userinfo}127.0.0.1:{}/{repo}", self.server.port)
    }
}
