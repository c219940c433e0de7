//! The one lifecycle of a run on any backend: submit (nothing is recorded unless the scheduler
//! takes the job), report the job id, stream its log, poll until a terminal state, cancel on
//! SIGINT/SIGTERM (KILLED, 128 + signal), and settle the record from the remote record and
//! the scheduler's word. A job that leaves the scheduler without a terminal state or a record
//! of its end is LOST, never FINISHED.

use std::io::Write;
use std::time::{Duration, Instant};

use super::{Backend, BackendConfig, BackendError, JobEnd, JobRef, JobState, RemoteRun};
use crate::exec::{Echo, Interrupts};
use crate::record::{ActiveRun, BackendRecord, PendingRun, RunDir, RunRecord, RunStatus};
use crate::support::clock::now_ms;
use crate::support::ui;

/// How often the scheduler is asked and the log read while a job runs.
const POLL: Duration = Duration::from_millis(250);

/// After a cancel, how long the job has to leave the scheduler before the run is recorded
/// KILLED anyway (the scheduler has the order; its end is then its own business).
const CANCEL_WAIT: Duration = Duration::from_secs(15);

/// A job the scheduler took, and its RUNNING record.
pub struct Submitted {
    /// The record (RUNNING, with the job).
    pub record: RunRecord,
    /// The job.
    pub job: JobRef,
    /// The run, held while this process follows it.
    pub active: ActiveRun,
}

/// The end of an attached run.
#[derive(Debug)]
pub struct Attached {
    /// The final record.
    pub record: RunRecord,
    /// The exit code lockstep ends with: the run's, 128 + signal when cancelled by a signal.
    pub exit_code: i32,
}

/// Submit the run's job; only when the scheduler took it is the RUNNING record written, so a
/// refused job (a bad partition) leaves no run.
pub fn submit(
    backend: &dyn Backend,
    config: &BackendConfig,
    remote: &RemoteRun,
    pending: PendingRun,
    mut record: RunRecord,
) -> Result<Submitted, BackendError> {
    let job = backend.submit(remote)?;
    record.backend = Some(BackendRecord {
        name: backend.kind().name().to_string(),
        job_id: job.job_id.clone(),
        nodes: None,
        config: config.value.clone(),
        details: job.details.clone(),
    });
    let active = pending.start(&record)?;
    ui::note(&format!("run {} submitted to {} as job {}", record.run_id, backend.kind().name(), job.job_id));
    Ok(Submitted { record, job, active })
}

/// Follow a submitted job to its end: its log to `echo`, its state polled, cancelled when a
/// signal arrives.
pub fn drive(
    backend: &dyn Backend,
    submitted: Submitted,
    interrupts: &Interrupts,
    echo: Echo,
) -> Result<Attached, BackendError> {
    let Submitted { mut record, job, active } = submitted;
    let mut offset = 0u64;
    let mut warned_unreachable = false;
    let mut cancelled: Option<(i32, Instant)> = None;
    loop {
        if cancelled.is_none()
            && let Some(signal) = interrupts.received()
        {
            ui::note(&format!("cancelling job {}", job.job_id));
            backend.cancel(&job)?;
            cancelled = Some((signal, Instant::now()));
        }
        offset += forward_logs(backend, &job, offset, echo);
        let state = backend.poll(&job)?;
        match &state {
            JobState::Running { nodes: Some(nodes) } if nodes_of(&record) != Some(nodes.as_str()) => {
                ui::note(&format!("job {} running on {nodes}", job.job_id));
                if let Some(b) = record.backend.as_mut() {
                    b.nodes = Some(nodes.clone());
                }
                active.update(&record)?;
            }
            JobState::Unreachable { detail } if !warned_unreachable => {
                ui::warn(&format!("the scheduler does not answer ({detail}); polling on"));
                warned_unreachable = true;
            }
            JobState::Unreachable { .. } => {}
            _ => warned_unreachable = false,
        }
        let overdue = cancelled.is_some_and(|(_, at)| at.elapsed() > CANCEL_WAIT);
        if let Some(mut end) = settle(backend, &job, &state, active.dir(), &record)? {
            // What the job wrote after the last poll.
            forward_logs(backend, &job, offset, echo);
            let exit_code = match cancelled {
                Some((signal, _)) => {
                    // A job that finished before the cancel reached it stays FINISHED.
                    if end.status != RunStatus::Finished {
                        mark_killed(&mut end, signal);
                    }
                    128 + signal
                }
                None => exit_code_of(&end),
            };
            active.update(&end)?;
            return Ok(Attached { record: end, exit_code });
        }
        if let (true, Some((signal, _))) = (overdue, cancelled) {
            let mut end = record.clone();
            mark_killed(&mut end, signal);
            end.failure = Some(format!(
                "cancelled; job {} had not left the scheduler after {} s",
                job.job_id,
                CANCEL_WAIT.as_secs()
            ));
            active.update(&end)?;
            return Ok(Attached { record: end, exit_code: 128 + signal });
        }
        std::thread::sleep(POLL);
    }
}

