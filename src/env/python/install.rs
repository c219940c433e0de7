//! Installing into a virtualenv: creating it, resolving requirements into an exact list
//! (uv `pip compile` to a pylock.toml, or pip's `--report`), installing them, and the lock.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::Installer;
use super::inspect::{Artifacts, installed_packages, pip_report_artifacts, pylock_artifacts};
use super::interpreter::{find_interpreter, probe, venv_python_info};
use crate::env::EnvError;
use crate::env::cache::{Activation, BuildOutput};
use crate::env::lock::{EnvLock, LOCK_SCHEMA, PyPackage, current_platform};
use crate::env::requirements::Requirements;
use crate::env::tool::{ToolCommand, install_error};
use crate::support::progress::Progress;

/// Write requirement lines to a new file in `inputs`.
pub(super) fn write_input(inputs: &Path, reqs: &Requirements) -> Result<PathBuf, EnvError> {
    let n = fs::read_dir(inputs).map(|d| d.count()).unwrap_or(0);
    let input = inputs.join(format!("requirements{n}.in"));
    fs::write(&input, reqs.lines.join("\n") + "\n").map_err(EnvError::io(&input))?;
    Ok(input)
}

/// Install requirement lines into the environment of `python`; returns the artifacts the
/// installer used. `what` says what they are (`the dependencies of python_env.yaml`).
pub fn install_requirements(
    installer: &Installer,
    python: &Path,
    reqs: &Requirements,
    project_dir: &Path,
    inputs: &Path,
    what: &str,
) -> Result<Artifacts, EnvError> {
    if reqs.lines.is_empty() {
        return Ok(Artifacts::new());
    }
    let input = write_input(inputs, reqs)?;
    match installer {
        Installer::Uv(uv) => {
            let pylock = uv_resolve(uv, python, &input, project_dir, what)?;
            uv_install(uv, python, &pylock, project_dir, what)?;
            pylock_artifacts(&pylock)
        }
        Installer::Pip => {
            let report = input.with_extension("report.json");
            pip(python)
                .args(["install", "--no-input", "--report"])
                .arg_path(&report)
                .args(["--requirement"])
                .arg_path(&input)
                .dir(project_dir)
                .run(&format!("installing {what} with pip"))
                .map_err(|f| install_error(&format!("installing {what}"), f))?;
            pip_report_artifacts(&report)
        }
    }
}

/// Resolve the requirements of `input` for the interpreter `python` into a pylock.toml next
/// to it.
pub(super) fn uv_resolve(
    uv: &Path,
    python: &Path,
    input: &Path,
    project_dir: &Path,
    what: &str,
) -> Result<PathBuf, EnvError> {
    let stem = input.file_stem().unwrap_or_default().to_string_lossy().into_owned();
    let pylock = input.with_file_name(format!("pylock.{stem}.toml"));
    ToolCommand::new(uv, ["pip", "compile", "--quiet", "--format", "pylock.toml", "--python"])
        .arg_path(python)
        .args(["--output-file"])
        .arg_path(&pylock)
        .arg_path(input)
        .dir(project_dir)
        .run(&format!("resolving {what} with uv"))
        .map_err(|f| install_error(&format!("installing {what}"), f))?;
    Ok(pylock)
}

/// Install exactly what a pylock.toml names into the environment of `python`.
pub(super) fn uv_install(
    uv: &Path,
    python: &Path,
    pylock: &Path,
    project_dir: &Path,
    what: &str,
) -> Result<(), EnvError> {
    let install = ToolCommand::new(uv, ["pip", "install", "--quiet", "--compile-bytecode", "--python"])
        .arg_path(python)
        .args(["--requirements"])
        .arg_path(pylock)
        .dir(project_dir);
    // The resolution just refreshed uv's view of the index: when the pinned artifacts are in
    // uv's cache, installing them needs no network (and no second round of revalidation,
    // which would double the time); otherwise they are downloaded. One phase, one line.
    let _installing = Progress::start(format!("installing {what} with uv"));
    if install.clone().args(["--offline"]).run_quiet().is_ok() {
        return Ok(());
    }
    install.run_quiet().map(drop).map_err(|f| install_error(&format!("installing {what}"), f))
}

/// Install exactly `packages` (no dependency resolution) into the environment of `python`.
pub fn install_locked(
    installer: &Installer,
    python: &Path,
    packages: &[PyPackage],
    inputs: &Path,
) -> Result<(), EnvError> {
    let (hashed, plain): (Vec<&PyPackage>, Vec<&PyPackage>) = packages.iter().partition(|p| p.sha256.is_some());
    // pip checks hashes for all requirements of a file or for none: the hashed ones go
    // first, in their own file.
    for (i, (group, hashes)) in [(hashed, true), (plain, false)].into_iter().enumerate() {
        if group.is_empty() {
            continue;
        }
        let lines: Vec<String> = group.iter().map(|p| locked_requirement(p)).collect();
        let input = inputs.join(format!("lock{i}.txt"));
        fs::write(&input, lines.join("\n") + "\n").map_err(EnvError::io(&input))?;
        let cmd = match installer {
            Installer::Uv(uv) => {
                ToolCommand::new(uv, ["pip", "install", "--quiet", "--compile-bytecode", "--no-deps", "--python"])
                    .arg_path(python)
            }
            Installer::Pip => pip(python).args(["install", "--no-input", "--no-deps"]),
        };
        let cmd = if hashes { cmd.args(["--require-hashes"]) } else { cmd };
        cmd.args(["--requirement"])
            .arg_path(&input)
            .run(&format!("installing {} locked packages with {}", group.len(), installer.name()))
            .map_err(|f| install_error("installing the packages of the lock", f))?;
    }
    Ok(())
}

