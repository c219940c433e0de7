//! Archives as sources: `.tar.gz` / `.tgz` and `.zip` files, local or over http(s), extracted
//! so that nothing can land outside the target directory.
//!
//! An archive made by `lockstep pack` carries `.lockstep/pack.json` (every file with its
//! digest, and the tree hash) and, with `--run`, `.lockstep/record.json`. `.lockstep`
//! directories are never part of a tree hash, so extracting such an archive with any tool
//! gives a directory whose tree hash is the one in its manifest.

use std::ffi::{CStr, CString, OsStr};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod resolve;

pub(crate) use resolve::resolve_archive;
pub use resolve::unpack;

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
    pub run_id: Option<String>,
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
/// error, what was extracted so far stays inside `dest`, for the caller to remove.
pub fn extract(archive: &Path, format: ArchiveFormat, dest: &Path) -> Result<(), ArchiveError> {
    let max_bytes =
        std::env::var("LOCKSTEP_ARCHIVE_MAX_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_MAX_BYTES);
    match format {
        ArchiveFormat::TarGz => extract_tar_gz(archive, &mut SafeDest::new(archive, "tar.gz", dest, max_bytes)?),
        ArchiveFormat::Zip => extract_zip(archive, &mut SafeDest::new(archive, "zip", dest, max_bytes)?),
    }
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

/// The target of an extraction, with the checks that keep every write inside it.
///
/// Every entry is made relative to a descriptor of its parent directory, reached from the
/// root's descriptor one component at a time with `O_NOFOLLOW`: no link the archive made is
/// followed while extracting, whatever it points to. Where the links point is checked once
/// everything is in place ([`SafeDest::finish`]), against the tree as extracted.
struct SafeDest {
    archive: PathBuf,
    format: &'static str,
    root: PathBuf,
    root_fd: OwnedFd,
    /// The directories of the last entry, from the root down: archives list siblings
    /// together, so most entries reuse their parent's descriptor.
    open: Vec<(Vec<u8>, OwnedFd)>,
    /// Every link made, relative to the root.
    links: Vec<PathBuf>,
    buf: Vec<u8>,
    written: u64,
    entries: u64,
    max_bytes: u64,
}

/// What is at a path of a tree, without following a link there.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A directory.
    Dir,
    /// A link, with its target.
    Link(Vec<u8>),
    /// A file, or anything else that is not a directory.
    File,
    /// Nothing.
    Missing,
}

/// Whether following the link at `link` (relative to a tree's root, `/`-separated) keeps
/// within the tree, resolving each component as the kernel does against what `lookup` says
/// is there (`lookup` gets `/`-separated relative paths, `""` for the root). Past a
/// component that is missing or a file, the rest is taken lexically, as if every name were a
/// directory: anything may be made there later.
pub(crate) fn link_stays_inside(link: &[u8], mut lookup: impl FnMut(&[u8]) -> io::Result<Node>) -> io::Result<bool> {
    const MAX_HOPS: usize = 40;
    let Node::Link(target) = lookup(link)? else { return Ok(true) };
    let mut at: Vec<Vec<u8>> = link.split(|b| *b == b'/').map(<[u8]>::to_vec).collect();
    at.pop();
    at.retain(|c| !c.is_empty() && c != b".");
    let mut pending: std::collections::VecDeque<Vec<u8>> = std::collections::VecDeque::new();
    let push_target = |pending: &mut std::collections::VecDeque<Vec<u8>>, target: &[u8]| {
        if target.is_empty() || target.starts_with(b"/") {
            return false;
        }
        for comp in target.split(|b| *b == b'/').rev() {
            pending.push_front(comp.to_vec());
        }
        true
    };
    if !push_target(&mut pending, &target) {
        return Ok(false);
    }
    let (mut hops, mut lexical) = (0, false);
    while let Some(comp) = pending.pop_front() {
        match comp.as_slice() {
            b"" | b"." => {}
            b".." => {
                if at.pop().is_none() {
                    return Ok(false);
                }
            }
            _ if lexical => at.push(comp),
            _ => {
                at.push(comp);
                match lookup(&at.join(&b'/'))? {
                    Node::Dir => {}
                    Node::Link(target) => {
                        at.pop();
                        hops += 1;
                        if hops > MAX_HOPS || !push_target(&mut pending, &target) {
                            return Ok(false);
                        }
                    }
                    Node::File | Node::Missing => lexical = true,
                }
            }
        }
    }
    Ok(true)
}

/// Why a relative, `/`-separated entry name cannot be extracted as it is, if it cannot.
pub(crate) fn name_problem(raw: &[u8]) -> Option<&'static str> {
    if raw.contains(&0) {
        return Some("has a NUL byte in its name");
    }
    if raw.starts_with(b"/") {
        return Some("has an absolute path");
    }
    if raw.len() > MAX_PATH {
        return Some("has a path longer than 4095 bytes");
    }
    let mut depth = 0;
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Some("climbs out with '..'"),
            c if c.len() > MAX_NAME => return Some("has a name longer than 255 bytes"),
            _ => depth += 1,
        }
    }
    if depth > MAX_DEPTH {
        return Some("is nested more than 256 directories deep");
    }
    None
}

