//! The server's copy of a run that lockstep is running: created at the start, kept up to
//! date, and ended on every path.

use super::lookup::{check_params, find_or_create, params, resolve_experiment};
use super::readback::read_back;
use super::tags::{environment_tags, run_tags, truncate};
use super::{DEFAULT_EXPERIMENT_ID, ExperimentChoice, TrackingTarget};
use crate::record::logged::Logged;
use crate::record::mlflow::{MAX_TAG_VALUE_LENGTH, MlflowClient, RunInfo, first_contact_timeout};
use crate::record::{RunDir, RunRecord, RunStatus, TrackingError, TrackingRecord};
use crate::support::ui;

/// The server's copy of a run that lockstep is running. From its creation on, every path
/// ends it: [`ServerRun::finish`] normally, [`ServerRun::abandon`] when the run never
/// started, and dropping it (an error or a panic in between) ends it as FAILED.
#[derive(Debug)]
pub struct ServerRun {
    client: MlflowClient,
    info: RunInfo,
    /// The experiment's name, when known (it was chosen by name).
    experiment_name: Option<String>,
    /// The name of an experiment chosen by id, on its way while the run starts.
    experiment_lookup: Option<std::thread::JoinHandle<Option<String>>>,
    /// The parameters, on their way while the run starts: whether they arrived.
    params_sent: Option<std::thread::JoinHandle<bool>>,
    /// Tags the server has: only new or changed ones are sent again.
    sent_tags: Vec<(String, String)>,
    ended: bool,
}

impl ServerRun {
    /// Create the server's run for `record` (a run about to start): the experiment (created by
    /// name when missing) and the run with its tags. What the entry point does not need
    /// follows in the background, so that it does not wait: the parameters (which
    /// [`ServerRun::finish`] sends again if they did not arrive: logging a parameter twice with
    /// one value is allowed), and the name of an experiment chosen by id.
    ///
    /// Nothing has run yet, so a server that does not answer in time
    /// ([`first_contact_timeout`]) stops the run here rather than holding it.
    pub fn start(target: &TrackingTarget, record: &RunRecord) -> Result<ServerRun, TrackingError> {
        check_params(record)?;
        let client = target.client.clone();
        let starting = client.answering_within(first_contact_timeout());
        let (info, experiment_name, experiment_lookup) = match &target.experiment {
            ExperimentChoice::Name(_) => {
                let experiment = resolve_experiment(&starting, &target.experiment)?;
                let info = find_or_create(&starting, &experiment.experiment_id, record, false)?;
                (info, Some(experiment.name), None)
            }
            // The server refuses a run in an experiment that does not exist or is deleted, so
            // the run is created at once and the experiment's name looked up meanwhile.
            ExperimentChoice::Default | ExperimentChoice::Id(_) => {
                let id = match &target.experiment {
                    ExperimentChoice::Id(id) => id.as_str(),
                    _ => DEFAULT_EXPERIMENT_ID,
                };
                let info = find_or_create(&starting, id, record, false).map_err(|e| match e {
                    TrackingError::Rejected { code, .. } if code == "RESOURCE_DOES_NOT_EXIST" => {
                        TrackingError::UnknownExperiment { id: id.to_string(), uri: client.uri().to_string() }
                    }
                    other => other,
                })?;
                let lookup = {
                    let (client, id) = (client.without_retries(), id.to_string());
                    std::thread::spawn(move || client.experiment(&id).ok().flatten().map(|e| e.name))
                };
                (info, None, Some(lookup))
            }
        };
        let params_sent = {
            let (client, run_id, params) = (client.without_retries(), info.run_id.clone(), params(record));
            std::thread::spawn(move || client.log_batch(&run_id, &params, &[]).is_ok())
        };
        if !MlflowClient::serves_artifacts(&info.artifact_uri) {
            ui::warn(&no_artifacts_warning(&info.artifact_uri));
        }
        Ok(ServerRun {
            client,
            info,
            experiment_name,
            experiment_lookup,
            params_sent: Some(params_sent),
            sent_tags: run_tags(record),
            ended: false,
        })
    }

