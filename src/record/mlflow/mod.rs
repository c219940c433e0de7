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

mod api;
mod artifacts;
mod auth;
mod client;
mod error;

pub use api::{Experiment, ModelInfo, NewRun, RunInfo};
pub use auth::Secret;
pub use client::{MlflowClient, first_contact_timeout};
pub use error::TrackingError;

/// Most metric points one `runs/log-batch` request may carry.
pub const MAX_METRICS_PER_BATCH: usize = 1000;
/// Most params, and most tags, one `runs/log-batch` request may carry.
pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
/// The longest parameter value an MLflow server accepts.
pub const MAX_PARAM_VALUE_LENGTH: usize = 6000;
/// The longest tag value an MLflow server accepts.
pub const MAX_TAG_VALUE_LENGTH: usize = 8000;

/// Test helpers: a scripted HTTP server and a client that retries without waiting.
#[cfg(test)]
pub(crate) mod testing {
    use std::time::Duration;

    use super::auth::Auth;
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
    use serde_json::{Value, json};

    use super::auth::{Auth, split_userinfo};
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
