//! `path` parameters given MLflow's own artifact URIs, fetched into the run's `inputs/<name>/`
//! as `mlflow run` downloads them: `runs:/<run_id>/<path>`, `models:/m-<id>` (a logged
//! model), `models:/<name>/<version | latest | @alias>` (a registered model's version) and
//! `mlflow-artifacts:/<path>` (the server's artifact proxy).
//!
//! A run or model that lockstep recorded is read from the store (a lockstep run id is the
//! run's MLflow run id, and its script's logged models are kept beside it); anything else
//! comes through the tracking server, when one is given.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::mlflow::MlflowClient;
use super::{RunDir, Store, TrackingError, TrackingTarget};
use crate::support::error_class::ErrorClass;

/// Where artifacts named by URI are looked for.
#[derive(Clone, Copy)]
pub struct ArtifactSources<'a> {
    /// The store, for runs and models lockstep recorded.
    pub store: &'a Store,
    /// The tracking server, for the others.
    pub tracking: Option<&'a TrackingTarget>,
}

/// Errors of fetching an artifact named by URI.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The URI does not have the shape its scheme needs.
    #[error("'{uri}' is not a valid MLflow artifact URI: {reason}")]
    BadUri {
        /// The URI.
        uri: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Neither the store nor a server has the run or model.
    #[error("'{uri}' names {what}, which is not in the store{}", if *.asked_server { " nor on the tracking server" } else { "" })]
    NotFound {
        /// The URI.
        uri: String,
        /// The run or model it names.
        what: String,
        /// Whether a tracking server was asked too.
        asked_server: bool,
    },
    /// The server keeps the artifacts where lockstep cannot read them.
    #[error("'{uri}' is stored at {location}, which lockstep cannot read")]
    Unreadable {
        /// The URI.
        uri: String,
        /// Where the server says the files are.
        location: String,
    },
    /// An artifact in the store is a symbolic link, which is never followed out of it.
    #[error("{} is a symbolic link: artifacts are copied without following links", .path.display())]
    Link {
        /// The link.
        path: PathBuf,
    },
    /// Talking to the tracking server failed.
    #[error("fetching '{uri}': {source}")]
    Tracking {
        /// The URI.
        uri: String,
        /// The server's error (boxed: it is large, and every command error carries this).
        source: Box<TrackingError>,
    },
    /// Copying from the store failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl ArtifactError {
    /// Who has to act.
    pub fn class(&self) -> ErrorClass {
        match self {
            ArtifactError::Tracking { source, .. } => source.class(),
            ArtifactError::Io { .. } => ErrorClass::Internal,
            _ => ErrorClass::User,
        }
    }

    /// What to try next.
    pub fn hint(&self) -> Option<String> {
        match self {
            ArtifactError::NotFound { asked_server: false, .. } => Some(
                "give the tracking server that has it with --tracking-uri or MLFLOW_TRACKING_URI, or --store for another store"
                    .into(),
            ),
            ArtifactError::NotFound { .. } => Some("`lockstep runs` lists the store's runs; check the id on the server".into()),
            ArtifactError::Unreadable { .. } => Some(
                "serve the artifacts through the server (mlflow server --serve-artifacts), or fetch them first and pass the local path".into(),
            ),
            ArtifactError::BadUri { .. } => {
                Some("MLflow's forms are runs:/RUN_ID/PATH, models:/m-ID, models:/NAME/VERSION and mlflow-artifacts:/PATH".into())
            }
            ArtifactError::Tracking { source, .. } => source.hint(),
            _ => None,
        }
    }
}

/// What an artifact URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Named {
    /// A path (empty: all) in a run's artifacts.
    Run { run_id: String, path: String },
    /// A logged model's files.
    Model { model_id: String },
    /// A registered model's version (a number, `latest` or `@alias`).
    Registered { name: String, version: String },
    /// A path behind the server's artifact proxy: the URI as written.
    Proxied,
}

