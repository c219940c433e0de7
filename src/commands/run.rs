//! `lockstep run`: plan, optionally reuse, prepare and execute one run.

use crate::support::ids::{RunId, random_hex};
use std::path::PathBuf;

use crate::backends::{self, Backend, BackendConfig, BackendError, BackendKind};
use crate::commands::CommandError as Error;
use crate::env::{DockerFlags, EnvManager};
use crate::exec::Echo;
use crate::manifest::ParamArgs;
use crate::pipeline::{self, EnvChoice, Execution, RemoteChoice, RunOutcome, RunSpec, Session};
use crate::record::{self, ArtifactSources, KeepOutputs, TrackingTarget};
use crate::source::{self, SourceRequest};
use crate::support::ui;

/// What to run and how.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// A local path or git URL, with an optional `#subdirectory`.
    pub uri: String,
    /// The entry point (default `main`).
    pub entry_point: String,
    /// A branch, tag or commit.
    pub version: Option<String>,
    /// `-P NAME=VALUE` arguments, unparsed.
    pub params: Vec<String>,
    /// `--env-manager`.
    pub env_manager: Option<EnvManager>,
    /// `--run-name`.
    pub run_name: Option<String>,
    /// `--experiment-name` (or `MLFLOW_EXPERIMENT_NAME`).
    pub experiment_name: Option<String>,
    /// `--experiment-id` (or `MLFLOW_EXPERIMENT_ID`).
    pub experiment_id: Option<String>,
    /// `--tracking-uri` (or `MLFLOW_TRACKING_URI`): the MLflow server to record on.
    pub tracking_uri: Option<String>,
    /// The store directory.
    pub store: PathBuf,
    /// Run a local directory in a fresh copy.
    pub isolated: bool,
    /// Print an equivalent FINISHED run instead of running, when the store has one.
    pub reuse: bool,
    /// Where the entry point's stdout goes.
    pub echo: Echo,
    /// The caller's working directory, for relative paths.
    pub caller_dir: PathBuf,
    /// `-A`, `--mount-project`, `--keep-container`.
    pub docker: DockerFlags,
    /// `--keep-processes`: what the entry point leaves running is not ended with the run.
    pub keep_processes: bool,
    /// `--no-keep-outputs`, `--keep-limit`: which outputs the store keeps a copy of.
    pub keep_outputs: KeepOutputs,
    /// `--backend`: where the run runs.
    pub backend: BackendKind,
    /// `--backend-config`, unparsed (a JSON file or inline JSON).
    pub backend_config: Option<String>,
    /// `--detach`: with a backend, return once the job is submitted.
    pub detach: bool,
    /// The run's id when a backend's job runs it (the submitting side's); a new one otherwise.
    pub run_id: Option<String>,
}

/// Run an entry point and record it.
pub fn run(opts: &RunOptions) -> Result<RunOutcome, Error> {
    let args = ParamArgs::parse(&opts.params)?;
    let tracking = TrackingTarget::resolve(
        opts.tracking_uri.as_deref(),
        opts.experiment_name.as_deref(),
        opts.experiment_id.as_deref(),
    )
    .map_err(record::RecordError::from)?;
    if tracking.is_none() && opts.experiment_id.is_some() {
        ui::warn("no tracking server is given (--tracking-uri or MLFLOW_TRACKING_URI): the experiment id is ignored");
    }
    let remote = remote_backend(opts)?;
    let session = Session::open(&opts.store)?;
    let run_id = match &opts.run_id {
        Some(id) if id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) => {
            RunId::from(id.clone())
        }
        Some(id) => return Err(pipeline::RunError::BadRunId { id: id.clone() }.into()),
        None => RunId::from(random_hex(16)),
    };
    let mut planned = session.checked(plan(opts, &args, &session, tracking.as_ref(), &run_id, remote.is_none()))?;
    if let Some((backend, config)) = &remote {
        let how = execution(opts, run_id, tracking.as_ref());
        let choice = RemoteChoice {
            backend: backend.as_ref(),
            config,
            params: &opts.params,
            env_manager: opts.env_manager,
            experiment_id: opts.experiment_id.clone(),
            tracking_uri: opts.tracking_uri.clone(),
            detach: opts.detach,
        };
        // From the submission on, a signal cancels the job (KILLED), it does not undo the run.
        return pipeline::submit_remote(planned, how, &session, choice);
    }
    if opts.reuse
        && let Some(record) = pipeline::find_equivalent(&session.store, &planned)?
    {
        return Ok(RunOutcome { record, exit_code: 0, reused: true });
    }
    session.checked(planned.prepare_before_start(&session.cache, &session.exclusions))?;
    let how = execution(opts, run_id, tracking.as_ref());
    pipeline::execute(planned, how, &session)
}

