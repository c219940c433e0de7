//! `lockstep diff`: two recorded runs side by side: their parameters, the metrics their
//! scripts logged (with deltas), their sources, their environments' locks and their outputs.
//! Reads records only: nothing is hashed, rebuilt or run.

mod environment;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use serde::Serialize;

use crate::commands::CommandError as Error;
use crate::pipeline::{self, FoundRun};
use crate::record::logged::{Logged, MetricSummary};
use crate::record::{OutputFile, RunRecord, RunStatus, Store};
use crate::support::error_class::ErrorClass;

pub(crate) use environment::env_diff;
pub use environment::{EnvDiff, EnvSide, PackageChange};

/// Errors of `diff`'s own input.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// Both arguments name one run.
    #[error("both arguments name run {run_id}: give two different runs")]
    SameRun {
        /// The run.
        run_id: String,
    },
}

impl DiffError {
    /// Who has to act: the user.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::User
    }

    /// What to try next.
    pub fn hint(&self) -> Option<String> {
        match self {
            DiffError::SameRun { .. } => Some("`lockstep runs` lists the runs to compare".into()),
        }
    }
}

/// Which runs to compare.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// The first run: an id (or unique prefix) or a `record.json` file.
    pub a: String,
    /// The second run, likewise.
    pub b: String,
    /// The run store.
    pub store: PathBuf,
    /// The caller's working directory (record files are relative to it).
    pub caller_dir: PathBuf,
}

/// How an item of the second run compares with the first's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Only the second run has it.
    Added,
    /// Only the first run has it.
    Removed,
    /// Both have it, not the same.
    Changed,
}

impl Change {
    /// The word shown in text output.
    pub fn name(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        }
    }
}

/// What identifies one of the two runs.
#[derive(Debug, Clone, Serialize)]
pub struct RunSide {
    /// Its id.
    pub run_id: String,
    /// Its name, if it has one.
    pub run_name: Option<String>,
    /// Its state.
    pub status: RunStatus,
    /// Its entry point.
    pub entry_point: String,
    /// Its start, in ms since the epoch.
    pub start_time: u64,
}

/// A named value of either run (a parameter).
#[derive(Debug, Clone, Serialize)]
pub struct ValueDiff {
    /// The name.
    pub key: String,
    /// The first run's value.
    pub a: Option<String>,
    /// The second run's value.
    pub b: Option<String>,
    /// Whether both runs have it with the same value.
    pub same: bool,
}

/// A metric either run's script logged.
#[derive(Debug, Clone, Serialize)]
pub struct MetricDiff {
    /// Its name.
    pub key: String,
    /// Its summary in the first run (last value, its step, min, max, number of points).
    pub a: Option<MetricSummary>,
    /// Its summary in the second run.
    pub b: Option<MetricSummary>,
    /// The second run's last value minus the first's; none when a run lacks the metric or a
    /// value is not finite.
    pub delta: Option<f64>,
}

/// The source of one run.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSide {
    /// `local`, `git` or `archive`.
    pub kind: String,
    /// The URI as given.
    pub uri: String,
    /// The commit, for git sources.
    pub commit: Option<String>,
    /// The tree hash of the files the run started from, without what it wrote itself.
    pub tree_sha256: String,
    /// Whether the files differed from the commit.
    pub dirty: bool,
}

/// A file of the sources, or an output, that the runs do not share as it is.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    /// Its path.
    pub path: String,
    /// How it changed from the first run to the second.
    pub change: Change,
    /// Its sha256 in the first run.
    pub a_sha256: Option<String>,
    /// Its sha256 in the second run.
    pub b_sha256: Option<String>,
}

/// The sources of the two runs.
#[derive(Debug, Clone, Serialize)]
pub struct SourceDiff {
    /// The first run's.
    pub a: SourceSide,
    /// The second run's.
    pub b: SourceSide,
    /// Whether the runs started from the same files (same tree hash and commit).
    pub same: bool,
    /// The files that differ, when both runs' directories list their trees; `null` when not.
    pub files: Option<Vec<FileChange>>,
}

/// Files of either run (outputs), compared by sha256.
#[derive(Debug, Clone, Serialize)]
pub struct FilesDiff {
    /// The files added, removed or changed, by path.
    pub changes: Vec<FileChange>,
    /// How many files both runs have with the same content.
    pub same: usize,
}

/// Two runs compared.
#[derive(Debug, Clone, Serialize)]
pub struct RunDiff {
    /// The first run.
    pub a: RunSide,
    /// The second run.
    pub b: RunSide,
    /// The entry point's parameters, by name.
    pub parameters: Vec<ValueDiff>,
    /// Whether either run's script logged anything through the mlflow client.
    pub logged: bool,
    /// The params the scripts logged, by name.
    pub logged_params: Vec<ValueDiff>,
    /// The metrics the scripts logged, by name.
    pub metrics: Vec<MetricDiff>,
    /// The artifacts the scripts logged, by path under the artifact root.
    pub artifacts: FilesDiff,
    /// The files of the models the scripts logged, as `<model name>/<path>`.
    pub models: FilesDiff,
    /// The sources.
    pub source: SourceDiff,
    /// The environments.
    pub environment: EnvDiff,
    /// The outputs.
    pub outputs: FilesDiff,
}

