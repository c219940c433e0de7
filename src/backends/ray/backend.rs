//! The Ray backend behind the one [`Backend`] trait: the package staged through the Jobs API,
//! the job submitted with the config's resources, runtime environment and labels, its state
//! polled, its log read (Ray's own lines left out), stopped on cancel, and the remote record
//! read back from the end of the log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::client::JobsClient;
use super::config::RayConfig;
use super::entrypoint::{REMOTE_STORE, entrypoint, split_log};
use super::error::RayError;
use super::package::{BINARY_NAME, JobPackage};
use super::wire::{JobInfo, JobStatus};
use crate::backends::{Backend, BackendConfig, BackendError, BackendKind, JobEnd, JobRef, JobState, RemoteRun};
use crate::record::{RunDir, RunRecord, RunStatus};
use crate::support::fs::write_atomic;
use crate::support::ids::random_hex;

/// A Ray cluster, as the config names it.
pub struct Ray {
    config: RayConfig,
    client: JobsClient,
}

/// What a later process needs to find one job's log and record, kept in the local record.
#[derive(Debug, Serialize, Deserialize)]
struct JobFacts {
    /// The Jobs API's address the job was submitted to.
    address: String,
    /// The job's entrypoint, which Ray prints in the log before the run's output.
    entrypoint: String,
    /// The nonce of the markers around the remote record in the log.
    nonce: String,
    /// The package the job's working directory came from.
    package: String,
}

impl Ray {
    /// The backend for `config`: its keys read and checked, the address resolved.
    pub fn new(config: &BackendConfig) -> Result<Ray, BackendError> {
        let typed: RayConfig = config.typed("ray")?;
        typed.check()?;
        let client = JobsClient::new(&typed.address()?)?;
        Ok(Ray { config: typed, client })
    }

    /// The facts of a job and a client of the cluster it was submitted to, which a later
    /// refresh reaches even when `RAY_ADDRESS` has changed since.
    fn job_of(job: &JobRef) -> Result<(JobFacts, JobsClient), BackendError> {
        let facts: JobFacts =
            serde_json::from_value(job.details.clone()).map_err(|e| BackendError::BadRemoteRecord {
                path: format!("job {}", job.job_id).into(),
                message: format!("the record's job details are not a Ray job's: {e}"),
            })?;
        let client = JobsClient::new(&facts.address)?;
        Ok((facts, client))
    }
}

impl Backend for Ray {
    fn kind(&self) -> BackendKind {
        BackendKind::Ray
    }

    fn check(&self) -> Result<(), BackendError> {
        self.client.ray_version()?;
        Ok(())
    }

    fn submit(&self, run: &RemoteRun) -> Result<JobRef, BackendError> {
        let binary = self.config.lockstep.as_ref().unwrap_or(&run.lockstep);
        let package = JobPackage::new(binary, &run.archive, &run.archive_name)?;
        package.stage(&self.client)?;
        // The store's value is replaced by the worker's own (`REMOTE_STORE`).
        let argv = run.argv(&format!("./{BINARY_NAME}"), &format!("./{}", run.archive_name), REMOTE_STORE);
        let nonce = random_hex(8);
        let command = entrypoint(&argv, &run.run_id, &nonce);
        let labels = BTreeMap::from([
            ("lockstep_run_id".to_string(), run.run_id.clone()),
            ("lockstep_archive".to_string(), run.archive_name.clone()),
        ]);
        let request = self.config.job(command.clone(), format!("lockstep-{}", run.run_id), &package.uri(), labels);
        let job_id = self.client.submit(&request)?;
        let facts =
            JobFacts { address: self.client.address().to_string(), entrypoint: command, nonce, package: package.uri() };
        Ok(JobRef { job_id, details: serde_json::to_value(facts).expect("job facts serialize") })
    }

    fn poll(&self, job: &JobRef) -> Result<JobState, BackendError> {
        let (_, client) = Ray::job_of(job)?;
        match client.job(&job.job_id) {
            Ok(Some(info)) => Ok(state_of(&info)),
            Ok(None) => Ok(JobState::Gone),
            Err(RayError::Unreachable { message, .. }) => Ok(JobState::Unreachable { detail: message }),
            Err(e) => Err(e.into()),
        }
    }

    fn logs(&self, job: &JobRef, offset: u64) -> Result<Vec<u8>, BackendError> {
        let (facts, client) = Ray::job_of(job)?;
        let log = client.logs(&job.job_id)?;
        let output = split_log(&log, &job.job_id, &facts.entrypoint, &facts.nonce, false).output.as_bytes();
        Ok(output.get(offset as usize..).unwrap_or_default().to_vec())
    }

    fn cancel(&self, job: &JobRef) -> Result<(), BackendError> {
        let (_, client) = Ray::job_of(job)?;
        match client.stop(&job.job_id) {
            Ok(_) | Err(RayError::NoSuchJob { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn collect(&self, job: &JobRef, into: &RunDir) -> Result<Option<RunRecord>, BackendError> {
        let (facts, client) = Ray::job_of(job)?;
        let log = match client.logs(&job.job_id) {
            Ok(log) => log,
            Err(RayError::NoSuchJob { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let parts = split_log(&log, &job.job_id, &facts.entrypoint, &facts.nonce, true);
        // Ray keeps one log of stdout and stderr together: it is the run's stdout.
        let stdout = into.stdout_log();
        write_atomic(&stdout, parts.output.as_bytes()).map_err(BackendError::io(&stdout))?;
        let Some(text) = parts.record else { return Ok(None) };
        let record = serde_json::from_str(text).map_err(|e| BackendError::BadRemoteRecord {
            path: format!("the log of Ray job {}", job.job_id).into(),
            message: e.to_string(),
        })?;
        Ok(Some(record))
    }
}

/// A Ray job's state as the lifecycle reads states.
fn state_of(info: &JobInfo) -> JobState {
    let end = |status, exit_code| JobState::Ended { end: JobEnd { status, exit_code }, nodes: None };
    match info.status {
        JobStatus::Pending => JobState::Pending,
        JobStatus::Running => JobState::Running { nodes: info.worker() },
        JobStatus::Succeeded => end(RunStatus::Finished, Some(0)),
        JobStatus::Failed => end(RunStatus::Failed, info.driver_exit_code),
        JobStatus::Stopped => end(RunStatus::Killed, info.driver_exit_code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(status: &str, code: Option<i32>) -> JobInfo {
        serde_json::from_value(serde_json::json!({
            "status": status, "driver_exit_code": code, "driver_agent_http_address": "http://10.0.0.7:52365"
        }))
        .unwrap()
    }

    #[test]
    fn ray_states_are_the_lifecycles() {
        assert_eq!(state_of(&info("PENDING", None)), JobState::Pending);
        assert_eq!(state_of(&info("RUNNING", None)), JobState::Running { nodes: Some("10.0.0.7".into()) });
        let ended = |status, exit_code| JobState::Ended { end: JobEnd { status, exit_code }, nodes: None };
        assert_eq!(state_of(&info("SUCCEEDED", Some(0))), ended(RunStatus::Finished, Some(0)));
        assert_eq!(state_of(&info("FAILED", Some(3))), ended(RunStatus::Failed, Some(3)));
        assert_eq!(state_of(&info("FAILED", None)), ended(RunStatus::Failed, None), "a job that never started");
        assert_eq!(state_of(&info("STOPPED", None)), ended(RunStatus::Killed, None));
    }
}
