//! `lockstep unpack`: extract an archive safely into a new directory.

use std::fs;
use std::path::Path;

use super::CommandError;
use crate::record::store_exclusions;
use crate::source::{self, ArchiveFormat, SourceError, SourceRequest};

/// Extract an archive into `dest` (which must not exist yet) with the same checks as a run
/// from it, and return its tree hash. A failed extraction leaves nothing at `dest`.
pub fn unpack(uri: &str, dest: &Path, caller_dir: &Path) -> Result<String, CommandError> {
    let format = ArchiveFormat::of(uri).ok_or_else(|| SourceError::NotAnArchive { uri: uri.to_string() })?;
    if dest.exists() {
        return Err(SourceError::DestinationExists { path: dest.to_path_buf() }.into());
    }
    let request = SourceRequest { uri, version: None, isolated: true, caller_dir, exclusions: store_exclusions() };
    let location = uri.split('#').next().unwrap_or(uri);
    let result = source::resolve_archive(&request, dest, location, format, None);
    if result.is_err() {
        let _ = fs::remove_dir_all(dest);
    }
    let _ = fs::remove_dir_all(dest.with_extension("download"));
    Ok(result?.info.tree_sha256)
}
