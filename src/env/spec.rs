//! The environment files of a project: `python_env.yaml` and `conda.yaml`, parsed strictly,
//! plus MLflow's conversion of a conda file into a Python environment.
//!
//! Pure functions over the files' text; errors carry `file:line:column` like the MLproject's.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::EnvError;
use crate::manifest;

/// A `python_env.yaml`: the interpreter and the pip requirements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonEnvSpec {
    /// The Python version asked for (`3.11`, `3.11.7`), or any when absent.
    pub python: Option<String>,
    /// Requirements installed first (pip, setuptools, wheel, ...).
    pub build_dependencies: Vec<String>,
    /// Requirement lines, as pip reads them (`-r file`, pins, ranges, paths, extras).
    pub dependencies: Vec<String>,
}

/// A `conda.yaml`: channels, conda match specs and a pip sub-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CondaEnvSpec {
    /// The environment's name (not part of what decides it).
    pub name: Option<String>,
    /// Channels, highest priority first, as written.
    pub channels: Vec<String>,
    /// Conda match specs.
    pub dependencies: Vec<String>,
    /// Requirement lines of the `pip:` sub-list.
    pub pip: Vec<String>,
    /// `variables:`, set when the environment is active.
    pub variables: BTreeMap<String, String>,
}

/// Parse a `python_env.yaml`; `file` names it in errors. Returns the spec and warnings.
pub fn parse_python_env(text: &str, file: &str) -> Result<(PythonEnvSpec, Vec<String>), EnvError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        #[serde(default)]
        python: Option<Version>,
        #[serde(default)]
        build_dependencies: Option<Vec<String>>,
        #[serde(default)]
        dependencies: Option<Vec<String>>,
    }
    let raw: Option<Raw> = serde_yaml::from_str(text).map_err(|e| yaml_error(file, e))?;
    let Some(raw) = raw else {
        return Ok((PythonEnvSpec { python: None, build_dependencies: vec![], dependencies: vec![] }, vec![]));
    };
    let mut warnings = Vec::new();
    let python = match raw.python {
        None => None,
        Some(Version::Text(v)) => Some(v),
        Some(Version::Number(n)) => {
            // YAML reads `python: 3.10` as the float 3.1; the text as written is what was meant.
            let literal = top_level_literal(text, "python").unwrap_or(n);
            warnings.push(format!(
                "{file}: python: {literal} is a number in YAML; read as the string \"{literal}\" (quote it: python: \"{literal}\")"
            ));
            Some(literal)
        }
    };
    if let Some(v) = &python {
        check_python_request(v).map_err(|message| EnvError::Spec { file: file.to_string(), message })?;
    }
    Ok((
        PythonEnvSpec {
            python,
            build_dependencies: raw.build_dependencies.unwrap_or_default(),
            dependencies: raw.dependencies.unwrap_or_default(),
        },
        warnings,
    ))
}

/// Parse a `conda.yaml`; `file` names it in errors. Returns the spec and warnings.
pub fn parse_conda_env(text: &str, file: &str) -> Result<(CondaEnvSpec, Vec<String>), EnvError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        channels: Option<Vec<String>>,
        #[serde(default)]
        dependencies: Option<Vec<CondaDep>>,
        #[serde(default)]
        variables: Option<BTreeMap<String, Scalar>>,
        #[serde(default)]
        prefix: Option<String>,
    }
    let raw: Option<Raw> = serde_yaml::from_str(text).map_err(|e| yaml_error(file, e))?;
    let mut spec =
        CondaEnvSpec { name: None, channels: vec![], dependencies: vec![], pip: vec![], variables: BTreeMap::new() };
    let mut warnings = Vec::new();
    let Some(raw) = raw else { return Ok((spec, warnings)) };
    spec.name = raw.name;
    spec.channels = raw.channels.unwrap_or_default();
    spec.variables = raw.variables.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
    if raw.prefix.is_some() {
        warnings.push(format!("{file}: 'prefix' is ignored: lockstep keeps environments in its cache"));
    }
    let mut seen_pip = false;
    for dep in raw.dependencies.unwrap_or_default() {
        match dep {
            CondaDep::Spec(s) => spec.dependencies.push(s),
            CondaDep::Pip(list) => {
                if seen_pip {
                    return Err(EnvError::Spec {
                        file: file.into(),
                        message: "the pip: sub-list is given twice".into(),
                    });
                }
                seen_pip = true;
                spec.pip = list;
            }
        }
    }
    Ok((spec, warnings))
}

