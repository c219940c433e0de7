//! Archives as sources: `.tar.gz` / `.tgz` and `.zip` files, local or over http(s), extracted
//! so that nothing can land outside the target directory.
//!
//! An archive made by `lockstep pack` carries `.lockstep/pack.json` (every file with its
//! digest, and the tree hash) and, with `--run`, `.lockstep/record.json`. `.lockstep`
//! directories are never part of a tree hash, so extracting such an archive with any tool
//! gives a directory whose tree hash is the one in its manifest.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod pack;
mod resolve;
mod safe_dest;

use crate::support::ids::RunId;
use safe_dest::SafeDest;
pub(crate) use safe_dest::{Node, link_stays_inside, name_problem, shown};

pub(crate) use resolve::resolve_archive;

/// The directory of lockstep's metadata inside an archive.
pub const PACK_DIR: &str = ".lockstep";
/// The manifest of a packed archive, relative to its root.
pub const PACK_MANIFEST: &str = ".lockstep/pack.json";
/// The run record of a packed archive (`pack --run`), relative to its root.
pub const PACK_RECORD: &str = ".lockstep/record.json";
/// The schema of [`PackManifest`].
pub const PACK_SCHEMA: &str = "lockstep.pack/v1";

/// Extraction stops beyond this many bytes (`LOCKSTEP_ARCHIVE_MAX_BYTES` overrides it): a
/// small archive that expands without bound is a decompression bomb.
const DEFAULT_MAX_BYTES: u64 = 32 << 30;
/// Extraction stops beyond this many entries.
const MAX_ENTRIES: u64 = 2_000_000;
/// The longest name of one path component (Linux's `NAME_MAX`).
const MAX_NAME: usize = 255;
/// The longest entry name (`PATH_MAX` less its NUL): longer paths cannot be opened whole.
const MAX_PATH: usize = 4095;
/// The deepest nesting of directories (the extractor holds a descriptor per level).
const MAX_DEPTH: usize = 256;

/// `.lockstep/pack.json`: what a packed archive holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackManifest {
    /// Always [`PACK_SCHEMA`].
    pub schema: String,
    /// The tree hash of the packed files.
    pub tree_sha256: String,
    /// The run whose record is packed along, if any.
    pub run_id: Option<RunId>,
    /// Every packed file, sorted by path.
    pub files: Vec<PackedFile>,
}

/// One file of a packed archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedFile {
    /// Relative path, `/`-separated.
    pub path: String,
    /// `100644`, `100755` or `120000`, as in the tree hash.
    pub mode: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the content (or link target), hex.
    pub sha256: String,
}

/// The archive formats lockstep reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// A gzip-compressed tar file.
    TarGz,
    /// A zip file.
    Zip,
}

impl ArchiveFormat {
    /// The format a URI names by its suffix (`.tar.gz`, `.tgz`, `.zip`), ignoring a query.
    pub fn of(uri: &str) -> Option<ArchiveFormat> {
        let path = uri.split(['?', '#']).next().unwrap_or(uri).to_ascii_lowercase();
        if path.ends_with(".tar.gz") || path.ends_with(".tgz") {
            Some(ArchiveFormat::TarGz)
        } else if path.ends_with(".zip") {
            Some(ArchiveFormat::Zip)
        } else {
            None
        }
    }
}

