//! The state a command that runs entry points holds for its whole life.

use std::path::Path;

use super::RunError;
use crate::commands::CommandError as Error;
use crate::env;
use crate::exec::Interrupts;
use crate::record::{RecordError, RunStatus, Store};
use crate::source::Exclusions;
use crate::support::cache::Cache;

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
        clean_up_lost_containers(&store);
        let exclusions = store.exclusions();
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

/// Remove the containers of the store's lost Docker runs (each run that left a marker and has
/// no live runner any more).
pub fn clean_up_lost_containers(store: &Store) {
    env::docker::lost::clean_up(store.root(), |run_id| is_lost(store, run_id));
}

/// Whether a run has no live runner: its record says it ended (reading a RUNNING record whose
/// lock is free finalizes it as lost), or it has no record any more.
fn is_lost(store: &Store, run_id: &str) -> bool {
    match store.find(run_id) {
        Ok(record) => record.status != RunStatus::Running,
        Err(RecordError::UnknownRun { .. }) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_runs_without_a_live_runner_are_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let live = store.create_run("aa11").unwrap().start(&crate::record::sample_record("aa11", 1)).unwrap();
        assert!(!is_lost(&store, "aa11"), "its runner holds the lock");
        drop(live);
        assert!(is_lost(&store, "aa11"), "its runner is gone");
        assert_eq!(store.find("aa11").unwrap().status, RunStatus::Failed, "and the run is finalized as lost");
        assert!(is_lost(&store, "bb22"), "a run that is not in the store any more");
    }
}