impl Named {
    fn parse(uri: &str) -> Result<Named, ArtifactError> {
        let bad = |reason| ArtifactError::BadUri { uri: uri.to_string(), reason };
        if uri.starts_with("mlflow-artifacts:") {
            return Ok(Named::Proxied);
        }
        if let Some(rest) = uri.strip_prefix("runs:/") {
            let (run_id, path) = rest.trim_start_matches('/').split_once('/').unwrap_or((rest, ""));
            if run_id.is_empty() || !run_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(bad("runs:/ needs a run id, as in runs:/RUN_ID/model"));
            }
            let path = path.trim_matches('/');
            if !relative_inside(path) {
                return Err(bad("the artifact path must stay inside the run's artifacts"));
            }
            return Ok(Named::Run { run_id: run_id.to_string(), path: path.to_string() });
        }
        let Some(rest) = uri.strip_prefix("models:/") else {
            return Err(bad("the scheme is none of runs:, models: and mlflow-artifacts:"));
        };
        let rest = rest.trim_matches('/');
        if rest.starts_with("m-") && !rest.contains('/') {
            return Ok(Named::Model { model_id: rest.to_string() });
        }
        let (name, version) = match rest.split_once('@') {
            Some((name, alias)) if !alias.is_empty() && !alias.contains('/') => (name, format!("@{alias}")),
            Some(_) => return Err(bad("models:/NAME@ALIAS needs an alias")),
            None => match rest.split_once('/') {
                Some((name, version)) if !version.is_empty() && !version.contains('/') => (name, version.to_string()),
                _ => return Err(bad("models:/ needs m-ID, NAME/VERSION or NAME@ALIAS")),
            },
        };
        if name.is_empty() {
            return Err(bad("models:/ needs a model name"));
        }
        Ok(Named::Registered { name: name.to_string(), version })
    }
}

/// A relative path with no `..`, or nothing.
fn relative_inside(path: &str) -> bool {
    Path::new(path).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Fetch what `uri` names into the directory `into` (made when missing): the local path the
/// entry point gets (the file, or the directory of the files).
pub fn fetch_artifact(uri: &str, sources: ArtifactSources<'_>, into: &Path) -> Result<PathBuf, ArtifactError> {
    let named = Named::parse(uri)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ArtifactError::Io { path, source }
    };
    fs::create_dir_all(into).map_err(io(into))?;
    if let Some((from, leaf)) = in_store(&named, sources.store) {
        let to = leaf.map(|l| into.join(l)).unwrap_or_else(|| into.to_path_buf());
        copy_tree(&from, &to)?;
        return Ok(to);
    }
    let Some(target) = sources.tracking else {
        return Err(ArtifactError::NotFound { uri: uri.to_string(), what: what(&named, uri), asked_server: false });
    };
    let tracking = |source| ArtifactError::Tracking { uri: uri.to_string(), source: Box::new(source) };
    let client = target.client();
    let not_found = || ArtifactError::NotFound { uri: uri.to_string(), what: what(&named, uri), asked_server: true };
    let (artifact_uri, path) = match &named {
        Named::Run { run_id, path } => {
            let run = client.run(run_id).map_err(tracking)?.ok_or_else(not_found)?;
            (run.artifact_uri, path.clone())
        }
        Named::Model { model_id } => (model_uri(client, model_id, &tracking)?.ok_or_else(not_found)?, String::new()),
        Named::Registered { name, version } => {
            let version = client.model_version(name, version).map_err(tracking)?;
            let location = client.model_version_uri(name, &version).map_err(tracking)?;
            match location.strip_prefix("models:/") {
                Some(model_id) => (model_uri(client, model_id, &tracking)?.ok_or_else(not_found)?, String::new()),
                None => (location, String::new()),
            }
        }
        Named::Proxied => (uri.to_string(), String::new()),
    };
    // A proxied URI's own last segment names the copy, as a run's artifact path does.
    let named_path = if named == Named::Proxied { uri.trim_end_matches('/') } else { path.as_str() };
    let leaf = match named_path.rsplit('/').next().filter(|l| !l.is_empty() && !l.ends_with(':')) {
        Some(l) if l != ".." && l != "." => into.join(l),
        _ => into.to_path_buf(),
    };
    if MlflowClient::serves_artifacts(&artifact_uri) {
        return match client.download_tree(&artifact_uri, &path, &leaf).map_err(tracking)? {
            true => Ok(leaf),
            false => Err(not_found()),
        };
    }
    // A server whose artifact root is a directory of this machine (no proxy).
    let root = artifact_uri.strip_prefix("file://").unwrap_or(&artifact_uri);
    let from = Path::new(root).join(&path);
    if !root.starts_with('/') || fs::symlink_metadata(&from).is_err() {
        return Err(ArtifactError::Unreadable { uri: uri.to_string(), location: artifact_uri });
    }
    copy_tree(&from, &leaf)?;
    Ok(leaf)
}

