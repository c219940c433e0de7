//! The Docker engine: one connection through the Engine API (`DOCKER_HOST` or the default
//! socket) with the API version negotiated, driven by its own current-thread tokio runtime so
//! that the rest of lockstep stays synchronous. A leaf: both `env::docker` (images) and
//! `exec::container` (containers) use it.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::SystemVersion;

use crate::support::error_class::ErrorClass;

/// Errors of reaching the engine and of its requests.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// `DOCKER_HOST` names a kind of address lockstep cannot use.
    #[error("cannot use the Docker engine at {host}: {reason}")]
    UnsupportedHost {
        /// The address.
        host: String,
        /// Why.
        reason: String,
    },
    /// No engine answered.
    #[error("cannot reach the Docker engine at {host}: {reason}")]
    NoEngine {
        /// The address.
        host: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// The engine refused to create or start a container (its settings do not work here).
    #[error("the Docker engine cannot {action} the container: {message}")]
    ContainerRefused {
        /// `create` or `start`.
        action: &'static str,
        /// What the engine said.
        message: String,
    },
    /// SIGINT or SIGTERM stopped an engine operation (a pull or a build).
    #[error("interrupted")]
    Interrupted,
    /// The engine refused or failed a request.
    #[error("Docker engine: cannot {action}: {message}")]
    Request {
        /// What lockstep asked for.
        action: String,
        /// What the engine said.
        message: String,
    },
}

impl EngineError {
    /// Who has to act.
    pub fn class(&self) -> ErrorClass {
        match self {
            EngineError::UnsupportedHost { .. }
            | EngineError::NoEngine { .. }
            | EngineError::ContainerRefused { .. } => ErrorClass::User,
            EngineError::Interrupted | EngineError::Request { .. } => ErrorClass::Internal,
        }
    }

    /// What to try next.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            EngineError::UnsupportedHost { .. } => {
                "set DOCKER_HOST to unix:///path/to/docker.sock or tcp://host:2375 (or unset it)".into()
            }
            EngineError::NoEngine { .. } => {
                "start the Docker daemon (sudo systemctl start docker), or set DOCKER_HOST \
                to the engine's address; `docker info` checks the connection"
                    .into()
            }
            EngineError::ContainerRefused { .. } => {
                "check the -A options and the docker_env volumes against what this engine offers".into()
            }
            EngineError::Interrupted | EngineError::Request { .. } => return None,
        })
    }

    /// A failed request, with the engine's words.
    pub fn request(action: impl Into<String>, err: &BollardError) -> EngineError {
        EngineError::Request { action: action.into(), message: describe(err) }
    }
}

/// The engine's socket when `DOCKER_HOST` is not set.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// How long the first request (the version negotiation) may take: an address that does not
/// answer must not hang the run.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long any later request may wait for the engine's response headers. Streams (build
/// output, logs, the wait for exit) are not limited once their headers arrived.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// A connected engine.
pub struct Engine {
    runtime: tokio::runtime::Runtime,
    docker: Docker,
    /// The address, as shown in messages.
    pub host: String,
    signals: SignalWatch,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("host", &self.host).finish_non_exhaustive()
    }
}

/// The engine address lockstep uses: `DOCKER_HOST` when set, else the default socket (or the
/// rootless one under `XDG_RUNTIME_DIR` when only that exists).
pub fn engine_host() -> String {
    if let Some(host) = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()) {
        return host;
    }
    if !Path::new(DEFAULT_SOCKET).exists()
        && let Some(runtime_dir) = std::env::var_os("XDG_RUNTIME_DIR")
    {
        let rootless = Path::new(&runtime_dir).join("docker.sock");
        if rootless.exists() {
            return format!("unix://{}", rootless.display());
        }
    }
    format!("unix://{DEFAULT_SOCKET}")
}

impl Engine {
    /// Connect to the engine and negotiate the API version.
    pub fn connect() -> Result<Engine, EngineError> {
        let signals = SignalWatch::install();
        let host = engine_host();
        let unsupported = |reason: &str| EngineError::UnsupportedHost { host: host.clone(), reason: reason.into() };
        if !(host.starts_with("unix://") || host.starts_with("tcp://") || host.starts_with("http://")) {
            return Err(unsupported("lockstep reaches engines through unix:// sockets and tcp:// addresses"));
        }
        if std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty()) {
            return Err(unsupported("DOCKER_TLS_VERIFY is set, but lockstep does not speak TLS to the engine"));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| EngineError::Request { action: "start the engine client".into(), message: e.to_string() })?;
        let no_engine = |reason: String| EngineError::NoEngine { host: host.clone(), reason };
        let docker = Docker::connect_with_host(&host).map_err(|e| match e {
            BollardError::SocketNotFoundError(path) => no_engine(format!("no socket at {path}")),
            other => unsupported(&describe(&other)),
        })?;
        let docker = runtime
            .block_on(async { tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await })
            .map_err(|_| no_engine(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|e| no_engine(describe(&e)))?
            .with_timeout(REQUEST_TIMEOUT);
        Ok(Engine { runtime, docker, host, signals })
    }

    /// The API client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Run a future to completion on the engine's runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Run a future to completion, or give up with [`EngineError::Interrupted`] once SIGINT or
    /// SIGTERM arrived since the connection was made (dropping the request, which makes the
    /// engine cancel it).
    pub fn block_on_interruptible<T, E, F>(&self, future: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: From<EngineError>,
    {
        let watch = &self.signals;
        self.runtime.block_on(async {
            let future = std::pin::pin!(future);
            let stop = std::pin::pin!(async {
                loop {
                    if watch.fired() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
            match futures_util::future::select(future, stop).await {
                futures_util::future::Either::Left((result, _)) => result,
                futures_util::future::Either::Right(_) => Err(EngineError::Interrupted.into()),
            }
        })
    }

    /// The engine's version report (version, API version, OS, architecture).
    pub fn version(&self) -> Result<SystemVersion, EngineError> {
        self.block_on(self.docker.version())
            .map_err(|e| EngineError::Request { action: "read the engine's version".into(), message: describe(&e) })
    }
}

/// Whether SIGINT/SIGTERM came while it lives. The run's own handlers keep working: signal-hook chains
/// every registration of a signal.
struct SignalWatch {
    flag: Arc<AtomicBool>,
    ids: Vec<signal_hook::SigId>,
}

impl SignalWatch {
    fn install() -> SignalWatch {
        let flag = Arc::new(AtomicBool::new(false));
        let ids = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM]
            .into_iter()
            .filter_map(|sig| signal_hook::flag::register(sig, flag.clone()).ok())
            .collect();
        SignalWatch { flag, ids }
    }

    fn fired(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// An engine error with its causes, one clause each (bollard's own message is often just
/// "error trying to connect").
pub fn describe(err: &BollardError) -> String {
    let mut parts = vec![match err {
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }];
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// Whether the engine answered 404 (no such image, container or path).
pub fn is_not_found(err: &BollardError) -> bool {
    matches!(err, BollardError::DockerResponseServerError { status_code: 404, .. })
}
