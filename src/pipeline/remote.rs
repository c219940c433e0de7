//! A planned run sent to a backend: the archive of its tree written once per tree hash into
//! the cache, its RUNNING record made from the plan, the job submitted (a refused job leaves
//! no run), then followed to its end or left detached.

use std::path::PathBuf;

use super::{Execution, Planned, RunOutcome, Session};
use crate::backends::{self, Backend, BackendConfig, RemoteRun};
use crate::commands::CommandError as Error;
use crate::env::{EnvManager, EnvRecord};
use crate::record::{HostInfo, RECORD_SCHEMA, RunRecord, RunStatus};
use crate::source::archive::pack::pack_tree;
use crate::source::{self, SourceError};
use crate::support::cache::CacheBucket;
use crate::support::clock::now_ms;

/// The backend's part of a run: which one, its config, and what the far side is told.
pub struct RemoteChoice<'a> {
    /// The backend, checked.
    pub backend: &'a dyn Backend,
    /// Its config, kept in the record.
    pub config: &'a BackendConfig,
    /// `-P NAME=VALUE` as given: the far side binds them again, against the same manifest.
    pub params: &'a [String],
    /// `--env-manager`.
    pub env_manager: Option<EnvManager>,
    /// `--experiment-id`.
    pub experiment_id: Option<String>,
    /// `--tracking-uri`.
    pub tracking_uri: Option<String>,
    /// Return once the job is submitted.
    pub detach: bool,
}

/// Submit a planned run to a backend and, unless detached, follow it to its end.
pub fn submit_remote(
    planned: Planned,
    how: Execution<'_>,
    session: &Session,
    choice: RemoteChoice<'_>,
) -> Result<RunOutcome, Error> {
    let archive = archive_of(&planned, session)?;
    let tree = planned.src.info.tree_sha256.to_string();
    let remote = RemoteRun {
        run_id: how.run_id.to_string(),
        archive,
        archive_name: backends::archive_name(&tree),
        entry_point: planned.entry_point.name.clone(),
        params: choice.params.to_vec(),
        env_manager: choice.env_manager.map(|m| m.name().to_string()),
        run_name: how.run_name.clone(),
        experiment_name: how.experiment_name.clone(),
        experiment_id: choice.experiment_id.clone(),
        tracking_uri: choice.tracking_uri.clone(),
        lockstep: std::env::current_exe().map_err(Error::Io)?,
    };
    let Planned {
        pending,
        src,
        project_name,
        entry_point,
        parameters,
        parameter_order,
        command,
        environment,
        inputs,
        ..
    } = planned;
    let outputs_dir = pending.dir().outputs();
    let record = RunRecord {
        schema: RECORD_SCHEMA.to_string(),
        run_id: how.run_id.clone(),
        run_name: how.run_name,
        experiment_name: how.experiment_name,
        project_name,
        status: RunStatus::Running,
        failure: None,
        exit_code: None,
        start_time: now_ms(),
        end_time: None,
        entry_point: entry_point.name.clone(),
        parameters,
        parameter_order,
        command,
        source: src.info.clone(),
        inputs,
        environment: EnvRecord::unprepared(environment.manager()),
        outputs: Vec::new(),
        outputs_dir,
        host: HostInfo::current(),
        cwd: Some(how.caller_dir.to_path_buf()),
        verifies: None,
        verification: None,
        tracking: None,
        logged: None,
        sweep: None,
        backend: None,
    };
    let submitted = backends::submit(choice.backend, choice.config, &remote, pending, record)?;
    if choice.detach {
        return Ok(RunOutcome { record: submitted.record, exit_code: 0, reused: false });
    }
    let attached = backends::drive(choice.backend, submitted, &session.interrupts, how.echo)?;
    Ok(RunOutcome { record: attached.record, exit_code: attached.exit_code, reused: false })
}

/// The archive of the planned tree in the cache (`archives-v1/<tree hash>.tar.gz`), written
/// unless an earlier run wrote it; builders of one tree take turns on its lock.
fn archive_of(planned: &Planned, session: &Session) -> Result<PathBuf, Error> {
    let tree_hash = planned.src.info.tree_sha256.to_string();
    let path = session.cache.bucket_path(CacheBucket::Archives).join(backends::archive_name(&tree_hash));
    if path.is_file() {
        return Ok(path);
    }
    let _lock = session.cache.lock(CacheBucket::Archives, &tree_hash)?;
    if path.is_file() {
        return Ok(path);
    }
    let tree = match &planned.src.tree {
        Some(tree) => tree.clone(),
        None => source::hash_tree(&planned.src.project_dir, &session.exclusions, None).map_err(SourceError::from)?,
    };
    pack_tree(&path, &planned.src.project_dir, &tree, None)?;
    Ok(path)
}
