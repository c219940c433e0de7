//! Environments: one trait, several managers. An [`Environment`] is chosen from the project's
//! environment spec and the `--env-manager` flag, prepares itself (build or reuse), and the
//! prepared environment wraps a rendered command into an [`Invocation`] for `exec`.

pub mod docker;
mod local;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::error::ErrorClass;
use crate::manifest::EnvSpec;

pub use docker::{ContainerOutputs, ContainerSpec, DockerEnvironment, DockerError, DockerFlags, DockerPlan};
pub use local::LocalEnvironment;

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
        Ok(match s {
            "local" => EnvManager::Local,
            "virtualenv" => EnvManager::Virtualenv,
            "uv" => EnvManager::Uv,
            "conda" => EnvManager::Conda,
            _ => return Err(format!("unknown environment manager '{s}' (choose local, virtualenv, uv or conda)")),
        })
    }
}

/// Errors of choosing or preparing an environment.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// A recorded environment of this manager cannot be rebuilt from its lock yet.
    #[error("cannot rebuild a {manager} environment from its recorded lock yet")]
    LockNotSupported {
        /// The recorded manager.
        manager: EnvManager,
    },
    /// The project needs a manager this build of lockstep does not provide yet.
    #[error(
        "this project asks for a {kind} environment, made by the {manager} manager, which lockstep cannot build yet"
    )]
    NotBuilt {
        /// The MLproject key of the environment.
        kind: &'static str,
        /// The manager that would build it.
        manager: EnvManager,
    },
    /// A Docker environment or its engine.
    #[error(transparent)]
    Docker(#[from] DockerError),
}

impl EnvError {
    /// Who has to act.
    pub fn class(&self) -> ErrorClass {
        match self {
            EnvError::NotBuilt { .. } | EnvError::LockNotSupported { .. } => ErrorClass::User,
            EnvError::Docker(e) => e.class(),
        }
    }

    /// What to try next.
    pub fn hint(&self) -> Option<String> {
        match self {
            EnvError::NotBuilt { .. } => {
                Some("run it with the tools already on this machine: --env-manager local".into())
            }
            EnvError::LockNotSupported { .. } => None,
            EnvError::Docker(e) => e.hint(),
        }
    }
}

/// What a run records about its environment: the manager, and what is really installed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvRecord {
    /// The manager.
    pub manager: EnvManager,
    /// The manager's description of what is installed (its lock).
    #[serde(flatten)]
    pub details: BTreeMap<String, serde_json::Value>,
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
    /// The cache for built environments.
    pub cache: &'a Cache,
    /// The run's Docker settings (the default for other managers).
    pub docker: &'a DockerPlan,
}

/// An environment manager chosen for a project, not yet prepared.
pub trait Environment {
    /// The manager.
    fn manager(&self) -> EnvManager;
    /// The content key of the environment this will prepare, when the manager has one
    /// (computed from the spec, without building anything).
    fn key(&self) -> Option<String> {
        None
    }
    /// Build the environment or reuse a built one.
    fn prepare(&self, ctx: PrepareContext) -> Result<Box<dyn PreparedEnv>, EnvError>;
}

/// An environment ready to run commands.
pub trait PreparedEnv {
    /// What the run records about it.
    fn record(&self) -> EnvRecord;
    /// The invocation that runs `command` (a shell command line) in `cwd` with `vars` set.
    fn wrap(&self, command: &str, cwd: &Path, vars: &[(String, String)]) -> Invocation;
}

/// Choose the environment for a project: `--env-manager` when given, else the manager of
/// the project's environment kind (python_env: virtualenv, conda_env: conda, docker_env:
/// docker, none: local).
pub fn select(spec: &EnvSpec, requested: Option<EnvManager>) -> Result<Box<dyn Environment>, EnvError> {
    let manager = requested.unwrap_or(match spec {
        EnvSpec::None => EnvManager::Local,
        EnvSpec::Python { .. } => EnvManager::Virtualenv,
        EnvSpec::Conda { .. } => EnvManager::Conda,
        EnvSpec::Docker(_) => EnvManager::Docker,
    });
    match manager {
        EnvManager::Local => Ok(Box::new(LocalEnvironment)),
        EnvManager::Docker => Ok(Box::new(DockerEnvironment::new(spec)?)),
        other => Err(EnvError::NotBuilt { kind: spec_kind_for(spec, other), manager: other }),
    }
}

/// The environment a recorded lock describes, to be rebuilt exactly as it was (not from the
/// project's loose spec).
pub fn from_lock(lock: &EnvRecord) -> Result<Box<dyn Environment>, EnvError> {
    match lock.manager {
        EnvManager::Local => Ok(Box::new(LocalEnvironment)),
        manager => Err(EnvError::LockNotSupported { manager }),
    }
}

fn spec_kind_for(spec: &EnvSpec, manager: EnvManager) -> &'static str {
    match (spec, manager) {
        (EnvSpec::None, EnvManager::Conda) => "conda_env",
        (EnvSpec::None, _) => "python_env",
        (spec, _) => spec.kind(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::DockerEnv;

    #[test]
    fn manager_follows_the_project_unless_overridden() {
        assert_eq!(select(&EnvSpec::None, None).unwrap().manager(), EnvManager::Local);
        let python = EnvSpec::Python { file: "python_env.yaml".into() };
        let err = select(&python, None).err().unwrap();
        assert!(matches!(err, EnvError::NotBuilt { kind: "python_env", manager: EnvManager::Virtualenv }));
        assert!(err.hint().unwrap().contains("--env-manager local"));
        assert_eq!(select(&python, Some(EnvManager::Local)).unwrap().manager(), EnvManager::Local);
        let docker = EnvSpec::Docker(DockerEnv { image: "x".into(), volumes: vec![], environment: vec![] });
        assert_eq!(select(&docker, None).unwrap().manager(), EnvManager::Docker);
        assert_eq!(select(&docker, Some(EnvManager::Local)).unwrap().manager(), EnvManager::Local);
        assert!(matches!(
            select(&EnvSpec::None, Some(EnvManager::Docker)).err().unwrap(),
            EnvError::Docker(DockerError::NoDockerEnv)
        ));
        assert!(matches!(
            select(&EnvSpec::None, Some(EnvManager::Conda)).err().unwrap(),
            EnvError::NotBuilt { kind: "conda_env", .. }
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
