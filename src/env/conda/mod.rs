//! Conda environments, built natively: channels' repodata read over http(s) or `file://`,
//! solved with resolvo (the rattler crates), packages downloaded, verified and unpacked into
//! a package cache, then linked into the environment, with the `pip:` sub-list installed by uv
//! or pip. When the user asks for one (`MLFLOW_CONDA_HOME`, `MLFLOW_CONDA_CREATE_ENV_CMD`,
//! `CONDA_EXE`), an external conda, mamba or micromamba builds the environment instead.

mod channel;
mod link;
mod package;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rattler_conda_types::{
    GenericVirtualPackage, MatchSpec, NoArchKind, PackageName, ParseStrictness, RepoDataRecord, Version,
    package::BuildString,
};
use rattler_solve::{SolveError, SolverImpl, SolverTask};
use serde::Serialize;

use super::cache::{self, Activation, BuildOutput};
use super::lock::{CondaPackage, EnvLock, LOCK_SCHEMA, PyPackage, PythonInfo, current_platform, normalize_name};
use super::python::{self, Artifacts, Installer, read_spec_file};
use super::requirements::{Requirements, read_requirements};
use super::spec::{CondaEnvSpec, parse_conda_env};
use super::tool::{ToolCommand, find_on_path, install_error};
use super::{EnvError, EnvManager, Environment, PrepareContext, PreparedEnv};
use crate::support::cache::{Cache, content_key};
use crate::support::ids::EnvKey;
use crate::support::progress::Progress;
use crate::support::ui;

/// The layout version of conda environments: part of every key.
const LAYOUT: u32 = 1;

/// How many packages are downloaded at once.
const DOWNLOAD_THREADS: usize = 4;

/// Where a conda environment's packages come from.
#[derive(Debug, Clone)]
pub enum CondaSource {
    /// The project's conda file.
    Spec {
        /// The file, relative to the project.
        file: PathBuf,
        /// The project.
        project_dir: PathBuf,
    },
    /// A recorded lock: exactly those packages.
    Lock(Box<EnvLock>),
}

/// A conda environment, not yet prepared.
#[derive(Debug, Clone)]
pub struct CondaEnvironment {
    /// What to install.
    pub source: CondaSource,
}

/// What decides a conda environment: hashed into its key.
#[derive(Serialize)]
struct CondaKey<'a> {
    layout: u32,
    manager: &'static str,
    builder: String,
    channels: Vec<String>,
    dependencies: &'a [String],
    pip_lines: &'a [String],
    pip_files: &'a BTreeMap<String, String>,
    variables: &'a BTreeMap<String, String>,
    locked: Option<(&'a [CondaPackage], &'a [PyPackage])>,
    platform: &'static str,
}

