//! `lockstep pack`: a deterministic, shareable `.tar.gz` of a project's hashed tree, with a
//! manifest of every file and, optionally, the record of a run of it (the writer is
//! `source::archive::pack`).

use std::collections::HashSet;
use std::path::PathBuf;

use super::CommandError;
use crate::manifest::Manifest;
use crate::record::{RunRecord, Store, store_exclusions};
use crate::source::archive::pack::{PackedRecord, pack_tree};
use crate::source::tree::{Tree, digest_entries};
use crate::source::{self, SourceKind, SourceRequest};
use crate::support::cache::Cache;
use crate::support::ids::RunId;

pub use crate::source::archive::pack::PackError;

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
    pub run_id: Option<RunId>,
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
    let json = run.map(|run| {
        let mut json = serde_json::to_vec_pretty(run).expect("records serialize");
        json.push(b'\n');
        json
    });
    let packed = run.zip(json.as_deref()).map(|(run, json)| PackedRecord { run_id: &run.run_id, json });
    let bytes = pack_tree(&path, &src.project_dir, &tree, packed)?;
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
    if expected != sha256 {
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
