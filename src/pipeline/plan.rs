//! Planning a run: every check that can be made before the run is recorded, from a resolved
//! source to the command and the environment.

use crate::support::digest;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::RunError;
use crate::commands::CommandError as Error;
use crate::env::{self, DockerFlags, DockerPlan, EnvManager, Environment, PrepareContext, PreparedEnv};
use crate::manifest::{self, EntryPoint, EnvSpec, Manifest, ManifestError, ParamArgs, ParamValue};
use crate::record::{self, ArtifactSources, InputDigest, PendingRun, Store};
use crate::source::{self, Exclusions, ResolvedSource};
use crate::support::cache::{Cache, CacheBucket, KeyLock};
use crate::support::http;
use crate::support::ids::RunId;
use crate::support::ui;

/// How a run's environment is chosen, with the Docker flags for docker_env projects.
pub enum EnvChoice<'a> {
    /// From the project's spec, or this manager.
    Select(Option<EnvManager>, &'a DockerFlags),
    /// This one (rebuilt from a lock, say).
    Given(Box<dyn Environment>, DockerFlags),
}

/// What to run in a resolved source.
pub struct RunSpec<'a> {
    /// The entry point's name (or a script's file name).
    pub entry_point: &'a str,
    /// The parameters, in the order given: undeclared ones reach the command in this order.
    pub params: &'a ParamArgs,
    /// The directory relative path parameters are resolved against.
    pub caller_dir: &'a Path,
    /// The environment.
    pub env: EnvChoice<'a>,
    /// Where `path` parameters given as MLflow artifact URIs are fetched from.
    pub artifacts: ArtifactSources<'a>,
}

/// A run that passed every check and can start: its directory exists, its record does not.
pub struct Planned {
    /// The run's directory, removed again unless the run starts.
    pub pending: PendingRun,
    /// The project's files.
    pub src: ResolvedSource,
    /// The MLproject's `name`, if it has one.
    pub project_name: Option<String>,
    /// The entry point.
    pub entry_point: EntryPoint,
    /// The parameter values as given or defaulted (what the record stores).
    pub parameters: BTreeMap<String, String>,
    /// The parameters' names in the order they were bound (see `RunRecord::parameter_order`).
    pub parameter_order: Vec<String>,
    /// The command line to run.
    pub command: String,
    /// The command's text around the values that name this run's own directories (a path
    /// parameter resolved in the project, a download): another run of the same entry point
    /// and parameters renders the same pieces, with its own directories between them.
    pub(super) command_pieces: Vec<String>,
    /// The environment.
    pub environment: Box<dyn Environment>,
    /// The environment, when it is prepared before the run starts.
    pub prepared: Option<Box<dyn PreparedEnv>>,
    /// The `path` inputs outside the project, hashed.
    pub inputs: Vec<InputDigest>,
    /// The run this one verifies.
    pub verifies: Option<RunId>,
    /// The lock of the project directory, held by a run in place.
    pub in_place: Option<KeyLock>,
}

/// Refuse a store that is a local project's directory or one of its parents (`--store .`):
/// the project's walk leaves the store out, so it would hash as an empty tree. A store inside
/// the project (the default `./.lockstep`) is left out of it and fine.
pub fn check_store_outside(store: &Store, uri: &str, caller_dir: &Path) -> Result<(), Error> {
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
pub fn lock_in_place(cache: &Cache, dir: &Path) -> Result<KeyLock, Error> {
    let key = digest::sha256_hex(dir.as_os_str().as_encoded_bytes());
    cache.try_lock(CacheBucket::InPlace, &key)?.ok_or_else(|| RunError::InPlaceBusy { dir: dir.to_path_buf() }.into())
}

/// Stands in for a value naming the run's own directories when the command's pieces are
/// rendered: no argument, path or URL holds a NUL.
const OWN_DIR_VALUE: &str = "\0";

/// The checks on a resolved source: manifest, entry point, parameters (with path checks and
/// downloads), command, environment.
pub fn plan(pending: PendingRun, src: ResolvedSource, spec: RunSpec<'_>) -> Result<Planned, Error> {
    let RunSpec { entry_point, params, caller_dir, env, artifacts } = spec;
    let manifest = Manifest::load(&src.project_dir)?;
    for w in &manifest.warnings {
        ui::warn(w);
    }
    let entry_point = manifest.entry_point(entry_point, &src.project_dir)?;
    let bound = manifest::bind_parameters(&entry_point, params)?;
    let mut values = BTreeMap::new();
    let mut masked = BTreeMap::new();
    let mut extra = Vec::new();
    let mut parameters = BTreeMap::new();
    let mut parameter_order = Vec::with_capacity(bound.len());
    let mut inputs = Vec::new();
    for p in &bound {
        parameters.insert(p.name.clone(), p.raw.clone());
        parameter_order.push(p.name.clone());
        let (value, own_dir) = match &p.value {
            ParamValue::Plain(v) => (v.clone(), false),
            ParamValue::LocalPath { path, from_project } => {
                let base = if *from_project { src.project_dir.as_path() } else { caller_dir };
                let abs = std::path::absolute(base.join(path)).unwrap_or_else(|_| base.join(path));
                if !abs.exists() {
                    let in_project = (!*from_project && path.is_relative())
                        .then(|| src.project_dir.join(path))
                        .filter(|candidate| candidate.exists());
                    return Err(ManifestError::PathNotFound {
                        name: p.name.clone(),
                        path: abs,
                        given: !*from_project,
                        in_project,
                    }
                    .into());
                }
                // What is inside the project is in its tree hash already.
                if !abs.starts_with(&src.project_dir) {
                    inputs.extend(super::inputs::digest_input(&p.name, &abs, &abs.to_string_lossy())?);
                }
                (abs.to_string_lossy().into_owned(), *from_project)
            }
            ParamValue::Url(url) => {
                ui::note(&format!("downloading {url}"));
                let dir = pending.dir().input(&p.name);
                let file = http::download(url, &dir)?;
                inputs.extend(super::inputs::digest_input(&p.name, &file, url)?);
                (file.to_string_lossy().into_owned(), true)
            }
            ParamValue::Artifact(uri) => {
                ui::note(&format!("fetching {uri}"));
                let dir = pending.dir().input(&p.name);
                let fetched = record::fetch_artifact(uri, artifacts, &dir).map_err(record::RecordError::from)?;
                inputs.extend(super::inputs::digest_input(&p.name, &fetched, uri)?);
                (fetched.to_string_lossy().into_owned(), true)
            }
        };
        if p.declared {
            masked.insert(p.name.clone(), if own_dir { OWN_DIR_VALUE.to_string() } else { value.clone() });
            values.insert(p.name.clone(), value);
        } else {
            extra.push((p.name.clone(), value));
        }
    }
    let command = manifest::render_command(&entry_point, &values, &extra)?;
    let command_pieces = match masked == values {
        true => vec![command.clone()],
        false => pieces(&manifest::render_command(&entry_point, &masked, &extra)?),
    };
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
        project_name: manifest.name.clone(),
        entry_point,
        parameters,
        parameter_order,
        command,
        command_pieces,
        environment,
        prepared: None,
        inputs,
        verifies: None,
        in_place: None,
    })
}

