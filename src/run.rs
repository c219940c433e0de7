//! `lockstep run`: the pipeline's stages composed.
//!
//! Everything that can be checked before running (parameters, source, version, manifest,
//! environment choice) is checked before the RUNNING record is written: bad input leaves no
//! run behind. Virtualenvs and conda environments are also prepared (built or reused) in that
//! phase, since their failures are the user's input (an unknown package, versions that
//! conflict, an unreachable index or channel, no matching Python); Docker images are built once
//! the run is recorded, their build part of the run. From the record on, every path ends the
//! run as FINISHED, FAILED or KILLED.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::cache::{Cache, KeyLock};
use crate::env::{self, DockerFlags, DockerPlan, EnvManager, Environment, PrepareContext, PreparedEnv, RunContext};
use crate::error::{Error, ErrorClass};
use crate::exec::{self, Echo, Interrupts};
use crate::fetch;
use crate::fsutil;
use crate::manifest::{self, EntryPoint, EnvSpec, Manifest, ManifestError, ParamArgs, ParamValue};
use crate::record::{
    self, HostInfo, PendingRun, RECORD_SCHEMA, RunRecord, RunStatus, ServerRun, Snapshot, Store, TrackingTarget,
};
use crate::source::{self, Exclusions, ResolvedSource, SourceRequest};
use crate::support::docker_engine::EngineError;
use crate::ui;

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
}

/// A finished run.
#[derive(Debug)]
pub struct RunOutcome {
    /// The final record.
    pub record: RunRecord,
    /// The exit code lockstep should end with.
    pub exit_code: i32,
    /// Whether an earlier, equivalent run was reused instead of running (`--reuse`).
    pub reused: bool,
}

/// Errors of composing a run that belong to no single stage.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// SIGINT/SIGTERM arrived before the entry point started.
    #[error("interrupted before the run started")]
    Interrupted {
        /// The signal.
        signal: i32,
    },
    /// SIGINT/SIGTERM stopped the preparation of a started run's environment (a Docker pull
    /// or build): the run exists, recorded KILLED.
    #[error("interrupted while the environment was prepared: run {run_id} is recorded KILLED")]
    InterruptedRun {
        /// The signal.
        signal: i32,
        /// The run.
        run_id: String,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The store is the project directory or one of its parents: its runs would be part of
    /// the project, and the project part of the store.
    #[error("the store {} holds the project {}", .store.display(), .project.display())]
    StoreHoldsProject {
        /// The store.
        store: PathBuf,
        /// The project directory.
        project: PathBuf,
    },
    /// Another live run works in the same directory.
    #[error("another run is running in {} (in place)", .dir.display())]
    InPlaceBusy {
        /// The project directory.
        dir: PathBuf,
    },
}

impl RunError {
    /// Who has to act.
    pub fn class(&self) -> ErrorClass {
        match self {
            RunError::StoreHoldsProject { .. } | RunError::InPlaceBusy { .. } => ErrorClass::User,
            RunError::Interrupted { .. } | RunError::InterruptedRun { .. } | RunError::Signals(_) => {
                ErrorClass::Internal
            }
        }
    }

    /// What to try next.
    pub fn hint(&self) -> Option<String> {
        match self {
            RunError::StoreHoldsProject { .. } => Some(
                "use a store outside the project (--store or LOCKSTEP_STORE), or the default ./.lockstep inside it"
                    .into(),
            ),
            RunError::InPlaceBusy { .. } => Some(
                "each run would record the other's files as its outputs: wait for it, or run with --isolated (a copy)"
                    .into(),
            ),
            RunError::Interrupted { .. } | RunError::InterruptedRun { .. } | RunError::Signals(_) => None,
        }
    }
}

/// What a command that runs entry points holds for its whole life: signal handling, the
/// cache, the store.
pub(crate) struct Session {
    pub(crate) interrupts: Interrupts,
    pub(crate) cache: Cache,
    pub(crate) store: Store,
    pub(crate) exclusions: Exclusions,
}

impl Session {
    /// Start catching SIGINT/SIGTERM and open the cache and the store.
    pub(crate) fn open(store: &Path) -> Result<Session, Error> {
        let interrupts = Interrupts::install().map_err(RunError::Signals)?;
        let cache = Cache::from_env()?;
        let store = Store::open(store)?;
        env::docker::lost::clean_up(&store);
        let exclusions = Exclusions::new([store.root().to_path_buf()]);
        Ok(Session { interrupts, cache, store, exclusions })
    }