/// A lock entry as a requirement line: the exact version with its hash, or its URL.
fn locked_requirement(p: &PyPackage) -> String {
    match (&p.sha256, &p.url) {
        (Some(sha), _) => format!("{}=={} --hash=sha256:{sha}", p.name, p.version),
        (None, Some(url)) if url.starts_with("file://") => format!("{} @ {url}", p.name),
        _ => format!("{}=={}", p.name, p.version),
    }
}

/// The interpreter a virtualenv for `python` (a version request) is made from.
pub(super) fn base_interpreter(installer: &Installer, python: Option<&str>) -> Result<PathBuf, EnvError> {
    let uv = match installer {
        Installer::Uv(uv) => Some(uv.as_path()),
        Installer::Pip => None,
    };
    find_interpreter(python, uv)
}

/// Create the virtualenv itself, from the interpreter `base`.
pub(super) fn create_venv(installer: &Installer, base: &Path, tmp: &Path) -> Result<(), EnvError> {
    match installer {
        Installer::Uv(uv) => {
            ToolCommand::new(uv, ["venv", "--quiet", "--relocatable", "--no-config", "--python"])
                .arg_path(base)
                .arg_path(tmp)
                .run("creating the virtualenv with uv")
                .map_err(|f| install_error("creating the virtualenv with uv", f))?;
        }
        Installer::Pip => {
            ToolCommand::new(base, ["-m", "venv"])
                .arg_path(tmp)
                .run(&format!("creating the virtualenv with {}", base.display()))
                .map_err(|f| install_error("creating the virtualenv (python -m venv)", f))?;
        }
    }
    Ok(())
}

/// `python -m pip` with pip's chatter off.
fn pip(python: &Path) -> ToolCommand {
    ToolCommand::new(python, ["-m", "pip", "--disable-pip-version-check"])
}

/// The installer's name and version (`uv 0.13.9`, `pip 23.2.1`).
pub fn installer_version(installer: &Installer, python: &Path) -> String {
    // uv writes its version into the virtualenvs it makes: one process less.
    let cfg = python.parent().and_then(Path::parent).map(|p| p.join("pyvenv.cfg"));
    let from_cfg = cfg
        .and_then(|c| fs::read_to_string(c).ok())
        .and_then(|text| text.lines().find_map(|l| l.strip_prefix("uv = ").map(|v| format!("uv {}", v.trim()))));
    if let (Installer::Uv(_), Some(version)) = (installer, from_cfg) {
        return version;
    }
    match installer {
        Installer::Uv(uv) => ToolCommand::new(uv, ["--version"]).run_quiet().ok(),
        Installer::Pip => pip(python).args(["--version"]).run_quiet().ok(),
    }
    .map(|out| String::from_utf8_lossy(&out).split_whitespace().take(2).collect::<Vec<_>>().join(" "))
    .unwrap_or_else(|| installer.name().to_string())
}

/// Describe what was installed in the virtualenv at `tmp`.
pub(super) fn finish(
    installer: &Installer,
    tmp: &Path,
    artifacts: &Artifacts,
    key: &str,
) -> Result<BuildOutput, EnvError> {
    let python = venv_python_info(tmp).or_else(|| probe(&tmp.join("bin/python"))).ok_or_else(|| EnvError::Cache {
        path: tmp.join("bin/python"),
        message: "the new interpreter does not run".into(),
    })?;
    let installer_version = installer_version(installer, &tmp.join("bin/python"));
    let packages = installed_packages(tmp, artifacts)?;
    let lock = EnvLock {
        lock_schema: LOCK_SCHEMA.into(),
        key: key.to_string(),
        installer: installer_version,
        platform: current_platform().into(),
        python: Some(python),
        channels: vec![],
        conda_packages: vec![],
        packages,
        variables: BTreeMap::new(),
    };
    let activation = Activation {
        path: vec!["bin".into()],
        vars: [("VIRTUAL_ENV".to_string(), "{prefix}".to_string())].into(),
        scripts: vec![],
    };
    Ok((lock, activation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_requirements_pin_hashes_or_urls() {
        let p = |sha: Option<&str>, url: Option<&str>| PyPackage {
            name: "six".into(),
            version: "1.16.0".into(),
            url: url.map(String::from),
            sha256: sha.map(String::from),
        };
        assert_eq!(locked_requirement(&p(Some("ab"), None)), "six==1.16.0 --hash=sha256:ab");
        assert_eq!(locked_requirement(&p(None, Some("file:///w/six"))), "six @ file:///w/six");
        assert_eq!(locked_requirement(&p(None, None)), "six==1.16.0");
    }
}
