//! The Slurm backend: the run's archive staged once in `staging_dir` (shared with the compute
//! nodes), an sbatch script rendered from `templates/slurm/`, the state from `scontrol show
//! job` while the controller knows the job and from `sacct` after (where accounting exists),
//! the log followed from the job's output file, `scancel` to cancel, and the remote run's
//! files copied back from the staging directory's store. Every tool runs through the one
//! process runner with explicit arguments.

mod config;
mod files;
mod script;
mod state;

use std::path::PathBuf;
use std::time::Duration;

use super::{Backend, BackendConfig, BackendError, BackendKind, JobRef, JobState, RemoteRun};
use crate::record::{RunDir, RunRecord};
use crate::support::process::{Command, OnCancel, ProcessError};

pub use config::SlurmConfig;

/// How long a tool's group has after it exits before it is ended (they leave nothing).
const GRACE: Duration = Duration::from_millis(200);

/// A Slurm cluster, as the config describes it; the tools find the controller through the
/// usual `SLURM_CONF` / `/etc/slurm/slurm.conf`.
pub struct Slurm {
    config: SlurmConfig,
    staging: PathBuf,
}

/// Where one job's files are, fixed at submission and kept in the local record.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct JobPlaces {
    /// The job's output file.
    log: PathBuf,
    /// The remote run's directory in the staging store.
    run_dir: PathBuf,
}

impl Slurm {
    /// The backend for `config`: its keys read, `staging_dir` required and absolute.
    pub fn new(config: &BackendConfig) -> Result<Slurm, BackendError> {
        let typed: SlurmConfig = config.typed("slurm")?;
        let bad = |message: String| BackendError::Config { backend: "slurm", origin: config.origin.clone(), message };
        let staging = match &typed.staging_dir {
            Some(dir) if dir.is_absolute() => dir.clone(),
            Some(dir) => return Err(bad(format!("staging_dir must be an absolute path, not {}", dir.display()))),
            None => {
                return Err(bad("staging_dir is missing: a directory the compute nodes share with this host".into()));
            }
        };
        if let Some(value) = script::bad_value(&typed) {
            return Err(bad(format!("a value holds a line break: {value:?}")));
        }
        if let Some(name) = typed.environment.keys().find(|k| !is_variable_name(k)) {
            return Err(bad(format!("'{name}' is not a variable name")));
        }
        Ok(Slurm { config: typed, staging })
    }

    fn store(&self) -> PathBuf {
        self.staging.join("store")
    }

