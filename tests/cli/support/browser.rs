//! A headless Chromium driven through its WebDriver (Debian's `chromium` and
//! `chromium-driver`): chromedriver on 127.0.0.1 with a free port, stopped by pid when
//! dropped, spoken to in W3C WebDriver JSON over HTTP. Without them the tests that need it
//! skip with a reason, unless `CI=true`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::context::{free_port, wait_for};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A chromedriver and one browser session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
}

impl Browser {
    /// A headless browser, or None (after printing why) when Chromium or its driver is not
    /// installed and CI is not set.
    pub fn start() -> Option<Browser> {
        if !Path::new(CHROMEDRIVER).is_file() || !Path::new(CHROMIUM).is_file() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI needs chromium and chromium-driver (apt-get install chromium chromium-driver)"
            );
            eprintln!("skipped: no {CHROMIUM} or {CHROMEDRIVER} (apt-get install chromium chromium-driver)");
            return None;
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            // Its own group, with the browsers it starts: all stop with it.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut browser = Browser { driver, base: format!("http://127.0.0.1:{port}"), session: String::new(), agent };
        let status = format!("{}/status", browser.base);
        let ready = wait_for(Duration::from_secs(20), || {
            browser
                .agent
                .get(&status)
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .is_some_and(|body| serde_json::from_str::<Value>(&body).is_ok_and(|v| v["value"]["ready"] == true))
        });
        assert!(ready, "chromedriver answers on {port}");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                // CI runs as root, where Chromium's sandbox cannot start.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"]
            }
        }}});
        let answer = browser.post("/session", &caps);
        browser.session = answer["sessionId"].as_str().unwrap_or_else(|| panic!("a session: {answer}")).to_string();
        Some(browser)
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let url = format!("{}{path}", self.base);
        let mut resp = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let text = resp.body_mut().read_to_string().unwrap();
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
        assert!(value["value"].get("error").is_none(), "WebDriver {path}: {text}");
        value["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Load `url` and wait until the page has loaded.
    pub fn open(&self, url: &str) {
        self.post(&self.session_path("/url"), &json!({ "url": url }));
    }

    /// Run `script` (a function body; `arguments` are `args`) in the page, its result.
    pub fn eval(&self, script: &str, args: Value) -> Value {
        self.post(&self.session_path("/execute/sync"), &json!({ "script": script, "args": args }))
    }

    /// The texts of the elements `css` selects.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let v = self.eval("return [...document.querySelectorAll(arguments[0])].map(e => e.textContent);", json!([css]));
        v.as_array().unwrap().iter().map(|t| t.as_str().unwrap_or("").to_string()).collect()
    }

    /// How many elements `css` selects.
    pub fn count(&self, css: &str) -> usize {
        self.eval("return document.querySelectorAll(arguments[0]).length;", json!([css])).as_u64().unwrap() as usize
    }

    /// Click the first element `css` selects, as a person would (WebDriver's element click).
    pub fn click(&self, css: &str) {
        let found = self.post(&self.session_path("/element"), &json!({"using": "css selector", "value": css}));
        let id = found.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).unwrap().to_string();
        self.post(&self.session_path(&format!("/element/{id}/click")), &json!({}));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.eval("return location.href;", json!([])).as_str().unwrap().to_string()
    }

    /// Wait (up to `limit`) until `script` returns true.
    pub fn wait_until(&self, limit: Duration, script: &str) -> bool {
        wait_for(limit, || self.eval(script, json!([])) == json!(true))
    }

    /// Save a screenshot of the page as `dir/name.png`.
    pub fn screenshot(&self, dir: &Path, name: &str) -> PathBuf {
        let url = format!("{}{}", self.base, self.session_path("/screenshot"));
        let mut resp = self.agent.get(&url).call().unwrap();
        let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        let png = base64_decode(body["value"].as_str().unwrap());
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.agent.delete(format!("{}{}", self.base, self.session_path(""))).call();
        }
        unsafe { libc::killpg(self.driver.id() as i32, libc::SIGTERM) };
        let _ = self.driver.wait();
    }
}

/// Standard base64, as WebDriver sends screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, d)| acc | (u32::from(*d) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}
