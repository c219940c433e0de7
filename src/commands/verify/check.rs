//! One re-run checked against the original: its outputs file by file, what its script
//! logged, the result, and the summary saved in the re-run's record.

use super::Verdict;
use crate::commands::CommandError as Error;
use crate::commands::compare::{self, CompareRules, Comparison, FileCheck, LoggedChecks, RunFiles};
use crate::pipeline::{FoundRun, Session};
use crate::record::{ComparedCounts, MetricDifference, RunRecord, RunStatus, VerificationSummary};

/// A re-run and how it compares with the original.
pub(super) struct Checked {
    /// The re-run's final record (with its verification summary).
    pub(super) record: RunRecord,
    /// Its result.
    pub(super) result: Verdict,
    /// Every output of either run.
    pub(super) files: Vec<FileCheck>,
    /// What either run's script logged.
    pub(super) logged: LoggedChecks,
}

/// Compare `rerun` with the run `found`, and save the summary in the re-run's record.
pub(super) fn check(
    found: &FoundRun,
    mut rerun: RunRecord,
    rules: &CompareRules,
    session: &Session,
) -> Result<Checked, Error> {
    let original = &found.record;
    let files = compare::compare(original, &rerun, &session.store.objects(), rules);
    let rerun_dir = session.store.run_dir(&rerun.run_id);
    let logged = compare::compare_logged(
        RunFiles { record: original, dir: found.run_dir().as_ref().map(|d| d.path()) },
        RunFiles { record: &rerun, dir: Some(rerun_dir.path()) },
        rules,
    );
    let matches = files.iter().map(|f| f.result).chain(logged.metrics.iter().map(|m| m.result));
    let matches = matches.chain(logged.artifacts.iter().map(|f| f.result)).all(Comparison::matches);
    let result = if rerun.status != RunStatus::Finished {
        Verdict::Failed
    } else if matches {
        Verdict::Reproduced
    } else {
        Verdict::Differs
    };
    let file_counts = counts(files.iter().map(|f| f.result));
    let tracked = original.logged.is_some() || rerun.logged.is_some();
    rerun.verification = Some(VerificationSummary {
        result: result.name().to_string(),
        identical: file_counts.identical,
        differs: file_counts.differs,
        missing: file_counts.missing,
        extra: file_counts.extra,
        ignored: file_counts.ignored,
        metrics: tracked.then(|| counts(logged.metrics.iter().map(|m| m.result))),
        artifacts: tracked.then(|| counts(logged.artifacts.iter().map(|f| f.result))),
        metric_differences: logged
            .metrics
            .iter()
            .filter(|m| !m.result.matches())
            .map(|m| MetricDifference { key: m.key.clone(), original: m.original, rerun: m.rerun })
            .collect(),
    });
    session.store.save(&rerun)?;
    Ok(Checked { record: rerun, result, files, logged })
}

/// How many items compared which way.
fn counts(results: impl Iterator<Item = Comparison>) -> ComparedCounts {
    let mut c = ComparedCounts::default();
    for r in results {
        match r {
            Comparison::Identical | Comparison::WithinTolerance => c.identical += 1,
            Comparison::Differs => c.differs += 1,
            Comparison::Missing => c.missing += 1,
            Comparison::Extra => c.extra += 1,
            Comparison::Ignored => c.ignored += 1,
        }
    }
    c
}
