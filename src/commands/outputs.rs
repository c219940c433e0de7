//! `lockstep outputs`: a run's outputs (all, or one file or directory) restored from the copies
//! the store keeps, into a directory and never outside it.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::CommandError;
use crate::pipeline;
use crate::record::{Objects, OutputFile, RunRecord, Store};
use crate::support::digest;
use crate::support::error_class::{Classify, ErrorClass};
use crate::support::ids::RunId;
use crate::support::reflink;

/// What to restore, and where.
#[derive(Debug, Clone)]
pub struct OutputsOptions {
    /// The run store.
    pub store: PathBuf,
    /// A run id (or unique prefix), or a record file.
    pub run: String,
    /// One output, or a directory of outputs; all of them when absent.
    pub path: Option<String>,
    /// Where to write them (relative to `caller_dir`).
    pub dir: PathBuf,
    /// Replace files that exist with other content.
    pub force: bool,
    /// The caller's working directory.
    pub caller_dir: PathBuf,
}

/// What was restored.
#[derive(Debug, Default)]
pub struct Restored {
    /// The directory written into.
    pub dir: PathBuf,
    /// Outputs written, by path.
    pub written: Vec<String>,
    /// Outputs already there with the recorded content, left as they were.
    pub unchanged: Vec<String>,
}

/// Errors of restoring a run's outputs.
#[derive(Debug, thiserror::Error)]
pub enum OutputsError {
    /// The path names no output of the run.
    #[error("run {run_id} has no output '{path}'")]
    UnknownPath {
        /// The run.
        run_id: RunId,
        /// The path asked for.
        path: String,
        /// The run's outputs, by path.
        known: Vec<String>,
    },
    /// Neither the store nor the run's outputs directory has the recorded content.
    #[error("run {run_id} kept no copy of {}, and {} no longer holds what the run wrote", .paths.join(", "), .outputs_dir.display())]
    NotKept {
        /// The run.
        run_id: RunId,
        /// The outputs without a copy.
        paths: Vec<String>,
        /// Where the run left them.
        outputs_dir: PathBuf,
    },
    /// Files in the directory hold other content.
    #[error("{} already holds other content at {}", .dir.display(), .paths.join(", "))]
    WouldOverwrite {
        /// The directory.
        dir: PathBuf,
        /// The outputs in the way.
        paths: Vec<String>,
    },
    /// Something on the way to an output is not a directory of `dir` (a symbolic link, a
    /// file): writing through it could land outside.
    #[error("{} is not a directory inside {}: nothing was written", .path.display(), .dir.display())]
    NotInside {
        /// The directory.
        dir: PathBuf,
        /// What is in the way.
        path: PathBuf,
    },
    /// Writing a restored file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl Classify for OutputsError {
    fn class(&self) -> ErrorClass {
        match self {
            OutputsError::Io { .. } => ErrorClass::Internal,
            _ => ErrorClass::User,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            OutputsError::UnknownPath { run_id, known, .. } if known.is_empty() => {
                vec![format!("run {run_id} recorded no outputs")]
            }
            OutputsError::UnknownPath { run_id, known, .. } => {
                let shown: Vec<&str> = known.iter().take(5).map(String::as_str).collect();
                let more = if known.len() > shown.len() { ", ..." } else { "" };
                vec![format!("its outputs are {}{more} (`lockstep show {run_id}` lists them)", shown.join(", "))]
            }
            OutputsError::NotKept { .. } => vec![
                "files above the size limit (--keep-limit), runs with --no-keep-outputs and runs recorded before \
                 lockstep kept outputs have their sha256 only"
                    .into(),
            ],
            OutputsError::WouldOverwrite { .. } => {
                vec!["--force replaces them, or -o DIR restores into another directory".into()]
            }
            OutputsError::NotInside { .. } | OutputsError::Io { .. } => Vec::new(),
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> OutputsError + '_ {
    move |source| OutputsError::Io { path: path.to_path_buf(), source }
}

/// Restore the outputs of a run: every file checked first (each has a source with the
/// recorded content, and nothing in the way unless `force`), then each written through a
/// temporary file and a rename, so that nothing is half-written.
pub fn outputs(opts: &OutputsOptions) -> Result<Restored, CommandError> {
    let store = Store::open(&opts.store)?;
    // The lookup checks a record's paths and digests before any becomes a path.
    let record = pipeline::lookup(&opts.run, &store, &opts.caller_dir)?.record;
    let chosen = choose(&record, opts.path.as_deref())?;
    let objects = store.objects();
    let mut missing = Vec::new();
    let sources: Vec<(&OutputFile, PathBuf)> = chosen
        .into_iter()
        .filter_map(|out| match source_of(&objects, &record, out) {
            Some(at) => Some((out, at)),
            None => {
                missing.push(out.path.clone());
                None
            }
        })
        .collect();
    if !missing.is_empty() {
        let outputs_dir = record.outputs_dir.clone();
        return Err(OutputsError::NotKept { run_id: record.run_id, paths: missing, outputs_dir }.into());
    }
    let dir = match opts.dir.as_os_str() == "." {
        true => opts.caller_dir.clone(),
        false => opts.caller_dir.join(&opts.dir),
    };
    let mut restored = Restored { dir: dir.clone(), ..Restored::default() };
    let mut in_the_way = Vec::new();
    let mut to_write = Vec::new();
    for (out, at) in sources {
        match existing(&dir, &out.path)? {
            Existing::Absent => to_write.push((out, at)),
            Existing::File(sha) if sha == out.sha256 => restored.unchanged.push(out.path.clone()),
            Existing::File(_) if opts.force => to_write.push((out, at)),
            Existing::File(_) | Existing::NotAFile => in_the_way.push(out.path.clone()),
        }
    }
    if !in_the_way.is_empty() {
        return Err(OutputsError::WouldOverwrite { dir, paths: in_the_way }.into());
    }
    for (out, at) in to_write {
        write(&dir, &out.path, &at)?;
        restored.written.push(out.path.clone());
    }
    Ok(restored)
}

/// The outputs `path` names: the one file, or every file under the directory; all when absent.
fn choose<'r>(record: &'r RunRecord, path: Option<&str>) -> Result<Vec<&'r OutputFile>, OutputsError> {
    let Some(path) = path else { return Ok(record.outputs.iter().collect()) };
    let trimmed = path.trim_start_matches("./").trim_end_matches('/');
    let under = format!("{trimmed}/");
    let chosen: Vec<&OutputFile> =
        record.outputs.iter().filter(|o| o.path == trimmed || o.path.starts_with(&under)).collect();
    if chosen.is_empty() {
        let known = record.outputs.iter().map(|o| o.path.clone()).collect();
        return Err(OutputsError::UnknownPath { run_id: record.run_id.clone(), path: path.to_string(), known });
    }
    Ok(chosen)
}

