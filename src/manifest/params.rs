//! Typed parameters: `-P` arguments, type checks, and binding values to an entry point.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::{EntryPoint, ManifestError};
use crate::support::text::percent_decode;

/// The type of a declared parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Any text (the default type).
    String,
    /// A number, checked (MLflow does not check).
    Float,
    /// An integer, checked (MLflow does not check).
    Int,
    /// `true`/`false` in any case, or `1`/`0`, checked (MLflow does not check).
    Bool,
    /// A local path that must exist (made absolute) or an http(s) URL (downloaded).
    Path,
    /// A URI, which must have a scheme.
    Uri,
}

impl ParamType {
    /// The type for a name used in MLproject files, or `None` when unknown.
    pub fn parse(name: &str) -> Option<ParamType> {
        Some(match name {
            "string" => ParamType::String,
            "float" => ParamType::Float,
            "int" => ParamType::Int,
            "bool" => ParamType::Bool,
            "path" => ParamType::Path,
            "uri" => ParamType::Uri,
            _ => return None,
        })
    }

    /// The name used in MLproject files.
    pub fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Float => "float",
            ParamType::Int => "int",
            ParamType::Bool => "bool",
            ParamType::Path => "path",
            ParamType::Uri => "uri",
        }
    }

    /// Check a value against the type; the error completes "its value 'x' ...".
    pub fn check(self, value: &str) -> Result<(), &'static str> {
        let ok = match self {
            ParamType::String | ParamType::Path => true,
            ParamType::Float => value.trim().parse::<f64>().is_ok(),
            ParamType::Int => value.trim().parse::<i64>().is_ok(),
            ParamType::Bool => {
                matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "false" | "1" | "0")
            }
            ParamType::Uri => uri_scheme(value).is_some(),
        };
        if ok {
            return Ok(());
        }
        Err(match self {
            ParamType::Float => "is not a number",
            ParamType::Int if is_integer_literal(value.trim()) => "is too large for an integer (at most 64 bits)",
            ParamType::Int => "is not an integer",
            ParamType::Bool => "is not a boolean (true, false, 1 or 0)",
            _ => "has no scheme",
        })
    }
}

/// Digits with an optional sign: an integer, however large.
fn is_integer_literal(value: &str) -> bool {
    let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The scheme of a URI (`s3` in `s3://b/k`), when it has one.
///
/// One-letter schemes are refused, since `C:` is a Windows drive and never a scheme here.
pub fn uri_scheme(value: &str) -> Option<&str> {
    let (scheme, _) = value.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && scheme.len() > 1;
    valid.then_some(scheme)
}

/// The `-P NAME=VALUE` arguments of a run, in the order given, each name once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamArgs(Vec<(String, String)>);

impl ParamArgs {
    /// Split each argument on its first `=`; a missing `=`, an empty name or a repeated name is an error.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<ParamArgs, ManifestError> {
        let pairs = args.iter().map(|arg| {
            let arg = arg.as_ref();
            arg.split_once('=')
                .filter(|(name, _)| !name.is_empty())
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .ok_or_else(|| ManifestError::ParamWithoutValue { arg: arg.to_string() })
        });
        ParamArgs::from_pairs(pairs.collect::<Result<Vec<_>, _>>()?)
    }

    /// Names and values already apart (a record's), in order; an empty or repeated name is an error.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<ParamArgs, ManifestError> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for (name, value) in pairs {
            if name.is_empty() {
                return Err(ManifestError::ParamWithoutValue { arg: format!("={value}") });
            }
            if !seen.insert(name.clone()) {
                return Err(ManifestError::RepeatedParam { name });
            }
            out.push((name, value));
        }
        Ok(ParamArgs(out))
    }

    /// The value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// All pairs, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// How a parameter's value reaches the command.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// Used as it is.
    Plain(String),
    /// A local path still to be checked and made absolute.
    LocalPath {
        /// The path as written (or as decoded from a `file:` URI).
        path: PathBuf,
        /// Relative to the project directory (a default) rather than the caller's directory.
        from_project: bool,
    },
    /// An http(s) URL to download into the run's directory.
    Url(String),
    /// An MLflow artifact URI (`runs:/`, `models:/`, `mlflow-artifacts:/`) to fetch into the
    /// run's directory.
    Artifact(String),
}

/// A parameter with its value, validated against its declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundParam {
    /// The name.
    pub name: String,
    /// The value as given or defaulted, before path resolution: what the record stores.
    pub raw: String,
    /// How the value reaches the command.
    pub value: ParamValue,
    /// Declared by the entry point (undeclared ones are appended as `--name value`).
    pub declared: bool,
}

/// Schemes of object stores MLflow downloads `path` parameters from, and lockstep does not.
const REMOTE_SCHEMES: &[&str] = &["s3", "gs", "dbfs", "wasbs", "wasb", "abfss", "hdfs", "ftp", "sftp"];

/// MLflow's own artifact URIs (runs, registered and logged models, the artifact proxy),
/// which lockstep fetches as `mlflow run` does.
const MLFLOW_SCHEMES: &[&str] = &["runs", "models", "mlflow-artifacts"];

/// Bind the `-P` values (and defaults) to an entry point's parameters, checking types.
pub fn bind_parameters(ep: &EntryPoint, args: &ParamArgs) -> Result<Vec<BoundParam>, ManifestError> {
    let mut out = Vec::with_capacity(ep.parameters.len());
    let given: HashMap<&str, &str> = args.iter().collect();
    for p in &ep.parameters {
        let (raw, from_default) = match (given.get(p.name.as_str()), &p.default) {
            (Some(v), _) => (v.to_string(), false),
            (None, Some(d)) => (d.clone(), true),
            (None, None) => {
                return Err(ManifestError::MissingParam {
                    entry_point: ep.name.clone(),
                    name: p.name.clone(),
                    ty: p.ty,
                });
            }
        };
        let invalid =
            |reason| ManifestError::InvalidValue { name: p.name.clone(), ty: p.ty, value: raw.clone(), reason };
        p.ty.check(&raw).map_err(invalid)?;
        let value = if p.ty == ParamType::Path {
            path_value(&raw, from_default).ok_or_else(|| match uri_scheme(&raw) {
                Some(scheme) if REMOTE_SCHEMES.contains(&scheme) => {
                    ManifestError::RemotePath { name: p.name.clone(), value: raw.clone(), scheme: scheme.into() }
                }
                _ => invalid("is neither a local path nor an http(s) URL"),
            })?
        } else {
            ParamValue::Plain(raw.clone())
        };
        out.push(BoundParam { name: p.name.clone(), raw, value, declared: true });
    }
    let declared: HashSet<&str> = ep.parameters.iter().map(|p| p.name.as_str()).collect();
    for (name, value) in args.iter() {
        if !declared.contains(name) {
            out.push(BoundParam {
                name: name.to_string(),
                raw: value.to_string(),
                value: ParamValue::Plain(value.to_string()),
                declared: false,
            });
        }
    }
    Ok(out)
}

fn path_value(raw: &str, from_project: bool) -> Option<ParamValue> {
    match uri_scheme(raw) {
        Some("http" | "https") => Some(ParamValue::Url(raw.to_string())),
        Some(scheme) if MLFLOW_SCHEMES.contains(&scheme) => Some(ParamValue::Artifact(raw.to_string())),
        Some("file") => {
            let path = raw.strip_prefix("file://").or_else(|| raw.strip_prefix("file:"))?;
            Some(ParamValue::LocalPath { path: percent_decode(path).into(), from_project })
        }
        Some(_) => None,
        None => Some(ParamValue::LocalPath { path: raw.into(), from_project }),
    }
}
