//! Python virtualenvs: made by uv when it is on PATH (`virtualenv`, `uv`), else by
//! `python -m venv` and pip (`virtualenv`). Requirements are resolved into an exact list
//! with artifact hashes (uv: `pip compile` to a pylock.toml; pip: `--report`), installed,
//! and recorded as the lock.

mod inspect;
mod install;
mod interpreter;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::cache::{self, BuildOutput};
use super::lock::{EnvLock, PyPackage, current_platform, normalize_name};
use super::requirements::{Requirements, read_requirements};
use super::spec::{self, PythonEnvSpec};
use super::tool::find_on_path;
use super::{EnvError, EnvManager, Environment, PrepareContext, PreparedEnv};
use crate::manifest::EnvSpec;
use crate::support::cache::content_key;
use crate::support::progress::Progress;
use crate::support::ui;

use crate::support::ids::EnvKey;
use inspect::pylock_artifacts;
pub use inspect::{Artifacts, installed_packages};
use install::{base_interpreter, create_venv, finish, uv_install, uv_resolve, write_input};
pub use install::{install_locked, install_requirements, installer_version};

/// The layout version of Python environments: part of every key. 2: byte code compiled at
/// build time; 3: the installer (uv or pip) left out of the key.
const LAYOUT: u32 = 3;

/// Where a Python environment's requirements come from.
#[derive(Debug, Clone)]
pub enum PythonSource {
    /// The project's environment (python_env, a conda file converted, or none).
    Spec {
        /// The environment spec of the manifest.
        spec: EnvSpec,
        /// The project, where its files are.
        project_dir: PathBuf,
    },
    /// A recorded lock: exactly those packages.
    Lock(Box<EnvLock>),
}

/// The installer that builds a virtualenv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installer {
    /// uv, at this path.
    Uv(PathBuf),
    /// `python -m venv` and pip.
    Pip,
}

impl Installer {
    /// The installer for `manager`: uv when available (required for `uv`), else pip.
    pub fn for_manager(manager: EnvManager) -> Result<Installer, EnvError> {
        match (find_on_path("uv"), manager) {
            (Some(uv), _) => Ok(Installer::Uv(uv)),
            (None, EnvManager::Uv) => Err(EnvError::ToolMissing {
                tool: "uv",
                hint:
                    "install it (pip install uv), or use --env-manager virtualenv to build with python -m venv and pip"
                        .into(),
            }),
            (None, _) => Ok(Installer::Pip),
        }
    }

    /// `uv` or `pip`.
    pub fn name(&self) -> &'static str {
        match self {
            Installer::Uv(_) => "uv",
            Installer::Pip => "pip",
        }
    }
}

/// A virtualenv for a project or a lock, not yet prepared.
#[derive(Debug, Clone)]
pub struct PythonEnvironment {
    /// `virtualenv` or `uv`.
    pub manager: EnvManager,
    /// What to install.
    pub source: PythonSource,
}

/// What decides a virtualenv: hashed into its key. Not the installer: uv and pip install the
/// same spec alike, and installing uv must not make every environment new (the lock records
/// which one built it).
#[derive(Serialize)]
struct PythonKey<'a> {
    layout: u32,
    manager: &'a str,
    python: Option<&'a str>,
    build_dependencies: KeyRequirements<'a>,
    dependencies: KeyRequirements<'a>,
    locked: Option<&'a [PyPackage]>,
    platform: &'a str,
}

#[derive(Serialize)]
struct KeyRequirements<'a> {
    lines: &'a [String],
    files: &'a BTreeMap<String, String>,
}

/// A parsed and expanded Python environment request.
struct Request {
    python: Option<String>,
    build: Requirements,
    deps: Requirements,
    /// The lines as written, for the key (paths in `build`/`deps` are absolute).
    written: (Vec<String>, Vec<String>),
    label: String,
}

/// What a virtualenv will be built from, with its key.
enum Plan<'a> {
    Request(Request),
    Lock(&'a EnvLock),
}

impl PythonEnvironment {
    /// The installer, what to install and the key. `warn`: show the spec's warnings.
    fn plan(&self, warn: bool) -> Result<(Installer, Plan<'_>, String), EnvError> {
        let installer = Installer::for_manager(self.manager)?;
        let platform = current_platform();
        let empty = BTreeMap::new();
        let (plan, key) = match &self.source {
            PythonSource::Spec { spec, project_dir } => {
                let request = read_request(spec, project_dir, warn)?;
                let key = content_key(&PythonKey {
                    layout: LAYOUT,
                    manager: self.manager.name(),
                    python: request.python.as_deref(),
                    build_dependencies: KeyRequirements { lines: &request.written.0, files: &request.build.files },
                    dependencies: KeyRequirements { lines: &request.written.1, files: &request.deps.files },
                    locked: None,
                    platform,
                });
                (Plan::Request(request), key)
            }
            PythonSource::Lock(lock) => {
                let key = content_key(&PythonKey {
                    layout: LAYOUT,
                    manager: self.manager.name(),
                    python: lock.python.as_ref().map(|p| p.version.as_str()),
                    build_dependencies: KeyRequirements { lines: &[], files: &empty },
                    dependencies: KeyRequirements { lines: &[], files: &empty },
                    locked: Some(&lock.packages),
                    platform,
                });
                (Plan::Lock(lock), key)
            }
        };
        Ok((installer, plan, key))
    }
}

impl Environment for PythonEnvironment {
    fn manager(&self) -> EnvManager {
        self.manager
    }

