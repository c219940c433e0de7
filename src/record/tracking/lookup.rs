//! Finding things on the server: the experiment a choice names, the server's run of a local
//! run (never made twice), and the parameters a run sends.

use super::tags::{run_tags, user_name};
use super::{DEFAULT_EXPERIMENT_ID, ExperimentChoice, RUN_ID_TAG};
use crate::record::mlflow::{Experiment, MAX_PARAM_VALUE_LENGTH, MlflowClient, NewRun, RunInfo};
use crate::record::{RunRecord, TrackingError};
use crate::support::ui;

/// The experiment a choice names, created when a name is missing.
pub(super) fn resolve_experiment(
    client: &MlflowClient,
    choice: &ExperimentChoice,
) -> Result<Experiment, TrackingError> {
    let unknown = |id: &str| TrackingError::UnknownExperiment { id: id.to_string(), uri: client.uri().to_string() };
    let experiment = match choice {
        ExperimentChoice::Default => {
            client.experiment(DEFAULT_EXPERIMENT_ID)?.ok_or_else(|| unknown(DEFAULT_EXPERIMENT_ID))?
        }
        ExperimentChoice::Id(id) => client.experiment(id)?.ok_or_else(|| unknown(id))?,
        ExperimentChoice::Name(name) => match client.experiment_by_name(name)? {
            Some(e) => e,
            None => match client.create_experiment(name)? {
                Some(id) => {
                    ui::note(&format!("created experiment '{name}' ({id}) on {}", client.uri()));
                    Experiment { experiment_id: id, name: name.clone(), lifecycle_stage: "active".into() }
                }
                // Another client created it meanwhile.
                None => client.experiment_by_name(name)?.ok_or_else(|| unknown(name))?,
            },
        },
    };
    if experiment.lifecycle_stage == "deleted" {
        return Err(TrackingError::DeletedExperiment { experiment: experiment.name, uri: client.uri().to_string() });
    }
    Ok(experiment)
}

/// The server's run of a local run: the one tagged with its id, or a new one.
///
/// `runs/create` is not idempotent, so it is never retried blindly: after a failed attempt,
/// the run is looked for first, in case the server made it and only the answer was lost.
pub(super) fn find_or_create(
    client: &MlflowClient,
    experiment_id: &str,
    record: &RunRecord,
    search_first: bool,
) -> Result<RunInfo, TrackingError> {
    let once = client.without_retries();
    let user = user_name();
    let tags = run_tags(record);
    let new = NewRun {
        experiment_id,
        user: &user,
        run_name: record.run_name.as_deref(),
        start_time: record.start_time,
        tags: &tags,
    };
    let mut failures = 0;
    loop {
        let attempt = (|| {
            if (search_first || failures > 0)
                && let Some(run) = once.runs_tagged(experiment_id, RUN_ID_TAG, &record.run_id)?.into_iter().next()
            {
                return Ok(run);
            }
            once.create_run_once(&new)
        })();
        match attempt {
            Err(e) if e.is_transient() => {
                failures += 1;
                match client.retry_wait(failures) {
                    Some(wait) => std::thread::sleep(wait),
                    None => return Err(e),
                }
            }
            other => return other,
        }
    }
}

/// Parameters longer than MLflow accepts are refused before anything is created.
pub(super) fn check_params(record: &RunRecord) -> Result<(), TrackingError> {
    for (name, value) in &record.parameters {
        let length = value.chars().count();
        if length > MAX_PARAM_VALUE_LENGTH {
            return Err(TrackingError::ParamTooLong { name: name.clone(), length });
        }
    }
    Ok(())
}

/// Parameters with their raw values (MLflow logs shell-quoted ones, mlflow#6811).
pub(super) fn params(record: &RunRecord) -> Vec<(String, String)> {
    record.parameters.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tracking::test_record as record;

    #[test]
    fn a_failed_create_is_followed_by_a_search_not_a_second_run() {
        use crate::record::mlflow::testing::{fake_server, quick_client};
        let found = r#"{"runs": [{"info": {"run_id": "r1", "experiment_id": "0"}}]}"#;
        let (uri, seen) = fake_server(vec![(503, "{}"), (200, found)]);
        let run = find_or_create(&quick_client(&uri, 3), "0", &record(), false).unwrap();
        assert_eq!(run.run_id, "r1", "the run the lost answer made");
        let requests: Vec<String> = seen.try_iter().collect();
        assert!(requests[0].starts_with("POST /api/2.0/mlflow/runs/create "), "{}", requests[0]);
        assert!(requests[1].starts_with("POST /api/2.0/mlflow/runs/search "), "{}", requests[1]);
        assert_eq!(requests.len(), 2);

        let created = r#"{"run": {"info": {"run_id": "r2", "experiment_id": "0"}}}"#;
        let (uri, seen) = fake_server(vec![(200, "{}"), (200, created)]);
        let run = find_or_create(&quick_client(&uri, 3), "0", &record(), true).unwrap();
        assert_eq!(run.run_id, "r2", "nothing tagged with the local id: a new run");
        assert_eq!(seen.try_iter().count(), 2);
    }

    #[test]
    fn long_parameters_are_refused_before_anything_is_sent() {
        let mut r = record();
        assert!(check_params(&r).is_ok());
        r.parameters.insert("big".into(), "é".repeat(MAX_PARAM_VALUE_LENGTH + 1));
        assert!(matches!(check_params(&r), Err(TrackingError::ParamTooLong { .. })));
    }
}