/// A conda file as a Python environment, as MLflow converts it for `--env-manager
/// virtualenv`: the pinned `python`, `pip`/`setuptools`/`wheel` as build dependencies and the
/// `pip:` sub-list; other conda packages are left out, with a warning.
pub fn python_env_from_conda(conda: &CondaEnvSpec, file: &str) -> Result<(PythonEnvSpec, Vec<String>), EnvError> {
    let mut python = None;
    let mut build = Vec::new();
    let mut skipped = Vec::new();
    for dep in &conda.dependencies {
        let Some((package, op, version)) = split_mlflow_conda_dep(dep) else {
            skipped.push(dep.clone());
            continue;
        };
        if package == "python" && python.is_none() {
            match op {
                None => {
                    return Err(EnvError::Spec {
                        file: file.into(),
                        message: format!(
                            "python must be pinned to be used in a virtualenv (e.g. python=3.11), not '{dep}'"
                        ),
                    });
                }
                Some("<" | ">" | "!=") => {
                    return Err(EnvError::Spec {
                        file: file.into(),
                        message: format!("'{dep}': the python version must be given with =, ==, <= or >="),
                    });
                }
                _ => python = version.map(str::to_string),
            }
            continue;
        }
        let op = if op == Some("=") { Some("==") } else { op };
        build.push(format!("{package}{}{}", op.unwrap_or(""), version.unwrap_or("")));
    }
    let mut warnings = Vec::new();
    if !skipped.is_empty() {
        warnings.push(format!(
            "{file}: these conda dependencies are not installed in a virtualenv: {}",
            skipped.join(", ")
        ));
    }
    if python.is_none() {
        warnings.push(format!("{file}: no python version is given; the default interpreter is used"));
    }
    Ok((PythonEnvSpec { python, build_dependencies: build, dependencies: conda.pip.clone() }, warnings))
}

/// MLflow's `^(python|pip|setuptools|wheel)(<|>|<=|>=|=|==|!=)?([\d.]+)?$`.
fn split_mlflow_conda_dep(dep: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    let package = ["python", "pip", "setuptools", "wheel"].into_iter().find(|p| dep.starts_with(p))?;
    let rest = &dep[package.len()..];
    let op_len =
        ["<=", ">=", "==", "!=", "<", ">", "="].iter().find(|op| rest.starts_with(*op)).map_or(0, |op| op.len());
    let (op, version) = rest.split_at(op_len);
    if !version.chars().all(|c| c.is_ascii_digit() || c == '.') || (op.is_empty() && !version.is_empty()) {
        return None;
    }
    Some((package, (!op.is_empty()).then_some(op), (!version.is_empty()).then_some(version)))
}

/// A Python request is a version (`3`, `3.11`, `3.11.7`), optionally prefixed by `==` or `=`.
fn check_python_request(v: &str) -> Result<(), String> {
    let bare = v.trim_start_matches('=');
    let ok = !bare.is_empty() && bare.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if ok { Ok(()) } else { Err(format!("python: '{v}' is not a version such as 3.11 or 3.11.7")) }
}

/// Whether an interpreter version (`3.11.7`) satisfies a request (`3.11`, `==3.11.7`, none).
pub fn python_matches(request: Option<&str>, version: &str) -> bool {
    let Some(request) = request else { return true };
    let want: Vec<&str> = request.trim_start_matches('=').split('.').collect();
    let have: Vec<&str> = version.split('.').collect();
    want.len() <= have.len() && want.iter().zip(&have).all(|(w, h)| w.parse::<u64>().ok() == h.parse::<u64>().ok())
}

/// The literal text of `key: value` at the top level of a YAML document, comments removed.
fn top_level_literal(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let value = rest.split(" #").next().unwrap_or("").trim();
        (!value.is_empty()).then(|| value.to_string())
    })
}

fn yaml_error(file: &str, err: serde_yaml::Error) -> EnvError {
    EnvError::Yaml(manifest::yaml_error(file, err))
}

