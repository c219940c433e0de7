//! Tracking on an MLflow server: where runs go, the server's copy of a `lockstep run` (with the
//! tags `mlflow run` writes), and `lockstep sync`.
//!
//! The local record is always written first and stays the reference: the server's run is a
//! copy that lockstep keeps up to date while it can. A server lost during a run costs the copy
//! its last updates, never the run; `tracking.synced` in the record says whether the copy is
//! complete, and `lockstep sync` completes it. Every server run carries the tag
//! `lockstep.run_id`, so that a sync finds the run it made before instead of making another.

mod logged_sync;
mod lookup;
mod readback;
mod server_run;
mod sweep_run;
mod sync;
mod tags;

pub use server_run::ServerRun;
pub use sweep_run::SweepServerRun;
pub use sync::sync;
pub use tags::run_tags;

use super::TrackingError;
use super::mlflow::MlflowClient;

/// The tag that ties a server run to its local record.
pub const RUN_ID_TAG: &str = "lockstep.run_id";

/// MLflow's default experiment.
const DEFAULT_EXPERIMENT_ID: &str = "0";

/// Which experiment a run goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExperimentChoice {
    /// The server's default experiment (id 0).
    Default,
    /// The experiment of this name, created when missing.
    Name(String),
    /// The experiment of this id, which must exist.
    Id(String),
}

/// A tracking server and the experiment to record under.
#[derive(Debug, Clone)]
pub struct TrackingTarget {
    client: MlflowClient,
    /// The experiment.
    pub experiment: ExperimentChoice,
}

impl TrackingTarget {
    /// The target named by a tracking URI (`--tracking-uri` or `MLFLOW_TRACKING_URI`) and an
    /// experiment name or id; `None` without a URI. Checks everything that needs no network:
    /// the URI's kind, the experiment flags, the TLS settings.
    pub fn resolve(
        uri: Option<&str>,
        experiment_name: Option<&str>,
        experiment_id: Option<&str>,
    ) -> Result<Option<TrackingTarget>, TrackingError> {
        let nonempty = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        let experiment = match (nonempty(experiment_name), nonempty(experiment_id)) {
            (Some(name), Some(id)) => return Err(TrackingError::TwoExperiments { name, id }),
            (Some(name), None) => ExperimentChoice::Name(name),
            (None, Some(id)) => ExperimentChoice::Id(id),
            (None, None) => ExperimentChoice::Default,
        };
        let Some(uri) = nonempty(uri) else { return Ok(None) };
        check_scheme(&uri)?;
        Ok(Some(TrackingTarget { client: MlflowClient::new(&uri)?, experiment }))
    }

    /// The server's URI without credentials.
    pub fn uri(&self) -> &str {
        self.client.uri()
    }

    /// The client of the server.
    pub(crate) fn client(&self) -> &MlflowClient {
        &self.client
    }
}

/// Only MLflow's REST API is spoken: a database or a directory must be served by
/// `mlflow server` first.
fn check_scheme(uri: &str) -> Result<(), TrackingError> {
    let lower = uri.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(());
    }
    if lower == "databricks" || lower.starts_with("databricks:") || lower.starts_with("databricks-uc") {
        return Err(TrackingError::Databricks { uri: uri.to_string() });
    }
    Err(TrackingError::UnsupportedUri { uri: crate::source::git::strip_credentials(uri) })
}

/// A finished record with a git source in a subdirectory, for the tests of the submodules.
#[cfg(test)]
fn test_record() -> super::RunRecord {
    use crate::source::SourceInfo;

    let mut r = crate::record::sample_record(&"ab".repeat(16), 1);
    r.run_name = Some("first".into());
    r.status = super::RunStatus::Finished;
    r.exit_code = Some(0);
    r.end_time = Some(2);
    r.parameters = [("alpha".to_string(), "0.5 1".to_string())].into();
    r.source = SourceInfo {
        uri: "proj".into(),
        path: Some("/home/u/repo/proj".into()),
        commit: Some("c".repeat(40)),
        branch: Some("main".into()),
        repo_url: Some("https://git.example.com/team/repo.git".into()),
        subdirectory: Some("proj".into()),
        dirty: true,
        patch_sha256: Some("1".repeat(64)),
        ..r.source
    };
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_uris_other_than_http_are_refused_with_a_hint() {
        for uri in ["sqlite:///mlflow.db", "file:///tmp/mlruns", "./mlruns", "postgresql://u:pw@db/mlflow"] {
            let err = TrackingTarget::resolve(Some(uri), None, None).unwrap_err();
            assert!(matches!(err, TrackingError::UnsupportedUri { .. }), "{uri}: {err}");
            assert!(!err.to_string().contains("pw@"), "{err}");
            assert!(err.hint().unwrap().contains("mlflow server --backend-store-uri"), "{uri}");
        }
        let err = TrackingTarget::resolve(Some("databricks"), None, None).unwrap_err();
        assert!(matches!(err, TrackingError::Databricks { .. }));
        assert!(TrackingTarget::resolve(None, Some("e"), None).unwrap().is_none());
        assert!(TrackingTarget::resolve(Some(""), None, None).unwrap().is_none());
        let err = TrackingTarget::resolve(Some("http://h"), Some("e"), Some("3")).unwrap_err();
        assert!(matches!(err, TrackingError::TwoExperiments { .. }));
        let t = TrackingTarget::resolve(Some("http://u:secret@h:5000/"), None, Some("3")).unwrap().unwrap();
        assert_eq!(t.uri(), "http://h:5000");
        assert_eq!(t.experiment, ExperimentChoice::Id("3".into()));
    }
}
