//! A client of MLflow's tracking REST API (2.0) and of its artifact proxy (`mlflow-artifacts`).
//!
//! Authentication and TLS come from MLflow's own variables, so that a machine set up for the
//! `mlflow` client works unchanged: `MLFLOW_TRACKING_TOKEN` (bearer),
//! `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD` (basic), `MLFLOW_TRACKING_INSECURE_TLS`,
//! `MLFLOW_TRACKING_SERVER_CERT_PATH`; retries follow `MLFLOW_HTTP_REQUEST_MAX_RETRIES`,
//! `MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR` and `MLFLOW_HTTP_REQUEST_TIMEOUT`. Credentials never
//! appear in a URL this client shows: user-info in the tracking URI becomes basic auth.
//!
//! The start of a run waits less: see [`first_contact_timeout`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::support::error_class::ErrorClass;
use crate::support::text::{base64, percent_decode, percent_encode};

/// Most params, and most tags, one `runs/log-batch` request may carry.
pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
/// The longest parameter value an MLflow server accepts.
pub const MAX_PARAM_VALUE_LENGTH: usize = 6000;
/// The longest tag value an MLflow server accepts.
pub const MAX_TAG_VALUE_LENGTH: usize = 8000;

const DEFAULT_RETRIES: u32 = 4;
const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the start of a run waits for each answer of the server.
const DEFAULT_FIRST_CONTACT: Duration = Duration::from_secs(10);
/// No single wait between retries is longer, whatever the backoff factor or `Retry-After` say.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Errors of talking to an MLflow tracking server.
#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    /// A tracking URI lockstep cannot write to directly (a database or a directory).
    #[error(
        "tracking URI '{uri}' is not an MLflow server: lockstep records runs on a server through its REST API (http:// or https://)"
    )]
    UnsupportedUri {
        /// The URI, credentials stripped.
        uri: String,
    },
    /// A Databricks workspace.
    #[error("tracking URI '{uri}' is a Databricks workspace, which lockstep cannot record runs on")]
    Databricks {
        /// The URI as given.
        uri: String,
    },
    /// An http(s) URI that cannot be used.
    #[error("tracking URI '{uri}' is not valid: {reason}")]
    BadUri {
        /// The URI, credentials stripped.
        uri: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// `--experiment-name` and `--experiment-id` both given (flags or variables).
    #[error("both an experiment name ('{name}') and an experiment id ('{id}') are given: give only one")]
    TwoExperiments {
        /// The name.
        name: String,
        /// The id.
        id: String,
    },
    /// `MLFLOW_TRACKING_SERVER_CERT_PATH` cannot be used.
    #[error("MLFLOW_TRACKING_SERVER_CERT_PATH={}: {message}", .path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The server could not be reached, also after retrying.
    #[error("cannot reach the MLflow server at {uri}: {message}")]
    Unreachable {
        /// The tracking URI, credentials stripped.
        uri: String,
        /// What went wrong on the last attempt.
        message: String,
    },
    /// The server took a request but sent no answer in time, at the start of a run.
    #[error("the MLflow server at {uri} did not answer within {seconds} s")]
    NoAnswer {
        /// The tracking URI, credentials stripped.
        uri: String,
        /// How long lockstep waited.
        seconds: f64,
    },
    /// `lockstep sync` could not get through to the server.
    #[error("cannot sync run {run_id}: {cause}")]
    SyncFailed {
        /// The local run id.
        run_id: String,
        /// What went wrong.
        cause: Box<TrackingError>,
    },
    /// The server's certificate is not trusted (or TLS failed otherwise).
    #[error("cannot reach the MLflow server at {uri} over TLS: {message}")]
    Tls {
        /// The tracking URI, credentials stripped.
        uri: String,
        /// What went wrong.
        message: String,
    },
    /// The server refused the credentials (401) or the permission (403).
    #[error("the MLflow server at {uri} refused the request ({status}): {message}")]
    Unauthorized {
        /// The tracking URI, credentials stripped.
        uri: String,
        /// 401 or 403.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server answered a request with an error.
    #[error("the MLflow server at {uri} rejected {endpoint} ({status} {code}): {message}")]
    Rejected {
        /// The tracking URI, credentials stripped.
        uri: String,
        /// The API endpoint.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// MLflow's error code (`RESOURCE_DOES_NOT_EXIST`, ...).
        code: String,
        /// The server's message (its first line).
        message: String,
    },
    /// The server's answer could not be understood.
    #[error("the MLflow server at {uri} sent an unexpected answer to {endpoint}: {message}")]
    BadResponse {
        /// The tracking URI, credentials stripped.
        uri: String,
        /// The API endpoint.
        endpoint: String,
        /// What is wrong.
        message: String,
    },
    /// The experiment exists but was deleted.
    #[error("experiment '{experiment}' on {uri} is deleted")]
    DeletedExperiment {
        /// Its name or id.
        experiment: String,
        /// The tracking URI, credentials stripped.
        uri: String,
    },
    /// No experiment has this id.
    #[error("no experiment with id '{id}' on {uri}")]
    UnknownExperiment {
        /// The id.
        id: String,
        /// The tracking URI, credentials stripped.
        uri: String,
    },
    /// A parameter value is longer than MLflow accepts.
    #[error(
        "parameter '{name}' is {length} characters long; an MLflow server accepts at most {MAX_PARAM_VALUE_LENGTH}"
    )]
    ParamTooLong {
        /// The parameter.
        name: String,
        /// Its length in characters.
        length: usize,
    },
    /// `lockstep sync` of a run that names no server.
    #[error("run {run_id} was not recorded on a tracking server, and none is given")]
    NoServer {
        /// The local run id.
        run_id: String,
    },
    /// `lockstep sync` could not send everything.
    #[error("run {run_id} is only partly on {uri}: {missing} not sent ({cause})")]
    Incomplete {
        /// The local run id.
        run_id: String,
        /// The tracking URI, credentials stripped.
        uri: String,
        /// What is missing.
        missing: String,
        /// Why.
        cause: Box<TrackingError>,
    },
    /// A file to upload could not be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl TrackingError {
    /// Who has to act.
    pub fn class(&self) -> ErrorClass {
        match self {
            // A failing server (5xx) is the one the user pointed at, not a fault of lockstep.
            TrackingError::BadResponse { .. } | TrackingError::Io { .. } => ErrorClass::Internal,
            TrackingError::Incomplete { cause, .. } | TrackingError::SyncFailed { cause, .. } => cause.class(),
            _ => ErrorClass::User,
        }
    }

    /// What to try next.
    pub fn hint(&self) -> Option<String> {
        match self {
            TrackingError::UnsupportedUri { uri } => Some(format!(
                "serve it with `mlflow server --backend-store-uri {uri}` and point lockstep at the server: --tracking-uri http://127.0.0.1:5000"
            )),
            TrackingError::Databricks { .. } | TrackingError::BadUri { .. } => Some(
                "give the http(s) URL of an MLflow server (--tracking-uri or MLFLOW_TRACKING_URI), or unset MLFLOW_TRACKING_URI to record in the local store only".into(),
            ),
            TrackingError::TwoExperiments { .. } => Some(
                "--experiment-name and --experiment-id (or MLFLOW_EXPERIMENT_NAME and MLFLOW_EXPERIMENT_ID) exclude each other".into(),
            ),
            TrackingError::Unreachable { .. } => Some(
                "check that the server runs and the URI is right; nothing was run. Unset MLFLOW_TRACKING_URI to record in the local store only".into(),
            ),
            TrackingError::NoAnswer { .. } => Some(
                "check that the server is an MLflow server and is not stopped or overloaded; LOCKSTEP_TRACKING_TIMEOUT sets the seconds to wait. Nothing was run; unset MLFLOW_TRACKING_URI to record in the local store only".into(),
            ),
            TrackingError::Rejected { status, .. } if *status >= 500 => Some(
                "the server failed the request: its log says why. Nothing was run; unset MLFLOW_TRACKING_URI to record in the local store only".into(),
            ),
            TrackingError::SyncFailed { run_id, .. } => Some(format!(
                "check that the server runs and the URI is right (--tracking-uri, else the server the run was recorded on); the local record is unchanged: `lockstep sync {run_id}` again once the server answers"
            )),
            TrackingError::Tls { .. } => Some(
                "set MLFLOW_TRACKING_SERVER_CERT_PATH to a PEM file of the CA that signed the server's certificate, or MLFLOW_TRACKING_INSECURE_TLS=true to skip the check".into(),
            ),
            TrackingError::Unauthorized { .. } => Some(
                "set MLFLOW_TRACKING_TOKEN (bearer token) or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD".into(),
            ),
            TrackingError::DeletedExperiment { .. } => {
                Some("restore it (`mlflow experiments restore`) or choose another experiment".into())
            }
            TrackingError::UnknownExperiment { .. } => {
                Some("`mlflow experiments search` lists the experiments; --experiment-name creates one".into())
            }
            TrackingError::NoServer { .. } => Some("give one: --tracking-uri URL or MLFLOW_TRACKING_URI".into()),
            TrackingError::Incomplete { .. } => Some("run `lockstep sync` again once the server is reachable".into()),
            TrackingError::Certificate { .. } => {
                Some("point it at a PEM file of the CA that signed the server's certificate".into())
            }
            _ => None,
        }
    }

    /// Whether the server could not be reached at all (as opposed to answering with an error).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, TrackingError::Unreachable { .. })
    }

    /// Whether trying again later may succeed: the server was unreachable, overloaded (429)
    /// or failing (5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            TrackingError::Unreachable { .. } => true,
            TrackingError::Rejected { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    fn is_code(&self, wanted: &str) -> bool {
        matches!(self, TrackingError::Rejected { code, .. } if code == wanted)
    }
}