/// Errors of reading an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An entry would land outside the target, or has a name that cannot be trusted.
    #[error("unsafe archive {}: entry '{entry}' {reason}; nothing was extracted outside the target", .archive.display())]
    Unsafe {
        /// The archive.
        archive: PathBuf,
        /// The entry's name.
        entry: String,
        /// What is wrong with it, completing the sentence.
        reason: &'static str,
    },
    /// The archive expands beyond the limit.
    #[error("archive {} expands beyond {limit} bytes (a decompression bomb?); extraction stopped", .archive.display())]
    TooLarge {
        /// The archive.
        archive: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// The archive has too many entries.
    #[error("archive {} has more than {limit} entries; extraction stopped", .archive.display())]
    TooManyEntries {
        /// The archive.
        archive: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The archive is not a valid tar.gz or zip file.
    #[error("{} is not a valid {format} archive: {message}", .archive.display())]
    Corrupt {
        /// The archive.
        archive: PathBuf,
        /// The expected format.
        format: &'static str,
        /// What the reader said.
        message: String,
    },
    /// The extracted files do not match the archive's own manifest.
    #[error("archive {} does not match its manifest: {detail}", .archive.display())]
    ManifestMismatch {
        /// The archive.
        archive: PathBuf,
        /// What differs.
        detail: String,
    },
    /// Writing the extracted files failed.
    #[error("extracting {}: {}: {source}", .archive.display(), .path.display())]
    Io {
        /// The archive.
        archive: PathBuf,
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Extract `archive` into `dest` (created if missing), refusing absolute paths, `..`,
/// links that point outside (directly or through other links), hard links to files outside,
/// device files, damaged archives, and archives that expand beyond the size limit. On an
/// error, what was extracted so far stays inside `dest`, for the caller to remove, less the
/// links: links are checked only once everything is extracted, so one that an error cut
/// short may point anywhere.
pub fn extract(archive: &Path, format: ArchiveFormat, dest: &Path) -> Result<(), ArchiveError> {
    let max_bytes =
        std::env::var("LOCKSTEP_ARCHIVE_MAX_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_MAX_BYTES);
    let name = if format == ArchiveFormat::Zip { "zip" } else { "tar.gz" };
    let mut out = SafeDest::new(archive, name, dest, max_bytes)?;
    let result = match format {
        ArchiveFormat::TarGz => extract_tar_gz(archive, &mut out),
        ArchiveFormat::Zip => extract_zip(archive, &mut out),
    };
    if result.is_err() {
        out.remove_links();
    }
    result
}

fn extract_tar_gz(archive: &Path, out: &mut SafeDest) -> Result<(), ArchiveError> {
    let corrupt = |e: io::Error| ArchiveError::Corrupt {
        archive: archive.to_path_buf(),
        format: "tar.gz",
        message: e.to_string(),
    };
    let file = File::open(archive).map_err(|e| out.io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(file)));
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        out.count_entry()?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let executable = entry.header().mode().map(|m| m & 0o100 != 0).unwrap_or(false);
                let size = entry.size();
                out.file(&name, &raw, &mut entry, executable, size)?;
            }
            tar::EntryType::Directory => out.dir(&name, &raw)?,
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                out.symlink(&name, &raw, &target)?;
            }
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                out.hard_link(&name, &raw, &target)?;
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            _ => return Err(out.unsafe_entry(&name, "is a device, fifo or other special file")),
        }
    }
    // The gzip trailer (CRC-32 and length) is checked only when the stream is read to its
    // end, and tar stops reading at its end-of-archive blocks.
    let budget = out.max_bytes - out.written;
    let rest = io::copy(&mut tar.into_inner().take(budget + 1), &mut io::sink()).map_err(corrupt)?;
    if rest > budget {
        return Err(ArchiveError::TooLarge { archive: archive.to_path_buf(), limit: out.max_bytes });
    }
    out.finish()
}

fn extract_zip(archive: &Path, out: &mut SafeDest) -> Result<(), ArchiveError> {
    let corrupt = |e: zip::result::ZipError| ArchiveError::Corrupt {
        archive: archive.to_path_buf(),
        format: "zip",
        message: e.to_string(),
    };
    let file = File::open(archive).map_err(|e| out.io(archive, e))?;
    let mut zip = zip::ZipArchive::new(io::BufReader::new(file)).map_err(corrupt)?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(corrupt)?;
        out.count_entry()?;
        // Some zip writers on Windows separate with backslashes.
        let raw: Vec<u8> = entry.name_raw().iter().map(|b| if *b == b'\\' { b'/' } else { *b }).collect();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let mode = entry.unix_mode();
        let file_type = mode.map(|m| m & 0o170000);
        if entry.is_dir() {
            out.dir(&name, &raw)?;
        } else if file_type == Some(0o120000) {
            let mut target = Vec::new();
            (&mut entry).take(MAX_PATH as u64 + 1).read_to_end(&mut target).map_err(|e| out.corrupt(&name, e))?;
            out.symlink(&name, &raw, &target)?;
        } else if file_type.is_none_or(|t| t == 0o100000 || t == 0) {
            let executable = mode.is_some_and(|m| m & 0o100 != 0);
            let size = entry.size();
            out.file(&name, &raw, &mut entry, executable, size)?;
        } else {
            return Err(out.unsafe_entry(&name, "is a device, fifo or other special file"));
        }
    }
    out.finish()
}

