//! `lockstep cancel`: stop a backend run's job through its scheduler, and record it KILLED.

use std::path::Path;

use super::CommandError;
use crate::record::{RunRecord, Store};

/// Cancel the job of the run `id` names; its record once the scheduler let it go (a run a
/// live `lockstep run` follows is recorded by that process).
pub fn cancel(store: &Path, id: &str) -> Result<RunRecord, CommandError> {
    let store = Store::open(store)?;
    let record = store.find(id)?;
    Ok(crate::backends::cancel(&store, record)?)
}
