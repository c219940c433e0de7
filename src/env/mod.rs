//! Environments: one trait, several managers. An [`Environment`] is chosen from the project's
//! environment spec and the `--env-manager` flag, prepares itself (build or reuse), and the
//! prepared environment wraps a rendered command into an [`Invocation`] for `exec`.

mod cache;
mod conda;
pub mod docker;
mod error;
mod local;
mod lock;
mod python;
mod record;
mod requirements;
pub(crate) mod spec;
mod tool;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::manifest::EnvSpec;
use crate::source::Exclusions;
use crate::support::cache::Cache;
use crate::support::ids::EnvKey;

pub use cache::{EnvEntry, PruneReport, list, prune};
pub use docker::{ContainerOutputs, ContainerSpec, DockerEnvironment, DockerError, DockerFlags, DockerPlan};
pub use error::EnvError;
pub use local::LocalEnvironment;
pub use lock::{CondaPackage, EnvLock, PyPackage, PythonInfo, check_file_name};
pub use python::{PythonEnvironment, PythonSource};
pub use record::{DockerMode, DockerRecord, EnvRecord};
pub use spec::{CondaEnvSpec, PythonEnvSpec};

/// A way of providing a project's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvManager {
    /// The caller's own environment, as it is.
    Local,
    /// A virtualenv (with uv when available).
    Virtualenv,
    /// A virtualenv made by uv.
    Uv,
    /// A conda environment.
    Conda,
    /// A Docker image.
    Docker,
}

impl EnvManager {
    /// The managers `--env-manager` takes (Docker comes only from the project), in the order
    /// help and errors list them.
    pub const CHOICES: [EnvManager; 4] = [EnvManager::Local, EnvManager::Virtualenv, EnvManager::Uv, EnvManager::Conda];

    /// The name used on the command line and in records.
    pub fn name(self) -> &'static str {
        match self {
            EnvManager::Local => "local",
            EnvManager::Virtualenv => "virtualenv",
            EnvManager::Uv => "uv",
            EnvManager::Conda => "conda",
            EnvManager::Docker => "docker",
        }
    }
}

impl fmt::Display for EnvManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EnvManager {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EnvManager::CHOICES
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown environment manager '{s}' (choose local, virtualenv, uv or conda)"))
    }
}

/// What `exec` runs: a process, or a container.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// A program on this machine.
    Process(Process),
    /// A container, run through the Docker engine.
    Container(Box<ContainerSpec>),
}

/// A program with arguments, extra environment variables and a directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Process {
    /// The program.
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Variables added to (or replacing those of) the caller's environment.
    pub env: Vec<(OsString, OsString)>,
    /// The working directory.
    pub cwd: PathBuf,
}

impl Invocation {
    /// `bash -c command` in `cwd` with `vars` added, as MLflow runs entry points.
    pub fn shell(command: &str, cwd: &Path, vars: &[(String, String)]) -> Invocation {
        Invocation::Process(Process {
            program: "bash".into(),
            args: vec!["-c".into(), command.into()],
            env: vars.iter().map(|(k, v)| (k.into(), v.into())).collect(),
            cwd: cwd.to_path_buf(),
        })
    }

    /// The container, when this is one whose outputs must be copied out of it (its project
    /// lives inside the image).
    pub fn container_with_outputs_inside(&mut self) -> Option<&mut ContainerSpec> {
        match self {
            Invocation::Container(c) if c.project_inside => Some(c),
            _ => None,
        }
    }
}

/// Where and how to prepare an environment.
#[derive(Debug, Clone, Copy)]
pub struct PrepareContext<'a> {
    /// The project's files.
    pub project_dir: &'a Path,
    /// What a walk of the project leaves out (a Docker build context is the project's tree).
    pub exclusions: &'a Exclusions,
    /// The cache for built environments.
    pub cache: &'a Cache,
}

/// The run an environment wraps a command for: who it is, where its files go, and what else
/// its entry point is told (the tracking server's variables).
#[derive(Debug, Clone, Copy)]
pub struct RunContext<'a> {
    /// The run's id.
    pub run_id: &'a str,
    /// The run's directory on this machine.
    pub run_dir: &'a Path,
    /// The store holding the run.
    pub store_dir: &'a Path,
    /// Where Python's byte code goes on this machine.
    pub pycache_dir: &'a Path,
    /// Further variables for the entry point, in order.
    pub extra: &'a [(String, String)],
    /// Directories of the run the entry point writes into itself (the artifacts it logs):
    /// a container sees them at the same path.
    pub shared_dirs: &'a [std::path::PathBuf],
}

