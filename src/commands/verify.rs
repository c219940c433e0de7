//! `lockstep verify`: re-run a recorded run from its exact source and its recorded
//! environment, in isolation, and compare the outputs file by file, and what the script
//! logged metric by metric and artifact by artifact.
//!
//! A composition of the pipeline: the source is rebuilt (`source::rebuild`), the environment
//! comes from the lock (`env::from_lock`), the recorded entry point and parameters (in their
//! recorded order) are planned on it, and the re-run is an ordinary run whose record points to
//! the run it verifies. Its command must be the recorded one.

use crate::support::ids::{RunId, random_hex};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::compare::{self, CompareError, CompareRules, Comparison, FileCheck, MetricCheck, RunFiles};
use crate::commands::CommandError as Error;
use crate::env::{self, DockerFlags};
use crate::exec::Echo;
use crate::manifest::{Manifest, ParamArgs};
use crate::pipeline::{self, EnvChoice, Execution, FoundRun, Planned, RunSpec, Session};
use crate::record::{ComparedCounts, MetricDifference, RunRecord, RunStatus, VerificationSummary};
use crate::source::{self, RebuildRequest, ResolvedSource, SourceKind, SourceRequest};
use crate::support::error_class::ErrorClass;
use crate::support::ids::short;
use crate::support::ui;

/// Errors of verify's own input.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// `--ignore` or `--rtol` is not valid.
    #[error(transparent)]
    Compare(#[from] CompareError),
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
    /// The verification run.
    pub verification_run_id: RunId,
    /// The verdict.
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
}

impl VerifyReport {
    /// 0 when reproduced, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.result == Verdict::Reproduced { 0 } else { 1 }
    }
}

/// Verify a run.
pub fn verify(opts: &VerifyOptions) -> Result<VerifyReport, Error> {
    let rules = CompareRules::new(&opts.ignore, opts.rtol).map_err(VerifyError::from)?;
    let session = Session::open(&opts.store)?;
    let found = pipeline::lookup(&opts.target, &session.store, &opts.caller_dir)?;
    // The recorded directory is hashed and copied only when neither an archive nor
    // --source-dir stands in for it.
    if found.archive().is_none() && opts.source_dir.is_none() {
        found.check_recorded_project()?;
    }
    let original = &found.record;
    let run_id = RunId::from(random_hex(16));
    let planned = session.checked(plan_rerun(&found, opts, &session, &run_id))?;
    ui::note(&format!("verifying run {} by re-running it as run {run_id}", original.run_id));
    let how = Execution {
        run_id,
        run_name: Some(format!("verify {}", short(&original.run_id))),
        experiment_name: original.experiment_name.clone(),
        // Never a server: the re-run logs to its own endpoint, whose variables replace the
        // caller's MLFLOW_TRACKING_URI, so that a verification leaves no stray run anywhere.
        tracking: None,
        echo: opts.echo,
        caller_dir: &opts.caller_dir,
        keep_processes: false,
        sweep: None,
        variables: Vec::new(),
        keep_outputs: opts.keep_outputs,
    };
    let mut rerun = pipeline::execute(planned, how, &session)?.record;
    let files = compare::compare(original, &rerun, &session.store.objects(), &rules);
    let rerun_dir = session.store.run_dir(&rerun.run_id);
    let logged = compare::compare_logged(
        RunFiles { record: original, dir: found.run_dir().as_ref().map(|d| d.path()) },
        RunFiles { record: &rerun, dir: Some(rerun_dir.path()) },
        &rules,
    );
    let matches = files.iter().map(|f| f.result).chain(logged.metrics.iter().map(|m| m.result));
    let matches = matches.chain(logged.artifacts.iter().map(|f| f.result)).all(Comparison::matches);
    let result = if rerun.status != RunStatus::Finished {
        Verdict::Failed
    } else if matches {
        Verdict::Reproduced
    } else {
        Verdict::Differs
    };
    let file_counts = counts(files.iter().map(|f| f.result));
    let tracked = original.logged.is_some() || rerun.logged.is_some();
    rerun.verification = Some(VerificationSummary {
        result: result.name().to_string(),
        identical: file_counts.identical,
        differs: file_counts.differs,
        missing: file_counts.missing,
        extra: file_counts.extra,
        ignored: file_counts.ignored,
        metrics: tracked.then(|| counts(logged.metrics.iter().map(|m| m.result))),
        artifacts: tracked.then(|| counts(logged.artifacts.iter().map(|f| f.result))),
        metric_differences: logged
            .metrics
            .iter()
            .filter(|m| !m.result.matches())
            .map(|m| MetricDifference { key: m.key.clone(), original: m.original, rerun: m.rerun })
            .collect(),
    });
    session.store.save(&rerun)?;
    Ok(VerifyReport {
        run_id: original.run_id.clone(),
        verification_run_id: rerun.run_id.clone(),
        result,
        rerun_status: rerun.status,
        rerun_exit_code: rerun.exit_code,
        files,
        metrics: logged.metrics,
        artifacts: logged.artifacts,
    })
}

