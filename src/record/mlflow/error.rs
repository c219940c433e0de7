//! The errors of talking to an MLflow tracking server, and who has to act on each.

use std::path::PathBuf;

use super::MAX_PARAM_VALUE_LENGTH;
use crate::support::error_class::ErrorClass;

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
    /// A file to upload could not be read, or a downloaded one written.
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
            TrackingError::SyncFailed { run_id, cause } => Some(match cause.as_ref() {
                TrackingError::Rejected { .. } => format!(
                    "the server failed or refused the request (its log says why); the local record is unchanged: `lockstep sync {run_id}` again once the server is fixed"
                ),
                _ => format!(
                    "check that the server runs and the URI is right (--tracking-uri, else the server the run was recorded on); the local record is unchanged: `lockstep sync {run_id}` again once the server answers"
                ),
            }),
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

    pub(super) fn is_code(&self, wanted: &str) -> bool {
        matches!(self, TrackingError::Rejected { code, .. } if code == wanted)
    }
}
