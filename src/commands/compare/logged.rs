//! What the scripts of two runs logged, compared as their outputs are: each metric's summary
//! exactly (or within `--rtol`), artifacts and model files by digest and then by content,
//! with MLflow's per-run noise (run and model ids, creation times) mapped from the original
//! run to the re-run. Nested runs and models are paired by the order they were made in and by
//! name: their ids differ from run to run.

use std::path::Path;

use serde::Serialize;

use super::{CompareRules, Comparison, FileCheck, FileSet, Located, RunNoise, compare_files};
use crate::record::RunRecord;
use crate::record::logged::{ARTIFACTS_DIR, Logged, MetricSummary, OTHER_RUNS_DIR};

/// One logged metric's comparison.
#[derive(Debug, Clone, Serialize)]
pub struct MetricCheck {
    /// The metric's name (`<nested run>/<name>` for a nested run's).
    pub key: String,
    /// The result.
    pub result: Comparison,
    /// Its summary in the original run.
    pub original: Option<MetricSummary>,
    /// Its summary in the re-run.
    pub rerun: Option<MetricSummary>,
    /// Which parts of the summary differ, with both values.
    pub detail: Option<String>,
}

/// What the two runs' scripts logged, compared.
#[derive(Debug, Clone, Default)]
pub struct LoggedChecks {
    /// The metrics of either run.
    pub metrics: Vec<MetricCheck>,
    /// The artifacts and model files of either run.
    pub artifacts: Vec<FileCheck>,
}

/// A run's record and its directory (absent for a record packed in an archive).
pub struct RunFiles<'a> {
    /// The record.
    pub record: &'a RunRecord,
    /// The run directory.
    pub dir: Option<&'a Path>,
}

/// Compare what the scripts of `original` and `rerun` logged.
pub fn compare_logged(original: RunFiles, rerun: RunFiles, rules: &CompareRules) -> LoggedChecks {
    let none = Logged::default();
    let logged = |r: &RunFiles| r.record.logged.clone().unwrap_or_else(|| none.clone());
    let (a, b) = (logged(&original), logged(&rerun));
    let mut noise = RunNoise { ids: vec![(original.record.run_id.to_string(), rerun.record.run_id.to_string())] };
    let mut metrics = compare_metrics("", &a.metrics, &b.metrics, rules);
    let (mut files_a, mut files_b) = (top_files(&a, original.dir), top_files(&b, rerun.dir));
    for i in 0..a.nested.len().max(b.nested.len()) {
        let (na, nb) = (a.nested.get(i), b.nested.get(i));
        let label = match (na.and_then(|n| n.name.as_ref()), nb.and_then(|n| n.name.as_ref())) {
            (Some(x), Some(y)) if x == y => x.clone(),
            _ => format!("nested[{}]", i + 1),
        };
        if let (Some(na), Some(nb)) = (na, nb) {
            noise.ids.push((na.run_id.clone(), nb.run_id.clone()));
        }
        let empty = Default::default();
        let prefix = format!("{label}/");
        metrics.extend(compare_metrics(
            &prefix,
            na.map_or(&empty, |n| &n.metrics),
            nb.map_or(&empty, |n| &n.metrics),
            rules,
        ));
        let nested_files = |n: Option<&crate::record::logged::NestedRun>, dir: Option<&Path>, set: &mut FileSet| {
            for f in n.map(|n| n.artifacts.as_slice()).unwrap_or_default() {
                let root = dir.map(|d| d.join(OTHER_RUNS_DIR).join(&n.expect("listed").run_id).join(ARTIFACTS_DIR));
                set.insert(
                    format!("{prefix}{}", f.path),
                    Located { file: f.clone(), at: root.map(|r| r.join(&f.path)) },
                );
            }
        };
        nested_files(na, original.dir, &mut files_a);
        nested_files(nb, rerun.dir, &mut files_b);
    }
    for model in &a.models {
        if let Some(other) = b.models.iter().find(|m| m.name == model.name) {
            noise.ids.push((model.model_id.clone(), other.model_id.clone()));
        }
    }
    LoggedChecks { metrics, artifacts: compare_files(&files_a, &files_b, rules, &noise) }
}

/// The top-level run's artifacts (by their path) and its models' files (`models/<name>/...`).
fn top_files(logged: &Logged, dir: Option<&Path>) -> FileSet {
    let mut set = FileSet::new();
    for f in &logged.artifacts {
        let at = dir.map(|d| d.join(ARTIFACTS_DIR).join(&f.path));
        set.insert(f.path.clone(), Located { file: f.clone(), at });
    }
    for m in &logged.models {
        for f in &m.files {
            let at = dir.map(|d| d.join(&m.artifact_path).join(&f.path));
            set.insert(format!("models/{}/{}", m.name, f.path), Located { file: f.clone(), at });
        }
    }
    set
}

