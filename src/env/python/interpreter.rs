//! Finding the interpreter a virtualenv is made from, and asking one what it is.

use std::fs;
use std::path::{Path, PathBuf};

use crate::env::EnvError;
use crate::env::lock::PythonInfo;
use crate::env::spec::python_matches;
use crate::env::tool::{ToolCommand, all_on_path};

/// The first interpreter on PATH whose version matches `request`.
pub(super) fn find_interpreter(request: Option<&str>) -> Result<PathBuf, EnvError> {
    let mut names = Vec::new();
    if let Some(r) = request {
        let parts: Vec<&str> = r.split('.').collect();
        if parts.len() >= 2 {
            names.push(format!("python{}.{}", parts[0], parts[1]));
        }
    }
    names.extend(["python3".to_string(), "python".to_string()]);
    let mut seen = Vec::new();
    let mut found = Vec::new();
    for name in &names {
        for candidate in all_on_path(name) {
            let real = fs::canonicalize(&candidate).unwrap_or(candidate.clone());
            if seen.contains(&real) {
                continue;
            }
            seen.push(real);
            let Some(info) = probe(&candidate) else { continue };
            if python_matches(request, &info.version) {
                return Ok(candidate);
            }
            found.push(format!("{} ({})", candidate.display(), info.version));
        }
    }
    let found =
        if found.is_empty() { "no python on PATH".to_string() } else { format!("on PATH: {}", found.join(", ")) };
    Err(EnvError::NoPython { request: request.unwrap_or("any").to_string(), found })
}

pub(super) const PROBE: &str =
    "import platform; print(platform.python_implementation().lower()); print(platform.python_version())";

/// The implementation and version of an interpreter.
pub fn probe(python: &Path) -> Option<PythonInfo> {
    let out = ToolCommand::new(python, ["-c", PROBE]).run_quiet().ok()?;
    let text = String::from_utf8_lossy(&out);
    let mut lines = text.lines();
    let implementation = lines.next()?.trim().to_string();
    let version = lines.next()?.trim().to_string();
    Some(PythonInfo { version, implementation })
}

/// The interpreter of a virtualenv made by uv, from its `pyvenv.cfg` (uv writes both the
/// implementation and the version there; `python -m venv` does not).
pub(super) fn venv_python_info(prefix: &Path) -> Option<PythonInfo> {
    let cfg = fs::read_to_string(prefix.join("pyvenv.cfg")).ok()?;
    let field = |name: &str| {
        cfg.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    Some(PythonInfo { version: field("version_info")?, implementation: field("implementation")?.to_lowercase() })
}