/// An entry name for a message: a very long one is cut, with its length.
pub(crate) fn shown(name: &str) -> String {
    const SHOWN: usize = 100;
    if name.len() <= SHOWN {
        return name.to_string();
    }
    let cut = (0..=SHOWN).rev().find(|i| name.is_char_boundary(*i)).unwrap_or(0);
    format!("{}... ({} bytes)", &name[..cut], name.len())
}

fn cstring(name: &[u8]) -> CString {
    CString::new(name).expect("entry names are checked for NUL bytes")
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

fn open_at(dir: RawFd, name: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid C string; the descriptor returned is owned by nothing else.
    let fd = check(unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_NOFOLLOW | libc::O_CLOEXEC, mode) })?;
    // SAFETY: `fd` was just opened and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn open_dir_at(dir: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    open_at(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

/// What is at `name` in `dir`, not following a link.
fn node_at(dir: RawFd, name: &CStr) -> io::Result<Node> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is written by fstatat before it is read, and only when it succeeds.
    let ret = unsafe { libc::fstatat(dir, name.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if ret < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::NotFound { Ok(Node::Missing) } else { Err(e) };
    }
    // SAFETY: fstatat succeeded.
    let st = unsafe { st.assume_init() };
    Ok(match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => Node::Dir,
        libc::S_IFLNK => {
            let mut buf = vec![0u8; libc::PATH_MAX as usize];
            // SAFETY: `buf` has `buf.len()` writable bytes.
            let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            buf.truncate(n as usize);
            Node::Link(buf)
        }
        _ => Node::File,
    })
}

impl SafeDest {
    fn new(archive: &Path, format: &'static str, dest: &Path, max_bytes: u64) -> Result<SafeDest, ArchiveError> {
        let io = |e| ArchiveError::Io { archive: archive.to_path_buf(), path: dest.to_path_buf(), source: e };
        fs::create_dir_all(dest).map_err(io)?;
        let root = fs::canonicalize(dest).map_err(io)?;
        let root_fd = open_dir_at(libc::AT_FDCWD, &cstring(root.as_os_str().as_bytes())).map_err(io)?;
        Ok(SafeDest {
            archive: archive.to_path_buf(),
            format,
            root,
            root_fd,
            open: Vec::new(),
            links: Vec::new(),
            buf: vec![0; 256 << 10],
            written: 0,
            entries: 0,
            max_bytes,
        })
    }

    fn io(&self, path: &Path, source: io::Error) -> ArchiveError {
        ArchiveError::Io { archive: self.archive.clone(), path: path.to_path_buf(), source }
    }

    fn io_at(&self, comps: &[Vec<u8>], source: io::Error) -> ArchiveError {
        self.io(&self.root.join(OsStr::from_bytes(&comps.join(&b'/'))), source)
    }

    fn unsafe_entry(&self, name: &str, reason: &'static str) -> ArchiveError {
        ArchiveError::Unsafe { archive: self.archive.clone(), entry: shown(name), reason }
    }

    /// The archive's bytes could not be read: a truncated or damaged archive.
    fn corrupt(&self, name: &str, source: io::Error) -> ArchiveError {
        self.damaged(format!("entry '{}': {source}", shown(name)))
    }

    fn damaged(&self, message: String) -> ArchiveError {
        ArchiveError::Corrupt { archive: self.archive.clone(), format: self.format, message }
    }

