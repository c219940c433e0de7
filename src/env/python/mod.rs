//! Python virtualenvs: made by uv when it is on PATH (`virtualenv`, `uv`), else by
//! `python -m venv` and pip (`virtualenv`). Requirements are resolved into an exact list
//! with artifact hashes (uv: `pip compile` to a pylock.toml; pip: `--report`), installed,
//! and recorded as the lock.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cache::{self, Activation, BuildOutput};
use super::lock::{EnvLock, LOCK_SCHEMA, PyPackage, PythonInfo, current_platform, normalize_name};
use super::requirements::{Requirements, read_requirements};
use super::spec::{self, PythonEnvSpec, python_matches};
use super::tool::{ToolCommand, ToolFailure, all_on_path, find_on_path, install_error};
use super::{EnvError, EnvManager, Environment, PrepareContext, PreparedEnv};
use crate::cache::content_key;
use crate::manifest::EnvSpec;
use crate::progress::Progress;
use crate::ui;

/// The layout version of Python environments: part of every key.
const LAYOUT: u32 = 1;

/// Where a Python environment's requirements come from.
#[derive(Debug, Clone)]
pub enum PythonSource {
    /// The project's environment (python_env, a conda file converted, or none).
    Spec {
        /// The environment spec of the manifest.
        spec: EnvSpec,
        /// The project, where its files are.
        project_dir: PathBuf,
    },
    /// A recorded lock: exactly those packages.
    Lock(Box<EnvLock>),
}

/// The installer that builds a virtualenv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installer {
    /// uv, at this path.
    Uv(PathBuf),
    /// `python -m venv` and pip.
    Pip,
}

impl Installer {
    /// The installer for `manager`: uv when available (required for `uv`), else pip.
    pub fn for_manager(manager: EnvManager) -> Result<Installer, EnvError> {
        match (find_on_path("uv"), manager) {
            (Some(uv), _) => Ok(Installer::Uv(uv)),
            (None, EnvManager::Uv) => Err(EnvError::ToolMissing {
                tool: "uv",
                hint:
                    "install it (pip install uv), or use --env-manager virtualenv to build with python -m venv and pip"
                        .into(),
            }),
            (None, _) => Ok(Installer::Pip),
        }
    }

    /// `uv` or `pip`.
    pub fn name(&self) -> &'static str {
        match self {
            Installer::Uv(_) => "uv",
            Installer::Pip => "pip",
        }
    }
}

/// A virtualenv for a project or a lock, not yet prepared.
#[derive(Debug, Clone)]
pub struct PythonEnvironment {
    /// `virtualenv` or `uv`.
    pub manager: EnvManager,
    /// What to install.
    pub source: PythonSource,
}

/// What decides a virtualenv: hashed into its key.
#[derive(Serialize)]
struct PythonKey<'a> {
    layout: u32,
    manager: &'a str,
    installer: &'a str,
    python: Option<&'a str>,
    build_dependencies: KeyRequirements<'a>,
    dependencies: KeyRequirements<'a>,
    locked: Option<&'a [PyPackage]>,
    platform: &'a str,
}

#[derive(Serialize)]
struct KeyRequirements<'a> {
    lines: &'a [String],
    files: &'a BTreeMap<String, String>,
}

/// A parsed and expanded Python environment request.
struct Request {
    python: Option<String>,
    build: Requirements,
    deps: Requirements,
    /// The lines as written, for the key (paths in `build`/`deps` are absolute).
    written: (Vec<String>, Vec<String>),
    label: String,
}

/// What a virtualenv will be built from, with its key.
enum Plan<'a> {
    Request(Request),
    Lock(&'a EnvLock),
}