/// A password or token: `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// How requests prove who sends them; `Debug` never shows the secret.
#[derive(Clone)]
enum Auth {
    Bearer(String),
    Basic(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Auth::Bearer(_) => "Bearer(..)",
            Auth::Basic(_) => "Basic(..)",
        })
    }
}

impl Auth {
    fn header(&self) -> String {
        match self {
            Auth::Bearer(token) => format!("Bearer {token}"),
            Auth::Basic(encoded) => format!("Basic {encoded}"),
        }
    }
}

/// An experiment, as the server describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Experiment {
    /// Its id.
    pub experiment_id: String,
    /// Its name.
    pub name: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
}

/// A run, as the server describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct RunInfo {
    /// The server's id of the run.
    pub run_id: String,
    /// Its experiment.
    pub experiment_id: String,
    /// Where its artifacts go (`mlflow-artifacts:/...` when the server serves them).
    #[serde(default)]
    pub artifact_uri: String,
    /// `RUNNING`, `FINISHED`, ...
    #[serde(default)]
    pub status: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
}

/// The run to create.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    /// The experiment.
    pub experiment_id: &'a str,
    /// The user (`mlflow.user`).
    pub user: &'a str,
    /// The run's name, if any (the server makes one up otherwise).
    pub run_name: Option<&'a str>,
    /// Start, ms since the epoch.
    pub start_time: u64,
    /// Tags set at creation.
    pub tags: &'a [(String, String)],
}