    fn places(job: &JobRef) -> Result<JobPlaces, BackendError> {
        serde_json::from_value(job.details.clone()).map_err(|e| BackendError::BadRemoteRecord {
            path: PathBuf::from(format!("job {}", job.job_id)),
            message: format!("the record's job details are not a Slurm job's: {e}"),
        })
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A Slurm tool's run: its exit and output, or why it could not run.
struct ToolRun {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Run `program args` to its end, whatever the cancellation flag says: a cancel of the job
/// (and the polls that follow it) must still reach the controller after Ctrl-C.
fn tool(program: &str, args: &[&str]) -> Result<ToolRun, BackendError> {
    let finished = Command::new(program, args).run_with(OnCancel::Ignore, GRACE, None).map_err(|e| match e {
        ProcessError::Spawn(source) => {
            BackendError::MissingTool { program: program.to_string(), message: source.to_string() }
        }
        other => BackendError::Tool { command: describe(program, args), message: other.to_string() },
    })?;
    Ok(ToolRun {
        ok: finished.status.success(),
        stdout: String::from_utf8_lossy(&finished.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&finished.stderr).into_owned(),
    })
}

fn describe(program: &str, args: &[&str]) -> String {
    std::iter::once(program).chain(args.iter().copied()).map(crate::manifest::shell_quote).collect::<Vec<_>>().join(" ")
}

/// The last lines of a tool's stderr, for an error message.
fn said(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join("; ")
}

impl Backend for Slurm {
    fn kind(&self) -> BackendKind {
        BackendKind::Slurm
    }

    fn check(&self) -> Result<(), BackendError> {
        if !self.staging.is_dir() {
            return Err(BackendError::Config {
                backend: "slurm",
                origin: "staging_dir".into(),
                message: format!(
                    "{} is not a directory (it must exist and be shared with the nodes)",
                    self.staging.display()
                ),
            });
        }
        Ok(())
    }

    fn submit(&self, run: &RemoteRun) -> Result<JobRef, BackendError> {
        let archive = files::stage_archive(&run.archive, &self.staging.join("archives"), &run.archive_name)?;
        let job_dir = self.staging.join("jobs").join(&run.run_id);
        std::fs::create_dir_all(&job_dir).map_err(BackendError::io(&job_dir))?;
        let log = job_dir.join("job.log");
        let lockstep = self.config.lockstep.clone().unwrap_or_else(|| run.lockstep.clone());
        let store = self.store();
        let argv = run.argv(&lockstep.to_string_lossy(), &archive.to_string_lossy(), &store.to_string_lossy());
        let text = script::render(&self.config, &script::ScriptParts { run_id: &run.run_id, log: &log, argv: &argv });
        let script_path = job_dir.join("job.sbatch");
        crate::support::fs::write_atomic(&script_path, text.as_bytes()).map_err(BackendError::io(&script_path))?;
        let (chdir, script_arg) = (job_dir.to_string_lossy(), script_path.to_string_lossy());
        let mut args: Vec<&str> = vec!["--parsable", "--chdir", &chdir];
        args.extend(self.config.sbatch_args.iter().map(String::as_str));
        args.push(&script_arg);
        let out = tool("sbatch", &args)?;
        if !out.ok {
            let _ = std::fs::remove_dir_all(&job_dir);
            return Err(BackendError::Refused { backend: "slurm", message: said(&out.stderr) });
        }
        // `--parsable` prints `ID` or `ID;CLUSTER`.
        let job_id = out.stdout.trim().split(';').next().unwrap_or("").to_string();
        if job_id.is_empty() || !job_id.chars().all(|c| c.is_ascii_digit() || c == '_') {
            return Err(BackendError::Tool {
                command: describe("sbatch", &args),
                message: format!("no job id in its output: {:?}", out.stdout.trim()),
            });
        }
        let places = JobPlaces { log, run_dir: store.join("runs").join(&run.run_id) };
        Ok(JobRef { job_id, details: serde_json::to_value(places).expect("paths serialize") })
    }

    fn poll(&self, job: &JobRef) -> Result<JobState, BackendError> {
        let out = tool("scontrol", &["show", "job", "-o", &job.job_id])?;
        if out.ok {
            return Ok(state::from_scontrol(out.stdout.lines().next().unwrap_or("")));
        }
        if !state::unknown_job(&out.stderr) {
            return Ok(JobState::Unreachable { detail: said(&out.stderr) });
        }
        // The controller has forgotten the job: accounting, where it exists, knows its end.
        let acct = tool("sacct", &["-j", &job.job_id, "-X", "-n", "-P", "-o", "State,ExitCode"])?;
        match (acct.ok, state::from_sacct(&acct.stdout)) {
            (true, Some(state)) => Ok(state),
            (true, None) => Ok(JobState::Gone),
            (false, _) if state::no_accounting(&acct.stderr) => Ok(JobState::Gone),
            (false, _) => Ok(JobState::Unreachable { detail: said(&acct.stderr) }),
        }
    }

    fn logs(&self, job: &JobRef, offset: u64) -> Result<Vec<u8>, BackendError> {
        files::read_from(&Slurm::places(job)?.log, offset)
    }

    fn cancel(&self, job: &JobRef) -> Result<(), BackendError> {
        let out = tool("scancel", &[&job.job_id])?;
        if out.ok || state::unknown_job(&out.stderr) {
            return Ok(());
        }
        Err(BackendError::Tool { command: describe("scancel", &[&job.job_id]), message: said(&out.stderr) })
    }

    fn collect(&self, job: &JobRef, into: &RunDir) -> Result<Option<RunRecord>, BackendError> {
        let places = Slurm::places(job)?;
        files::collect_run(&RunDir::new(places.run_dir), into, Some(places.log.as_path()))
    }
}