/// Compare two recorded runs.
pub fn diff(opts: &DiffOptions) -> Result<RunDiff, Error> {
    let store = Store::open(&opts.store)?;
    let a = pipeline::lookup(&opts.a, &store, &opts.caller_dir)?;
    let b = pipeline::lookup(&opts.b, &store, &opts.caller_dir)?;
    if a.record.run_id == b.record.run_id {
        return Err(DiffError::SameRun { run_id: a.record.run_id.to_string() }.into());
    }
    Ok(compare_runs(&a, &b))
}

/// Compare two runs already found (the UI finds them in its own index).
pub(crate) fn compare_runs(a: &FoundRun, b: &FoundRun) -> RunDiff {
    let (ra, rb) = (&a.record, &b.record);
    let none = Logged::default();
    let (la, lb) = (ra.logged.as_ref().unwrap_or(&none), rb.logged.as_ref().unwrap_or(&none));
    RunDiff {
        a: side(ra),
        b: side(rb),
        parameters: values(&ra.parameters, &rb.parameters),
        logged: ra.logged.is_some() || rb.logged.is_some(),
        logged_params: values(&la.params, &lb.params),
        metrics: metrics(&la.metrics, &lb.metrics),
        artifacts: files_diff(&la.artifacts, &lb.artifacts),
        models: files_diff(&model_files(la), &model_files(lb)),
        source: source_diff(a, b),
        environment: environment::env_diff(&ra.environment, &rb.environment),
        outputs: files_diff(&ra.outputs, &rb.outputs),
    }
}

fn side(r: &RunRecord) -> RunSide {
    RunSide {
        run_id: r.run_id.to_string(),
        run_name: r.run_name.clone(),
        status: r.status,
        entry_point: r.entry_point.clone(),
        start_time: r.start_time,
    }
}

/// Every key of either map, with both values.
pub(crate) fn values(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<ValueDiff> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .map(|k| {
            let (a, b) = (a.get(k).cloned(), b.get(k).cloned());
            ValueDiff { key: k.clone(), same: a.is_some() && a == b, a, b }
        })
        .collect()
}

/// Every metric of either run, with both summaries and the delta of the last values.
fn metrics(a: &BTreeMap<String, MetricSummary>, b: &BTreeMap<String, MetricSummary>) -> Vec<MetricDiff> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .map(|k| {
            let (a, b) = (a.get(k).copied(), b.get(k).copied());
            let delta = match (a, b) {
                (Some(x), Some(y)) => Some(y.last - x.last).filter(|d| d.is_finite()),
                _ => None,
            };
            MetricDiff { key: k.clone(), a, b, delta }
        })
        .collect()
}

/// The files of a run's logged models, named by model: model ids differ from run to run.
fn model_files(logged: &Logged) -> Vec<OutputFile> {
    logged
        .models
        .iter()
        .flat_map(|m| m.files.iter().map(|f| OutputFile { path: format!("{}/{}", m.name, f.path), ..f.clone() }))
        .collect()
}

fn source_side(r: &RunRecord) -> SourceSide {
    let s = &r.source;
    SourceSide {
        kind: s.kind.name().to_string(),
        uri: s.uri.clone(),
        commit: s.commit.clone(),
        tree_sha256: s.input_tree_sha256.clone().unwrap_or_else(|| s.tree_sha256.clone()).to_string(),
        dirty: s.dirty,
    }
}

fn source_diff(a: &FoundRun, b: &FoundRun) -> SourceDiff {
    let (sa, sb) = (source_side(&a.record), source_side(&b.record));
    let same = sa.tree_sha256 == sb.tree_sha256 && sa.commit == sb.commit;
    let listing = |f: &FoundRun| f.run_dir().and_then(|d| fs::read_to_string(d.source_tree()).ok());
    let files = match (listing(a), listing(b)) {
        (Some(la), Some(lb)) => {
            let mut written = written_in_place(&a.record);
            written.extend(written_in_place(&b.record));
            Some(listing_changes(&la, &lb, &written))
        }
        _ => None,
    };
    SourceDiff { a: sa, b: sb, same, files }
}

/// The outputs a run wrote into its own project directory: the next run's tree listing holds
/// them, and they are results, not sources.
fn written_in_place(r: &RunRecord) -> BTreeSet<String> {
    match r.source.path.as_deref() == Some(r.outputs_dir.as_path()) {
        true => r.outputs.iter().map(|o| o.path.clone()).collect(),
        false => BTreeSet::new(),
    }
}

