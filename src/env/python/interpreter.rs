//! Finding the interpreter a virtualenv is made from, where MLflow's users keep them (an
//! active conda environment, PATH, pyenv's versions, uv's managed Pythons), downloading one
//! with uv when uv's settings allow it, and asking an interpreter what it is.

use std::fs;
use std::path::{Path, PathBuf};

use crate::env::EnvError;
use crate::env::lock::PythonInfo;
use crate::env::spec::python_matches;
use crate::env::tool::{ToolCommand, ToolFailure, all_on_path};

/// What a search saw, for the error when nothing matches.
#[derive(Debug, Default)]
struct Search {
    /// Interpreters that run, with their versions.
    found: Vec<String>,
    /// Interpreters that do not run (a pyenv shim of an inactive version, a broken link).
    broken: Vec<String>,
    /// The places looked in, in order.
    looked: Vec<String>,
    /// Canonical paths already tried.
    tried: Vec<PathBuf>,
}

impl Search {
    /// `path` if it runs and its version matches `request`; remembered either way.
    fn try_candidate(&mut self, path: &Path, request: Option<&str>) -> Option<PathBuf> {
        let real = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if self.tried.contains(&real) {
            return None;
        }
        self.tried.push(real);
        let Some(info) = probe(path) else {
            self.broken.push(path.display().to_string());
            return None;
        };
        if python_matches(request, &info.version) {
            return Some(path.to_path_buf());
        }
        self.found.push(format!("{} ({})", path.display(), info.version));
        None
    }

    /// The interpreter of the first of `versions` (highest first) that matches and runs; the
    /// others are noted by name, without running them.
    fn try_versions(&mut self, versions: Vec<Version>, request: Option<&str>, place: &str) -> Option<PathBuf> {
        for v in versions {
            if !python_matches(request, &v.version) {
                self.found.push(format!("{} ({place})", v.version));
            } else if let Some(found) = self.try_candidate(&v.python, request) {
                return Some(found);
            }
        }
        None
    }
}

/// An installed version in a directory of versions (pyenv's, uv's).
#[derive(Debug)]
struct Version {
    /// Its interpreter.
    python: PathBuf,
    /// Its version, from the directory's name.
    version: String,
    numbers: Vec<u64>,
}

/// An interpreter whose version matches `request` (any when `None`): the active conda
/// environment's, then `pythonX.Y`, `python3` and `python` on PATH (those that run), then
/// pyenv's versions, then uv's managed Pythons. With `uv`, a missing version is downloaded
/// when uv's settings allow it (uv's default does).
pub(super) fn find_interpreter(request: Option<&str>, uv: Option<&Path>) -> Result<PathBuf, EnvError> {
    let mut search = Search::default();
    if let Some(found) = search_installed(request, &mut search) {
        return Ok(found);
    }
    let downloads = match (uv, request) {
        (Some(uv), Some(request)) => {
            match download_refusal(env("UV_OFFLINE").as_deref(), env("UV_PYTHON_DOWNLOADS").as_deref()) {
                Some(reason) => format!("uv may not download it ({reason})"),
                None => match download(uv, request) {
                    Ok(installed) => match search.try_candidate(&installed, Some(request)) {
                        Some(found) => return Ok(found),
                        None => format!("uv downloaded {}, which does not match", installed.display()),
                    },
                    Err(failure) => format!("uv could not download it: {}", failure.detail),
                },
            }
        }
        (None, _) => "without uv, nothing is downloaded".into(),
        (_, None) => "no version was asked for".into(),
    };
    let mut found = search.found.clone();
    found.extend(search.broken.iter().map(|b| format!("{b} (does not run)")));
    Err(EnvError::NoPython {
        request: request.unwrap_or("any").to_string(),
        found: if found.is_empty() { "no interpreter found".into() } else { format!("found {}", found.join(", ")) },
        looked: search.looked.join(", "),
        downloads,
    })
}