    fn key(&self) -> Option<EnvKey> {
        self.plan(false).ok().map(|(_, _, key)| key.into())
    }

    fn installer(&self) -> Option<&'static str> {
        Installer::for_manager(self.manager).ok().map(|i| i.name())
    }

    fn prepare(&self, ctx: PrepareContext) -> Result<Box<dyn PreparedEnv>, EnvError> {
        let (installer, plan, key) = self.plan(true)?;
        if let Plan::Lock(lock) = &plan
            && let Some(built) = cache::find_same_install(ctx.cache, self.manager, lock)?
        {
            return Ok(Box::new(built));
        }
        let built = cache::obtain(ctx.cache, &key, self.manager, |tmp, _| match &plan {
            Plan::Request(request) => build_from_request(&installer, request, ctx.project_dir, tmp, &key),
            Plan::Lock(lock) => build_from_lock(&installer, lock, tmp, &key),
        })?;
        Ok(Box::new(built))
    }
}

/// Parse the project's environment file into the Python request, following `-r` files.
fn read_request(spec: &EnvSpec, project_dir: &Path, warn: bool) -> Result<Request, EnvError> {
    let (py, label) = match spec {
        EnvSpec::Python { file } => {
            let label = file.display().to_string();
            let text = read_spec_file(project_dir, file)?;
            let (py, warnings) = spec::parse_python_env(&text, &label)?;
            warnings.iter().filter(|_| warn).for_each(|w| ui::warn(w));
            (py, label)
        }
        EnvSpec::Conda { file } => {
            let label = file.display().to_string();
            let text = read_spec_file(project_dir, file)?;
            let (conda, warnings) = spec::parse_conda_env(&text, &label)?;
            warnings.iter().filter(|_| warn).for_each(|w| ui::warn(w));
            let (py, warnings) = spec::python_env_from_conda(&conda, &label)?;
            warnings.iter().filter(|_| warn).for_each(|w| ui::warn(w));
            (py, label)
        }
        _ => (
            PythonEnvSpec { python: None, build_dependencies: vec![], dependencies: vec![] },
            "(no environment file)".into(),
        ),
    };
    let build = read_requirements(&py.build_dependencies, project_dir, &label)?;
    let deps = read_requirements(&py.dependencies, project_dir, &label)?;
    let trimmed = |v: &[String]| v.iter().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    Ok(Request {
        python: py.python.map(|v| v.trim_start_matches('=').to_string()),
        written: (trimmed(&py.build_dependencies), trimmed(&py.dependencies)),
        build,
        deps,
        label,
    })
}

/// The text of an environment file of the project.
pub fn read_spec_file(project_dir: &Path, file: &Path) -> Result<String, EnvError> {
    let path = project_dir.join(file);
    fs::read_to_string(&path).map_err(|e| EnvError::Spec {
        file: file.display().to_string(),
        message: format!("cannot read {}: {e}", path.display()),
    })
}

/// Build a virtualenv in `tmp` from a request.
fn build_from_request(
    installer: &Installer,
    request: &Request,
    project_dir: &Path,
    tmp: &Path,
    key: &str,
) -> Result<BuildOutput, EnvError> {
    let inputs = cache::BuildInputs::create(tmp)?;
    let python = tmp.join("bin/python");
    let mut stages: Vec<(String, &Requirements)> =
        [("build dependencies", &request.build), ("dependencies", &request.deps)]
            .into_iter()
            .filter(|(_, reqs)| !reqs.lines.is_empty())
            .map(|(stage, reqs)| (format!("the {stage} of {}", request.label), reqs))
            .collect();
    let mut artifacts = Artifacts::new();
    let base = base_interpreter(installer, request.python.as_deref())?;
    match (installer, stages.is_empty()) {
        (Installer::Uv(uv), false) => {
            // The first resolution needs the interpreter, not the virtualenv: both are made at
            // once, from the same interpreter.
            let (what, reqs) = stages.remove(0);
            let input = write_input(inputs.path(), reqs)?;
            let both = Progress::start(format!("creating the virtualenv and resolving {what} with uv"));
            let (venv, resolved) = std::thread::scope(|s| {
                let venv = s.spawn(|| create_venv(installer, &base, tmp));
                let resolved = uv_resolve(uv, &base, &input, project_dir, &what);
                (venv.join().expect("the virtualenv thread does not panic"), resolved)
            });
            drop(both);
            venv?;
            let pylock = resolved?;
            uv_install(uv, &python, &pylock, project_dir, &what)?;
            artifacts.extend(pylock_artifacts(&pylock)?);
        }
        _ => create_venv(installer, &base, tmp)?,
    }
    for (what, reqs) in stages {
        artifacts.extend(install_requirements(installer, &python, reqs, project_dir, inputs.path(), &what)?);
    }
    finish(installer, tmp, &artifacts, key)
}

/// Build a virtualenv in `tmp` with exactly the packages of `lock`.
fn build_from_lock(installer: &Installer, lock: &EnvLock, tmp: &Path, key: &str) -> Result<BuildOutput, EnvError> {
    let inputs = cache::BuildInputs::create(tmp)?;
    let base = base_interpreter(installer, lock.python.as_ref().map(|p| p.version.as_str()))?;
    create_venv(installer, &base, tmp)?;
    install_locked(installer, &tmp.join("bin/python"), &lock.packages, inputs.path())?;
    let artifacts = lock.packages.iter().map(|p| (normalize_name(&p.name), vec![p.clone()])).collect();
    finish(installer, tmp, &artifacts, key)
}