/// The files added, removed and modified between two tree listings (`{mode} {sha256} {path}`
/// lines), leaving out `skip`.
pub(crate) fn listing_changes(before: &str, after: &str, skip: &BTreeSet<String>) -> Vec<FileChange> {
    let parse = |text: &str| -> BTreeMap<String, (String, String)> {
        text.lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, ' ');
                let (mode, sha, path) = (it.next()?, it.next()?, it.next()?);
                (!skip.contains(path)).then(|| (path.to_string(), (mode.to_string(), sha.to_string())))
            })
            .collect()
    };
    let (before, after) = (parse(before), parse(after));
    let paths: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    paths
        .into_iter()
        .filter_map(|path| {
            let (a, b) = (before.get(path), after.get(path));
            let change = match (a, b) {
                (Some(_), None) => Change::Removed,
                (None, Some(_)) => Change::Added,
                (Some(x), Some(y)) if x != y => Change::Changed,
                _ => return None,
            };
            let sha = |e: Option<&(String, String)>| e.map(|(_, s)| s.clone());
            Some(FileChange { path: path.clone(), change, a_sha256: sha(a), b_sha256: sha(b) })
        })
        .collect()
}

/// Files of either list, compared by path and sha256.
pub(crate) fn files_diff(a: &[OutputFile], b: &[OutputFile]) -> FilesDiff {
    let index = |files: &[OutputFile]| -> BTreeMap<String, String> {
        files.iter().map(|f| (f.path.clone(), f.sha256.clone())).collect()
    };
    let (ia, ib) = (index(a), index(b));
    let paths: BTreeSet<&String> = ia.keys().chain(ib.keys()).collect();
    let mut same = 0;
    let mut changes = Vec::new();
    for path in paths {
        let (x, y) = (ia.get(path), ib.get(path));
        let change = match (x, y) {
            (Some(_), None) => Change::Removed,
            (None, Some(_)) => Change::Added,
            (Some(x), Some(y)) if x != y => Change::Changed,
            _ => {
                same += 1;
                continue;
            }
        };
        changes.push(FileChange { path: path.clone(), change, a_sha256: x.cloned(), b_sha256: y.cloned() });
    }
    FilesDiff { changes, same }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_compare_by_path_and_digest() {
        let f = |path: &str, sha: &str| OutputFile { path: path.into(), size: 1, sha256: sha.into(), kept: false };
        let d = files_diff(&[f("a", "1"), f("b", "2"), f("c", "3")], &[f("a", "1"), f("b", "9"), f("d", "4")]);
        assert_eq!(d.same, 1);
        let seen: Vec<(&str, Change)> = d.changes.iter().map(|c| (c.path.as_str(), c.change)).collect();
        assert_eq!(seen, [("b", Change::Changed), ("c", Change::Removed), ("d", Change::Added)]);
        assert_eq!((d.changes[0].a_sha256.as_deref(), d.changes[0].b_sha256.as_deref()), (Some("2"), Some("9")));
    }

    #[test]
    fn listings_compare_modes_and_digests_leaving_out_what_runs_wrote() {
        let before = "100644 aa keep.py\n100644 bb mode.sh\n100644 cc out.txt\n";
        let after = "100644 aa keep.py\n100755 bb mode.sh\n100644 dd out.txt\n100644 ee new.py\n";
        let changes = listing_changes(before, after, &BTreeSet::from(["out.txt".to_string()]));
        let seen: Vec<(&str, Change)> = changes.iter().map(|c| (c.path.as_str(), c.change)).collect();
        assert_eq!(seen, [("mode.sh", Change::Changed), ("new.py", Change::Added)]);
    }

    #[test]
    fn metric_deltas_are_of_the_last_values_and_only_of_finite_ones() {
        let m = |last: f64| MetricSummary { last, step: 3, min: last, max: last, count: 4 };
        let a = BTreeMap::from([
            ("acc".to_string(), m(0.5)),
            ("loss".to_string(), m(1.0)),
            ("nan".to_string(), m(f64::NAN)),
        ]);
        let b =
            BTreeMap::from([("acc".to_string(), m(0.75)), ("nan".to_string(), m(1.0)), ("new".to_string(), m(2.0))]);
        let d = metrics(&a, &b);
        let seen: Vec<(&str, Option<f64>, bool, bool)> =
            d.iter().map(|m| (m.key.as_str(), m.delta, m.a.is_some(), m.b.is_some())).collect();
        assert_eq!(
            seen,
            [
                ("acc", Some(0.25), true, true),
                ("loss", None, true, false),
                ("nan", None, true, true),
                ("new", None, false, true)
            ]
        );
    }

    #[test]
    fn values_name_every_key_of_either_run() {
        let m = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let v = values(&m(&[("a", "1"), ("b", "2")]), &m(&[("b", "2"), ("c", "3")]));
        let seen: Vec<(&str, bool)> = v.iter().map(|v| (v.key.as_str(), v.same)).collect();
        assert_eq!(seen, [("a", false), ("b", true), ("c", false)]);
    }
}
