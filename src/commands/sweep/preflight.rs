//! Before any trial runs: one probe plan of the first trial (the source resolved, the
//! manifest read, the entry point found) against which every value of the grid is checked,
//! then the environment prepared once for all trials.

use super::grid::{Grid, Point};
use super::{SweepError, SweepOptions, trial};
use crate::commands::CommandError as Error;
use crate::pipeline::{Planned, Session};
use crate::record::TrackingTarget;
use crate::support::ids::random_hex;

/// Plan the first trial and check every value of the grid against the entry point's
/// declared types. The plan is kept to prepare the environment from.
pub(super) fn check(
    opts: &SweepOptions,
    session: &Session,
    tracking: Option<&TrackingTarget>,
    grid: &Grid,
    points: &[Point],
) -> Result<Planned, Error> {
    let first = points.first().cloned().unwrap_or_default();
    let probe = trial::plan(opts, session, tracking, &first, &random_hex(16))?;
    for (name, values) in &grid.axes {
        let Some(declared) = probe.entry_point.parameters.iter().find(|p| &p.name == name) else { continue };
        for value in values {
            declared.ty.check(value).map_err(|reason| SweepError::WrongType {
                name: name.clone(),
                ty: declared.ty,
                value: value.clone(),
                reason,
            })?;
        }
    }
    Ok(probe)
}

/// Build (or find in the cache) the environment every trial shares: the trials then find
/// it built, whatever their number and `--jobs`.
pub(super) fn prepare(mut probe: Planned, session: &Session) -> Result<(), Error> {
    probe.prepare_before_start(&session.cache, &session.exclusions)
}
