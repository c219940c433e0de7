//! The Ray Jobs client against a real Ray head: a package staged once, jobs submitted with
//! their resources and metadata, their state, exit code and log read back, a duplicate and
//! an unknown job refused, and a stopped job really gone.

use std::collections::BTreeMap;
use std::time::Duration;

use lockstep::backends::ray::{JobInfo, JobPackage, JobStatus, JobsClient, RayError, SubmitRequest};
use serde_json::{Map, Value, json};

use crate::support::ray::RayHead;
use crate::support::{random_hex, wait_for, write_file};

fn request(entrypoint: &str) -> SubmitRequest {
    SubmitRequest {
        entrypoint: entrypoint.into(),
        submission_id: format!("lockstep-test-{}", random_hex(8)),
        runtime_env: Map::new(),
        metadata: BTreeMap::new(),
        entrypoint_num_cpus: None,
        entrypoint_num_gpus: None,
        entrypoint_resources: BTreeMap::new(),
    }
}

/// Poll a job until `done` holds for its state; the last state.
fn wait_for_job(client: &JobsClient, id: &str, done: impl Fn(&JobInfo) -> bool) -> JobInfo {
    let mut last = None;
    wait_for(Duration::from_secs(60), || {
        last = client.job(id).unwrap();
        last.as_ref().is_some_and(&done)
    });
    let last = last.expect("the job is known");
    assert!(done(&last), "job {id} did not get there: {last:?}");
    last
}

#[test]
fn jobs_run_from_a_staged_package_and_report_their_exit_code_and_log() {
    let head = RayHead::start();
    let client = JobsClient::new(&format!("127.0.0.1:{}", head.port)).unwrap();
    assert_eq!(client.ray_version().unwrap(), "2.60.0");

    let dir = tempfile::tempdir().unwrap();
    let binary = write_file(&dir.path().join("tool.sh"), "#!/bin/sh\necho \"packaged: $*\"\nexit 3\n");
    let archive = write_file(&dir.path().join("p.tar.gz"), &random_hex(16));
    let package = JobPackage::new(&binary, &archive, "p.tar.gz").unwrap();
    assert!(package.stage(&client).unwrap(), "a new package is uploaded");
    assert!(!package.stage(&client).unwrap(), "a package the cluster holds is not sent again");

    let mut job = request("./lockstep one two && cat p.tar.gz");
    job.runtime_env.insert("working_dir".into(), Value::String(package.uri()));
    job.metadata.insert("lockstep_run_id".into(), "r1".into());
    job.entrypoint_num_cpus = Some(0.5);
    let id = client.submit(&job).unwrap();
    assert_eq!(id, job.submission_id);
    let info = wait_for_job(&client, &id, |i| i.status.is_terminal());
    assert_eq!((info.status, info.driver_exit_code), (JobStatus::Failed, Some(3)), "{info:?}");
    assert_eq!(info.worker().as_deref(), Some("127.0.0.1"));
    assert!(info.start_time.is_some() && info.end_time >= info.start_time, "{info:?}");
    let logs = client.logs(&id).unwrap();
    assert!(logs.contains("packaged: one two\n"), "{logs}");

    let err = client.submit(&job).unwrap_err();
    assert!(matches!(err, RayError::Refused { .. }), "{err}");
    assert!(err.to_string().contains(&format!("Job with submission_id {id} already exists")), "{err}");

    assert_eq!(client.job("lockstep-no-such-job").unwrap(), None);
    let err = client.logs("lockstep-no-such-job").unwrap_err();
    assert!(matches!(err, RayError::NoSuchJob { .. }), "{err}");
    let err = client.stop("lockstep-no-such-job").unwrap_err();
    assert!(matches!(err, RayError::NoSuchJob { .. }), "{err}");

    // A runtime environment is checked by the cluster once the job is taken: the job fails
    // without an exit code, its entrypoint never started.
    let mut bad = request("true");
    bad.runtime_env.insert("working_dir".into(), json!(42));
    let id = client.submit(&bad).unwrap();
    let info = wait_for_job(&client, &id, |i| i.status.is_terminal());
    assert_eq!((info.status, info.driver_exit_code), (JobStatus::Failed, None), "{info:?}");
}

#[test]
fn a_stopped_job_is_stopped_and_its_processes_are_gone() {
    let head = RayHead::start();
    let client = JobsClient::new(&head.address()).unwrap();
    // A length no other test's job sleeps, to find its processes by.
    let marker = format!("sleep {}", 600 + u32::from_str_radix(&random_hex(2), 16).unwrap());
    let id = client.submit(&request(&format!("echo started; {marker}"))).unwrap();
    wait_for_job(&client, &id, |i| i.status == JobStatus::Running);
    assert!(wait_for(Duration::from_secs(20), || !head.processes_with(&marker).is_empty()), "the job runs");
    assert!(client.stop(&id).unwrap(), "a running job is stopped");
    let info = wait_for_job(&client, &id, |i| i.status.is_terminal());
    assert_eq!(info.status, JobStatus::Stopped, "{info:?}");
    assert!(wait_for(Duration::from_secs(10), || head.processes_with(&marker).is_empty()), "its processes are gone");
    assert!(!client.stop(&id).unwrap(), "an ended job is not stopped again");

    // A job that asks for a resource no node has waits. Ray takes a stop of it, but a job
    // whose supervisor never started stays PENDING (lockstep's cancel then records KILLED
    // after its wait).
    let mut waiting = request("true");
    waiting.entrypoint_resources.insert("lockstep_test_no_such_resource".into(), 1.0);
    let id = client.submit(&waiting).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(client.job(&id).unwrap().unwrap().status, JobStatus::Pending);
    assert!(client.stop(&id).unwrap());
}
