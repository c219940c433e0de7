//! Reading artifacts back from a server: where a logged model's or a registered model
//! version's files are, and the files under an artifact URI, listed and downloaded through
//! the artifact proxy (`mlflow-artifacts:`) as MLflow's own client does.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::client::{Payload, READ};
use super::{MlflowClient, ModelInfo, TrackingError};
use crate::support::text::percent_encode;

/// One entry of an artifact directory, as the proxy lists it: a name relative to the
/// directory listed.
#[derive(Debug, Clone, serde::Deserialize)]
struct Listed {
    path: String,
    #[serde(default)]
    is_dir: bool,
}

impl MlflowClient {
    /// The logged model of this id (`m-...`), if there is one.
    pub fn logged_model(&self, model_id: &str) -> Result<Option<ModelInfo>, TrackingError> {
        let endpoint = format!("logged-models/{}", percent_encode(model_id));
        let url = self.api_url(&endpoint, &[]);
        let v = self.optional(self.call("GET", &url, "logged-models/{id}", Payload::Empty, READ))?;
        v.map(|v| {
            let model: Value = self.field(v, "model", "logged-models/{id}")?;
            self.field(model, "info", "logged-models/{id}")
        })
        .transpose()
    }

    /// The version of a registered model that `selector` names: a version number as it is,
    /// `latest` as the highest version, an alias (`@champion`) as the version it points at.
    pub fn model_version(&self, name: &str, selector: &str) -> Result<String, TrackingError> {
        if let Some(alias) = selector.strip_prefix('@') {
            let url = self.api_url("registered-models/alias", &[("name", name), ("alias", alias)]);
            let v = self.call("GET", &url, "registered-models/alias", Payload::Empty, READ)?;
            let version: Value = self.field(v, "model_version", "registered-models/alias")?;
            return self.field(version, "version", "registered-models/alias");
        }
        if !selector.eq_ignore_ascii_case("latest") {
            return Ok(selector.to_string());
        }
        let v = self.post("registered-models/get-latest-versions", &json!({ "name": name }), READ)?;
        let versions: Vec<Value> = self.field(v, "model_versions", "registered-models/get-latest-versions")?;
        let number = |v: &Value| v.get("version").and_then(Value::as_str).and_then(|s| s.parse::<u64>().ok());
        versions.iter().filter_map(number).max().map(|n| n.to_string()).ok_or_else(|| {
            self.bad_response("registered-models/get-latest-versions", format!("'{name}' has no versions"))
        })
    }

    /// Where the files of a registered model's version are (an artifact URI, or the
    /// `models:/m-...` URI of a logged model).
    pub fn model_version_uri(&self, name: &str, version: &str) -> Result<String, TrackingError> {
        let url = self.api_url("model-versions/get-download-uri", &[("name", name), ("version", version)]);
        let v = self.call("GET", &url, "model-versions/get-download-uri", Payload::Empty, READ)?;
        self.field(v, "artifact_uri", "model-versions/get-download-uri")
    }

    /// Download what is at `path` under the proxied `artifact_uri` (a file, or a directory
    /// with everything in it) to `to`; false when nothing is there.
    pub fn download_tree(&self, artifact_uri: &str, path: &str, to: &Path) -> Result<bool, TrackingError> {
        let listed = self.list_proxied(artifact_uri, path)?;
        if listed.is_empty() {
            // The proxy lists a file, and a path that does not exist, as nothing.
            let url = self.artifact_url(artifact_uri, path);
            let (status, body, _) = self.send("GET", &url, &Payload::Empty, true)?;
            return match status {
                200 => write_file(to, &body).map(|()| true),
                404 => Ok(false),
                _ => Err(self.status_error("mlflow-artifacts download", status, &body)),
            };
        }
        fs::create_dir_all(to).map_err(io_error(to))?;
        for entry in listed {
            let name = entry.path.rsplit('/').next().unwrap_or(&entry.path);
            if name.is_empty() || name == "." || name == ".." {
                return Err(self.bad_response("mlflow-artifacts list", format!("an entry named '{}'", entry.path)));
            }
            let child =
                if path.is_empty() { name.to_string() } else { format!("{}/{name}", path.trim_end_matches('/')) };
            let target = to.join(name);
            if entry.is_dir {
                fs::create_dir_all(&target).map_err(io_error(&target))?;
            }
            self.download_tree(artifact_uri, &child, &target)?;
        }
        Ok(true)
    }

    fn list_proxied(&self, artifact_uri: &str, path: &str) -> Result<Vec<Listed>, TrackingError> {
        let file_url = self.artifact_url(artifact_uri, path);
        let (dir_url, full) = file_url.split_once("/api/2.0/mlflow-artifacts/artifacts/").unwrap_or((&file_url, ""));
        let url = format!("{dir_url}/api/2.0/mlflow-artifacts/artifacts?path={full}");
        let v = self.call("GET", &url, "mlflow-artifacts list", Payload::Empty, READ)?;
        match v.get("files") {
            Some(files) => self.parse(files.clone(), "mlflow-artifacts list"),
            None => Ok(Vec::new()),
        }
    }
}

fn write_file(to: &Path, bytes: &[u8]) -> Result<(), TrackingError> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    fs::write(to, bytes).map_err(io_error(to))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrackingError {
    let path: PathBuf = path.to_path_buf();
    move |source| TrackingError::Io { path, source }
}