fn model_uri(
    client: &MlflowClient,
    model_id: &str,
    tracking: &dyn Fn(TrackingError) -> ArtifactError,
) -> Result<Option<String>, ArtifactError> {
    Ok(client.logged_model(model_id).map_err(tracking)?.map(|m| m.artifact_uri))
}

/// What a URI names, for messages.
fn what(named: &Named, uri: &str) -> String {
    match named {
        Named::Run { run_id, path } if path.is_empty() => format!("run {run_id}"),
        Named::Run { run_id, path } => format!("artifact '{path}' of run {run_id}"),
        Named::Model { model_id } => format!("model {model_id}"),
        Named::Registered { name, version } => format!("version {version} of registered model '{name}'"),
        Named::Proxied => format!("the artifact {uri}"),
    }
}

/// Where the store keeps what `named` names, and the name the copy gets in the inputs
/// directory (none: the directory itself).
fn in_store(named: &Named, store: &Store) -> Option<(PathBuf, Option<String>)> {
    match named {
        Named::Run { run_id, path } => {
            let top = store.run_dir(run_id);
            let root = match top.record().is_file() {
                true => top.artifacts(),
                false => run_dirs(store).map(|d| d.nested_run_artifacts(run_id)).find(|p| p.is_dir())?,
            };
            let from = root.join(path);
            fs::symlink_metadata(&from).ok()?;
            Some((from, Path::new(path).file_name().map(|l| l.to_string_lossy().into_owned())))
        }
        Named::Model { model_id } => {
            run_dirs(store).map(|d| d.model_artifacts(model_id)).find(|p| p.is_dir()).map(|p| (p, None))
        }
        Named::Registered { .. } | Named::Proxied => None,
    }
}

fn run_dirs(store: &Store) -> impl Iterator<Item = RunDir> {
    let entries = fs::read_dir(store.root().join("runs")).into_iter().flatten().flatten();
    entries.map(|e| RunDir::new(e.path()))
}

/// Copy a file, or a directory and everything in it, refusing links.
fn copy_tree(from: &Path, to: &Path) -> Result<(), ArtifactError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ArtifactError::Io { path, source }
    };
    let meta = fs::symlink_metadata(from).map_err(io(from))?;
    if meta.file_type().is_symlink() {
        return Err(ArtifactError::Link { path: from.to_path_buf() });
    }
    if meta.is_file() {
        fs::copy(from, to).map_err(io(to))?;
        return Ok(());
    }
    fs::create_dir_all(to).map_err(io(to))?;
    for entry in fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        copy_tree(&entry.path(), &to.join(entry.file_name()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(uri: &str) -> Named {
        Named::parse(uri).unwrap()
    }

    #[test]
    fn uris_name_runs_models_and_versions() {
        assert_eq!(parse("runs:/abc/model/x.pkl"), Named::Run { run_id: "abc".into(), path: "model/x.pkl".into() });
        assert_eq!(parse("runs:/abc"), Named::Run { run_id: "abc".into(), path: "".into() });
        assert_eq!(parse("models:/m-12"), Named::Model { model_id: "m-12".into() });
        assert_eq!(parse("models:/reg/3"), Named::Registered { name: "reg".into(), version: "3".into() });
        assert_eq!(
            parse("models:/reg@champion"),
            Named::Registered { name: "reg".into(), version: "@champion".into() }
        );
        assert_eq!(parse("mlflow-artifacts:/0/x"), Named::Proxied);
    }

    #[test]
    fn bad_uris_are_refused() {
        for uri in [
            "runs:/",
            "runs:/abc/../../etc/passwd",
            "runs:/a b/x",
            "models:/",
            "models:/reg",
            "models:/reg@",
            "models:/a/b/c",
        ] {
            assert!(matches!(Named::parse(uri), Err(ArtifactError::BadUri { .. })), "{uri}");
        }
    }

    #[test]
    fn links_in_the_store_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("a");
        fs::create_dir(&from).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.join("p")).unwrap();
        let err = copy_tree(&from, &dir.path().join("b")).unwrap_err();
        assert!(matches!(err, ArtifactError::Link { .. }), "{err}");
    }
}