impl PythonEnvironment {
    /// The installer, what to install and the key. `warn`: show the spec's warnings.
    fn plan(&self, warn: bool) -> Result<(Installer, Plan<'_>, String), EnvError> {
        let installer = Installer::for_manager(self.manager)?;
        let platform = current_platform();
        let empty = BTreeMap::new();
        let (plan, key) = match &self.source {
            PythonSource::Spec { spec, project_dir } => {
                let request = read_request(spec, project_dir, warn)?;
                let key = content_key(&PythonKey {
                    layout: LAYOUT,
                    manager: self.manager.name(),
                    installer: installer.name(),
                    python: request.python.as_deref(),
                    build_dependencies: KeyRequirements { lines: &request.written.0, files: &request.build.files },
                    dependencies: KeyRequirements { lines: &request.written.1, files: &request.deps.files },
                    locked: None,
                    platform,
                });
                (Plan::Request(request), key)
            }
            PythonSource::Lock(lock) => {
                let key = content_key(&PythonKey {
                    layout: LAYOUT,
                    manager: self.manager.name(),
                    installer: installer.name(),
                    python: lock.python.as_ref().map(|p| p.version.as_str()),
                    build_dependencies: KeyRequirements { lines: &[], files: &empty },
                    dependencies: KeyRequirements { lines: &[], files: &empty },
                    locked: Some(&lock.packages),
                    platform,
                });
                (Plan::Lock(lock), key)
            }
        };
        Ok((installer, plan, key))
    }
}

impl Environment for PythonEnvironment {
    fn manager(&self) -> EnvManager {
        self.manager
    }

    fn key(&self) -> Option<String> {
        self.plan(false).ok().map(|(_, _, key)| key)
    }

    fn prepare(&self, ctx: PrepareContext) -> Result<Box<dyn PreparedEnv>, EnvError> {
        let (installer, plan, key) = self.plan(true)?;
        let built = cache::obtain(ctx.cache, &key, self.manager, |tmp, _| match &plan {
            Plan::Request(request) => build_from_request(&installer, request, ctx.project_dir, tmp, &key),
            Plan::Lock(lock) => build_from_lock(&installer, lock, tmp, &key),
        })?;
        Ok(Box::new(built))
    }
}

/// Parse the project's environment file into the Python request, following `-r` files.
fn read_request(spec: &EnvSpec, project_dir: &Path, warn: bool) -> Result<Request, EnvError> {
    let (py, label) = match spec {
        EnvSpec::Python { file } => {
            let label = file.display().to_string();
            let text = read_spec_file(project_dir, file)?;
            let (py, warnings) = spec::parse_python_env(&text, &label)?;
            warnings.iter().filter(|_| warn).for_each(|w| ui::warn(w));
            (py, label)
        }
        EnvSpec::Conda { file } => {
            let label = file.display().to_string();
            let text = read_spec_file(project_dir, file)?;
            let (conda, warnings) = spec::parse_conda_env(&text, &label)?;
            warnings.iter().filter(|_| warn).for_each(|w| ui::warn(w));
            let (py, warnings) = spec::python_env_from_conda(&conda, &label)?;
            warnings.iter().filter(|_| warn).for_each(|w| ui::warn(w));
            (py, label)
        }
        _ => (
            PythonEnvSpec { python: None, build_dependencies: vec![], dependencies: vec![] },
            "(no environment file)".into(),
        ),
    };
    let build = read_requirements(&py.build_dependencies, project_dir, &label)?;
    let deps = read_requirements(&py.dependencies, project_dir, &label)?;
    let trimmed = |v: &[String]| v.iter().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    Ok(Request {
        python: py.python.map(|v| v.trim_start_matches('=').to_string()),
        written: (trimmed(&py.build_dependencies), trimmed(&py.dependencies)),
        build,
        deps,
        label,
    })
}

/// The text of an environment file of the project.
pub fn read_spec_file(project_dir: &Path, file: &Path) -> Result<String, EnvError> {
    let path = project_dir.join(file);
    fs::read_to_string(&path).map_err(|e| EnvError::Spec {
        file: file.display().to_string(),
        message: format!("cannot read {}: {e}", path.display()),
    })
}

