//! `lockstep runs`: the runs in the store, newest first.

use std::path::{Path, PathBuf};

use super::CommandError;
use crate::record::{RecordError, RunRecord, Store};

/// What `runs` found.
#[derive(Debug)]
pub struct RunList {
    /// The store's directory.
    pub store: PathBuf,
    /// The readable runs, newest first.
    pub runs: Vec<RunRecord>,
    /// Run directories that could not be read, each worth a warning.
    pub problems: Vec<RecordError>,
}

/// List the runs of the store, cleaning up first after lost Docker runs.
pub fn runs(store: &Path) -> Result<RunList, CommandError> {
    let store = Store::open(store)?;
    crate::pipeline::clean_up_lost_containers(&store);
    let (runs, problems) = store.list()?;
    Ok(RunList { store: store.root().to_path_buf(), runs, problems })
}
