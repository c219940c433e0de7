//! The writer of `lockstep pack`'s archives: a deterministic `.tar.gz` of a hashed tree, with
//! a manifest of every file and, optionally, the record of a run of it. The backends stage
//! the same archive, so it lives with the source rather than in the command.
//!
//! Entries are written in tree order with normalized metadata (mode 0644 or 0755, owner 0,
//! no user names, mtime 0) and the gzip stream has no time stamp, so the same tree always
//! gives the same bytes, wherever it came from.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{
    Node, PACK_MANIFEST, PACK_RECORD, PACK_SCHEMA, PackManifest, PackedFile, link_stays_inside, name_problem, shown,
};
use crate::source::tree::{FileMode, Tree};
use crate::support::digest;
use crate::support::error_class::{Classify, ErrorClass};
use crate::support::gzip::ParallelGzEncoder;
use crate::support::ids::RunId;

/// The gzip level: zlib's default, the size `tar czf` gives.
const LEVEL: u32 = 6;

/// A run's record packed along: its id and its `record.json`.
pub struct PackedRecord<'a> {
    /// The run.
    pub run_id: &'a RunId,
    /// Its record, as JSON.
    pub json: &'a [u8],
}

/// Write the archive of `tree` (the files of `root`) to `path` (temp file + rename), after
/// checking that extraction would accept every file; its size in bytes.
pub fn pack_tree(path: &Path, root: &Path, tree: &Tree, run: Option<PackedRecord<'_>>) -> Result<u64, PackError> {
    check_extractable(root, tree)?;
    write_archive(path, root, tree, run)
}

/// Errors of packing.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The output name would not be recognized as an archive by `lockstep run`.
    #[error("the archive must be named *.tar.gz or *.tgz, not {}", .path.display())]
    BadOutput {
        /// The requested output.
        path: PathBuf,
    },
    /// The project is not the tree the run ran on.
    #[error("the project's files are not those run {run_id} ran on ({detail})")]
    RunMismatch {
        /// The run.
        run_id: RunId,
        /// What differs.
        detail: String,
    },
    /// A file the extractor would refuse, so that the archive could not be run.
    #[error("cannot pack '{path}': it {reason}{}; `lockstep unpack` and `lockstep run` refuse such archives", .target.as_ref().map(|t| format!(" ({t})")).unwrap_or_default())]
    Unextractable {
        /// The file, relative to the project.
        path: String,
        /// What is wrong with it, completing the sentence.
        reason: &'static str,
        /// Where it points, for a link.
        target: Option<String>,
    },
    /// Writing the archive failed.
    #[error("cannot write {}: {source}", .path.display())]
    Io {
        /// The archive.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl Classify for PackError {
    fn class(&self) -> ErrorClass {
        match self {
            PackError::BadOutput { .. } | PackError::RunMismatch { .. } | PackError::Unextractable { .. } => {
                ErrorClass::User
            }
            PackError::Io { .. } => ErrorClass::Internal,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            PackError::RunMismatch { run_id, .. } => vec![format!(
                "pack the run's own source (for a git run, its repository with -v <commit>); `lockstep status {run_id}` shows what changed"
            )],
            PackError::Unextractable { target: Some(_), .. } => vec![
                "make the link relative and pointing inside the project, or list it in .lockstepignore (it then leaves the tree hash too)".into(),
            ],
            PackError::Unextractable { target: None, .. } => {
                vec!["rename or move it, or list it in .lockstepignore (it then leaves the tree hash too)".into()]
            }
            PackError::BadOutput { .. } | PackError::Io { .. } => vec![],
        }
    }
}

