//! The state a command that runs entry points holds for its whole life.

use std::path::Path;

use super::RunError;
use crate::cache::Cache;
use crate::commands::CommandError as Error;
use crate::env;
use crate::exec::Interrupts;
use crate::record::Store;
use crate::source::Exclusions;

/// Signal handling, the cache, the store, and what source walks leave out.
pub struct Session {
    /// SIGINT/SIGTERM, caught from the start so that a run is never left RUNNING.
    pub interrupts: Interrupts,
    /// The cache (git mirrors, environments, tree hashes).
    pub cache: Cache,
    /// Where runs are recorded.
    pub store: Store,
    /// What walks of a project leave out: the store.
    pub exclusions: Exclusions,
}

impl Session {
    /// Start catching SIGINT/SIGTERM and open the cache and the store.
    pub fn open(store: &Path) -> Result<Session, Error> {
        let interrupts = Interrupts::install().map_err(RunError::Signals)?;
        let cache = Cache::from_env()?;
        let store = Store::open(store)?;
        env::docker::lost::clean_up(&store);
        let exclusions = Exclusions::new([store.root().to_path_buf()]);
        Ok(Session { interrupts, cache, store, exclusions })
    }

    /// Turn an error of the checks into "interrupted" when a signal came meanwhile (say, a
    /// Ctrl-C that also stopped a git fetch): the signal is what ends the command.
    pub fn checked<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        match self.interrupts.received() {
            Some(signal) => Err(RunError::Interrupted { signal }.into()),
            None => result,
        }
    }
}
