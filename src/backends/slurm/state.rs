//! What Slurm's tools say about a job, parsed: `scontrol show job -o` while the controller
//! knows the job, `sacct` once it does not (where accounting exists).

use super::super::{JobEnd, JobState};
use crate::record::RunStatus;

/// The state a `scontrol show job -o` line gives: `JobState=`, `NodeList=`, `ExitCode=`.
pub fn from_scontrol(line: &str) -> JobState {
    let field = |name: &str| {
        line.split_whitespace().find_map(|word| word.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
    };
    let nodes = field("NodeList").filter(|n| !n.is_empty() && *n != "(null)").map(str::to_string);
    from_state(field("JobState").unwrap_or(""), field("ExitCode"), nodes)
}

/// The state a `sacct -X -n -P -o State,ExitCode` line gives (`CANCELLED by 0|0:15`), if the
/// line holds one.
pub fn from_sacct(output: &str) -> Option<JobState> {
    let line = output.lines().find(|l| !l.trim().is_empty())?;
    let (state, exit) = line.split_once('|')?;
    let state = state.split_whitespace().next()?;
    Some(from_state(state, Some(exit.trim()), None))
}

/// A Slurm job state name (with its exit code `CODE:SIGNAL`) as a [`JobState`]. States that
/// leave the job waiting are pending; those that end it map to FINISHED, FAILED or KILLED.
fn from_state(state: &str, exit: Option<&str>, nodes: Option<String>) -> JobState {
    let ended =
        |status| JobState::Ended { end: JobEnd { status, exit_code: exit.and_then(exit_code) }, nodes: nodes.clone() };
    match state {
        "RUNNING" | "COMPLETING" | "STAGE_OUT" | "SIGNALING" | "STOPPED" | "SUSPENDED" => {
            JobState::Running { nodes: nodes.clone() }
        }
        "COMPLETED" => ended(RunStatus::Finished),
        "CANCELLED" | "PREEMPTED" | "REVOKED" => ended(RunStatus::Killed),
        "FAILED" | "TIMEOUT" | "NODE_FAIL" | "OUT_OF_MEMORY" | "BOOT_FAIL" | "DEADLINE" | "SPECIAL_EXIT" => {
            ended(RunStatus::Failed)
        }
        // PENDING, CONFIGURING, REQUEUED, REQUEUE_HOLD, RESIZING, and what a newer Slurm adds.
        _ => JobState::Pending,
    }
}

/// Slurm's `CODE:SIGNAL` as a shell would report it: the code, or 128 + the signal.
fn exit_code(text: &str) -> Option<i32> {
    let (code, signal) = text.split_once(':')?;
    let (code, signal): (i32, i32) = (code.parse().ok()?, signal.parse().ok()?);
    Some(if signal != 0 { 128 + signal } else { code })
}

/// Whether a tool's stderr says the controller does not know the job (any more).
pub fn unknown_job(stderr: &str) -> bool {
    stderr.contains("Invalid job id")
}

/// Whether `sacct`'s stderr says there is no accounting to ask.
pub fn no_accounting(stderr: &str) -> bool {
    stderr.contains("accounting storage is disabled") || stderr.contains("Problem talking to the database")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scontrol_lines_give_state_nodes_and_exit_code() {
        let line = "JobId=2 JobName=wrap UserId=root(0) JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0 \
                    ReqNodeList=(null) ExcNodeList=(null) NodeList=vm BatchHost=vm";
        assert_eq!(
            from_scontrol(line),
            JobState::Ended { end: JobEnd { status: RunStatus::Failed, exit_code: Some(3) }, nodes: Some("vm".into()) }
        );
        let running = "JobId=3 JobState=RUNNING ExitCode=0:0 ReqNodeList=(null) NodeList=vm";
        assert_eq!(from_scontrol(running), JobState::Running { nodes: Some("vm".into()) });
        let pending = "JobId=4 JobState=PENDING ExitCode=0:0 NodeList=";
        assert_eq!(from_scontrol(pending), JobState::Pending);
        let killed = "JobId=5 JobState=CANCELLED ExitCode=0:15 NodeList=vm";
        assert_eq!(
            from_scontrol(killed),
            JobState::Ended {
                end: JobEnd { status: RunStatus::Killed, exit_code: Some(143) },
                nodes: Some("vm".into())
            }
        );
    }

    #[test]
    fn sacct_lines_give_the_terminal_state() {
        let done = JobEnd { status: RunStatus::Finished, exit_code: Some(0) };
        assert_eq!(from_sacct("COMPLETED|0:0\n"), Some(JobState::Ended { end: done, nodes: None }));
        let cancelled = JobEnd { status: RunStatus::Killed, exit_code: Some(0) };
        assert_eq!(from_sacct("CANCELLED by 0|0:0\n"), Some(JobState::Ended { end: cancelled, nodes: None }));
        let timeout = JobEnd { status: RunStatus::Failed, exit_code: Some(143) };
        assert_eq!(from_sacct("TIMEOUT|0:15"), Some(JobState::Ended { end: timeout, nodes: None }));
        assert_eq!(from_sacct(""), None, "a job accounting does not know");
        assert!(unknown_job("slurm_load_jobs error: Invalid job id specified"));
        assert!(no_accounting("Slurm accounting storage is disabled"));
    }
}
