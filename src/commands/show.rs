//! `lockstep show`: one run of the store.

use std::path::Path;

use super::CommandError;
use crate::record::{RunRecord, Store};

/// The record of the run `id` (or a unique prefix of one) names.
pub fn show(store: &Path, id: &str) -> Result<RunRecord, CommandError> {
    Ok(Store::open(store)?.find(id)?)
}
