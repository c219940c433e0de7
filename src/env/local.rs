//! The `local` manager: the caller's own tools, as MLflow's `--env-manager local`.

use std::path::Path;

use super::{EnvError, EnvManager, EnvRecord, Environment, Invocation, PrepareContext, PreparedEnv, RunContext};

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
        EnvRecord::Local
    }

    fn wrap(&self, command: &str, cwd: &Path, run: &RunContext) -> Invocation {
        Invocation::shell(command, cwd, &run.process_variables())
    }
}
