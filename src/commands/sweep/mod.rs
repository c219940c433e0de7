//! `lockstep sweep`: many trials of one entry point over a grid of parameter values, run
//! side by side, each a fully recorded run, and reused when an equivalent run is already in
//! the store. `lockstep sweep show` ranks a sweep's trials.

mod error;
mod grid;
mod pool;
mod preflight;
mod results;
mod trial;
mod values;

use std::path::PathBuf;

use crate::commands::CommandError as Error;
use crate::env::{DockerFlags, EnvManager};
use crate::pipeline::Session;
use crate::record::tracking::SweepServerRun;
use crate::record::{self, RunStatus, SWEEP_SCHEMA, SweepRecord, SweepState, SweepTrial};
use crate::support::clock::now_ms;
use crate::support::ids::{random_hex, short};
use crate::support::ui;

pub use error::SweepError;
pub use pool::TrialEvent;
pub(crate) use results::table;
pub use results::{Goal, SweepRow, SweepTable, show, trial_runs};

/// What to sweep and how.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// A local path or git URL, with an optional `#subdirectory`.
    pub uri: String,
    /// The entry point.
    pub entry_point: String,
    /// A branch, tag or commit.
    pub version: Option<String>,
    /// `-P NAME=VALUES` arguments, unparsed.
    pub params: Vec<String>,
    /// `--env-manager`.
    pub env_manager: Option<EnvManager>,
    /// `--random N`: sample N trials of the grid.
    pub random: Option<usize>,
    /// `--seed S` for `--random` (default: drawn, and recorded).
    pub seed: Option<u64>,
    /// Trials at a time.
    pub jobs: usize,
    /// `--gpus`: worker i gets `CUDA_VISIBLE_DEVICES` = the i-th (round robin).
    pub gpus: Vec<String>,
    /// Print the trials instead of running them.
    pub dry_run: bool,
    /// Run every trial, even those with an equivalent run in the store.
    pub no_reuse: bool,
    /// Stop starting trials once one fails.
    pub fail_fast: bool,
    /// `--experiment-name`.
    pub experiment_name: Option<String>,
    /// `--experiment-id`.
    pub experiment_id: Option<String>,
    /// `--tracking-uri`.
    pub tracking_uri: Option<String>,
    /// The store directory.
    pub store: PathBuf,
    /// The caller's working directory.
    pub caller_dir: PathBuf,
    /// `-A`, `--mount-project`, `--keep-container`.
    pub docker: DockerFlags,
    /// `--no-keep-outputs`, `--keep-limit`: which outputs the store keeps a copy of.
    pub keep_outputs: crate::record::KeepOutputs,
}

/// How a sweep went (or, with `--dry-run`, what it would run).
#[derive(Debug)]
pub struct SweepOutcome {
    /// The sweep's record; with `--dry-run`, not saved and without run ids.
    pub record: SweepRecord,
    /// The exit code: 0 when every trial finished, 128 + signal when interrupted, else 1.
    pub exit_code: i32,
}

/// Plan the grid, check every value, prepare the environment once, and run the trials.
pub fn sweep(opts: &SweepOptions, on_event: &(dyn Fn(&TrialEvent) + Sync)) -> Result<SweepOutcome, Error> {
    if opts.jobs == 0 {
        return Err(SweepError::NoJobs.into());
    }
    let grid = grid::Grid::parse(&opts.params)?;
    let seed = opts.seed.unwrap_or_else(|| u64::from_str_radix(&random_hex(8), 16).unwrap_or(0));
    let points = grid.points(opts.random, seed)?;
    let session = Session::open(&opts.store)?;
    let tracking = trial::tracking_target(opts)?;
    let probe = session.checked(preflight::check(opts, &session, tracking.as_ref(), &grid, &points))?;
    let record = SweepRecord {
        schema: SWEEP_SCHEMA.to_string(),
        sweep_id: random_hex(16),
        uri: opts.uri.clone(),
        entry_point: opts.entry_point.clone(),
        grid: grid.axes.clone(),
        random: opts.random.map(|n| (n, seed)),
        state: SweepState::Running,
        start_time: now_ms(),
        end_time: None,
        tracking_run_id: None,
        trials: points
            .iter()
            .map(|p| SweepTrial {
                params: p.iter().cloned().collect(),
                run_id: None,
                status: None,
                reused: false,
                error: None,
            })
            .collect(),
    };
    if opts.dry_run {
        return Ok(SweepOutcome { record, exit_code: 0 });
    }
    session.checked(preflight::prepare(probe, &session))?;
    session.store.save_sweep(&record)?;
    on_event(&TrialEvent::Started { sweep_id: record.sweep_id.clone(), trials: points.len() });
    let mut record = record;
    let parent = match &tracking {
        Some(target) => {
            let name = format!("sweep {}", short(&record.sweep_id));
            let parent = SweepServerRun::start(target, &record.sweep_id, &name, record.start_time)
                .map_err(record::RecordError::from)?;
            record.tracking_run_id = Some(parent.run_id().to_string());
            session.store.save_sweep(&record)?;
            Some(parent)
        }
        None => None,
    };
    let pool =
        pool::Pool { opts, session: &session, tracking: tracking.as_ref(), parent: parent.as_ref(), grid: &grid };
    let record = pool.run(record, on_event)?;
    if let Some(parent) = &parent {
        let status = match record.state {
            SweepState::Finished => RunStatus::Finished,
            SweepState::Killed => RunStatus::Killed,
            SweepState::Failed | SweepState::Running => RunStatus::Failed,
        };
        if let Err(e) = parent.finish(status.name(), record.end_time.unwrap_or_else(now_ms)) {
            ui::warn(&format!("the sweep's run on the tracking server was not ended: {e}"));
        }
    }
    let exit_code = match record.state {
        SweepState::Finished => 0,
        SweepState::Killed => 128 + session.interrupts.received().unwrap_or(libc::SIGINT),
        SweepState::Failed | SweepState::Running => 1,
    };
    Ok(SweepOutcome { record, exit_code })
}
