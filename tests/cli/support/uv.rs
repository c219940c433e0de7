//! uv for the environment tests: the one on PATH when there is one, else uv from PyPI in a
//! virtualenv cached under the target directory (`tests/support/uv-venv.sh` makes it once), so
//! that `cargo test` needs only cargo, git and Python 3.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use super::venv::pypi_venv;

/// A directory holding a `uv` that runs.
pub fn uv_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let on_path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .find(|d| Command::new(d.join("uv")).arg("--version").output().is_ok_and(|o| o.status.success()));
        if let Some(dir) = on_path {
            return dir;
        }
        let venv = pypi_venv("uv-venv", "uv-venv.sh");
        // Only uv goes on PATH, not the virtualenv's python, which would change the
        // interpreter the tests' environments are built from.
        let bin = venv.with_extension("bin");
        let _ = fs::remove_dir_all(&bin);
        fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(venv.join("bin/uv"), bin.join("uv")).unwrap();
        bin
    })
    .clone()
}

/// PATH with a directory holding uv in it (first, when uv came from PyPI).
pub fn path_with_uv() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    let dir = uv_dir();
    if std::env::split_paths(&path).any(|d| d == dir) { path } else { format!("{}:{path}", dir.display()) }
}
