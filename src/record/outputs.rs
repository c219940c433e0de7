//! Outputs: the files a run creates or changes in its working directory (a stat snapshot
//! before and after), plus those its entry point's `outputs:` globs match, each hashed.

use crate::support::digest;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::RecordError;
use crate::source::tree::{Exclusions, FileStamps, TreeError};

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// Relative to the working directory, with `/` separators.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the content, as hex.
    pub sha256: String,
    /// Whether the store keeps a copy of the content (`objects/sha256/...`): false for a
    /// file above the size limit, with `--no-keep-outputs`, for what a script logged, and in
    /// records made before copies were kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kept: bool,
}

/// The stat data of every file under a directory (ignore rules do not apply: an output may
/// well be an ignored file), without `.git` and stores.
#[derive(Debug, Default)]
pub struct Snapshot {
    files: FileStamps,
}

impl Snapshot {
    /// Take a snapshot of `root`.
    pub fn take(root: &Path, exclusions: &Exclusions) -> Result<Snapshot, RecordError> {
        let files = FileStamps::take(root, exclusions).map_err(record_error)?;
        Ok(Snapshot { files })
    }

    /// The snapshot a walk already took (the one that hashed the project's tree).
    pub fn from_stamps(files: FileStamps) -> Snapshot {
        Snapshot { files }
    }
}

/// The outputs of a run in `root`: files new or changed since `before`, plus files matching
/// `globs`, hashed and sorted by path.
pub fn collect_outputs(
    root: &Path,
    before: &Snapshot,
    globs: &[String],
    exclusions: &Exclusions,
) -> Result<Vec<OutputFile>, RecordError> {
    let set = glob_set(globs);
    let paths =
        before.files.changed(root, exclusions, |path| !set.is_empty() && set.is_match(path)).map_err(record_error)?;
    hash_files(root, paths.iter().map(PathBuf::as_path).collect())
}

fn record_error(e: TreeError) -> RecordError {
    match e {
        TreeError::Io { path, source } => RecordError::Io { path, source },
    }
}

fn glob_set(globs: &[String]) -> globset::GlobSet {
    let mut set = globset::GlobSetBuilder::new();
    for g in globs {
        // Globs were validated when the MLproject was parsed.
        if let Ok(glob) = globset::GlobBuilder::new(g).literal_separator(true).build() {
            set.add(glob);
        }
    }
    set.build().unwrap_or_else(|_| globset::GlobSet::empty())
}

/// Hash the files at `paths` (relative to `root`), sorted by path bytes.
fn hash_files(root: &Path, mut paths: Vec<&Path>) -> Result<Vec<OutputFile>, RecordError> {
    paths.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    paths
        .into_iter()
        .map(|rel| {
            let abs = root.join(rel);
            let (sha, size) = digest::sha256_file(&abs).map_err(RecordError::io(&abs))?;
            Ok(OutputFile { path: rel.to_string_lossy().into_owned(), size, sha256: digest::hex(&sha), kept: false })
        })
        .collect()
}

/// Files under `root` that `globs` match (relative, `/`-separated): the unchanged outputs a
/// container still holds in its copy of the project.
pub fn matching_files(root: &Path, globs: &[String], exclusions: &Exclusions) -> Result<Vec<String>, RecordError> {
    if globs.is_empty() {
        return Ok(Vec::new());
    }
    let set = glob_set(globs);
    let snapshot = Snapshot::take(root, exclusions)?;
    let mut out: Vec<String> =
        snapshot.files.paths().filter(|p| set.is_match(p)).map(|p| p.to_string_lossy().into_owned()).collect();
    out.sort();
    Ok(out)
}

/// Every file under `dir` (none when it does not exist), hashed and sorted: the outputs copied
/// out of a container.
pub fn list_outputs(dir: &Path) -> Result<Vec<OutputFile>, RecordError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let all = Snapshot::take(dir, &super::store_exclusions())?;
    hash_files(dir, all.files.paths().collect())
}

/// Move the outputs out of a per-run working directory into `dest`, keeping their paths.
pub fn move_outputs(root: &Path, outputs: &[OutputFile], dest: &Path) -> Result<(), RecordError> {
    for out in outputs {
        let (from, to) = (root.join(&out.path), dest.join(&out.path));
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(RecordError::io(parent))?;
        }
        fs::rename(&from, &to).map_err(RecordError::io(&from))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::store_exclusions;

    #[test]
    fn new_changed_and_globbed_files_are_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("keep.txt"), "same").unwrap();
        fs::write(root.join("change.txt"), "old").unwrap();
        fs::create_dir(root.join("models")).unwrap();
        fs::write(root.join("models/prior.bin"), "prior").unwrap();
        fs::write(root.join(".gitignore"), "new.log\n").unwrap();
        let before = Snapshot::take(root, &store_exclusions()).unwrap();
        fs::write(root.join("change.txt"), "newer content").unwrap();
        fs::write(root.join("new.log"), "ignored files count too").unwrap();
        fs::create_dir_all(root.join(".lockstep/runs")).unwrap();
        fs::write(root.join(".lockstep/runs/x"), "store is never an output").unwrap();
        let outs = collect_outputs(root, &before, &["models/*.bin".to_string()], &store_exclusions()).unwrap();
        let paths: Vec<_> = outs.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(paths, ["change.txt", "models/prior.bin", "new.log"]);
        assert_eq!(outs[0].sha256, digest::sha256_hex(b"newer content"));
        assert_eq!(outs[0].size, 13);
    }

    #[test]
    fn globbed_files_and_copied_out_outputs_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("models/deep")).unwrap();
        fs::write(root.join("models/deep/m.bin"), "m").unwrap();
        fs::write(root.join("train.py"), "code").unwrap();
        let globs = ["models/**".to_string()];
        assert_eq!(matching_files(root, &globs, &Exclusions::default()).unwrap(), ["models/deep/m.bin"]);
        assert!(matching_files(root, &[], &Exclusions::default()).unwrap().is_empty());
        let listed = list_outputs(root).unwrap();
        let paths: Vec<_> = listed.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(paths, ["models/deep/m.bin", "train.py"]);
        assert_eq!(listed[1].sha256, digest::sha256_hex(b"code"));
        assert!(list_outputs(&root.join("missing")).unwrap().is_empty());
    }

    #[test]
    fn outputs_move_with_their_paths() {
        let dir = tempfile::tempdir().unwrap();
        let (work, dest) = (dir.path().join("work"), dir.path().join("out"));
        fs::create_dir_all(work.join("a")).unwrap();
        fs::write(work.join("a/m.json"), "{}").unwrap();
        let outs = vec![OutputFile { path: "a/m.json".into(), size: 2, sha256: String::new(), kept: false }];
        move_outputs(&work, &outs, &dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("a/m.json")).unwrap(), "{}");
        assert!(!work.join("a/m.json").exists());
    }
}