fn execution<'a>(opts: &'a RunOptions, run_id: RunId, tracking: Option<&'a TrackingTarget>) -> Execution<'a> {
    Execution {
        run_id,
        run_name: opts.run_name.clone(),
        experiment_name: opts.experiment_name.clone(),
        tracking,
        echo: opts.echo,
        caller_dir: &opts.caller_dir,
        keep_processes: opts.keep_processes,
        sweep: None,
        variables: Vec::new(),
        keep_outputs: opts.keep_outputs,
    }
}

/// A backend with the config it was opened with.
type Remote = (Box<dyn Backend>, BackendConfig);

/// The backend a run goes to with its config, checked before anything is planned; `None`
/// for a local run. Flags that mean nothing on a backend are refused.
fn remote_backend(opts: &RunOptions) -> Result<Option<Remote>, Error> {
    let name = opts.backend.name();
    if opts.backend == BackendKind::Local {
        if opts.backend_config.is_some() {
            return Err(BackendError::ConfigWithoutBackend.into());
        }
        if opts.detach {
            return Err(BackendError::Unsupported { flag: "--detach", backend: name }.into());
        }
        return Ok(None);
    }
    let refused = [
        ("--reuse", opts.reuse),
        ("--isolated", opts.isolated),
        ("--keep-processes", opts.keep_processes),
        ("-A, --mount-project and --keep-container", opts.docker.given()),
    ];
    if let Some((flag, _)) = refused.into_iter().find(|(_, given)| *given) {
        return Err(BackendError::Unsupported { flag, backend: name }.into());
    }
    let config = match &opts.backend_config {
        Some(given) => BackendConfig::parse(given, &opts.caller_dir)?,
        None => BackendConfig::default(),
    };
    let backend = backends::open(opts.backend, &config)?;
    backend.check()?;
    Ok(Some((backend, config)))
}

/// Everything that can be checked before running: source, version, then the entry point.
fn plan(
    opts: &RunOptions,
    args: &ParamArgs,
    session: &Session,
    tracking: Option<&TrackingTarget>,
    run_id: &str,
    here: bool,
) -> Result<pipeline::Planned, Error> {
    pipeline::check_store_outside(&session.store, &opts.uri, &opts.caller_dir)?;
    let pending = session.store.create_run(run_id)?;
    let request = SourceRequest {
        uri: &opts.uri,
        version: opts.version.as_deref(),
        isolated: opts.isolated,
        caller_dir: &opts.caller_dir,
        exclusions: session.exclusions.clone(),
    };
    let src = source::resolve(&request, &session.cache, &pending.dir().work())?;
    // A run elsewhere works on the archive of the tree, never in this directory.
    let in_place = match src.in_place && here {
        true => Some(pipeline::lock_in_place(&session.cache, &src.project_dir)?),
        false => None,
    };
    let spec = RunSpec {
        entry_point: &opts.entry_point,
        params: args,
        caller_dir: &opts.caller_dir,
        env: EnvChoice::Select(opts.env_manager, &opts.docker),
        artifacts: ArtifactSources { store: &session.store, tracking },
    };
    let mut planned = pipeline::plan(pending, src, spec)?;
    planned.in_place = in_place;
    Ok(planned)
}
