//! The embedded tracking endpoint: MLflow's tracking REST API served on 127.0.0.1 (an
//! ephemeral port) for a run's lifetime when no tracking server is given, so that the
//! script's `mlflow` client logs into the run directory instead of creating `mlflow.db` in
//! the project. Every change is appended to `tracking/events.jsonl` before it is answered;
//! artifacts and models are files the client writes itself, into the run directory.
//!
//! The server is hyper's HTTP/1 on a current-thread tokio runtime, in one thread of its own:
//! both are in the dependency tree already (through the Docker client), and the listener is
//! bound before the thread starts, so a script that never logs pays for a bind and a thread.

mod experiments;
mod logging;
mod models;
mod runs;
mod search;
mod state;
mod wire;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Response, StatusCode};
use serde_json::Value;

use state::State;
pub use state::TopRun;
use wire::{Answer, ApiError, Request};

/// Errors of starting the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// No port on the loopback interface could be had.
    #[error("cannot serve the tracking endpoint on 127.0.0.1: {0}")]
    Bind(std::io::Error),
    /// The server's thread could not be started.
    #[error("cannot start the tracking endpoint's thread: {0}")]
    Thread(std::io::Error),
}

/// A running endpoint; [`Endpoint::stop`] (or dropping it) stops it.
#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    run_id: String,
    experiment_id: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Endpoint {
    /// Serve the run `top`, whose directory is `run_dir`.
    pub fn start(run_dir: &Path, top: &TopRun) -> Result<Endpoint, EndpointError> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(EndpointError::Bind)?;
        listener.set_nonblocking(true).map_err(EndpointError::Bind)?;
        let addr = listener.local_addr().map_err(EndpointError::Bind)?;
        let state = State::new(run_dir, top);
        let experiment_id = state.top_experiment_id().to_string();
        let state = Arc::new(Mutex::new(state));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tracking-endpoint".into())
            .spawn(move || serve(listener, state, stopped))
            .map_err(EndpointError::Thread)?;
        Ok(Endpoint { addr, run_id: top.run_id.clone(), experiment_id, stop: Some(stop), thread: Some(thread) })
    }

    /// The tracking URI the script is given.
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The variables that make `mlflow.start_run()` resume lockstep's run on this endpoint.
    pub fn child_variables(&self) -> Vec<(String, String)> {
        vec![
            ("MLFLOW_TRACKING_URI".into(), self.uri()),
            ("MLFLOW_RUN_ID".into(), self.run_id.clone()),
            ("MLFLOW_EXPERIMENT_ID".into(), self.experiment_id.clone()),
        ]
    }

    /// Stop serving and wait for the server's thread; every answered request is on disk.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The server's thread: accept connections until told to stop.
fn serve(listener: std::net::TcpListener, state: Arc<Mutex<State>>, stopped: tokio::sync::oneshot::Receiver<()>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build() {
        Ok(rt) => rt,
        Err(e) => return crate::support::ui::warn(&format!("the tracking endpoint could not start: {e}")),
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => return crate::support::ui::warn(&format!("the tracking endpoint could not start: {e}")),
        };
        let accepting = async {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    // Out of descriptors, say: try again in a moment rather than spin.
                    Err(_) => {
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                // Answers are small and each waits for the next request: no Nagle delay.
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| answer(state.clone(), req));
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        };
        futures_util::pin_mut!(accepting);
        futures_util::future::select(accepting, stopped).await;
    });
}

async fn answer(
    state: Arc<Mutex<State>>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let (status, body) = match body.collect().await {
        Ok(body) => {
            let mut state = state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            route(&mut state, &parts.method, parts.uri.path(), parts.uri.query().unwrap_or(""), &body.to_bytes())
        }
        Err(e) => (400, ApiError::invalid(format!("the request body could not be read: {e}")).body()),
    };
    let bytes = serde_json::to_vec(&body).expect("JSON values serialize");
    let response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .expect("a response of valid parts");
    Ok(response)
}

/// The answer to one request: its status and JSON body.
fn route(state: &mut State, method: &Method, path: &str, query: &str, body: &[u8]) -> (u16, Value) {
    let result = Request::parse(query, body).and_then(|req| dispatch(state, method, path, req));
    match result {
        Ok(v) => (200, v),
        Err(e) => (e.status, e.body()),
    }
}

fn dispatch(state: &mut State, method: &Method, path: &str, req: Request) -> Answer {
    let Some(endpoint) = path.strip_prefix("/api/2.0/mlflow/").or_else(|| path.strip_prefix("/ajax-api/2.0/mlflow/"))
    else {
        return Err(ApiError::no_endpoint(method.as_str(), path));
    };
    let m = method.as_str();
    match (m, endpoint) {
        ("GET", "experiments/get") => experiments::get(state, &req),
        ("GET", "experiments/get-by-name") => experiments::get_by_name(state, &req),
        ("POST", "experiments/create") => experiments::create(state, &req),
        ("POST" | "GET", "experiments/search") => experiments::search(state, &req),
        ("POST", "experiments/set-experiment-tag") => experiments::set_tag(state, &req),
        ("POST", "runs/create") => runs::create(state, &req),
        ("GET", "runs/get") => runs::get(state, &req),
        ("POST", "runs/update") => runs::update(state, &req),
        ("POST", "runs/delete") => runs::set_lifecycle(state, &req, "deleted"),
        ("POST", "runs/restore") => runs::set_lifecycle(state, &req, "active"),
        ("POST", "runs/search") => runs::search(state, &req),
        ("POST", "runs/log-parameter") => logging::log_param(state, &req),
        ("POST", "runs/log-metric") => logging::log_metric(state, &req),
        ("POST", "runs/set-tag") => logging::set_tag(state, &req),
        ("POST", "runs/delete-tag") => logging::delete_tag(state, &req),
        ("POST", "runs/log-batch") => logging::log_batch(state, &req),
        ("POST", "runs/log-inputs") => logging::log_inputs(state, &req),
        ("POST", "runs/outputs") => logging::log_outputs(state, &req),
        ("POST", "runs/log-model") => logging::log_model(state, &req),
        ("GET", "metrics/get-history") => logging::get_history(state, &req),
        ("POST", "logged-models") => models::create(state, &req),
        ("POST", "logged-models/search") => models::search(state, &req),
        _ => match endpoint.strip_prefix("logged-models/").map(|rest| rest.split('/').collect::<Vec<_>>()).as_deref() {
            Some([id]) => match m {
                "GET" => models::get(state, id),
                "PATCH" => models::finalize(state, id, &req),
                "DELETE" => models::delete(state, id),
                _ => Err(ApiError::no_endpoint(m, path)),
            },
            Some([id, "tags"]) if m == "PATCH" => models::set_tags(state, id, &req),
            Some([id, "tags", key]) if m == "DELETE" => {
                models::delete_tag(state, id, &crate::support::text::percent_decode(key))
            }
            Some([id, "params"]) if m == "POST" => models::log_params(state, id, &req),
            _ => Err(ApiError::no_endpoint(m, path)),
        },
    }
}

#[cfg(test)]
mod tests;
