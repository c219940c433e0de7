//! The MLproject manifest: parsing, validation, typed parameters and command rendering.
//!
//! Pure functions over the file's text, except [`Manifest::load`], which finds and reads the
//! file and checks that the environment files it names exist.

mod command;
mod params;
pub mod scalar;
mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

pub use command::{render_command, shell_quote};
pub use params::{BoundParam, ParamArgs, ParamType, ParamValue, bind_parameters};
pub use scalar::python_float_repr;

/// Errors in an MLproject file, an entry point choice or parameter values; all are the user's.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The MLproject file (or another YAML file) is not valid or not well formed.
    #[error("{file}:{line}:{column}: {message}")]
    Yaml {
        /// The file, as shown to the user.
        file: String,
        /// One-based line.
        line: usize,
        /// One-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A project file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The MLproject names an environment file that is not in the project.
    #[error("{manifest}: {key} names '{file}', which does not exist in {project}")]
    MissingEnvFile {
        /// The MLproject file.
        manifest: String,
        /// `python_env` or `conda_env`.
        key: &'static str,
        /// The file it names.
        file: String,
        /// The project directory.
        project: PathBuf,
    },
    /// No entry point of that name, and it is not a runnable script either.
    #[error("{}", unknown_entry_point_message(.entry_point, .available, *.has_manifest))]
    UnknownEntryPoint {
        /// The requested entry point.
        entry_point: String,
        /// The entry points the MLproject declares.
        available: Vec<String>,
        /// Whether the project has an MLproject file at all.
        has_manifest: bool,
    },
    /// `-e script.py` or `-e script.sh` for a script that is not in the project.
    #[error("entry point '{script}' is not declared and no such script exists in {project}")]
    ScriptNotFound {
        /// The script named by `-e`.
        script: String,
        /// The project directory.
        project: PathBuf,
    },
    /// A `-P` argument that is not `NAME=VALUE`.
    #[error("parameter '{arg}' is not NAME=VALUE")]
    ParamWithoutValue {
        /// The argument as given.
        arg: String,
    },
    /// The same parameter given twice with `-P`.
    #[error("parameter '{name}' is given more than once")]
    RepeatedParam {
        /// The parameter.
        name: String,
    },
    /// A required parameter (declared without a default) has no value.
    #[error("entry point '{entry_point}' needs parameter '{name}' ({ty}), which has no default")]
    MissingParam {
        /// The entry point.
        entry_point: String,
        /// The parameter.
        name: String,
        /// Its declared type.
        ty: ParamType,
    },
    /// A value that does not fit the parameter's type.
    #[error("parameter '{name}' is declared {ty}, but its value '{value}' {reason}")]
    InvalidValue {
        /// The parameter.
        name: String,
        /// Its declared type.
        ty: ParamType,
        /// The offending value.
        value: String,
        /// Why it does not fit, completing the sentence.
        reason: &'static str,
    },
    /// A `path` parameter given a URI of a store lockstep does not download from (yet).
    #[error("parameter '{name}' is a path, but lockstep cannot download {scheme}: URIs yet ('{value}')")]
    RemotePath {
        /// The parameter.
        name: String,
        /// The value given.
        value: String,
        /// Its scheme (`s3`, `runs`).
        scheme: String,
    },
    /// A `path` parameter naming a local path that does not exist.
    #[error("parameter '{name}' is a path, but {} does not exist", .path.display())]
    PathNotFound {
        /// The parameter.
        name: String,
        /// The absolute path that was looked for.
        path: PathBuf,
        /// Whether the value came from `-P` (else from the manifest's default).
        given: bool,
        /// For a relative value given with `-P`, resolved against the caller's directory: the
        /// same relative path inside the project, when that exists.
        in_project: Option<PathBuf>,
    },
    /// A `{name}` placeholder in a command with no parameter of that name.
    #[error(
        "the command of entry point '{entry_point}' uses {{{placeholder}}}, but declares no parameter '{placeholder}'"
    )]
    UndeclaredPlaceholder {
        /// The entry point.
        entry_point: String,
        /// The placeholder's name.
        placeholder: String,
    },
    /// A command with braces that are neither a placeholder nor an escaped `{{` / `}}`.
    #[error("the command of entry point '{entry_point}' has a malformed placeholder at byte {offset}: {command}")]
    MalformedCommand {
        /// The entry point.
        entry_point: String,
        /// The command template.
        command: String,
        /// Where the problem starts.
        offset: usize,
    },
}

