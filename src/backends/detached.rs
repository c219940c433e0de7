//! Runs that no lockstep process follows (`--detach`, or a runner that died): their record
//! brought up to date from the backend by `lockstep runs` and `show`, and `lockstep cancel`.

use std::time::{Duration, Instant};

use super::{Backend, BackendConfig, BackendError, BackendKind, JobRef, lifecycle};
use crate::record::{RecordError, RunRecord, RunStatus, Store};
use crate::support::ui;

/// How long `lockstep cancel` waits for the job to leave the scheduler before it records the
/// run KILLED without the remote record.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// The backend and job of a run's record.
fn job_of(record: &RunRecord, action: &'static str) -> Result<(Box<dyn Backend>, JobRef), BackendError> {
    let no_job = || BackendError::NoJob { run_id: record.run_id.to_string(), action };
    let b = record.backend.as_ref().ok_or_else(no_job)?;
    let kind = BackendKind::parse(&b.name).ok_or_else(no_job)?;
    let config = BackendConfig { value: b.config.clone(), origin: format!("the record of run {}", record.run_id) };
    let backend = super::open(kind, &config)?;
    Ok((backend, JobRef { job_id: b.job_id.clone(), details: b.details.clone() }))
}

/// A RUNNING backend run's record, polled once from its scheduler and settled when its job
/// ended. A run that a live runner follows is that runner's to settle; a scheduler that
/// cannot be asked leaves the record as it is, with a warning.
pub fn refresh(store: &Store, record: RunRecord) -> RunRecord {
    if record.status != RunStatus::Running || record.backend.is_none() {
        return record;
    }
    match try_refresh(store, &record) {
        Ok(Some(updated)) => updated,
        Ok(None) => record,
        Err(e) => {
            ui::warn(&format!("run {}: its backend could not be asked: {e}", record.run_id));
            record
        }
    }
}

fn try_refresh(store: &Store, record: &RunRecord) -> Result<Option<RunRecord>, BackendError> {
    let (active, current) = match store.reopen(&record.run_id) {
        Ok(taken) => taken,
        Err(RecordError::RunInProgress { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if current.status != RunStatus::Running {
        return Ok(Some(current));
    }
    let (backend, job) = job_of(&current, "refresh")?;
    let state = backend.poll(&job)?;
    let Some(end) = lifecycle::settle(backend.as_ref(), &job, &state, active.dir(), &current)? else {
        return Ok(None);
    };
    active.update(&end)?;
    Ok(Some(end))
}

/// `lockstep cancel`: ask the scheduler to stop the run's job, and wait (up to
/// [`CANCEL_WAIT`]) for its end: recorded by the live runner that follows it, or here as
/// KILLED.
pub fn cancel(store: &Store, record: RunRecord) -> Result<RunRecord, BackendError> {
    let (backend, job) = job_of(&record, "cancel")?;
    if record.status != RunStatus::Running {
        return Ok(record);
    }
    backend.cancel(&job)?;
    let started = Instant::now();
    let (active, current) = match store.reopen(&record.run_id) {
        Ok(taken) => taken,
        // Its runner records the end when the scheduler reports it: waited for here.
        Err(RecordError::RunInProgress { .. }) => loop {
            let now = store.find(&record.run_id)?;
            if now.status != RunStatus::Running || started.elapsed() > CANCEL_WAIT {
                return Ok(now);
            }
            std::thread::sleep(Duration::from_millis(250));
        },
        Err(e) => return Err(e.into()),
    };
    let mut end = loop {
        let state = backend.poll(&job)?;
        if let Some(end) = lifecycle::settle(backend.as_ref(), &job, &state, active.dir(), &current)? {
            break end;
        }
        if started.elapsed() > CANCEL_WAIT {
            let mut end = current.clone();
            end.failure =
                Some(format!("cancelled; job {} had not ended after {} s", job.job_id, CANCEL_WAIT.as_secs()));
            break end;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    // Cancelled is KILLED, whatever the job's last words (SIGTERM's 143, or a record the far
    // side never finished), unless it finished before the cancel reached it.
    if end.status != RunStatus::Finished {
        end.status = RunStatus::Killed;
    }
    end.end_time.get_or_insert_with(crate::support::clock::now_ms);
    active.update(&end)?;
    Ok(end)
}