/// Build a virtualenv in `tmp` from a request.
fn build_from_request(
    installer: &Installer,
    request: &Request,
    project_dir: &Path,
    tmp: &Path,
    key: &str,
) -> Result<BuildOutput, EnvError> {
    let inputs = cache::BuildInputs::create(tmp)?;
    let python = tmp.join("bin/python");
    let mut stages: Vec<(String, &Requirements)> =
        [("build dependencies", &request.build), ("dependencies", &request.deps)]
            .into_iter()
            .filter(|(_, reqs)| !reqs.lines.is_empty())
            .map(|(stage, reqs)| (format!("the {stage} of {}", request.label), reqs))
            .collect();
    let mut artifacts = Artifacts::new();
    match (installer, stages.is_empty()) {
        (Installer::Uv(uv), false) => {
            // The first resolution needs the interpreter, not the virtualenv: both are made at
            // once, the same request finding the same interpreter.
            let (what, reqs) = stages.remove(0);
            let input = write_input(inputs.path(), reqs)?;
            let both = Progress::start(format!("creating the virtualenv and resolving {what} with uv"));
            let (venv, resolved) = std::thread::scope(|s| {
                let venv = s.spawn(|| create_venv(installer, request.python.as_deref(), tmp));
                let selector = request.python.as_deref().map(std::ffi::OsStr::new);
                let resolved = uv_resolve(uv, selector, &input, project_dir, &what);
                (venv.join().expect("the virtualenv thread does not panic"), resolved)
            });
            drop(both);
            venv?;
            let pylock = resolved?;
            uv_install(uv, &python, &pylock, project_dir, &what)?;
            artifacts.extend(pylock_artifacts(&pylock)?);
        }
        _ => create_venv(installer, request.python.as_deref(), tmp)?,
    }
    for (what, reqs) in stages {
        artifacts.extend(install_requirements(installer, &python, reqs, project_dir, inputs.path(), &what)?);
    }
    finish(installer, tmp, &artifacts, key)
}

