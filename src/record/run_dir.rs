//! One run's directory in the store: the one place that names its parts.

use std::path::{Path, PathBuf};

use super::logged::{ARTIFACTS_DIR, MODELS_DIR, OTHER_RUNS_DIR};

/// A run's directory, `<store>/runs/<run_id>/`, and the files and directories it holds:
///
/// ```text
/// <run_id>/
///   .lock             exclusive lock of the runner while it lives, touched every second (heartbeat)
///   .lock.new         the lock while it is taken, before it has its name
///   record.json       the record: RUNNING, then final; written atomically
///   stdout.log        the entry point's stdout (with -A t, the one terminal stream)
///   stderr.log        the entry point's stderr
///   dirty.patch       the dirty state of a git checkout, one binary git diff
///   source-tree.txt   a local source's files as hashed before the run (for status)
///   inputs/<name>/    downloaded http(s) values of path parameter <name>
///   work/             the checkout, extracted archive or --isolated copy the run works in;
///                     removed when the run ends
///   outputs/          outputs of runs that are not in place (git, archive, --isolated, Docker
///                     project images)
///   tracking/events.jsonl   what the script logged to the embedded endpoint (record::logged)
///   artifacts/        the artifacts the script logged; runs/<id>/artifacts/ those of its
///                     nested runs, models/<model_id>/artifacts/ its logged models' files
/// ```
///
/// A directory without `record.json` belongs to a run that has not started (or was refused).
/// The same layout holds beside a record file given by path: `verify` and `status` look for
/// `dirty.patch` and `source-tree.txt` next to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// The name of the dirty patch, which a tracking server also gets a copy of under it.
    pub const DIRTY_PATCH: &str = "dirty.patch";
    /// The name of the entry point's stdout log.
    pub const STDOUT_LOG: &str = "stdout.log";
    /// The name of the entry point's stderr log.
    pub const STDERR_LOG: &str = "stderr.log";

    /// The run directory at `path`.
    pub fn new(path: PathBuf) -> RunDir {
        RunDir { path }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `record.json`.
    pub fn record(&self) -> PathBuf {
        self.path.join("record.json")
    }

    /// `.lock`, held by the runner while it lives.
    pub fn lock(&self) -> PathBuf {
        self.path.join(".lock")
    }

    /// `.lock.new`: the lock is taken under this name and then renamed, so that a lock file
    /// that is free always means a runner that is gone, never one that is starting.
    pub fn new_lock(&self) -> PathBuf {
        self.path.join(".lock.new")
    }

    /// `stdout.log`.
    pub fn stdout_log(&self) -> PathBuf {
        self.path.join(Self::STDOUT_LOG)
    }

    /// `stderr.log`.
    pub fn stderr_log(&self) -> PathBuf {
        self.path.join(Self::STDERR_LOG)
    }

    /// `dirty.patch`.
    pub fn dirty_patch(&self) -> PathBuf {
        self.path.join(Self::DIRTY_PATCH)
    }

    /// `source-tree.txt`.
    pub fn source_tree(&self) -> PathBuf {
        self.path.join("source-tree.txt")
    }

    /// `inputs/<param>/`, where the http(s) value of path parameter `param` is downloaded.
    pub fn input(&self, param: &str) -> PathBuf {
        self.path.join("inputs").join(param)
    }

    /// `work/`, the copy of the project the run works in.
    pub fn work(&self) -> PathBuf {
        self.path.join("work")
    }

    /// `outputs/`, where the outputs of a run that is not in place are moved.
    pub fn outputs(&self) -> PathBuf {
        self.path.join("outputs")
    }

    /// `artifacts/`, the artifacts the script logged to the run.
    pub fn artifacts(&self) -> PathBuf {
        self.path.join(ARTIFACTS_DIR)
    }

    /// `runs/<run_id>/artifacts/`, those of a run the script created.
    pub fn nested_run_artifacts(&self, run_id: &str) -> PathBuf {
        self.path.join(OTHER_RUNS_DIR).join(run_id).join(ARTIFACTS_DIR)
    }

    /// `models/<model_id>/artifacts/`, the files of a model the script logged.
    pub fn model_artifacts(&self, model_id: &str) -> PathBuf {
        self.path.join(MODELS_DIR).join(model_id).join(ARTIFACTS_DIR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are on disk in every store and in the records' `outputs_dir`: a rename
    /// would orphan every run made before.
    #[test]
    fn the_layout_keeps_its_names() {
        let dir = RunDir::new(PathBuf::from("/s/runs/ab"));
        let names = [
            dir.record(),
            dir.lock(),
            dir.new_lock(),
            dir.stdout_log(),
            dir.stderr_log(),
            dir.dirty_patch(),
            dir.source_tree(),
            dir.input("data"),
            dir.work(),
            dir.outputs(),
            dir.artifacts(),
            dir.nested_run_artifacts("n"),
            dir.model_artifacts("m-1"),
        ];
        let names: Vec<_> = names.iter().map(|p| p.strip_prefix(dir.path()).unwrap().to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "record.json",
                ".lock",
                ".lock.new",
                "stdout.log",
                "stderr.log",
                "dirty.patch",
                "source-tree.txt",
                "inputs/data",
                "work",
                "outputs",
                "artifacts",
                "runs/n/artifacts",
                "models/m-1/artifacts"
            ]
        );
    }
}