impl ManifestError {
    /// What to try next.
    pub fn hint(&self) -> Option<String> {
        match self {
            ManifestError::UnknownEntryPoint { has_manifest: false, .. } => {
                Some("add an MLproject file declaring the entry point, or name a .py or .sh script with -e".into())
            }
            ManifestError::MalformedCommand { .. } => {
                Some("write {{ and }} for literal braces; placeholders look like {name}".into())
            }
            ManifestError::UndeclaredPlaceholder { placeholder, .. } => {
                Some(format!("declare it under the entry point's parameters: `{placeholder}: string`"))
            }
            ManifestError::RemotePath { .. } => Some(
                "declare the parameter `uri` to hand the URI to the entry point as written, or fetch the data first and pass the local path".into(),
            ),
            ManifestError::InvalidValue { ty: ParamType::Uri, .. } => {
                Some("a uri needs a scheme, as in file:///data/train.csv or s3://bucket/key".into())
            }
            ManifestError::MissingParam { name, .. } => Some(format!("give it a value: -P {name}=...")),
            ManifestError::UnknownEntryPoint { entry_point, available, has_manifest: true } => {
                closest(entry_point, available).map(|name| format!("did you mean `-e {name}`?"))
            }
            ManifestError::PathNotFound { in_project: Some(candidate), .. } => Some(format!(
                "a relative -P path is resolved against the current directory, as `mlflow run` does; the project has {}: give that path",
                candidate.display()
            )),
            ManifestError::PathNotFound { given: true, in_project: None, .. } => {
                Some("a relative -P path is resolved against the current directory, as `mlflow run` does".into())
            }
            _ => None,
        }
    }
}

/// The declared name closest to a mistyped one: within a third of its length in edits (at
/// least one), as cargo suggests commands.
fn closest<'a>(wanted: &str, available: &'a [String]) -> Option<&'a str> {
    let wanted = wanted.to_lowercase();
    let limit = (wanted.chars().count() / 3).max(1);
    available
        .iter()
        .map(|name| (edit_distance(&wanted, &name.to_lowercase()), name))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name.as_str())
}

/// Edits between two names, in characters: insertions, deletions, substitutions and swaps of
/// two neighbours (`mian` is one edit from `main`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

fn unknown_entry_point_message(entry_point: &str, available: &[String], has_manifest: bool) -> String {
    let tail = "; a name ending in .py or .sh runs that script";
    if !has_manifest {
        return format!(
            "the project has no MLproject file, so entry point '{entry_point}' must be a .py or .sh script"
        );
    }
    if available.is_empty() {
        format!("entry point '{entry_point}' not found: the MLproject declares no entry points{tail}")
    } else {
        format!("entry point '{entry_point}' not found; the MLproject declares: {}{tail}", available.join(", "))
    }
}

/// The environment a project asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvSpec {
    /// No environment: the command runs with the caller's own tools.
    None,
    /// A `python_env.yaml` file, relative to the project directory.
    Python {
        /// The file.
        file: PathBuf,
    },
    /// A conda environment file, relative to the project directory.
    Conda {
        /// The file.
        file: PathBuf,
    },
    /// A Docker image.
    Docker(DockerEnv),
}

impl EnvSpec {
    /// The MLproject key naming this kind of environment, or `none`.
    pub fn kind(&self) -> &'static str {
        match self {
            EnvSpec::None => "none",
            EnvSpec::Python { .. } => "python_env",
            EnvSpec::Conda { .. } => "conda_env",
            EnvSpec::Docker(_) => "docker_env",
        }
    }
}

/// The `docker_env` section.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerEnv {
    /// The base image reference.
    pub image: String,
    /// `host:container[:mode]` volume specifications, as written.
    pub volumes: Vec<String>,
    /// Environment variables for the container.
    pub environment: Vec<DockerEnvVar>,
}

/// One entry of `docker_env.environment`.
#[derive(Debug, Clone, PartialEq)]
pub enum DockerEnvVar {
    /// `NAME`: copied from the caller's environment.
    Copy(String),
    /// `[NAME, value]`: set to a literal value.
    Set(String, String),
}

/// One declared parameter of an entry point.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// Its name.
    pub name: String,
    /// Its type (unknown type names are read as `string`, with a warning).
    pub ty: ParamType,
    /// Its default, rendered as MLflow renders YAML scalars (`True`, `0.1`).
    pub default: Option<String>,
}

/// An entry point: a command template with typed parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryPoint {
    /// Its name (`main`, or a script name for the script fallback).
    pub name: String,
    /// Declared parameters, in file order.
    pub parameters: Vec<Parameter>,
    /// The command template with `{name}` placeholders.
    pub command: String,
    /// Globs of files the entry point produces (lockstep's `outputs:` extension).
    pub outputs: Vec<String>,
}

/// A parsed MLproject (or the implicit one of a project without the file).
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The project's name, when declared.
    pub name: Option<String>,
    /// The environment the project asks for, after the file-based precedence.
    pub env: EnvSpec,
    /// Entry points, in file order.
    pub entry_points: Vec<EntryPoint>,
    /// The MLproject file, when there is one.
    pub file: Option<PathBuf>,
    /// Things that are accepted but probably not meant (unknown keys, unknown types).
    pub warnings: Vec<String>,
}

/// A manifest as parsed from text, before the project directory is consulted.
#[derive(Debug, Default)]
pub(crate) struct ParsedManifest {
    pub(crate) name: Option<String>,
    pub(crate) env: Option<EnvSpec>,
    pub(crate) entry_points: Vec<EntryPoint>,
    pub(crate) warnings: Vec<String>,
}

