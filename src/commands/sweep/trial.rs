//! One trial: planned like `lockstep run --isolated` with the trial's values, reused when
//! the store has an equivalent run, else executed quietly (its output only in its logs).

use super::SweepOptions;
use super::grid::Point;
use crate::commands::CommandError as Error;
use crate::exec::Echo;
use crate::manifest::ParamArgs;
use crate::pipeline::{self, EnvChoice, Execution, Planned, RunSpec, Session};
use crate::record::{self, ArtifactSources, RunRecord, RunStatus, TrackingTarget};
use crate::source::{self, SourceRequest};

/// The tracking server the trials are recorded on, if any.
pub(super) fn tracking_target(opts: &SweepOptions) -> Result<Option<TrackingTarget>, Error> {
    Ok(TrackingTarget::resolve(
        opts.tracking_uri.as_deref(),
        opts.experiment_name.as_deref(),
        opts.experiment_id.as_deref(),
    )
    .map_err(record::RecordError::from)?)
}

/// Plan a trial. A local project is copied for each trial (`--isolated`): trials side by
/// side in one directory would record each other's files as their outputs.
pub(super) fn plan(
    opts: &SweepOptions,
    session: &Session,
    tracking: Option<&TrackingTarget>,
    point: &Point,
    run_id: &str,
) -> Result<Planned, Error> {
    let args = ParamArgs::from_pairs(point.iter().cloned())?;
    pipeline::check_store_outside(&session.store, &opts.uri, &opts.caller_dir)?;
    let pending = session.store.create_run(run_id)?;
    let request = SourceRequest {
        uri: &opts.uri,
        version: opts.version.as_deref(),
        isolated: true,
        caller_dir: &opts.caller_dir,
        exclusions: session.exclusions.clone(),
    };
    let src = source::resolve(&request, &session.cache, &pending.dir().work())?;
    let spec = RunSpec {
        entry_point: &opts.entry_point,
        params: &args,
        caller_dir: &opts.caller_dir,
        env: EnvChoice::Select(opts.env_manager, &opts.docker),
        artifacts: ArtifactSources { store: &session.store, tracking },
    };
    pipeline::plan(pending, src, spec)
}

/// How a trial ended.
pub(super) struct TrialEnd {
    /// Its run (or the run reused for it); None when it failed before it had one.
    pub(super) run_id: Option<String>,
    /// The run's status.
    pub(super) status: RunStatus,
    /// Whether the run was reused.
    pub(super) reused: bool,
    /// The run's record, when it has one.
    pub(super) record: Option<RunRecord>,
    /// Why the trial could not run, when it could not.
    pub(super) error: Option<String>,
}

/// What a trial runs with, beyond its values.
pub(super) struct TrialContext<'a> {
    pub(super) opts: &'a SweepOptions,
    pub(super) session: &'a Session,
    pub(super) tracking: Option<&'a TrackingTarget>,
    pub(super) sweep_id: &'a str,
    /// Runs already in the store, for reuse (empty with `--no-reuse`).
    pub(super) earlier: &'a [RunRecord],
    /// The run's name: the trial's varying values.
    pub(super) run_name: String,
    pub(super) variables: Vec<(String, String)>,
}

/// Plan, reuse or run one trial. A trial that fails, in its checks or its run, ends as
/// FAILED (KILLED after a signal) without stopping the sweep.
pub(super) fn run(ctx: TrialContext<'_>, point: &Point, run_id: String) -> TrialEnd {
    let interrupted = || ctx.session.interrupts.received().is_some();
    let failed = |run_id: Option<String>, err: Error| TrialEnd {
        run_id,
        status: if interrupted() { RunStatus::Killed } else { RunStatus::Failed },
        reused: false,
        record: None,
        error: Some(err.to_string()),
    };
    let mut planned = match plan(ctx.opts, ctx.session, ctx.tracking, point, &run_id) {
        Ok(planned) => planned,
        Err(err) => return failed(None, err),
    };
    if let Some(found) = pipeline::equivalent_in(ctx.earlier, &planned) {
        return TrialEnd {
            run_id: Some(found.run_id.to_string()),
            status: found.status,
            reused: true,
            record: Some(found.clone()),
            error: None,
        };
    }
    if let Err(err) = planned.prepare_before_start(&ctx.session.cache, &ctx.session.exclusions) {
        return failed(None, err);
    }
    let how = Execution {
        run_id: run_id.clone().into(),
        run_name: Some(ctx.run_name),
        experiment_name: ctx.opts.experiment_name.clone(),
        tracking: ctx.tracking,
        echo: Echo::Quiet,
        caller_dir: &ctx.opts.caller_dir,
        keep_processes: false,
        sweep: Some(ctx.sweep_id.to_string()),
        variables: ctx.variables,
        keep_outputs: ctx.opts.keep_outputs,
    };
    match pipeline::execute(planned, how, ctx.session) {
        Ok(outcome) => TrialEnd {
            run_id: Some(run_id),
            status: outcome.record.status,
            reused: false,
            record: Some(outcome.record),
            error: None,
        },
        Err(err) => {
            // A started run is recorded as FAILED or KILLED; the store has its final status.
            match ctx.session.store.find(&run_id) {
                Ok(r) => TrialEnd { status: r.status, ..failed(Some(run_id), err) },
                Err(_) => failed(None, err),
            }
        }
    }
}
