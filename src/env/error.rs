//! Errors of choosing or preparing an environment, with who has to act and what to try.

use std::path::{Path, PathBuf};

use super::{DockerError, EnvManager};
use crate::support::error_class::ErrorClass;

/// Errors of choosing or preparing an environment.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// A recorded environment of this manager cannot be rebuilt from its lock yet.
    #[error("cannot rebuild a {manager} environment from its recorded lock yet")]
    LockNotSupported {
        /// The recorded manager.
        manager: EnvManager,
    },
    /// The manager cannot provide this kind of environment.
    #[error("the {manager} manager cannot run a project with {kind}: {reason}")]
    Incompatible {
        /// The manager.
        manager: EnvManager,
        /// The project's environment kind.
        kind: &'static str,
        /// Why not.
        reason: &'static str,
    },
    /// A tool the manager needs is not on PATH.
    #[error("{tool} is not on PATH")]
    ToolMissing {
        /// The tool.
        tool: &'static str,
        /// How to get it or do without.
        hint: String,
    },
    /// An environment file is not valid YAML or has unknown keys.
    #[error(transparent)]
    Yaml(crate::manifest::ManifestError),
    /// An environment file says something wrong.
    #[error("{file}: {message}")]
    Spec {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// No interpreter matches the requested Python version.
    #[error("no Python interpreter matches python {request} ({found})")]
    NoPython {
        /// The version asked for.
        request: String,
        /// What was found instead.
        found: String,
        /// Where it was looked for.
        looked: String,
        /// Whether a download was tried, and why not.
        downloads: String,
    },
    /// An installer (uv, pip, conda) failed.
    #[error("{what} failed (command: {command}); its last words:\n{detail}")]
    Install {
        /// What was being done.
        what: String,
        /// The command.
        command: String,
        /// The last lines of its output.
        detail: String,
        /// All of its output, to choose a hint.
        output: String,
    },
    /// A conda channel could not be read.
    #[error("cannot read conda channel {url}: {message}")]
    Channel {
        /// The repodata URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The conda specs have no solution (unknown packages, conflicting versions).
    #[error("the conda environment of {file} cannot be solved: {message}")]
    Unsolvable {
        /// The conda file.
        file: String,
        /// The solver's explanation.
        message: String,
    },
    /// A conda package could not be downloaded, verified or unpacked.
    #[error("conda package {url}: {message}")]
    Package {
        /// The package's URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A recorded environment cannot be rebuilt from its record.
    #[error("cannot rebuild the environment: {message}")]
    BadLock {
        /// Why.
        message: String,
    },
    /// The environment cache is not as lockstep left it.
    #[error("environment cache at {}: {message}", .path.display())]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file of the environment cache could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The cache directory.
    #[error(transparent)]
    CacheDir(#[from] crate::support::cache::CacheError),
    /// A Docker environment or its engine.
    #[error(transparent)]
    Docker(#[from] DockerError),
}

impl EnvError {
    /// Who has to act.
    pub fn class(&self) -> ErrorClass {
        match self {
            EnvError::LockNotSupported { .. }
            | EnvError::Incompatible { .. }
            | EnvError::ToolMissing { .. }
            | EnvError::Yaml(_)
            | EnvError::Spec { .. }
            | EnvError::NoPython { .. }
            | EnvError::Install { .. }
            | EnvError::Channel { .. }
            | EnvError::Unsolvable { .. }
            | EnvError::Package { .. }
            | EnvError::BadLock { .. } => ErrorClass::User,
            EnvError::Cache { .. } | EnvError::Io { .. } | EnvError::CacheDir(_) => ErrorClass::Internal,
            EnvError::Docker(e) => e.class(),
        }
    }

    /// What to try next.
    pub fn hint(&self) -> Option<String> {
        match self {
            EnvError::Incompatible { kind: "a docker_env", .. } => {
                Some("omit --env-manager to run it in its image, or run it with --env-manager local".into())
            }
            EnvError::Incompatible { manager: EnvManager::Conda, .. } => {
                Some("use --env-manager virtualenv (or uv) for a python_env project".into())
            }
            EnvError::ToolMissing { hint, .. } => Some(hint.clone()),
            EnvError::NoPython { request, looked, downloads, .. } => Some(format!(
                "looked in {looked}; {downloads}; install it (pyenv install {request}, uv python install {request}, or your system's packages)"
            )),
            EnvError::Install { output, .. } => install_hint(output),
            EnvError::Channel { .. } => Some(
                "check the channel's URL and the network; on an air-gapped site point LOCKSTEP_CONDA_CHANNEL_ALIAS at a mirror"
                    .into(),
            ),
            EnvError::Unsolvable { .. } => {
                Some("check the package names and version constraints against the channels".into())
            }
            EnvError::Docker(e) => e.hint(),
            _ => None,
        }
    }

    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EnvError + use<> {
        let path = path.to_path_buf();
        move |source| EnvError::Io { path, source }
    }
}

/// A hint for an installer's failure, from its words.
fn install_hint(output: &str) -> Option<String> {
    let lower = output.to_lowercase();
    if lower.contains("not found in the package registry")
        || lower.contains("no matching distribution")
        || lower.contains("no solution found")
        || lower.contains("could not find a version")
    {
        Some("check the requirement's name and version constraints (is it on the index?)".into())
    } else if ["connection refused", "failed to fetch", "failed to establish", "timed out", "dns error", "network"]
        .iter()
        .any(|w| lower.contains(w))
    {
        Some("the package index is unreachable: check the network, or UV_INDEX_URL / PIP_INDEX_URL".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installer_failures_get_hints_from_their_words() {
        assert!(install_hint("Because nosuch was not found in the package registry").unwrap().contains("name"));
        assert!(
            install_hint("error: Failed to fetch: `http://127.0.0.1:9/simple/six/`").unwrap().contains("unreachable")
        );
        assert!(install_hint("something else").is_none());
    }
}
