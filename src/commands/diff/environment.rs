//! `lockstep diff`'s comparison of two runs' environments: manager, key, interpreter and
//! image, and the packages of their locks added, removed or changed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::Change;
use crate::env::EnvRecord;

/// The environment of one run.
#[derive(Debug, Clone, Serialize)]
pub struct EnvSide {
    /// The manager (`local`, `uv`, `virtualenv`, `conda`, `docker`).
    pub manager: String,
    /// The environment's content key, when it has one.
    pub key: Option<String>,
    /// The interpreter's version, when known.
    pub python: Option<String>,
    /// The image the container ran, for Docker runs.
    pub image_id: Option<String>,
}

/// A package installed in either environment.
#[derive(Debug, Clone, Serialize)]
pub struct PackageChange {
    /// `python` (pip or uv) or `conda`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// How it changed.
    pub change: Change,
    /// Its version (and build, or artifact when the versions agree) in the first run.
    pub a: Option<String>,
    /// Likewise in the second run.
    pub b: Option<String>,
}

/// The environments of the two runs.
#[derive(Debug, Clone, Serialize)]
pub struct EnvDiff {
    /// The first run's.
    pub a: EnvSide,
    /// The second run's.
    pub b: EnvSide,
    /// Whether both are the same environment.
    pub same: bool,
    /// The packages added, removed or changed, Python ones then conda ones, by name.
    pub packages: Vec<PackageChange>,
    /// How many packages both have as they are.
    pub same_packages: usize,
}

fn env_side(env: &EnvRecord) -> EnvSide {
    EnvSide {
        manager: env.manager().to_string(),
        key: env.key().map(str::to_string),
        python: env.python_version().map(str::to_string),
        image_id: env.image_id().map(str::to_string),
    }
}

/// The environments of two runs compared: their sides, and the packages that differ.
pub(crate) fn env_diff(a: &EnvRecord, b: &EnvRecord) -> EnvDiff {
    let (sa, sb) = (env_side(a), env_side(b));
    let mut packages = Vec::new();
    let mut same_packages = 0;
    let python = |e: &EnvRecord| -> BTreeMap<String, (String, String)> {
        e.lock()
            .map(|l| &l.packages)
            .into_iter()
            .flatten()
            .map(|p| (p.name.clone(), (p.version.clone(), p.sha256.clone().or(p.url.clone()).unwrap_or_default())))
            .collect()
    };
    let conda = |e: &EnvRecord| -> BTreeMap<String, (String, String)> {
        e.lock()
            .map(|l| &l.conda_packages)
            .into_iter()
            .flatten()
            .map(|p| {
                let artifact = p.sha256.clone().or(p.md5.clone()).unwrap_or_else(|| p.url.clone());
                (p.name.clone(), (format!("{} {}", p.version, p.build), artifact))
            })
            .collect()
    };
    for (kind, pa, pb) in [("python", python(a), python(b)), ("conda", conda(a), conda(b))] {
        let names: BTreeSet<&String> = pa.keys().chain(pb.keys()).collect();
        for name in names {
            let (x, y) = (pa.get(name), pb.get(name));
            let change = match (x, y) {
                (Some(_), None) => Change::Removed,
                (None, Some(_)) => Change::Added,
                (Some(x), Some(y)) if x != y => Change::Changed,
                _ => {
                    same_packages += 1;
                    continue;
                }
            };
            // Equal versions of different artifacts are told apart by the artifact.
            let artifacts = matches!((x, y), (Some(x), Some(y)) if x.0 == y.0);
            let label = |p: Option<&(String, String)>| {
                p.map(|(version, artifact)| match artifacts {
                    true => format!("{version} ({})", crate::support::ids::short(artifact)),
                    false => version.clone(),
                })
            };
            packages.push(PackageChange { kind, name: name.clone(), change, a: label(x), b: label(y) });
        }
    }
    let same = packages.is_empty() && sa.manager == sb.manager && sa.key == sb.key && sa.image_id == sb.image_id;
    EnvDiff { a: sa, b: sb, same, packages, same_packages }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uv_env(packages: serde_json::Value) -> EnvRecord {
        serde_json::from_value(serde_json::json!({
            "manager": "uv", "lock_schema": "lockstep.env-lock/v1", "key": "k1", "installer": "uv 0.9",
            "platform": "linux-64", "python": {"implementation": "cpython", "version": "3.11.7"},
            "packages": packages,
        }))
        .unwrap()
    }

    #[test]
    fn packages_are_added_removed_and_changed_by_version_or_artifact() {
        let a = uv_env(serde_json::json!([
            {"name": "numpy", "version": "1.26.0"},
            {"name": "six", "version": "1.16.0", "sha256": "aaaa"},
            {"name": "tqdm", "version": "4.0"},
            {"name": "zipp", "version": "3.0"},
        ]));
        let b = uv_env(serde_json::json!([
            {"name": "numpy", "version": "2.0.0"},
            {"name": "pandas", "version": "2.2.0"},
            {"name": "six", "version": "1.16.0", "sha256": "bbbb"},
            {"name": "zipp", "version": "3.0"},
        ]));
        let d = env_diff(&a, &b);
        let seen: Vec<(&str, Change, Option<&str>, Option<&str>)> =
            d.packages.iter().map(|p| (p.name.as_str(), p.change, p.a.as_deref(), p.b.as_deref())).collect();
        assert_eq!(
            seen,
            [
                ("numpy", Change::Changed, Some("1.26.0"), Some("2.0.0")),
                ("pandas", Change::Added, None, Some("2.2.0")),
                ("six", Change::Changed, Some("1.16.0 (aaaa)"), Some("1.16.0 (bbbb)")),
                ("tqdm", Change::Removed, Some("4.0"), None),
            ]
        );
        assert_eq!(d.same_packages, 1);
        assert!(!d.same);
        assert!(env_diff(&a, &a.clone()).same);
        assert!(!env_diff(&a, &EnvRecord::Local).same, "another manager");
    }
}
