//! A sweep's results: a row per trial with its varying values, the metrics its script
//! logged (the last value of each), its status, duration and whether it was reused, ranked
//! by one metric.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::commands::CommandError as Error;
use crate::record::{RunRecord, RunStatus, Store, SweepRecord};

/// Which end of a metric is best.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// The smallest value (a loss, an error).
    Min,
    /// The largest value (an accuracy).
    Max,
}

/// One trial's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// Its index in the sweep (the grid's order).
    pub trial: usize,
    /// Its run, when it has one.
    pub run_id: Option<String>,
    /// The values of the varying parameters.
    pub params: BTreeMap<String, String>,
    /// The last value of each metric its run logged.
    pub metrics: BTreeMap<String, f64>,
    /// `FINISHED`, `FAILED`, `KILLED`, `RUNNING`, or `NOT RUN`.
    pub status: String,
    /// Its run's duration in ms (of the earlier run, for a reused one).
    pub duration_ms: Option<u64>,
    /// Whether an earlier equivalent run was reused.
    pub reused: bool,
}

/// A sweep's rows, ranked.
#[derive(Debug, Clone, Serialize)]
pub struct SweepTable {
    /// The sweep's record.
    pub sweep: SweepRecord,
    /// The varying parameters, in the grid's order: the table's parameter columns.
    pub param_columns: Vec<String>,
    /// Every metric some trial logged, the ranking one first.
    pub metric_columns: Vec<String>,
    /// The rows, best first when ranked by a metric, else in the grid's order.
    pub rows: Vec<SweepRow>,
}

/// The table of the sweep `id` (or a unique prefix) of the store.
pub fn show(store: &Path, id: &str, metric: Option<&str>, goal: Goal) -> Result<SweepTable, Error> {
    let store = Store::open(store)?;
    let sweep = store.find_sweep(id)?;
    let runs: Vec<Option<RunRecord>> =
        sweep.trials.iter().map(|t| t.run_id.as_deref().and_then(|r| store.find(r).ok())).collect();
    Ok(table(sweep, &runs, metric, goal))
}

impl SweepTable {
    /// The table of a sweep not run (`--dry-run`): its trials, in the grid's order.
    pub fn planned(sweep: SweepRecord) -> SweepTable {
        let runs = vec![None; sweep.trials.len()];
        table(sweep, &runs, None, Goal::Min)
    }
}

/// The runs of the sweep `id`'s trials (reused ones included), for `lockstep runs --sweep`.
pub fn trial_runs(store: &Path, id: &str) -> Result<BTreeSet<String>, Error> {
    let sweep = Store::open(store)?.find_sweep(id)?;
    Ok(sweep.trials.into_iter().filter_map(|t| t.run_id).collect())
}

/// Rows from a sweep's record and its trials' run records (None for a trial without one).
pub(crate) fn table(sweep: SweepRecord, runs: &[Option<RunRecord>], metric: Option<&str>, goal: Goal) -> SweepTable {
    let param_columns: Vec<String> =
        sweep.grid.iter().filter(|(_, values)| values.len() > 1).map(|(name, _)| name.clone()).collect();
    let mut rows: Vec<SweepRow> = sweep
        .trials
        .iter()
        .zip(runs)
        .enumerate()
        .map(|(trial, (t, run))| SweepRow {
            trial,
            run_id: t.run_id.clone(),
            params: param_columns.iter().filter_map(|n| Some((n.clone(), t.params.get(n)?.clone()))).collect(),
            metrics: run
                .as_ref()
                .and_then(|r| r.logged.as_ref())
                .map(|l| l.metrics.iter().map(|(k, m)| (k.clone(), m.last)).collect())
                .unwrap_or_default(),
            status: match (run, t.status) {
                (Some(r), _) => r.status.name().to_string(),
                (None, Some(s)) => s.name().to_string(),
                (None, None) if t.run_id.is_none() => "NOT RUN".to_string(),
                (None, None) => RunStatus::Running.name().to_string(),
            },
            duration_ms: run.as_ref().and_then(RunRecord::duration_ms),
            reused: t.reused,
        })
        .collect();
    let mut metric_columns: BTreeSet<String> = rows.iter().flat_map(|r| r.metrics.keys().cloned()).collect();
    let mut ordered: Vec<String> = Vec::new();
    if let Some(m) = metric {
        metric_columns.remove(m);
        ordered.push(m.to_string());
        rows.sort_by(|a, b| rank(a.metrics.get(m), b.metrics.get(m), goal).then(a.trial.cmp(&b.trial)));
    }
    ordered.extend(metric_columns);
    SweepTable { sweep, param_columns, metric_columns: ordered, rows }
}

