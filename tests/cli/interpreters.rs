//! Python interpreters where MLflow's users have them: pyenv's versions behind shims that
//! refuse to run, uv's managed Pythons, an active conda environment; downloads as uv's
//! settings say (offline here); an environment whose interpreter is gone is built again.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::conda::system_python;
use crate::support::uv::uv_dir;
use crate::support::*;

const PROJECT: &str = "name: which\npython_env: python_env.yaml\nentry_points:\n  main:\n    command: \"python -c 'import platform; print(platform.python_version())'\"\n";

/// The uv binary itself: a pyenv shim of uv would consult the fake pyenv root.
fn real_uv() -> PathBuf {
    let uv = uv_dir().join("uv");
    let script = fs::read(&uv).is_ok_and(|b| b.starts_with(b"#!"));
    if !script {
        return fs::canonicalize(&uv).unwrap();
    }
    let out = Command::new("pyenv").args(["which", "uv"]).output().expect("uv is a pyenv shim, so pyenv runs");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A machine whose only Pythons are where the test puts them: PATH holds pyenv shims that
/// refuse to run (as pyenv's do for a version that is not active) and the tools lockstep
/// needs, nothing else.
struct Machine {
    ctx: TestContext,
    pyenv: PathBuf,
    uv_pythons: PathBuf,
    path: String,
    /// The real interpreter and its version (`3.11.7`).
    python: PathBuf,
    version: String,
}

impl Machine {
    fn new() -> Machine {
        let ctx = TestContext::new();
        let (python, version) = system_python();
        let pyenv = ctx.work.join("pyenv");
        let shims = pyenv.join("shims");
        let tools = ctx.work.join("tools");
        fs::create_dir_all(&shims).unwrap();
        fs::create_dir_all(&tools).unwrap();
        for name in [format!("python{}", minor(&version)), "python3".into(), "python".into()] {
            let shim = shims.join(&name);
            fs::write(&shim, format!("#!/bin/sh\necho 'pyenv: {name}: command not found' >&2\nexit 127\n")).unwrap();
            fs::set_permissions(&shim, fs::Permissions::from_mode(0o755)).unwrap();
        }
        symlink(real_uv(), tools.join("uv")).unwrap();
        for tool in ["bash", "sh", "git"] {
            let out = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap();
            symlink(String::from_utf8(out.stdout).unwrap().trim(), tools.join(tool)).unwrap();
        }
        let path = format!("{}:{}", shims.display(), tools.display());
        let uv_pythons = ctx.work.join("uv-pythons");
        fs::create_dir_all(&uv_pythons).unwrap();
        ctx.project("p", &[("MLproject", PROJECT)]);
        Machine { ctx, pyenv, uv_pythons, path, python, version }
    }

    /// An installed interpreter at `dir/bin/<name>`: a link to the real one.
    fn install(&self, dir: &Path, name: &str) {
        fs::create_dir_all(dir.join("bin")).unwrap();
        symlink(&self.python, dir.join("bin").join(name)).unwrap();
    }

    fn asks_for(&self, python: &str) {
        self.ctx.write("p/python_env.yaml", &format!("python: '{python}'\n"));
    }

    fn run(&self) -> Cmd<'_> {
        self.ctx
            .run(["run", "p"])
            .env("PATH", &self.path)
            .env("PYENV_ROOT", &self.pyenv)
            .env("UV_PYTHON_INSTALL_DIR", &self.uv_pythons)
            .env("UV_CACHE_DIR", self.ctx.work.join("uv-cache"))
    }

    fn env_dirs(&self) -> usize {
        fs::read_dir(self.ctx.cache.join("envs-v1"))
            .map_or(0, |d| d.flatten().filter(|e| e.file_name() != ".locks").count())
    }
}

fn minor(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// A minor version the machine does not have (uv knows how to download it).
fn absent_minor(version: &str) -> &'static str {
    if minor(version) == "3.10" { "3.9" } else { "3.10" }
}

#[test]
fn pyenv_versions_are_found_behind_shims_that_refuse() {
    let m = Machine::new();
    let installed = m.pyenv.join("versions").join(&m.version);
    m.install(&installed, "python");
    m.asks_for(&minor(&m.version));
    m.run().success().stdout(&format!("{}\n", m.version));
    let record = m.ctx.only_record();
    assert_eq!(record["environment"]["python"]["version"], m.version.as_str(), "{record:#}");

    // The interpreter is uninstalled: the cached environment is not reused, and the error
    // says what was found where.
    let gone = m.pyenv.join("versions").join(format!("{}-gone", m.version));
    fs::rename(&installed, &gone).unwrap();
    let shim = m.pyenv.join("shims").join(format!("python{}", minor(&m.version)));
    let out = m
        .run()
        .status(2)
        .stderr_has(&format!("no Python interpreter matches python {}", minor(&m.version)))
        .stderr_has(&format!("{} (does not run)", shim.display()))
        .stderr_has(&format!("pyenv's versions ({})", m.pyenv.join("versions").display()))
        .stderr_has("uv may not download it (UV_PYTHON_DOWNLOADS=never)");
    assert_eq!(m.env_dirs(), 0, "the stale environment is removed, no new one is left: {}", out.stderr_text());

    fs::rename(&gone, &installed).unwrap();
    m.run().success().stdout(&format!("{}\n", m.version)).stderr_has("built the");
}

#[test]
fn uv_pythons_and_an_active_conda_environment_are_found() {
    let m = Machine::new();
    m.asks_for(&m.version);
    m.install(&m.uv_pythons.join(format!("cpython-{}-linux-x86_64-gnu", m.version)), "python3");
    m.run().success().stdout(&format!("{}\n", m.version));

    let m = Machine::new();
    m.asks_for(&minor(&m.version));
    let prefix = m.ctx.work.join("conda-env");
    m.install(&prefix, "python");
    m.run().env("CONDA_PREFIX", &prefix).success().stdout(&format!("{}\n", m.version));
}

#[test]
fn a_missing_python_names_what_was_found_where_and_downloads_follow_uv() {
    let m = Machine::new();
    m.install(&m.pyenv.join("versions").join(&m.version), "python");
    let want = absent_minor(&m.version);
    m.asks_for(want);
    m.run()
        .user_error(&format!("no Python interpreter matches python {want}"))
        .stderr_has(&format!("{} (pyenv)", m.version))
        .stderr_has(&format!("PATH (python{want}, python3, python)"))
        .stderr_has(&format!("uv's Pythons ({})", m.uv_pythons.display()))
        .hint("looked in");
    m.run()
        .env("UV_PYTHON_DOWNLOADS", "automatic")
        .env("UV_OFFLINE", "1")
        .user_error("no Python interpreter matches")
        .stderr_has("uv may not download it (UV_OFFLINE is set)");
    // uv's default allows the download: it is tried (from a mirror that refuses, offline).
    let mirror = format!("http://127.0.0.1:{}/python", free_port());
    m.run()
        .env("UV_PYTHON_DOWNLOADS", "automatic")
        .env("UV_PYTHON_INSTALL_MIRROR", &mirror)
        .status(2)
        .no_runs()
        .stderr_has("downloading Python")
        .stderr_has("error: no Python interpreter matches")
        .stderr_has("uv could not download it")
        .stderr_has("127.0.0.1");
    assert_eq!(m.env_dirs(), 0);
}
