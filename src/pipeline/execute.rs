//! Executing a planned run: the record from RUNNING to its end, the entry point, its outputs,
//! and the run's copy on a tracking server.

use crate::support::clock::now_ms;
use crate::support::fs::write_atomic;
use std::fs;
use std::path::Path;

use super::{Planned, RunError, Session};
use crate::commands::CommandError as Error;
use crate::env::{self, PrepareContext, RunContext};
use crate::exec::{self, Echo, Interrupts};
use crate::record::endpoint::{Endpoint, TopRun};
use crate::record::logged::{ARTIFACTS_DIR, MODELS_DIR, OTHER_RUNS_DIR};
use crate::record::{
    self, HostInfo, KeepOutputs, Logged, NotKept, RECORD_SCHEMA, RunRecord, RunStatus, ServerRun, Snapshot,
    TrackingTarget,
};
use crate::source::{self, ResolvedSource};
use crate::support::cache::CacheBucket;
use crate::support::docker_engine::EngineError;
use crate::support::ids::{RunId, TreeHash};
use crate::support::ui;

/// How a planned run is executed and labelled, beyond what its plan holds.
pub struct Execution<'a> {
    /// The run's id (its directory's name).
    pub run_id: RunId,
    /// `--run-name`.
    pub run_name: Option<String>,
    /// `--experiment-name`.
    pub experiment_name: Option<String>,
    /// The MLflow server to record the run on.
    pub tracking: Option<&'a TrackingTarget>,
    /// Where the entry point's stdout goes.
    pub echo: Echo,
    /// The caller's working directory, recorded as the run's `cwd`.
    pub caller_dir: &'a Path,
    /// What the entry point leaves running is not ended with the run.
    pub keep_processes: bool,
    /// The sweep the run is a trial of.
    pub sweep: Option<String>,
    /// Variables the entry point gets besides the environment's (a sweep worker's
    /// `CUDA_VISIBLE_DEVICES`).
    pub variables: Vec<(String, String)>,
    /// Which outputs the store keeps a copy of.
    pub keep_outputs: KeepOutputs,
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

