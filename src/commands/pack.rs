//! `lockstep pack`: a deterministic, shareable `.tar.gz` of a project's hashed tree, with a
//! manifest of every file and, optionally, the record of a run of it.
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

use super::CommandError;
use crate::manifest::Manifest;
use crate::record::{RunRecord, Store, store_exclusions};
use crate::source::archive::{
    Node, PACK_MANIFEST, PACK_RECORD, PACK_SCHEMA, PackManifest, PackedFile, link_stays_inside, name_problem, shown,
};
use crate::source::tree::{FileMode, Tree, digest_entries};
use crate::source::{self, SourceKind, SourceRequest};
use crate::support::cache::Cache;
use crate::support::digest;
use crate::support::error_class::{Classify, ErrorClass};
use crate::support::gzip::ParallelGzEncoder;

/// The gzip level: zlib's default, the size `tar czf` gives.
const LEVEL: u32 = 6;

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
        run_id: String,
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

/// What to pack.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// A local path, git URL or archive, with an optional `#subdirectory`.
    pub uri: String,
    /// A branch, tag or commit, for git sources.
    pub version: Option<String>,
    /// The archive to write; by default `<name>-<12 hex of tree hash>.tar.gz` here, or
    /// `<name>-<tree>-run-<12 hex of run id>.tar.gz` with a run's record.
    pub output: Option<PathBuf>,
    /// The id (or prefix) of a run of this project whose record goes into the archive.
    pub run: Option<String>,
    /// The run store that holds that run.
    pub store: PathBuf,
    /// The directory relative paths are resolved against.
    pub caller_dir: PathBuf,
}

/// A written archive.
#[derive(Debug, Clone)]
pub struct Packed {
    /// Where it is.
    pub path: PathBuf,
    /// The tree hash of the packed files.
    pub tree_sha256: String,
    /// How many files it holds (besides lockstep's metadata).
    pub files: usize,
    /// Its size in bytes.
    pub bytes: u64,
    /// The run whose record it holds.
    pub run_id: Option<String>,
}

/// Pack a project, with a run's record when asked for.
pub fn pack(opts: &PackOptions) -> Result<Packed, CommandError> {
    let record = match &opts.run {
        Some(id) => Some(Store::open(&opts.store)?.find(id)?),
        None => None,
    };
    let cache = Cache::from_env()?;
    write_pack(opts, record.as_ref(), &cache)
}

fn write_pack(opts: &PackOptions, run: Option<&RunRecord>, cache: &Cache) -> Result<Packed, CommandError> {
    if let Some(out) = &opts.output {
        let name = out.to_string_lossy().to_ascii_lowercase();
        if !(name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
            return Err(PackError::BadOutput { path: out.clone() }.into());
        }
    }
    let scratch = tempfile::Builder::new()
        .prefix("lockstep-pack-")
        .tempdir()
        .map_err(|source| PackError::Io { path: std::env::temp_dir(), source })?;
    let request = SourceRequest {
        uri: &opts.uri,
        version: opts.version.as_deref(),
        isolated: false,
        caller_dir: &opts.caller_dir,
        exclusions: store_exclusions(),
    };
    let src = source::resolve(&request, cache, &scratch.path().join("work"))?;
    let mut tree = match src.tree {
        Some(tree) => tree,
        None => source::hash_tree(&src.project_dir, &store_exclusions(), None).map_err(source::SourceError::from)?,
    };
    if let Some(run) = run {
        tree = tree_of_run(tree, run)?;
    }
    check_extractable(&src.project_dir, &tree)?;
    let name = Manifest::load(&src.project_dir)
        .ok()
        .and_then(|m| m.name)
        .or_else(|| src.project_dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "project".into());
    let path = opts.output.clone().unwrap_or_else(|| {
        let safe: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
        let tree = crate::support::ids::short(&tree.sha256);
        // The run's id is part of the name: two runs of one tree are two different archives.
        match run {
            Some(run) => PathBuf::from(format!("{safe}-{tree}-run-{}.tar.gz", crate::support::ids::short(&run.run_id))),
            None => PathBuf::from(format!("{safe}-{tree}.tar.gz")),
        }
    });
    let path = opts.caller_dir.join(path);
    let bytes = write_archive(&path, &src.project_dir, &tree, run)?;
    let run_id = run.map(|r| r.run_id.clone());
    Ok(Packed { path, tree_sha256: tree.sha256, files: tree.entries.len(), bytes, run_id })
}

/// The tree a run ran on, taken from the project's current files: for an in-place local
/// run, without the files it wrote (its outputs). It must hash as the record says.
fn tree_of_run(tree: Tree, run: &RunRecord) -> Result<Tree, PackError> {
    let (expected, entries) = match (&run.source.kind, &run.source.input_tree_sha256) {
        (SourceKind::Local, Some(input)) => {
            let outputs: HashSet<&str> = run.outputs.iter().map(|o| o.path.as_str()).collect();
            let kept =
                tree.entries.into_iter().filter(|e| !outputs.contains(e.path.to_string_lossy().as_ref())).collect();
            (input.clone(), kept)
        }
        _ => (run.source.tree_sha256.clone(), tree.entries),
    };
    let sha256 = digest_entries(&entries);
    if sha256 != expected {
        return Err(PackError::RunMismatch {
            run_id: run.run_id.clone(),
            detail: format!(
                "tree {} here, {} in the record",
                crate::support::ids::short(&sha256),
                crate::support::ids::short(&expected)
            ),
        });
    }
    Ok(Tree { entries, sha256 })
}

/// Refuse what extraction refuses (links to absolute paths or out of the tree, directly or
/// through other links; names too long or too deep), judged on the tree as it will be
/// extracted, so that every archive `pack` writes can be unpacked and run.
fn check_extractable(root: &Path, tree: &Tree) -> Result<(), PackError> {
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

fn write_archive(path: &Path, root: &Path, tree: &Tree, run: Option<&RunRecord>) -> Result<u64, PackError> {
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
        run_id: run.map(|r| r.run_id.clone()),
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
        let mut json = serde_json::to_vec_pretty(run).expect("records serialize");
        json.push(b'\n');
        append_bytes(&mut builder, Path::new(PACK_RECORD), &json, 0o644).map_err(io_err)?;
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