/// How many items compared which way.
fn counts(results: impl Iterator<Item = Comparison>) -> ComparedCounts {
    let mut c = ComparedCounts::default();
    for r in results {
        match r {
            Comparison::Identical | Comparison::WithinTolerance => c.identical += 1,
            Comparison::Differs => c.differs += 1,
            Comparison::Missing => c.missing += 1,
            Comparison::Extra => c.extra += 1,
            Comparison::Ignored => c.ignored += 1,
        }
    }
    c
}

/// The re-run: the rebuilt source, the recorded environment, entry point and parameters.
fn plan_rerun(found: &FoundRun, opts: &VerifyOptions, session: &Session, run_id: &str) -> Result<Planned, Error> {
    let original = &found.record;
    let pending = session.store.create_run(run_id)?;
    let workdir = pending.dir().work();
    let src = match found.archive() {
        Some(path) => rebuild_from_archive(path, original, &opts.caller_dir, session, &workdir)?,
        None => {
            let outputs: Vec<String> = original.outputs.iter().map(|o| o.path.clone()).collect();
            let patch = found.run_dir().map(|d| d.dirty_patch());
            let request = RebuildRequest {
                info: &original.source,
                outputs: &outputs,
                in_place: original.source.path.as_ref() == Some(&original.outputs_dir),
                patch: patch.as_deref(),
                local_dir: opts.source_dir.as_deref(),
                caller_dir: &opts.caller_dir,
                exclusions: &session.exclusions,
            };
            source::rebuild(&request, &session.cache, &workdir)?
        }
    };
    let params = recorded_params(original, &src.project_dir)?;
    let caller_dir = original.cwd.clone().filter(|d| d.is_dir()).unwrap_or_else(|| opts.caller_dir.clone());
    let spec = RunSpec {
        entry_point: &original.entry_point,
        params: &params,
        caller_dir: &caller_dir,
        env: EnvChoice::Given(env::from_lock(&original.environment)?, DockerFlags::of_lock(&original.environment)),
    };
    let mut planned = pipeline::plan(pending, src, spec)?;
    if !planned.renders(&original.command) {
        return Err(VerifyError::CommandChanged {
            run_id: original.run_id.clone(),
            recorded: original.command.clone(),
            now: planned.command.clone(),
        }
        .into());
    }
    planned.prepare_before_start(&session.cache, &session.exclusions)?;
    planned.verifies = Some(original.run_id.clone());
    Ok(planned)
}

/// The source of a packed archive, which must be the tree the recorded run ran on.
fn rebuild_from_archive(
    archive: &Path,
    original: &RunRecord,
    caller_dir: &Path,
    session: &Session,
    workdir: &Path,
) -> Result<ResolvedSource, Error> {
    let uri = archive.to_string_lossy();
    let request =
        SourceRequest { uri: &uri, version: None, isolated: true, caller_dir, exclusions: session.exclusions.clone() };
    let src = source::resolve(&request, &session.cache, workdir)?;
    let expected = match (original.source.kind, &original.source.input_tree_sha256) {
        (SourceKind::Local, Some(input)) => input,
        _ => &original.source.tree_sha256,
    };
    if &src.info.tree_sha256 != expected {
        return Err(source::SourceError::Changed {
            detail: format!(
                "the archive's files hash to {}, the run's to {}",
                short(&src.info.tree_sha256),
                short(expected)
            ),
        }
        .into());
    }
    Ok(src)
}

/// The recorded parameters, in their recorded order (undeclared ones reach the command in
/// it); values equal to the entry point's default are left to the default, so that a default
/// path resolves in the rebuilt project.
fn recorded_params(original: &RunRecord, project_dir: &Path) -> Result<ParamArgs, Error> {
    let manifest = Manifest::load(project_dir)?;
    let defaults = manifest.entry_point(&original.entry_point, project_dir).map(|ep| ep.parameters).unwrap_or_default();
    let names: Vec<&String> = match original.parameter_order.is_empty() {
        true => original.parameters.keys().collect(),
        false => original.parameter_order.iter().collect(),
    };
    let pairs = names
        .into_iter()
        .filter_map(|name| original.parameters.get_key_value(name))
        .filter(|(name, value)| {
            !defaults.iter().any(|p| &p.name == *name && p.default.as_deref() == Some(value.as_str()))
        })
        .map(|(name, value)| (name.clone(), value.clone()));
    Ok(ParamArgs::from_pairs(pairs)?)
}