/// The final record when `state` is terminal: the remote record where the far side wrote
/// one (it is the truth: status, exit code, times, environment lock, outputs, what the script
/// logged), else the scheduler's end, else LOST. `None` while the job lives.
pub(crate) fn settle(
    backend: &dyn Backend,
    job: &JobRef,
    state: &JobState,
    run_dir: &RunDir,
    local: &RunRecord,
) -> Result<Option<RunRecord>, BackendError> {
    let (scheduler_end, nodes) = match state {
        JobState::Pending | JobState::Running { .. } | JobState::Unreachable { .. } => return Ok(None),
        JobState::Ended { end, nodes } => (Some(*end), nodes.clone()),
        JobState::Gone => (None, None),
    };
    let remote = backend.collect(job, run_dir)?;
    let mut end = merge(local, remote, scheduler_end, run_dir);
    if let (Some(b), Some(nodes)) = (end.backend.as_mut(), nodes) {
        b.nodes.get_or_insert(nodes);
    }
    Ok(Some(end))
}

/// The local record completed from what is known of the job's end.
pub(crate) fn merge(
    local: &RunRecord,
    remote: Option<RunRecord>,
    scheduler_end: Option<JobEnd>,
    run_dir: &RunDir,
) -> RunRecord {
    let mut end = local.clone();
    match remote.filter(|r| r.status != RunStatus::Running) {
        Some(remote) => {
            end.status = remote.status;
            end.failure = remote.failure;
            end.exit_code = remote.exit_code;
            end.start_time = remote.start_time;
            end.end_time = remote.end_time;
            end.command = remote.command;
            end.environment = remote.environment;
            end.host = remote.host;
            end.outputs = remote.outputs;
            end.outputs_dir = run_dir.outputs();
            end.logged = remote.logged;
            end.tracking = remote.tracking;
            end.source.input_tree_sha256 = remote.source.input_tree_sha256;
        }
        None => {
            end.end_time = Some(now_ms());
            match scheduler_end {
                Some(JobEnd { status, exit_code }) => {
                    end.status = if status == RunStatus::Finished { RunStatus::Failed } else { status };
                    end.exit_code = exit_code;
                    end.failure = Some(
                        "the job ended before lockstep on the far side recorded the run's end (see the job's log)"
                            .into(),
                    );
                }
                None => {
                    end.status = RunStatus::Lost;
                    end.failure =
                        Some("lost: the job left the scheduler without a terminal state or a record of its end".into());
                }
            }
        }
    }
    end
}

/// KILLED by `signal`; an exit code the far side recorded (the job's SIGTERM, 143) stays.
fn mark_killed(record: &mut RunRecord, signal: i32) {
    record.status = RunStatus::Killed;
    record.exit_code.get_or_insert(128 + signal);
    record.end_time.get_or_insert_with(now_ms);
}

/// The exit code an ended run gives lockstep: its own, else 1 for a run that did not finish.
fn exit_code_of(record: &RunRecord) -> i32 {
    match (record.status, record.exit_code) {
        (RunStatus::Finished, _) => 0,
        (_, Some(code)) if code != 0 => code,
        _ => 1,
    }
}

fn nodes_of(record: &RunRecord) -> Option<&str> {
    record.backend.as_ref().and_then(|b| b.nodes.as_deref())
}

/// Copy what is new in the job's log to the terminal; a log that cannot be read now is read
/// at the next poll.
fn forward_logs(backend: &dyn Backend, job: &JobRef, offset: u64, echo: Echo) -> u64 {
    let Ok(bytes) = backend.logs(job, offset) else { return 0 };
    if bytes.is_empty() {
        return 0;
    }
    let _ = match echo {
        Echo::Stdout => std::io::stdout().lock().write_all(&bytes).and_then(|()| std::io::stdout().flush()),
        Echo::Stderr => std::io::stderr().lock().write_all(&bytes),
        Echo::Quiet => Ok(()),
    };
    bytes.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> RunRecord {
        let mut r = crate::record::sample_record("ab", 10);
        r.backend = Some(BackendRecord {
            name: "slurm".into(),
            job_id: "7".into(),
            nodes: None,
            config: Default::default(),
            details: serde_json::Value::Null,
        });
        r
    }

    #[test]
    fn a_job_gone_without_a_record_is_lost_never_finished() {
        let dir = RunDir::new("/r".into());
        let end = merge(&local(), None, None, &dir);
        assert_eq!(end.status, RunStatus::Lost);
        let mut running = local();
        running.start_time = 20;
        assert_eq!(merge(&local(), Some(running), None, &dir).status, RunStatus::Lost, "a RUNNING remote record");
        let finished = JobEnd { status: RunStatus::Finished, exit_code: Some(0) };
        assert_eq!(merge(&local(), None, Some(finished), &dir).status, RunStatus::Failed, "no record of its end");
    }

    #[test]
    fn the_remote_record_is_the_truth() {
        let dir = RunDir::new("/r".into());
        let mut remote = crate::record::sample_record("ab", 30);
        remote.status = RunStatus::Failed;
        remote.exit_code = Some(3);
        remote.end_time = Some(40);
        let killed = JobEnd { status: RunStatus::Killed, exit_code: None };
        let end = merge(&local(), Some(remote), Some(killed), &dir);
        assert_eq!((end.status, end.exit_code, end.start_time), (RunStatus::Failed, Some(3), 30));
        assert_eq!(end.outputs_dir, dir.outputs(), "outputs are collected into the local run");
        assert_eq!(end.backend.unwrap().job_id, "7", "the local record keeps its job");
        assert_eq!(exit_code_of(&end_with(RunStatus::Failed, Some(3))), 3);
        assert_eq!(exit_code_of(&end_with(RunStatus::Lost, None)), 1);
    }

    fn end_with(status: RunStatus, exit_code: Option<i32>) -> RunRecord {
        RunRecord { status, exit_code, ..local() }
    }
}