impl RunContext<'_> {
    /// The variables a process on this machine gets on top of the caller's environment.
    pub fn process_variables(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            ("LOCKSTEP_RUN_ID".to_string(), self.run_id.to_string()),
            ("LOCKSTEP_RUN_DIR".to_string(), self.run_dir.to_string_lossy().into_owned()),
        ];
        // The process inherits the caller's environment: the caller's own choice of these stays.
        if std::env::var_os("PYTHONUNBUFFERED").is_none() {
            vars.push(("PYTHONUNBUFFERED".into(), "1".into()));
        }
        if let Some(pycache) = pycache_prefix(self.pycache_dir, |name| std::env::var_os(name)) {
            vars.push(pycache);
        }
        vars.extend(self.extra.iter().cloned());
        vars
    }

    /// The variables a container gets on top of its image's: no host paths (they mean nothing
    /// inside), and the Python settings always, since a container inherits nothing. Byte code
    /// is not written (into the project it would be an output), and no `PYTHONPYCACHEPREFIX`
    /// is set: Python would then ignore the byte code the image's packages already have, and
    /// a prefix inside the container is gone with it anyway.
    pub fn container_variables(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            ("LOCKSTEP_RUN_ID".to_string(), self.run_id.to_string()),
            ("PYTHONUNBUFFERED".into(), "1".into()),
            ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ];
        vars.extend(self.extra.iter().cloned());
        vars
    }
}

/// `PYTHONPYCACHEPREFIX` for a process on this machine, from the caller's variables (`var`):
/// byte code goes to `pycache_dir`, not into the project, where it would show as outputs and
/// change the tree. Not when the caller sets it, nor when the caller's
/// `PYTHONDONTWRITEBYTECODE` means nothing is written: a prefix would then only make Python
/// ignore the byte code compiled into the environment when it was built.
fn pycache_prefix(pycache_dir: &Path, var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<(String, String)> {
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    if var("PYTHONPYCACHEPREFIX").is_some() || set("PYTHONDONTWRITEBYTECODE") {
        return None;
    }
    Some(("PYTHONPYCACHEPREFIX".into(), pycache_dir.to_string_lossy().into_owned()))
}

/// An environment manager chosen for a project, not yet prepared.
pub trait Environment {
    /// The manager.
    fn manager(&self) -> EnvManager;
    /// The content key of the environment this will prepare, when the manager has one
    /// (computed from the spec, without building anything).
    fn key(&self) -> Option<EnvKey> {
        None
    }
    /// The installer that would build it on this machine now (`uv`, `pip`), for a manager
    /// that chooses one; it is not part of the key.
    fn installer(&self) -> Option<&'static str> {
        None
    }
    /// Build the environment or reuse a built one.
    fn prepare(&self, ctx: PrepareContext) -> Result<Box<dyn PreparedEnv>, EnvError>;
    /// The Docker environment, which takes the run's Docker settings before it is prepared.
    fn as_docker(&mut self) -> Option<&mut DockerEnvironment> {
        None
    }
}

/// An environment ready to run commands.
pub trait PreparedEnv {
    /// What the run records about it.
    fn record(&self) -> EnvRecord;
    /// The invocation that runs `command` (a shell command line) in `cwd` as the run `run`.
    fn wrap(&self, command: &str, cwd: &Path, run: &RunContext) -> Invocation;
}

/// Choose the environment for a project: `--env-manager` when given, else the manager of
/// the project's environment kind (python_env: virtualenv, conda_env: conda, docker_env:
/// docker, none: local). As in MLflow, `virtualenv` and `uv` also run a conda project (its
/// python pin and pip dependencies); `conda` does not run a python_env project.
pub fn select(
    spec: &EnvSpec,
    requested: Option<EnvManager>,
    project_dir: &Path,
) -> Result<Box<dyn Environment>, EnvError> {
    let manager = requested.unwrap_or(match spec {
        EnvSpec::None => EnvManager::Local,
        EnvSpec::Python { .. } => EnvManager::Virtualenv,
        EnvSpec::Conda { .. } => EnvManager::Conda,
        EnvSpec::Docker(_) => EnvManager::Docker,
    });
    match (manager, spec) {
        (EnvManager::Local, _) => Ok(Box::new(LocalEnvironment)),
        (EnvManager::Docker, _) => Ok(Box::new(DockerEnvironment::new(spec)?)),
        (EnvManager::Virtualenv | EnvManager::Uv, EnvSpec::None | EnvSpec::Python { .. } | EnvSpec::Conda { .. }) => {
            Ok(Box::new(PythonEnvironment {
                manager,
                source: PythonSource::Spec { spec: spec.clone(), project_dir: project_dir.to_path_buf() },
            }))
        }
        (EnvManager::Conda, EnvSpec::Conda { file }) => Ok(Box::new(conda::CondaEnvironment {
            source: conda::CondaSource::Spec { file: file.clone(), project_dir: project_dir.to_path_buf() },
        })),
        (EnvManager::Conda, EnvSpec::Python { .. } | EnvSpec::None) => Err(EnvError::Incompatible {
            manager,
            kind: if matches!(spec, EnvSpec::None) { "no environment file" } else { "a python_env" },
            reason: "it needs a conda.yaml",
        }),
        (EnvManager::Virtualenv | EnvManager::Uv | EnvManager::Conda, EnvSpec::Docker(_)) => {
            Err(EnvError::Incompatible { manager, kind: "a docker_env", reason: "it runs in its image" })
        }
    }
}