    /// What the local record says about the server's run (not yet synced).
    pub fn record(&self) -> TrackingRecord {
        TrackingRecord {
            uri: self.client.uri().to_string(),
            experiment_id: self.info.experiment_id.clone(),
            run_id: self.info.run_id.clone(),
            synced: false,
        }
    }

    /// The experiment's name, when it is known already (it was chosen by name).
    pub fn experiment_name(&self) -> Option<&str> {
        self.experiment_name.as_deref()
    }

    /// The web page of the run.
    pub fn page(&self) -> String {
        self.client.run_page(&self.info.experiment_id, &self.info.run_id)
    }

    /// The variables that make `mlflow.start_run()` in the entry point resume this run, as
    /// `mlflow run` sets them. The caller's own variables (authentication included) pass
    /// through unchanged. Credentials written in the URI move to MLflow's variables: the
    /// mlflow client prints its tracking URI, and the run's logs must not show them.
    pub fn child_variables(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            ("MLFLOW_RUN_ID".to_string(), self.info.run_id.clone()),
            ("MLFLOW_TRACKING_URI".to_string(), self.client.uri().to_string()),
            ("MLFLOW_EXPERIMENT_ID".to_string(), self.info.experiment_id.clone()),
        ];
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        if let Some((user, password)) = self.client.uri_credentials()
            && !set("MLFLOW_TRACKING_TOKEN")
            && !set("MLFLOW_TRACKING_USERNAME")
        {
            vars.push(("MLFLOW_TRACKING_USERNAME".to_string(), user.to_string()));
            vars.push(("MLFLOW_TRACKING_PASSWORD".to_string(), password.to_string()));
        }
        // A name left in the environment that differs from the run's experiment (overridden by
        // --experiment-name) would make the mlflow client look up another experiment.
        if let Some(name) = &self.experiment_name
            && std::env::var_os("MLFLOW_EXPERIMENT_NAME").is_some()
        {
            vars.push(("MLFLOW_EXPERIMENT_NAME".to_string(), name.clone()));
        }
        vars
    }

    /// The environment is ready: send the tags it adds (environment key, docker image). A
    /// failure is not the run's: what is missing goes with [`ServerRun::finish`].
    pub fn environment_ready(&mut self, record: &RunRecord) {
        let tags = environment_tags(record);
        if !tags.is_empty() && self.client.without_retries().log_batch(&self.info.run_id, &[], &tags).is_ok() {
            self.sent_tags.extend(tags);
        }
    }

    /// End the server's run from the final local record: the tags it does not have yet (and
    /// the parameters if they did not arrive), the artifacts (when the server serves them)
    /// and the status. Fills in the experiment's name; on success sets the record's
    /// `tracking.synced`; on failure the error says what is missing.
    pub fn finish(mut self, record: &mut RunRecord, run_dir: &RunDir) -> Result<(), TrackingError> {
        self.ended = true;
        if let Some(name) = self.experiment_lookup.take().and_then(|lookup| lookup.join().ok().flatten()) {
            record.experiment_name = Some(name);
        }
        let params_sent = self.params_sent.take().is_some_and(|sent| sent.join().unwrap_or(false));
        let params = if params_sent { Vec::new() } else { params(record) };
        let tags: Vec<_> = run_tags(record).into_iter().filter(|t| !self.sent_tags.contains(t)).collect();
        // What the script logged is read back before lockstep's own last writes go out.
        match read_back(&self.client, &self.info.experiment_id, &self.info.run_id) {
            Ok(logged) => record.logged = Some(logged).filter(|l| *l != Logged::default()),
            Err(e) => ui::warn(&format!("what the script logged could not be read back from the server: {e}")),
        }
        push(&self.client, &self.info, record, run_dir, &params, &tags)
    }

    /// End the server's run of a run that never started (interrupted, or the local record
    /// could not be written).
    pub fn abandon(mut self, status: RunStatus, reason: &str) {
        self.ended = true;
        end_quickly(&self.client, &self.info.run_id, status, reason);
    }
}