/// Read one member of an archive (such as [`PACK_RECORD`]) without extracting the rest;
/// `None` when it has no such member.
pub fn read_member(archive: &Path, format: ArchiveFormat, name: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
    const LIMIT: u64 = 64 << 20;
    let io = |e: io::Error| ArchiveError::Io { archive: archive.to_path_buf(), path: archive.to_path_buf(), source: e };
    let file = File::open(archive).map_err(io)?;
    match format {
        ArchiveFormat::TarGz => {
            let corrupt = |e: io::Error| ArchiveError::Corrupt {
                archive: archive.to_path_buf(),
                format: "tar.gz",
                message: e.to_string(),
            };
            let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(file)));
            for entry in tar.entries().map_err(corrupt)? {
                let entry = entry.map_err(corrupt)?;
                let path = entry.path_bytes();
                if path.as_ref() == name.as_bytes() || path.strip_prefix(b"./") == Some(name.as_bytes()) {
                    let mut out = Vec::new();
                    entry.take(LIMIT).read_to_end(&mut out).map_err(corrupt)?;
                    return Ok(Some(out));
                }
            }
            Ok(None)
        }
        ArchiveFormat::Zip => {
            let corrupt = |e: zip::result::ZipError| ArchiveError::Corrupt {
                archive: archive.to_path_buf(),
                format: "zip",
                message: e.to_string(),
            };
            let mut zip = zip::ZipArchive::new(io::BufReader::new(file)).map_err(corrupt)?;
            let member = match zip.by_name(name) {
                Ok(m) => m,
                Err(zip::result::ZipError::FileNotFound) => return Ok(None),
                Err(e) => return Err(corrupt(e)),
            };
            let mut out = Vec::new();
            member.take(LIMIT).read_to_end(&mut out).map_err(io)?;
            Ok(Some(out))
        }
    }
}