/// What a request carries.
enum Payload<'a> {
    Empty,
    Json(Vec<u8>),
    Bytes(&'a [u8], &'static str),
    File(&'a Path, &'static str),
}

/// How a request is sent.
#[derive(Debug, Clone, Copy)]
struct Mode {
    /// Whether it may be sent again after a transient failure (it is idempotent).
    retry: bool,
    /// Whether its answer's body is read. A write whose answer says nothing (`{}`) is done
    /// once the server sent the status line, since MLflow's handlers finish before they
    /// answer; not waiting for the body saves the server's pause between head and body.
    answer: bool,
}

/// Reads, and writes whose answer is needed (idempotent ones).
const READ: Mode = Mode { retry: true, answer: true };
/// Idempotent writes whose answer is not needed.
const WRITE: Mode = Mode { retry: true, answer: false };
/// `runs/create`: never sent twice (see [`MlflowClient::create_run_once`]).
const CREATE: Mode = Mode { retry: false, answer: true };

/// A connection to one MLflow tracking server.
#[derive(Debug, Clone)]
pub struct MlflowClient {
    /// `scheme://host[:port][/prefix]`, no user-info, no trailing `/`.
    base: String,
    auth: Option<Auth>,
    /// User and password given in the URI's user-info.
    uri_credentials: Option<(String, Secret)>,
    agent: ureq::Agent,
    retries: u32,
    backoff: Duration,
    /// The bound on one request (`MLFLOW_HTTP_REQUEST_TIMEOUT`).
    timeout: Duration,
    /// How long each request waits for its answer at the start of a run (see
    /// [`MlflowClient::answering_within`]).
    answer_within: Option<Duration>,
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

