//! `lockstep show`: one run of the store.

use std::path::Path;

use super::CommandError;
use crate::record::{RunRecord, Store};

/// The record of the run `id` (or a unique prefix of one) names; a detached backend run's
/// brought up to date from its backend.
pub fn show(store: &Path, id: &str) -> Result<RunRecord, CommandError> {
    let store = Store::open(store)?;
    let record = store.find(id)?;
    Ok(crate::backends::refresh(&store, record))
}
