//! Backends: where a run runs. `local` is the pipeline itself; the others (Slurm, Ray) submit
//! the same run to a scheduler through the one [`Backend`] trait, and [`lifecycle`] drives any
//! of them the same way: submit, report the job id, stream logs, poll to a terminal state,
//! cancel on Ctrl-C, and collect the remote record.
//!
//! A backend never plans: what reaches it was checked locally (manifest, parameters, source),
//! and the code travels as the deterministic archive of the source, named by its tree hash.
//! The far side runs `lockstep run ARCHIVE ... --store STORE` ([`RemoteRun::argv`]), which
//! builds the environment into the compute side's cache and records the run under the local
//! run's id.

mod config;
mod detached;
mod error;
pub mod lifecycle;
pub mod ray;
pub mod slurm;

use std::path::PathBuf;

use crate::record::{RunDir, RunRecord, RunStatus};

pub use config::BackendConfig;
pub use detached::{cancel, refresh};
pub use error::BackendError;
pub use lifecycle::{Attached, Submitted, drive, submit};

/// The hidden `lockstep run` flag that gives the remote run the local run's id.
pub const RUN_ID_FLAG: &str = "--lockstep-run-id";

/// The backends `--backend` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// This machine: the pipeline itself, no scheduler.
    Local,
    /// A Slurm cluster: `sbatch`, `squeue` / `scontrol`, `sacct`, `scancel`.
    Slurm,
    /// A Ray cluster, through its Jobs REST API.
    Ray,
}

impl BackendKind {
    /// The name `--backend` takes and records keep.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::Slurm => "slurm",
            BackendKind::Ray => "ray",
        }
    }

    /// The backend of a name, if lockstep has it.
    pub fn parse(name: &str) -> Option<BackendKind> {
        [BackendKind::Local, BackendKind::Slurm, BackendKind::Ray].into_iter().find(|k| k.name() == name)
    }
}

/// What the far side runs: `lockstep run` on the archive, with the run's choices as flags.
#[derive(Debug, Clone)]
pub struct RemoteRun {
    /// The local run's id, which the remote record takes.
    pub run_id: String,
    /// The archive on the submit host (written once per tree hash).
    pub archive: PathBuf,
    /// Its file name, `<tree hash>.tar.gz`: the same name wherever it is staged.
    pub archive_name: String,
    /// The entry point.
    pub entry_point: String,
    /// `-P NAME=VALUE`, as given.
    pub params: Vec<String>,
    /// `--env-manager`, by name.
    pub env_manager: Option<String>,
    /// `--run-name`.
    pub run_name: Option<String>,
    /// `--experiment-name`.
    pub experiment_name: Option<String>,
    /// `--experiment-id`.
    pub experiment_id: Option<String>,
    /// `--tracking-uri`: the MLflow server the far side records on.
    pub tracking_uri: Option<String>,
    /// The lockstep binary on the submit host (`lockstep` on the far side defaults to it).
    pub lockstep: PathBuf,
}

impl RemoteRun {
    /// The far side's command line: `LOCKSTEP run ARCHIVE -e .. -P .. --store STORE
    /// --lockstep-run-id ID`, with the paths where the backend put the binary, the archive
    /// and the remote store.
    pub fn argv(&self, lockstep: &str, archive: &str, store: &str) -> Vec<String> {
        let mut argv = vec![lockstep.to_string(), "run".into(), archive.to_string()];
        argv.extend(["-e".to_string(), self.entry_point.clone()]);
        for p in &self.params {
            argv.extend(["-P".to_string(), p.clone()]);
        }
        if let Some(m) = &self.env_manager {
            argv.extend(["--env-manager".to_string(), m.clone()]);
        }
        let flags = [
            ("--run-name", &self.run_name),
            ("--experiment-name", &self.experiment_name),
            ("--experiment-id", &self.experiment_id),
            ("--tracking-uri", &self.tracking_uri),
        ];
        for (flag, value) in flags {
            if let Some(v) = value {
                argv.extend([flag.to_string(), v.clone()]);
            }
        }
        argv.extend(["--store".to_string(), store.to_string(), RUN_ID_FLAG.to_string(), self.run_id.clone()]);
        argv
    }
}

/// Where a job is, as its scheduler says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for resources.
    Pending,
    /// Running, on these nodes or this worker when known.
    Running {
        /// Node names or a worker's address.
        nodes: Option<String>,
    },
    /// Ended, as the scheduler (or its accounting) says.
    Ended {
        /// How.
        end: JobEnd,
        /// Where it ran, when the scheduler still says (a job that ended before the first
        /// poll was never seen running).
        nodes: Option<String>,
    },
    /// The scheduler does not know the job (any more): its own record decides, else LOST.
    Gone,
    /// The scheduler does not answer now (a controller down): polling goes on.
    Unreachable {
        /// What the scheduler's client said.
        detail: String,
    },
}

/// A terminal state from the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobEnd {
    /// FINISHED, FAILED or KILLED.
    pub status: RunStatus,
    /// The job's exit code, when the scheduler knows it.
    pub exit_code: Option<i32>,
}

/// A submitted job: enough to poll, follow, cancel and collect it, from this process or from
/// a later `lockstep runs` / `show` / `cancel` (it is kept in the local record).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobRef {
    /// The scheduler's id of the job.
    pub job_id: String,
    /// Backend-specific facts fixed at submission (say, where the job's output file and the
    /// remote store are), kept so that a later process finds them.
    #[serde(default)]
    pub details: serde_json::Value,
}

/// One way to run jobs on a scheduler. Implementations talk to the scheduler only; the
/// shared [`lifecycle`] decides what the answers mean for the run.
pub trait Backend {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;

    /// Check what can be checked before anything is staged or submitted (a config that names
    /// nothing the scheduler has): bad input never reaches the cluster.
    fn check(&self) -> Result<(), BackendError>;

    /// Stage the archive (once per name) and submit the job that runs `run` there.
    fn submit(&self, run: &RemoteRun) -> Result<JobRef, BackendError>;

    /// Where the job is now.
    fn poll(&self, job: &JobRef) -> Result<JobState, BackendError>;

    /// The job's log (stdout and stderr as the far side printed them) from byte `offset` on;
    /// empty when nothing is new.
    fn logs(&self, job: &JobRef, offset: u64) -> Result<Vec<u8>, BackendError>;

    /// Ask the scheduler to stop the job (idempotent: a job already gone is no error).
    fn cancel(&self, job: &JobRef) -> Result<(), BackendError>;

    /// The remote run's record, and its files copied into the local run directory `into`
    /// (`stdout.log`, `stderr.log`, `outputs/`, what the script logged); `None` when the
    /// far side wrote no record (the job never started lockstep).
    fn collect(&self, job: &JobRef, into: &RunDir) -> Result<Option<RunRecord>, BackendError>;
}

/// The backend of a kind with its config, for a run that does not run here.
pub fn open(kind: BackendKind, config: &BackendConfig) -> Result<Box<dyn Backend>, BackendError> {
    match kind {
        BackendKind::Local => Err(BackendError::NotRemote),
        BackendKind::Slurm => Ok(Box::new(slurm::Slurm::new(config)?)),
        BackendKind::Ray => Ok(Box::new(ray::Ray::new(config)?)),
    }
}

/// The archive's file name for a tree hash: one name per tree, so that it is staged once.
pub fn archive_name(tree_sha256: &str) -> String {
    format!("{tree_sha256}.tar.gz")
}
