//! The lock: what a built environment really holds, as recorded in a run's `environment`
//! and stored next to the environment in the cache. Complete enough to rebuild it exactly
//! ([`super::from_lock`]), and stable in order (packages sorted by name).

use std::collections::BTreeMap;

use crate::support::ids::EnvKey;
use serde::{Deserialize, Deserializer, Serialize, de};

/// The schema of the lock's fields in a record.
pub const LOCK_SCHEMA: &str = "lockstep.env-lock/v1";

/// What is installed in an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvLock {
    /// `lockstep.env-lock/v1`.
    pub lock_schema: String,
    /// The environment's cache key (a directory name in the cache).
    #[serde(deserialize_with = "key_name")]
    pub key: EnvKey,
    /// The tool that installed the packages, with its version (`uv 0.13.9`, `pip 23.2.1`,
    /// `lockstep`, `micromamba 2.0.5`).
    pub installer: String,
    /// The platform it was built for (`linux-64`).
    pub platform: String,
    /// The interpreter, when the environment has one.
    pub python: Option<PythonInfo>,
    /// Conda channels, highest priority first (conda environments).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// Conda packages, sorted by name (conda environments).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conda_packages: Vec<CondaPackage>,
    /// Python distributions installed by pip or uv, sorted by normalized name.
    #[serde(default)]
    pub packages: Vec<PyPackage>,
    /// Variables the environment sets when active (conda's `variables:`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
}

impl EnvLock {
    /// Whether two locks hold the same installed environment: everything but the key and
    /// the installer that put it there.
    pub fn same_install(&self, other: &EnvLock) -> bool {
        self.lock_schema == other.lock_schema
            && self.platform == other.platform
            && self.python == other.python
            && self.channels == other.channels
            && self.conda_packages == other.conda_packages
            && self.packages == other.packages
            && self.variables == other.variables
    }
}

/// The interpreter of an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PythonInfo {
    /// `3.11.7`.
    pub version: String,
    /// `cpython`, `pypy`, ...
    pub implementation: String,
}

/// One installed Python distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PyPackage {
    /// The name, as its metadata spells it.
    pub name: String,
    /// The exact version.
    pub version: String,
    /// Where the artifact came from (a wheel or sdist URL, or a `file://` path), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The sha256 of that artifact, when the installer knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// One installed conda package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CondaPackage {
    /// Its name.
    #[serde(deserialize_with = "conda_name")]
    pub name: String,
    /// Its version.
    #[serde(deserialize_with = "conda_version")]
    pub version: String,
    /// Its build string.
    #[serde(deserialize_with = "conda_build")]
    pub build: String,
    /// Its build number.
    pub build_number: u64,
    /// The subdirectory (`noarch`, `linux-64`).
    #[serde(deserialize_with = "conda_subdir")]
    pub subdir: String,
    /// The channel it came from.
    pub channel: String,
    /// The archive's URL.
    pub url: String,
    /// The archive's file name.
    #[serde(deserialize_with = "conda_filename")]
    pub filename: String,
    /// The archive's sha256, when the channel gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The archive's md5, when the channel gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// Its dependencies, as match specs (for the order of installation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends: Vec<String>,
    /// How it is architecture-independent (`python`, `generic`), if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noarch: Option<String>,
}

/// Why `value` cannot name one entry of a directory lockstep owns, if it cannot. Fields of
/// records, locks and manifests that become file names must pass this: a name with a
/// separator or a `..` would put the file anywhere.
pub fn file_name_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("is empty")
    } else if value == "." || value == ".." {
        Some("is a directory reference")
    } else if value.contains('/') {
        Some("contains '/'")
    } else if value.contains('\0') {
        Some("contains a NUL byte")
    } else if value.len() > 255 {
        Some("is longer than 255 bytes")
    } else {
        None
    }
}

/// `value` as a file name, or an error naming `field`.
pub fn check_file_name(field: &str, value: &str) -> Result<(), String> {
    match file_name_problem(value) {
        None => Ok(()),
        Some(why) => Err(format!("{field} '{}' {why}: it must be a single file name", value.escape_debug())),
    }
}

fn file_name<'de, D: Deserializer<'de>>(d: D, field: &str) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    check_file_name(field, &value).map_err(de::Error::custom)?;
    Ok(value)
}