    /// Turn an error of the checks into "interrupted" when a signal came meanwhile (say, a
    /// Ctrl-C that also stopped a git fetch): the signal is what ends the command.
    pub(crate) fn checked<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        match self.interrupts.received() {
            Some(signal) => Err(RunError::Interrupted { signal }.into()),
            None => result,
        }
    }
}

/// How a run's environment is chosen, with the Docker flags for docker_env projects.
pub(crate) enum EnvChoice<'a> {
    /// From the project's spec, or this manager.
    Select(Option<EnvManager>, &'a DockerFlags),
    /// This one (rebuilt from a lock, say).
    Given(Box<dyn Environment>, DockerFlags),
}

/// A run that passed every check and can start: its directory exists, its record does not.
pub(crate) struct Planned {
    pub(crate) pending: PendingRun,
    pub(crate) src: ResolvedSource,
    pub(crate) entry_point: EntryPoint,
    pub(crate) parameters: BTreeMap<String, String>,
    pub(crate) command: String,
    pub(crate) environment: Box<dyn Environment>,
    /// The environment, when it is prepared before the run starts.
    pub(crate) prepared: Option<Box<dyn PreparedEnv>>,
    /// The run this one verifies.
    pub(crate) verifies: Option<String>,
    /// The lock of the project directory, held by a run in place.
    pub(crate) in_place: Option<KeyLock>,
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
    let session = Session::open(&opts.store)?;
    let run_id = fsutil::random_hex(16);
    let mut planned = session.checked(plan(opts, &args, &session, &run_id))?;
    if opts.reuse
        && let Some(record) = find_equivalent(&session.store, &planned)?
    {
        return Ok(RunOutcome { record, exit_code: 0, reused: true });
    }
    session.checked(planned.prepare_before_start(&session.cache))?;
    execute(opts, planned, tracking.as_ref(), &session, run_id)
}

/// Everything that can be checked before running: source, version, then the entry point.
fn plan(opts: &RunOptions, args: &ParamArgs, session: &Session, run_id: &str) -> Result<Planned, Error> {
    check_store_outside(&session.store, &opts.uri, &opts.caller_dir)?;
    let pending = session.store.create_run(run_id)?;
    let request = SourceRequest {
        uri: &opts.uri,
        version: opts.version.as_deref(),
        isolated: opts.isolated,
        caller_dir: &opts.caller_dir,
        exclusions: session.exclusions.clone(),
    };
    let src = source::resolve(&request, &session.cache, &pending.dir().join("work"))?;
    let in_place = match src.in_place {
        true => Some(lock_in_place(&session.cache, &src.project_dir)?),
        false => None,
    };
    let mut planned = plan_entry(
        pending,
        src,
        &opts.entry_point,
        args,
        &opts.caller_dir,
        EnvChoice::Select(opts.env_manager, &opts.docker),
    )?;
    planned.in_place = in_place;
    Ok(planned)
}

/// Refuse a store that is a local project's directory or one of its parents (`--store .`):
/// the project's walk leaves the store out, so it would hash as an empty tree. A store inside
/// the project (the default `./.lockstep`) is left out of it and fine.
fn check_store_outside(store: &Store, uri: &str, caller_dir: &Path) -> Result<(), Error> {
    let Ok(source::SourceUri::Local { path, subdirectory }) = source::SourceUri::parse(uri) else { return Ok(()) };
    let project = caller_dir.join(path).join(subdirectory.unwrap_or_default());
    // What does not exist cannot hold anything; resolving the source reports a missing project.
    let (Ok(project), Ok(root)) = (fs::canonicalize(&project), fs::canonicalize(store.root())) else { return Ok(()) };
    if project.starts_with(&root) {
        return Err(RunError::StoreHoldsProject { store: root, project }.into());
    }
    Ok(())
}

/// Outputs of a run in place are what changed in the directory, so two live runs in one
/// directory would record each other's files: one at a time, the lock in the cache (shared by
/// every store) keyed by the canonical directory.
fn lock_in_place(cache: &Cache, dir: &Path) -> Result<KeyLock, Error> {
    let key = fsutil::sha256_hex(dir.as_os_str().as_encoded_bytes());
    cache.try_lock(IN_PLACE_BUCKET, &key)?.ok_or_else(|| RunError::InPlaceBusy { dir: dir.to_path_buf() }.into())
}

/// The cache bucket of the locks of directories with a run in place.
const IN_PLACE_BUCKET: &str = "inplace-v1";

