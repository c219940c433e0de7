//! Containers of lost runs: a runner that is SIGKILLed cannot remove its container, which then
//! runs on. Before it creates a container, a runner leaves a marker in the store
//! (`<store>/docker-containers/<run_id>`), and removes it with the container; a marker whose
//! run is no longer RUNNING (the store finalizes a run whose runner is gone as lost) names a
//! container to remove. Only markers cost an engine round-trip, so runs of a store without
//! lost Docker runs pay one failed directory read.

use crate::support::fs::write_atomic;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bollard::models::ContainerSummaryStateEnum;
use bollard::query_parameters::{KillContainerOptions, ListContainersOptions, RemoveContainerOptions};

use super::{DockerError, RUN_ID_LABEL};
use crate::support::docker_engine::{Engine, EngineError, is_not_found};
use crate::support::ui;

/// The label that names the store of a container's run, so that the clean-up of one store
/// leaves the containers of another alone.
pub const STORE_LABEL: &str = "lockstep.store";

/// The store's directory of markers.
const MARKER_DIR: &str = "docker-containers";

/// What a marker holds when the container is to be kept (`--keep-container`): it is then only
/// stopped.
const KEEP: &str = "keep\n";

/// The marker of a run's container in the store at `store`.
pub fn marker_path(store: &Path, run_id: &str) -> PathBuf {
    store.join(MARKER_DIR).join(run_id)
}

/// Record that the run is about to have a container.
pub fn mark(marker: &Path, keep: bool) -> io::Result<()> {
    if let Some(dir) = marker.parent() {
        fs::create_dir_all(dir)?;
    }
    write_atomic(marker, if keep { KEEP.as_bytes() } else { b"" })
}

/// Forget a marker once its container is gone (or kept by a run that ended normally).
pub fn unmark(marker: &Path) {
    if let Err(e) = fs::remove_file(marker)
        && e.kind() != io::ErrorKind::NotFound
    {
        ui::warn(&format!("could not remove {}: {e}", marker.display()));
    }
}

/// Remove (or, when kept, stop) the containers of the lost runs of the store at `store`, as
/// `is_lost` tells them (the store decides, so env need not know it). Failures are warnings:
/// the markers stay, and a later clean-up tries again.
pub fn clean_up(store: &Path, is_lost: impl Fn(&str) -> bool) {
    let Ok(entries) = fs::read_dir(store.join(MARKER_DIR)) else { return };
    let lost: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let run_id = e.file_name().into_string().ok()?;
            // Temporary files of a marker being written have other names.
            let is_run_id = !run_id.is_empty() && run_id.bytes().all(|b| b.is_ascii_hexdigit());
            (is_run_id && is_lost(&run_id)).then(|| (run_id, e.path()))
        })
        .collect();
    if lost.is_empty() {
        return;
    }
    let engine = match Engine::connect() {
        Ok(engine) => engine,
        Err(e) => {
            ui::warn(&format!("cannot remove the containers of {} lost run(s): {e}", lost.len()));
            return;
        }
    };
    for (run_id, marker) in lost {
        let keep = fs::read(&marker).is_ok_and(|content| content == KEEP.as_bytes());
        match remove(&engine, store, &run_id, keep) {
            Ok(()) => unmark(&marker),
            Err(e) => ui::warn(&format!("cannot remove the container of lost run {run_id}: {e}")),
        }
    }
}

fn remove(engine: &Engine, store: &Path, run_id: &str, keep: bool) -> Result<(), DockerError> {
    let docker = engine.docker();
    let labels = vec![format!("{RUN_ID_LABEL}={run_id}"), format!("{STORE_LABEL}={}", store.display())];
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([("label".into(), labels)])),
        ..Default::default()
    };
    let failed = |action: &str, e: &bollard::errors::Error| {
        DockerError::from(EngineError::request(format!("{action} the containers of run {run_id}"), e))
    };
    let containers = engine.block_on(docker.list_containers(Some(options))).map_err(|e| failed("list", &e))?;
    for container in containers {
        let Some(id) = container.id else { continue };
        let shown = container.names.and_then(|n| n.into_iter().next()).unwrap_or_else(|| id.clone());
        let shown = shown.trim_start_matches('/');
        if keep {
            if container.state == Some(ContainerSummaryStateEnum::RUNNING) {
                let options = KillContainerOptions { signal: "SIGKILL".into() };
                match engine.block_on(docker.kill_container(&id, Some(options))) {
                    Ok(()) => ui::note(&format!("stopped container {shown} (kept) of lost run {run_id}")),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(failed("stop", &e)),
                }
            }
            continue;
        }
        let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        match engine.block_on(docker.remove_container(&id, Some(options))) {
            Ok(()) => ui::note(&format!("removed container {shown} of lost run {run_id}")),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(failed("remove", &e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_written_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let marker = marker_path(dir.path(), "aa11");
        mark(&marker, true).unwrap();
        assert_eq!(fs::read(&marker).unwrap(), KEEP.as_bytes());
        mark(&marker, false).unwrap();
        assert_eq!(fs::read(&marker).unwrap(), b"");
        unmark(&marker);
        assert!(!marker.exists());
        unmark(&marker);
    }
}
