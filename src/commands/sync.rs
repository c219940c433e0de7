//! `lockstep sync`: send a recorded run to an MLflow tracking server, or complete what a lost
//! server missed.

use std::path::PathBuf;

use super::CommandError;
use crate::record::{RunRecord, Store, TrackingError, TrackingTarget, tracking};

/// What to sync, and where to.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// A run id or a unique prefix of one.
    pub run: String,
    /// The tracking server; without one, the server the run was recorded on.
    pub tracking_uri: Option<String>,
    /// The experiment to record the run under, by name.
    pub experiment_name: Option<String>,
    /// The experiment to record the run under, by id.
    pub experiment_id: Option<String>,
    /// The run store.
    pub store: PathBuf,
}

/// A synced run.
#[derive(Debug)]
pub struct Synced {
    /// The updated record.
    pub record: RunRecord,
    /// The run's web page on the server.
    pub page: String,
}

/// Sync a run: idempotent, so that a sync that failed half-way is completed by the next.
pub fn sync(opts: &SyncOptions) -> Result<Synced, CommandError> {
    let store = Store::open(&opts.store)?;
    let target = TrackingTarget::resolve(
        opts.tracking_uri.as_deref(),
        opts.experiment_name.as_deref(),
        opts.experiment_id.as_deref(),
    )?;
    let found = store.find(&opts.run)?;
    let (active, mut record) = store.reopen(&found.run_id)?;
    let no_server = || TrackingError::NoServer { run_id: record.run_id.to_string() };
    let target = match (target, &record.tracking) {
        (Some(t), _) => t,
        (None, Some(r)) => TrackingTarget::resolve(Some(&r.uri), None, None)?.ok_or_else(no_server)?,
        (None, None) => return Err(no_server().into()),
    };
    let page = tracking::sync(&active, &mut record, &target)?;
    Ok(Synced { record, page })
}