/// What a conda environment will be built from.
enum Plan<'a> {
    Request { request: Box<Request>, external: Option<PathBuf>, project_dir: &'a Path },
    Lock(&'a EnvLock),
}

impl CondaEnvironment {
    /// What to install and the key. `warn`: show the spec's warnings.
    fn plan(&self, warn: bool) -> Result<(Plan<'_>, String), EnvError> {
        match &self.source {
            CondaSource::Spec { file, project_dir } => {
                let label = file.display().to_string();
                let text = read_spec_file(project_dir, file)?;
                let (spec, warnings) = parse_conda_env(&text, &label)?;
                warnings.iter().filter(|_| warn).for_each(|w| ui::warn(w));
                let specs = parse_specs(&spec.dependencies, &label)?;
                let channels = channel::resolve_channels(&spec.channels, project_dir, &label)?;
                let pip = read_requirements(&spec.pip, project_dir, &label)?;
                let external = external_conda();
                let key = content_key(&CondaKey {
                    layout: LAYOUT,
                    manager: "conda",
                    builder: external.as_ref().map_or("native".into(), |e| format!("external:{}", e.display())),
                    channels: channels.iter().map(|c| c.base_url.to_string()).collect(),
                    dependencies: &spec.dependencies,
                    pip_lines: &spec.pip,
                    pip_files: &pip.files,
                    variables: &spec.variables,
                    locked: None,
                    platform: current_platform(),
                });
                let request = Request { file: project_dir.join(file), spec, specs, channels, pip, label };
                Ok((Plan::Request { request: Box::new(request), external, project_dir }, key))
            }
            CondaSource::Lock(lock) => {
                let key = content_key(&CondaKey {
                    layout: LAYOUT,
                    manager: "conda",
                    builder: "native".into(),
                    channels: lock.channels.clone(),
                    dependencies: &[],
                    pip_lines: &[],
                    pip_files: &BTreeMap::new(),
                    variables: &lock.variables,
                    locked: Some((&lock.conda_packages, &lock.packages)),
                    platform: current_platform(),
                });
                Ok((Plan::Lock(lock), key))
            }
        }
    }
}

impl Environment for CondaEnvironment {
    fn manager(&self) -> EnvManager {
        EnvManager::Conda
    }

    fn key(&self) -> Option<EnvKey> {
        self.plan(false).ok().map(|(_, key)| key.into())
    }

    fn prepare(&self, ctx: PrepareContext) -> Result<Box<dyn PreparedEnv>, EnvError> {
        let (plan, key) = self.plan(true)?;
        if let Plan::Lock(lock) = &plan
            && let Some(built) = cache::find_same_install(ctx.cache, EnvManager::Conda, lock)?
        {
            return Ok(Box::new(built));
        }
        let built = cache::obtain(ctx.cache, &key, EnvManager::Conda, |tmp, prefix| match &plan {
            Plan::Request { request, external: Some(exe), project_dir } => {
                build_external(exe, request, project_dir, tmp, prefix, &key)
            }
            Plan::Request { request, external: None, project_dir } => {
                build_native(ctx.cache, request, project_dir, tmp, prefix, &key)
            }
            Plan::Lock(lock) => build_from_lock(ctx.cache, lock, tmp, prefix, &key),
        })?;
        Ok(Box::new(built))
    }
}

/// A parsed conda request.
struct Request {
    spec: CondaEnvSpec,
    specs: Vec<MatchSpec>,
    channels: Vec<rattler_conda_types::Channel>,
    pip: Requirements,
    label: String,
    file: PathBuf,
}

fn parse_specs(dependencies: &[String], label: &str) -> Result<Vec<MatchSpec>, EnvError> {
    dependencies
        .iter()
        .map(|d| {
            MatchSpec::from_str(d, ParseStrictness::Lenient).map_err(|e| EnvError::Spec {
                file: label.into(),
                message: format!("'{d}' is not a conda match spec: {e}"),
            })
        })
        .collect()
}

/// Solve and install natively.
fn build_native(
    cache: &Cache,
    request: &Request,
    project_dir: &Path,
    tmp: &Path,
    prefix: &Path,
    key: &str,
) -> Result<BuildOutput, EnvError> {
    let platform = current_platform();
    let progress = Progress::start(format!("reading the repodata of {} conda channel(s)", request.channels.len()));
    let mut repodata: Vec<Vec<RepoDataRecord>> = Vec::new();
    for ch in &request.channels {
        let mut found = false;
        for subdir in [platform, "noarch"] {
            if let Some(records) = channel::fetch_records(ch, subdir, cache)? {
                found = true;
                repodata.push(records);
            }
        }
        if !found {
            return Err(EnvError::Channel {
                url: ch.base_url.to_string(),
                message: format!("it has no {platform}/repodata.json and no noarch/repodata.json"),
            });
        }
    }
    progress.finish(&format!("read {} conda package records", repodata.iter().map(Vec::len).sum::<usize>()));
    let progress = Progress::start(format!("solving {} conda specs", request.specs.len()));
    let solved = solve(&repodata, request.specs.clone(), &request.label)?;
    progress.finish(&format!("solved: {} conda packages", solved.len()));
    let mut packages: Vec<CondaPackage> = solved.iter().map(lock_entry).collect();
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    install_packages(cache, &packages, tmp, prefix)?;
    let inputs = cache::BuildInputs::create(tmp)?;
    let mut artifacts = Artifacts::new();
    let mut pip_installer = None;
    if !request.pip.lines.is_empty() {
        let (installer, python) = pip_target(tmp, &request.label)?;
        let what = format!("the pip: dependencies of {}", request.label);
        artifacts = python::install_requirements(&installer, &python, &request.pip, project_dir, inputs.path(), &what)?;
        pip_installer = Some(installer);
    }
    let channels = request.channels.iter().map(|c| c.base_url.to_string()).collect();
    finish(tmp, key, packages, channels, &artifacts, pip_installer, request.spec.variables.clone())
}

/// Build with exactly the packages of a lock.
fn build_from_lock(
    cache: &Cache,
    lock: &EnvLock,
    tmp: &Path,
    prefix: &Path,
    key: &str,
) -> Result<BuildOutput, EnvError> {
    install_packages(cache, &lock.conda_packages, tmp, prefix)?;
    let mut pip_installer = None;
    if !lock.packages.is_empty() {
        let (installer, python) = pip_target(tmp, "the lock")?;
        let inputs = cache::BuildInputs::create(tmp)?;
        python::install_locked(&installer, &python, &lock.packages, inputs.path())?;
        pip_installer = Some(installer);
    }
    let artifacts = lock.packages.iter().map(|p| (normalize_name(&p.name), vec![p.clone()])).collect();
    finish(
        tmp,
        key,
        lock.conda_packages.clone(),
        lock.channels.clone(),
        &artifacts,
        pip_installer,
        lock.variables.clone(),
    )
}

/// The installer and interpreter for pip packages in a conda environment.
fn pip_target(tmp: &Path, label: &str) -> Result<(Installer, PathBuf), EnvError> {
    let python = tmp.join("bin/python");
    if !python.exists() {
        return Err(EnvError::Spec {
            file: label.into(),
            message: "pip packages need python among the conda dependencies".into(),
        });
    }
    Ok((Installer::for_manager(EnvManager::Virtualenv)?, python))
}

/// Describe a built conda environment.
fn finish(
    tmp: &Path,
    key: &str,
    conda_packages: Vec<CondaPackage>,
    channels: Vec<String>,
    artifacts: &Artifacts,
    pip_installer: Option<Installer>,
    variables: BTreeMap<String, String>,
) -> Result<BuildOutput, EnvError> {
    let conda_names: Vec<String> = conda_packages.iter().map(|p| normalize_name(&p.name)).collect();
    let packages = python::installed_packages(tmp, artifacts)?
        .into_iter()
        .filter(|p| !conda_names.contains(&normalize_name(&p.name)))
        .collect();
    let python = conda_packages.iter().find(|p| p.name == "python" || p.name == "pypy").map(|p| PythonInfo {
        version: p.version.clone(),
        implementation: if p.name == "pypy" { "pypy" } else { "cpython" }.into(),
    });
    let installer = match &pip_installer {
        Some(i) => format!("lockstep {} + {}", crate::VERSION, python::installer_version(i, &tmp.join("bin/python"))),
        None => format!("lockstep {}", crate::VERSION),
    };
    let lock = EnvLock {
        lock_schema: LOCK_SCHEMA.into(),
        key: key.into(),
        installer,
        platform: current_platform().into(),
        python,
        channels,
        conda_packages,
        packages,
        variables,
    };
    Ok((lock, conda_activation(tmp)))
}

/// Activation of a conda prefix: PATH, CONDA_PREFIX and the `activate.d` scripts.
fn conda_activation(prefix: &Path) -> Activation {
    Activation {
        path: vec!["bin".into()],
        vars: [
            ("CONDA_PREFIX".to_string(), "{prefix}".to_string()),
            ("CONDA_DEFAULT_ENV".to_string(), "{prefix}".to_string()),
            ("CONDA_SHLVL".to_string(), "1".to_string()),
        ]
        .into(),
        scripts: link::activation_scripts(prefix),
    }
}

/// Solve `specs` against the channels' records.
fn solve(
    repodata: &[Vec<RepoDataRecord>],
    specs: Vec<MatchSpec>,
    label: &str,
) -> Result<Vec<RepoDataRecord>, EnvError> {
    let mut task = SolverTask::from_iter(repodata.iter().map(|r| r.iter()));
    task.specs = specs;
    task.virtual_packages = virtual_packages();
    task.timeout = Some(Duration::from_secs(300));
    match rattler_solve::resolvo::Solver.solve(task) {
        Ok(result) => Ok(result.records),
        Err(SolveError::Unsolvable(reasons)) => {
            Err(EnvError::Unsolvable { file: label.into(), message: one_line(&reasons.join("\n")) })
        }
        Err(e) => Err(EnvError::Unsolvable { file: label.into(), message: e.to_string() }),
    }
}

/// The solver's explanation (a tree drawn over several lines) as one line of clauses.
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let clause = line.trim_start_matches(|c: char| c.is_whitespace() || "├└│─".contains(c)).trim_end();
        if clause.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(clause.trim_end_matches('.'));
    }
    out
}