/// Refuse what extraction refuses (links to absolute paths or out of the tree, directly or
/// through other links; names too long or too deep), judged on the tree as it will be
/// extracted, so that every archive `pack` writes can be unpacked and run.
pub(crate) fn check_extractable(root: &Path, tree: &Tree) -> Result<(), PackError> {
    let mut nodes: HashMap<&[u8], Node> = HashMap::new();
    let mut dirs: HashSet<&[u8]> = HashSet::new();
    for entry in &tree.entries {
        let path = entry.path.as_os_str().as_bytes();
        let shown_path = || shown(&entry.path.to_string_lossy());
        if let Some(reason) = name_problem(path) {
            return Err(PackError::Unextractable { path: shown_path(), reason, target: None });
        }
        let node = if entry.mode == FileMode::Symlink {
            let src = root.join(&entry.path);
            Node::Link(
                fs::read_link(&src).map_err(|source| PackError::Io { path: src, source })?.into_os_string().into_vec(),
            )
        } else {
            Node::File
        };
        dirs.extend(entry.path.ancestors().skip(1).map(|a| a.as_os_str().as_bytes()).filter(|a| !a.is_empty()));
        nodes.insert(path, node);
    }
    for entry in tree.entries.iter().filter(|e| e.mode == FileMode::Symlink) {
        let path = entry.path.as_os_str().as_bytes();
        let Some(Node::Link(target)) = nodes.get(path) else { continue };
        let lookup =
            |p: &[u8]| Ok(if dirs.contains(p) { Node::Dir } else { nodes.get(p).cloned().unwrap_or(Node::Missing) });
        if !link_stays_inside(path, lookup).expect("the lookup never fails") {
            let reason = if target.starts_with(b"/") {
                "is a link to an absolute path"
            } else {
                "is a link pointing outside the project"
            };
            return Err(PackError::Unextractable {
                path: shown(&String::from_utf8_lossy(path)),
                reason,
                target: Some(shown(&String::from_utf8_lossy(target))),
            });
        }
    }
    Ok(())
}

fn write_archive(path: &Path, root: &Path, tree: &Tree, run: Option<PackedRecord<'_>>) -> Result<u64, PackError> {
    let io_err = |source| PackError::Io { path: path.to_path_buf(), source };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err)?;
    let tmp = tempfile::Builder::new().prefix(".pack-").tempfile_in(dir).map_err(io_err)?;
    let gz = ParallelGzEncoder::new(BufWriter::with_capacity(1 << 20, tmp.reopen().map_err(io_err)?), LEVEL)
        .map_err(io_err)?;
    let mut builder = tar::Builder::new(gz);

    let manifest = PackManifest {
        schema: PACK_SCHEMA.to_string(),
        tree_sha256: tree.sha256.clone(),
        run_id: run.as_ref().map(|r| r.run_id.clone()),
        files: tree
            .entries
            .iter()
            .map(|e| PackedFile {
                path: e.path.to_string_lossy().into_owned(),
                mode: e.mode.octal().to_string(),
                size: e.size,
                sha256: digest::hex(&e.sha256),
            })
            .collect(),
    };
    let mut json = serde_json::to_vec_pretty(&manifest).expect("the manifest serializes");
    json.push(b'\n');
    append_bytes(&mut builder, Path::new(PACK_MANIFEST), &json, 0o644).map_err(io_err)?;
    if let Some(run) = run {
        append_bytes(&mut builder, Path::new(PACK_RECORD), run.json, 0o644).map_err(io_err)?;
    }
    for entry in &tree.entries {
        let src = root.join(&entry.path);
        let mut header = header(0o644);
        match entry.mode {
            FileMode::Symlink => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                let target = fs::read_link(&src).map_err(io_err)?;
                builder.append_link(&mut header, &entry.path, &target).map_err(io_err)?;
            }
            mode => {
                let file = File::open(&src).map_err(io_err)?;
                let len = file.metadata().map_err(io_err)?.len();
                header.set_mode(if mode == FileMode::Executable { 0o755 } else { 0o644 });
                header.set_size(len);
                builder.append_data(&mut header, &entry.path, file).map_err(io_err)?;
            }
        }
    }
    let gz = builder.into_inner().map_err(io_err)?;
    let mut file = gz.finish().map_err(io_err)?;
    file.flush().map_err(io_err)?;
    drop(file);
    let bytes = tmp.as_file().metadata().map_err(io_err)?.len();
    // tempfile creates 0600; an archive is made to be shared, as any file `tar` writes.
    tmp.as_file().set_permissions(fs::Permissions::from_mode(0o644)).map_err(io_err)?;
    tmp.persist(path).map_err(|e| io_err(e.error))?;
    Ok(bytes)
}

fn header(mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn append_bytes<W: Write>(builder: &mut tar::Builder<W>, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut h = header(mode);
    h.set_size(bytes.len() as u64);
    builder.append_data(&mut h, path, bytes)
}
