//! A sweep's parent run on an MLflow server, as MLflow's nested runs are: created when the
//! sweep starts, each trial's server run tagged as its child (`mlflow.parentRunId`) when the
//! trial ends, and ended with the sweep's state.

use super::TrackingTarget;
use super::lookup::resolve_experiment;
use super::tags::user_name;
use crate::record::TrackingError;
use crate::record::mlflow::{MlflowClient, NewRun};

/// The tag that ties a server run to the sweep it stands for.
pub const SWEEP_ID_TAG: &str = "lockstep.sweep_id";
/// MLflow's tag of a nested run's parent.
const PARENT_TAG: &str = "mlflow.parentRunId";

/// The server's run of a sweep.
#[derive(Debug)]
pub struct SweepServerRun {
    client: MlflowClient,
    run_id: String,
}

impl SweepServerRun {
    /// Create the parent run, in the experiment the trials go to.
    pub fn start(
        target: &TrackingTarget,
        sweep_id: &str,
        run_name: &str,
        start_time: u64,
    ) -> Result<SweepServerRun, TrackingError> {
        let experiment = resolve_experiment(&target.client, &target.experiment)?;
        let user = user_name();
        let tags = [(SWEEP_ID_TAG.to_string(), sweep_id.to_string()), ("mlflow.user".to_string(), user.clone())];
        let new = NewRun {
            experiment_id: &experiment.experiment_id,
            user: &user,
            run_name: Some(run_name),
            start_time,
            tags: &tags,
        };
        let info = target.client.create_run_once(&new)?;
        Ok(SweepServerRun { client: target.client.clone(), run_id: info.run_id })
    }

    /// The server's id of the parent run.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Make a trial's server run a child of this one.
    pub fn adopt(&self, child_run_id: &str) -> Result<(), TrackingError> {
        self.client.log_batch(child_run_id, &[], &[(PARENT_TAG.to_string(), self.run_id.clone())])
    }

    /// End the parent run: `FINISHED`, `FAILED` or `KILLED`.
    pub fn finish(&self, status: &str, end_time: u64) -> Result<(), TrackingError> {
        self.client.update_run(&self.run_id, status, Some(end_time))
    }
}