fn key_name<'de, D: Deserializer<'de>>(d: D) -> Result<EnvKey, D::Error> {
    file_name(d, "the lock's key").map(EnvKey::from)
}

fn conda_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    file_name(d, "a conda package's name")
}

fn conda_version<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    file_name(d, "a conda package's version")
}

fn conda_build<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    file_name(d, "a conda package's build")
}

fn conda_subdir<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    file_name(d, "a conda package's subdir")
}

fn conda_filename<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    file_name(d, "a conda package's filename")
}

/// A distribution name in PEP 503 normal form: lower case, runs of `-_.` as one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The platform environments are built for, in conda's spelling.
pub fn current_platform() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "linux-64",
        ("linux", "aarch64") => "linux-aarch64",
        ("linux", "powerpc64") => "linux-ppc64le",
        ("macos", "x86_64") => "osx-64",
        ("macos", "aarch64") => "osx-arm64",
        ("linux", _) => "linux-32",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{EnvManager, EnvRecord};

    #[test]
    fn names_normalize_as_pep_503() {
        assert_eq!(normalize_name("Scikit_Learn"), "scikit-learn");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
        assert_eq!(normalize_name("a--_b"), "a-b");
    }

    #[test]
    fn file_names_are_single_components() {
        for good in ["six-1.16.0-py_0.conda", "linux-64", "a..b", ".hidden"] {
            assert_eq!(file_name_problem(good), None, "{good}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "/abs", "a\0b", &"x".repeat(256)] {
            assert!(file_name_problem(bad).is_some(), "{bad:?}");
        }
    }

    fn conda_lock_json(filename: &str) -> serde_json::Value {
        serde_json::json!({
            "manager": "conda",
            "lock_schema": LOCK_SCHEMA, "key": "k", "installer": "lockstep", "platform": "linux-64",
            "python": null, "packages": [],
            "conda_packages": [{
                "name": "x", "version": "1", "build": "0", "build_number": 0, "subdir": "noarch",
                "channel": "c", "url": "file:///x", "filename": filename,
            }],
        })
    }

    fn refusal(json: serde_json::Value) -> String {
        let record: EnvRecord = serde_json::from_value(json).unwrap();
        let err = crate::env::from_lock(&record).err().expect("refused").to_string();
        assert!(err.contains(record.unreadable_reason().unwrap()), "{err}");
        err
    }

    #[test]
    fn a_lock_with_a_path_for_a_file_name_is_refused_naming_the_field() {
        let record: EnvRecord = serde_json::from_value(conda_lock_json("x-1-0.conda")).unwrap();
        assert_eq!(record.lock().unwrap().conda_packages[0].filename, "x-1-0.conda");
        let err = refusal(conda_lock_json("../../../x/EVIL.conda"));
        assert!(err.contains("a conda package's filename '../../../x/EVIL.conda' contains '/'"), "{err}");
        let mut json = conda_lock_json("x-1-0.conda");
        json["key"] = "..".into();
        let err = refusal(json);
        assert!(err.contains("the lock's key '..' is a directory reference"), "{err}");
        let mut json = conda_lock_json("x-1-0.conda");
        json["conda_packages"][0]["build"] = "0/../../x".into();
        refusal(json);
    }

    #[test]
    fn a_lock_round_trips_through_a_record() {
        let lock = EnvLock {
            lock_schema: LOCK_SCHEMA.into(),
            key: "k".into(),
            installer: "uv 0.1".into(),
            platform: "linux-64".into(),
            python: Some(PythonInfo { version: "3.11.7".into(), implementation: "cpython".into() }),
            channels: vec![],
            conda_packages: vec![],
            packages: vec![PyPackage {
                name: "six".into(),
                version: "1.16.0".into(),
                url: Some("https://x/six.whl".into()),
                sha256: Some("ab".into()),
            }],
            variables: BTreeMap::new(),
        };
        let record = EnvRecord::of_lock(EnvManager::Uv, lock.clone());
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["manager"], "uv");
        assert_eq!(json["packages"][0]["name"], "six");
        let back: EnvRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back.lock(), Some(&lock));
        assert!(crate::env::from_lock(&EnvRecord::Local).is_ok(), "local needs no lock");
        assert!(crate::env::from_lock(&EnvRecord::Unprepared(EnvManager::Uv)).is_err());
    }
}
