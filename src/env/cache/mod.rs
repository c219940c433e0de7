//! The environment cache: `envs-v1/<key>/` holds one built environment (a virtualenv or a
//! conda prefix) with its description in `lockstep-env.json`.
//!
//! An environment is built in `envs-v1/.tmp<key minus 4 characters>/`, a path exactly as long
//! as its final one, and published by renaming it. Tools write absolute paths into
//! environments (script shebangs, conda prefixes); lockstep writes the final path where it can
//! and rewrites the temporary one in the few files where tools put it, which the equal length
//! keeps safe also in binary files. The temporary name is fixed per key, so the next builder
//! removes what an interrupted build left. Builders of a key take turns on its build lock;
//! builders and the runs using an environment hold the key's shared lock, and `env prune`
//! needs it exclusively, so it never removes an environment in use or a build in progress.

use crate::support::clock::now_ms;
use crate::support::fs::write_atomic;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::lock::EnvLock;
use super::{EnvError, EnvManager, EnvRecord, PreparedEnv};
use crate::support::cache::{Cache, CacheBucket, KeyLock};

mod prune;
mod relocate;

pub use prune::{EnvEntry, PruneReport, list, prune};
use relocate::relocate;
pub use relocate::relocate_tree;
pub(crate) use relocate::replace_all;

const META: &str = "lockstep-env.json";
const META_SCHEMA: &str = "lockstep.env/v1";

/// How to activate an environment without `source activate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    /// Directories put in front of PATH, relative to the environment.
    pub path: Vec<String>,
    /// Variables to set; `{prefix}` in a value stands for the environment's directory.
    pub vars: BTreeMap<String, String>,
    /// Shell scripts sourced before the command, relative to the environment.
    pub scripts: Vec<String>,
}

/// The description of a built environment, stored in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvMeta {
    /// `lockstep.env/v1`.
    pub schema: String,
    /// The manager that built it.
    pub manager: EnvManager,
    /// When it was built, ms since the epoch.
    pub created_ms: u64,
    /// What it holds.
    pub lock: EnvLock,
    /// How to activate it.
    pub activation: Activation,
}

/// A built environment, in use until dropped.
#[derive(Debug)]
pub struct BuiltEnv {
    /// Its directory.
    pub dir: PathBuf,
    /// Its description.
    pub meta: EnvMeta,
    _in_use: KeyLock,
}

/// What a build produces: the lock and the activation.
pub type BuildOutput = (EnvLock, Activation);

/// The environment of `key`, built by `build` unless it exists. `build(tmp, prefix)` writes
/// the environment into `tmp`; `prefix` is where it will live.
pub fn obtain(
    cache: &Cache,
    key: &str,
    manager: EnvManager,
    build: impl FnOnce(&Path, &Path) -> Result<BuildOutput, EnvError>,
) -> Result<BuiltEnv, EnvError> {
    let bucket = cache.bucket(CacheBucket::Envs)?;
    let dir = bucket.join(key);
    if dir.join(META).is_file() && interpreter_present(&dir) {
        let in_use = cache.lock_shared(CacheBucket::Envs, key)?;
        // A pruner may have removed it between the check and the lock: then it is built.
        if let Some(meta) = read_meta(&dir) {
            touch(&bucket, key);
            return Ok(BuiltEnv { dir, meta, _in_use: in_use });
        }
    }
    // Builders of one key take turns on its build lock. The shared lock, held from before the
    // build to the end of the run, keeps a pruner (who needs it exclusively) away from the
    // build in progress and from the new environment, with no moment in between.
    let _building = cache.lock(CacheBucket::Envs, &build_lock_name(key))?;
    let in_use = cache.lock_shared(CacheBucket::Envs, key)?;
    if let Some(meta) = read_meta(&dir).filter(|_| interpreter_present(&dir)) {
        touch(&bucket, key);
        return Ok(BuiltEnv { dir, meta, _in_use: in_use });
    }
    let started = std::time::Instant::now();
    let tmp = bucket.join(temp_name(key));
    for leftover in [&tmp, &bucket.join(inputs_name(key)), &dir] {
        remove_if_present(leftover)?;
    }
    fs::create_dir_all(&tmp).map_err(EnvError::io(&tmp))?;
    let result = build(&tmp, &dir).and_then(|(lock, activation)| {
        relocate(&tmp, &dir)?;
        let meta = EnvMeta { schema: META_SCHEMA.into(), manager, created_ms: now_ms(), lock, activation };
        let json = serde_json::to_vec_pretty(&meta).expect("environment descriptions serialize");
        let path = tmp.join(META);
        write_atomic(&path, &json).map_err(EnvError::io(&path))?;
        fs::rename(&tmp, &dir).map_err(EnvError::io(&dir))?;
        Ok(meta)
    });
    let meta = match result {
        Ok(meta) => meta,
        Err(err) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(err);
        }
    };
    crate::support::ui::note(&format!(
        "built the {manager} environment {} in {:.1}s",
        crate::support::ids::short(key),
        started.elapsed().as_secs_f64()
    ));
    touch(&bucket, key);
    Ok(BuiltEnv { dir, meta, _in_use: in_use })
}