/// The virtual packages of this machine: `__unix`, `__linux` (kernel), `__glibc`, `__archspec`.
fn virtual_packages() -> Vec<GenericVirtualPackage> {
    let mut out = Vec::new();
    let mut add = |name: &str, version: &str, build: &str| {
        if let Ok(version) = Version::from_str(version) {
            out.push(GenericVirtualPackage {
                name: PackageName::new_unchecked(name),
                version,
                build_string: BuildString::new_unchecked(build),
            });
        }
    };
    if cfg!(unix) {
        add("__unix", "0", "0");
    }
    if cfg!(target_os = "linux") {
        add("__linux", &kernel_version(), "0");
        if let Some(glibc) = glibc_version() {
            add("__glibc", &glibc, "0");
        }
    }
    add("__archspec", "1", std::env::consts::ARCH);
    out
}

fn kernel_version() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let numeric: String = release.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let trimmed = numeric.trim_end_matches('.');
    if trimmed.is_empty() { "0".into() } else { trimmed.into() }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn glibc_version() -> Option<String> {
    // SAFETY: gnu_get_libc_version returns a static NUL-terminated string.
    let ptr = unsafe { libc::gnu_get_libc_version() };
    (!ptr.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn glibc_version() -> Option<String> {
    None
}

/// A solved record as a lock entry.
fn lock_entry(r: &RepoDataRecord) -> CondaPackage {
    let p = &r.package_record;
    CondaPackage {
        name: p.name.as_normalized().to_string(),
        version: p.version.to_string(),
        build: p.build.to_string(),
        build_number: p.build_number,
        subdir: p.subdir.clone(),
        channel: r.channel.clone().unwrap_or_default(),
        url: r.url.to_string(),
        filename: r.identifier.to_file_name(),
        sha256: p.sha256.map(|h| crate::support::digest::hex(&h)),
        md5: p.md5.map(|h| crate::support::digest::hex(&h)),
        depends: p.depends.clone(),
        noarch: p.noarch.kind().map(|k| match k {
            NoArchKind::Python => "python".to_string(),
            NoArchKind::Generic => "generic".to_string(),
        }),
    }
}

/// Download, unpack and link `packages` into `tmp` (an environment that will live at `prefix`).
fn install_packages(cache: &Cache, packages: &[CondaPackage], tmp: &Path, prefix: &Path) -> Result<(), EnvError> {
    let progress = Progress::start(format!("fetching {} conda packages", packages.len()));
    progress.in_bytes();
    let next = std::sync::Mutex::new(packages.iter());
    let unpacked: std::sync::Mutex<BTreeMap<String, PathBuf>> = Default::default();
    let first_error: std::sync::Mutex<Option<EnvError>> = Default::default();
    std::thread::scope(|s| {
        for _ in 0..DOWNLOAD_THREADS.min(packages.len()) {
            s.spawn(|| {
                loop {
                    let Some(pkg) = next.lock().unwrap().next() else { break };
                    if first_error.lock().unwrap().is_some() {
                        break;
                    }
                    match package::unpacked(cache, pkg, &progress) {
                        Ok(dir) => {
                            unpacked.lock().unwrap().insert(pkg.filename.clone(), dir);
                        }
                        Err(e) => {
                            first_error.lock().unwrap().get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    progress.finish(&format!("fetched {} conda packages", packages.len()));
    let unpacked = unpacked.into_inner().unwrap();
    let python = packages.iter().find(|p| p.name == "python").map(|p| link::PythonLayout::for_version(&p.version));
    let progress = Progress::start(format!("linking {} conda packages", packages.len()));
    progress.set_total(packages.len() as u64);
    for pkg in packages {
        let dir = &unpacked[&pkg.filename];
        link::link_package(pkg, dir, tmp, prefix, python.as_ref())
            .map_err(|e| EnvError::Package { url: pkg.url.clone(), message: format!("cannot install: {e}") })?;
        progress.advance(1);
    }
    progress.finish(&format!("installed {} conda packages", packages.len()));
    Ok(())
}

/// The external conda (or mamba, micromamba) the user asked for, if any: MLflow's rules.
/// `LOCKSTEP_CONDA=native` ignores them.
fn external_conda() -> Option<PathBuf> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if var("LOCKSTEP_CONDA").as_deref() == Some("native") {
        return None;
    }
    let create = var("MLFLOW_CONDA_CREATE_ENV_CMD");
    let program = create.clone().unwrap_or_else(|| "conda".into());
    if let Some(home) = var("MLFLOW_CONDA_HOME") {
        return Some(Path::new(&home).join("bin").join(&program));
    }
    if let Some(exe) = var("CONDA_EXE") {
        return Some(Path::new(&exe).parent().unwrap_or(Path::new("/")).join(&program));
    }
    create
        .map(|c| if c.contains('/') { PathBuf::from(c) } else { find_on_path(&c).unwrap_or_else(|| PathBuf::from(c)) })
}

/// Build with an external conda, mamba or micromamba.
fn build_external(
    exe: &Path,
    request: &Request,
    project_dir: &Path,
    tmp: &Path,
    prefix: &Path,
    key: &str,
) -> Result<BuildOutput, EnvError> {
    let name = exe.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let cmd = if name.contains("micromamba") {
        ToolCommand::new(exe, ["create", "--yes", "--prefix"]).arg_path(tmp).args(["--file"]).arg_path(&request.file)
    } else {
        ToolCommand::new(exe, ["env", "create", "--prefix"]).arg_path(tmp).args(["--file"]).arg_path(&request.file)
    };
    cmd.dir(project_dir)
        .run(&format!("creating the conda environment of {} with {name}", request.label))
        .map_err(|f| install_error(&format!("creating the conda environment with {}", exe.display()), f))?;
    cache::relocate_tree(tmp, prefix)?;
    let conda_packages = link::read_conda_meta(tmp).map_err(EnvError::io(&tmp.join("conda-meta")))?;
    let (mut lock, activation) = finish(
        tmp,
        key,
        conda_packages,
        request.channels.iter().map(|c| c.base_url.to_string()).collect(),
        &Artifacts::new(),
        None,
        request.spec.variables.clone(),
    )?;
    let version =
        ToolCommand::new(exe, ["--version"]).run_quiet().ok().map(|o| String::from_utf8_lossy(&o).trim().to_string());
    lock.installer = format!("{name} {}", version.unwrap_or_default()).trim().to_string();
    Ok((lock, activation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solver_trees_become_one_line() {
        let tree = "The following packages are incompatible\n├─ a <2 can be installed with any of the following options:\n│  └─ a 1.0\n└─ b 1.0.* cannot be installed because there are no viable options:\n   └─ b 1.0 would require\n      └─ a >=2, which conflicts with the versions reported above.\n";
        assert_eq!(
            one_line(tree),
            "The following packages are incompatible; a <2 can be installed with any of the following options: a 1.0; b 1.0.* cannot be installed because there are no viable options: b 1.0 would require; a >=2, which conflicts with the versions reported above"
        );
    }

    #[test]
    fn this_machine_has_its_virtual_packages() {
        let names: Vec<String> = virtual_packages().iter().map(|v| v.name.as_normalized().to_string()).collect();
        assert!(names.contains(&"__archspec".to_string()));
        if cfg!(target_os = "linux") {
            assert!(names.contains(&"__linux".to_string()) && names.contains(&"__unix".to_string()));
        }
    }
}
