//! The transport: one connection setting per server (authentication, TLS, timeouts), and
//! requests sent with MLflow's retry rules.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::TrackingError;
use super::auth::{Auth, Secret, read_certificates, split_userinfo};
use crate::support::text::{base64, percent_decode, percent_encode};

const DEFAULT_RETRIES: u32 = 4;
const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the start of a run waits for each answer of the server.
const DEFAULT_FIRST_CONTACT: Duration = Duration::from_secs(10);
/// No single wait between retries is longer, whatever the backoff factor or `Retry-After` say.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// What a request carries.
pub(super) enum Payload<'a> {
    Empty,
    Json(Vec<u8>),
    Bytes(&'a [u8], &'static str),
    File(&'a Path, &'static str),
}

/// How a request is sent.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mode {
    /// Whether it may be sent again after a transient failure (it is idempotent).
    retry: bool,
    /// Whether its answer's body is read. A write whose answer says nothing (`{}`) is done
    /// once the server sent the status line, since MLflow's handlers finish before they
    /// answer; not waiting for the body saves the server's pause between head and body.
    answer: bool,
}

/// Reads, and writes whose answer is needed (idempotent ones).
pub(super) const READ: Mode = Mode { retry: true, answer: true };
/// Idempotent writes whose answer is not needed.
pub(super) const WRITE: Mode = Mode { retry: true, answer: false };
/// `runs/create`: never sent twice (see [`MlflowClient::create_run_once`]).
pub(super) const CREATE: Mode = Mode { retry: false, answer: true };

/// A connection to one MLflow tracking server.
#[derive(Debug, Clone)]
pub struct MlflowClient {
    /// `scheme://host[:port][/prefix]`, no user-info, no trailing `/`.
    pub(super) base: String,
    pub(super) auth: Option<Auth>,
    /// User and password given in the URI's user-info.
    pub(super) uri_credentials: Option<(String, Secret)>,
    pub(super) agent: ureq::Agent,
    pub(super) retries: u32,
    pub(super) backoff: Duration,
    /// The bound on one request (`MLFLOW_HTTP_REQUEST_TIMEOUT`).
    pub(super) timeout: Duration,
    /// How long each request waits for its answer at the start of a run (see
    /// [`MlflowClient::answering_within`]).
    pub(super) answer_within: Option<Duration>,
}

