//! `lockstep runs`: the runs in the store, newest first, optionally filtered (experiment,
//! project, entry point, status, parameter values), sorted by a metric the script logged and
//! cut to a number, with the logged metrics as columns.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::CommandError;
use crate::record::{RecordError, RunRecord, RunStatus, Store};

/// Errors of choosing runs to list.
#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    /// `--param` without `=`.
    #[error("--param '{0}' is not NAME=VALUE")]
    BadParam(String),
    /// `--sort` names a metric none of the listed runs logged.
    #[error("no listed run logged the metric '{0}'")]
    UnknownMetric(String),
}

impl RunsError {
    /// What to try next.
    pub fn hint(&self) -> Option<String> {
        match self {
            RunsError::BadParam(_) => Some("for example --param alpha=0.5".into()),
            RunsError::UnknownMetric(_) => {
                Some("`lockstep show RUN` lists a run's metrics; --sort -NAME sorts in descending order".into())
            }
        }
    }
}

/// What to list.
#[derive(Debug, Default)]
pub struct RunsOptions {
    /// Only runs of this experiment (by name; runs without one are in `Default`).
    pub experiment: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs of this project (see [`RunRecord::project`]).
    pub project: Option<String>,
    /// Only runs of this entry point.
    pub entry_point: Option<String>,
    /// At most this many runs, the first ones in the listed order.
    pub limit: Option<usize>,
    /// Only runs with these parameter values (`NAME=VALUE`), given to lockstep or logged.
    pub params: Vec<String>,
    /// The metric columns; by default those every listed run logged.
    pub metrics: Option<Vec<String>>,
    /// Sort by this metric's last value: `NAME` ascending, `-NAME` descending.
    pub sort: Option<String>,
    /// Only these runs, by full id (a sweep's trials); filtered before the metric columns are
    /// chosen, so that they are the listed runs' own.
    pub only: Option<Vec<String>>,
}

/// What `runs` found.
#[derive(Debug)]
pub struct RunList {
    /// The store's directory.
    pub store: PathBuf,
    /// The readable runs that pass the filters, newest first or in the order asked.
    pub runs: Vec<RunRecord>,
    /// The metric columns.
    pub metrics: Vec<String>,
    /// Run directories that could not be read, each worth a warning.
    pub problems: Vec<RecordError>,
}

/// List the runs of the store, cleaning up first after lost Docker runs.
pub fn runs(store: &Path, opts: &RunsOptions) -> Result<RunList, CommandError> {
    let params: Vec<(&str, &str)> = opts
        .params
        .iter()
        .map(|p| p.split_once('=').ok_or_else(|| RunsError::BadParam(p.clone())))
        .collect::<Result<_, _>>()?;
    let store = Store::open(store)?;
    crate::pipeline::clean_up_lost_containers(&store);
    let (runs, problems) = store.list()?;
    // Detached backend runs are brought up to date before they are filtered by status.
    let mut runs: Vec<RunRecord> = runs.into_iter().map(|r| crate::backends::refresh(&store, r)).collect();
    runs.retain(|r| {
        let experiment = r.experiment_name.as_deref().unwrap_or("Default");
        opts.experiment.as_deref().is_none_or(|e| e == experiment)
            && opts.status.is_none_or(|s| s == r.status)
            && opts.project.as_deref().is_none_or(|p| p == r.project())
            && opts.entry_point.as_deref().is_none_or(|e| e == r.entry_point)
            && params.iter().all(|(k, v)| param(r, k) == Some(*v))
            && opts.only.as_ref().is_none_or(|ids| ids.iter().any(|id| id == r.run_id.as_str()))
    });
    if let Some(sort) = &opts.sort {
        let (name, descending) = match sort.strip_prefix('-') {
            Some(name) => (name, true),
            None => (sort.as_str(), false),
        };
        if !runs.iter().any(|r| metric(r, name).is_some()) {
            return Err(RunsError::UnknownMetric(name.to_string()).into());
        }
        // Runs without the metric (or with NaN) go last, whichever the direction.
        runs.sort_by(|a, b| match (metric(a, name).filter(|v| !v.is_nan()), metric(b, name).filter(|v| !v.is_nan())) {
            (Some(x), Some(y)) if descending => y.total_cmp(&x),
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
    }
    if let Some(limit) = opts.limit {
        runs.truncate(limit);
    }
    let metrics = match &opts.metrics {
        Some(names) => names.clone(),
        None => shared_metrics(&runs),
    };
    Ok(RunList { store: store.root().to_path_buf(), runs, metrics, problems })
}

/// A parameter of a run: as given to lockstep, else as the script logged it.
fn param<'a>(r: &'a RunRecord, name: &str) -> Option<&'a str> {
    r.parameters.get(name).or_else(|| r.logged.as_ref().and_then(|l| l.params.get(name))).map(String::as_str)
}

/// The last value of a metric the script of `r` logged.
pub fn metric(r: &RunRecord, name: &str) -> Option<f64> {
    r.logged.as_ref()?.metrics.get(name).map(|m| m.last)
}

/// The metrics every run of `runs` logged (none when one logged nothing).
fn shared_metrics(runs: &[RunRecord]) -> Vec<String> {
    let mut sets = runs
        .iter()
        .map(|r| r.logged.as_ref().map(|l| l.metrics.keys().cloned().collect::<BTreeSet<_>>()).unwrap_or_default());
    let Some(first) = sets.next() else { return Vec::new() };
    sets.fold(first, |acc, s| acc.intersection(&s).cloned().collect()).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::logged::{Logged, MetricSummary};

    fn with_metrics(id: &str, start: u64, metrics: &[(&str, f64)]) -> RunRecord {
        let mut r = crate::record::sample_record(&id.repeat(32), start);
        let summary = |v: f64| MetricSummary { last: v, step: 0, min: v, max: v, count: 1 };
        r.logged = Some(Logged {
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), summary(*v))).collect(),
            ..Logged::default()
        });
        r
    }

    #[test]
    fn the_columns_are_those_of_the_runs_kept_by_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let trial = with_metrics("a", 1, &[("rmse", 1.0)]);
        let mut other = crate::record::sample_record(&"b".repeat(32), 2);
        other.logged = None;
        for r in [&trial, &other] {
            let mut r = r.clone();
            r.status = RunStatus::Finished;
            std::fs::create_dir_all(store.run_dir(&r.run_id).path()).unwrap();
            store.save(&r).unwrap();
        }
        let mut opts = RunsOptions { only: Some(vec![trial.run_id.to_string()]), ..RunsOptions::default() };
        let list = runs(dir.path(), &opts).unwrap();
        assert_eq!(list.runs.len(), 1);
        assert_eq!(list.metrics, ["rmse"], "not emptied by a run outside the list");
        opts.only = None;
        assert!(runs(dir.path(), &opts).unwrap().metrics.is_empty());
    }

    #[test]
    fn only_metrics_every_run_logged_are_columns() {
        let runs = [with_metrics("a", 1, &[("rmse", 1.0), ("r2", 0.5)]), with_metrics("b", 2, &[("rmse", 2.0)])];
        assert_eq!(shared_metrics(&runs), ["rmse"]);
        assert!(shared_metrics(&[]).is_empty());
        let mut none = crate::record::sample_record(&"c".repeat(32), 3);
        none.logged = None;
        assert!(shared_metrics(&[runs[0].clone(), none]).is_empty());
        assert_eq!(metric(&runs[0], "r2"), Some(0.5));
        assert_eq!(param(&runs[0], "x"), None);
    }
}
