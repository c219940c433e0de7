//! `verify --repeat N`: what varies between repetitions of a re-run on this machine, output
//! by output (by digest) and logged metric by logged metric (by summary). Anything that does
//! is nondeterministic, found without a second machine.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::record::RunRecord;
use crate::support::ids::RunId;

/// One output or metric that varied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Varying {
    /// The output's path, or `metric <name>`.
    pub name: String,
    /// How many different values (absence counts as one) the repetitions gave.
    pub distinct: usize,
}

/// The repetitions of a re-run and what varied between them.
#[derive(Debug, Clone, Serialize)]
pub struct Repetitions {
    /// The re-runs, in the order they ran.
    pub runs: Vec<RunId>,
    /// What varied between them.
    pub varying: Vec<Varying>,
}

/// What takes more than one value across `records`.
pub(super) fn varying(records: &[RunRecord]) -> Vec<Varying> {
    let mut values: BTreeMap<String, BTreeSet<Option<String>>> = BTreeMap::new();
    let outputs: BTreeSet<&String> = records.iter().flat_map(|r| r.outputs.iter().map(|o| &o.path)).collect();
    for path in outputs {
        let seen = records.iter().map(|r| r.outputs.iter().find(|o| &o.path == path).map(|o| o.sha256.clone()));
        values.insert(path.clone(), seen.collect());
    }
    let metrics: BTreeSet<&String> =
        records.iter().flat_map(|r| r.logged.iter().flat_map(|l| l.metrics.keys())).collect();
    for key in metrics {
        let seen = records.iter().map(|r| {
            let summary = r.logged.as_ref().and_then(|l| l.metrics.get(key));
            // The debug text of a summary tells NaNs and signed zeros apart, as bytes would.
            summary.map(|s| format!("{s:?}"))
        });
        values.insert(format!("metric {key}"), seen.collect());
    }
    values
        .into_iter()
        .filter(|(_, seen)| seen.len() > 1)
        .map(|(name, seen)| Varying { name, distinct: seen.len() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{OutputFile, sample_record};

    fn with_output(id: &str, sha: &str) -> RunRecord {
        let mut r = sample_record(id, 1);
        r.outputs = vec![
            OutputFile { path: "same.txt".into(), sha256: "0".repeat(64), size: 1, kept: false },
            OutputFile { path: "out.txt".into(), sha256: sha.repeat(64), size: 1, kept: false },
        ];
        r
    }

    #[test]
    fn only_what_takes_several_values_varies() {
        let runs = [with_output("a", "1"), with_output("b", "2"), with_output("c", "1")];
        assert_eq!(varying(&runs), [Varying { name: "out.txt".into(), distinct: 2 }]);
        assert!(varying(&runs[..1]).is_empty());
        let mut gone = with_output("d", "1");
        gone.outputs.remove(0);
        assert_eq!(varying(&[with_output("a", "1"), gone])[0], Varying { name: "same.txt".into(), distinct: 2 });
    }
}