/// Where the project is in an extracted archive: its root, or the single directory it holds
/// (archives made by `git archive --prefix` or by hosting sites wrap the project in one).
pub fn project_root(extracted: &Path) -> PathBuf {
    let has_manifest = |dir: &Path| {
        fs::read_dir(dir).is_ok_and(|entries| {
            entries.flatten().any(|e| e.file_name().to_string_lossy().eq_ignore_ascii_case("mlproject"))
        })
    };
    if has_manifest(extracted) || extracted.join(PACK_MANIFEST).is_file() {
        return extracted.to_path_buf();
    }
    let entries: Vec<PathBuf> =
        fs::read_dir(extracted).map(|e| e.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    match entries.as_slice() {
        [only] if only.is_dir() && !only.is_symlink() => only.clone(),
        _ => extracted.to_path_buf(),
    }
}

/// Read the manifest of a packed archive extracted at `root`, if it has one.
pub fn read_manifest(archive: &Path, root: &Path) -> Result<Option<PackManifest>, ArchiveError> {
    let path = root.join(PACK_MANIFEST);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ArchiveError::Io { archive: archive.to_path_buf(), path, source: e }),
    };
    let manifest: PackManifest = serde_json::from_slice(&bytes).map_err(|e| ArchiveError::ManifestMismatch {
        archive: archive.to_path_buf(),
        detail: format!("{PACK_MANIFEST} is not valid: {e}"),
    })?;
    if manifest.schema != PACK_SCHEMA {
        return Err(ArchiveError::ManifestMismatch {
            archive: archive.to_path_buf(),
            detail: format!("unknown schema '{}' (this lockstep reads {PACK_SCHEMA})", manifest.schema),
        });
    }
    Ok(Some(manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> tempfile::NamedTempFile {
        let file = tempfile::Builder::new().suffix(".tar.gz").tempfile().unwrap();
        let gz = flate2::write::GzEncoder::new(file.reopen().unwrap(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            // Bypass the tar crate's own path checks: the point is to feed hostile names.
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            if !link.is_empty() {
                h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_cksum();
            builder.append(&h, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
        file
    }

    fn try_extract(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> (Result<(), ArchiveError>, tempfile::TempDir) {
        let archive = tar_gz(entries);
        let dir = tempfile::tempdir().unwrap();
        let result = extract(archive.path(), ArchiveFormat::TarGz, &dir.path().join("out"));
        (result, dir)
    }

    fn assert_unsafe(entries: &[(&str, tar::EntryType, &[u8], &str)], reason: &str) {
        let (result, dir) = try_extract(entries);
        let err = result.unwrap_err().to_string();
        assert!(err.contains(reason), "{err}");
        let outside: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(outside, ["out"], "nothing is written beside the target");
        assert_eq!(links_in(&dir.path().join("out")), Vec::<PathBuf>::new(), "a refused archive leaves no link");
    }

    /// The symbolic links under `dir`, not followed.
    fn links_in(dir: &Path) -> Vec<PathBuf> {
        let mut links = Vec::new();
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                links.push(path);
            } else if kind.is_dir() {
                links.extend(links_in(&path));
            }
        }
        links
    }

    const FILE: tar::EntryType = tar::EntryType::Regular;

    #[test]
    fn ordinary_archives_extract() {
        let (result, dir) = try_extract(&[
            ("a/b.txt", FILE, b"hello", ""),
            ("./c.txt", FILE, b"c", ""),
            ("a/link", tar::EntryType::Symlink, b"", "b.txt"),
            ("a/hard", tar::EntryType::Link, b"", "a/b.txt"),
        ]);
        result.unwrap();
        let out = dir.path().join("out");
        assert_eq!(fs::read_to_string(out.join("a/b.txt")).unwrap(), "hello");
        assert_eq!(fs::read_to_string(out.join("c.txt")).unwrap(), "c");
        assert_eq!(fs::read_link(out.join("a/link")).unwrap(), Path::new("b.txt"));
        assert_eq!(fs::read_to_string(out.join("a/hard")).unwrap(), "hello");
    }

    #[test]
    fn absolute_paths_are_refused() {
        assert_unsafe(&[("/tmp/evil", FILE, b"x", "")], "has an absolute path");
    }

    #[test]
    fn parent_components_are_refused() {
        assert_unsafe(&[("a/../../evil", FILE, b"x", "")], "climbs out with '..'");
    }

    #[test]
    fn links_out_of_the_tree_are_refused() {
        assert_unsafe(&[("l", tar::EntryType::Symlink, b"", "/etc")], "link to an absolute path");
        assert_unsafe(&[("a/l", tar::EntryType::Symlink, b"", "../../x")], "pointing outside");
        assert_unsafe(
            &[("l", tar::EntryType::Symlink, b"", "sub"), ("l/evil", FILE, b"x", "")],
            "passes through a symbolic link",
        );
    }

    #[test]
    fn a_link_out_of_the_tree_is_removed_when_a_later_entry_is_refused() {
        // Found by the archive fuzz target: the link is refused only at the end, which the
        // refused write through it never reaches.
        let (result, dir) = try_extract(&[
            ("l", tar::EntryType::Symlink, b"", "../outside"),
            ("in", tar::EntryType::Symlink, b"", "d"),
            ("l/f", FILE, b"x", ""),
        ]);
        assert!(result.unwrap_err().to_string().contains("passes through a symbolic link"));
        assert_eq!(links_in(&dir.path().join("out")), Vec::<PathBuf>::new());
        assert!(!dir.path().join("outside").exists());
    }

    #[test]
    fn links_are_resolved_through_the_links_before_them() {
        let link = tar::EntryType::Symlink;
        assert_unsafe(&[("x/l", link, b"", ".."), ("y", link, b"", "x/l/..")], "entry 'y' is a link pointing outside");
        assert_unsafe(&[("l", link, b"", "l")], "entry 'l' is a link pointing outside");
        assert_unsafe(
            &[("x/l", link, b"", ".."), ("y", link, b"", "x/l/.."), ("y/", tar::EntryType::Directory, b"", "")],
            "entry 'y/' passes through a symbolic link",
        );
        // A later entry replacing a link another one goes through is judged as it ends up.
        assert_unsafe(
            &[("x/s/f", FILE, b"", ""), ("x/l", link, b"", "s"), ("y", link, b"", "x/l/.."), ("x/l", link, b"", "..")],
            "entry 'y' is a link pointing outside",
        );
        let (result, _dir) =
            try_extract(&[("x/l", link, b"", ".."), ("y", link, b"", "x/l/x"), ("d", link, b"", "no/x/..")]);
        result.unwrap();
    }

    #[test]
    fn hard_links_out_of_the_tree_are_refused() {
        assert_unsafe(&[("h", tar::EntryType::Link, b"", "/etc/passwd")], "hard link to a file outside");
        assert_unsafe(&[("h", tar::EntryType::Link, b"", "../x")], "hard link to a file outside");
        assert_unsafe(&[("h", tar::EntryType::Link, b"", "not-extracted")], "hard link to a file outside");
    }

    #[test]
    fn device_files_are_refused() {
        assert_unsafe(&[("dev", tar::EntryType::Char, b"", "")], "is a device");
        assert_unsafe(&[("fifo", tar::EntryType::Fifo, b"", "")], "is a device");
    }

    #[test]
    fn decompression_bombs_are_stopped() {
        let big = vec![0u8; 1 << 20];
        let archive = tar_gz(&[("zeros", FILE, &big, "")]);
        let size = fs::metadata(archive.path()).unwrap().len();
        assert!(size < (1 << 20) / 50, "a small archive: {size} bytes");
        let dir = tempfile::tempdir().unwrap();
        let mut out = SafeDest::new(archive.path(), "tar.gz", dir.path(), 1000).unwrap();
        let err = extract_tar_gz(archive.path(), &mut out).unwrap_err();
        assert!(matches!(err, ArchiveError::TooLarge { limit: 1000, .. }), "{err}");
        assert!(!dir.path().join("zeros").exists(), "the partial file is removed");
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let file = tempfile::Builder::new().suffix(".zip").tempfile().unwrap();
        fs::write(file.path(), b"not a zip").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = extract(file.path(), ArchiveFormat::Zip, dir.path()).unwrap_err().to_string();
        assert!(err.contains("is not a valid zip archive"), "{err}");
    }

    #[test]
    fn formats_are_recognized_by_suffix() {
        assert_eq!(ArchiveFormat::of("p.tar.gz"), Some(ArchiveFormat::TarGz));
        assert_eq!(ArchiveFormat::of("https://h/p.TGZ?sig=1"), Some(ArchiveFormat::TarGz));
        assert_eq!(ArchiveFormat::of("p.zip"), Some(ArchiveFormat::Zip));
        assert_eq!(ArchiveFormat::of("https://h/p.git"), None);
    }

    #[test]
    fn a_single_wrapping_directory_is_the_project() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("proj-1.0")).unwrap();
        fs::write(dir.path().join("proj-1.0/MLproject"), "").unwrap();
        assert_eq!(project_root(dir.path()), dir.path().join("proj-1.0"));
        fs::write(dir.path().join("MLproject"), "").unwrap();
        assert_eq!(project_root(dir.path()), dir.path());
    }
}