/// The checks on a resolved source: manifest, entry point, parameters (with path checks and
/// downloads), command, environment.
pub(crate) fn plan_entry(
    pending: PendingRun,
    src: ResolvedSource,
    entry_point: &str,
    args: &ParamArgs,
    caller_dir: &Path,
    env: EnvChoice<'_>,
) -> Result<Planned, Error> {
    let manifest = Manifest::load(&src.project_dir)?;
    for w in &manifest.warnings {
        ui::warn(w);
    }
    let entry_point = manifest.entry_point(entry_point, &src.project_dir)?;
    let bound = manifest::bind_parameters(&entry_point, args)?;
    let mut values = BTreeMap::new();
    let mut extra = Vec::new();
    let mut parameters = BTreeMap::new();
    for p in &bound {
        parameters.insert(p.name.clone(), p.raw.clone());
        let value = match &p.value {
            ParamValue::Plain(v) => v.clone(),
            ParamValue::LocalPath { path, from_project } => {
                let base = if *from_project { src.project_dir.as_path() } else { caller_dir };
                let abs = std::path::absolute(base.join(path)).unwrap_or_else(|_| base.join(path));
                if !abs.exists() {
                    return Err(ManifestError::PathNotFound { name: p.name.clone(), path: abs }.into());
                }
                abs.to_string_lossy().into_owned()
            }
            ParamValue::Url(url) => {
                ui::note(&format!("downloading {url}"));
                let dir = pending.dir().join("inputs").join(&p.name);
                fetch::download(url, &dir)?.to_string_lossy().into_owned()
            }
        };
        if p.declared {
            values.insert(p.name.clone(), value);
        } else {
            extra.push((p.name.clone(), value));
        }
    }
    let command = manifest::render_command(&entry_point, &values, &extra)?;
    let (environment, docker_flags) = match env {
        EnvChoice::Select(manager, flags) => (env::select(&manifest.env, manager, &src.project_dir)?, flags.clone()),
        EnvChoice::Given(environment, flags) => (environment, flags),
    };
    let mut environment = environment;
    match (&manifest.env, environment.as_docker()) {
        (EnvSpec::Docker(spec), Some(docker)) => docker.set_plan(
            DockerPlan::new(
                spec,
                &docker_flags,
                manifest.name.as_deref(),
                &src.info.tree_sha256,
                &src.project_dir,
                caller_dir,
            )
            .map_err(env::EnvError::from)?,
        ),
        _ => {
            if docker_flags.given() {
                ui::warn("-A, --mount-project and --keep-container apply to docker_env projects only: ignored");
            }
        }
    }
    Ok(Planned {
        pending,
        src,
        entry_point,
        parameters,
        command,
        environment,
        prepared: None,
        verifies: None,
        in_place: None,
    })
}

impl Planned {
    /// Build a virtualenv or conda environment now, before the run exists, so that a spec
    /// that cannot be built is bad input that leaves no run. (Docker builds after the record:
    /// a failed image build is a FAILED run; `local` has nothing to build.)
    pub(crate) fn prepare_before_start(&mut self, cache: &Cache) -> Result<(), Error> {
        if matches!(self.environment.manager(), EnvManager::Virtualenv | EnvManager::Uv | EnvManager::Conda) {
            let ctx = PrepareContext { project_dir: &self.src.project_dir, cache };
            self.prepared = Some(self.environment.prepare(ctx)?);
        }
        Ok(())
    }
}

/// A FINISHED run of the same files, environment, entry point and parameters whose outputs
/// are all still in place, newest first.
fn find_equivalent(store: &Store, planned: &Planned) -> Result<Option<RunRecord>, Error> {
    let (runs, _) = store.list()?;
    let key = planned.environment.key();
    let found = runs.into_iter().find(|r| {
        r.status == RunStatus::Finished
            && r.verifies.is_none()
            && r.entry_point == planned.entry_point.name
            && r.parameters == planned.parameters
            && r.environment.manager() == planned.environment.manager()
            && r.environment.key() == key.as_deref()
            && same_source(r, &planned.src)
            && outputs_in_place(r)
    });
    Ok(found)
}

fn same_source(run: &RunRecord, src: &ResolvedSource) -> bool {
    match (&src.tree, &run.source.input_tree_sha256) {
        (Some(tree), Some(input)) => {
            let written: Vec<String> = run.outputs.iter().map(|o| o.path.clone()).collect();
            let in_place = run.outputs_dir == src.project_dir;
            &source::without_outputs(tree.clone(), &written, in_place).sha256 == input
        }
        _ => run.source.tree_sha256 == src.info.tree_sha256 && run.source.kind == src.info.kind,
    }
}

