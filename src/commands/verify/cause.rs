//! Why a re-run differs: the verdict of `verify`, from the two records. Inputs first (the
//! source, the parameters, the `path` inputs, the environment's lock), then whether the
//! outputs vary between repetitions on this machine, then the machine itself (what decides
//! numerics, as `status` compares it); what is left is nondeterminism.

use serde::Serialize;

use crate::commands::diff::env_diff;
use crate::record::RunRecord;
use crate::support::ids::short;

/// Which input of a run changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputPart {
    /// The project's files (tree hash or commit).
    Source,
    /// The uncommitted changes of a git checkout.
    DirtyPatch,
    /// A parameter's value.
    Parameter,
    /// A file or directory a `path` parameter names outside the project.
    PathInput,
    /// The environment's lock: its manager, key or packages.
    Environment,
}

/// One input that is not the recorded one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputChange {
    /// What changed.
    pub part: InputPart,
    /// Its name (a parameter, a package), when it has one.
    pub name: Option<String>,
    /// The original run's value (a digest, a version), when it had one.
    pub original: Option<String>,
    /// The re-run's.
    pub rerun: Option<String>,
}

/// Why the outputs differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Cause {
    /// Some input is not the recorded one.
    InputsChanged {
        /// Which.
        inputs: Vec<InputChange>,
        /// How this machine differs from the run's, too.
        host: Vec<String>,
    },
    /// The same inputs on a machine that differs in what decides numerics.
    DifferentMachine {
        /// The differences, as `status` shows them (`cpu: A -> B`).
        host: Vec<String>,
    },
    /// The same inputs on the same machine (or outputs that vary between repetitions here).
    Nondeterministic {
        /// Outputs and metrics that varied between repetitions on this machine (`--repeat`).
        varying: Vec<String>,
    },
}

impl Cause {
    /// The verdict in words, for the summary line.
    pub fn words(&self) -> &'static str {
        match self {
            Cause::InputsChanged { .. } => "inputs changed",
            Cause::DifferentMachine { .. } => "same inputs, different machine",
            Cause::Nondeterministic { .. } => "same inputs, same machine: nondeterministic",
        }
    }
}

/// Why `rerun`'s outputs differ from `original`'s; `varying` is what varied between
/// repetitions of the re-run (empty without `--repeat`).
pub fn explain(original: &RunRecord, rerun: &RunRecord, varying: Vec<String>) -> Cause {
    let inputs = input_changes(original, rerun);
    let host = original.host.drift(&rerun.host);
    if !inputs.is_empty() {
        Cause::InputsChanged { inputs, host }
    } else if varying.is_empty() && !host.is_empty() {
        Cause::DifferentMachine { host }
    } else {
        Cause::Nondeterministic { varying }
    }
}

/// The inputs of `rerun` that are not `original`'s. A `path` input only one record has (a
/// record made before they were hashed) is not a change: nothing says it changed.
fn input_changes(original: &RunRecord, rerun: &RunRecord) -> Vec<InputChange> {
    let change = |part, name: Option<&str>, a: Option<String>, b: Option<String>| InputChange {
        part,
        name: name.map(str::to_string),
        original: a,
        rerun: b,
    };
    let mut out = Vec::new();
    let (a, b) = (&original.source, &rerun.source);
    if a.tree_sha256 != b.tree_sha256 || a.commit != b.commit {
        let id = |s: &crate::source::SourceInfo| Some(s.commit.clone().unwrap_or_else(|| s.tree_sha256.to_string()));
        out.push(change(InputPart::Source, None, id(a), id(b)));
    }
    if a.patch_sha256 != b.patch_sha256 {
        out.push(change(InputPart::DirtyPatch, None, a.patch_sha256.clone(), b.patch_sha256.clone()));
    }
    let names: std::collections::BTreeSet<&String> =
        original.parameters.keys().chain(rerun.parameters.keys()).collect();
    for name in names {
        let (x, y) = (original.parameters.get(name), rerun.parameters.get(name));
        if x != y {
            out.push(change(InputPart::Parameter, Some(name), x.cloned(), y.cloned()));
        }
    }
    for x in &original.inputs {
        if let Some(y) = rerun.inputs.iter().find(|y| y.parameter == x.parameter)
            && (y.sha256 != x.sha256 || y.location != x.location)
        {
            let what = |d: &crate::record::InputDigest| Some(format!("{} (sha256 {})", d.location, short(&d.sha256)));
            out.push(change(InputPart::PathInput, Some(&x.parameter), what(x), what(y)));
        }
    }
    let env = env_diff(&original.environment, &rerun.environment);
    if env.a.manager != env.b.manager || env.a.key != env.b.key {
        let side =
            |s: &crate::commands::diff::EnvSide| Some(format!("{} {}", s.manager, s.key.as_deref().unwrap_or("-")));
        out.push(change(InputPart::Environment, None, side(&env.a), side(&env.b)));
    }
    for p in env.packages {
        out.push(change(InputPart::Environment, Some(&p.name), p.a, p.b));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{InputDigest, InputKind, sample_record};

    fn input(sha: &str) -> InputDigest {
        let sha256 = sha.repeat(64);
        InputDigest { parameter: "data".into(), location: "/d.csv".into(), kind: InputKind::File, sha256, size: 1 }
    }

    #[test]
    fn inputs_come_first_then_variation_then_the_machine() {
        let mut a = sample_record("aa", 1);
        let mut b = sample_record("bb", 2);
        assert_eq!(explain(&a, &b, vec![]), Cause::Nondeterministic { varying: vec![] });
        b.host.numerics_env.insert("OMP_NUM_THREADS".into(), "2".into());
        let host = vec!["OMP_NUM_THREADS: unset -> 2".to_string()];
        assert_eq!(explain(&a, &b, vec![]), Cause::DifferentMachine { host: host.clone() });
        let varying = vec!["out.txt".to_string()];
        assert_eq!(
            explain(&a, &b, varying.clone()),
            Cause::Nondeterministic { varying: varying.clone() },
            "outputs that vary here are nondeterministic whatever the machine"
        );
        a.inputs = vec![input("a")];
        b.inputs = vec![input("b")];
        let Cause::InputsChanged { inputs, host: drift } = explain(&a, &b, varying) else { panic!("inputs") };
        assert_eq!((inputs[0].part, inputs[0].name.as_deref()), (InputPart::PathInput, Some("data")));
        assert_eq!(drift, host);
        b.inputs.clear();
        assert!(input_changes(&a, &b).is_empty(), "an input one record lacks is not a change");
        b.parameters.insert("lr".into(), "0.1".into());
        assert_eq!(input_changes(&a, &b)[0].part, InputPart::Parameter);
    }
}