/// The installed interpreters, in the order of [`find_interpreter`].
fn search_installed(request: Option<&str>, search: &mut Search) -> Option<PathBuf> {
    if let Some(prefix) = env("CONDA_PREFIX").filter(|p| !p.is_empty()) {
        search.looked.push(format!("the active conda environment ({prefix})"));
        if let Some(found) = search.try_candidate(&Path::new(&prefix).join("bin/python"), request) {
            return Some(found);
        }
    }
    let names = path_names(request);
    search.looked.push(format!("PATH ({})", names.join(", ")));
    for name in &names {
        for candidate in all_on_path(name) {
            if let Some(found) = search.try_candidate(&candidate, request) {
                return Some(found);
            }
        }
    }
    if let Some(root) = pyenv_root() {
        let versions = root.join("versions");
        search.looked.push(format!("pyenv's versions ({})", versions.display()));
        if let Some(found) = search.try_versions(pyenv_versions(&versions), request, "pyenv") {
            return Some(found);
        }
    }
    if let Some(dir) = uv_python_dir() {
        search.looked.push(format!("uv's Pythons ({})", dir.display()));
        if let Some(found) = search.try_versions(uv_versions(&dir), request, "uv") {
            return Some(found);
        }
    }
    None
}

/// `pythonX.Y` (when the request names a minor version), `python3`, `python`.
fn path_names(request: Option<&str>) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(r) = request {
        let parts: Vec<&str> = r.split('.').collect();
        if parts.len() >= 2 {
            names.push(format!("python{}.{}", parts[0], parts[1]));
        }
    }
    names.extend(["python3".to_string(), "python".to_string()]);
    names
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn home() -> Option<PathBuf> {
    env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from)
}

/// `$PYENV_ROOT`, else pyenv's default `~/.pyenv`: what `pyenv root` says, without running it.
fn pyenv_root() -> Option<PathBuf> {
    env("PYENV_ROOT").filter(|r| !r.is_empty()).map(PathBuf::from).or_else(|| home().map(|h| h.join(".pyenv")))
}

/// Where uv keeps the Pythons it manages (what `uv python dir` says, without running it).
fn uv_python_dir() -> Option<PathBuf> {
    if let Some(dir) = env("UV_PYTHON_INSTALL_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let data = env("XDG_DATA_HOME").filter(|d| !d.is_empty()).map(PathBuf::from);
    data.or_else(|| home().map(|h| h.join(".local/share"))).map(|d| d.join("uv/python"))
}

/// A version written as dot-separated numbers (`3.10.13`); `None` for anything else
/// (`3.13.0t`, `miniconda3-latest`, a pyenv-virtualenv name).
fn numeric_version(text: &str) -> Option<Vec<u64>> {
    let parts: Option<Vec<u64>> = text.split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| p.len() >= 2)
}

/// The entries of `dir` that name a version (by `version_of` their name), highest first, with
/// the interpreter inside each (`python` under it).
fn versions_in(dir: &Path, version_of: impl Fn(&str) -> Option<&str>, python: &str) -> Vec<Version> {
    let Ok(entries) = fs::read_dir(dir) else { return vec![] };
    let mut versions: Vec<Version> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = version_of(&name)?.to_string();
            let numbers = numeric_version(&version)?;
            Some(Version { python: e.path().join(python), version, numbers })
        })
        .collect();
    versions.sort_by(|a, b| b.numbers.cmp(&a.numbers));
    versions
}

/// pyenv's installed versions: `versions/X.Y.Z/bin/python`, never its shims (a shim of a
/// version that is not active refuses to run).
fn pyenv_versions(versions: &Path) -> Vec<Version> {
    versions_in(versions, |name| Some(name), "bin/python")
}

/// uv's managed CPythons: `cpython-X.Y.Z-<platform>/bin/python3` (free-threaded and debug
/// builds, `X.Y.Z+freethreaded`, are left out).
fn uv_versions(dir: &Path) -> Vec<Version> {
    versions_in(dir, |name| name.strip_prefix("cpython-")?.split('-').next(), "bin/python3")
}

/// Why lockstep may not ask uv for a download, from `UV_OFFLINE` and `UV_PYTHON_DOWNLOADS`;
/// `None` when it may (uv's default is `automatic`). uv's own settings files are uv's to
/// apply: it refuses the download itself when they say `never`.
fn download_refusal(offline: Option<&str>, downloads: Option<&str>) -> Option<String> {
    let truthy = |v: &str| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on");
    if offline.is_some_and(truthy) {
        return Some("UV_OFFLINE is set".into());
    }
    match downloads.map(str::trim) {
        Some(value @ ("never" | "manual")) => Some(format!("UV_PYTHON_DOWNLOADS={value}")),
        _ => None,
    }
}

