//! The Ray Jobs API's wire format, as the dashboard's `job_head.py` speaks it: the job that
//! `POST /api/jobs/` takes, what `GET /api/jobs/<id>` and `/logs` answer, and the words of
//! its errors (a Python traceback as plain text, whose last exception line says why).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A job to submit: the body of `POST /api/jobs/` (Ray's `JobSubmitRequest`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubmitRequest {
    /// The shell command the job runs, in the runtime environment's working directory.
    pub entrypoint: String,
    /// The id the job is known by; chosen by lockstep, so that a retried submit is refused
    /// as a duplicate instead of starting the run twice.
    pub submission_id: String,
    /// The runtime environment (`working_dir`, `env_vars`, `pip`, ...).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub runtime_env: Map<String, Value>,
    /// Labels of the job, strings only.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// CPUs reserved for the entrypoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint_num_cpus: Option<f64>,
    /// GPUs reserved for the entrypoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint_num_gpus: Option<f64>,
    /// Custom resources reserved for the entrypoint.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub entrypoint_resources: BTreeMap<String, f64>,
}

/// The answer to a submit (Ray's `JobSubmitResponse`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SubmitResponse {
    /// The job's submission id (the one asked for).
    pub submission_id: String,
}

/// Where a submitted job is (Ray's `JobStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobStatus {
    /// Waiting for resources or for its runtime environment.
    Pending,
    /// The entrypoint runs.
    Running,
    /// Stopped through the API (`/stop`).
    Stopped,
    /// The entrypoint exited 0.
    Succeeded,
    /// The entrypoint exited non-zero, or the job could not start.
    Failed,
}

impl JobStatus {
    /// Whether the job can change no more.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Stopped | JobStatus::Succeeded | JobStatus::Failed)
    }
}

/// A job as `GET /api/jobs/<id>` describes it (the fields of Ray's `JobDetails` that
/// lockstep reads).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobInfo {
    /// Its state.
    pub status: JobStatus,
    /// Ray's words on the state (for a failure, why, with the last lines of the log).
    #[serde(default)]
    pub message: Option<String>,
    /// The kind of failure (`JOB_ENTRYPOINT_COMMAND_ERROR`, `RUNTIME_ENV_SETUP_FAILURE`, ...).
    #[serde(default)]
    pub error_type: Option<String>,
    /// When the job started, in ms since the epoch.
    #[serde(default)]
    pub start_time: Option<u64>,
    /// When it reached a terminal state, in ms since the epoch.
    #[serde(default)]
    pub end_time: Option<u64>,
    /// The entrypoint's exit code, once it exited.
    #[serde(default)]
    pub driver_exit_code: Option<i32>,
    /// The node the entrypoint runs on.
    #[serde(default)]
    pub driver_node_id: Option<String>,
    /// That node's agent, `http://IP:PORT`: the address of the worker.
    #[serde(default)]
    pub driver_agent_http_address: Option<String>,
}

impl JobInfo {
    /// The worker the job runs on, as a person reads it: the agent's host, else the node id.
    pub fn worker(&self) -> Option<String> {
        let host = self.driver_agent_http_address.as_deref().map(|a| {
            let rest = a.split_once("://").map_or(a, |(_, r)| r);
            rest.rsplit_once(':').map_or(rest, |(h, _)| h).to_string()
        });
        host.or_else(|| self.driver_node_id.clone())
    }
}

/// The answer of `GET /api/jobs/<id>/logs` (Ray's `JobLogsResponse`): the whole log so far.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct LogsResponse {
    /// The entrypoint's stdout and stderr, with Ray's lines before them.
    pub logs: String,
}

/// The answer of `POST /api/jobs/<id>/stop` (Ray's `JobStopResponse`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StopResponse {
    /// False when the job had already ended.
    pub stopped: bool,
}

/// The longest error text kept from an answer that is not a traceback.
const MAX_ERROR_TEXT: usize = 300;

/// What an error answer says, in one line: the last exception of a Python traceback (the
/// dashboard wraps the agent's traceback in its own, so the last is the first cause), else
/// the text itself, shortened.
pub(crate) fn error_message(body: &str) -> String {
    let exception = body.lines().rev().map(str::trim_end).find(|line| is_exception_line(line));
    if let Some(line) = exception {
        return line.to_string();
    }
    let text = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None if text.is_empty() => "no reason given".into(),
        None => text,
    }
}