impl Drop for ServerRun {
    fn drop(&mut self) {
        if !self.ended {
            end_quickly(&self.client, &self.info.run_id, RunStatus::Failed, "lockstep stopped before the run ended");
        }
    }
}

/// Best-effort last words for a run: one attempt each, so that lockstep never hangs on a
/// server that is gone.
fn end_quickly(client: &MlflowClient, run_id: &str, status: RunStatus, reason: &str) {
    let once = client.without_retries();
    let tags = [("lockstep.failure".to_string(), truncate(reason, MAX_TAG_VALUE_LENGTH))];
    if once.log_batch(run_id, &[], &tags).is_ok() {
        let _ = once.update_run(run_id, status.name(), Some(crate::support::clock::now_ms()));
    }
}

/// Send `record` to the server's run `info`: `params` and `tags`, the artifacts and the
/// status, all at once (each is idempotent, and the server serializes its writes). Sets
/// `record.tracking.synced` once all of them arrived.
pub(super) fn push(
    client: &MlflowClient,
    info: &RunInfo,
    record: &mut RunRecord,
    run_dir: &RunDir,
    params: &[(String, String)],
    tags: &[(String, String)],
) -> Result<(), TrackingError> {
    let serves = MlflowClient::serves_artifacts(&info.artifact_uri);
    let mut final_record = record.clone();
    if let Some(t) = &mut final_record.tracking {
        t.synced = true;
    }
    let (logged, uploaded, ended) = std::thread::scope(|scope| {
        let uploaded = scope.spawn(|| match serves {
            true => upload_artifacts(client, &info.artifact_uri, &final_record, run_dir),
            false => Ok(()),
        });
        let logged = scope.spawn(|| client.log_batch(&info.run_id, params, tags));
        let ended = client.update_run(&info.run_id, record.status.name(), record.end_time);
        (
            logged.join().expect("a log thread does not panic"),
            uploaded.join().expect("an upload thread does not panic"),
            ended,
        )
    });
    let status = format!("status {}", record.status.name());
    let mut missing: Vec<&str> = Vec::new();
    let mut cause = None;
    for (result, what) in [(logged, "parameters and tags"), (uploaded, "artifacts"), (ended, status.as_str())] {
        if let Err(e) = result {
            missing.push(what);
            cause.get_or_insert(e);
        }
    }
    match cause {
        None => {
            *record = final_record;
            Ok(())
        }
        Some(cause) => Err(TrackingError::Incomplete {
            run_id: record.run_id.clone(),
            uri: client.uri().to_string(),
            missing: missing.join(", "),
            cause: Box::new(cause),
        }),
    }
}

/// The run's files on the server, under `lockstep/`: the final record, the logs (unless
/// empty) and the dirty patch, uploaded side by side.
fn upload_artifacts(
    client: &MlflowClient,
    artifact_uri: &str,
    record: &RunRecord,
    run_dir: &RunDir,
) -> Result<(), TrackingError> {
    let mut json = serde_json::to_vec_pretty(record).expect("records serialize to JSON");
    json.push(b'\n');
    let files: Vec<_> = [RunDir::STDOUT_LOG, RunDir::STDERR_LOG, RunDir::DIRTY_PATCH]
        .into_iter()
        .map(|name| (format!("lockstep/{name}"), run_dir.path().join(name)))
        // An empty log says nothing, and each upload costs the server a request.
        .filter(|(_, path)| path.metadata().is_ok_and(|m| m.is_file() && m.len() > 0))
        .collect();
    std::thread::scope(|scope| {
        let uploads: Vec<_> = files
            .iter()
            .map(|(artifact, path)| scope.spawn(move || client.upload_file(artifact_uri, artifact, path)))
            .collect();
        let record_upload = client.upload_bytes(artifact_uri, "lockstep/record.json", &json);
        uploads.into_iter().map(|u| u.join().expect("an upload thread does not panic")).chain([record_upload]).collect()
    })
}

pub(super) fn no_artifacts_warning(artifact_uri: &str) -> String {
    format!(
        "the MLflow server does not serve artifacts (artifact location {artifact_uri}): record.json and the logs stay in the local store only (start it with --serve-artifacts to have them uploaded)"
    )
}