/// A built environment of `manager` that holds exactly what `lock` holds, whatever its key
/// and installer (an environment built from the project's spec, whose lock a run recorded):
/// `verify` runs in it rather than building a twin from the lock.
pub fn find_same_install(cache: &Cache, manager: EnvManager, lock: &EnvLock) -> Result<Option<BuiltEnv>, EnvError> {
    let bucket = cache.bucket_path(CacheBucket::Envs);
    let Ok(entries) = fs::read_dir(&bucket) else { return Ok(None) };
    let same = |meta: &EnvMeta| meta.manager == manager && meta.lock.same_install(lock);
    for entry in entries.flatten() {
        let key = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        if key.starts_with('.') || !read_meta(&dir).is_some_and(|m| same(&m)) || !interpreter_present(&dir) {
            continue;
        }
        let in_use = cache.lock_shared(CacheBucket::Envs, &key)?;
        // A pruner may have removed it between the check and the lock.
        if let Some(meta) = read_meta(&dir).filter(|m| same(m)) {
            touch(&bucket, &key);
            return Ok(Some(BuiltEnv { dir, meta, _in_use: in_use }));
        }
    }
    Ok(None)
}

/// Whether the environment's interpreter is still there. A virtualenv's `bin/python` links
/// to the interpreter it was made from (a pyenv version, a uv-managed Python): when that is
/// uninstalled the environment cannot run, and is built again rather than reused.
fn interpreter_present(dir: &Path) -> bool {
    let python = dir.join("bin/python");
    python.symlink_metadata().is_err() || python.metadata().is_ok()
}

/// A scratch directory for the files a build hands to installers (requirement lists),
/// removed when dropped. It lives in the bucket, next to the build's temporary directory, so
/// that what a killed build leaves is found and removed like the rest of it (by the next
/// builder of the key, or `env prune`), never while the build runs.
#[derive(Debug)]
pub struct BuildInputs {
    path: PathBuf,
}

