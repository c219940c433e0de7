//! `run --reuse`: an earlier run equivalent to a planned one.

use crate::support::digest;
use std::fs;

use super::Planned;
use crate::commands::CommandError as Error;
use crate::record::{RunRecord, RunStatus, Store};
use crate::source::{self, ResolvedSource};

/// A FINISHED run of the same files, `path` inputs, environment, entry point and parameters whose outputs
/// are all still in place, newest first. The same parameters given in another order make
/// another command when some are undeclared: the command must match too.
pub fn find_equivalent(store: &Store, planned: &Planned) -> Result<Option<RunRecord>, Error> {
    let (runs, _) = store.list()?;
    Ok(equivalent_in(&runs, planned).cloned())
}

/// [`find_equivalent`] among runs already read (newest first): a sweep reads the store once
/// for all its trials.
pub fn equivalent_in<'r>(runs: &'r [RunRecord], planned: &Planned) -> Option<&'r RunRecord> {
    let key = planned.environment.key();
    runs.iter().find(|r| {
        r.status == RunStatus::Finished
            && r.verifies.is_none()
            && r.entry_point == planned.entry_point.name
            && r.parameters == planned.parameters
            && r.inputs == planned.inputs
            && planned.renders(&r.command)
            && r.environment.manager() == planned.environment.manager()
            && r.environment.key() == key.as_deref()
            && same_source(r, &planned.src)
            && outputs_in_place(r)
    })
}

fn same_source(run: &RunRecord, src: &ResolvedSource) -> bool {
    match (&src.tree, &run.source.input_tree_sha256) {
        (Some(tree), Some(input)) => {
            let written: Vec<String> = run.outputs.iter().map(|o| o.path.clone()).collect();
            let in_place = run.outputs_dir == src.project_dir;
            input == &source::without_outputs(tree.clone(), &written, in_place).sha256
        }
        _ => run.source.tree_sha256 == src.info.tree_sha256 && run.source.kind == src.info.kind,
    }
}

fn outputs_in_place(run: &RunRecord) -> bool {
    run.outputs.iter().all(|o| {
        let path = run.outputs_dir.join(&o.path);
        fs::metadata(&path).is_ok_and(|m| m.len() == o.size)
            && digest::sha256_file(&path).is_ok_and(|(sha, _)| digest::hex(&sha) == o.sha256)
    })
}