/// Where the recorded content of an output is: its kept copy, else the file where the run
/// left it, when that still holds the recorded content.
fn source_of(objects: &Objects, record: &RunRecord, out: &OutputFile) -> Option<PathBuf> {
    if let Some(kept) = objects.kept(out) {
        return Some(kept);
    }
    let left = record.outputs_dir.join(&out.path);
    let same = digest::sha256_file(&left).is_ok_and(|(sha, _)| digest::hex(&sha) == out.sha256);
    same.then_some(left)
}

/// What is at an output's place in the directory.
enum Existing {
    /// Nothing.
    Absent,
    /// A file, with its sha256.
    File(String),
    /// A symbolic link, a directory: never replaced, even with --force.
    NotAFile,
}

/// What `dir/rel` holds now; every directory on the way must be a real directory inside
/// `dir`, never a symbolic link that could lead out of it.
fn existing(dir: &Path, rel: &str) -> Result<Existing, OutputsError> {
    let mut at = dir.to_path_buf();
    let mut parts = Path::new(rel).components().peekable();
    while let Some(part) = parts.next() {
        at.push(part);
        let meta = match fs::symlink_metadata(&at) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::Absent),
            Err(e) => return Err(io_error(&at)(e)),
        };
        if parts.peek().is_some() {
            if !meta.is_dir() {
                return Err(OutputsError::NotInside { dir: dir.to_path_buf(), path: at });
            }
            continue;
        }
        if !meta.is_file() {
            return Ok(Existing::NotAFile);
        }
        let (sha, _) = digest::sha256_file(&at).map_err(io_error(&at))?;
        return Ok(Existing::File(digest::hex(&sha)));
    }
    // A recorded path is never empty (the lookup checked it).
    Ok(Existing::Absent)
}

/// Write `dir/rel` from `from`: its directories made one by one (none may be a link), the file
/// through a temporary file beside it and a rename, which replaces a link rather than
/// following it.
fn write(dir: &Path, rel: &str, from: &Path) -> Result<(), OutputsError> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let rel = Path::new(rel);
    let mut parent = dir.to_path_buf();
    if let Some(dirs) = rel.parent() {
        for part in dirs.components() {
            parent.push(part);
            match fs::symlink_metadata(&parent) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(OutputsError::NotInside { dir: dir.to_path_buf(), path: parent }),
                Err(_) => fs::create_dir(&parent).map_err(io_error(&parent))?,
            }
        }
    }
    let dest = dir.join(rel);
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(&parent).map_err(io_error(&parent))?;
    let mut source = File::open(from).map_err(io_error(from))?;
    reflink::clone_or_copy(&mut source, tmp.as_file_mut()).map_err(io_error(&dest))?;
    tmp.as_file().set_permissions(fs::Permissions::from_mode(0o644)).map_err(io_error(&dest))?;
    tmp.persist(&dest).map_err(|e| io_error(&dest)(e.error))?;
    Ok(())
}