impl BuildInputs {
    /// The inputs directory of the build whose temporary directory is `tmp`, created empty.
    pub fn create(tmp: &Path) -> Result<BuildInputs, EnvError> {
        let name = tmp.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix(".tmp")).unwrap_or_default();
        let path = tmp.with_file_name(format!("{INPUTS_PREFIX}{name}"));
        remove_if_present(&path)?;
        fs::create_dir_all(&path).map_err(EnvError::io(&path))?;
        Ok(BuildInputs { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BuildInputs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Runs in a built environment: its bin/ first on PATH, its variables set, its activation
/// scripts sourced before the command.
impl PreparedEnv for BuiltEnv {
    fn record(&self) -> super::EnvRecord {
        EnvRecord::of_lock(self.meta.manager, self.meta.lock.clone())
    }

    fn wrap(&self, command: &str, cwd: &Path, run: &super::RunContext) -> super::Invocation {
        let prefix = self.dir.to_string_lossy().into_owned();
        let mut script = String::new();
        for s in &self.meta.activation.scripts {
            script.push_str(&format!(". {}\n", crate::manifest::shell_quote(&format!("{prefix}/{s}"))));
        }
        script.push_str(command);
        let mut path: Vec<String> =
            self.meta.activation.path.iter().map(|p| self.dir.join(p).to_string_lossy().into_owned()).collect();
        if let Some(caller) = std::env::var_os("PATH") {
            path.push(caller.to_string_lossy().into_owned());
        }
        let mut all = run.process_variables();
        all.push(("PATH".into(), path.join(":")));
        for (k, v) in &self.meta.activation.vars {
            all.push((k.clone(), v.replace("{prefix}", &prefix)));
        }
        all.extend(self.meta.lock.variables.iter().map(|(k, v)| (k.clone(), v.clone())));
        super::Invocation::shell(&script, cwd, &all)
    }
}

/// `.tmp` and the key without its first four characters: as long as the key.
fn temp_name(key: &str) -> String {
    format!(".tmp{}", &key[4.min(key.len())..])
}

/// The build's inputs directory (see [`BuildInputs`]).
fn inputs_name(key: &str) -> String {
    format!("{INPUTS_PREFIX}{}", &key[4.min(key.len())..])
}

const INPUTS_PREFIX: &str = ".tmp-in";

/// The name of the lock builders of `key` take turns on; `key.lock` is the one of its users.
fn build_lock_name(key: &str) -> String {
    format!("{key}{BUILD_LOCK_SUFFIX}")
}

const BUILD_LOCK_SUFFIX: &str = ".build";

fn read_meta(dir: &Path) -> Option<EnvMeta> {
    let bytes = fs::read(dir.join(META)).ok()?;
    serde_json::from_slice::<EnvMeta>(&bytes).ok().filter(|m| m.schema == META_SCHEMA)
}

/// Mark `key` as used now (the mtime of its lock file).
fn touch(bucket: &Path, key: &str) {
    let path = bucket.join(".locks").join(format!("{key}.lock"));
    if let Ok(f) = fs::File::options().write(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

fn remove_if_present(path: &Path) -> Result<(), EnvError> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(EnvError::io(path)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::lock::LOCK_SCHEMA;

    fn lock(key: &str) -> EnvLock {
        EnvLock {
            lock_schema: LOCK_SCHEMA.into(),
            key: key.into(),
            installer: "test".into(),
            platform: "linux-64".into(),
            python: None,
            channels: vec![],
            conda_packages: vec![],
            packages: vec![],
            variables: BTreeMap::new(),
        }
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn built_once_then_reused_and_relocated() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let env = obtain(&cache, KEY, EnvManager::Uv, |tmp, prefix| {
            assert_eq!(tmp.as_os_str().len(), prefix.as_os_str().len());
            fs::create_dir(tmp.join("bin")).unwrap();
            fs::write(tmp.join("bin/tool"), format!("#!{}/bin/python\n", tmp.display())).unwrap();
            Ok((lock(KEY), Activation::default()))
        })
        .unwrap();
        let script = fs::read_to_string(env.dir.join("bin/tool")).unwrap();
        assert_eq!(script, format!("#!{}/bin/python\n", env.dir.display()));
        drop(env);
        let again = obtain(&cache, KEY, EnvManager::Uv, |_, _| panic!("not rebuilt")).unwrap();
        assert_eq!(again.meta.lock.key, KEY);
        let listed = list(&cache).unwrap();
        assert_eq!(listed.len(), 1);
        let report = prune(&cache, None).unwrap();
        assert!(report.removed.is_empty(), "in use: {report:?}");
        assert_eq!(report.in_use, [KEY]);
        drop(again);
        assert_eq!(prune(&cache, None).unwrap().removed, [KEY]);
        assert!(list(&cache).unwrap().is_empty());
    }

    #[test]
    fn a_failed_build_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let err = obtain(&cache, KEY, EnvManager::Uv, |tmp, _| {
            fs::write(tmp.join("half"), "x").unwrap();
            Err(EnvError::Spec { file: "f".into(), message: "broken".into() })
        });
        assert!(err.is_err());
        let names: Vec<_> = fs::read_dir(dir.path().join(CacheBucket::Envs.dir_name()))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".locks")
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn leftovers_of_a_killed_build_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let bucket = cache.bucket(CacheBucket::Envs).unwrap();
        fs::create_dir_all(bucket.join(temp_name(KEY)).join("junk")).unwrap();
        let env = obtain(&cache, KEY, EnvManager::Uv, |tmp, _| {
            assert!(!tmp.join("junk").exists());
            Ok((lock(KEY), Activation::default()))
        })
        .unwrap();
        assert!(env.dir.join(META).is_file());
    }

    #[test]
    fn prune_leaves_a_build_in_progress_and_removes_a_dead_builds_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let bucket = cache.bucket(CacheBucket::Envs).unwrap();
        const DEAD: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
        drop(cache.lock(CacheBucket::Envs, DEAD).unwrap());
        for name in [temp_name(DEAD), inputs_name(DEAD)] {
            fs::create_dir_all(bucket.join(name).join("junk")).unwrap();
        }
        let env = obtain(&cache, KEY, EnvManager::Uv, |tmp, _| {
            let inputs = BuildInputs::create(tmp).unwrap();
            fs::write(inputs.path().join("requirements0.in"), "six\n").unwrap();
            let report = prune(&cache, None).unwrap();
            assert!(tmp.is_dir() && inputs.path().join("requirements0.in").is_file(), "the build goes on: {report:?}");
            assert!(report.removed.is_empty() && report.in_use.is_empty(), "{report:?}");
            Ok((lock(KEY), Activation::default()))
        })
        .unwrap();
        assert!(env.dir.join(META).is_file());
        for name in [temp_name(DEAD), inputs_name(DEAD), inputs_name(KEY)] {
            assert!(!bucket.join(&name).exists(), "{name} is gone");
        }
        assert_eq!(prune(&cache, None).unwrap().in_use, [KEY], "the builder uses what it built");
    }
}