/// Start the run (the server's run when tracking, then the RUNNING record), prepare the
/// environment, run the entry point, collect its outputs, and end the record (and the
/// server's run) as FINISHED, FAILED or KILLED on every path.
pub fn execute(planned: Planned, how: Execution<'_>, session: &Session) -> Result<RunOutcome, Error> {
    let Session { interrupts, cache, exclusions, .. } = session;
    let Execution {
        run_id,
        run_name,
        experiment_name,
        tracking,
        echo,
        caller_dir,
        keep_processes,
        sweep,
        variables,
        keep_outputs,
    } = how;
    let Planned {
        pending,
        mut src,
        project_name,
        entry_point: ep,
        parameters,
        parameter_order,
        command,
        command_pieces: _,
        environment,
        prepared,
        inputs,
        verifies,
        in_place: _in_place,
    } = planned;
    let stamps = src.stamps.take();
    let run_dir = pending.dir().clone();
    if let Some(patch) = &src.dirty_patch {
        let path = run_dir.dirty_patch();
        write_atomic(&path, patch).map_err(record::RecordError::io(&path))?;
    }
    let env_record = match &prepared {
        Some(p) => p.record(),
        None => env::EnvRecord::unprepared(environment.manager()),
    };
    let outputs_dir = if src.in_place { src.project_dir.clone() } else { run_dir.outputs() };
    let mut record = RunRecord {
        schema: RECORD_SCHEMA.to_string(),
        run_id: run_id.clone(),
        run_name,
        experiment_name,
        project_name,
        status: RunStatus::Running,
        failure: None,
        exit_code: None,
        start_time: now_ms(),
        end_time: None,
        entry_point: ep.name.clone(),
        parameters,
        parameter_order,
        command: command.clone(),
        source: src.info.clone(),
        inputs,
        host: HostInfo::current().with_blas_of(&env_record).with_variables(&variables),
        environment: env_record,
        outputs: Vec::new(),
        outputs_dir,
        cwd: Some(caller_dir.to_path_buf()),
        verifies,
        verification: None,
        tracking: None,
        logged: None,
        sweep,
        backend: None,
    };
    let mut server = match tracking {
        Some(target) => Some(start_server_run(target, &mut record, interrupts)?),
        None => None,
    };
    if let Some(tree) = &src.tree {
        let path = run_dir.source_tree();
        write_atomic(&path, tree.listing().as_bytes()).map_err(record::RecordError::io(&path))?;
    }
    let active = pending.start(&record)?;
    let started = record.clone();
    // Without a tracking server, the run serves its own endpoint while the entry point runs.
    let mut endpoint: Option<Endpoint> = None;
    ui::note(&format!("run {run_id} started: {} in {}", ep.name, src.project_dir.display()));

    let result = (|| -> Result<i32, Error> {
        let prepared = match prepared {
            Some(p) => p,
            None => environment.prepare(PrepareContext { project_dir: &src.project_dir, exclusions, cache })?,
        };
        record.environment = prepared.record();
        if let Some(server) = server.as_mut() {
            server.environment_ready(&record);
        }
        if server.is_none() {
            endpoint = Some(start_endpoint(run_dir.path(), &record)?);
        }
        let mut extra: Vec<(String, String)> = server.iter().flat_map(ServerRun::child_variables).collect();
        extra.extend(endpoint.iter().flat_map(Endpoint::child_variables));
        // The mlflow client otherwise reports to a telemetry host from every run.
        extra.push(("MLFLOW_DISABLE_TELEMETRY".into(), "true".into()));
        extra.extend(variables.iter().cloned());
        let pycache_dir = cache.bucket_path(CacheBucket::Pycache);
        let shared_dirs: Vec<std::path::PathBuf> = match endpoint.is_some() && record.environment.docker().is_some() {
            true => [ARTIFACTS_DIR, OTHER_RUNS_DIR, MODELS_DIR].iter().map(|d| run_dir.path().join(d)).collect(),
            false => Vec::new(),
        };
        let run = RunContext {
            run_id: &run_id,
            run_dir: run_dir.path(),
            store_dir: session.store.root(),
            pycache_dir: &pycache_dir,
            extra: &extra,
            shared_dirs: &shared_dirs,
        };
        let mut invocation = prepared.wrap(&command, &src.project_dir, &run);
        // A container holding its own copy of the project hands its outputs over when it
        // exits; `outputs:` globs then name files of that copy.
        let copied_out = match invocation.container_with_outputs_inside() {
            Some(container) => {
                let also = record::matching_files(&src.project_dir, &ep.outputs, exclusions)?;
                container.outputs = Some(env::ContainerOutputs { dest: run_dir.outputs(), also });
                record.outputs_dir = run_dir.outputs();
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
        let leftovers = match (keep_processes, record.sweep.is_some()) {
            (true, _) => exec::Leftovers::Keep,
            (false, true) => exec::Leftovers::Group,
            (false, false) => exec::Leftovers::End,
        };
        let logs = exec::LogFiles { stdout: run_dir.stdout_log(), stderr: run_dir.stderr_log() };
        let outcome = exec::execute(&invocation, &logs, echo, interrupts, leftovers);
        if let Some(endpoint) = endpoint.take() {
            endpoint.stop();
        }
        let outcome = outcome?;
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
        let in_store = record.outputs_dir.starts_with(run_dir.path());
        let not_kept = session.store.objects().keep(&record.outputs_dir, &mut record.outputs, keep_outputs, in_store);
        warn_not_kept(&not_kept, keep_outputs);
        record.source.input_tree_sha256 =
            input_tree_sha256(&src, &record.outputs, record.outputs_dir == src.project_dir);
        if !src.in_place {
            remove_workdir(&run_dir.work());
        }
        Ok(outcome.exit_code())
    })();
    // An endpoint left by an error before the entry point ended stops here.
    drop(endpoint);
    if server.is_none() {
        record.logged = logged(run_dir.path());
    }
    match result {
        Ok(exit_code) => {
            active.update(&record)?;
            finish_server_run(server, &mut record, &active)?;
            Ok(RunOutcome { record, exit_code, reused: false })
        }
        Err(err) => {
            record.status = if interrupts.received().is_some() { RunStatus::Killed } else { RunStatus::Failed };
            record.failure = Some(err.to_string());
            record.end_time = Some(now_ms());
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

/// Say which outputs have no copy in the store, and why: `lockstep outputs` cannot restore
/// those.
fn warn_not_kept(not_kept: &NotKept, policy: KeepOutputs) {
    if let (Some((path, size)), KeepOutputs::UpTo(limit)) = (not_kept.above_limit.first(), policy) {
        let more = match not_kept.above_limit.len() {
            1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        ui::warn(&format!(
            "{path} ({}){more} is larger than the limit of {} for kept outputs: the record has its sha256 only \
             (--keep-limit raises the limit)",
            ui::size(*size),
            ui::size(limit)
        ));
    }
    for (path, e) in &not_kept.failed {
        ui::warn(&format!("no copy of output {path} is kept in the store: {e}"));
    }
}

/// For a local source, the tree hash without the paths a run wrote into it (when its outputs
/// stayed in the project directory).
fn input_tree_sha256(src: &ResolvedSource, outputs: &[record::OutputFile], wrote_in_tree: bool) -> Option<TreeHash> {
    let tree = src.tree.as_ref()?;
    if !wrote_in_tree || outputs.is_empty() {
        // Nothing to leave out: no copy of a large tree.
        return Some(tree.sha256.clone().into());
    }
    let written: Vec<String> = outputs.iter().map(|o| o.path.clone()).collect();
    Some(source::without_outputs(tree.clone(), &written, wrote_in_tree).sha256.into())
}

/// The embedded endpoint for the run of `record`, its artifact directories made for a
/// container, which mounts them at the same path.
fn start_endpoint(run_dir: &Path, record: &RunRecord) -> Result<Endpoint, Error> {
    if record.environment.docker().is_some() {
        for dir in [ARTIFACTS_DIR, OTHER_RUNS_DIR, MODELS_DIR] {
            let path = run_dir.join(dir);
            fs::create_dir_all(&path).map_err(record::RecordError::io(&path))?;
        }
    }
    let top = TopRun {
        run_id: record.run_id.to_string(),
        name: record.run_name.clone(),
        experiment_name: record.experiment_name.clone(),
        start_time: record.start_time as i64,
        // From the environment only: a passwd lookup would cost every run that never logs.
        user: ["LOGNAME", "USER"].iter().find_map(|v| std::env::var(v).ok()).unwrap_or_default(),
    };
    Ok(Endpoint::start(run_dir, &top).map_err(record::RecordError::from)?)
}

/// What the script logged to the endpoint; a failure to read it costs the record that part
/// only, with a warning.
fn logged(run_dir: &Path) -> Option<Logged> {
    Logged::load(run_dir).unwrap_or_else(|e| {
        ui::warn(&format!("what the script logged could not be read: {e}"));
        None
    })
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
/// wastes space but loses nothing. A re-run that worked elsewhere (`verify --isolate`'s
/// fixed directory, which verify removes) has none.
fn remove_workdir(dir: &Path) {
    if let Err(e) =
        fs::remove_dir_all(dir).or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
    {
        ui::warn(&format!("could not remove {}: {e}", dir.display()));
    }
}
