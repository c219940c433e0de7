//! `lockstep verify`: re-run a recorded run from its exact source and its recorded
//! environment, in isolation, and compare the outputs file by file, and what the script
//! logged metric by metric and artifact by artifact; say why they differ (a [`Cause`]);
//! with `--repeat`, find what varies between repetitions, and with `--isolate`, which pinned
//! factor makes it stable.
//!
//! A composition of the pipeline: the source is rebuilt (`source::rebuild`), the environment
//! comes from the lock (`env::from_lock`), the recorded entry point and parameters (in their
//! recorded order) are planned on it, and each re-run is an ordinary run whose record points
//! to the run it verifies.

mod cause;
mod check;
mod isolate;
mod repeat;
mod rerun;

use std::path::PathBuf;

use serde::Serialize;

use super::compare::{CompareError, CompareRules, FileCheck, MetricCheck};
use crate::commands::CommandError as Error;
use crate::exec::Echo;
use crate::pipeline::{self, FoundRun, Session};
use crate::record::{RunRecord, RunStatus};
use crate::support::error_class::ErrorClass;
use crate::support::ids::{RunId, random_hex};
use crate::support::ui;

pub use cause::{Cause, InputChange, InputPart};
use check::Checked;
pub use isolate::{Factor, FactorTrial, Isolation};
pub use repeat::{Repetitions, Varying};
use rerun::Pins;

/// Re-runs `verify` makes at most unless `--max-runs` says otherwise.
pub const DEFAULT_MAX_RUNS: usize = 20;

/// Errors of verify's own input.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// `--ignore` or `--rtol` is not valid.
    #[error(transparent)]
    Compare(#[from] CompareError),
    /// `--repeat` or `--max-runs` is 0.
    #[error("--{option} must be at least 1")]
    NoRuns {
        /// The option.
        option: &'static str,
    },
    /// The rebuilt project renders another command from the recorded parameters than the
    /// one the run ran (a record made before the parameters' order was kept, a relative path
    /// resolved in another directory, a project changed in a way its tree hash does not show).
    #[error("the re-run of run {run_id} would run `{now}`, not the recorded `{recorded}`")]
    CommandChanged {
        /// The run.
        run_id: RunId,
        /// The command the run ran.
        recorded: String,
        /// The command the re-run would run.
        now: String,
    },
}

impl VerifyError {
    /// Who has to act: always the user.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::User
    }
}

/// What to verify and how to compare.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// A run id (or prefix), a `record.json` file, or an archive made by `pack --run`.
    pub target: String,
    /// Globs of output paths, artifact paths and metric names to leave out of the comparison.
    pub ignore: Vec<String>,
    /// Relative tolerance for logged metrics and for numbers in JSON and CSV outputs and artifacts.
    pub rtol: Option<f64>,
    /// A local project directory to use instead of the recorded one.
    pub source_dir: Option<PathBuf>,
    /// The store (where the verification run is recorded, and where run ids are looked up).
    pub store: PathBuf,
    /// Where the re-run's stdout goes.
    pub echo: Echo,
    /// The caller's working directory.
    pub caller_dir: PathBuf,
    /// Compute the evidence of each kind of file that differs (`--explain`).
    pub explain: bool,
    /// Re-runs without anything pinned (`--repeat N`, at least 1).
    pub repeat: usize,
    /// When outputs vary between repetitions, re-run with one factor pinned at a time.
    pub isolate: bool,
    /// Re-runs at most, repetitions and isolation together.
    pub max_runs: usize,
    /// `--no-keep-outputs`, `--keep-limit`: which of the re-run's outputs the store keeps.
    pub keep_outputs: crate::record::KeepOutputs,
}

/// Whether a run was reproduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every output not ignored is identical, or equal within `--rtol`.
    Reproduced,
    /// Some output differs, is missing or is extra.
    Differs,
    /// The re-run did not finish.
    Failed,
}

impl Verdict {
    /// The name in records and `--json` output.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::Differs => "differs",
            Verdict::Failed => "failed",
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The run verified.
    pub run_id: RunId,
    /// The verification run shown: the first re-run that differs, else the first.
    pub verification_run_id: RunId,
    /// The verdict: reproduced only when every repetition is.
    pub result: Verdict,
    /// The re-run's status.
    pub rerun_status: RunStatus,
    /// The re-run's exit code.
    pub rerun_exit_code: Option<i32>,
    /// Every output of either run.
    pub files: Vec<FileCheck>,
    /// Every metric either run's script logged (its own and its nested runs').
    pub metrics: Vec<MetricCheck>,
    /// Every artifact and model file either run's script logged.
    pub artifacts: Vec<FileCheck>,
    /// Why the outputs differ (when they do).
    pub cause: Option<Cause>,
    /// The repetitions (`--repeat` above 1, or `--isolate`).
    pub repetitions: Option<Repetitions>,
    /// What pinning each factor did (`--isolate`).
    pub isolation: Option<Isolation>,
}

impl VerifyReport {
    /// 0 when reproduced, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.result == Verdict::Reproduced { 0 } else { 1 }
    }
}

