//! A `lockstep ui` of a test's store: started on 127.0.0.1 with a free port, its URL (with
//! the token) read from its first line of output, stopped by pid when dropped, also when the
//! test fails.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

use super::context::TestContext;

/// A running `lockstep ui`.
pub struct UiServer {
    child: Child,
    /// The URL it printed, with `?token=...`.
    pub url: String,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The token.
    pub token: String,
}

impl UiServer {
    /// `lockstep ui --store STORE`.
    pub fn start(ctx: &TestContext, store: &Path) -> UiServer {
        let mut child = ctx
            .lockstep_process()
            .arg("ui")
            .arg("--store")
            .arg(store)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("lockstep ui starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().to_string();
        let (base, token) = url.split_once("/?token=").unwrap_or_else(|| panic!("a URL with a token: {url:?}"));
        UiServer { base: base.to_string(), token: token.to_string(), url, child }
    }

    /// GET `path` with the token's header: the status, the headers and the body.
    pub fn get(&self, path: &str) -> Answer {
        self.request(path, Some(&format!("token {}", self.token)))
    }

    /// GET `path` with `authorization` (or none), redirects not followed.
    pub fn request(&self, path: &str, authorization: Option<&str>) -> Answer {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
        let mut req = agent.get(format!("{}{path}", self.base));
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        let mut resp = req.call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let status = resp.status().as_u16();
        let body = resp.body_mut().with_config().limit(64 * 1024 * 1024).read_to_vec().unwrap();
        Answer { status, headers, body }
    }
}

impl Drop for UiServer {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// One answer of the UI.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// A header's value (its name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}