/// The environment a recorded lock describes, with exactly its packages and versions (and
/// artifact hashes where recorded), not the loose spec it was built from.
pub fn from_lock(record: &EnvRecord) -> Result<Box<dyn Environment>, EnvError> {
    match record {
        EnvRecord::Local => Ok(Box::new(LocalEnvironment)),
        EnvRecord::Python { manager, lock } => {
            Ok(Box::new(PythonEnvironment { manager: *manager, source: PythonSource::Lock(lock.clone()) }))
        }
        EnvRecord::Conda(lock) => {
            Ok(Box::new(conda::CondaEnvironment { source: conda::CondaSource::Lock(lock.clone()) }))
        }
        EnvRecord::Docker(docker) => Ok(Box::new(DockerEnvironment::from_record(docker))),
        EnvRecord::Unprepared(EnvManager::Docker) => Err(DockerError::NoImageInLock.into()),
        EnvRecord::Unprepared(manager) => {
            Err(EnvError::BadLock { message: format!("the recorded {manager} environment has no lock") })
        }
        EnvRecord::Unreadable { reason, .. } => Err(EnvError::BadLock { message: reason.clone() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::DockerEnv;

    #[test]
    fn byte_code_goes_to_the_cache_unless_the_caller_says_otherwise() {
        let dir = Path::new("/c/pycache-v1");
        let with = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| std::ffi::OsString::from(v))
        };
        assert_eq!(pycache_prefix(dir, with(&[])), Some(("PYTHONPYCACHEPREFIX".into(), "/c/pycache-v1".into())));
        assert_eq!(pycache_prefix(dir, with(&[("PYTHONPYCACHEPREFIX", "/mine")])), None, "the caller's stays");
        assert_eq!(pycache_prefix(dir, with(&[("PYTHONDONTWRITEBYTECODE", "1")])), None, "the env's byte code is read");
        assert!(pycache_prefix(dir, with(&[("PYTHONDONTWRITEBYTECODE", "")])).is_some());
    }

    #[test]
    fn manager_follows_the_project_unless_overridden() {
        assert_eq!(select(&EnvSpec::None, None, Path::new(".")).unwrap().manager(), EnvManager::Local);
        let python = EnvSpec::Python { file: "python_env.yaml".into() };
        assert_eq!(select(&python, None, Path::new(".")).unwrap().manager(), EnvManager::Virtualenv);
        assert_eq!(select(&python, Some(EnvManager::Uv), Path::new(".")).unwrap().manager(), EnvManager::Uv);
        assert_eq!(select(&python, Some(EnvManager::Local), Path::new(".")).unwrap().manager(), EnvManager::Local);
        let conda = EnvSpec::Conda { file: "conda.yaml".into() };
        assert_eq!(select(&conda, None, Path::new(".")).unwrap().manager(), EnvManager::Conda);
        assert_eq!(
            select(&conda, Some(EnvManager::Virtualenv), Path::new(".")).unwrap().manager(),
            EnvManager::Virtualenv
        );
        let err = select(&python, Some(EnvManager::Conda), Path::new(".")).err().unwrap();
        assert!(matches!(err, EnvError::Incompatible { manager: EnvManager::Conda, .. }));
        assert!(err.hint().unwrap().contains("--env-manager virtualenv"));
        let docker = EnvSpec::Docker(DockerEnv { image: "x".into(), volumes: vec![], environment: vec![] });
        assert_eq!(select(&docker, None, Path::new(".")).unwrap().manager(), EnvManager::Docker);
        assert_eq!(select(&docker, Some(EnvManager::Local), Path::new(".")).unwrap().manager(), EnvManager::Local);
        assert!(matches!(
            select(&EnvSpec::None, Some(EnvManager::Docker), Path::new(".")).err().unwrap(),
            EnvError::Docker(DockerError::NoDockerEnv)
        ));
        assert!(matches!(
            select(&docker, Some(EnvManager::Virtualenv), Path::new(".")).err().unwrap(),
            EnvError::Incompatible { kind: "a docker_env", .. }
        ));
    }

    #[test]
    fn manager_names_round_trip() {
        for m in ["local", "virtualenv", "uv", "conda"] {
            assert_eq!(m.parse::<EnvManager>().unwrap().name(), m);
        }
        assert!("docker".parse::<EnvManager>().is_err());
    }
}
