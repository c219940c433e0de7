//! The `local` manager: the caller's own tools, as MLflow's `--env-manager local`.

use std::path::Path;

use super::{EnvError, EnvManager, EnvRecord, Environment, Invocation, PrepareContext, PreparedEnv};

/// Runs commands with the caller's PATH and tools; nothing to build.
#[derive(Debug, Clone, Copy)]
pub struct LocalEnvironment;

impl Environment for LocalEnvironment {
    fn manager(&self) -> EnvManager {
        EnvManager::Local
    }

    fn prepare(&self, _ctx: PrepareContext) -> Result<Box<dyn PreparedEnv>, EnvError> {
        Ok(Box::new(LocalEnvironment))
    }
}

impl PreparedEnv for LocalEnvironment {
    fn record(&self) -> EnvRecord {
        EnvRecord { manager: EnvManager::Local, details: Default::default() }
    }

    fn wrap(&self, command: &str, cwd: &Path, vars: &[(String, String)]) -> Invocation {
        shell_invocation(command, cwd, vars)
    }
}

/// `bash -c command`, as MLflow runs entry points.
pub(crate) fn shell_invocation(command: &str, cwd: &Path, vars: &[(String, String)]) -> Invocation {
    Invocation {
        program: "bash".into(),
        args: vec!["-c".into(), command.into()],
        env: vars.iter().map(|(k, v)| (k.into(), v.into())).collect(),
        cwd: cwd.to_path_buf(),
    }
}