    /// The experiment of this name, if there is one (deleted ones included).
    pub fn experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, TrackingError> {
        let url = self.api_url("experiments/get-by-name", &[("experiment_name", name)]);
        self.optional(self.call("GET", &url, "experiments/get-by-name", Payload::Empty, READ))
            .and_then(|v| v.map(|v| self.field(v, "experiment", "experiments/get-by-name")).transpose())
    }

    /// The experiment of this id, if there is one.
    pub fn experiment(&self, id: &str) -> Result<Option<Experiment>, TrackingError> {
        let url = self.api_url("experiments/get", &[("experiment_id", id)]);
        match self.call("GET", &url, "experiments/get", Payload::Empty, READ) {
            // Servers answer an id that is not a number with INVALID_PARAMETER_VALUE.
            Err(e) if e.is_code("INVALID_PARAMETER_VALUE") => Ok(None),
            other => {
                self.optional(other).and_then(|v| v.map(|v| self.field(v, "experiment", "experiments/get")).transpose())
            }
        }
    }

    /// Create an experiment; `Ok(None)` when one of that name appeared meanwhile.
    pub fn create_experiment(&self, name: &str) -> Result<Option<String>, TrackingError> {
        let body = json!({ "name": name });
        match self.post("experiments/create", &body, READ) {
            Ok(v) => self.field::<String>(v, "experiment_id", "experiments/create").map(Some),
            Err(e) if e.is_code("RESOURCE_ALREADY_EXISTS") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create a run, trying once: a retry after a lost answer could make a second run, so
    /// the caller looks for the first one before trying again.
    pub fn create_run_once(&self, run: &NewRun) -> Result<RunInfo, TrackingError> {
        let mut body = json!({
            "experiment_id": run.experiment_id,
            "user_id": run.user,
            "start_time": run.start_time,
            "tags": pairs(run.tags),
        });
        if let Some(name) = run.run_name {
            body["run_name"] = json!(name);
        }
        let v = self.post("runs/create", &body, CREATE)?;
        let run: Value = self.field(v, "run", "runs/create")?;
        self.field(run, "info", "runs/create")
    }

    /// The run of this id, if there is one.
    pub fn run(&self, run_id: &str) -> Result<Option<RunInfo>, TrackingError> {
        let url = self.api_url("runs/get", &[("run_id", run_id)]);
        let v = self.optional(self.call("GET", &url, "runs/get", Payload::Empty, READ))?;
        v.map(|v| {
            let run: Value = self.field(v, "run", "runs/get")?;
            self.field(run, "info", "runs/get")
        })
        .transpose()
    }

    /// The active runs of an experiment whose tag `key` is `value`.
    pub fn runs_tagged(&self, experiment_id: &str, key: &str, value: &str) -> Result<Vec<RunInfo>, TrackingError> {
        let filter = format!("tags.`{key}` = '{}'", value.replace('\'', "\\'"));
        let body = json!({ "experiment_ids": [experiment_id], "filter": filter, "max_results": 10 });
        let v = self.post("runs/search", &body, READ)?;
        let runs = v.get("runs").cloned().unwrap_or(Value::Array(vec![]));
        let runs: Vec<Value> = self.parse(runs, "runs/search")?;
        runs.into_iter().map(|r| self.field(r, "info", "runs/search")).collect()
    }

    /// Log parameters and set tags, in as many `runs/log-batch` requests as the API's limits
    /// need.
    pub fn log_batch(
        &self,
        run_id: &str,
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<(), TrackingError> {
        let (mut params, mut tags) = (params.chunks(MAX_PARAMS_TAGS_PER_BATCH), tags.chunks(MAX_PARAMS_TAGS_PER_BATCH));
        loop {
            let (p, t) = (params.next().unwrap_or(&[]), tags.next().unwrap_or(&[]));
            if p.is_empty() && t.is_empty() {
                return Ok(());
            }
            let body = json!({ "run_id": run_id, "params": pairs(p), "tags": pairs(t), "metrics": [] });
            self.post("runs/log-batch", &body, WRITE)?;
        }
    }

    /// Set a run's status and end time.
    pub fn update_run(&self, run_id: &str, status: &str, end_time: Option<u64>) -> Result<(), TrackingError> {
        let mut body = json!({ "run_id": run_id, "status": status });
        if let Some(end) = end_time {
            body["end_time"] = json!(end);
        }
        self.post("runs/update", &body, WRITE).map(drop)
    }

    /// Whether runs with this artifact URI store their artifacts through the server.
    pub fn serves_artifacts(artifact_uri: &str) -> bool {
        artifact_uri.starts_with("mlflow-artifacts:")
    }

    /// Upload a file as the artifact `path` of the run whose artifacts are at `artifact_uri`
    /// (an `mlflow-artifacts:` URI).
    pub fn upload_file(&self, artifact_uri: &str, path: &str, file: &Path) -> Result<(), TrackingError> {
        let url = self.artifact_url(artifact_uri, path);
        self.call("PUT", &url, "mlflow-artifacts upload", Payload::File(file, content_type(path)), WRITE).map(drop)
    }

    /// Upload bytes as the artifact `path` (see [`MlflowClient::upload_file`]).
    pub fn upload_bytes(&self, artifact_uri: &str, path: &str, bytes: &[u8]) -> Result<(), TrackingError> {
        let url = self.artifact_url(artifact_uri, path);
        self.call("PUT", &url, "mlflow-artifacts upload", Payload::Bytes(bytes, content_type(path)), WRITE).map(drop)
    }

    /// The proxy URL of an artifact, as MLflow's own client resolves it: the tracking
    /// server's scheme, the artifact URI's host if it names one, and the artifact's path
    /// under `/api/2.0/mlflow-artifacts/artifacts`.
    fn artifact_url(&self, artifact_uri: &str, path: &str) -> String {
        let rest = artifact_uri.strip_prefix("mlflow-artifacts:").unwrap_or(artifact_uri);
        let (scheme, after_scheme) = self.base.split_once("://").unwrap_or(("http", &self.base));
        let (tracking_host, prefix) =
            after_scheme.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((after_scheme, String::new()));
        let (host, artifact_path) = match rest.strip_prefix("//") {
            Some(with_host) => with_host.split_once('/').unwrap_or((with_host, "")),
            None => (tracking_host, rest.trim_start_matches('/')),
        };
        let full = format!("{}/{}", artifact_path.trim_end_matches('/'), path);
        let encoded: Vec<String> = full.split('/').filter(|s| !s.is_empty()).map(percent_encode).collect();
        format!("{scheme}://{host}{prefix}/api/2.0/mlflow-artifacts/artifacts/{}", encoded.join("/"))
    }

    fn api_url(&self, endpoint: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&format!("{k}={}", percent_encode(v)));
        }
        url
    }

    fn post(&self, endpoint: &str, body: &Value, mode: Mode) -> Result<Value, TrackingError> {
        let url = self.api_url(endpoint, &[]);
        let bytes = serde_json::to_vec(body).expect("JSON values serialize");
        self.call("POST", &url, endpoint, Payload::Json(bytes), mode)
    }

    /// A missing resource as `None`.
    fn optional(&self, result: Result<Value, TrackingError>) -> Result<Option<Value>, TrackingError> {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_code("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn field<T: serde::de::DeserializeOwned>(
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

    fn parse<T: serde::de::DeserializeOwned>(&self, v: Value, endpoint: &str) -> Result<T, TrackingError> {
        serde_json::from_value(v).map_err(|e| self.bad_response(endpoint, e.to_string()))
    }

    fn bad_response(&self, endpoint: &str, message: String) -> TrackingError {
        TrackingError::BadResponse { uri: self.base.clone(), endpoint: endpoint.to_string(), message }
    }

    /// Send a request, retrying (when the mode allows) after connection errors, 429 and 5xx
    /// with exponential backoff; the answer's JSON body (null when not read), or the error it
    /// stands for.
    fn call(
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

    fn backoff(&self, retry: u32) -> Duration {
        self.backoff.saturating_mul(1 << retry.min(16))
    }

    /// One attempt: the status, the body (of an error always, of a success when `answer`) and
    /// a `Retry-After` delay.
    fn send(
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
    fn bounded<S: ureq::AsSendBody>(&self, request: ureq::http::Request<S>) -> ureq::http::Request<S> {
        match self.answer_within {
            Some(limit) => self.agent.configure_request(request).timeout_global(Some(limit)).build(),
            None => request,
        }
    }

    fn status_error(&self, endpoint: &str, status: u16, body: &[u8]) -> TrackingError {
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

/// Split `scheme://user:pass@host/...` into the URI without user-info (and without a
/// trailing `/`) and the user-info.
fn split_userinfo(uri: &str) -> Result<(String, Option<String>), TrackingError> {
    let shown = crate::source::git::strip_credentials(uri);
    let bad = |reason| TrackingError::BadUri { uri: shown.clone(), reason };
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| bad("it has no scheme"))?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return Err(bad("only http:// and https:// servers are supported"));
    }
    if rest.contains(['?', '#']) {
        return Err(bad("a server URI has no query or fragment"));
    }
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, authority),
    };
    if host.is_empty() {
        return Err(bad("it names no host"));
    }
    Ok((format!("{}://{host}{}", scheme.to_ascii_lowercase(), path.trim_end_matches('/')), userinfo))
}

fn read_certificates(path: &Path) -> Result<ureq::tls::RootCerts, TrackingError> {
    let err = |message: String| TrackingError::Certificate { path: path.to_path_buf(), message };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| err(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    Ok(ureq::tls::RootCerts::Specific(Arc::new(certs)))
}

fn pairs(items: &[(String, String)]) -> Value {
    Value::Array(items.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect())
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("json") => "application/json",
        Some("log" | "txt" | "patch") => "text/plain",
        _ => "application/octet-stream",
    }
}

/// Test helpers: a scripted HTTP server and a client that retries without waiting.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A server that answers each connection with the next of `answers` (status, body) and
    /// reports the requests it saw (head and body).
    pub(crate) fn fake_server(answers: Vec<(u16, &'static str)>) -> (String, std::sync::mpsc::Receiver<String>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let uri = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for (status, body) in answers {
                let (mut conn, _) = listener.accept().unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let complete = |r: &[u8]| {
                    let Some(end) = r.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
                    let head = String::from_utf8_lossy(&r[..end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    r.len() >= end + 4 + length
                };
                while !complete(&request) {
                    let n = conn.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let _ = tx.send(String::from_utf8_lossy(&request).into_owned());
                let extra = if status == 429 { "Retry-After: 0\r\n" } else { "" };
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(reply.as_bytes()).unwrap();
            }
        });
        (uri, rx)
    }

    pub(crate) fn quick_client(uri: &str, retries: u32) -> MlflowClient {
        let mut client = MlflowClient::new(uri).unwrap();
        client.retries = retries;
        client.backoff = Duration::from_millis(1);
        client.auth = Some(Auth::Bearer("tok-secret".into()));
        client
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn user_info_leaves_the_uri_and_becomes_basic_auth() {
        let (base, user) = split_userinfo("https://bob:p%40ss@mlflow.example.com/prefix/").unwrap();
        assert_eq!(base, "https://mlflow.example.com/prefix");
        assert_eq!(user.as_deref(), Some("bob:p%40ss"));
        let client = MlflowClient::new("https://bob:p%40ss@mlflow.example.com/prefix/").unwrap();
        assert_eq!(client.uri(), "https://mlflow.example.com/prefix");
        assert_eq!(client.uri_credentials(), Some(("bob", "p@ss")));
        assert!(!format!("{client:?}").contains("p@ss"), "Debug hides the password");
        assert!(matches!(split_userinfo("ftp://h"), Err(TrackingError::BadUri { .. })));
        assert!(matches!(split_userinfo("http://"), Err(TrackingError::BadUri { .. })));
        let err = split_userinfo("gopher://u:secret@h").unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn artifact_urls_resolve_as_mlflow_does() {
        let mut client = MlflowClient::new("http://127.0.0.1:5000").unwrap();
        assert_eq!(
            client.artifact_url("mlflow-artifacts:/1/abc/artifacts", "lockstep/record.json"),
            "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/lockstep/record.json"
        );
        assert_eq!(
            client.artifact_url("mlflow-artifacts://other:9/1/abc/artifacts", "a b.log"),
            "http://other:9/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/a%20b.log"
        );
        client.base = "https://h/mlflow".into();
        assert_eq!(
            client.artifact_url("mlflow-artifacts:/0/r/artifacts", "x.log"),
            "https://h/mlflow/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/x.log"
        );
    }

    #[test]
    fn transient_errors_are_retried_then_the_answer_is_used() {
        let experiment = r#"{"experiment": {"experiment_id": "7", "name": "e", "lifecycle_stage": "active"}}"#;
        let (uri, seen) = fake_server(vec![(503, "{}"), (429, "{}"), (200, experiment)]);
        let e = quick_client(&uri, 2).experiment("7").unwrap().unwrap();
        assert_eq!((e.experiment_id.as_str(), e.name.as_str()), ("7", "e"));
        let requests: Vec<String> = seen.try_iter().collect();
        assert_eq!(requests.len(), 3);
        assert!(requests.iter().all(|r| r.starts_with("GET /api/2.0/mlflow/experiments/get?experiment_id=7 ")));
        assert!(requests.iter().all(|r| r.to_ascii_lowercase().contains("authorization: bearer tok-secret")));
    }

    #[test]
    fn log_batches_stay_within_the_api_limits() {
        let (uri, seen) = fake_server(vec![(200, "{}"); 2]);
        let params: Vec<_> = (0..150).map(|i| (format!("p{i}"), i.to_string())).collect();
        let tags: Vec<_> = (0..30).map(|i| (format!("t{i}"), "v".to_string())).collect();
        quick_client(&uri, 0).log_batch("r", &params, &tags).unwrap();
        let bodies: Vec<Value> =
            seen.try_iter().map(|r| serde_json::from_str(r.split_once("\r\n\r\n").unwrap().1).unwrap()).collect();
        let count = |b: &Value, key: &str| b[key].as_array().unwrap().len();
        assert_eq!(bodies.len(), 2);
        assert_eq!((count(&bodies[0], "params"), count(&bodies[0], "tags")), (100, 30));
        assert_eq!((count(&bodies[1], "params"), count(&bodies[1], "tags")), (50, 0));
        assert_eq!(bodies[1]["params"][0], json!({"key": "p100", "value": "100"}));
        assert_eq!(bodies[0]["run_id"], "r");
    }

    #[test]
    fn retries_are_bounded_and_the_error_shows_no_secret() {
        let (uri, seen) = fake_server(vec![(500, r#"{"error_code": "INTERNAL_ERROR", "message": "boom"}"#); 3]);
        let err = quick_client(&uri, 2).experiment("1").unwrap_err();
        assert_eq!(seen.try_iter().count(), 3, "one try and two retries");
        assert_eq!(
            err.to_string(),
            format!("the MLflow server at {uri} rejected experiments/get (500 INTERNAL_ERROR): boom")
        );
        assert!(err.is_transient());
        let (uri, seen) = fake_server(vec![(500, "{}"); 1]);
        assert!(
            quick_client(&uri, 3)
                .create_run_once(&NewRun { experiment_id: "0", user: "u", run_name: None, start_time: 1, tags: &[] })
                .is_err()
        );
        assert_eq!(seen.try_iter().count(), 1, "runs/create is never retried blindly");
        let (uri, _) = fake_server(vec![(401, "You are not authenticated.")]);
        let err = quick_client(&uri, 3).experiment("1").unwrap_err();
        assert!(matches!(err, TrackingError::Unauthorized { status: 401, .. }), "{err}");
        assert!(!err.to_string().contains("tok-secret"));
    }

    #[test]
    fn the_auth_header_never_shows_in_debug_output() {
        let auth = Auth::Bearer("tok-123".into());
        assert_eq!(auth.header(), "Bearer tok-123");
        assert!(!format!("{auth:?}").contains("tok-123"));
    }

    #[test]
    fn server_errors_keep_only_their_first_line() {
        let client = MlflowClient::new("http://h").unwrap();
        let body = br#"{"error_code": "RESOURCE_ALREADY_EXISTS", "message": "exists\n[SQL: INSERT ...]"}"#;
        let e = client.status_error("experiments/create", 400, body);
        assert!(e.is_code("RESOURCE_ALREADY_EXISTS"));
        assert_eq!(
            e.to_string(),
            "the MLflow server at http://h rejected experiments/create (400 RESOURCE_ALREADY_EXISTS): exists"
        );
        assert!(matches!(client.status_error("x", 401, b"nope"), TrackingError::Unauthorized { status: 401, .. }));
    }
}