fn outputs_in_place(run: &RunRecord) -> bool {
    run.outputs.iter().all(|o| {
        let path = run.outputs_dir.join(&o.path);
        fs::metadata(&path).is_ok_and(|m| m.len() == o.size)
            && fsutil::sha256_file(&path).is_ok_and(|(sha, _)| fsutil::hex(&sha) == o.sha256)
    })
}

/// Start the run (the server's run when tracking, then the RUNNING record), prepare the
/// environment, run the entry point, collect its outputs, and end the record (and the
/// server's run) as FINISHED, FAILED or KILLED on every path.
pub(crate) fn execute(
    opts: &RunOptions,
    planned: Planned,
    tracking: Option<&TrackingTarget>,
    session: &Session,
    run_id: String,
) -> Result<RunOutcome, Error> {
    let Session { interrupts, cache, exclusions, .. } = session;
    let Planned {
        pending,
        mut src,
        entry_point: ep,
        parameters,
        command,
        environment,
        prepared,
        verifies,
        in_place: _in_place,
    } = planned;
    let stamps = src.stamps.take();
    let run_dir = pending.dir().to_path_buf();
    if let Some(patch) = &src.dirty_patch {
        let path = run_dir.join("dirty.patch");
        fsutil::write_atomic(&path, patch).map_err(record::RecordError::io(&path))?;
    }
    let outputs_dir = if src.in_place { src.project_dir.clone() } else { run_dir.join("outputs") };
    let mut record = RunRecord {
        schema: RECORD_SCHEMA.to_string(),
        run_id: run_id.clone(),
        run_name: opts.run_name.clone(),
        experiment_name: opts.experiment_name.clone(),
        status: RunStatus::Running,
        failure: None,
        exit_code: None,
        start_time: fsutil::now_ms(),
        end_time: None,
        entry_point: ep.name.clone(),
        parameters,
        command: command.clone(),
        source: src.info.clone(),
        environment: match &prepared {
            Some(p) => p.record(),
            None => env::EnvRecord::unprepared(environment.manager()),
        },
        outputs: Vec::new(),
        outputs_dir,
        host: HostInfo::current(),
        cwd: Some(opts.caller_dir.clone()),
        verifies,
        verification: None,
        tracking: None,
    };
    let mut server = match tracking {
        Some(target) => Some(start_server_run(target, &mut record, interrupts)?),
        None => None,
    };
    if let Some(tree) = &src.tree {
        let path = run_dir.join(SOURCE_TREE_FILE);
        fsutil::write_atomic(&path, tree.listing().as_bytes()).map_err(record::RecordError::io(&path))?;
    }
    let active = pending.start(&record)?;
    let started = record.clone();
    ui::note(&format!("run {run_id} started: {} in {}", ep.name, src.project_dir.display()));

    let result = (|| -> Result<i32, Error> {
        let prepared = match prepared {
            Some(p) => p,
            None => environment.prepare(PrepareContext { project_dir: &src.project_dir, cache })?,
        };
        record.environment = prepared.record();
        if let Some(server) = server.as_mut() {
            server.environment_ready(&record);
        }
        let extra: Vec<(String, String)> = server.iter().flat_map(ServerRun::child_variables).collect();
        let pycache_dir = cache.root().join("pycache-v1");
        let run = RunContext {
            run_id: &run_id,
            run_dir: &run_dir,
            store_dir: session.store.root(),
            pycache_dir: &pycache_dir,
            extra: &extra,
        };
        let mut invocation = prepared.wrap(&command, &src.project_dir, &run);
        // A container holding its own copy of the project hands its outputs over when it
        // exits; `outputs:` globs then name files of that copy.
        let copied_out = match invocation.container_with_outputs_inside() {
            Some(container) => {
                let also = record::matching_files(&src.project_dir, &ep.outputs, exclusions)?;
                container.outputs = Some(env::ContainerOutputs { dest: run_dir.join("outputs"), also });
                record.outputs_dir = run_dir.join("outputs");
                true
            }
            None => false,
        };
        // The record changes here only when the environment tells more once prepared.
        if record != started {
            active.update(&record)?;
        }
        let before = match (copied_out, stamps) {
            (true, _) => None,
            (false, Some(stamps)) => Some(Snapshot::from_stamps(stamps)),
            (false, None) => Some(Snapshot::take(&src.project_dir, exclusions)?),
        };
        let leftovers = if opts.keep_processes { exec::Leftovers::Keep } else { exec::Leftovers::End };
        let outcome = exec::execute(&invocation, &run_dir, opts.echo, interrupts, leftovers)?;
        record.end_time = Some(outcome.end_ms);
        record.exit_code = Some(outcome.exit_code());
        record.status = if outcome.killed() {
            RunStatus::Killed
        } else if outcome.exit_code() == 0 {
            RunStatus::Finished
        } else {
            RunStatus::Failed
        };
        match &before {
            Some(before) => {
                record.outputs = record::collect_outputs(&src.project_dir, before, &ep.outputs, exclusions)?;
                if !src.in_place {
                    record::move_outputs(&src.project_dir, &record.outputs, &record.outputs_dir)?;
                }
            }
            None => record.outputs = record::list_outputs(&record.outputs_dir)?,
        }
        record.source.input_tree_sha256 =
            input_tree_sha256(&src, &record.outputs, record.outputs_dir == src.project_dir);
        if !src.in_place {
            remove_workdir(&run_dir.join("work"));
        }
        Ok(outcome.exit_code())
    })();
    match result {
        Ok(exit_code) => {
            active.update(&record)?;
            finish_server_run(server, &mut record, &active)?;
            Ok(RunOutcome { record, exit_code, reused: false })
        }
        Err(err) => {
            record.status = if interrupts.received().is_some() { RunStatus::Killed } else { RunStatus::Failed };
            record.failure = Some(err.to_string());
            record.end_time = Some(fsutil::now_ms());
            active.update(&record)?;
            finish_server_run(server, &mut record, &active)?;
            // A pull or build stopped by SIGINT/SIGTERM ends the command as the signal would
            // have ended the entry point.
            match (interrupts.received(), &err) {
                (
                    Some(signal),
                    Error::Env(env::EnvError::Docker(env::DockerError::Engine(EngineError::Interrupted))),
                ) => Err(RunError::InterruptedRun { signal, run_id }.into()),
                _ => Err(err),
            }
        }
    }
}

