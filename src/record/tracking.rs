//! Tracking on an MLflow server: where runs go, the server's copy of a `lockstep run` (with the
//! tags `mlflow run` writes), and `lockstep sync`.
//!
//! The local record is always written first and stays the reference: the server's run is a
//! copy that lockstep keeps up to date while it can. A server lost during a run costs the copy
//! its last updates, never the run; `tracking.synced` in the record says whether the copy is
//! complete, and `lockstep sync` completes it. Every server run carries the tag
//! `lockstep.run_id`, so that a sync finds the run it made before instead of making another.

use std::path::Path;

use super::mlflow::{
    Experiment, MAX_PARAM_VALUE_LENGTH, MAX_TAG_VALUE_LENGTH, MlflowClient, NewRun, RunInfo, first_contact_timeout,
};
use super::{ActiveRun, RECORD_SCHEMA, RecordError, RunDir, RunRecord, RunStatus, TrackingError, TrackingRecord};
use crate::source::{SourceInfo, SourceKind, SourceUri};
use crate::support::ui;

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
fn push(
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
            run_id: record.run_id.to_string(),
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

fn no_artifacts_warning(artifact_uri: &str) -> String {
    format!(
        "the MLflow server does not serve artifacts (artifact location {artifact_uri}): record.json and the logs stay in the local store only (start it with --serve-artifacts to have them uploaded)"
    )
}

/// The experiment a choice names, created when a name is missing.
fn resolve_experiment(client: &MlflowClient, choice: &ExperimentChoice) -> Result<Experiment, TrackingError> {
    let unknown = |id: &str| TrackingError::UnknownExperiment { id: id.to_string(), uri: client.uri().to_string() };
    let experiment = match choice {
        ExperimentChoice::Default => {
            client.experiment(DEFAULT_EXPERIMENT_ID)?.ok_or_else(|| unknown(DEFAULT_EXPERIMENT_ID))?
        }
        ExperimentChoice::Id(id) => client.experiment(id)?.ok_or_else(|| unknown(id))?,
        ExperimentChoice::Name(name) => match client.experiment_by_name(name)? {
            Some(e) => e,
            None => match client.create_experiment(name)? {
                Some(id) => {
                    ui::note(&format!("created experiment '{name}' ({id}) on {}", client.uri()));
                    Experiment { experiment_id: id, name: name.clone(), lifecycle_stage: "active".into() }
                }
                // Another client created it meanwhile.
                None => client.experiment_by_name(name)?.ok_or_else(|| unknown(name))?,
            },
        },
    };
    if experiment.lifecycle_stage == "deleted" {
        return Err(TrackingError::DeletedExperiment { experiment: experiment.name, uri: client.uri().to_string() });
    }
    Ok(experiment)
}

/// The server's run of a local run: the one tagged with its id, or a new one.
///
/// `runs/create` is not idempotent, so it is never retried blindly: after a failed attempt,
/// the run is looked for first, in case the server made it and only the answer was lost.
fn find_or_create(
    client: &MlflowClient,
    experiment_id: &str,
    record: &RunRecord,
    search_first: bool,
) -> Result<RunInfo, TrackingError> {
    let once = client.without_retries();
    let user = user_name();
    let tags = run_tags(record);
    let new = NewRun {
        experiment_id,
        user: &user,
        run_name: record.run_name.as_deref(),
        start_time: record.start_time,
        tags: &tags,
    };
    let mut failures = 0;
    loop {
        let attempt = (|| {
            if (search_first || failures > 0)
                && let Some(run) = once.runs_tagged(experiment_id, RUN_ID_TAG, &record.run_id)?.into_iter().next()
            {
                return Ok(run);
            }
            once.create_run_once(&new)
        })();
        match attempt {
            Err(e) if e.is_transient() => {
                failures += 1;
                match client.retry_wait(failures) {
                    Some(wait) => std::thread::sleep(wait),
                    None => return Err(e),
                }
            }
            other => return other,
        }
    }
}

/// Parameters longer than MLflow accepts are refused before anything is created.
fn check_params(record: &RunRecord) -> Result<(), TrackingError> {
    for (name, value) in &record.parameters {
        let length = value.chars().count();
        if length > MAX_PARAM_VALUE_LENGTH {
            return Err(TrackingError::ParamTooLong { name: name.clone(), length });
        }
    }
    Ok(())
}

/// Parameters with their raw values (MLflow logs shell-quoted ones, mlflow#6811).
fn params(record: &RunRecord) -> Vec<(String, String)> {
    record.parameters.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Every tag lockstep sets on a run, from what the record knows so far: those `mlflow run`
/// writes, and `lockstep.*` ones.
pub fn run_tags(record: &RunRecord) -> Vec<(String, String)> {
    let mut tags: Vec<(&str, String)> = vec![
        ("mlflow.user", user_name()),
        ("mlflow.source.type", "PROJECT".into()),
        ("mlflow.source.name", source_name(&record.source)),
        ("mlflow.project.entryPoint", record.entry_point.clone()),
        ("mlflow.project.backend", "local".into()),
        ("mlflow.project.env", record.environment.manager().name().into()),
    ];
    let s = &record.source;
    if let Some(commit) = &s.commit {
        tags.push(("mlflow.source.git.commit", commit.clone()));
    }
    if let Some(url) = &s.repo_url {
        tags.push(("mlflow.source.git.repoURL", url.clone()));
    }
    if let Some(branch) = &s.branch {
        tags.push(("mlflow.source.git.branch", branch.clone()));
    }
    if let Some(name) = &record.run_name {
        tags.push(("mlflow.runName", name.clone()));
    }
    tags.push((RUN_ID_TAG, record.run_id.to_string()));
    tags.push(("lockstep.record.schema", RECORD_SCHEMA.into()));
    tags.push(("lockstep.version", crate::VERSION.into()));
    tags.push(("lockstep.tree_sha256", s.tree_sha256.to_string()));
    tags.push(("lockstep.dirty", s.dirty.to_string()));
    if let Some(patch) = &s.patch_sha256 {
        tags.push(("lockstep.patch_sha256", patch.clone()));
    }
    // FINISHED says 0 already, and a tag less is a write less for the server.
    if let Some(code) = record.exit_code.filter(|c| *c != 0) {
        tags.push(("lockstep.exit_code", code.to_string()));
    }
    if let Some(failure) = &record.failure {
        tags.push(("lockstep.failure", failure.clone()));
    }
    let mut tags: Vec<(String, String)> =
        tags.into_iter().map(|(k, v)| (k.to_string(), truncate(&v, MAX_TAG_VALUE_LENGTH))).collect();
    tags.extend(environment_tags(record));
    tags
}

/// The tags that come from the prepared environment: its key, and a docker image's name and id.
fn environment_tags(record: &RunRecord) -> Vec<(String, String)> {
    let env = &record.environment;
    let mut tags = Vec::new();
    if let Some(docker) = env.docker() {
        tags.push(("mlflow.docker.image.uri".to_string(), docker.image_uri.clone()));
        tags.push(("mlflow.docker.image.id".to_string(), docker.image_id.clone()));
    }
    if let Some(key) = env.key() {
        tags.push(("lockstep.env.key".to_string(), key.to_string()));
    }
    tags.into_iter().map(|(k, v)| (k, truncate(&v, MAX_TAG_VALUE_LENGTH))).collect()
}

/// `mlflow.source.name` as `mlflow run` writes it: a git URL as given; for a local directory
/// in a git checkout `file://<repository>#<subdirectory>`; otherwise the absolute directory.
fn source_name(s: &SourceInfo) -> String {
    let with_sub = |base: String| match &s.subdirectory {
        Some(sub) => format!("{base}#{sub}"),
        None => base,
    };
    match s.kind {
        SourceKind::Local => match (&s.path, &s.commit) {
            (Some(path), Some(_)) => {
                let mut root = path.clone();
                for _ in Path::new(s.subdirectory.as_deref().unwrap_or("")).components() {
                    root.pop();
                }
                with_sub(format!("file://{}", root.display()))
            }
            (Some(path), None) => path.display().to_string(),
            (None, _) => s.uri.clone(),
        },
        SourceKind::Git => match SourceUri::parse(&s.uri) {
            Ok(SourceUri::Git { .. }) => s.uri.clone(),
            // A local repository run at a version: name the repository.
            _ => match &s.repo_url {
                Some(url) if url.starts_with('/') => with_sub(format!("file://{url}")),
                Some(url) => with_sub(url.clone()),
                None => s.uri.clone(),
            },
        },
        // An archive as given: a URL, or a path made absolute by the caller.
        SourceKind::Archive => s.uri.clone(),
    }
}

/// The user, as Python's `getpass.getuser()` (which `mlflow run` uses) finds it.
fn user_name() -> String {
    for var in ["LOGNAME", "USER", "LNAME", "USERNAME"] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return v.to_string_lossy().into_owned();
        }
    }
    passwd_name().unwrap_or_else(|| "unknown".into())
}