/// Best first; trials without the metric (or with NaN) last.
fn rank(a: Option<&f64>, b: Option<&f64>, goal: Goal) -> Ordering {
    let a = a.copied().filter(|v| !v.is_nan());
    let b = b.copied().filter(|v| !v.is_nan());
    match (a, b) {
        (Some(a), Some(b)) => match goal {
            Goal::Min => a.total_cmp(&b),
            Goal::Max => b.total_cmp(&a),
        },
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Logged, SWEEP_SCHEMA, SweepState, SweepTrial, logged::MetricSummary};

    fn run_with(id: &str, rmse: Option<f64>) -> RunRecord {
        let mut r = crate::record::sample_record(id, 1);
        r.status = RunStatus::Finished;
        r.end_time = Some(11);
        r.logged = rmse.map(|v| Logged {
            metrics: [("rmse".to_string(), MetricSummary { last: v, step: 0, min: v, max: v, count: 1 })].into(),
            ..Default::default()
        });
        r
    }

    #[test]
    fn rows_are_ranked_by_the_metric_with_missing_values_last() {
        let trial = |a: &str, id: Option<&str>| SweepTrial {
            params: [("a".to_string(), a.to_string()), ("seed".to_string(), "1".to_string())].into(),
            run_id: id.map(str::to_string),
            status: id.map(|_| RunStatus::Finished),
            reused: a == "3",
            error: None,
        };
        let sweep = SweepRecord {
            schema: SWEEP_SCHEMA.into(),
            sweep_id: "s".into(),
            uri: ".".into(),
            entry_point: "main".into(),
            grid: vec![
                ("a".into(), vec!["1".into(), "2".into(), "3".into(), "4".into()]),
                ("seed".into(), vec!["1".into()]),
            ],
            random: None,
            state: SweepState::Finished,
            start_time: 1,
            end_time: Some(2),
            tracking_run_id: None,
            trials: vec![trial("1", Some("r1")), trial("2", Some("r2")), trial("3", Some("r3")), trial("4", None)],
        };
        let runs = [Some(run_with("r1", Some(0.5))), Some(run_with("r2", None)), Some(run_with("r3", Some(0.2))), None];
        let t = table(sweep.clone(), &runs, Some("rmse"), Goal::Min);
        assert_eq!(t.param_columns, ["a"], "only the varying parameters");
        assert_eq!(t.metric_columns, ["rmse"]);
        let order: Vec<usize> = t.rows.iter().map(|r| r.trial).collect();
        assert_eq!(order, [2, 0, 1, 3]);
        assert!(t.rows[0].reused);
        assert_eq!(t.rows[3].status, "NOT RUN");
        assert_eq!(t.rows[1].duration_ms, Some(10));
        let max: Vec<usize> =
            table(sweep.clone(), &runs, Some("rmse"), Goal::Max).rows.iter().map(|r| r.trial).collect();
        assert_eq!(max, [0, 2, 1, 3]);
        let unranked: Vec<usize> = table(sweep, &runs, None, Goal::Min).rows.iter().map(|r| r.trial).collect();
        assert_eq!(unranked, [0, 1, 2, 3]);
    }
}