    fn count_entry(&mut self) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(ArchiveError::TooManyEntries { archive: self.archive.clone(), limit: MAX_ENTRIES });
        }
        Ok(())
    }

    /// The entry's components, refusing names that cannot be extracted inside the root.
    fn components(&self, name: &str, raw: &[u8]) -> Result<Vec<Vec<u8>>, ArchiveError> {
        if let Some(reason) = name_problem(raw) {
            return Err(self.unsafe_entry(name, reason));
        }
        Ok(raw.split(|b| *b == b'/').filter(|c| !c.is_empty() && *c != b".").map(<[u8]>::to_vec).collect())
    }

    /// A descriptor of the directory `dirs` under the root, made where missing; never through
    /// a link, and never over a file.
    fn dir_fd(&mut self, name: &str, dirs: &[Vec<u8>]) -> Result<RawFd, ArchiveError> {
        let common = self.open.iter().zip(dirs).take_while(|((open, _), want)| open == *want).count();
        self.open.truncate(common);
        for (depth, comp) in dirs.iter().enumerate().skip(common) {
            let parent = self.open.last().map_or(self.root_fd.as_raw_fd(), |(_, fd)| fd.as_raw_fd());
            let c = cstring(comp);
            let fd = match open_dir_at(parent, &c) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // SAFETY: `c` is a valid C string.
                    match check(unsafe { libc::mkdirat(parent, c.as_ptr(), 0o777) }) {
                        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                            return Err(self.io_at(&dirs[..=depth], e));
                        }
                        _ => open_dir_at(parent, &c),
                    }
                }
                other => other,
            };
            let fd = match fd {
                Ok(fd) => fd,
                Err(e) => {
                    return Err(match node_at(parent, &c) {
                        Ok(Node::Link(_)) => self.unsafe_entry(name, "passes through a symbolic link"),
                        Ok(Node::File) => self.unsafe_entry(name, "needs a directory where the archive has a file"),
                        _ => self.io_at(&dirs[..=depth], e),
                    });
                }
            };
            self.open.push((comp.clone(), fd));
        }
        Ok(self.open.last().map_or(self.root_fd.as_raw_fd(), |(_, fd)| fd.as_raw_fd()))
    }

    /// Make `comps`' last component with `make`, replacing an earlier entry of that name (it
    /// is replaced, never written through) unless it is a directory.
    fn create<T>(
        &mut self,
        name: &str,
        comps: &[Vec<u8>],
        make: impl Fn(RawFd, &CStr) -> io::Result<T>,
    ) -> Result<T, ArchiveError> {
        let Some((leaf, dirs)) = comps.split_last() else {
            return Err(self.unsafe_entry(name, "has an empty name"));
        };
        let dir = self.dir_fd(name, dirs)?;
        let leaf = cstring(leaf);
        match make(dir, &leaf) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if matches!(node_at(dir, &leaf), Ok(Node::Dir)) {
                    return Err(self.unsafe_entry(name, "is a file where the archive has a directory"));
                }
                // SAFETY: `leaf` is a valid C string.
                check(unsafe { libc::unlinkat(dir, leaf.as_ptr(), 0) }).map_err(|e| self.io_at(comps, e))?;
                make(dir, &leaf).map_err(|e| self.io_at(comps, e))
            }
            other => other.map_err(|e| self.io_at(comps, e)),
        }
    }

    /// A file of the `size` bytes the archive declares: fewer or more is a damaged archive.
    fn file(
        &mut self,
        name: &str,
        raw: &[u8],
        content: &mut dyn Read,
        executable: bool,
        size: u64,
    ) -> Result<(), ArchiveError> {
        let comps = self.components(name, raw)?;
        let mode = if executable { 0o755 } else { 0o644 };
        let mut file = File::from(self.create(name, &comps, |dir, leaf| {
            open_at(dir, leaf, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, mode)
        })?);
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.copy(name, &comps, content, &mut file, &mut buf, size);
        self.buf = buf;
        if result.is_err() {
            drop(file);
            let _ = fs::remove_file(self.root.join(OsStr::from_bytes(&comps.join(&b'/'))));
        }
        result
    }

    fn copy(
        &mut self,
        name: &str,
        comps: &[Vec<u8>],
        content: &mut dyn Read,
        file: &mut File,
        buf: &mut [u8],
        size: u64,
    ) -> Result<(), ArchiveError> {
        let mut copied = 0;
        loop {
            let n = match content.read(buf) {
                Ok(0) if copied == size => return Ok(()),
                Ok(0) => {
                    return Err(self.damaged(format!("entry '{}' is truncated: {copied} of {size} bytes", shown(name))));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.corrupt(name, e)),
            };
            if n as u64 > self.max_bytes - self.written {
                return Err(ArchiveError::TooLarge { archive: self.archive.clone(), limit: self.max_bytes });
            }
            copied += n as u64;
            if copied > size {
                return Err(
                    self.damaged(format!("entry '{}' holds more than the {size} bytes it declares", shown(name)))
                );
            }
            self.written += n as u64;
            file.write_all(&buf[..n]).map_err(|e| self.io_at(comps, e))?;
        }
    }

    fn dir(&mut self, name: &str, raw: &[u8]) -> Result<(), ArchiveError> {
        let comps = self.components(name, raw)?;
        self.dir_fd(name, &comps)?;
        Ok(())
    }

    fn symlink(&mut self, name: &str, raw: &[u8], target: &[u8]) -> Result<(), ArchiveError> {
        let comps = self.components(name, raw)?;
        if target.is_empty() || target.starts_with(b"/") {
            return Err(self.unsafe_entry(name, "is a link to an absolute path"));
        }
        if target.contains(&0) || target.len() > MAX_PATH {
            return Err(self.unsafe_entry(name, "is a link with an invalid target"));
        }
        let target = cstring(target);
        self.create(name, &comps, |dir, leaf| {
            // SAFETY: both are valid C strings.
            check(unsafe { libc::symlinkat(target.as_ptr(), dir, leaf.as_ptr()) }).map(drop)
        })?;
        self.links.push(PathBuf::from(OsStr::from_bytes(&comps.join(&b'/'))));
        Ok(())
    }

    /// A hard link becomes a copy of a file extracted earlier, reached without following any
    /// link (never a link to anything else).
    fn hard_link(&mut self, name: &str, raw: &[u8], target: &[u8]) -> Result<(), ArchiveError> {
        let outside = || self.unsafe_entry(name, "is a hard link to a file outside the archive");
        let comps = self.components(name, raw)?;
        let source_comps = self.components(name, target).map_err(|_| outside())?;
        let Some((leaf, dirs)) = source_comps.split_last() else { return Err(outside()) };
        let mut dir: Option<OwnedFd> = None;
        for comp in dirs {
            let parent = dir.as_ref().map_or(self.root_fd.as_raw_fd(), AsRawFd::as_raw_fd);
            dir = Some(open_dir_at(parent, &cstring(comp)).map_err(|_| outside())?);
        }
        let parent = dir.as_ref().map_or(self.root_fd.as_raw_fd(), AsRawFd::as_raw_fd);
        let mut source = File::from(open_at(parent, &cstring(leaf), libc::O_RDONLY, 0).map_err(|_| outside())?);
        let meta = source.metadata().map_err(|e| self.io_at(&source_comps, e))?;
        if !meta.is_file() {
            return Err(outside());
        }
        if meta.len() > self.max_bytes - self.written {
            return Err(ArchiveError::TooLarge { archive: self.archive.clone(), limit: self.max_bytes });
        }
        let mut file = File::from(self.create(name, &comps, |dir, leaf| {
            open_at(dir, leaf, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o644)
        })?);
        io::copy(&mut source, &mut file).map_err(|e| self.io_at(&comps, e))?;
        file.set_permissions(meta.permissions()).map_err(|e| self.io_at(&comps, e))?;
        self.written += meta.len();
        Ok(())
    }

    /// Check, with everything extracted, that every link the archive made resolves inside
    /// the root: a link may point through other links (`y -> x/l/..` with `x/l -> ..`).
    fn finish(&self) -> Result<(), ArchiveError> {
        for link in &self.links {
            let inside = link_stays_inside(link.as_os_str().as_bytes(), |rel| {
                let mut dir: Option<OwnedFd> = None;
                let mut comps = rel.split(|b| *b == b'/').peekable();
                while let Some(comp) = comps.next() {
                    let parent = dir.as_ref().map_or(self.root_fd.as_raw_fd(), AsRawFd::as_raw_fd);
                    if comps.peek().is_none() {
                        return node_at(parent, &cstring(comp));
                    }
                    dir = Some(open_dir_at(parent, &cstring(comp))?);
                }
                Ok(Node::Dir)
            })
            .map_err(|e| self.io(&self.root.join(link), e))?;
            if !inside {
                return Err(self.unsafe_entry(&link.to_string_lossy(), "is a link pointing outside the archive"));
            }
        }
        Ok(())
    }
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