/// `python:` as written: a string, or a number YAML made of an unquoted version.
enum Version {
    Text(String),
    Number(String),
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Version;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Python version such as \"3.11\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Version, E> {
                Ok(Version::Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Version, E> {
                Ok(Version::Number(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Version, E> {
                Ok(Version::Number(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Version, E> {
                Ok(Version::Number(manifest::python_float_repr(v)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A scalar as text (`variables:` values may be numbers or booleans in YAML).
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a single value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(manifest::scalar::variable_bool(v).to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(manifest::python_float_repr(v)))
            }
        }
        d.deserialize_any(V)
    }
}

/// One entry of `dependencies:` in a conda file: a match spec or `{pip: [...]}`.
enum CondaDep {
    Spec(String),
    Pip(Vec<String>),
}

impl<'de> Deserialize<'de> for CondaDep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CondaDep;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a conda match spec or a {pip: [...]} sub-list")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CondaDep, E> {
                Ok(CondaDep::Spec(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<CondaDep, E> {
                Err(E::custom(format!("{v} is not a conda match spec")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<CondaDep, E> {
                Err(E::custom(format!("{v} is not a conda match spec")))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CondaDep, A::Error> {
                let mut pip = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "pip" {
                        return Err(de::Error::custom(format!(
                            "unknown key '{key}' in dependencies: only a pip: sub-list may appear there"
                        )));
                    }
                    pip = Some(map.next_value::<PipList>()?.0);
                }
                pip.map(CondaDep::Pip).ok_or_else(|| de::Error::custom("an empty mapping in dependencies"))
            }
        }
        d.deserialize_any(V)
    }
}

struct PipList(Vec<String>);

impl<'de> Deserialize<'de> for PipList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PipList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of pip requirements")
            }
            fn visit_unit<E: de::Error>(self) -> Result<PipList, E> {
                Ok(PipList(vec![]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PipList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(PipList(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_env_keys_and_unquoted_versions() {
        let (spec, warnings) =
            parse_python_env("python: 3.10\nbuild_dependencies: [pip]\ndependencies:\n  - six==1.16.0\n", "p.yaml")
                .unwrap();
        assert_eq!(spec.python.as_deref(), Some("3.10"));
        assert_eq!(spec.build_dependencies, ["pip"]);
        assert_eq!(spec.dependencies, ["six==1.16.0"]);
        assert!(warnings[0].contains("read as the string \"3.10\""), "{warnings:?}");
        let (spec, warnings) = parse_python_env("python: '3.11'\n", "p.yaml").unwrap();
        assert_eq!(spec.python.as_deref(), Some("3.11"));
        assert!(warnings.is_empty());
        let (spec, _) = parse_python_env("", "p.yaml").unwrap();
        assert_eq!(spec.python, None);
    }

    #[test]
    fn python_env_errors_are_located() {
        let err = parse_python_env("python: '3.11'\ndepndencies: []\n", "python_env.yaml").unwrap_err().to_string();
        assert!(err.starts_with("python_env.yaml:2:1: unknown field `depndencies`"), "{err}");
        let err = parse_python_env("python: '3.11'\ndependencies: [a\n", "python_env.yaml").unwrap_err().to_string();
        assert!(err.starts_with("python_env.yaml:"), "{err}");
        let err = parse_python_env("python: three\n", "python_env.yaml").unwrap_err().to_string();
        assert!(err.contains("'three' is not a version"), "{err}");
    }

    #[test]
    fn conda_env_with_pip_and_variables() {
        let text = "name: x\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy>=1.2\n  - pip:\n    - six\nvariables:\n  A: 1\n";
        let (spec, _) = parse_conda_env(text, "conda.yaml").unwrap();
        assert_eq!(spec.channels, ["conda-forge"]);
        assert_eq!(spec.dependencies, ["python=3.11", "numpy>=1.2"]);
        assert_eq!(spec.pip, ["six"]);
        assert_eq!(spec.variables["A"], "1");
        let err = parse_conda_env("dependencies:\n  - {npm: [x]}\n", "conda.yaml").unwrap_err().to_string();
        assert!(err.contains("unknown key 'npm'"), "{err}");
        let err = parse_conda_env("channel: [a]\n", "conda.yaml").unwrap_err().to_string();
        assert!(err.starts_with("conda.yaml:1:1: unknown field `channel`"), "{err}");
    }

    #[test]
    fn conda_to_python_as_mlflow() {
        let (conda, _) = parse_conda_env(
            "dependencies:\n  - python=3.11.7\n  - pip<=24\n  - numpy\n  - pip:\n    - six\n",
            "conda.yaml",
        )
        .unwrap();
        let (py, warnings) = python_env_from_conda(&conda, "conda.yaml").unwrap();
        assert_eq!(py.python.as_deref(), Some("3.11.7"));
        assert_eq!(py.build_dependencies, ["pip<=24"]);
        assert_eq!(py.dependencies, ["six"]);
        assert!(warnings[0].contains("numpy"));
        let (conda, _) = parse_conda_env("dependencies: [python]\n", "conda.yaml").unwrap();
        assert!(python_env_from_conda(&conda, "conda.yaml").unwrap_err().to_string().contains("must be pinned"));
    }

    #[test]
    fn python_versions_match_by_components() {
        assert!(python_matches(Some("3.11"), "3.11.7"));
        assert!(python_matches(Some("3.11.7"), "3.11.7"));
        assert!(python_matches(Some("==3"), "3.11.7"));
        assert!(!python_matches(Some("3.1"), "3.11.7"));
        assert!(!python_matches(Some("3.11.7.1"), "3.11.7"));
        assert!(python_matches(None, "3.12.0"));
    }
}
