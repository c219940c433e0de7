//! The MLflow server fixture: MLflow 3.17.2 from PyPI in a virtualenv cached under the target
//! directory (`tests/support/mlflow-venv.sh` makes it once; `LOCKSTEP_TEST_MLFLOW` may name
//! another `mlflow` executable), and `mlflow server` on 127.0.0.1 with a free port, its own
//! sqlite database and artifact directory, stopped with all its workers when dropped, also when
//! the test fails.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};

use super::context::{free_port, wait_for};
use super::venv::pypi_venv;

/// The `mlflow` executable the tests use (its directory also holds the matching `python`).
pub fn mlflow_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("LOCKSTEP_TEST_MLFLOW") {
            return PathBuf::from(bin);
        }
        let venv = pypi_venv("mlflow-3.17.2", "mlflow-venv.sh");
        venv.join("bin/mlflow")
    })
    .clone()
}

/// PATH with the virtualenv first, so that entry points find `python` with mlflow.
pub fn path_with_mlflow() -> String {
    format!("{}:{}", mlflow_bin().parent().unwrap().display(), std::env::var("PATH").unwrap_or_default())
}

/// A `mlflow server` on 127.0.0.1, stopped (with all its workers) when dropped.
///
/// Servers and the Python entry points that talk to them load the CPU heavily: the tests of
/// this module take turns (each holds `_turn`), so that none waits out a time limit because
/// of the others.
pub struct MlflowServer {
    _turn: MutexGuard<'static, ()>,
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
    /// `http`, or `https` when the server has a certificate (which the tests' own requests
    /// do not check).
    scheme: &'static str,
    agent: ureq::Agent,
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl MlflowServer {
    /// A server that serves artifacts (`--serve-artifacts`).
    pub fn start() -> MlflowServer {
        MlflowServer::start_with(&["--serve-artifacts"], &[])
    }

    /// A server with these extra arguments and environment variables.
    pub fn start_with(args: &[&str], envs: &[(&str, &str)]) -> MlflowServer {
        MlflowServer::start_in(tempfile::Builder::new().prefix("mlflow-server-").tempdir().unwrap(), args, envs)
    }

    /// The same, with its database, artifacts and logs in `dir`.
    pub fn start_in(dir: tempfile::TempDir, args: &[&str], envs: &[(&str, &str)]) -> MlflowServer {
        static TURN: Mutex<()> = Mutex::new(());
        let tls = args.iter().any(|a| a.contains("--ssl-certfile"));
        let agent = ureq::Agent::config_builder()
            .tls_config(ureq::tls::TlsConfig::builder().disable_verification(tls).build())
            .build()
            .into();
        let mut server = MlflowServer {
            _turn: TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
            scheme: if tls { "https" } else { "http" },
            agent,
            child: None,
            port: free_port(),
            args: args.iter().map(|s| s.to_string()).collect(),
            envs: envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            dir,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let db = format!("sqlite:///{}", self.dir.path().join("mlflow.db").display());
        let child = Command::new(mlflow_bin())
            .arg("server")
            .args(["--backend-store-uri", &db])
            .arg("--artifacts-destination")
            .arg(self.dir.path().join("artifacts"))
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string(), "--workers", "1"])
            .args(&self.args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", path_with_mlflow())
            .env("HOME", self.dir.path())
            .env("LANG", "C.UTF-8")
            // Job execution (a GenAI feature) starts a dozen workers tracking never uses.
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(fs::File::create(self.dir.path().join("server.log")).unwrap())
            .stderr(fs::File::create(self.dir.path().join("server.err")).unwrap())
            // Its own group: `mlflow server` starts uvicorn workers, which must stop with it.
            .process_group(0)
            .spawn()
            .expect("mlflow server starts");
        self.child = Some(child);
        let health = format!("{}/health", self.uri());
        let up = wait_for(Duration::from_secs(180), || {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("mlflow server exited with {status}: {}", self.log());
            }
            self.agent.get(&health).call().is_ok()
        });
        assert!(up, "mlflow server answers on {}: {}", self.port, self.log());
    }

    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.err")).unwrap_or_default()
    }

    /// The tracking URI, `SCHEME://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// Stop the server (and its workers) now.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = child.id() as i32;
            unsafe { libc::killpg(group, libc::SIGTERM) };
            if !wait_for(Duration::from_secs(10), || matches!(child.try_wait(), Ok(Some(_)))) {
                unsafe { libc::killpg(group, libc::SIGKILL) };
            }
            let _ = child.wait();
            // Workers left in the group must not keep the port or the database.
            unsafe { libc::killpg(group, libc::SIGKILL) };
        }
    }

    /// Start it again on the same port and database.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// GET a REST endpoint (`runs/get`, ...) with a query; the JSON answer.
    pub fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Value {
        let mut req = self.agent.get(format!("{}/api/2.0/mlflow/{endpoint}", self.uri()));
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let mut resp = req.call().unwrap_or_else(|e| panic!("GET {endpoint}: {e}"));
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// POST a JSON body to a REST endpoint; the JSON answer.
    pub fn post(&self, endpoint: &str, body: Value) -> Value {
        let mut resp = self
            .agent
            .post(format!("{}/api/2.0/mlflow/{endpoint}", self.uri()))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("POST {endpoint}: {e}"));
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// A run: info, tags, params and metrics.
    pub fn run(&self, run_id: &str) -> ServerRun {
        ServerRun(self.get("runs/get", &[("run_id", run_id)])["run"].clone())
    }

    /// The runs of an experiment.
    pub fn runs(&self, experiment_id: &str) -> Vec<Value> {
        let v = self.post("runs/search", json!({ "experiment_ids": [experiment_id], "max_results": 100 }));
        v["runs"].as_array().cloned().unwrap_or_default()
    }

    /// Artifact paths of a run under `path`.
    pub fn artifacts(&self, run_id: &str, path: &str) -> Vec<String> {
        let v = self.get("artifacts/list", &[("run_id", run_id), ("path", path)]);
        v["files"]
            .as_array()
            .map(|f| f.iter().map(|f| f["path"].as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    }

    /// The content of an artifact, through the server's proxy.
    pub fn artifact(&self, experiment_id: &str, run_id: &str, path: &str) -> String {
        let url =
            format!("{}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{path}", self.uri());
        self.agent.get(url).call().unwrap().body_mut().read_to_string().unwrap()
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A run as the server returns it from `runs/get`.
pub struct ServerRun(pub Value);

impl ServerRun {
    /// A field of the run's info (status, end_time, ...).
    pub fn info(&self, key: &str) -> &Value {
        &self.0["info"][key]
    }

    /// The key/value pairs of `tags`, `params` or `metrics`.
    pub fn pairs(&self, kind: &str) -> Vec<(String, Value)> {
        self.0["data"][kind]
            .as_array()
            .map(|a| a.iter().map(|p| (p["key"].as_str().unwrap().to_string(), p["value"].clone())).collect())
            .unwrap_or_default()
    }

    /// A tag's value.
    pub fn tag(&self, key: &str) -> Option<String> {
        self.pairs("tags").into_iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str().unwrap().to_string())
    }

    /// A parameter's value.
    pub fn param(&self, key: &str) -> Option<String> {
        self.pairs("params").into_iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str().unwrap().to_string())
    }

    /// A metric's latest value.
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.pairs("metrics").into_iter().find(|(k, _)| k == key).map(|(_, v)| v.as_f64().unwrap())
    }
}