/// `ValueError: ...`, `ray.exceptions.RuntimeEnvSetupError: ...`: a line that starts with
/// a dotted Python name ending in `Error` or `Exception`, then `: `.
fn is_exception_line(line: &str) -> bool {
    let Some((name, _)) = line.split_once(": ") else { return false };
    !name.is_empty()
        && !name.starts_with(' ')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && (name.ends_with("Error") || name.ends_with("Exception"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_info_reads_as_the_dashboard_sends_it() {
        // An answer of Ray 2.60's dashboard, shortened.
        let body = r#"{"type": "SUBMISSION", "job_id": null, "submission_id": "t1", "driver_info": null,
            "status": "FAILED", "entrypoint": "exit 3", "message": "Job entrypoint command failed with exit code 3",
            "error_type": "JOB_ENTRYPOINT_COMMAND_ERROR", "start_time": 1796169154544, "end_time": 1796169157518,
            "metadata": {"a": "b"}, "runtime_env": null, "driver_agent_http_address": "http://127.0.0.1:34671",
            "driver_node_id": "87217f11", "driver_exit_code": 3}"#;
        let info: JobInfo = serde_json::from_str(body).unwrap();
        assert_eq!(info.status, JobStatus::Failed);
        assert!(info.status.is_terminal());
        assert_eq!(info.driver_exit_code, Some(3));
        assert_eq!(info.error_type.as_deref(), Some("JOB_ENTRYPOINT_COMMAND_ERROR"));
        assert_eq!((info.start_time, info.end_time), (Some(1796169154544), Some(1796169157518)));
        assert_eq!(info.worker().as_deref(), Some("127.0.0.1"));
    }

    #[test]
    fn a_pending_job_has_no_times_nor_worker_yet() {
        let info: JobInfo = serde_json::from_str(r#"{"status": "PENDING", "entrypoint": "true"}"#).unwrap();
        assert_eq!(info.status, JobStatus::Pending);
        assert!(!info.status.is_terminal());
        assert_eq!((info.start_time, info.driver_exit_code, info.worker()), (None, None, None));
        let node: JobInfo = serde_json::from_str(r#"{"status": "RUNNING", "driver_node_id": "n1"}"#).unwrap();
        assert_eq!(node.worker().as_deref(), Some("n1"), "the node id when the agent is not known");
    }

    #[test]
    fn an_unknown_status_is_not_taken_for_a_known_one() {
        assert!(serde_json::from_str::<JobInfo>(r#"{"status": "DONE"}"#).is_err());
    }

    #[test]
    fn a_submit_request_leaves_out_what_is_not_set() {
        let request = SubmitRequest {
            entrypoint: "./lockstep run p.tar.gz".into(),
            submission_id: "lockstep-1".into(),
            runtime_env: Map::new(),
            metadata: BTreeMap::new(),
            entrypoint_num_cpus: None,
            entrypoint_num_gpus: Some(1.0),
            entrypoint_resources: BTreeMap::new(),
        };
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            serde_json::json!({"entrypoint": "./lockstep run p.tar.gz", "submission_id": "lockstep-1", "entrypoint_num_gpus": 1.0})
        );
    }

    #[test]
    fn the_reason_of_a_refusal_is_the_last_exception_of_the_traceback() {
        let body = "Traceback (most recent call last):\n  File \"job_head.py\", line 419, in submit_job\n    resp = await x\n\
            RuntimeError: Request failed with status code 400: Traceback (most recent call last):\n  File \"job_manager.py\", line 553\n    raise ValueError(\n\
            ValueError: Job with submission_id a already exists. Please use a different submission_id.\n.\n";
        assert_eq!(
            error_message(body),
            "ValueError: Job with submission_id a already exists. Please use a different submission_id."
        );
        let body = "Traceback (most recent call last):\n  File \"<string>\", line 13, in __init__\n\
            TypeError: entrypoint_num_cpus must be a number, got <class 'str'>\n";
        assert_eq!(error_message(body), "TypeError: entrypoint_num_cpus must be a number, got <class 'str'>");
        assert_eq!(
            error_message("ray.exceptions.RuntimeEnvSetupError: no pip\n"),
            "ray.exceptions.RuntimeEnvSetupError: no pip"
        );
    }

    #[test]
    fn a_refusal_without_a_traceback_is_its_text_on_one_line() {
        assert_eq!(
            error_message("500 Internal Server Error\n\nServer got itself in trouble"),
            "500 Internal Server Error Server got itself in trouble"
        );
        assert_eq!(error_message("Job t9 does not exist"), "Job t9 does not exist");
        assert_eq!(error_message("  \n"), "no reason given");
        let long = "x".repeat(1000);
        assert_eq!(error_message(&long).len(), MAX_ERROR_TEXT + 3);
        assert!(!is_exception_line("  File \"x\", line 1: Error"), "an indented line is no exception");
    }
}
