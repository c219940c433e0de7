//! The archive resolver: an archive fetched (for a URL), extracted with the safety checks of
//! [`super::extract`], and checked against its own manifest; and `unpack`, which does the
//! same into a directory of the user's choice.

use crate::support::digest;
use std::path::Path;

use super::{ArchiveError, ArchiveFormat, PackManifest};
use crate::source::uri::{clean_subdirectory, enter_subdirectory};
use crate::source::{ResolvedSource, SourceError, SourceInfo, SourceKind, SourceRequest, Tree, git, hash_tree};
use crate::support::http;

/// Fetch (for a URL) and extract an archive into `workdir`, checking it against its own
/// manifest when it was made by `lockstep pack`.
pub(crate) fn resolve_archive(
    req: &SourceRequest,
    workdir: &Path,
    location: &str,
    format: ArchiveFormat,
    subdirectory: Option<String>,
) -> Result<ResolvedSource, SourceError> {
    if req.version.is_some() {
        return Err(SourceError::VersionOfArchive { uri: location.to_string() });
    }
    let sub = subdirectory.as_deref().map(clean_subdirectory).transpose()?;
    let file = if location.starts_with("http://") || location.starts_with("https://") {
        http::download(location, &workdir.with_extension("download"))?
    } else {
        let path = req.caller_dir.join(location);
        if !path.is_file() {
            return Err(SourceError::NotFound { path });
        }
        path
    };
    let (digest, _) = digest::sha256_file(&file).map_err(|e| SourceError::io(&file, e))?;
    super::extract(&file, format, workdir)?;
    let root = super::project_root(workdir);
    let manifest = super::read_manifest(&file, &root)?;
    let project_dir = match (&sub, &subdirectory) {
        (Some(s), Some(shown)) => enter_subdirectory(&root, s, shown, location)?,
        _ => root.clone(),
    };
    let tree = hash_tree(&project_dir, &req.exclusions, None)?;
    if let Some(m) = manifest.filter(|_| sub.is_none())
        && m.tree_sha256 != tree.sha256
    {
        return Err(ArchiveError::ManifestMismatch { archive: file, detail: describe_mismatch(&m, &tree) }.into());
    }
    let info = SourceInfo {
        uri: git::strip_credentials(req.uri),
        kind: SourceKind::Archive,
        path: None,
        version: None,
        commit: None,
        branch: None,
        repo_url: None,
        subdirectory: sub.map(|s| s.to_string_lossy().into_owned()),
        tree_sha256: tree.sha256.into(),
        dirty: false,
        patch_sha256: None,
        archive_sha256: Some(digest::hex(&digest)),
        input_tree_sha256: None,
    };
    Ok(ResolvedSource { project_dir, in_place: false, info, dirty_patch: None, tree: None, stamps: None })
}

/// Which files of an archive differ from its manifest, for an error message.
fn describe_mismatch(manifest: &PackManifest, tree: &Tree) -> String {
    let listed: std::collections::BTreeMap<&str, &str> =
        manifest.files.iter().map(|f| (f.path.as_str(), f.sha256.as_str())).collect();
    let found: std::collections::BTreeMap<String, String> =
        tree.entries.iter().map(|e| (e.path.to_string_lossy().into_owned(), digest::hex(&e.sha256))).collect();
    let mut problems: Vec<String> = Vec::new();
    for (path, sha) in &listed {
        match found.get(*path) {
            None => problems.push(format!("{path} is missing")),
            Some(s) if s != sha => problems.push(format!("{path} differs")),
            _ => {}
        }
    }
    problems.extend(found.keys().filter(|p| !listed.contains_key(p.as_str())).map(|p| format!("{p} is not listed")));
    if problems.is_empty() {
        return "the tree hash differs".into();
    }
    let more = problems.len().saturating_sub(5);
    problems.truncate(5);
    format!("{}{}", problems.join(", "), if more > 0 { format!(" and {more} more") } else { String::new() })
}