impl Manifest {
    /// Find, read and validate the MLproject of `project_dir`; without one, the implicit manifest.
    pub fn load(project_dir: &Path) -> Result<Manifest, ManifestError> {
        let file = find_manifest_file(project_dir)?;
        let parsed = match &file {
            Some(path) => {
                let text =
                    fs::read_to_string(path).map_err(|source| ManifestError::Read { path: path.clone(), source })?;
                parse(&text, &display_name(project_dir, path))?
            }
            None => ParsedManifest::default(),
        };
        let manifest_label = file.as_deref().map(|f| display_name(project_dir, f)).unwrap_or_default();
        let env = match parsed.env {
            Some(EnvSpec::Python { file: env_file }) => {
                check_env_file(project_dir, &manifest_label, "python_env", &env_file)?;
                EnvSpec::Python { file: env_file }
            }
            Some(EnvSpec::Conda { file: env_file }) => {
                check_env_file(project_dir, &manifest_label, "conda_env", &env_file)?;
                EnvSpec::Conda { file: env_file }
            }
            Some(other) => other,
            None if project_dir.join("python_env.yaml").is_file() => EnvSpec::Python { file: "python_env.yaml".into() },
            None if project_dir.join("conda.yaml").is_file() => EnvSpec::Conda { file: "conda.yaml".into() },
            None => EnvSpec::None,
        };
        Ok(Manifest { name: parsed.name, env, entry_points: parsed.entry_points, file, warnings: parsed.warnings })
    }

    /// The entry point to run for `-e name`: a declared one, else a `.py` / `.sh` script fallback.
    pub fn entry_point(&self, name: &str, project_dir: &Path) -> Result<EntryPoint, ManifestError> {
        if let Some(ep) = self.entry_points.iter().find(|ep| ep.name == name) {
            return Ok(ep.clone());
        }
        let interpreter = if name.ends_with(".py") {
            "python"
        } else if name.ends_with(".sh") {
            "bash"
        } else {
            return Err(ManifestError::UnknownEntryPoint {
                entry_point: name.to_string(),
                available: self.entry_points.iter().map(|ep| ep.name.clone()).collect(),
                has_manifest: self.file.is_some(),
            });
        };
        if !project_dir.join(name).is_file() {
            return Err(ManifestError::ScriptNotFound { script: name.to_string(), project: project_dir.to_path_buf() });
        }
        Ok(EntryPoint {
            name: name.to_string(),
            parameters: Vec::new(),
            command: format!("{interpreter} {}", shell_quote(name)),
            outputs: Vec::new(),
        })
    }
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether `dir` is a project whose `entry_point` lockstep could run: it has an MLproject
/// file, or the entry point is a script in it. A recorded directory that is neither (`/`, a
/// parent of the project) must not be hashed as if it were the project.
pub fn is_project_dir(dir: &Path, entry_point: &str) -> bool {
    let script = Path::new(entry_point);
    let script_inside =
        !entry_point.is_empty() && script.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    matches!(find_manifest_file(dir), Ok(Some(_))) || (script_inside && dir.join(script).is_file())
}

/// The MLproject file of a directory: the entry whose lower-cased name is `mlproject`.
fn find_manifest_file(project_dir: &Path) -> Result<Option<PathBuf>, ManifestError> {
    let entries =
        fs::read_dir(project_dir).map_err(|source| ManifestError::Read { path: project_dir.to_path_buf(), source })?;
    let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().eq_ignore_ascii_case("mlproject") && entry.path().is_file() {
            found.insert(name.to_string_lossy().into_owned(), entry.path());
        }
    }
    // `MLproject` wins over other spellings, so the choice never depends on directory order.
    Ok(found.remove("MLproject").or_else(|| found.into_values().next()))
}

fn display_name(project_dir: &Path, file: &Path) -> String {
    file.strip_prefix(project_dir).unwrap_or(file).display().to_string()
}

fn check_env_file(project_dir: &Path, manifest: &str, key: &'static str, file: &Path) -> Result<(), ManifestError> {
    if project_dir.join(file).is_file() {
        Ok(())
    } else {
        Err(ManifestError::MissingEnvFile {
            manifest: manifest.to_string(),
            key,
            file: file.display().to_string(),
            project: project_dir.to_path_buf(),
        })
    }
}

/// Parse the text of an MLproject file; `file` names it in error messages.
pub(crate) fn parse(text: &str, file: &str) -> Result<ParsedManifest, ManifestError> {
    yaml::parse_manifest(text).map_err(|e| yaml_error(file, e))
}

/// A serde_yaml error as `file:line:column: message`.
pub fn yaml_error(file: &str, err: serde_yaml::Error) -> ManifestError {
    let (line, column) = err.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
    ManifestError::Yaml { file: file.to_string(), line, column, message: strip_marks(&err.to_string()) }
}

/// Remove serde_yaml's ` at line N column M` fragments: the location is printed up front.
fn strip_marks(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" at line ") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + " at line ".len()..];
        let skip = tail
            .split_once(" column ")
            .filter(|(line, _)| line.chars().all(|c| c.is_ascii_digit()))
            .map(|(line, col)| line.len() + " column ".len() + col.chars().take_while(char::is_ascii_digit).count());
        match skip {
            Some(n) => rest = &tail[n..],
            None => {
                out.push_str(" at line ");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
