//! One re-run of a recorded run: its source rebuilt, its environment from the lock, its
//! recorded entry point and parameters (in their recorded order), and what `--isolate` pins
//! (variables, a fixed working directory). Its command must be the recorded one.

use std::fs;
use std::path::{Path, PathBuf};

use super::{VerifyError, VerifyOptions};
use crate::commands::CommandError as Error;
use crate::env::{self, DockerFlags};
use crate::manifest::{Manifest, ParamArgs};
use crate::pipeline::{self, EnvChoice, Execution, FoundRun, Planned, RunSpec, Session};
use crate::record::{ArtifactSources, RunRecord};
use crate::source::{self, RebuildRequest, ResolvedSource, SourceKind, SourceRequest};
use crate::support::ids::{RunId, short};

/// What a re-run is given besides the recorded run: pinned variables, and the directory it
/// works in when that is pinned too.
#[derive(Debug, Clone, Default)]
pub(super) struct Pins {
    /// Variables the entry point gets (`PYTHONHASHSEED=0`).
    pub(super) variables: Vec<(String, String)>,
    /// The working directory, instead of the run's own `work/`.
    pub(super) workdir: Option<PathBuf>,
}

/// Re-run the recorded run once, as a run of the store that verifies it.
pub(super) fn rerun(
    found: &FoundRun,
    opts: &VerifyOptions,
    session: &Session,
    run_id: RunId,
    pins: &Pins,
) -> Result<RunRecord, Error> {
    let original = &found.record;
    if let Some(dir) = &pins.workdir {
        // Left by a verification that was stopped.
        remove_pinned(dir);
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).map_err(crate::record::RecordError::io(parent))?;
        }
    }
    let planned = session.checked(plan_rerun(found, opts, session, &run_id, pins.workdir.as_deref()));
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
        variables: pins.variables.clone(),
        keep_outputs: opts.keep_outputs,
    };
    let outcome = planned.and_then(|planned| pipeline::execute(planned, how, session));
    if let Some(dir) = &pins.workdir {
        remove_pinned(dir);
    }
    Ok(outcome?.record)
}

fn remove_pinned(dir: &Path) {
    if dir.exists()
        && let Err(e) = fs::remove_dir_all(dir)
    {
        crate::support::ui::warn(&format!("could not remove {}: {e}", dir.display()));
    }
}

/// The re-run: the rebuilt source, the recorded environment, entry point and parameters.
fn plan_rerun(
    found: &FoundRun,
    opts: &VerifyOptions,
    session: &Session,
    run_id: &str,
    pinned_dir: Option<&Path>,
) -> Result<Planned, Error> {
    let original = &found.record;
    let pending = session.store.create_run(run_id)?;
    let workdir = pinned_dir.map_or_else(|| pending.dir().work(), Path::to_path_buf);
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
        // The re-run never talks to the caller's tracking server: an artifact URI is
        // fetched from the store.
        artifacts: ArtifactSources { store: &session.store, tracking: None },
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