fn passwd_name() -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: getpwuid_r writes into `pwd` and `buf`, both alive and sized as passed; the
    // name pointer is read only when the call succeeded and points into `buf`.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(libc::getuid(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        Some(std::ffi::CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned())
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// Send a local run to a tracking server, or complete what a lost server missed (the
/// library half of `lockstep sync`). Idempotent: the server's run is the one recorded, else
/// the one tagged with the local run id, else a new one; parameters, tags, artifacts and
/// status are set again. `active` holds the run's lock; `record` is updated in place and in
/// the store. Returns the run's web page.
pub fn sync(active: &ActiveRun, record: &mut RunRecord, target: &TrackingTarget) -> Result<String, RecordError> {
    let recorded = record.tracking.clone();
    let same_server = recorded.as_ref().filter(|r| r.uri == target.uri());
    let choice = match (&target.experiment, same_server, &record.experiment_name) {
        (ExperimentChoice::Default, Some(r), _) => ExperimentChoice::Id(r.experiment_id.clone()),
        (ExperimentChoice::Default, None, Some(name)) => ExperimentChoice::Name(name.clone()),
        (choice, _, _) => choice.clone(),
    };
    check_params(record)?;
    let client = &target.client;
    // A server that is down or failing gets sync's own advice, not that of a run's start.
    let unreached = |e: TrackingError| match e.is_transient() {
        true => TrackingError::SyncFailed { run_id: record.run_id.to_string(), cause: Box::new(e) },
        false => e,
    };
    let (experiment, info) = (|| {
        let experiment = resolve_experiment(client, &choice)?;
        let recorded_run = match same_server {
            Some(r) => client.run(&r.run_id)?.filter(|run| run.lifecycle_stage != "deleted"),
            None => None,
        };
        let info = match recorded_run {
            Some(run) => run,
            None => find_or_create(client, &experiment.experiment_id, record, true)?,
        };
        Ok((experiment, info))
    })()
    .map_err(unreached)?;
    record.tracking = Some(TrackingRecord {
        uri: client.uri().to_string(),
        experiment_id: info.experiment_id.clone(),
        run_id: info.run_id.clone(),
        synced: false,
    });
    if record.experiment_name.is_none() || info.experiment_id == experiment.experiment_id {
        record.experiment_name = Some(experiment.name.clone());
    }
    // The pointer to the server's run is kept before anything else is sent, so that a sync
    // that fails half-way is resumed on the same run.
    active.update(record)?;
    if !MlflowClient::serves_artifacts(&info.artifact_uri) {
        ui::warn(&no_artifacts_warning(&info.artifact_uri));
    }
    let (all_params, all_tags) = (params(record), run_tags(record));
    let pushed = push(client, &info, record, active.dir(), &all_params, &all_tags);
    active.update(record)?;
    pushed?;
    Ok(client.run_page(&info.experiment_id, &info.run_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RunRecord {
        let mut r = crate::record::sample_record(&"ab".repeat(16), 1);
        r.run_name = Some("first".into());
        r.status = RunStatus::Finished;
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

    fn tag<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
        tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn tags_are_those_mlflow_run_writes_plus_lockstep_ones() {
        let mut r = record();
        let tags = run_tags(&r);
        assert_eq!(tag(&tags, "mlflow.source.type"), Some("PROJECT"));
        assert_eq!(tag(&tags, "mlflow.source.name"), Some("file:///home/u/repo#proj"));
        assert_eq!(tag(&tags, "mlflow.source.git.commit"), Some("c".repeat(40).as_str()));
        assert_eq!(tag(&tags, "mlflow.source.git.repoURL"), Some("https://git.example.com/team/repo.git"));
        assert_eq!(tag(&tags, "mlflow.source.git.branch"), Some("main"));
        assert_eq!(tag(&tags, "mlflow.project.entryPoint"), Some("main"));
        assert_eq!(tag(&tags, "mlflow.project.backend"), Some("local"));
        assert_eq!(tag(&tags, "mlflow.project.env"), Some("local"));
        assert_eq!(tag(&tags, "mlflow.runName"), Some("first"));
        assert_eq!(tag(&tags, "lockstep.dirty"), Some("true"));
        assert_eq!(tag(&tags, "lockstep.exit_code"), None, "only a failure's exit code is a tag");
        assert_eq!(tag(&tags, RUN_ID_TAG), Some(r.run_id.as_str()));
        assert_eq!(tag(&tags, "mlflow.docker.image.uri"), None);

        // A Docker environment as the Docker manager records it.
        r.environment = serde_json::from_value(serde_json::json!({
            "manager": "docker", "mode": "build", "base_image": "busybox:1", "base_image_id": "sha256:b",
            "image_uri": "lockstep/p:abc", "image_id": "sha256:123",
        }))
        .unwrap();
        r.failure = Some("x".repeat(9000));
        r.exit_code = Some(2);
        let tags = run_tags(&r);
        assert_eq!(tag(&tags, "mlflow.project.env"), Some("docker"));
        assert_eq!(tag(&tags, "mlflow.docker.image.uri"), Some("lockstep/p:abc"));
        assert_eq!(tag(&tags, "mlflow.docker.image.id"), Some("sha256:123"));
        assert_eq!(tag(&tags, "lockstep.env.key"), None, "a Docker environment has no cache key");
        assert_eq!(tag(&tags, "lockstep.failure").unwrap().len(), MAX_TAG_VALUE_LENGTH);
        assert_eq!(tag(&tags, "lockstep.exit_code"), Some("2"));
    }

    #[test]
    fn source_names_follow_mlflow() {
        let mut s = record().source;
        s.subdirectory = None;
        s.path = Some("/home/u/repo".into());
        assert_eq!(source_name(&s), "file:///home/u/repo");
        s.commit = None;
        assert_eq!(source_name(&s), "/home/u/repo");
        s.kind = SourceKind::Git;
        s.uri = "https://git.example.com/team/repo.git#proj".into();
        assert_eq!(source_name(&s), "https://git.example.com/team/repo.git#proj");
    }

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

    #[test]
    fn a_failed_create_is_followed_by_a_search_not_a_second_run() {
        use crate::record::mlflow::testing::{fake_server, quick_client};
        let found = r#"{"runs": [{"info": {"run_id": "r1", "experiment_id": "0"}}]}"#;
        let (uri, seen) = fake_server(vec![(503, "{}"), (200, found)]);
        let run = find_or_create(&quick_client(&uri, 3), "0", &record(), false).unwrap();
        assert_eq!(run.run_id, "r1", "the run the lost answer made");
        let requests: Vec<String> = seen.try_iter().collect();
        assert!(requests[0].starts_with("POST /api/2.0/mlflow/runs/create "), "{}", requests[0]);
        assert!(requests[1].starts_with("POST /api/2.0/mlflow/runs/search "), "{}", requests[1]);
        assert_eq!(requests.len(), 2);

        let created = r#"{"run": {"info": {"run_id": "r2", "experiment_id": "0"}}}"#;
        let (uri, seen) = fake_server(vec![(200, "{}"), (200, created)]);
        let run = find_or_create(&quick_client(&uri, 3), "0", &record(), true).unwrap();
        assert_eq!(run.run_id, "r2", "nothing tagged with the local id: a new run");
        assert_eq!(seen.try_iter().count(), 2);
    }

    #[test]
    fn long_parameters_are_refused_before_anything_is_sent() {
        let mut r = record();
        assert!(check_params(&r).is_ok());
        r.parameters.insert("big".into(), "é".repeat(MAX_PARAM_VALUE_LENGTH + 1));
        assert!(matches!(check_params(&r), Err(TrackingError::ParamTooLong { .. })));
    }
}