/// The file in a run's directory that lists a local source's files as hashed before the run.
pub const SOURCE_TREE_FILE: &str = "source-tree.txt";

/// For a local source, the tree hash without the paths a run wrote into it (when its outputs
/// stayed in the project directory).
fn input_tree_sha256(src: &ResolvedSource, outputs: &[record::OutputFile], wrote_in_tree: bool) -> Option<String> {
    let tree = src.tree.as_ref()?;
    if !wrote_in_tree || outputs.is_empty() {
        // Nothing to leave out: no copy of a large tree.
        return Some(tree.sha256.clone());
    }
    let written: Vec<String> = outputs.iter().map(|o| o.path.clone()).collect();
    Some(source::without_outputs(tree.clone(), &written, wrote_in_tree).sha256)
}

/// Create the run on the tracking server, after every check passed and before the RUNNING
/// record: a server that cannot be reached stops the run before anything ran.
fn start_server_run(
    target: &TrackingTarget,
    record: &mut RunRecord,
    interrupts: &Interrupts,
) -> Result<ServerRun, Error> {
    let server = ServerRun::start(target, record).map_err(record::RecordError::from)?;
    if let Some(signal) = interrupts.received() {
        server.abandon(RunStatus::Killed, "interrupted before the run started");
        return Err(RunError::Interrupted { signal }.into());
    }
    record.tracking = Some(server.record());
    if let Some(name) = server.experiment_name() {
        record.experiment_name = Some(name.to_string());
    }
    ui::note(&format!("tracking on {}", server.page()));
    Ok(server)
}

/// End the server's run from the final record (already written). A server lost during the
/// run costs only the server's copy: a warning says what is missing, the record says it is
/// not synced, and `lockstep sync` completes it later.
fn finish_server_run(
    server: Option<ServerRun>,
    record: &mut RunRecord,
    active: &record::ActiveRun,
) -> Result<(), Error> {
    let Some(server) = server else { return Ok(()) };
    let finished = server.finish(record, active.dir());
    active.update(record)?;
    if let Err(e) = finished {
        ui::warn(&e.to_string());
        ui::note(&format!("the local record is complete; `lockstep sync {}` sends the rest later", record.run_id));
    }
    Ok(())
}

/// A per-run checkout is not needed once its outputs are moved out; failing to remove it
/// wastes space but loses nothing.
fn remove_workdir(dir: &Path) {
    if let Err(e) = fs::remove_dir_all(dir) {
        ui::warn(&format!("could not remove {}: {e}", dir.display()));
    }
}