/// Write requirement lines to a new file in `inputs`.
fn write_input(inputs: &Path, reqs: &Requirements) -> Result<PathBuf, EnvError> {
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
            let pylock = uv_resolve(uv, Some(python.as_os_str()), &input, project_dir, what)?;
            uv_install(uv, python, &pylock, project_dir, what)?;
            pylock_artifacts(&pylock)
        }
        Installer::Pip => {
            let report = input.with_extension("report.json");
            pip(python)
                .args(["install", "--no-input", "--no-compile", "--report"])
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

/// Resolve the requirements of `input` for the interpreter `python` selects (a path or a
/// version request; the default one when `None`) into a pylock.toml next to it.
fn uv_resolve(
    uv: &Path,
    python: Option<&std::ffi::OsStr>,
    input: &Path,
    project_dir: &Path,
    what: &str,
) -> Result<PathBuf, EnvError> {
    let stem = input.file_stem().unwrap_or_default().to_string_lossy().into_owned();
    let pylock = input.with_file_name(format!("pylock.{stem}.toml"));
    let mut cmd = ToolCommand::new(uv, ["pip", "compile", "--quiet", "--format", "pylock.toml"]);
    if let Some(p) = python {
        cmd = cmd.args([std::ffi::OsStr::new("--python"), p]);
    }
    cmd.args(["--output-file"])
        .arg_path(&pylock)
        .arg_path(input)
        .dir(project_dir)
        .env_default("UV_PYTHON_DOWNLOADS", "never")
        .run(&format!("resolving {what} with uv"))
        .map_err(|f| install_error(&format!("installing {what}"), f))?;
    Ok(pylock)
}

/// Install exactly what a pylock.toml names into the environment of `python`.
fn uv_install(uv: &Path, python: &Path, pylock: &Path, project_dir: &Path, what: &str) -> Result<(), EnvError> {
    let install = ToolCommand::new(uv, ["pip", "install", "--quiet", "--python"])
        .arg_path(python)
        .args(["--requirements"])
        .arg_path(pylock)
        .dir(project_dir);
    // The resolution just refreshed uv's view of the index: when the pinned artifacts are in
    // uv's cache, installing them needs no network (and no second round of revalidation,
    // which would double the time); otherwise they are downloaded.
    if install.clone().args(["--offline"]).run(&format!("installing {what} with uv")).is_ok() {
        return Ok(());
    }
    install
        .run(&format!("downloading and installing {what} with uv"))
        .map(drop)
        .map_err(|f| install_error(&format!("installing {what}"), f))
}

/// Build a virtualenv in `tmp` with exactly the packages of `lock`.
fn build_from_lock(installer: &Installer, lock: &EnvLock, tmp: &Path, key: &str) -> Result<BuildOutput, EnvError> {
    let inputs = cache::BuildInputs::create(tmp)?;
    let python_version = lock.python.as_ref().map(|p| p.version.as_str());
    create_venv(installer, python_version, tmp)?;
    install_locked(installer, &tmp.join("bin/python"), &lock.packages, inputs.path())?;
    let artifacts = lock.packages.iter().map(|p| (normalize_name(&p.name), vec![p.clone()])).collect();
    finish(installer, tmp, &artifacts, key)
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
                ToolCommand::new(uv, ["pip", "install", "--quiet", "--no-deps", "--python"]).arg_path(python)
            }
            Installer::Pip => pip(python).args(["install", "--no-input", "--no-compile", "--no-deps"]),
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

/// Create the virtualenv itself, with an interpreter matching `python`.
fn create_venv(installer: &Installer, python: Option<&str>, tmp: &Path) -> Result<(), EnvError> {
    match installer {
        Installer::Uv(uv) => {
            let mut cmd = ToolCommand::new(uv, ["venv", "--quiet", "--relocatable", "--no-config"]);
            if let Some(v) = python {
                cmd = cmd.args(["--python", v]);
            }
            // uv would try to download a missing interpreter, which hangs without a network:
            // only when the user allows it.
            cmd.arg_path(tmp)
                .env_default("UV_PYTHON_DOWNLOADS", "never")
                .run("creating the virtualenv with uv")
                .map_err(|f| venv_error(python, f))?;
        }
        Installer::Pip => {
            let interpreter = find_interpreter(python)?;
            ToolCommand::new(&interpreter, ["-m", "venv"])
                .arg_path(tmp)
                .run(&format!("creating the virtualenv with {}", interpreter.display()))
                .map_err(|f| install_error("creating the virtualenv (python -m venv)", f))?;
        }
    }
    Ok(())
}

fn venv_error(python: Option<&str>, failure: ToolFailure) -> EnvError {
    let lower = failure.output.to_lowercase();
    // uv stops at the first interpreter of the requested version that does not run (a pyenv
    // shim of an inactive version, a broken link): that is no usable match either.
    let broken = lower.contains("failed to inspect python interpreter") || lower.contains("querying python at");
    if lower.contains("no interpreter found") || lower.contains("no python") && lower.contains("found") || broken {
        return EnvError::NoPython { request: python.unwrap_or("any").to_string(), found: failure.detail };
    }
    install_error("creating the virtualenv with uv", failure)
}

/// The first interpreter on PATH whose version matches `request`.
fn find_interpreter(request: Option<&str>) -> Result<PathBuf, EnvError> {
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

const PROBE: &str =
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
fn venv_python_info(prefix: &Path) -> Option<PythonInfo> {
    let cfg = fs::read_to_string(prefix.join("pyvenv.cfg")).ok()?;
    let field = |name: &str| {
        cfg.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    Some(PythonInfo { version: field("version_info")?, implementation: field("implementation")?.to_lowercase() })
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
fn finish(installer: &Installer, tmp: &Path, artifacts: &Artifacts, key: &str) -> Result<BuildOutput, EnvError> {
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

/// Every distribution in the site-packages of the environment at `prefix`, with the artifact
/// it came from where the installer said so, sorted by normalized name.
pub fn installed_packages(prefix: &Path, artifacts: &Artifacts) -> Result<Vec<PyPackage>, EnvError> {
    let mut out = BTreeMap::new();
    for site in site_packages_dirs(prefix) {
        let Ok(entries) = fs::read_dir(&site) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".dist-info") {
                continue;
            }
            let dir = entry.path();
            let Ok(metadata) = fs::read_to_string(dir.join("METADATA")) else { continue };
            let field = |f: &str| {
                metadata
                    .lines()
                    .take_while(|l| !l.is_empty())
                    .find_map(|l| l.strip_prefix(f).map(|v| v.trim().to_string()))
            };
            let (Some(pkg), Some(version)) = (field("Name:"), field("Version:")) else { continue };
            let mut package = PyPackage { name: pkg.clone(), version, url: None, sha256: None };
            let tags: Vec<String> = fs::read_to_string(dir.join("WHEEL"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.strip_prefix("Tag:").map(|t| t.trim().to_string()))
                .collect();
            let candidates: Vec<PyPackage> = artifacts
                .get(&normalize_name(&pkg))
                .map(|c| c.iter().filter(|a| a.version == package.version).cloned().collect())
                .unwrap_or_default();
            let known = match candidates.len() {
                1 => candidates.first(),
                _ => installed_artifact(&candidates, &tags),
            };
            if let Some(known) = known {
                package.url = known.url.clone();
                package.sha256 = known.sha256.clone();
            } else if let Some((url, sha256)) = direct_url(&dir) {
                package.url = Some(url);
                package.sha256 = sha256;
            }
            out.insert(normalize_name(&pkg), package);
        }
    }
    Ok(out.into_values().collect())
}

fn site_packages_dirs(prefix: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for lib in ["lib", "lib64"] {
        let Ok(entries) = fs::read_dir(prefix.join(lib)) else { continue };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("python") {
                let site = e.path().join("site-packages");
                if site.is_dir() && !dirs.iter().any(|d: &PathBuf| same_dir(d, &site)) {
                    dirs.push(site);
                }
            }
        }
    }
    dirs
}

fn same_dir(a: &Path, b: &Path) -> bool {
    fs::canonicalize(a).ok().is_some_and(|a| fs::canonicalize(b).ok() == Some(a))
}

/// PEP 610's `direct_url.json`: the URL and hash of a direct (URL or path) installation.
fn direct_url(dist_info: &Path) -> Option<(String, Option<String>)> {
    #[derive(Deserialize)]
    struct DirectUrl {
        url: String,
        #[serde(default)]
        archive_info: Option<ArchiveInfo>,
    }
    let bytes = fs::read(dist_info.join("direct_url.json")).ok()?;
    let d: DirectUrl = serde_json::from_slice(&bytes).ok()?;
    Some((d.url, d.archive_info.and_then(|a| a.sha256())))
}

#[derive(Deserialize)]
struct ArchiveInfo {
    #[serde(default)]
    hash: Option<String>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

impl ArchiveInfo {
    fn sha256(&self) -> Option<String> {
        self.hashes
            .get("sha256")
            .cloned()
            .or_else(|| self.hash.as_deref().and_then(|h| h.strip_prefix("sha256=")).map(str::to_string))
    }
}

/// The artifacts of pip's installation report, by normalized name.
fn pip_report_artifacts(report: &Path) -> Result<Artifacts, EnvError> {
    #[derive(Deserialize)]
    struct Report {
        #[serde(default)]
        install: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        download_info: DownloadInfo,
        metadata: Metadata,
    }
    #[derive(Deserialize)]
    struct DownloadInfo {
        url: String,
        #[serde(default)]
        archive_info: Option<ArchiveInfo>,
    }
    #[derive(Deserialize)]
    struct Metadata {
        name: String,
        version: String,
    }
    let bytes = fs::read(report).map_err(EnvError::io(report))?;
    let report: Report = serde_json::from_slice(&bytes)
        .map_err(|e| EnvError::Cache { path: report.to_path_buf(), message: format!("unreadable pip report: {e}") })?;
    Ok(report
        .install
        .into_iter()
        .map(|i| {
            let sha256 = i.download_info.archive_info.and_then(|a| a.sha256());
            let p = PyPackage {
                name: i.metadata.name,
                version: i.metadata.version,
                url: Some(i.download_info.url),
                sha256,
            };
            (normalize_name(&p.name), vec![p])
        })
        .collect())
}

/// The artifacts of a pylock.toml (PEP 751) by normalized name: every wheel and the sdist
/// of each package; which one was installed is told by the installed wheel's tags.
fn pylock_artifacts(path: &Path) -> Result<Artifacts, EnvError> {
    #[derive(Deserialize)]
    struct Pylock {
        #[serde(default)]
        packages: Vec<Package>,
    }
    #[derive(Deserialize)]
    struct Package {
        name: String,
        version: Option<String>,
        #[serde(default)]
        wheels: Vec<Artifact>,
        sdist: Option<Artifact>,
        archive: Option<Artifact>,
        directory: Option<Directory>,
    }
    #[derive(Deserialize)]
    struct Artifact {
        url: Option<String>,
        path: Option<String>,
        #[serde(default)]
        hashes: BTreeMap<String, String>,
    }
    #[derive(Deserialize)]
    struct Directory {
        path: String,
    }
    let text = fs::read_to_string(path).map_err(EnvError::io(path))?;
    let lock: Pylock = toml::from_str(&text).map_err(|e| EnvError::Cache {
        path: path.to_path_buf(),
        message: format!("unreadable pylock.toml from uv: {e}"),
    })?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut out = Artifacts::new();
    for p in lock.packages {
        let version = p.version.unwrap_or_default();
        let location = |a: &Artifact| {
            a.url.clone().or_else(|| a.path.as_ref().map(|rel| format!("file://{}", dir.join(rel).display())))
        };
        let mut candidates: Vec<(Option<String>, Option<String>)> = p
            .wheels
            .iter()
            .chain(&p.sdist)
            .chain(&p.archive)
            .map(|a| (location(a), a.hashes.get("sha256").cloned()))
            .collect();
        if let Some(d) = &p.directory {
            candidates.push((Some(format!("file://{}", dir.join(&d.path).display())), None));
        }
        let entries = out.entry(normalize_name(&p.name)).or_default();
        for (url, sha256) in candidates {
            entries.push(PyPackage { name: p.name.clone(), version: version.clone(), url, sha256 });
        }
    }
    Ok(out)
}

/// Candidate artifacts per normalized distribution name.
pub type Artifacts = BTreeMap<String, Vec<PyPackage>>;

/// The candidate an installed distribution came from: the wheel whose file name carries one
/// of the tags in the installed `WHEEL` file, else a non-wheel source (built locally).
fn installed_artifact<'a>(candidates: &'a [PyPackage], installed_tags: &[String]) -> Option<&'a PyPackage> {
    let file = |p: &PyPackage| p.url.as_deref().and_then(|u| u.rsplit('/').next()).unwrap_or("").to_string();
    candidates
        .iter()
        .find(|p| file(p).ends_with(".whl") && wheel_tags(&file(p)).iter().any(|t| installed_tags.contains(t)))
        .or_else(|| candidates.iter().find(|p| !file(p).ends_with(".whl")))
}

/// The tags of a wheel file name (`{name}-{ver}(-{build})?-{py}-{abi}-{plat}.whl`), with
/// compressed tag sets (`py2.py3`) expanded.
fn wheel_tags(file: &str) -> Vec<String> {
    let parts: Vec<&str> = file.trim_end_matches(".whl").split('-').collect();
    if parts.len() < 5 {
        return vec![];
    }
    let [py, abi, plat] = [parts[parts.len() - 3], parts[parts.len() - 2], parts[parts.len() - 1]];
    let mut out = Vec::new();
    for p in py.split('.') {
        for a in abi.split('.') {
            for f in plat.split('.') {
                out.push(format!("{p}-{a}-{f}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installed_wheel_is_told_by_its_tags() {
        let p = |url: &str| PyPackage { name: "n".into(), version: "1".into(), url: Some(url.into()), sha256: None };
        let candidates = [
            p("https://x/n-1-cp311-cp311-macosx_11_0_arm64.whl"),
            p("https://x/n-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
            p("https://x/n-1.tar.gz"),
        ];
        let linux = ["cp311-cp311-manylinux_2_17_x86_64".to_string()];
        assert_eq!(installed_artifact(&candidates, &linux), Some(&candidates[1]));
        let built_here = ["cp311-cp311-linux_x86_64".to_string()];
        assert_eq!(installed_artifact(&candidates, &built_here), Some(&candidates[2]));
        assert_eq!(wheel_tags("six-1.16.0-py2.py3-none-any.whl"), ["py2-none-any", "py3-none-any"]);
    }

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

    #[test]
    fn dist_info_is_read_with_known_artifacts() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("lib/python3.11/site-packages");
        fs::create_dir_all(site.join("Six-1.16.0.dist-info")).unwrap();
        fs::write(
            site.join("Six-1.16.0.dist-info/METADATA"),
            "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n\nbody Name: no\n",
        )
        .unwrap();
        fs::create_dir_all(site.join("local_pkg-0.1.dist-info")).unwrap();
        fs::write(site.join("local_pkg-0.1.dist-info/METADATA"), "Name: local-pkg\nVersion: 0.1\n").unwrap();
        fs::write(site.join("local_pkg-0.1.dist-info/direct_url.json"), r#"{"url": "file:///w/pkg", "dir_info": {}}"#)
            .unwrap();
        let known = [(
            "six".to_string(),
            vec![PyPackage {
                name: "six".into(),
                version: "1.16.0".into(),
                url: Some("https://x/six.whl".into()),
                sha256: Some("ab".into()),
            }],
        )]
        .into();
        let pkgs = installed_packages(dir.path(), &known).unwrap();
        assert_eq!(pkgs.len(), 2);
        assert_eq!(pkgs[0].name, "local-pkg");
        assert_eq!(pkgs[0].url.as_deref(), Some("file:///w/pkg"));
        assert_eq!(pkgs[1].sha256.as_deref(), Some("ab"));
    }
}