/// How long the start of a run waits for each answer of the server before it gives up and
/// runs nothing: `LOCKSTEP_TRACKING_TIMEOUT` seconds, else 10. A server that accepts
/// connections but never answers would otherwise hold the run for every retry of the full
/// request timeout.
pub fn first_contact_timeout() -> Duration {
    std::env::var("LOCKSTEP_TRACKING_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_FIRST_CONTACT)
}

impl MlflowClient {
    /// A client of the server at `uri` (http or https), with authentication, TLS and retry
    /// settings from MLflow's environment variables.
    pub fn new(uri: &str) -> Result<MlflowClient, TrackingError> {
        let (base, userinfo) = split_userinfo(uri)?;
        let uri_credentials = userinfo.map(|u| {
            let (user, password) = u.split_once(':').unwrap_or((&u, ""));
            (percent_decode(user), Secret(percent_decode(password)))
        });
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let auth = if let Some(token) = env("MLFLOW_TRACKING_TOKEN") {
            Some(Auth::Bearer(token))
        } else if let (Some(user), Some(password)) = (env("MLFLOW_TRACKING_USERNAME"), env("MLFLOW_TRACKING_PASSWORD"))
        {
            Some(Auth::Basic(base64(format!("{user}:{password}").as_bytes())))
        } else {
            uri_credentials
                .as_ref()
                .map(|(user, password)| Auth::Basic(base64(format!("{user}:{}", password.0).as_bytes())))
        };
        let insecure = env("MLFLOW_TRACKING_INSECURE_TLS").is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let mut tls = ureq::tls::TlsConfig::builder().disable_verification(insecure);
        if let Some(path) = env("MLFLOW_TRACKING_SERVER_CERT_PATH").map(PathBuf::from) {
            tls = tls.root_certs(read_certificates(&path)?);
        }
        let seconds = |name: &str| env(name).and_then(|v| v.parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0);
        let timeout = seconds("MLFLOW_HTTP_REQUEST_TIMEOUT").map(Duration::from_secs_f64).unwrap_or(DEFAULT_TIMEOUT);
        // A plain-http connection is not reused: the Python servers MLflow runs on write a
        // response's head and body separately without TCP_NODELAY, so on a connection past
        // its first exchanges the body waits for the client's delayed ACK (40 ms on Linux)
        // for every request; a new loopback or LAN connection costs far less. Over https a
        // new connection costs a TLS handshake, so those are kept.
        let reuse = if base.starts_with("https://") { 3 } else { 0 };
        let agent: ureq::Agent = crate::support::http::agent_builder(Duration::from_secs(10).min(timeout))
            .max_idle_connections_per_host(reuse)
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .tls_config(tls.build())
            .build()
            .into();
        Ok(MlflowClient {
            base,
            auth,
            uri_credentials,
            agent,
            retries: env("MLFLOW_HTTP_REQUEST_MAX_RETRIES").and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_RETRIES),
            backoff: seconds("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")
                .map(Duration::from_secs_f64)
                .unwrap_or(DEFAULT_BACKOFF),
            timeout,
            answer_within: None,
        })
    }

    /// The server's URI as it may be shown and recorded: without credentials.
    pub fn uri(&self) -> &str {
        &self.base
    }

    /// The user and password the URI carried, if it did.
    pub fn uri_credentials(&self) -> Option<(&str, &str)> {
        self.uri_credentials.as_ref().map(|(u, p)| (u.as_str(), p.0.as_str()))
    }

    /// The same client, trying each request once: for the last words of a run that is
    /// being abandoned, which must not keep lockstep waiting.
    pub fn without_retries(&self) -> MlflowClient {
        MlflowClient { retries: 0, ..self.clone() }
    }

    /// The same client, for the start of a run: a request that gets no answer within `limit`
    /// fails at once with [`TrackingError::NoAnswer`], without retries, since a server that
    /// does not answer one request will not answer the next. A shorter request timeout
    /// still holds.
    pub fn answering_within(&self, limit: Duration) -> MlflowClient {
        MlflowClient { answer_within: Some(limit.min(self.timeout)), ..self.clone() }
    }

    /// The web page of a run.
    pub fn run_page(&self, experiment_id: &str, run_id: &str) -> String {
        format!("{}/#/experiments/{experiment_id}/runs/{run_id}", self.base)
    }

    pub(super) fn api_url(&self, endpoint: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&format!("{k}={}", percent_encode(v)));
        }
        url
    }

    pub(super) fn post(&self, endpoint: &str, body: &Value, mode: Mode) -> Result<Value, TrackingError> {
        let url = self.api_url(endpoint, &[]);
        let bytes = serde_json::to_vec(body).expect("JSON values serialize");
        self.call("POST", &url, endpoint, Payload::Json(bytes), mode)
    }

    /// A missing resource as `None`.
    pub(super) fn optional(&self, result: Result<Value, TrackingError>) -> Result<Option<Value>, TrackingError> {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_code("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) fn field<T: serde::de::DeserializeOwned>(
        &self,
        mut v: Value,
        name: &str,
        endpoint: &str,
    ) -> Result<T, TrackingError> {
        match v.get_mut(name) {
            Some(f) => self.parse(f.take(), endpoint),
            None => Err(self.bad_response(endpoint, format!("no '{name}' in the answer"))),
        }
    }

    pub(super) fn parse<T: serde::de::DeserializeOwned>(&self, v: Value, endpoint: &str) -> Result<T, TrackingError> {
        serde_json::from_value(v).map_err(|e| self.bad_response(endpoint, e.to_string()))
    }

    pub(super) fn bad_response(&self, endpoint: &str, message: String) -> TrackingError {
        TrackingError::BadResponse { uri: self.base.clone(), endpoint: endpoint.to_string(), message }
    }

    /// Send a request, retrying (when the mode allows) after connection errors, 429 and 5xx
    /// with exponential backoff; the answer's JSON body (null when not read), or the error it
    /// stands for.
    pub(super) fn call(
        &self,
        method: &str,
        url: &str,
        endpoint: &str,
        payload: Payload,
        mode: Mode,
    ) -> Result<Value, TrackingError> {
        let attempts = if mode.retry { self.retries + 1 } else { 1 };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (error, wait) = match self.send(method, url, &payload, mode.answer) {
                Ok((status, body, retry_after)) => {
                    if (200..300).contains(&status) {
                        return Ok(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    }
                    let error = self.status_error(endpoint, status, &body);
                    if !(status == 429 || status >= 500) {
                        return Err(error);
                    }
                    (error, retry_after)
                }
                Err(e @ (TrackingError::Io { .. } | TrackingError::NoAnswer { .. })) => return Err(e),
                Err(e) => (e, None),
            };
            if attempt >= attempts {
                return Err(error);
            }
            std::thread::sleep(wait.unwrap_or_default().max(self.backoff(attempt - 1)).min(MAX_WAIT));
        }
    }

    /// How long to wait before the retry that follows `failures` failed attempts, or `None`
    /// when the retries are used up.
    pub fn retry_wait(&self, failures: u32) -> Option<Duration> {
        (failures <= self.retries && failures > 0).then(|| self.backoff(failures - 1).min(MAX_WAIT))
    }

    pub(super) fn backoff(&self, retry: u32) -> Duration {
        self.backoff.saturating_mul(1 << retry.min(16))
    }

    /// One attempt: the status, the body (of an error always, of a success when `answer`) and
    /// a `Retry-After` delay.
    pub(super) fn send(
        &self,
        method: &str,
        url: &str,
        payload: &Payload,
        answer: bool,
    ) -> Result<(u16, Vec<u8>, Option<Duration>), TrackingError> {
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        if let Some(auth) = &self.auth {
            builder = builder.header("Authorization", auth.header());
        }
        let invalid = |_| TrackingError::BadUri { uri: self.base.clone(), reason: "it does not form a valid URL" };
        let result = match payload {
            Payload::Empty => self.agent.run(self.bounded(builder.body(()).map_err(invalid)?)),
            Payload::Json(bytes) => self.agent.run(
                self.bounded(builder.header("Content-Type", "application/json").body(&bytes[..]).map_err(invalid)?),
            ),
            Payload::Bytes(bytes, ct) => {
                self.agent.run(self.bounded(builder.header("Content-Type", *ct).body(*bytes).map_err(invalid)?))
            }
            Payload::File(path, ct) => {
                let file = std::fs::File::open(path)
                    .map_err(|source| TrackingError::Io { path: path.to_path_buf(), source })?;
                self.agent.run(self.bounded(builder.header("Content-Type", *ct).body(file).map_err(invalid)?))
            }
        };
        let mut response = result.map_err(|e| {
            if let (ureq::Error::Timeout(_), Some(limit)) = (&e, self.answer_within) {
                return TrackingError::NoAnswer { uri: self.base.clone(), seconds: limit.as_secs_f64() };
            }
            let message = e.to_string();
            // ureq reports TLS failures inside I/O errors: the words are what tells them apart,
            // and trying again would not help.
            if message.contains("certificate") || message.contains("tls") || message.contains("TLS") {
                TrackingError::Tls { uri: self.base.clone(), message }
            } else {
                TrackingError::Unreachable { uri: self.base.clone(), message }
            }
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if !answer && (200..300).contains(&status) {
            return Ok((status, Vec::new(), None));
        }
        let body = response.body_mut().read_to_vec().map_err(|e| match (e, self.answer_within) {
            (ureq::Error::Timeout(_), Some(limit)) => {
                TrackingError::NoAnswer { uri: self.base.clone(), seconds: limit.as_secs_f64() }
            }
            (e, _) => TrackingError::Unreachable { uri: self.base.clone(), message: e.to_string() },
        })?;
        Ok((status, body, retry_after))
    }

    /// A request with the start of a run's limit on the wait for its answer, if there is one.
    pub(super) fn bounded<S: ureq::AsSendBody>(&self, request: ureq::http::Request<S>) -> ureq::http::Request<S> {
        match self.answer_within {
            Some(limit) => self.agent.configure_request(request).timeout_global(Some(limit)).build(),
            None => request,
        }
    }

    pub(super) fn status_error(&self, endpoint: &str, status: u16, body: &[u8]) -> TrackingError {
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let text = parsed
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
        // Server messages can carry whole SQL statements: the first line says what matters.
        let mut message: String = text.lines().next().unwrap_or("").trim().chars().take(300).collect();
        if message.is_empty() {
            message = "no message".into();
        }
        if status == 401 || status == 403 {
            return TrackingError::Unauthorized { uri: self.base.clone(), status, message };
        }
        let code = parsed.get("error_code").and_then(Value::as_str).unwrap_or("").to_string();
        TrackingError::Rejected { uri: self.base.clone(), endpoint: endpoint.to_string(), status, code, message }
    }
}