fn compare_metrics(
    prefix: &str,
    a: &std::collections::BTreeMap<String, MetricSummary>,
    b: &std::collections::BTreeMap<String, MetricSummary>,
    rules: &CompareRules,
) -> Vec<MetricCheck> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .map(|k| {
            let key = format!("{prefix}{k}");
            let (original, rerun) = (a.get(k).copied(), b.get(k).copied());
            let (result, detail) = match (original, rerun) {
                _ if rules.ignore.is_match(&key) => (Comparison::Ignored, None),
                (Some(_), None) => (Comparison::Missing, None),
                (None, Some(_)) => (Comparison::Extra, None),
                (Some(x), Some(y)) => summaries(&x, &y, rules.rtol),
                (None, None) => (Comparison::Identical, None),
            };
            MetricCheck { key, result, original, rerun, detail }
        })
        .collect()
}

/// Two summaries of one metric: the values (last, min, max) exactly or within `rtol`, the
/// step of the last value and the number of points exactly.
fn summaries(a: &MetricSummary, b: &MetricSummary, rtol: Option<f64>) -> (Comparison, Option<String>) {
    let same = |x: f64, y: f64| x == y || (x.is_nan() && y.is_nan());
    let close = |x: f64, y: f64| same(x, y) || rtol.is_some_and(|r| (x - y).abs() <= r * x.abs().max(y.abs()));
    let mut differences = Vec::new();
    for (name, x, y) in [("last", a.last, b.last), ("min", a.min, b.min), ("max", a.max, b.max)] {
        if !close(x, y) {
            differences.push(format!("{name} {x} vs {y}"));
        }
    }
    if a.step != b.step {
        differences.push(format!("step {} vs {}", a.step, b.step));
    }
    if a.count != b.count {
        differences.push(format!("{} points vs {}", a.count, b.count));
    }
    match differences.is_empty() {
        false => (Comparison::Differs, Some(differences.join(", "))),
        true if same(a.last, b.last) && same(a.min, b.min) && same(a.max, b.max) => (Comparison::Identical, None),
        true => (Comparison::WithinTolerance, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(last: f64, count: u64) -> MetricSummary {
        MetricSummary { last, step: 2, min: 0.0, max: 1.0, count }
    }

    #[test]
    fn metric_summaries_compare_exactly_or_within_the_tolerance() {
        assert_eq!(summaries(&m(0.5, 3), &m(0.5, 3), None), (Comparison::Identical, None));
        assert_eq!(summaries(&m(f64::NAN, 3), &m(f64::NAN, 3), None).0, Comparison::Identical, "NaN is NaN");
        assert_eq!(
            summaries(&m(0.5, 3), &m(0.5000001, 3), None),
            (Comparison::Differs, Some("last 0.5 vs 0.5000001".into()))
        );
        assert_eq!(summaries(&m(0.5, 3), &m(0.5000001, 3), Some(1e-3)).0, Comparison::WithinTolerance);
        assert_eq!(
            summaries(&m(0.5, 3), &m(0.5, 4), Some(1.0)),
            (Comparison::Differs, Some("3 points vs 4".into())),
            "counts are exact whatever the tolerance"
        );
    }

    #[test]
    fn ids_uuids_and_creation_times_of_mlmodel_files_are_noise() {
        let noise = RunNoise { ids: vec![("aaaa".into(), "bbbb".into()), ("m-1".into(), "m-2".into())] };
        let old =
            "run_id: aaaa\nmodel_id: m-1\nmodel_uuid: 12ab\nutc_time_created: '2026-01-01 10:00:00'\nflavors: {}\n";
        let new =
            "run_id: bbbb\nmodel_id: m-2\nmodel_uuid: 34cd\nutc_time_created: '2026-01-01 10:05:00'\nflavors: {}\n";
        let (x, y) = noise.map("models/m/MLmodel", old.as_bytes(), new.as_bytes()).unwrap();
        assert_eq!(x, y);
        let (x, y) = noise.map("notes.txt", old.as_bytes(), new.as_bytes()).unwrap();
        assert_ne!(x, y, "creation times count in files other than MLmodel");
        let changed = new.replace("flavors: {}", "flavors: {sklearn: {}}");
        let (x, y) = noise.map("models/m/MLmodel", old.as_bytes(), changed.as_bytes()).unwrap();
        assert_ne!(x, y, "what is not noise still differs");
    }
}