/// Verify a run.
pub fn verify(opts: &VerifyOptions) -> Result<VerifyReport, Error> {
    let rules = CompareRules::new(&opts.ignore, opts.rtol).map_err(VerifyError::from)?.explaining(opts.explain);
    for (option, value) in [("repeat", opts.repeat), ("max-runs", opts.max_runs)] {
        if value == 0 {
            return Err(VerifyError::NoRuns { option }.into());
        }
    }
    let session = Session::open(&opts.store)?;
    let found = pipeline::lookup(&opts.target, &session.store, &opts.caller_dir)?;
    // The recorded directory is hashed and copied only when neither an archive nor
    // --source-dir stands in for it.
    if found.archive().is_none() && opts.source_dir.is_none() {
        found.check_recorded_project()?;
    }
    let original = &found.record;
    // Variation needs two repetitions to show; each factor gets as many as the repetitions.
    let repeat = if opts.isolate { opts.repeat.max(2) } else { opts.repeat };
    let planned = |gpu: bool| repeat + if opts.isolate { Factor::all(gpu).len() * repeat } else { 0 };
    let total = planned(!original.host.gpus.is_empty()).min(opts.max_runs);
    let mut runs = Runs { found: &found, opts, session: &session, rules: &rules, done: 0, total };
    let mut checked: Vec<Checked> = Vec::new();
    while checked.len() < repeat && runs.left() > 0 {
        let one = runs.run("", &Pins::default())?;
        let failed = one.result == Verdict::Failed;
        checked.push(one);
        if failed {
            break;
        }
    }
    let records: Vec<RunRecord> = checked.iter().map(|c| c.record.clone()).collect();
    let varying = repeat::varying(&records);
    // cuBLAS is a factor where the re-runs found a GPU.
    let gpu = records.iter().any(|r| !r.host.gpus.is_empty());
    runs.total = planned(gpu).min(opts.max_runs);
    let repetitions = (repeat > 1)
        .then(|| Repetitions { runs: records.iter().map(|r| r.run_id.clone()).collect(), varying: varying.clone() });
    let isolation = match opts.isolate {
        true => Some(isolate_factors(&mut runs, &Factor::all(gpu), repeat, !varying.is_empty())?),
        false => None,
    };
    let result = if checked.iter().any(|c| c.result == Verdict::Failed) {
        Verdict::Failed
    } else if checked.iter().all(|c| c.result == Verdict::Reproduced) {
        Verdict::Reproduced
    } else {
        Verdict::Differs
    };
    let shown = checked.iter().position(|c| c.result != Verdict::Reproduced).unwrap_or(0);
    let shown = checked.swap_remove(shown);
    let cause = (result == Verdict::Differs)
        .then(|| cause::explain(original, &shown.record, varying.iter().map(|v| v.name.clone()).collect()));
    Ok(VerifyReport {
        run_id: original.run_id.clone(),
        verification_run_id: shown.record.run_id.clone(),
        result,
        rerun_status: shown.record.status,
        rerun_exit_code: shown.record.exit_code,
        files: shown.files,
        metrics: shown.logged.metrics,
        artifacts: shown.logged.artifacts,
        cause,
        repetitions,
        isolation,
    })
}

/// Re-run with each factor pinned in turn while `--max-runs` allows, when something varied.
fn isolate_factors(runs: &mut Runs, factors: &[Factor], repeat: usize, varied: bool) -> Result<Isolation, Error> {
    let mut isolation = Isolation { trials: Vec::new(), stabilising: Vec::new(), untried: Vec::new() };
    for &factor in factors {
        if !varied || runs.left() < repeat {
            isolation.untried.push(factor);
            continue;
        }
        let pins = factor.pins(&runs.found.record, &runs.session.store);
        let mut pinned = Vec::new();
        for _ in 0..repeat {
            pinned.push(runs.run(&format!(", {} pinned", factor_label(factor)), &pins)?);
        }
        let records: Vec<RunRecord> = pinned.iter().map(|c| c.record.clone()).collect();
        let varying: Vec<String> = repeat::varying(&records).into_iter().map(|v| v.name).collect();
        let finished = records.iter().all(|r| r.status == RunStatus::Finished);
        let stable = finished && varying.is_empty();
        if stable {
            isolation.stabilising.push(factor);
        }
        let runs = records.iter().map(|r| r.run_id.clone()).collect();
        isolation.trials.push(FactorTrial { factor, runs, stable, varying });
    }
    Ok(isolation)
}

/// The factor's name on the progress line.
fn factor_label(factor: Factor) -> &'static str {
    match factor {
        Factor::Threads => "threads",
        Factor::HashSeed => "PYTHONHASHSEED",
        Factor::CublasWorkspace => "CUBLAS_WORKSPACE_CONFIG",
        Factor::TimeAndLocale => "time and locale",
        Factor::WorkingDirectory => "working directory",
    }
}

/// The re-runs of one verification, counted against `--max-runs`.
struct Runs<'a> {
    found: &'a FoundRun,
    opts: &'a VerifyOptions,
    session: &'a Session,
    rules: &'a CompareRules,
    done: usize,
    total: usize,
}

impl Runs<'_> {
    /// Re-runs `--max-runs` still allows.
    fn left(&self) -> usize {
        self.opts.max_runs - self.done
    }

    /// One re-run, announced on the progress line, checked against the original.
    fn run(&mut self, label: &str, pins: &Pins) -> Result<Checked, Error> {
        self.done += 1;
        let run_id = RunId::from(random_hex(16));
        match self.done {
            1 if self.total == 1 => {
                ui::note(&format!("verifying run {} by re-running it as run {run_id}", self.found.record.run_id))
            }
            1 => ui::note(&format!(
                "verifying run {} by re-running it as run {run_id} (re-run 1 of {})",
                self.found.record.run_id, self.total
            )),
            _ => ui::note(&format!("verify: re-run {} of {} as run {run_id}{label}", self.done, self.total)),
        }
        let record = rerun::rerun(self.found, self.opts, self.session, run_id, pins)?;
        check::check(self.found, record, self.rules, self.session)
    }
}
