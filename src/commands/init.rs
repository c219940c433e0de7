//! `lockstep init`: write a starter project from the templates in `templates/init/`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::error_class::{Classify, ErrorClass};

/// The starter projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// A python_env project.
    Python,
    /// A conda_env project.
    Conda,
    /// A docker_env project.
    Docker,
    /// A shell script, no environment.
    Shell,
}

struct TemplateFile {
    path: &'static str,
    content: &'static str,
    executable: bool,
}

macro_rules! file {
    ($template:literal, $path:literal) => {
        file!($template, $path, false)
    };
    ($template:literal, $path:literal, $exec:literal) => {
        TemplateFile {
            path: $path,
            content: include_str!(concat!("../../templates/init/", $template, "/", $path)),
            executable: $exec,
        }
    };
}

impl Template {
    fn files(self) -> &'static [TemplateFile] {
        const PYTHON: &[TemplateFile] = &[
            file!("python", "MLproject"),
            file!("python", "python_env.yaml"),
            file!("python", "train.py"),
            file!("python", ".gitignore"),
        ];
        const CONDA: &[TemplateFile] = &[
            file!("conda", "MLproject"),
            file!("conda", "conda.yaml"),
            file!("conda", "train.py"),
            file!("conda", ".gitignore"),
        ];
        const DOCKER: &[TemplateFile] =
            &[file!("docker", "MLproject"), file!("docker", "train.py"), file!("docker", ".gitignore")];
        const SHELL: &[TemplateFile] =
            &[file!("shell", "MLproject"), file!("shell", "run.sh", true), file!("shell", ".gitignore")];
        match self {
            Template::Python => PYTHON,
            Template::Conda => CONDA,
            Template::Docker => DOCKER,
            Template::Shell => SHELL,
        }
    }
}

/// Errors of writing a starter project.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Files of the template already exist; nothing was written.
    #[error("{} already has {}; nothing was written", .dir.display(), .existing.join(", "))]
    Exists {
        /// The target directory.
        dir: PathBuf,
        /// The files that exist.
        existing: Vec<String>,
    },
    /// A file could not be written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Classify for InitError {
    fn class(&self) -> ErrorClass {
        match self {
            InitError::Exists { .. } => ErrorClass::User,
            InitError::Io { .. } => ErrorClass::Internal,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            InitError::Exists { .. } => vec!["choose an empty or new directory: lockstep init DIR".into()],
            InitError::Io { .. } => vec![],
        }
    }
}

/// Write the template into `dir` (created if missing), with the project named after the
/// directory. Refuses, writing nothing, when any of its files exists. Returns the files written.
pub fn init(dir: &Path, template: Template) -> Result<Vec<PathBuf>, InitError> {
    let files = template.files();
    let existing: Vec<String> =
        files.iter().filter(|f| dir.join(f.path).exists()).map(|f| f.path.to_string()).collect();
    if !existing.is_empty() {
        return Err(InitError::Exists { dir: dir.to_path_buf(), existing });
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InitError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let name = std::path::absolute(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "project".into());
    let mut written = Vec::new();
    for f in files {
        let path = dir.join(f.path);
        fs::write(&path, f.content.replace("__NAME__", &name)).map_err(io(&path))?;
        if f.executable {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).map_err(io(&path))?;
        }
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{EnvSpec, Manifest};

    #[test]
    fn every_template_is_a_valid_project() {
        for (t, kind) in [
            (Template::Python, "python_env"),
            (Template::Conda, "conda_env"),
            (Template::Docker, "docker_env"),
            (Template::Shell, "none"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let target = dir.path().join("my-proj");
            init(&target, t).unwrap();
            let m = Manifest::load(&target).unwrap();
            assert_eq!(m.name.as_deref(), Some("my-proj"));
            assert_eq!(m.env.kind(), kind);
            assert!(m.warnings.is_empty(), "{:?}", m.warnings);
            assert!(m.entry_points.iter().any(|e| e.name == "main"));
            if let EnvSpec::Docker(d) = &m.env {
                assert!(!d.image.is_empty());
            }
        }
    }

    #[test]
    fn existing_files_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("MLproject"), "mine").unwrap();
        let err = init(dir.path(), Template::Shell).unwrap_err();
        assert!(matches!(err, InitError::Exists { .. }));
        assert_eq!(fs::read_to_string(dir.path().join("MLproject")).unwrap(), "mine");
        assert!(!dir.path().join("run.sh").exists(), "nothing was written");
    }
}