/// Download a CPython matching `request` into uv's managed Pythons; returns its interpreter.
fn download(uv: &Path, request: &str) -> Result<PathBuf, ToolFailure> {
    // `--no-bin`: the download serves this environment; the user's `~/.local/bin` is theirs.
    ToolCommand::new(uv, ["python", "install", "--no-bin", request])
        .run(&format!("downloading Python {request} with uv"))?;
    let out = ToolCommand::new(uv, ["python", "find", "--python-preference", "only-managed", request]).run_quiet()?;
    Ok(PathBuf::from(String::from_utf8_lossy(&out).trim()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(found: Vec<Version>, root: &Path) -> Vec<String> {
        found.iter().map(|v| v.python.strip_prefix(root).unwrap().display().to_string()).collect()
    }

    #[test]
    fn pyenv_versions_are_directories_named_by_version_highest_first() {
        let dir = tempfile::tempdir().unwrap();
        for v in ["3.10.2", "3.10.13", "3.11.7", "3.8.18", "3.13.0t", "miniconda3-latest", "3"] {
            fs::create_dir_all(dir.path().join(v)).unwrap();
        }
        assert_eq!(
            names(pyenv_versions(dir.path()), dir.path()),
            ["3.11.7/bin/python", "3.10.13/bin/python", "3.10.2/bin/python", "3.8.18/bin/python"]
        );
        assert!(pyenv_versions(&dir.path().join("absent")).is_empty());
    }

    #[test]
    fn uv_pythons_are_cpython_builds_by_version() {
        let dir = tempfile::tempdir().unwrap();
        for v in [
            "cpython-3.12.1-linux-x86_64-gnu",
            "cpython-3.12.4-linux-x86_64-gnu",
            "cpython-3.13.0+freethreaded-linux-x86_64-gnu",
            "pypy-3.10.14-linux-x86_64-gnu",
            ".lock",
        ] {
            fs::create_dir_all(dir.path().join(v)).unwrap();
        }
        assert_eq!(
            names(uv_versions(dir.path()), dir.path()),
            ["cpython-3.12.4-linux-x86_64-gnu/bin/python3", "cpython-3.12.1-linux-x86_64-gnu/bin/python3"]
        );
    }

    #[test]
    fn versions_that_do_not_match_are_noted_without_running_them() {
        let mut search = Search::default();
        let versions = vec![Version {
            python: "/nonexistent/bin/python".into(),
            version: "3.11.7".into(),
            numbers: vec![3, 11, 7],
        }];
        assert_eq!(search.try_versions(versions, Some("3.10"), "pyenv"), None);
        assert_eq!(search.found, ["3.11.7 (pyenv)"]);
        assert!(search.broken.is_empty() && search.tried.is_empty());
    }

    #[test]
    fn downloads_follow_uv_settings() {
        assert_eq!(download_refusal(None, None), None);
        assert_eq!(download_refusal(None, Some("automatic")), None);
        assert_eq!(download_refusal(Some("0"), None), None);
        assert_eq!(download_refusal(None, Some("never")).unwrap(), "UV_PYTHON_DOWNLOADS=never");
        assert_eq!(download_refusal(None, Some("manual")).unwrap(), "UV_PYTHON_DOWNLOADS=manual");
        assert_eq!(download_refusal(Some("1"), Some("automatic")).unwrap(), "UV_OFFLINE is set");
        assert_eq!(download_refusal(Some("true"), None).unwrap(), "UV_OFFLINE is set");
    }

    #[test]
    fn a_candidate_that_does_not_run_is_noted_and_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let shim = dir.path().join("python3.10");
        fs::write(&shim, "#!/bin/sh\necho 'pyenv: python3.10: command not found' >&2\nexit 127\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&shim, fs::Permissions::from_mode(0o755)).unwrap();
        let mut search = Search::default();
        assert_eq!(search.try_candidate(&shim, Some("3.10")), None);
        assert_eq!(search.broken, [shim.display().to_string()]);
        assert_eq!(search.try_candidate(&shim, Some("3.10")), None, "tried once");
        assert_eq!(search.broken.len(), 1);
    }
}