/// A command rendered with [`OWN_DIR_VALUE`]s, cut around them (and the quotes that
/// rendering put around them, which a directory's path may or may not need).
fn pieces(rendered: &str) -> Vec<String> {
    let mut out: Vec<String> = rendered.split(OWN_DIR_VALUE).map(str::to_string).collect();
    let last = out.len() - 1;
    for (i, piece) in out.iter_mut().enumerate() {
        if i > 0 && piece.starts_with('\'') {
            piece.remove(0);
        }
        if i < last && piece.ends_with('\'') {
            piece.pop();
        }
    }
    out
}

impl Planned {
    /// Build a virtualenv or conda environment now, before the run exists, so that a spec
    /// that cannot be built is bad input that leaves no run; for Docker, have the base image
    /// (pulled if need be): an image that cannot be pulled leaves no run either. (The project
    /// image builds after the record: a failed image build is a FAILED run, with its logs;
    /// `local` has nothing to build.)
    pub fn prepare_before_start(&mut self, cache: &Cache, exclusions: &Exclusions) -> Result<(), Error> {
        if matches!(self.environment.manager(), EnvManager::Virtualenv | EnvManager::Uv | EnvManager::Conda) {
            let ctx = PrepareContext { project_dir: &self.src.project_dir, exclusions, cache };
            self.prepared = Some(self.environment.prepare(ctx)?);
        }
        if let Some(docker) = self.environment.as_docker() {
            docker.ensure_base_image().map_err(env::EnvError::from)?;
        }
        Ok(())
    }

    /// Whether `command` (another run's) is this run's command, but for the values that name
    /// each run's own directories.
    pub fn renders(&self, command: &str) -> bool {
        fits(&self.command_pieces, command)
    }
}

/// Whether `command` is `pieces` with anything between them.
fn fits(pieces: &[String], command: &str) -> bool {
    let [first, middle @ .., last] = pieces else {
        return pieces.first().is_some_and(|only| only == command);
    };
    let Some(mut rest) = command.strip_prefix(first.as_str()).and_then(|r| r.strip_suffix(last.as_str())) else {
        return false;
    };
    for piece in middle {
        match rest.find(piece.as_str()) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_directories_are_cut_out_of_the_command_with_their_quotes() {
        let rendered = "python train.py --data '\0' --out \0 --lr 0.1";
        assert_eq!(pieces(rendered), ["python train.py --data ", " --out ", " --lr 0.1"]);
        let p = pieces(rendered);
        assert!(fits(&p, "python train.py --data /a/b --out '/my dir/x' --lr 0.1"));
        assert!(!fits(&p, "python train.py --data /a/b --out /x --lr 0.2"), "a plain value differs");
        assert!(!fits(&p, "python train.py --out /x --data /a/b --lr 0.1"), "the order differs");
        assert!(fits(&pieces("sh run.sh --note a --lr 0.1"), "sh run.sh --note a --lr 0.1"));
        assert!(!fits(&pieces("sh run.sh --note a --lr 0.1"), "sh run.sh --lr 0.1 --note a"));
    }
}
