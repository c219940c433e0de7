//! `lockstep sync`'s library half: a recorded run sent to a tracking server, or completed
//! there after a server was lost.

use super::logged_sync::push_logged;
use super::lookup::{check_params, find_or_create, params, resolve_experiment};
use super::server_run::{no_artifacts_warning, push};
use super::tags::run_tags;
use super::{ExperimentChoice, TrackingTarget};
use crate::record::mlflow::MlflowClient;
use crate::record::{ActiveRun, RecordError, RunRecord, TrackingError, TrackingRecord};
use crate::support::ui;

/// Send a local run to a tracking server, or complete what a lost server missed (the
/// library half of `lockstep sync`). Idempotent: the server's run is the one recorded, else
/// the one tagged with the local run id, else a new one; parameters, tags, artifacts and
/// status are set again, and so is what the script logged (see `logged_sync`). `active` holds the run's lock; `record` is updated in place and in
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
    // What the script logged goes first: `push` marks the record synced once it is sent.
    if let Some(logged) = record.logged.clone() {
        push_logged(client, &info, &logged, active.dir().path()).map_err(|e| match e {
            RecordError::Tracking(e) => RecordError::Tracking(unreached(e)),
            other => other,
        })?;
    }
    let pushed = push(client, &info, record, active.dir(), &all_params, &all_tags);
    active.update(record)?;
    pushed?;
    Ok(client.run_page(&info.experiment_id, &info.run_id))
}
