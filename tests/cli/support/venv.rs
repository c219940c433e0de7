//! Virtualenvs of pinned PyPI tools (uv, MLflow), made once under the target directory by
//! their script in `tests/support/` and shared by every test and test run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The virtualenv `target/tmp/NAME`, made by `tests/support/SCRIPT` unless it is complete.
pub fn pypi_venv(name: &str, script: &str) -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support").join(script);
    // Test binaries may run concurrently (cargo test, nextest): one of them installs.
    fs::create_dir_all(venv.parent().unwrap()).unwrap();
    let lock = fs::File::create(venv.with_extension("lock")).unwrap();
    lock.lock().unwrap();
    let out = Command::new("bash").arg(&script).arg(&venv).output().expect("bash runs");
    assert!(
        out.status.success(),
        "{} into {} failed (needs python3 with venv and PyPI): {}",
        script.display(),
        venv.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    venv
}
